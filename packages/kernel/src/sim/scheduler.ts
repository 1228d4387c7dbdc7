import { EventQueue } from './event-queue';
import type { EventCallback, IScheduler } from './types';

/**
 * EventQueueScheduler - the default IScheduler: an integer-nanosecond clock over an EventQueue.
 *
 * Times are rounded to whole nanoseconds with Math.round so float arithmetic in models (rates,
 * exponential draws) cannot make two runs disagree on the order of events. A NaN, infinite or
 * past time and a negative delay are programming errors, not input to validate politely, so they
 * throw RangeError at the call that made them rather than corrupting the queue.
 *
 * The clock only moves forwards: to the time of each fired event, and in runUntil() to the
 * requested time.
 */
export class EventQueueScheduler implements IScheduler {
  private clock = 0;
  private readonly queue = new EventQueue();
  /** Ids of background events not yet fired or cancelled. */
  private readonly backgroundIds = new Set<number>();

  /** now - current simulated time in ns. */
  now(): number {
    return this.clock;
  }

  /**
   * at - schedule @fn(@arg) at an absolute time.
   * @timeNs: absolute time in ns; rounded to an integer, must not be before now().
   * @fn: the callback.
   * @arg: passed to @fn (lets hot paths reuse one callback instead of allocating closures).
   *
   * Return: the event id; cancel() releases the event before it fires. Throws RangeError when
   * the rounded time is NaN, in the past or beyond Number.MAX_SAFE_INTEGER.
   */
  at(timeNs: number, fn: EventCallback, arg?: unknown): number {
    const t = Math.round(timeNs);
    if (!(t >= this.clock && t <= Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`scheduler.at(${timeNs}): time must be a number >= now (${this.clock})`);
    }
    return this.queue.push(t, fn, arg);
  }

  /**
   * after - schedule @fn(@arg) @delayNs after now().
   * @delayNs: delay in ns, >= 0; rounded to an integer.
   * @fn: the callback.
   * @arg: passed to @fn.
   *
   * Return: the event id; cancel() releases the event before it fires. Throws RangeError when
   * the delay is NaN, negative or pushes the time beyond Number.MAX_SAFE_INTEGER.
   */
  after(delayNs: number, fn: EventCallback, arg?: unknown): number {
    const t = this.clock + Math.round(delayNs);
    if (!(delayNs >= 0 && t <= Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`scheduler.after(${delayNs}): delay must be a number >= 0`);
    }
    return this.queue.push(t, fn, arg);
  }

  /**
   * cancel - drop a pending event.
   * @id: what at() or after() returned.
   *
   * Return: true when it was pending; false when it already fired or was cancelled.
   */
  cancel(id: number): boolean {
    const ok = this.queue.cancel(id);
    if (ok) this.backgroundIds.delete(id);
    return ok;
  }

  /** pending - number of events scheduled and neither fired nor cancelled. */
  pending(): number {
    return this.queue.size - this.backgroundIds.size;
  }

  /**
   * background - an event @delayNs from now that does not count in pending(): runUntilIdle stops
   * when only such events remain. Costs one small object per event, so it suits periodic
   * daemons, not hot paths.
   */
  background(delayNs: number, fn: EventCallback, arg?: unknown): number {
    const rec = { fn, arg, id: 0, ids: this.backgroundIds };
    rec.id = this.after(delayNs, fireBackground, rec);
    this.backgroundIds.add(rec.id);
    return rec.id;
  }

  /** nextEventTime - time of the earliest pending event, or Infinity when none is pending. */
  nextEventTime(): number {
    return this.queue.peekTime();
  }

  /**
   * step - fire the earliest pending event, first advancing the clock to its time.
   *
   * Return: false when no event was pending. An exception thrown by the callback propagates; the
   * event is already removed, so the queue stays consistent.
   */
  step(): boolean {
    const queue = this.queue;
    const fn = queue.pop();
    if (fn === null) return false;
    this.clock = queue.poppedTime;
    fn(queue.poppedArg);
    return true;
  }

  /**
   * runUntil - fire, in order, every event with time <= @timeNs, then move the clock to @timeNs.
   * @timeNs: the horizon. A time before now() fires nothing and leaves the clock alone (it never
   *   goes backwards); a fractional time leaves the clock at its integer part; Infinity fires
   *   everything and leaves the clock at the last event's time.
   *
   * Synchronous: promise continuations (tasks) run after it returns, so a model with tasks runs
   * under TaskRunner.runFor() instead. Throws RangeError for NaN.
   */
  runUntil(timeNs: number): void {
    if (Number.isNaN(timeNs)) throw new RangeError('scheduler.runUntil(NaN)');
    const queue = this.queue;
    while (queue.size > 0 && queue.peekTime() <= timeNs) {
      const fn = queue.pop() as EventCallback;
      this.clock = queue.poppedTime;
      fn(queue.poppedArg);
    }
    if (timeNs > this.clock && timeNs !== Infinity) this.clock = Math.floor(timeNs);
  }
}

/** Trampoline of background events: forget the id, then run the callback. */
function fireBackground(arg: unknown): void {
  const rec = arg as { fn: EventCallback; arg: unknown; id: number; ids: Set<number> };
  rec.ids.delete(rec.id);
  rec.fn(rec.arg);
}
