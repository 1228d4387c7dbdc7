/**
 * The worker-thread entry of runExperiment (run from dist: workers cannot run TypeScript). It
 * loads the registry module named in workerData, then runs each (strategy, seed) it is sent and
 * posts the RunResult back. A run's simulated failure is in its result; anything else (a bug, a
 * registry module that does not load) is posted as a fatal message for the job.
 */
import 'reflect-metadata';
import { parentPort, workerData } from 'node:worker_threads';
import type { Scenario } from '../scenario';
import { loadRegistryModule } from './registry-module';
import { runOne, type RunOptions } from './run-one';
import type { PluginRegistry } from './registry';

/** Data a worker starts with. */
export interface WorkerInit {
  registryModule: string;
  scenario: Scenario;
  options: RunOptions;
}

/** A job sent to a worker. */
export interface WorkerJob {
  id: number;
  strategy: string;
  seed: number;
  trace: boolean;
}

if (parentPort) {
  const port = parentPort;
  const init = workerData as WorkerInit;
  let registry: PluginRegistry | null = null;
  port.on('message', (job: WorkerJob) => {
    void (async () => {
      try {
        registry ??= loadRegistryModule(init.registryModule);
        const opts: RunOptions = { ...init.options, trace: job.trace ? init.options.trace || true : false };
        const result = await runOne(init.scenario, job.strategy, job.seed, registry, opts);
        port.postMessage({ id: job.id, result });
      } catch (e) {
        port.postMessage({ id: job.id, fatal: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
      }
    })();
  });
}
