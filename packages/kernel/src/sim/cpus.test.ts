import { describe, expect, it } from '@jest/globals';
import { CPU_ANY, CpuSet } from './cpus';
import { EventQueueScheduler } from './scheduler';

/** Run every event. */
function drain(s: EventQueueScheduler): void {
  s.runUntil(Infinity);
}

describe('CpuSet', () => {
  it('runs an unbound item on the lowest free CPU and calls back when its cost has elapsed', () => {
    const s = new EventQueueScheduler();
    const cpus = new CpuSet(s, 2);
    const log: string[] = [];
    s.at(100, () =>
      cpus.runOn(CPU_ANY, 50, (arg, cpu) => log.push(`${s.now()}:${arg as string}@${cpu}`), 'a'),
    );
    drain(s);
    expect(log).toEqual(['150:a@0']);
    expect(cpus.busyNs(0)).toBe(50);
    expect(cpus.busyNs(1)).toBe(0);
    expect(cpus.completedItems(0)).toBe(1);
    expect(cpus.idle(0)).toBe(true);
  });

  it('spreads items over free CPUs and queues the rest for the first CPU to free', () => {
    const s = new EventQueueScheduler();
    const cpus = new CpuSet(s, 2);
    const log: string[] = [];
    const done = (arg: unknown, cpu: number): void => {
      log.push(`${s.now()}:${arg as string}@${cpu}`);
    };
    cpus.runOn(CPU_ANY, 100, done, 'a');
    cpus.runOn(CPU_ANY, 30, done, 'b');
    cpus.runOn(CPU_ANY, 10, done, 'c');
    expect(cpus.queued()).toBe(3);
    drain(s);
    // a on CPU 0 (0-100), b on CPU 1 (0-30), c waits for CPU 1 (30-40).
    expect(log).toEqual(['30:b@1', '40:c@1', '100:a@0']);
    expect(cpus.busyNs(0)).toBe(100);
    expect(cpus.busyNs(1)).toBe(40);
    expect(cpus.totalBusyNs()).toBe(140);
  });

  it('gives a queued item to the lowest CPU among those that free at the same instant', () => {
    const s = new EventQueueScheduler();
    const cpus = new CpuSet(s, 3);
    const log: string[] = [];
    const done = (arg: unknown, cpu: number): void => {
      log.push(`${s.now()}:${arg as string}@${cpu}`);
    };
    // CPU 2 is handed its item first, so its completion event is older than CPU 0's.
    cpus.runOn(2, 50, done, 'x');
    cpus.runOn(1, 80, done, 'y');
    s.after(0, () => cpus.runOn(0, 50, done, 'z'));
    s.at(10, () => cpus.runOn(CPU_ANY, 5, done, 'w'));
    drain(s);
    expect(log).toContain('55:w@0');
  });

  it('keeps bound items on their CPU, in order, even when others are idle', () => {
    const s = new EventQueueScheduler();
    const cpus = new CpuSet(s, 4);
    const log: string[] = [];
    const done = (arg: unknown, cpu: number): void => {
      log.push(`${s.now()}:${arg as string}@${cpu}`);
    };
    cpus.runOn(3, 20, done, 'a');
    cpus.runOn(3, 20, done, 'b');
    drain(s);
    expect(log).toEqual(['20:a@3', '40:b@3']);
    expect(cpus.busyNs(3)).toBe(40);
    expect(cpus.busyNs(0) + cpus.busyNs(1) + cpus.busyNs(2)).toBe(0);
  });

  it('runs a CpuWork at the start of the item and takes the cost it returns', () => {
    const s = new EventQueueScheduler();
    const cpus = new CpuSet(s, 1);
    const log: string[] = [];
    s.at(7, () =>
      cpus.runOn(
        CPU_ANY,
        (arg, cpu) => {
          log.push(`start ${s.now()} ${arg as string}@${cpu}`);
          return 25;
        },
        (arg) => log.push(`done ${s.now()} ${arg as string}`),
        'job',
      ),
    );
    drain(s);
    expect(log).toEqual(['start 7 job@0', 'done 32 job']);
  });

  it('reports busy time and utilisation up to now, not including the part of an item still ahead', () => {
    const s = new EventQueueScheduler();
    const cpus = new CpuSet(s, 2);
    cpus.runOn(0, 1000, null);
    s.runUntil(400);
    expect(cpus.busyNs(0)).toBe(400);
    expect(cpus.busyUntil(0)).toBe(1000);
    expect(cpus.idle(0)).toBe(false);
    expect(cpus.runningItems()).toBe(1);
    s.runUntil(2000);
    expect(cpus.busyNs(0)).toBe(1000);
    expect(cpus.utilisation(0)).toBeCloseTo(0.5);
    expect(cpus.utilisation()).toBeCloseTo(0.25);
  });

  it('lets a completion callback submit more work', () => {
    const s = new EventQueueScheduler();
    const cpus = new CpuSet(s, 1);
    const ends: number[] = [];
    let left = 3;
    const again = (): void => {
      ends.push(s.now());
      if (--left > 0) cpus.runOn(CPU_ANY, 10, again);
    };
    cpus.runOn(CPU_ANY, 10, again);
    drain(s);
    expect(ends).toEqual([10, 20, 30]);
  });

  it('rejects bad CPUs, counts and costs', () => {
    const s = new EventQueueScheduler();
    expect(() => new CpuSet(s, 0)).toThrow(RangeError);
    const cpus = new CpuSet(s, 2);
    expect(() => cpus.runOn(2, 1, null)).toThrow(RangeError);
    expect(() => cpus.runOn(-1, 1, null)).toThrow(RangeError);
    expect(() => cpus.runOn(CPU_ANY, -1, null)).toThrow(RangeError);
    expect(() => cpus.runOn(CPU_ANY, NaN, null)).toThrow(RangeError);
    expect(() => cpus.busyNs(5)).toThrow(RangeError);
    cpus.runOn(CPU_ANY, () => -5, null);
    expect(() => drain(s)).toThrow(RangeError);
  });

  it('is deterministic: the same submissions give the same schedule', () => {
    const run = (): string[] => {
      const s = new EventQueueScheduler();
      const cpus = new CpuSet(s, 3);
      const log: string[] = [];
      for (let i = 0; i < 20; i++)
        s.at(i * 7, () =>
          cpus.runOn(
            i % 5 === 0 ? i % 3 : CPU_ANY,
            (i * 37) % 50,
            (arg, cpu) => log.push(`${s.now()}:${String(arg)}@${cpu}`),
            i,
          ),
        );
      drain(s);
      return log;
    };
    expect(run()).toEqual(run());
  });
});
