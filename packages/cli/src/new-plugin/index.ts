/**
 * `svasim new-plugin`: the plugin template generator (docs/plugin-authoring.md).
 */
export * from './names';
export * from './generate';
export { findRepoRoot, workspacePackages } from './repo-root';
export { acceleratorIndex, acceleratorTest } from './templates/accelerator';
export { pinStrategyIndex, pinStrategyTest } from './templates/pin-strategy';
export { packageJson, readme, tsconfig } from './templates/common';
