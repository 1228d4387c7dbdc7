import {
  createKernel,
  formatBytes,
  MADV_DONTFORK,
  PAGE_SIZE,
  PROT_READ,
  SyscallError,
  type Kernel,
  type KernelOptions,
} from '@svasim/kernel';

/** Where the demo writes its lines. */
export type Print = (line: string) => void;

function counters(k: Kernel, names: string[]): string {
  const v = k.vmstat();
  return names.map((n) => `${n}=${v[n] ?? 0}`).join(' ');
}

function us(ns: number): string {
  return `${(ns / 1000).toFixed(1)} us`;
}

/**
 * runDemo - boot the default machine and walk one process through the basics of the memory
 * model: first-touch faults (zero page, then real pages), fork with copy-on-write, the COW
 * break on the child's write, a SIGSEGV-style EFAULT, and exit freeing everything. Prints what
 * happens and returns the kernel's invariant violations (none when all is well).
 */
export function runDemo(print: Print, options: KernelOptions = {}): string[] {
  const k = createKernel(options);
  print(k.bootSummary());
  print('');
  const freeAtBoot = k.vmstat().nr_free_pages;
  const p = k.spawn({ name: 'demo' });
  const len = 64 * PAGE_SIZE;
  const buf = p.mmap(len);
  print(
    `[pid ${p.pid}] mmap ${formatBytes(len)} anonymous at 0x${buf.toString(16)}: nothing resident (VmRSS ${formatBytes(p.status().vmRss)})`,
  );

  p.touch(buf, len);
  const zero = p.pagemap(buf);
  print(
    `[pid ${p.pid}] read every page: ${counters(k, ['pgfault', 'zero_page_fault'])}; page 0 maps the shared zero page (pfn ${zero.pfn}), VmRSS ${formatBytes(p.status().vmRss)}`,
  );

  p.write(buf, new TextEncoder().encode('hello from the parent'));
  p.touch(buf, len, { write: true });
  const own = p.pagemap(buf);
  print(
    `[pid ${p.pid}] write every page: each write fault allocates a zeroed page; page 0 is now pfn ${own.pfn} (${own.zone}, ${own.migratetype}), VmRSS ${formatBytes(p.status().vmRss)}, CPU charged ${us(p.cpuNs)}`,
  );

  const child = p.fork();
  const shared = child.pagemap(buf).pfn === p.pagemap(buf).pfn;
  print(
    `[pid ${child.pid}] fork: the child maps the parent's pages copy-on-write (same pfn: ${shared}); it reads "${new TextDecoder().decode(child.read(buf, 21))}"`,
  );

  const before = k.vmstat().cow_fault ?? 0;
  child.write(buf, new TextEncoder().encode('child'));
  print(
    `[pid ${child.pid}] write: COW break (cow_fault +${(k.vmstat().cow_fault ?? 0) - before}); child pfn ${child.pagemap(buf).pfn}, parent keeps pfn ${p.pagemap(buf).pfn}`,
  );
  print(
    `  parent reads "${new TextDecoder().decode(p.read(buf, 21))}", child reads "${new TextDecoder().decode(child.read(buf, 21))}"`,
  );

  p.madvise(buf + 32 * PAGE_SIZE, 32 * PAGE_SIZE, MADV_DONTFORK);
  const second = p.fork();
  try {
    second.read(buf + 40 * PAGE_SIZE, 1);
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    print(
      `[pid ${second.pid}] MADV_DONTFORK half of the buffer, fork again: the new child's access there fails with ${e.code} (${e.syscall})`,
    );
  }
  try {
    p.mprotect(buf, PAGE_SIZE, PROT_READ);
    p.write(buf, new Uint8Array([1]));
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    print(`[pid ${p.pid}] mprotect(PROT_READ) then write: ${e.code}, the process carries on`);
  }

  for (const q of [second, child, p]) q.exit();
  const leaked = freeAtBoot - k.vmstat().nr_free_pages;
  print(
    `exit all: ${leaked === 0 ? 'every page freed' : `${leaked} pages leaked`}; ${counters(k, ['pgfault', 'cow_fault', 'pgalloc', 'pgfree'])}`,
  );
  const violations = k.checkInvariants();
  print(`invariants: ${violations.length === 0 ? 'all hold' : violations.join('; ')}`);
  return violations;
}
