/**
 * The files every generated plugin has whatever its kind: package.json, tsconfig.json and
 * README.md. Each template returns the file's text.
 */
import type { NewPluginKind, PluginNames } from '../names';

/**
 * packageJson - the workspace package: @svasim/NAME, private, built to dist/, depending on
 * @svasim/kernel at run time and on @svasim/testkit and @svasim/user for its tests (as
 * plugins/accel-zip does). '*' because npm workspaces do not take 'workspace:*'.
 */
export function packageJson(n: PluginNames, kind: NewPluginKind): string {
  const pkg = {
    name: n.pkg,
    version: '0.0.0',
    private: true,
    description:
      kind === 'accelerator'
        ? `svasim accelerator plugin: /dev/${n.uacce}-<id>, made by svasim new-plugin`
        : `svasim pin strategy '${n.strategy}', made by svasim new-plugin`,
    main: 'dist/index.js',
    types: 'dist/index.d.ts',
    license: 'MIT',
    dependencies: { '@svasim/kernel': '*' },
    devDependencies: { '@svasim/testkit': '*', '@svasim/user': '*' },
  };
  return JSON.stringify(pkg, null, 2) + '\n';
}

/**
 * tsconfig - a composite project of the build (tsc -b), the shape of plugins/accel-zip's:
 * @root is the relative path from the plugin's directory to the repository root.
 */
export function tsconfig(root: string): string {
  return `{
  "extends": "${root}/tsconfig.base.json",
  "compilerOptions": { "composite": true, "rootDir": "src", "outDir": "dist" },
  "include": ["src"],
  "exclude": ["src/**/*.test.ts"],
  "references": [{ "path": "${root}/packages/kernel" }]
}
`;
}

/**
 * readme - what the package is, its files, and how to test and grow it. @at.dir is the package's
 * directory relative to the repository root, @at.docs the relative link to plugin-authoring.md.
 */
export function readme(n: PluginNames, kind: NewPluginKind, at: { dir: string; docs: string }): string {
  const what =
    kind === 'accelerator'
      ? `An accelerator plugin for svasim: a device that XORs buffers with a key (ops \`encrypt\` and
\`decrypt\`, algorithm \`xor\`), registered through uacce as \`/dev/${n.uacce}-<id>\` with Shared
Virtual Addressing. It is the starting point \`svasim new-plugin\` made: replace the operation in
\`process()\` with your device's and the figures in \`${n.upper}_TIMING\` with measured ones.`
      : `A pinning strategy for svasim: \`ctx.prepare(addr, len)\` mlocks the buffer (its pages are
faulted in and stay resident, so the device takes no IO page faults on it) and \`ctx.release\`
munlocks it. It is the starting point \`svasim new-plugin\` made: replace prepare and release with
your scheme.`;
  const use =
    kind === 'accelerator'
      ? `\`\`\`ts
import { createKernel } from '@svasim/kernel';
import { openContext } from '@svasim/user';
import { ${n.camel}Plugin } from '${n.pkg}';

const kernel = createKernel({ plugins: [${n.camel}Plugin] });
const proc = kernel.spawn();
const ctx = openContext(proc, 'xor');
// ctx.submitSync({ op: 'encrypt', alg: 'xor', src, srcLen, dst, dstLen, key })
\`\`\``
      : `\`\`\`ts
import { createKernel } from '@svasim/kernel';
import { memcpyAccelPlugin } from '@svasim/testkit';
import { openContext } from '@svasim/user';
import { ${n.camel}Plugin } from '${n.pkg}';

const kernel = createKernel({ plugins: [memcpyAccelPlugin, ${n.camel}Plugin] });
const proc = kernel.spawn();
const ctx = openContext(proc, 'memcpy'); // ctx.pin is the '${n.strategy}' strategy
// ctx.prepare(buf, len); ... ctx.submitSync(...); ... ctx.release(buf, len);
\`\`\``;
  const test =
    kind === 'accelerator'
      ? 'runs the accelerator conformance suite of `@svasim/testkit` on the device and tests its operation'
      : "runs the conformance suite on the memcpy reference device under this strategy and tests the strategy's own behaviour and errors";
  return `# ${n.pkg}

${what}

## Use

${use}

## Files

| File | What |
|---|---|
| \`package.json\` | the workspace package; \`@svasim/kernel\` at run time, \`@svasim/testkit\` and \`@svasim/user\` for tests |
| \`tsconfig.json\` | a composite project of the repository build (\`tsc -b\`) |
| \`src/index.ts\` | the plugin |
| \`src/${n.name}.test.ts\` | ${test} |

## Next steps

1. Add \`{ "path": "${at.dir}" }\` to the \`references\` of the repository's \`tsconfig.json\`.
2. \`npm install\` (links \`${n.pkg}\` into \`node_modules\`).
3. \`npm test\`, or \`npx jest ${at.dir}\` for this package only.

How it all works: [plugin-authoring.md](${at.docs}).
`;
}
