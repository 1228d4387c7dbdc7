/**
 * Contracts of the simulation core. Everything above sim/ programs against these interfaces;
 * the default implementations live beside them, and a host simulator may supply its own
 * scheduler through the SCHEDULER token.
 */

/** A callback fired by the event queue; `arg` is what was passed when it was scheduled. */
export type EventCallback = (arg: unknown) => void;

/**
 * IScheduler - one clock and one event queue ordered by (time, sequence number).
 * Time is an integer number of simulated nanoseconds. Callbacks scheduled for the same time
 * fire in the order they were scheduled.
 */
export interface IScheduler {
  /** Current simulated time in ns. */
  now(): number;
  /** Schedule `fn(arg)` at absolute time `timeNs` (>= now(), rounded to an integer). Returns an event id. */
  at(timeNs: number, fn: EventCallback, arg?: unknown): number;
  /** Schedule `fn(arg)` `delayNs` after now (>= 0). Returns an event id. */
  after(delayNs: number, fn: EventCallback, arg?: unknown): number;
  /**
   * Schedule a background event `delayNs` after now: it fires like any other, but does not count
   * in pending(), so runUntilIdle stops when only background events remain (periodic kernel
   * daemons: kcompactd, kswapd, khugepaged, NUMA scanning). Optional for host schedulers:
   * scheduleBackground falls back to after().
   */
  background?(delayNs: number, fn: EventCallback, arg?: unknown): number;
  /** Cancel a pending event; false when it already fired or was cancelled. */
  cancel(id: number): boolean;
  /** Number of pending (not cancelled) foreground events (background events are not counted). */
  pending(): number;
  /** Time of the earliest pending event, or Infinity. */
  nextEventTime(): number;
  /** Fire the earliest pending event (advancing the clock to its time); false when none is pending. */
  step(): boolean;
  /**
   * Fire every event with time <= `timeNs` in order, then set the clock to `timeNs`
   * (never backwards). Synchronous: promise continuations run after it returns.
   */
  runUntil(timeNs: number): void;
}

/** A named stream of deterministic pseudo-random numbers. */
export interface IRng {
  /** Uniform integer in [from, to], both inclusive. */
  int(from: number, to: number): number;
  /** Uniform float in [0, 1). */
  float(): number;
  /** Exponentially distributed value with the given mean. */
  exponential(mean: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
}

/** IRngStreams - named, independently seeded streams: adding draws in one never perturbs another. */
export interface IRngStreams {
  readonly seed: number;
  /** The stream called `name` (created on first use, the same object afterwards). */
  stream(name: string): IRng;
}

/** IVmstat - vmstat-style counters (/proc/vmstat). Known counters are pre-registered. */
export interface IVmstat {
  /** Index of a counter, registering it (at 0) if new. Hot paths keep the index. */
  register(name: string): number;
  /** Add `delta` (default 1) to the counter at `index`. */
  inc(index: number, delta?: number): void;
  /** Subtract `delta` (default 1). */
  dec(index: number, delta?: number): void;
  /** Set the counter at `index`. */
  set(index: number, value: number): void;
  /** Value of the counter at `index`. */
  get(index: number): number;
  /** Value by name (0 when unknown). */
  read(name: string): number;
  /**
   * Register a counter computed when read (nr_free_pages from the allocator's free counts, say),
   * so hot paths need not maintain it. It appears in read() and snapshot().
   */
  derive(name: string, fn: () => number): void;
  /** Every counter by name, derived ones included. */
  snapshot(): Record<string, number>;
}

/** IDmesg - the kernel log ring, with printk_ratelimited. */
export interface IDmesg {
  /** Append a line, stamped with simulated time. */
  printk(msg: string): void;
  /**
   * Append unless the caller-site `key` exceeded its burst (10 per 5 s of simulated time, the
   * kernel's DEFAULT_RATELIMIT_*); suppressed lines are counted and reported as
   * "<key>: N callbacks suppressed" when the next window opens. Returns true when printed.
   */
  printkRatelimited(key: string, msg: string): boolean;
  /** Every line in order, each as "[seconds.micros] msg". */
  lines(): string[];
}

/** scheduleBackground - a background event on `s`, or a plain one if it has no background(). */
export function scheduleBackground(s: IScheduler, delayNs: number, fn: EventCallback, arg?: unknown): number {
  return s.background ? s.background(delayNs, fn, arg) : s.after(delayNs, fn, arg);
}
