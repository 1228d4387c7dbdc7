import { describe, expect, it, jest } from '@jest/globals';
import { Tracepoints } from './tracepoints';
import type { TraceEvents } from './trace-events';

describe('Tracepoints', () => {
  it('enabled() follows on/off', () => {
    const tp = new Tracepoints();
    const a = (): void => undefined;
    const b = (): void => undefined;
    expect(tp.enabled('mm_page_alloc')).toBe(false);
    tp.on('mm_page_alloc', a).on('mm_page_alloc', b);
    expect(tp.enabled('mm_page_alloc')).toBe(true);
    expect(tp.listenerCount('mm_page_alloc')).toBe(2);
    expect(tp.enabled('mm_page_free')).toBe(false);
    tp.off('mm_page_alloc', a);
    expect(tp.enabled('mm_page_alloc')).toBe(true);
    tp.off('mm_page_alloc', b);
    expect(tp.enabled('mm_page_alloc')).toBe(false);
    tp.on('mm_page_free', a);
    tp.removeAll();
    expect(tp.enabled('mm_page_free')).toBe(false);
  });

  it('builds no payload when nobody listens (the enabled() idiom)', () => {
    const tp = new Tracepoints();
    const build = jest.fn((): TraceEvents['mm_page_fault'] => ({
      pid: 1,
      address: 0x1000,
      write: true,
      result: 0,
    }));
    const fault = (): void => {
      if (tp.enabled('mm_page_fault')) tp.emit('mm_page_fault', build());
    };
    fault();
    expect(build).not.toHaveBeenCalled();
    const seen: Array<TraceEvents['mm_page_fault']> = [];
    const listener = (e: TraceEvents['mm_page_fault']): void => {
      seen.push(e);
    };
    tp.on('mm_page_fault', listener);
    fault();
    tp.off('mm_page_fault', listener);
    fault();
    expect(build).toHaveBeenCalledTimes(1);
    expect(seen).toEqual([{ pid: 1, address: 0x1000, write: true, result: 0 }]);
  });

  it('once() listeners fire once and then disable the tracepoint', () => {
    const tp = new Tracepoints();
    const seen: number[] = [];
    tp.once('mm_page_free', (e) => seen.push(e.pfn));
    expect(tp.enabled('mm_page_free')).toBe(true);
    tp.emit('mm_page_free', { pfn: 1, order: 0 });
    expect(tp.enabled('mm_page_free')).toBe(false);
    tp.emit('mm_page_free', { pfn: 2, order: 0 });
    expect(seen).toEqual([1]);
  });
});
