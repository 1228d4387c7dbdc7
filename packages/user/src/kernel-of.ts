/**
 * Finding the kernel a Process runs on. API.md's openContext(proc, alg) takes no kernel, and a
 * Process does not expose one, so the library resolves it in this order:
 *
 *  1. `opts.kernel` when the caller passes it (always works; preferred in new code);
 *  2. a kernel registered with registerKernel() whose process list holds `proc`;
 *  3. the Process's host: Kernel.spawn() hands the Kernel itself to the Process as its
 *     ProcessHost, so when that host is a Kernel it is the one. This keeps
 *     `openContext(proc, alg)` working with no set-up.
 *
 * Nothing found: SyscallError ENODEV (no device reachable from this process).
 */
import { ERRNO, Kernel, SyscallError, type Process } from '@svasim/kernel';

const registered = new Set<Kernel>();

/** registerKernel - make @k discoverable from its processes; returns an unregister function. */
export function registerKernel(k: Kernel): () => void {
  registered.add(k);
  return () => void registered.delete(k);
}

/** kernelOf - the kernel running @proc (see the file comment for the order). */
export function kernelOf(proc: Process, explicit?: Kernel): Kernel {
  if (explicit) return explicit;
  for (const k of registered) if (k.processList().includes(proc)) return k;
  if (proc.host instanceof Kernel) return proc.host;
  throw new SyscallError(-ERRNO.ENODEV, 'openContext', `no kernel known for process ${proc.pid}`);
}
