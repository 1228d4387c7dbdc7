/**
 * ScenarioCatalog - what a scenario's names are checked against before anything runs: the
 * devices, strategies, workload kinds and background kinds available. The runner's
 * PluginRegistry is one (structurally); the scenario layer only looks at the names.
 */

/** ScenarioCatalog - names known to whoever will run the scenario. */
export interface ScenarioCatalog {
  /**
   * Accelerator plugins by name. An entry that is a function (a factory) accepts `count` and
   * `config` overrides; any other entry (a plain Plugin) takes neither.
   */
  readonly devices: ReadonlyMap<string, unknown>;
  /** Pin strategies by API.md name; 'none' is always available (the kernel's default). */
  readonly strategies: ReadonlyMap<string, unknown>;
  /** Workload implementations by kind; absent: not checked. */
  readonly workloads?: ReadonlyMap<string, unknown>;
  /** Background activity implementations by kind; absent: not checked. */
  readonly backgrounds?: ReadonlyMap<string, unknown>;
}
