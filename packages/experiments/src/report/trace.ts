/**
 * chromeTrace - the runs' captured traces as a Chrome Trace Event / Perfetto JSON document
 * (ECOSYSTEM.md §8): per run, one track per simulated CPU (IOPF work items), per IOMMU
 * page-request queue (page-request groups, arrival to response) and per device queue (requests,
 * doorbell to completion), migrations and CPU page faults as instants, and the sampled IO page
 * faults and pinned bytes as counters. Times are µs with ns precision (`ts = ns / 1000`,
 * displayTimeUnit 'ns').
 *
 * Slices that overlap on one queue (requests in flight together) would break the format's
 * nesting rule, so each queue's slices are laid out on as few lanes as possible: lane 0 is the
 * queue's track, further lanes are extra tracks named after it ("... (+1)").
 */
import type { ExperimentResult, CapturedSlice, CapturedTrace, RunResult } from '../runner';

/** A Chrome trace event. */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'i' | 'C' | 'M';
  pid: number;
  tid?: number;
  ts?: number;
  dur?: number;
  cat?: string;
  s?: 'g' | 'p' | 't';
  args?: Record<string, unknown>;
}

/** The document. */
export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ns';
  otherData: Record<string, unknown>;
}

const us = (ns: number) => ns / 1000;

/** Per-run process ids: a block of 10 per run. */
const PID = { cpu: 1, iommu: 2, device: 3, mm: 4 } as const;
/** Process ids each run takes (its own block, so runs do not share tracks). */
const PIDS_PER_RUN = 10;

/** Lay @slices out on lanes so no two overlap on one lane; returns the lane of each. */
function lanes(slices: readonly CapturedSlice[]): { lane: number[]; count: number } {
  const order = slices.map((_, i) => i).sort((a, b) => slices[a].startNs - slices[b].startNs || a - b);
  const ends: number[] = [];
  const lane = new Array<number>(slices.length);
  for (const i of order) {
    const s = slices[i];
    let l = ends.findIndex((e) => e <= s.startNs);
    if (l < 0) {
      l = ends.length;
      ends.push(0);
    }
    ends[l] = s.startNs + s.durNs;
    lane[i] = l;
  }
  return { lane, count: ends.length };
}

function runEvents(t: CapturedTrace, run: RunResult | undefined, base: number, out: TraceEvent[]): void {
  const label = `${t.strategy} seed ${t.seed}`;
  const meta = (pid: number, name: string) =>
    out.push(
      { name: 'process_name', ph: 'M', pid, args: { name: `${label}: ${name}` } },
      { name: 'process_sort_index', ph: 'M', pid, args: { sort_index: pid } },
    );
  const thread = (pid: number, tid: number, name: string) =>
    out.push(
      { name: 'thread_name', ph: 'M', pid, tid, args: { name } },
      { name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: tid } },
    );
  const cpuPid = base + PID.cpu;
  const iommuPid = base + PID.iommu;
  const devPid = base + PID.device;
  const mmPid = base + PID.mm;
  meta(cpuPid, 'CPUs');
  meta(iommuPid, 'IOMMU');
  meta(devPid, 'devices');
  meta(mmPid, 'memory management');
  for (let c = 0; c < t.cpus; c++) thread(cpuPid, c + 1, `CPU ${c}`);
  const w = t.cpuWork;
  for (let i = 0; i < w.cpu.length; i++)
    out.push({
      name: 'kworker: iopf',
      cat: 'cpu',
      ph: 'X',
      pid: cpuPid,
      tid: w.cpu[i] + 1,
      ts: us(w.startNs[i]),
      dur: us(w.durNs[i]),
    });

  // Queue tracks: IOMMU page-request queues and device queues, each laid out on lanes.
  const byTrack = new Map<string, CapturedSlice[]>();
  for (const s of t.slices) {
    const list = byTrack.get(s.track);
    if (list) list.push(s);
    else byTrack.set(s.track, [s]);
  }
  const nextTid = { [iommuPid]: 1, [devPid]: 1 } as Record<number, number>;
  for (const track of [...byTrack.keys()].sort()) {
    const slices = byTrack.get(track)!;
    const pid = track.startsWith('iommu ') ? iommuPid : devPid;
    const { lane, count } = lanes(slices);
    const first = nextTid[pid];
    nextTid[pid] += count;
    for (let l = 0; l < count; l++) thread(pid, first + l, l === 0 ? track : `${track} (+${l})`);
    slices.forEach((s, i) =>
      out.push({
        name: s.name,
        cat: pid === iommuPid ? 'iopf' : 'dma',
        ph: 'X',
        pid,
        tid: first + lane[i],
        ts: us(s.startNs),
        dur: us(s.durNs),
        args: s.args,
      }),
    );
  }

  // Instants: migrations on 'mm', page faults per process.
  const instantTid = new Map<string, number>([['mm', 1]]);
  thread(mmPid, 1, 'migrations');
  for (const e of t.instants) {
    let tid = instantTid.get(e.track);
    if (tid === undefined) {
      tid = instantTid.size + 1;
      instantTid.set(e.track, tid);
      thread(mmPid, tid, `${e.track} page faults`);
    }
    out.push({
      name: e.name,
      cat: e.track === 'mm' ? 'migrate' : 'fault',
      ph: 'i',
      s: 't',
      pid: mmPid,
      tid,
      ts: us(e.atNs),
      args: e.args,
    });
  }

  // Counters from the run's time series.
  const series = run?.series;
  if (series)
    series.t.forEach((tNs, i) => {
      out.push(
        {
          name: 'IO page faults',
          ph: 'C',
          pid: mmPid,
          ts: us(tNs),
          args: { iopf_count: series.iopf_count[i] },
        },
        {
          name: 'pinned bytes',
          ph: 'C',
          pid: mmPid,
          ts: us(tNs),
          args: { pinned_bytes: series.pinned_bytes[i] },
        },
      );
    });
}

/**
 * chromeTrace - the document for every run of @result that carries a trace (runExperiment's
 * `trace` option).
 *
 * Return: a plain object; JSON.stringify it into a .json file for ui.perfetto.dev or
 * chrome://tracing. Runs without a trace are skipped (otherData.runs lists those included).
 */
export function chromeTrace(result: ExperimentResult): ChromeTrace {
  const events: TraceEvent[] = [];
  const included: string[] = [];
  let dropped = 0;
  let base = 0;
  for (const run of result.runs) {
    if (!run.trace) continue;
    runEvents(run.trace, run, base, events);
    included.push(`${run.strategy} seed ${run.seed}`);
    dropped += run.trace.dropped;
    base += PIDS_PER_RUN;
  }
  // Metadata first, as viewers expect to know the tracks before their events.
  events.sort((a, b) => (a.ph === 'M' ? 0 : 1) - (b.ph === 'M' ? 0 : 1));
  return {
    traceEvents: events,
    displayTimeUnit: 'ns',
    otherData: {
      scenario: result.scenario.name,
      runs: included,
      droppedEvents: dropped,
      generator: 'svasim',
    },
  };
}
