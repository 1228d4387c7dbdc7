/**
 * VMA flags (include/linux/mm.h). Values are svasim's own (only the names are kernel ABI);
 * all fit in 31 bits so they combine with plain bitwise operators.
 */
export const VM_NONE = 0;
export const VM_READ = 1 << 0;
export const VM_WRITE = 1 << 1;
export const VM_EXEC = 1 << 2;
export const VM_SHARED = 1 << 3;
export const VM_MAYREAD = 1 << 4;
export const VM_MAYWRITE = 1 << 5;
export const VM_MAYEXEC = 1 << 6;
export const VM_MAYSHARE = 1 << 7;
export const VM_GROWSDOWN = 1 << 8;
export const VM_PFNMAP = 1 << 10;
export const VM_LOCKONFAULT = 1 << 12;
export const VM_LOCKED = 1 << 13;
export const VM_IO = 1 << 14;
export const VM_DONTCOPY = 1 << 17;
export const VM_DONTEXPAND = 1 << 18;
export const VM_NORESERVE = 1 << 21;
export const VM_HUGETLB = 1 << 22;
export const VM_WIPEONFORK = 1 << 24;
export const VM_DONTDUMP = 1 << 25;
export const VM_MIXEDMAP = 1 << 28;
export const VM_HUGEPAGE = 1 << 29;
export const VM_NOHUGEPAGE = 1 << 30;
/** The mapping's pages are charged to Committed_AS (vm_enough_memory). */
export const VM_ACCOUNT = 1 << 20;
/** svasim: a device mapping whose pages are the device's (uacce MMIO/DUS). */
export const VM_DEVICE = 1 << 11;

export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;
/** Mappings that are not ordinary memory: no GUP, no migration, no COW. */
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
export const VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT;

const NAMES: Array<[number, string]> = [
  [VM_READ, 'rd'],
  [VM_WRITE, 'wr'],
  [VM_EXEC, 'ex'],
  [VM_SHARED, 'sh'],
  [VM_MAYREAD, 'mr'],
  [VM_MAYWRITE, 'mw'],
  [VM_MAYEXEC, 'me'],
  [VM_MAYSHARE, 'ms'],
  [VM_PFNMAP, 'pf'],
  [VM_LOCKED, 'lo'],
  [VM_LOCKONFAULT, 'lf'],
  [VM_IO, 'io'],
  [VM_DONTCOPY, 'dc'],
  [VM_DONTEXPAND, 'de'],
  [VM_NORESERVE, 'nr'],
  [VM_ACCOUNT, 'ac'],
  [VM_HUGETLB, 'ht'],
  [VM_WIPEONFORK, 'wf'],
  [VM_HUGEPAGE, 'hg'],
  [VM_NOHUGEPAGE, 'nh'],
  [VM_MIXEDMAP, 'mm'],
];

/** vmFlagsString - the two-letter codes of /proc/PID/smaps "VmFlags:". */
export function vmFlagsString(flags: number): string {
  return NAMES.filter(([bit]) => flags & bit)
    .map(([, n]) => n)
    .join(' ');
}
