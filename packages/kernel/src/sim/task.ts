import type { Tracepoints } from './tracepoints';
import type { IScheduler } from './types';

/** TaskState - where a task is: scheduled or running, blocked on a kernel primitive, or ended. */
export type TaskState = 'runnable' | 'blocked' | 'done' | 'failed';

/** TaskBody - the code of a task; it blocks only through the Task it is given (see TaskRunner). */
export type TaskBody = (task: Task) => Promise<void>;

/** TaskRunnerConfig - tunables of the run loop. */
export interface TaskRunnerConfig {
  /**
   * Microtask turns (turns) a resumed task may take before it must block on a kernel primitive
   * or finish; beyond it the task is declared hung. Bounds detection time, not correct programs:
   * a continuation takes a handful of turns.
   */
  hangTurns: number;
}

/** TASK_RUNNER_DEFAULTS - defaults of TaskRunnerConfig. */
export const TASK_RUNNER_DEFAULTS: Readonly<TaskRunnerConfig> = Object.freeze({ hangTurns: 100_000 });

/** The event that starts a spawned task; one shared function so spawning allocates no closure. */
function startEvent(arg: unknown): void {
  (arg as Task)._start();
}

/** The event that resumes a blocked task. */
function resumeEvent(arg: unknown): void {
  (arg as Task)._resume();
}

/**
 * Task - a simulated thread of execution: an async function resumed by the event loop in
 * simulated time.
 *
 * Synchronous kernel calls made by the task charge() CPU time; the time is owed ("debt") and
 * elapses when the task next blocks, so a burst of syscalls costs simulated time without a
 * scheduler event per call. A task blocks only through sleep(), yield(), wait() and join(); each
 * returns a promise the run loop settles in simulated time. Each block is released by the event
 * that resumes it: the timer for sleep(), wake() for wait(), the other task's end for join().
 */
export class Task {
  private taskState: TaskState = 'runnable';
  private cpu = 0;
  /** CPU time charged but not yet elapsed. */
  private debtNs = 0;
  /** Resolves the promise the task is blocked on. */
  private resolveBlock: ((value: unknown) => void) | null = null;
  /** What the pending resume delivers (wait()'s wake value). */
  private resumeValue: unknown = undefined;
  /** Id of the scheduled resume event, 0 when none. */
  private resumeId = 0;
  /** Bumped at every block so a stale wake() from an earlier wait() is ignored. */
  private blockSeq = 0;
  private joiners: Array<(value: undefined) => void> = [];
  private resolveDone!: () => void;
  private rejectDone!: (error: unknown) => void;
  /** Runs one microtask before the task's own continuation: makes the task current again. */
  private readonly enter: (value: unknown) => unknown;

  /** @internal Whether the task counts as running for the run loop's quiescence count. */
  _counted = false;

  /**
   * Settles when the body returns (fulfilled) or throws (rejected with its error). A rejection
   * is also reported by the run loop, so nobody is obliged to observe this promise.
   */
  readonly done: Promise<void>;

  /** @internal Tasks are made by TaskRunner.spawn(). */
  constructor(
    private readonly runner: TaskRunner,
    /** Unique within its runner, from 1, in spawn order. */
    readonly id: number,
    /** For logs, traces and hang reports. */
    readonly name: string,
    private readonly body: TaskBody,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Rejections are reported through the run loop; keep the promise from counting as unhandled.
    this.done.catch(() => undefined);
    this.enter = (value) => {
      runner._enter(this);
      return value;
    };
  }

  /** Current state; 'runnable' covers both scheduled-to-run and running. */
  get state(): TaskState {
    return this.taskState;
  }

  /** Total CPU time charged to the task (ns). */
  get cpuNs(): number {
    return this.cpu;
  }

  /**
   * charge - account @ns of CPU time spent by a synchronous call made on behalf of this task.
   *
   * The time is added to cpuNs and owed: the next sleep/yield/wait resumes that much later.
   * Throws RangeError for NaN, negative or infinite @ns.
   */
  charge(ns: number): void {
    if (!(ns >= 0 && ns !== Infinity)) throw new RangeError(`task.charge(${ns}): must be >= 0`);
    this.cpu += ns;
    this.debtNs += ns;
  }

  /**
   * sleep - block for @ns of simulated time after the owed CPU time (now + debt + ns).
   *
   * Return: a promise the run loop resolves at that time; the timer event releases the block.
   * Throws RangeError for NaN, negative or infinite @ns, Error when the task is not running.
   */
  sleep(ns: number): Promise<void> {
    this.checkRunning('sleep');
    if (!(ns >= 0 && ns !== Infinity)) throw new RangeError(`task.sleep(${ns}): must be >= 0`);
    const scheduler = this.runner.scheduler;
    const when = scheduler.now() + this.debtNs + ns;
    this.debtNs = 0;
    const blocked = this.block();
    this.resumeId = scheduler.at(when, resumeEvent, this);
    return blocked as Promise<void>;
  }

  /**
   * yield - let every other event due now run first; pays owed CPU time (sleep(0)).
   *
   * Return: a promise resolved by the run loop.
   */
  yield(): Promise<void> {
    return this.sleep(0);
  }

  /**
   * wait - block until kernel code calls wake(value), as a task sleeps on a wait queue.
   * @register: called at once with wake; it stores wake where the completion will find it
   *   (a request, a wait queue). It may call wake synchronously.
   *
   * Calling wake schedules the resume through the event queue at the current time (or when the
   * owed CPU time has elapsed, if later), so the wakee runs after the waker's event, in
   * deterministic order. Only the first wake counts; later calls are ignored.
   *
   * Return: a promise of the value passed to wake; wake() releases the block. If @register
   * throws, the task is not blocked and the error propagates.
   */
  wait<T>(register: (wake: (value: T) => void) => void): Promise<T> {
    this.checkRunning('wait');
    const scheduler = this.runner.scheduler;
    const earliest = scheduler.now() + this.debtNs;
    const debt = this.debtNs;
    this.debtNs = 0;
    const blocked = this.block();
    const seq = this.blockSeq;
    let woken = false;
    const wake = (value: T): void => {
      if (woken) return;
      woken = true;
      if (this.blockSeq !== seq || this.taskState !== 'blocked') return;
      this.resumeValue = value;
      this.resumeId = scheduler.at(Math.max(scheduler.now(), earliest), resumeEvent, this);
    };
    try {
      register(wake);
    } catch (error) {
      if (this.resumeId !== 0) scheduler.cancel(this.resumeId);
      this.resumeId = 0;
      this.resumeValue = undefined;
      this.resolveBlock = null;
      this.debtNs = debt;
      this.taskState = 'runnable';
      this.runner._count(this);
      this.runner._enter(this);
      this.trace();
      throw error;
    }
    return blocked as Promise<T>;
  }

  /**
   * join - block until task @other has ended (done or failed; look at other.state).
   *
   * Return: a promise resolved by the run loop once @other ended; the end releases the block.
   */
  join(other: Task): Promise<void> {
    return this.wait<undefined>((wake) => {
      if (other.state === 'done' || other.state === 'failed') wake(undefined);
      else other.joiners.push(wake);
    });
  }

  private checkRunning(what: string): void {
    if (this.taskState !== 'runnable' || !this._counted) {
      throw new Error(
        `task ${this.id} '${this.name}': ${what}() called while ${this.taskState === 'runnable' ? 'not running' : this.taskState}` +
          ' (a task blocks on one kernel primitive at a time, from its own code)',
      );
    }
  }

  /** Mark the task blocked and return the promise its resume will resolve. */
  private block(): Promise<unknown> {
    this.taskState = 'blocked';
    this.blockSeq++;
    this.runner._uncount(this);
    this.trace();
    return new Promise<unknown>((resolve) => {
      this.resolveBlock = resolve;
    }).then(this.enter);
  }

  /** @internal The start event: the body runs one microtask later, as a resumed task would. */
  _start(): void {
    this.runner._count(this);
    this.trace();
    void Promise.resolve()
      .then(() => {
        this.runner._enter(this);
        return this.body(this);
      })
      .then(
        () => this.finish(),
        (error: unknown) => this._abort(error),
      );
  }

  /** @internal The resume event: unblocks the task; its continuation runs in the next microtasks. */
  _resume(): void {
    this.resumeId = 0;
    if (this.taskState !== 'blocked') return;
    const resolve = this.resolveBlock as (value: unknown) => void;
    const value = this.resumeValue;
    this.resolveBlock = null;
    this.resumeValue = undefined;
    this.taskState = 'runnable';
    this.runner._count(this);
    this.trace();
    resolve(value);
  }

  private finish(): void {
    if (this.taskState === 'failed') return; // declared hung earlier; its late end changes nothing
    this.end('done');
    this.resolveDone();
  }

  /** @internal The body threw, or the run loop declared the task hung: end it as failed. */
  _abort(error: unknown): void {
    if (this.taskState === 'failed') return;
    this.end('failed');
    this.rejectDone(error);
    this.runner._fail(this, error);
  }

  private end(state: 'done' | 'failed'): void {
    if (this.resumeId !== 0) this.runner.scheduler.cancel(this.resumeId);
    this.resumeId = 0;
    this.resolveBlock = null;
    this.taskState = state;
    this.runner._uncount(this);
    this.runner._retire(this);
    this.trace();
    const joiners = this.joiners;
    this.joiners = [];
    for (const wake of joiners) wake(undefined);
  }

  private trace(): void {
    const tp = this.runner.tracepoints;
    if (tp !== null && tp.enabled('sched_task')) {
      tp.emit('sched_task', { task: this.id, name: this.name, state: this.taskState });
    }
  }
}

/**
 * TaskRunner - spawns tasks and runs the event loop that interleaves them with plain events.
 *
 * The loop fires one event at a time. When an event resumes a task, the task's continuation (a
 * promise continuation, possibly several microtask hops deep) must run before any later event, or
 * the simulated order would depend on promise plumbing. The runner keeps an exact count of tasks
 * that are running (resumed and not yet blocked or ended); after an event, if the count is not
 * zero, the loop yields microtask turns until it is. Plain callback events pay no await.
 *
 * Rule: tasks block only on kernel primitives (Task.sleep, yield, wait, join, and kernel APIs
 * built on them). A task awaiting any other promise that never settles within
 * config.hangTurns microtask turns (a timer, real I/O, a promise nobody resolves) is declared
 * hung: it fails, and the pending runFor/runUntilIdle rejects with an Error naming it.
 *
 * An exception thrown by a task body rejects task.done and makes the pending (or next)
 * runFor/runUntilIdle reject with that error, so tests fail loudly.
 */
export class TaskRunner {
  private readonly config: TaskRunnerConfig;
  private nextId = 1;
  /** Tasks resumed (or started) whose code has not yet blocked or ended. */
  private running = 0;
  private readonly live = new Set<Task>();
  private failure: { error: unknown } | null = null;
  private looping = false;
  private currentTask: Task | null = null;

  /**
   * @scheduler: the clock and event queue the tasks run on.
   * @config: overrides of TASK_RUNNER_DEFAULTS.
   * @tracepoints: where to emit `sched_task`, if anywhere.
   */
  constructor(
    readonly scheduler: IScheduler,
    config: Partial<TaskRunnerConfig> = {},
    readonly tracepoints: Tracepoints | null = null,
  ) {
    this.config = { ...TASK_RUNNER_DEFAULTS, ...config };
  }

  /**
   * current - the task whose code is running synchronously right now, or null (plain events,
   * code outside the loop). Set when a task starts or resumes, cleared when it blocks or ends;
   * synchronous syscalls charge() it.
   */
  get current(): Task | null {
    return this.currentTask;
  }

  /**
   * spawn - create a task running @body, started by an event at the current time (so tasks
   * spawned together start in spawn order).
   *
   * Return: the task; it ends when @body returns or throws (task.done), there is nothing to
   * release.
   */
  spawn(name: string, body: TaskBody): Task {
    const task = new Task(this, this.nextId++, name, body);
    this.live.add(task);
    this.scheduler.after(0, startEvent, task);
    return task;
  }

  /** tasks - the tasks spawned and not yet ended, in spawn order. */
  tasks(): Task[] {
    return [...this.live];
  }

  /**
   * runFor - run events and tasks for @ns of simulated time, then set the clock to now + @ns.
   *
   * Return: a promise that resolves when done; rejects with a task's error, a callback's
   * exception or a hung-task Error. Throws when called from a task or while another run is
   * pending.
   */
  async runFor(ns: number): Promise<void> {
    if (!(ns >= 0)) throw new RangeError(`runFor(${ns}): must be >= 0`);
    const limit = this.scheduler.now() + Math.round(ns);
    await this.loop(limit, false);
    this.scheduler.runUntil(limit);
  }

  /**
   * runUntilIdle - run until no foreground event is pending (background daemons do not count).
   * @maxNs: optional guard against models that reschedule themselves forever: stop at
   *   now + @maxNs (the clock is then set to it). Without it an endless model never returns.
   *
   * Return: a promise resolved when idle or at the guard; rejects as runFor() does. Tasks
   * still blocked in wait() when the queue empties stay blocked (see tasks()).
   */
  async runUntilIdle(maxNs?: number): Promise<void> {
    if (maxNs !== undefined && !(maxNs >= 0)) throw new RangeError(`runUntilIdle(${maxNs}): must be >= 0`);
    const limit = maxNs === undefined ? Infinity : this.scheduler.now() + Math.round(maxNs);
    await this.loop(limit, true);
    if (limit !== Infinity && this.scheduler.pending() > 0) this.scheduler.runUntil(limit);
  }

  /**
   * runUntilSync - synchronously fire events until @pred() holds, for synchronous "submit and
   * poll until done" APIs called from task code.
   * @pred: checked before each event.
   * @maxNs: give up after this much simulated time; the clock is then set to now + @maxNs
   *   (Infinity: give up only when no event is left).
   *
   * Task continuations do not run inside it (they are promise continuations, which run only
   * after the synchronous caller returns): a task resumed here runs once the caller blocks, so
   * @pred must depend on plain event callbacks (device completions), not on other tasks.
   *
   * Return: true when @pred() became true, false on timeout or when no event is left.
   */
  runUntilSync(pred: () => boolean, maxNs: number): boolean {
    if (!(maxNs >= 0)) throw new RangeError(`runUntilSync(maxNs=${maxNs}): must be >= 0`);
    const scheduler = this.scheduler;
    const limit = scheduler.now() + maxNs;
    while (!pred()) {
      if (!(scheduler.nextEventTime() <= limit && scheduler.step())) {
        if (limit !== Infinity) scheduler.runUntil(limit);
        return false;
      }
    }
    return true;
  }

  /** Run events up to @limit; with @untilIdle, stop as soon as only background events remain. */
  private async loop(limit: number, untilIdle: boolean): Promise<void> {
    if (this.looping) throw new Error('TaskRunner: a run is already in progress (runFor/runUntilIdle nest)');
    if (this.currentTask !== null) {
      throw new Error(`TaskRunner: run called from task ${this.currentTask.id} '${this.currentTask.name}'`);
    }
    this.looping = true;
    try {
      const scheduler = this.scheduler;
      if (this.running > 0) await this.settle();
      this.rethrow();
      // step() is checked too: an empty queue reports Infinity, which is <= an Infinity limit.
      while (
        (!untilIdle || scheduler.pending() > 0) &&
        scheduler.nextEventTime() <= limit &&
        scheduler.step()
      ) {
        if (this.running > 0) await this.settle();
        if (this.failure !== null) this.rethrow();
      }
    } finally {
      this.looping = false;
    }
  }

  /** Yield microtask turns until every resumed task has blocked or ended. */
  private async settle(): Promise<void> {
    const limit = this.config.hangTurns;
    for (let turn = 0; turn < limit; turn++) {
      await undefined;
      if (this.running === 0) return;
    }
    this.hung();
  }

  private hung(): never {
    const stuck = [...this.live].filter((t) => t._counted);
    const names = stuck.map((t) => `task ${t.id} '${t.name}'`).join(', ');
    const error = new Error(
      `${names || 'a task'} did not block within ${this.config.hangTurns} microtask turns: it awaits a promise ` +
        'that is not a kernel primitive (tasks block only on sleep/yield/wait/join)',
    );
    for (const task of stuck) task._abort(error);
    this.failure = null; // reported by the throw below, not again at the next run
    throw error;
  }

  private rethrow(): void {
    const failure = this.failure;
    if (failure === null) return;
    this.failure = null;
    throw failure.error;
  }

  /** @internal A task started or resumed. */
  _count(task: Task): void {
    if (task._counted) return;
    task._counted = true;
    this.running++;
  }

  /** @internal A task blocked or ended. */
  _uncount(task: Task): void {
    if (this.currentTask === task) this.currentTask = null;
    if (!task._counted) return;
    task._counted = false;
    this.running--;
  }

  /** @internal A task's code is about to run. */
  _enter(task: Task): void {
    this.currentTask = task;
  }

  /** @internal A task ended. */
  _retire(task: Task): void {
    this.live.delete(task);
  }

  /** @internal A task body threw: keep the first error for the run loop to report. */
  _fail(_task: Task, error: unknown): void {
    if (this.failure === null) this.failure = { error };
  }
}
