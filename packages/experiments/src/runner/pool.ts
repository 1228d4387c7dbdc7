/**
 * A small pool of worker threads (node:worker_threads, no piscina) running runs of one scenario:
 * each worker loads the registry module once and takes jobs one at a time. A worker that dies
 * (a crash, running out of heap) fails only the job it held; a fresh worker takes over.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { RunResult } from './types';
import type { WorkerInit, WorkerJob } from './worker';

/** The compiled worker entry; absent when running from TypeScript sources (tests, ts-node). */
export const WORKER_FILE = join(__dirname, 'worker.js');

/** workerAvailable - whether runs can go to worker threads (the built worker entry @file exists). */
export function workerAvailable(file: string = WORKER_FILE): boolean {
  return existsSync(file);
}

/** One job of the pool: what to run. */
export interface PoolJob {
  strategy: string;
  seed: number;
  trace: boolean;
}

function failed(job: PoolJob, message: string): RunResult {
  return {
    strategy: job.strategy,
    seed: job.seed,
    metrics: null,
    series: null,
    unavailable: {},
    dmaLatencyHistogram: '',
    cmaLatencyHistogram: '',
    simNs: 0,
    wallMs: 0,
    error: { phase: 'run', name: 'WorkerError', message, atNs: 0 },
  };
}

/**
 * runInWorkers - run @jobs on @size worker threads started with @init.
 * @onResult: called as each job finishes, with its index in @jobs.
 * @file: the compiled worker entry (default WORKER_FILE).
 *
 * Return: the results in job order. Every worker is terminated before the promise settles.
 */
export async function runInWorkers(
  init: WorkerInit,
  jobs: readonly PoolJob[],
  size: number,
  onResult: (index: number, result: RunResult) => void,
  file: string = WORKER_FILE,
): Promise<RunResult[]> {
  const results: RunResult[] = new Array<RunResult>(jobs.length);
  let next = 0;
  let finished = 0;
  const workers = new Set<Worker>();
  await new Promise<void>((resolve) => {
    const settle = (index: number, r: RunResult) => {
      results[index] = r;
      finished++;
      onResult(index, r);
      if (finished === jobs.length) resolve();
    };
    const spawn = () => {
      const w = new Worker(file, { workerData: init });
      workers.add(w);
      let current = -1;
      const feed = () => {
        if (next >= jobs.length) {
          current = -1;
          void w.terminate();
          return;
        }
        current = next++;
        const j = jobs[current];
        const msg: WorkerJob = { id: current, strategy: j.strategy, seed: j.seed, trace: j.trace };
        w.postMessage(msg);
      };
      w.on('message', (m: { id: number; result?: RunResult; fatal?: string }) => {
        settle(m.id, m.result ?? failed(jobs[m.id], m.fatal ?? 'worker failed'));
        feed();
      });
      const died = (why: string) => {
        workers.delete(w);
        if (current >= 0) {
          const lost = current;
          current = -1;
          settle(lost, failed(jobs[lost], why));
          if (next < jobs.length) spawn();
        }
      };
      w.on('error', (e) => died(`worker thread died: ${e.message}`));
      w.on('exit', (code) => died(`worker thread exited with code ${code}`));
      feed();
    };
    if (jobs.length === 0) resolve();
    for (let i = 0; i < Math.min(size, jobs.length); i++) spawn();
  });
  await Promise.all([...workers].map((w) => w.terminate()));
  return results;
}
