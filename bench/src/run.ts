import 'reflect-metadata';
import type { Benchmark } from './benchmark';
import { BENCHMARKS } from './benchmarks';

/**
 * The benchmark entry: `npm run bench [-- --json] [-- --only a,b]`.
 *
 * With --json, stdout carries exactly one JSON object (every module's figures merged) and
 * nothing else; without it, a readable table. Progress goes to stderr either way.
 */
/** A bad command line: reported without a stack trace. */
class UsageError extends Error {}

interface Options {
  json: boolean;
  only: string[] | null;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { json: false, only: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') options.json = true;
    else if (arg === '--only') options.only = splitNames(argv[++i]);
    else if (arg.startsWith('--only=')) options.only = splitNames(arg.slice('--only='.length));
    else throw new UsageError(`unknown argument ${arg} (use --json, --only name1,name2)`);
  }
  return options;
}

function splitNames(list: string | undefined): string[] {
  if (list === undefined || list === '')
    throw new UsageError('--only needs a comma-separated list of benchmark names');
  return list.split(',').map((s) => s.trim());
}

function select(only: string[] | null): Benchmark[] {
  if (only === null) return [...BENCHMARKS];
  const known = new Set(BENCHMARKS.map((b) => b.name));
  const unknown = only.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new UsageError(`unknown benchmark(s) ${unknown.join(', ')}; known: ${[...known].join(', ')}`);
  }
  return BENCHMARKS.filter((b) => only.includes(b.name));
}

function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value.toLocaleString('en-US');
    return value.toLocaleString('en-US', { maximumSignificantDigits: 4 });
  }
  return value === null ? 'null' : String(value);
}

function printTable(sections: Array<[string, Record<string, unknown>]>): void {
  const rows: Array<[string, string, string]> = [['benchmark', 'figure', 'value']];
  for (const [name, figures] of sections) {
    for (const [key, value] of Object.entries(figures)) rows.push([name, key, formatValue(value)]);
  }
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: [string, string, string]): string =>
    `${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2].padStart(widths[2])}`;
  process.stdout.write(`${line(rows[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const r of rows.slice(1)) process.stdout.write(`${line(r)}\n`);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const merged: Record<string, unknown> = {};
  const sections: Array<[string, Record<string, unknown>]> = [];
  for (const benchmark of select(options.only)) {
    process.stderr.write(`bench: ${benchmark.name}...\n`);
    const figures = await benchmark.run();
    for (const key of Object.keys(figures)) {
      if (key in merged)
        throw new Error(`benchmark ${benchmark.name}: figure ${key} already reported by another module`);
    }
    Object.assign(merged, figures);
    sections.push([benchmark.name, figures]);
  }
  if (options.json) process.stdout.write(`${JSON.stringify(merged)}\n`);
  else printTable(sections);
}

main().catch((error: unknown) => {
  const text =
    error instanceof UsageError
      ? error.message
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
  process.stderr.write(`bench: ${text}\n`);
  process.exitCode = 1;
});
