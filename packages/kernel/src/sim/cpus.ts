import type { Tracepoints } from './tracepoints';
import type { IScheduler } from './types';

/**
 * CpuCallback - called when a work item completes: @arg is what was passed to runOn(), @cpu the
 * CPU that ran it.
 */
export type CpuCallback = (arg: unknown, cpu: number) => void;

/**
 * CpuWork - the body of a work item whose cost is only known once it runs (a workqueue item that
 * takes a fault, say): called when the item starts on @cpu, it does the item's work and returns
 * the CPU time it takes, in ns (>= 0).
 */
export type CpuWork = (arg: unknown, cpu: number) => number;

/** runOn()'s CPU argument for "whichever CPU frees first" (an unbound work item). */
export const CPU_ANY = 'any';

/** Initial capacity of the run queues; they double when full. */
const INITIAL_QUEUE = 16;
/** Queue index of the shared queue of unbound items; per-CPU queues follow it. */
const ANY_QUEUE = 0;

/**
 * RunQueue - a FIFO of work items in parallel arrays (a ring that doubles when full), so queueing
 * allocates nothing per item.
 */
class RunQueue {
  cost: Array<number | CpuWork> = new Array<number | CpuWork>(INITIAL_QUEUE);
  done: Array<CpuCallback | null> = new Array<CpuCallback | null>(INITIAL_QUEUE);
  arg: unknown[] = new Array<unknown>(INITIAL_QUEUE);
  seq = new Float64Array(INITIAL_QUEUE);
  head = 0;
  size = 0;

  push(cost: number | CpuWork, done: CpuCallback | null, arg: unknown, seq: number): void {
    if (this.size === this.seq.length) this.grow();
    const i = (this.head + this.size) % this.seq.length;
    this.cost[i] = cost;
    this.done[i] = done;
    this.arg[i] = arg;
    this.seq[i] = seq;
    this.size++;
  }

  /** Sequence number of the oldest item, Infinity when empty. */
  headSeq(): number {
    return this.size > 0 ? this.seq[this.head] : Infinity;
  }

  /** Drop the oldest item (the caller read it at index head first). */
  shift(): void {
    const i = this.head;
    this.cost[i] = 0;
    this.done[i] = null;
    this.arg[i] = undefined;
    this.head = (i + 1) % this.seq.length;
    this.size--;
  }

  private grow(): void {
    const old = this.seq.length;
    const cap = old * 2;
    const cost = new Array<number | CpuWork>(cap);
    const done = new Array<CpuCallback | null>(cap);
    const arg = new Array<unknown>(cap);
    const seq = new Float64Array(cap);
    for (let k = 0; k < this.size; k++) {
      const j = (this.head + k) % old;
      cost[k] = this.cost[j];
      done[k] = this.done[j];
      arg[k] = this.arg[j];
      seq[k] = this.seq[j];
    }
    this.cost = cost;
    this.done = done;
    this.arg = arg;
    this.seq = seq;
    this.head = 0;
  }
}

/**
 * CpuSet - the machine's simulated CPUs as servers of kernel work (workqueue items, threaded
 * interrupt handlers): each CPU runs one item at a time, for the CPU time the item costs.
 *
 * Items bound to a CPU wait in that CPU's FIFO; unbound items (CPU_ANY, a WQ_UNBOUND workqueue)
 * wait in one shared FIFO and go to whichever CPU frees first. A free CPU takes the oldest item it
 * may run (its own queue or the shared one, by submission order). CPUs that are free at the same
 * instant are filled lowest id first, and items submitted at one instant start after the current
 * event, in submission order, so runs are reproducible.
 *
 * Simulated user tasks are not scheduled here (they charge their own CPU time); this models only
 * the kernel-side contention that IO page faults and interrupts meet.
 */
export class CpuSet {
  /** Number of CPUs. */
  readonly nrCpus: number;
  /** Time each CPU finishes its current item (<= now when idle). */
  private readonly busyEnd: Float64Array;
  /** CPU time each CPU has been given, including the part of the current item still ahead. */
  private readonly busyTotal: Float64Array;
  /** Items completed per CPU. */
  private readonly completed: Float64Array;
  /** Whether each CPU is running an item. */
  private readonly running: Uint8Array;
  /** Completion callback and argument of each CPU's current item. */
  private readonly curDone: Array<CpuCallback | null>;
  private readonly curArg: unknown[];
  /** queues[0]: unbound items; queues[1 + cpu]: items bound to cpu. */
  private readonly queues: RunQueue[];
  private nextSeq = 0;
  private queuedItems = 0;
  private dispatchPending = false;
  private readonly onDispatch = (): void => this.dispatch();
  private readonly onComplete = (arg: unknown): void => this.complete(arg as number);

  /**
   * @scheduler: the kernel's clock and event queue.
   * @nrCpus: number of CPUs (the kernel's `cpus` option), an integer >= 1.
   * @tracepoints: where to emit `workqueue_execute` for each item started, if anywhere.
   *
   * Throws RangeError for a bad CPU count. Nothing to release: an idle CpuSet schedules nothing.
   */
  constructor(
    private readonly scheduler: IScheduler,
    nrCpus: number,
    private readonly tracepoints: Tracepoints | null = null,
  ) {
    if (!Number.isInteger(nrCpus) || nrCpus < 1) throw new RangeError(`CpuSet: bad CPU count ${nrCpus}`);
    this.nrCpus = nrCpus;
    this.busyEnd = new Float64Array(nrCpus);
    this.busyTotal = new Float64Array(nrCpus);
    this.completed = new Float64Array(nrCpus);
    this.running = new Uint8Array(nrCpus);
    this.curDone = new Array<CpuCallback | null>(nrCpus).fill(null);
    this.curArg = new Array<unknown>(nrCpus).fill(undefined);
    this.queues = [];
    for (let i = 0; i <= nrCpus; i++) this.queues.push(new RunQueue());
  }

  /**
   * runOn - run a work item on @cpu, or on the first CPU to free up when @cpu is CPU_ANY.
   * @cpu: a CPU id in [0, nrCpus), or CPU_ANY.
   * @cost: the item's CPU time in ns (>= 0), or a CpuWork called when the item starts that does
   *   the work and returns its CPU time.
   * @done: called with (@arg, cpu) when the item completes (its CPU time has elapsed); may be null.
   * @arg: passed to @cost (when a function) and @done, so hot paths reuse one callback.
   *
   * The item never starts inside this call: at the earliest it starts after the current event, at
   * the same simulated time. The CPU is busy from start to completion, and the time counts in
   * busyNs(). Throws RangeError for a bad CPU or a negative, NaN or infinite cost (also when a
   * CpuWork returns one). Nothing to release; an item cannot be cancelled once queued.
   */
  runOn(cpu: number | typeof CPU_ANY, cost: number | CpuWork, done: CpuCallback | null, arg?: unknown): void {
    let q: number;
    if (cpu === CPU_ANY) q = ANY_QUEUE;
    else if (Number.isInteger(cpu) && cpu >= 0 && cpu < this.nrCpus) q = 1 + cpu;
    else throw new RangeError(`CpuSet.runOn: no CPU ${String(cpu)}`);
    if (typeof cost === 'number') checkCost(cost);
    this.queues[q].push(cost, done, arg, this.nextSeq++);
    this.queuedItems++;
    this.kick();
  }

  /** idle - whether @cpu is running nothing right now. */
  idle(cpu: number): boolean {
    return this.running[this.check(cpu)] === 0;
  }

  /** busyUntil - when @cpu finishes its current item (a time <= now when it is idle). */
  busyUntil(cpu: number): number {
    return this.busyEnd[this.check(cpu)];
  }

  /** busyNs - CPU time @cpu has spent running items up to now, in ns. */
  busyNs(cpu: number): number {
    const c = this.check(cpu);
    const ahead = this.busyEnd[c] - this.scheduler.now();
    return this.busyTotal[c] - (ahead > 0 ? ahead : 0);
  }

  /** totalBusyNs - busyNs() summed over every CPU. */
  totalBusyNs(): number {
    let sum = 0;
    for (let c = 0; c < this.nrCpus; c++) sum += this.busyNs(c);
    return sum;
  }

  /** completedItems - items @cpu has completed. */
  completedItems(cpu: number): number {
    return this.completed[this.check(cpu)];
  }

  /**
   * utilisation - the share of time since boot (time 0) that @cpu was busy, or the mean over all
   * CPUs when @cpu is omitted.
   *
   * Return: a fraction in [0, 1]; 0 at time 0.
   */
  utilisation(cpu?: number): number {
    const now = this.scheduler.now();
    if (now <= 0) return 0;
    const busy = cpu === undefined ? this.totalBusyNs() / this.nrCpus : this.busyNs(cpu);
    return busy / now;
  }

  /** queued - items waiting for a CPU (not yet started). */
  queued(): number {
    return this.queuedItems;
  }

  /** runningItems - CPUs running an item now. */
  runningItems(): number {
    let n = 0;
    for (let c = 0; c < this.nrCpus; c++) n += this.running[c];
    return n;
  }

  private check(cpu: number): number {
    if (!(Number.isInteger(cpu) && cpu >= 0 && cpu < this.nrCpus))
      throw new RangeError(`CpuSet: no CPU ${cpu}`);
    return cpu;
  }

  /** Ask for a dispatch pass after the current event (one pending pass at most). */
  private kick(): void {
    if (this.dispatchPending || this.queuedItems === 0) return;
    this.dispatchPending = true;
    this.scheduler.after(0, this.onDispatch);
  }

  /**
   * Fill free CPUs, lowest id first. Running as a separate event (not from complete()) means all
   * CPUs that free at one instant are free here, so the lowest id wins ties.
   */
  private dispatch(): void {
    this.dispatchPending = false;
    const any = this.queues[ANY_QUEUE];
    for (let c = 0; c < this.nrCpus && this.queuedItems > 0; c++) {
      if (this.running[c]) continue;
      const own = this.queues[1 + c];
      const q = own.headSeq() < any.headSeq() ? own : any;
      if (q.size === 0) continue;
      const i = q.head;
      const cost = q.cost[i];
      const done = q.done[i];
      const arg = q.arg[i];
      q.shift();
      this.queuedItems--;
      this.start(c, cost, done, arg);
    }
  }

  private start(c: number, cost: number | CpuWork, done: CpuCallback | null, arg: unknown): void {
    const ns = typeof cost === 'number' ? cost : checkCost(cost(arg, c));
    const now = this.scheduler.now();
    this.running[c] = 1;
    this.curDone[c] = done;
    this.curArg[c] = arg;
    this.busyEnd[c] = now + Math.round(ns);
    this.busyTotal[c] += Math.round(ns);
    if (this.tracepoints !== null && this.tracepoints.enabled('workqueue_execute'))
      this.tracepoints.emit('workqueue_execute', { cpu: c, startNs: now, durNs: Math.round(ns) });
    this.scheduler.after(ns, this.onComplete, c);
  }

  private complete(c: number): void {
    const done = this.curDone[c];
    const arg = this.curArg[c];
    this.running[c] = 0;
    this.curDone[c] = null;
    this.curArg[c] = undefined;
    this.completed[c]++;
    this.kick();
    if (done) done(arg, c);
  }
}

/** The cost unchanged, or RangeError when it is not a finite number >= 0. */
function checkCost(ns: number): number {
  if (!(ns >= 0 && ns !== Infinity)) throw new RangeError(`CpuSet: bad cost ${ns} ns`);
  return ns;
}
