import type { Tracepoints } from './tracepoints';
import type { IDmesg } from './types';

/** DmesgConfig - tunables of the kernel log. */
export interface DmesgConfig {
  /** Lines kept in the ring (lines); the oldest is dropped when full, as in the printk ring buffer. */
  capacity: number;
  /** printk_ratelimited window (ns of simulated time): DEFAULT_RATELIMIT_INTERVAL, 5 * HZ. */
  ratelimitIntervalNs: number;
  /** Lines a caller site may print per window (lines): DEFAULT_RATELIMIT_BURST. */
  ratelimitBurst: number;
}

/** DMESG_DEFAULTS - the kernel's defaults for DmesgConfig. */
export const DMESG_DEFAULTS: Readonly<DmesgConfig> = Object.freeze({
  capacity: 4096,
  ratelimitIntervalNs: 5_000_000_000,
  ratelimitBurst: 10,
});

/** The simulated clock dmesg stamps lines with (an IScheduler fits). */
export interface DmesgClock {
  now(): number;
}

/** Per caller-site state of printk_ratelimited (the kernel's struct ratelimit_state). */
interface RatelimitState {
  begin: number;
  printed: number;
  missed: number;
}

const NS_PER_SEC = 1_000_000_000;
const NS_PER_USEC = 1_000;

/**
 * formatPrintkTime - the kernel's printk timestamp prefix for @ns: "[%5lu.%06lu] ".
 *
 * Return: e.g. "[    1.234567] " for 1,234,567,890 ns (microseconds truncated, as the kernel does).
 */
export function formatPrintkTime(ns: number): string {
  const secs = Math.floor(ns / NS_PER_SEC);
  const usecs = Math.floor((ns - secs * NS_PER_SEC) / NS_PER_USEC);
  return `[${String(secs).padStart(5, ' ')}.${String(usecs).padStart(6, '0')}] `;
}

/**
 * Dmesg - the kernel log: a bounded ring of timestamped lines, with printk_ratelimited.
 *
 * Each line is also emitted on the `printk` tracepoint when one is given and someone listens.
 */
export class Dmesg implements IDmesg {
  private readonly config: DmesgConfig;
  private readonly ring: string[] = [];
  /** Ring index of the oldest line once the ring is full. */
  private head = 0;
  private readonly ratelimits = new Map<string, RatelimitState>();

  /**
   * @clock: simulated time source for the stamps.
   * @config: overrides of DMESG_DEFAULTS.
   * @tracepoints: where to emit `printk`, if anywhere.
   */
  constructor(
    private readonly clock: DmesgClock,
    config: Partial<DmesgConfig> = {},
    private readonly tracepoints: Tracepoints | null = null,
  ) {
    this.config = { ...DMESG_DEFAULTS, ...config };
    if (!(Number.isSafeInteger(this.config.capacity) && this.config.capacity > 0)) {
      throw new RangeError(`dmesg capacity ${this.config.capacity} must be a positive integer`);
    }
  }

  /** printk - append @msg stamped with the current simulated time, dropping the oldest line when full. */
  printk(msg: string): void {
    const line = formatPrintkTime(this.clock.now()) + msg;
    if (this.ring.length < this.config.capacity) {
      this.ring.push(line);
    } else {
      this.ring[this.head] = line;
      this.head = (this.head + 1) % this.config.capacity;
    }
    if (this.tracepoints?.enabled('printk')) this.tracepoints.emit('printk', { line });
  }

  /**
   * printkRatelimited - printk(@msg) unless caller site @key used up its burst in this window.
   *
   * Follows lib/ratelimit.c's ___ratelimit(): a window opens at the first call and lasts
   * ratelimitIntervalNs; the first call after it expires opens a new one, first printing
   * "<key>: N callbacks suppressed" when lines were dropped. A non-positive interval disables
   * limiting.
   *
   * Return: true when @msg was printed, false when it was suppressed.
   */
  printkRatelimited(key: string, msg: string): boolean {
    const { ratelimitIntervalNs: interval, ratelimitBurst: burst } = this.config;
    if (interval <= 0) {
      this.printk(msg);
      return true;
    }
    const now = this.clock.now();
    let state = this.ratelimits.get(key);
    if (state === undefined) {
      state = { begin: now, printed: 0, missed: 0 };
      this.ratelimits.set(key, state);
    } else if (now > state.begin + interval) {
      if (state.missed > 0) {
        this.printk(`${key}: ${state.missed} callbacks suppressed`);
        state.missed = 0;
      }
      state.begin = now;
      state.printed = 0;
    }
    if (state.printed < burst) {
      state.printed++;
      this.printk(msg);
      return true;
    }
    state.missed++;
    return false;
  }

  /**
   * lines - the ring's contents, oldest first, each "[seconds.micros] msg".
   *
   * Return: a fresh array the caller owns.
   */
  lines(): string[] {
    return this.ring.slice(this.head).concat(this.ring.slice(0, this.head));
  }

  /** clear - empty the ring (dmesg --clear); rate-limit windows are kept. */
  clear(): void {
    this.ring.length = 0;
    this.head = 0;
  }
}
