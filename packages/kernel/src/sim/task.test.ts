import { describe, expect, it } from '@jest/globals';
import { EventQueueScheduler } from './scheduler';
import { Task, TaskRunner } from './task';
import { Tracepoints } from './tracepoints';

function setup(hangTurns?: number): { s: EventQueueScheduler; runner: TaskRunner } {
  const s = new EventQueueScheduler();
  return { s, runner: new TaskRunner(s, hangTurns === undefined ? {} : { hangTurns }) };
}

async function hops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

describe('TaskRunner', () => {
  it('interleaves tasks deterministically, equal wake times in sleep-call order', async () => {
    const run = async (): Promise<string[]> => {
      const { s, runner } = setup();
      const log: string[] = [];
      const body =
        (period: number, rounds: number) =>
        async (task: Task): Promise<void> => {
          for (let i = 0; i < rounds; i++) {
            log.push(`${s.now()}:${task.name}`);
            await task.sleep(period);
          }
        };
      runner.spawn('A', body(2, 4));
      runner.spawn('B', body(3, 3));
      await runner.runUntilIdle();
      return log;
    };
    const first = await run();
    // At 6, B's sleep (called at 3) precedes A's (called at 4).
    expect(first).toEqual(['0:A', '0:B', '2:A', '3:B', '4:A', '6:B', '6:A']);
    expect(await run()).toEqual(first);
  });

  it("runs a resumed task's multi-hop continuation before any later event", async () => {
    const { s, runner } = setup();
    const log: string[] = [];
    runner.spawn('t', async (task) => {
      const slept = task.sleep(10);
      s.at(10, () => log.push('event at 10, scheduled after the sleep'));
      s.at(11, () => log.push('event at 11'));
      await slept;
      await hops(5);
      log.push(`task continued at ${s.now()}`);
      await (async () => {
        await hops(3);
        log.push('nested continuation');
      })();
      await task.sleep(5);
      log.push(`task resumed at ${s.now()}`);
    });
    await runner.runFor(100);
    expect(log).toEqual([
      'task continued at 10',
      'nested continuation',
      'event at 10, scheduled after the sleep',
      'event at 11',
      'task resumed at 15',
    ]);
    expect(s.now()).toBe(100);
  });

  it('delays the next sleep by the CPU time charged', async () => {
    const { s, runner } = setup();
    const seen: number[] = [];
    const task = runner.spawn('cpu', async (t) => {
      t.charge(100);
      await t.sleep(10);
      seen.push(s.now());
      t.charge(5);
      await t.yield();
      seen.push(s.now());
      await t.sleep(1);
      seen.push(s.now());
    });
    await runner.runUntilIdle();
    expect(seen).toEqual([110, 115, 116]);
    expect(task.cpuNs).toBe(105);
    expect(task.state).toBe('done');
  });

  it('blocks in wait() until kernel code wakes the task, through the event queue', async () => {
    const { s, runner } = setup();
    let wake: ((v: number) => void) | null = null;
    const got: Array<[number, number]> = [];
    const task = runner.spawn('waiter', async (t) => {
      const v = await t.wait<number>((w) => (wake = w));
      got.push([v, s.now()]);
      t.charge(100);
      const v2 = await t.wait<number>((w) => s.after(30, () => w(7)));
      got.push([v2, s.now()]);
    });
    s.at(50, () => {
      expect(task.state).toBe('blocked');
      wake?.(42);
      wake?.(43); // ignored: only the first wake counts
      expect(task.state).toBe('blocked'); // resumes through the queue, not synchronously
    });
    await runner.runUntilIdle();
    // The second wake comes at 80, but the task owes CPU time until 150.
    expect(got).toEqual([
      [42, 50],
      [7, 150],
    ]);
  });

  it('accepts a wake called synchronously by register and undoes a throwing register', async () => {
    const { s, runner } = setup();
    const log: string[] = [];
    runner.spawn('t', async (t) => {
      log.push(`sync wake: ${await t.wait<string>((w) => w('now'))} at ${s.now()}`);
      try {
        await t.wait(() => {
          throw new Error('no queue');
        });
      } catch (e) {
        log.push(`register threw: ${(e as Error).message}, state ${t.state}`);
      }
      await t.sleep(3);
      log.push(`still works at ${s.now()}`);
    });
    await runner.runUntilIdle();
    expect(log).toEqual([
      'sync wake: now at 0',
      'register threw: no queue, state runnable',
      'still works at 3',
    ]);
  });

  it('join() resumes when the other task ends', async () => {
    const { s, runner } = setup();
    const log: string[] = [];
    const worker = runner.spawn('worker', async (t) => {
      await t.sleep(30);
    });
    runner.spawn('parent', async (t) => {
      await t.join(worker);
      log.push(`joined at ${s.now()}, worker ${worker.state}`);
      await t.join(worker); // already ended: resumes at once
      log.push(`joined again at ${s.now()}`);
    });
    await runner.runUntilIdle();
    expect(log).toEqual(['joined at 30, worker done', 'joined again at 30']);
  });

  it('tracks the current task', async () => {
    const { s, runner } = setup();
    const seen: Array<string | null> = [];
    const name = (): string | null => runner.current?.name ?? null;
    runner.spawn('a', async (t) => {
      seen.push(name());
      await t.sleep(10);
      seen.push(name());
      await hops(2);
      seen.push(name());
    });
    s.at(5, () => seen.push(`event:${name()}`));
    expect(runner.current).toBeNull();
    await runner.runUntilIdle();
    expect(seen).toEqual(['a', 'event:null', 'a', 'a']);
    expect(runner.current).toBeNull();
  });

  it('rejects runFor and task.done with the error a task throws, without unhandled rejections', async () => {
    const { s, runner } = setup();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const boom = new Error('boom');
      const task = runner.spawn('thrower', async (t) => {
        await t.sleep(5);
        throw boom;
      });
      await expect(runner.runFor(100)).rejects.toBe(boom);
      expect(task.state).toBe('failed');
      expect(s.now()).toBe(5);
      await expect(task.done).rejects.toBe(boom);
      // The failure was reported once; the loop keeps working.
      s.after(10, () => undefined);
      await runner.runFor(100);
      expect(s.now()).toBe(105);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('rejects runFor with an exception thrown by a plain event callback', async () => {
    const { s, runner } = setup();
    s.at(1, () => {
      throw new Error('callback failed');
    });
    await expect(runner.runFor(10)).rejects.toThrow('callback failed');
  });

  it('detects a task blocked on a promise that is not a kernel primitive', async () => {
    for (const hangTurns of [1000, undefined]) {
      const { runner } = setup(hangTurns);
      const task = runner.spawn('stuck', async (t) => {
        await t.sleep(1);
        await new Promise<void>(() => undefined);
      });
      await expect(runner.runFor(10)).rejects.toThrow(/task 1 'stuck' did not block/);
      expect(task.state).toBe('failed');
      await expect(task.done).rejects.toThrow(/not a kernel primitive/);
      await runner.runFor(10); // reported once
    }
  });

  it('refuses to block a task that is not running or already blocked', async () => {
    const { runner } = setup();
    const errors: string[] = [];
    const task = runner.spawn('t', async (t) => {
      const first = t.sleep(5);
      try {
        void t.sleep(1);
      } catch (e) {
        errors.push((e as Error).message);
      }
      await first;
    });
    expect(() => task.sleep(1)).toThrow(/not running/);
    await runner.runUntilIdle();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/sleep\(\) called while blocked/);
    expect(() => task.charge(-1)).toThrow(RangeError);
  });

  it('refuses to run the loop from a task or twice at once', async () => {
    const { runner } = setup();
    let inner: unknown = null;
    runner.spawn('t', async () => {
      try {
        await runner.runFor(1);
      } catch (e) {
        inner = e;
      }
    });
    const outer = runner.runFor(10);
    await expect(runner.runFor(10)).rejects.toThrow(/already in progress/);
    await outer;
    expect(String(inner)).toMatch(/already in progress|called from task/);
  });

  it('runUntilIdle(maxNs) stops a model that reschedules itself forever', async () => {
    const { s, runner } = setup();
    let ticks = 0;
    const tick = (): void => {
      ticks++;
      s.after(10, tick);
    };
    s.after(0, tick);
    await runner.runUntilIdle(1000);
    expect(s.now()).toBe(1000);
    expect(ticks).toBe(101);
  });

  it('runUntilIdle without tasks ends at the last event', async () => {
    const { s, runner } = setup();
    s.at(42, () => undefined);
    await runner.runUntilIdle(1000);
    expect(s.now()).toBe(42);
  });

  it('runUntilSync polls events synchronously until the predicate holds', async () => {
    const { s, runner } = setup();
    const log: string[] = [];
    runner.spawn('submitter', async (t) => {
      let done = false;
      s.after(100, () => (done = true));
      log.push(`completed: ${runner.runUntilSync(() => done, 1000)} at ${s.now()}`);
      log.push(`current after poll: ${runner.current?.name}`);
      log.push(`timeout: ${runner.runUntilSync(() => false, 50)} at ${s.now()}`);
      await t.sleep(1);
    });
    await runner.runUntilIdle();
    expect(log).toEqual(['completed: true at 100', 'current after poll: submitter', 'timeout: false at 150']);
  });

  it('emits sched_task on state changes', async () => {
    const s = new EventQueueScheduler();
    const tp = new Tracepoints();
    const runner = new TaskRunner(s, {}, tp);
    const states: string[] = [];
    tp.on('sched_task', (e) => states.push(`${e.task}:${e.name}:${e.state}`));
    runner.spawn('x', async (t) => {
      await t.sleep(1);
    });
    await runner.runUntilIdle();
    expect(states).toEqual(['1:x:runnable', '1:x:blocked', '1:x:runnable', '1:x:done']);
    expect(runner.tasks()).toEqual([]);
  });
});
