/**
 * The small pieces every fuzz command file shares: picking a process and a page from generated
 * numbers, turning a syscall's outcome into an errno name, comparing bytes, and the invariant
 * check run after every step.
 */
import fc from 'fast-check';
import { SyscallError, type MmCore } from '@svasim/kernel';
import type { MmReal } from './mm-commands';
import type { MmModel, ProcModel } from './mm-model';

/** An address nothing is ever mapped at (below the mmap area, above mmap_min_addr). */
export const UNMAPPED = 0x40000000;

/** A generated number commands use to pick a process, page or queue (taken modulo the choices). */
export const pick = fc.nat({ max: 1_000_000 });

/** errnoOf - 'OK', or the errno name of the SyscallError `fn` throws (anything else propagates). */
export function errnoOf(fn: () => void): string {
  try {
    fn();
    return 'OK';
  } catch (e) {
    if (e instanceof SyscallError) return e.code;
    throw e;
  }
}

/** check - kernel.checkInvariants() must find nothing after `what`. */
export function check(real: MmReal, what: string): void {
  const v = real.kernel.checkInvariants();
  if (v.length) throw new Error(`invariants broken after ${what}:\n  ${v.slice(0, 10).join('\n  ')}`);
}

/** expectCode - the outcome `got` must be `want`. */
export function expectCode(got: string, want: string, what: string): void {
  if (got !== want) throw new Error(`${what}: expected ${want}, got ${got}`);
}

/** slotOf - a live process slot from a generated number. */
export function slotOf(m: MmModel, pick: number): number {
  const live = m.live();
  return live[pick % live.length];
}

/** pageOf - a mapped page of `p` (or the unmapped probe address when nothing is mapped). */
export function pageOf(p: ProcModel, pick: number): number {
  if (p.pages.size === 0) return UNMAPPED;
  const vas = [...p.pages.keys()].sort((a, b) => a - b);
  return vas[pick % vas.length];
}

export const hex = (n: number) => `0x${n.toString(16)}`;

/** firstDiff - the first index where two byte arrays differ (`got` undefined reads as zeroes), or -1. */
export function firstDiff(got: Uint8Array | undefined, want: Uint8Array): number {
  const n = want.length;
  if (!got) {
    for (let i = 0; i < n; i++) if (want[i] !== 0) return i;
    return -1;
  }
  for (let i = 0; i < n; i++) if (got[i] !== want[i]) return i;
  return -1;
}

/** sameBytes - physical page `pfn` must hold `want`. */
export function sameBytes(core: MmCore, pfn: number, want: Uint8Array, what: string): void {
  const got = core.data.view(pfn);
  const i = firstDiff(got, want);
  if (i >= 0) throw new Error(`${what}: pfn ${pfn} byte ${i} is ${got ? got[i] : 0}, expected ${want[i]}`);
}
