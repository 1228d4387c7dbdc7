/**
 * ScenarioError - why a scenario was refused: every problem found, each naming the file, the
 * line (when the scenario came from text) and the field path, e.g.
 * `flagship.yaml:12: processes[0].workload.inflight: Invalid input: expected number, received string`.
 */

/** ScenarioIssue - one problem in a scenario. */
export interface ScenarioIssue {
  /** The file name the caller gave. */
  file: string;
  /** 1-based line of the offending field, when known. */
  line?: number;
  /** 1-based column, when known. */
  column?: number;
  /** The field path as written in docs, e.g. 'processes[0].workload.inflight' ('' for the file). */
  path: string;
  message: string;
}

/**
 * formatPath - a zod-style path as a reader writes it: ['processes', 0, 'workload'] ->
 * 'processes[0].workload'.
 */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

/** formatIssue - one issue as one line: 'file:line: path: message'. */
export function formatIssue(i: ScenarioIssue): string {
  const where = i.line === undefined ? i.file : `${i.file}:${i.line}`;
  return i.path ? `${where}: ${i.path}: ${i.message}` : `${where}: ${i.message}`;
}

/**
 * ScenarioError - thrown by loadScenario / validateScenario when a scenario is malformed or
 * contradictory; nothing has run. `issues` lists every problem, in file order where known.
 */
export class ScenarioError extends Error {
  readonly issues: readonly ScenarioIssue[];

  constructor(issues: ScenarioIssue[]) {
    const sorted = [...issues].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
    super(sorted.map(formatIssue).join('\n'));
    this.name = 'ScenarioError';
    this.issues = sorted;
  }
}
