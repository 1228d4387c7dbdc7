import { EventEmitter } from 'eventemitter3';
import type { TraceEvents, TraceName } from './trace-events';

/** TraceListener - a function attached to tracepoint @K; it receives the payload. */
export type TraceListener<K extends TraceName> = (payload: TraceEvents[K]) => void;

/**
 * Tracepoints - typed tracepoints (the simulator's include/trace/events), on eventemitter3.
 *
 * A tracepoint costs nothing when nobody listens, as a static key does in the kernel, provided
 * the emitter builds its payload only after checking:
 *
 *     if (tp.enabled('mm_page_fault')) tp.emit('mm_page_fault', { pid, address, write, result });
 *
 * enabled() reads a per-name listener count kept up to date by on/off/once, never the emitter's
 * listenerCount(), because it sits on hot paths that fire millions of times per run.
 *
 * The emitter is a private field rather than a base class: a generic EventEmitter subclass cannot
 * emit its own typed events (eventemitter3 #243, #270), and composition keeps the public surface
 * to these few typed methods.
 */
export class Tracepoints {
  private readonly emitter = new EventEmitter();
  /** Listeners per tracepoint name; absent means none. */
  private readonly counts: Record<string, number> = Object.create(null) as Record<string, number>;
  /** Names with once() listeners that may have been consumed by the last emit. */
  private readonly hasOnce: Record<string, boolean> = Object.create(null) as Record<string, boolean>;

  /**
   * enabled - whether tracepoint @name has a listener.
   *
   * Return: true when emit(@name) would reach someone. O(1): one property load.
   */
  enabled(name: TraceName): boolean {
    return this.counts[name] > 0;
  }

  /**
   * on - attach @fn to tracepoint @name.
   *
   * Return: this. off(@name, @fn) detaches it.
   */
  on<K extends TraceName>(name: K, fn: TraceListener<K>): this {
    this.emitter.on(name, fn);
    this.recount(name);
    return this;
  }

  /**
   * once - attach @fn to tracepoint @name for its next emission only.
   *
   * Return: this. The listener detaches itself after one call; off(@name, @fn) detaches it earlier.
   */
  once<K extends TraceName>(name: K, fn: TraceListener<K>): this {
    this.emitter.once(name, fn);
    this.hasOnce[name] = true;
    this.recount(name);
    return this;
  }

  /**
   * off - detach @fn from tracepoint @name (every attachment of it, as eventemitter3 does).
   *
   * Return: this.
   */
  off<K extends TraceName>(name: K, fn: TraceListener<K>): this {
    this.emitter.off(name, fn);
    this.recount(name);
    return this;
  }

  /**
   * emit - deliver @payload to the listeners of tracepoint @name, in attachment order.
   *
   * Return: nothing. Guard the call with enabled() so the payload is built only when someone
   * listens. An exception thrown by a listener propagates to the emitter's caller.
   */
  emit<K extends TraceName>(name: K, payload: TraceEvents[K]): void {
    try {
      this.emitter.emit(name, payload);
    } finally {
      if (this.hasOnce[name] === true) {
        this.hasOnce[name] = false;
        this.recount(name);
      }
    }
  }

  /** listenerCount - number of listeners attached to tracepoint @name. */
  listenerCount(name: TraceName): number {
    return this.counts[name] ?? 0;
  }

  /** removeAll - detach every listener of every tracepoint. */
  removeAll(): void {
    this.emitter.removeAllListeners();
    for (const name of Object.keys(this.counts)) this.counts[name] = 0;
  }

  private recount(name: TraceName): void {
    this.counts[name] = this.emitter.listenerCount(name);
  }
}
