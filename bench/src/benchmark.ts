/**
 * Benchmark - one module of the benchmark harness.
 *
 * run() returns flat figures (`events_per_sec: 6.1e6`); the harness merges every module's figures
 * into one JSON object, so keys are prefixed by subject and must be unique across modules.
 * Progress and diagnostics go to stderr: stdout carries only the result.
 */
export interface Benchmark {
  /** Name used by `--only`. */
  readonly name: string;
  /** Measure; resolves with the figures (numbers, strings, or null with a reason field). */
  run(): Promise<Record<string, unknown>>;
}
