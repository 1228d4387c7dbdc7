import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { EventQueueScheduler, RngStreams, TaskRunner } from '@svasim/kernel';
import type { Benchmark } from '../benchmark';

/**
 * M/M/1 queue: Poisson arrivals at 0.9 per µs, exponential service at 1.0 per µs, one server.
 * Each customer is two events (arrival, departure), as plain callbacks: the event core's cost,
 * without tasks. The mean time in system checks the model against theory (1 / (mu - lambda)).
 */
const CONFIG = {
  /** Arrival rate (customers per µs). */
  arrivalRatePerUs: 0.9,
  /** Service rate (customers per µs). */
  serviceRatePerUs: 1.0,
  /** Customers per measured run (events = 2x). */
  customers: 2_000_000,
  /** Customers in the warm-up run (lets V8 optimise the hot paths before timing). */
  warmupCustomers: 200_000,
  /** Measured runs per loop; the median is reported. */
  repetitions: 3,
  /** Customers in the SimPy run: SimPy is slow, and the figure is a rate per event anyway. */
  peerCustomers: 200_000,
  /** Seed of the RNG streams. */
  seed: 1,
} as const;

const NS_PER_US = 1000;
const NS_PER_SEC = 1e9;
const PYTHON = '/usr/bin/python3';
const PEER_SCRIPT = resolve(__dirname, '../../peer/mm1_simpy.py');

interface Mm1Run {
  events: number;
  seconds: number;
  meanSojournUs: number;
}

/** Build an M/M/1 model on a fresh scheduler; returns the scheduler and a result reader. */
function buildMm1(customers: number): {
  scheduler: EventQueueScheduler;
  result: () => Omit<Mm1Run, 'seconds'>;
} {
  const scheduler = new EventQueueScheduler();
  const streams = new RngStreams(CONFIG.seed);
  const arrivals = streams.stream('bench.mm1.arrival');
  const service = streams.stream('bench.mm1.service');
  const meanInterarrivalNs = NS_PER_US / CONFIG.arrivalRatePerUs;
  const meanServiceNs = NS_PER_US / CONFIG.serviceRatePerUs;
  // FIFO: customer i's arrival time; the departing customer is always the oldest one present.
  const arrivedAt = new Float64Array(customers);
  let arrived = 0;
  let departed = 0;
  let sojournNs = 0;

  const depart = (): void => {
    sojournNs += scheduler.now() - arrivedAt[departed];
    departed++;
    if (departed < arrived) scheduler.after(service.exponential(meanServiceNs), depart);
  };
  const arrive = (): void => {
    arrivedAt[arrived++] = scheduler.now();
    if (arrived - departed === 1) scheduler.after(service.exponential(meanServiceNs), depart);
    if (arrived < customers) scheduler.after(arrivals.exponential(meanInterarrivalNs), arrive);
  };
  scheduler.after(arrivals.exponential(meanInterarrivalNs), arrive);
  return {
    scheduler,
    result: () => ({ events: arrived + departed, meanSojournUs: sojournNs / departed / NS_PER_US }),
  };
}

/** The scheduler's own synchronous loop. */
function runScheduler(customers: number): Mm1Run {
  const { scheduler, result } = buildMm1(customers);
  const start = process.hrtime.bigint();
  scheduler.runUntil(Infinity);
  const seconds = Number(process.hrtime.bigint() - start) / NS_PER_SEC;
  return { ...result(), seconds };
}

/** The async run loop that also drives tasks (none here: plain events must pay no await). */
async function runTaskLoop(customers: number): Promise<Mm1Run> {
  const { scheduler, result } = buildMm1(customers);
  const runner = new TaskRunner(scheduler);
  const start = process.hrtime.bigint();
  await runner.runUntilIdle();
  const seconds = Number(process.hrtime.bigint() - start) / NS_PER_SEC;
  return { ...result(), seconds };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function measure(
  run: (customers: number) => Mm1Run | Promise<Mm1Run>,
): Promise<{ rate: number; last: Mm1Run }> {
  await run(CONFIG.warmupCustomers);
  const rates: number[] = [];
  let last: Mm1Run | null = null;
  for (let i = 0; i < CONFIG.repetitions; i++) {
    last = await run(CONFIG.customers);
    if (last.events !== 2 * CONFIG.customers) throw new Error(`M/M/1 fired ${last.events} events`);
    rates.push(last.events / last.seconds);
  }
  return { rate: median(rates), last: last as Mm1Run };
}

/** Make Debian's python3 see SimPy, installing python3-simpy3 if needed; returns why not, or null. */
function ensureSimpy(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import simpy'], { stdio: 'ignore' });
  if (probe.error === undefined && probe.status === 0) return null;
  if (probe.error !== undefined) return `${PYTHON} not runnable: ${probe.error.message}`;
  process.stderr.write('bench: installing python3-simpy3 for the SimPy peer...\n');
  const install = spawnSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq python3-simpy3'], {
    stdio: ['ignore', 2, 2],
  });
  if (install.status !== 0)
    return `apt-get install python3-simpy3 failed (exit ${install.status ?? 'signal'})`;
  const again = spawnSync(PYTHON, ['-c', 'import simpy'], { stdio: 'ignore' });
  return again.status === 0 ? null : 'python3-simpy3 installed but simpy still not importable';
}

interface PeerResult {
  events_per_sec: number;
  simpy_version: string;
  mean_sojourn_us: number;
}

function runPeer(): PeerResult | string {
  const missing = ensureSimpy();
  if (missing !== null) return missing;
  const run = spawnSync(
    PYTHON,
    [
      PEER_SCRIPT,
      '--customers',
      String(CONFIG.peerCustomers),
      '--arrival-rate',
      String(CONFIG.arrivalRatePerUs),
      '--service-rate',
      String(CONFIG.serviceRatePerUs),
      '--seed',
      String(CONFIG.seed),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 2] },
  );
  if (run.status !== 0) return `SimPy peer exited with ${run.status ?? run.signal}`;
  try {
    return JSON.parse(run.stdout) as PeerResult;
  } catch {
    return `SimPy peer printed no JSON: ${run.stdout.slice(0, 200)}`;
  }
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** eventsBenchmark - event-core throughput on M/M/1, against SimPy on the same model. */
export const eventsBenchmark: Benchmark = {
  name: 'events',
  async run() {
    const scheduler = await measure(runScheduler);
    const loop = await measure(runTaskLoop);
    const peer = runPeer();
    const figures: Record<string, unknown> = {
      events_per_sec: Math.round(scheduler.rate),
      events_per_sec_task_loop: Math.round(loop.rate),
      events_model: `M/M/1 lambda=${CONFIG.arrivalRatePerUs}/us mu=${CONFIG.serviceRatePerUs}/us, ${CONFIG.customers} customers`,
      events_mm1_mean_sojourn_us: round(scheduler.last.meanSojournUs, 3),
    };
    if (typeof peer === 'string') {
      Object.assign(figures, {
        peer_events_per_sec: null,
        peer_ratio: null,
        peer_engine: null,
        peer_reason: peer,
      });
    } else {
      Object.assign(figures, {
        peer_events_per_sec: Math.round(peer.events_per_sec),
        peer_ratio: round(scheduler.rate / peer.events_per_sec, 1),
        peer_engine: `SimPy ${peer.simpy_version} (python3-simpy3)`,
        peer_mm1_mean_sojourn_us: round(peer.mean_sojourn_us, 3),
      });
    }
    return figures;
  },
};
