import type { TaskRunner } from './task';
import type { Tracepoints } from './tracepoints';
import type { IDmesg, IRngStreams, IScheduler, IVmstat } from './types';

/**
 * Token - an injection token (a tsyringe symbol token) that remembers, as a phantom type, what
 * it resolves to, so a typed resolve<T>(token: Token<T>) helper needs no cast at call sites.
 */
export type Token<T> = symbol & { __type?: T };

/** SCHEDULER - the clock and event queue (EventQueueScheduler unless a host supplies its own). */
export const SCHEDULER = Symbol.for('@svasim/kernel/sim/Scheduler') as Token<IScheduler>;
/** RNG_STREAMS - the kernel's named random streams. */
export const RNG_STREAMS = Symbol.for('@svasim/kernel/sim/RngStreams') as Token<IRngStreams>;
/** VMSTAT - the vmstat counters. */
export const VMSTAT = Symbol.for('@svasim/kernel/sim/Vmstat') as Token<IVmstat>;
/** DMESG - the kernel log ring. */
export const DMESG = Symbol.for('@svasim/kernel/sim/Dmesg') as Token<IDmesg>;
/** TRACEPOINTS - the typed tracepoints. */
export const TRACEPOINTS = Symbol.for('@svasim/kernel/sim/Tracepoints') as Token<Tracepoints>;
/** TASK_RUNNER - the simulated tasks and the async run loop. */
export const TASK_RUNNER = Symbol.for('@svasim/kernel/sim/TaskRunner') as Token<TaskRunner>;
