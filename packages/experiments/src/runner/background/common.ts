/**
 * Helpers the background activities share: running a body as a kernel task from the activity's
 * start time, and telling expected failures (a syscall refused under pressure) from bugs.
 */
import { KernelError, SyscallError, type Task } from '@svasim/kernel';
import { parseDuration } from '../../scenario';
import { sleepUntil, type ActivityContext } from '../activity';

/**
 * runActivity - spawn kernel task @name running @body from the activity's @start time (a
 * duration from boot); the body's CPU charges delay only this task.
 */
export function runActivity(
  ctx: ActivityContext,
  name: string,
  start: number | string,
  body: (task: Task) => Promise<void>,
): Task {
  const at = parseDuration(start);
  return ctx.kernel.tasks.spawn(name, async (task) => {
    await sleepUntil(ctx.kernel, task, at);
    if (ctx.running()) await body(task);
  });
}

/**
 * expectedFailure - whether @e is the simulated system saying no (a SyscallError or
 * KernelError: ENOMEM under pressure, EBUSY...), which an activity counts, rather than a bug,
 * which it lets through to fail the run.
 */
export function expectedFailure(e: unknown): e is SyscallError | KernelError {
  return e instanceof SyscallError || e instanceof KernelError;
}
