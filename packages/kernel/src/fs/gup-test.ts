/**
 * The gup_test debug device (mm/gup_test.c, mm/gup_test.h): /sys/kernel/debug/gup_test, mode 0600
 * root, through which the kernel's GUP selftests (gup_test, gup_longterm) drive get_user_pages /
 * pin_user_pages on the calling process's memory.
 *
 * Differences from the kernel: the PIN_LONGTERM_TEST state is per open file (the kernel keeps one
 * global set of pages under a mutex); get_delta_usec / put_delta_usec report the simulated CPU
 * time the calls were charged (GUP costs, faults, migrations), not wall time.
 */
import { ERRNO } from '../uapi/errno';
import { _IO, _IOW, _IOWR } from '../uapi/ioctl';
import { PAGE_SIZE } from '../uapi/mman';
import type { DeviceCore } from '../base/device-core';
import {
  FOLL_LONGTERM,
  FOLL_WRITE,
  folioIsLongtermPinnable,
  getUserPages,
  getUserPagesFast,
  gupPutPages,
  pinUserPages,
  pinUserPagesFast,
  unpinUserPages,
} from '../gup';
import type { MmCore } from '../mm/mm-core';
import { MmStruct } from '../mm/mm-struct';
import { pageFlagNames, PG_tail } from '../mm/page-flags';
import { folioHead, folioMaybeDmaPinned } from '../mm/page-ref';
import type { Current } from '../proc/current';
import type { File, FileOperations, IoctlArg } from './file';
import { Inode, S_IFCHR } from './inode';
import { defineStruct, readIoctlArg, writeIoctlArg } from './struct-layout';

/** Where the device lives (debugfs). */
export const GUP_TEST_PATH = '/sys/kernel/debug/gup_test';
/** Its mode: root only, as debugfs_create_file_unsafe("gup_test", 0600, ...). */
export const GUP_TEST_MODE = 0o600;

/** GUP_TEST_MAX_PAGES_TO_DUMP: entries of which_pages. */
export const GUP_TEST_MAX_PAGES_TO_DUMP = 8;
/** DUMP_USER_PAGES_TEST pins (pin_user_pages) instead of get_user_pages. */
export const GUP_TEST_FLAG_DUMP_PAGES_USE_PIN = 0x1;
/** PIN_LONGTERM_TEST_START: pin with FOLL_WRITE. */
export const PIN_LONGTERM_TEST_FLAG_USE_WRITE = 1;
/** PIN_LONGTERM_TEST_START: use pin_user_pages_fast. */
export const PIN_LONGTERM_TEST_FLAG_USE_FAST = 2;

/**
 * struct gup_test (80 bytes): which_pages is __u32[8], carried as 32 little-endian bytes
 * (encodeWhichPages / decodeWhichPages convert).
 */
export const GUP_TEST_LAYOUT = defineStruct('gup_test', [
  ['get_delta_usec', 'u64'],
  ['put_delta_usec', 'u64'],
  ['addr', 'u64'],
  ['size', 'u64'],
  ['nr_pages_per_call', 'u32'],
  ['gup_flags', 'u32'],
  ['test_flags', 'u32'],
  ['which_pages', { bytes: 4 * GUP_TEST_MAX_PAGES_TO_DUMP, align: 4 }],
] as const);

/** struct pin_longterm_test (24 bytes). */
export const PIN_LONGTERM_TEST_LAYOUT = defineStruct('pin_longterm_test', [
  ['addr', 'u64'],
  ['size', 'u64'],
  ['flags', 'u32'],
] as const);

/**
 * The __u64 PIN_LONGTERM_TEST_READ reads: the user address to copy the pinned pages to. As a plain
 * object: { user_addr }.
 */
export const PIN_LONGTERM_TEST_READ_LAYOUT = defineStruct('__u64', [['user_addr', 'u64']] as const);

/** GUP_FAST_BENCHMARK: get_user_pages_fast in calls of nr_pages_per_call, then put_page. */
export const GUP_FAST_BENCHMARK = _IOWR('g', 1, GUP_TEST_LAYOUT.size);
/** PIN_FAST_BENCHMARK: pin_user_pages_fast, then unpin_user_pages. */
export const PIN_FAST_BENCHMARK = _IOWR('g', 2, GUP_TEST_LAYOUT.size);
/** PIN_LONGTERM_BENCHMARK: pin_user_pages(gup_flags | FOLL_LONGTERM); WARNs about unpinnable pages. */
export const PIN_LONGTERM_BENCHMARK = _IOWR('g', 3, GUP_TEST_LAYOUT.size);
/** GUP_BASIC_TEST: get_user_pages, then put_page. */
export const GUP_BASIC_TEST = _IOWR('g', 4, GUP_TEST_LAYOUT.size);
/** PIN_BASIC_TEST: pin_user_pages, then unpin_user_pages. */
export const PIN_BASIC_TEST = _IOWR('g', 5, GUP_TEST_LAYOUT.size);
/** DUMP_USER_PAGES_TEST: get_user_pages (pin_user_pages with GUP_TEST_FLAG_DUMP_PAGES_USE_PIN), dump_page of which_pages. */
export const DUMP_USER_PAGES_TEST = _IOWR('g', 6, GUP_TEST_LAYOUT.size);
/** PIN_LONGTERM_TEST_START: pin [addr, addr + size) long-term (R/W with USE_WRITE, GUP-fast with USE_FAST) and hold it. */
export const PIN_LONGTERM_TEST_START = _IOW('g', 7, PIN_LONGTERM_TEST_LAYOUT.size);
/** PIN_LONGTERM_TEST_STOP: release what START pinned (0 even when nothing is held). */
export const PIN_LONGTERM_TEST_STOP = _IO('g', 8);
/** PIN_LONGTERM_TEST_READ: copy the held pages to the user address the __u64 argument holds. */
export const PIN_LONGTERM_TEST_READ = _IOW('g', 9, PIN_LONGTERM_TEST_READ_LAYOUT.size);

/** Largest pages array kvcalloc hands out (kvmalloc refuses more than INT_MAX bytes): -ENOMEM beyond. */
const KVCALLOC_MAX_PAGES = Math.floor((2 ** 31 - 1) / 8);
/** 2^64: check_add_overflow on addr + size. */
const U64_END = 2 ** 64;
/** LONG_MAX as a double. */
const LONG_MAX = 2 ** 63 - 1;

/** encodeWhichPages - gup_test.which_pages from up to 8 one-based page numbers (0 = none). */
export function encodeWhichPages(which: readonly number[]): Uint8Array {
  const out = new Uint8Array(4 * GUP_TEST_MAX_PAGES_TO_DUMP);
  const v = new DataView(out.buffer);
  which.slice(0, GUP_TEST_MAX_PAGES_TO_DUMP).forEach((n, i) => v.setUint32(4 * i, n >>> 0, true));
  return out;
}

/** decodeWhichPages - the eight __u32 of gup_test.which_pages. */
export function decodeWhichPages(bytes: Uint8Array): number[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let i = 0; i < GUP_TEST_MAX_PAGES_TO_DUMP; i++) out.push(v.getUint32(4 * i, true));
  return out;
}

/** Per-open-file PIN_LONGTERM_TEST state. */
interface GupTestFile {
  pages: Int32Array | null;
  nrPages: number;
}

/** The caller's address space (current->mm), or null when the caller has none. */
function currentMm(current: Current): MmStruct | null {
  const mm = (current as { mm?: unknown }).mm;
  return mm instanceof MmStruct ? mm : null;
}

/** Simulated ns charged to the caller while `fn` runs (what the kernel's ktime_get pair measures). */
function measureCharged(core: MmCore, fn: () => void): number {
  const prev = core.chargeHook;
  let ns = 0;
  core.chargeHook = (n) => {
    ns += n;
    if (prev) prev(n);
  };
  try {
    fn();
  } finally {
    core.chargeHook = prev;
  }
  return ns;
}

/** dump_page: the page's struct page fields and flags in dmesg. */
function dumpPage(core: MmCore, pfn: number, reason: string): void {
  const f = core.frames;
  const head = folioHead(core, pfn);
  const hex = (n: number) => '0x' + n.toString(16);
  core.dmesg.printk(
    `page: refcount:${f.refcount[head]} mapcount:${f.mapcount[head]} mapping:${f.mapping[head] ? hex(f.mapping[head]) : '0000000000000000'} index:${hex(f.index[head])} pfn:${hex(pfn)}`,
  );
  if (f.flags[pfn] & PG_tail)
    core.dmesg.printk(`head: pfn:${hex(head)} order:${f.getOrder(head)} pincount:${f.privateData[head + 1]}`);
  core.dmesg.printk(`flags: ${hex(f.flags[head] & 0x7ffffff)}(${pageFlagNames(f.flags[head])})`);
  core.dmesg.printk(`page dumped because: ${reason}`);
}

/** verify_dma_pinned: WARN (once per call) about a page a PIN command left unpinned or unpinnable. */
function verifyDmaPinned(core: MmCore, cmd: number, pages: Int32Array, n: number): void {
  if (cmd !== PIN_FAST_BENCHMARK && cmd !== PIN_BASIC_TEST && cmd !== PIN_LONGTERM_BENCHMARK) return;
  for (let i = 0; i < n; i++) {
    const head = folioHead(core, pages[i]);
    if (!folioMaybeDmaPinned(core, head)) {
      core.dmesg.printk(`WARNING: mm/gup_test.c: pages[${i}] is NOT dma-pinned`);
      dumpPage(core, pages[i], 'gup_test failure');
      break;
    }
    if (cmd === PIN_LONGTERM_BENCHMARK && !folioIsLongtermPinnable(core, head)) {
      core.dmesg.printk(`WARNING: mm/gup_test.c: pages[${i}] is NOT pinnable but pinned`);
      dumpPage(core, pages[i], 'gup_test failure');
      break;
    }
  }
}

type GupTestArgs = ReturnType<typeof GUP_TEST_LAYOUT.decode>;

/** __gup_test_ioctl: run one benchmark or test command on `mm`. 0 or -errno; `gup` is updated. */
function gupTestCommand(core: MmCore, mm: MmStruct, cmd: number, gup: GupTestArgs): number {
  const start = gup.addr;
  if (start + gup.size >= U64_END) return -ERRNO.EINVAL;
  const end = start + gup.size;
  let nrPages = Math.floor(gup.size / PAGE_SIZE);
  if (nrPages > KVCALLOC_MAX_PAGES) return -ERRNO.ENOMEM;
  const pages = new Int32Array(nrPages);
  const perCall = gup.nr_pages_per_call;
  const flags = gup.gup_flags;
  const usePin = (gup.test_flags & GUP_TEST_FLAG_DUMP_PAGES_USE_PIN) !== 0;
  let i = 0;
  let addr = start;
  let bad = false;
  const getNs = measureCharged(core, () => {
    let nr = perCall;
    for (; addr < end;) {
      if (nr !== perCall) break;
      let next = addr + nr * PAGE_SIZE;
      if (next > end) {
        next = end;
        nr = Math.floor((next - addr) / PAGE_SIZE);
      }
      const sub = pages.subarray(i);
      switch (cmd) {
        case GUP_FAST_BENCHMARK:
          nr = getUserPagesFast(mm, addr, nr, flags, sub);
          break;
        case GUP_BASIC_TEST:
          nr = getUserPages(mm, addr, nr, flags, sub);
          break;
        case PIN_FAST_BENCHMARK:
          nr = pinUserPagesFast(mm, addr, nr, flags, sub);
          break;
        case PIN_BASIC_TEST:
          nr = pinUserPages(mm, addr, nr, flags, sub);
          break;
        case PIN_LONGTERM_BENCHMARK:
          nr = pinUserPages(mm, addr, nr, flags | FOLL_LONGTERM, sub);
          break;
        case DUMP_USER_PAGES_TEST:
          nr = usePin ? pinUserPages(mm, addr, nr, flags, sub) : getUserPages(mm, addr, nr, flags, sub);
          break;
        default:
          bad = true;
          return;
      }
      if (nr <= 0) break;
      i += nr;
      addr = next;
    }
  });
  if (bad) return -ERRNO.EINVAL;
  nrPages = i;
  gup.get_delta_usec = Math.floor(getNs / 1000);
  gup.size = addr - start;

  verifyDmaPinned(core, cmd, pages, nrPages);
  if (cmd === DUMP_USER_PAGES_TEST) {
    const which = decodeWhichPages(gup.which_pages);
    for (let k = 0; k < GUP_TEST_MAX_PAGES_TO_DUMP; k++) {
      if (which[k] > nrPages) {
        core.dmesg.printk(`gup_test: ZEROING due to out of range: .which_pages[${k}]: ${which[k]}`);
        which[k] = 0;
      }
    }
    for (const n of which) {
      if (!n) continue;
      core.dmesg.printk(
        `gup_test: ---- page #${n - 1}, starting from user virt addr: 0x${start.toString(16)}`,
      );
      dumpPage(core, pages[n - 1], 'gup_test: dump_pages() test');
    }
    gup.which_pages = encodeWhichPages(which);
  }

  const putNs = measureCharged(core, () => {
    const pin =
      cmd === PIN_FAST_BENCHMARK ||
      cmd === PIN_BASIC_TEST ||
      cmd === PIN_LONGTERM_BENCHMARK ||
      (cmd === DUMP_USER_PAGES_TEST && usePin);
    if (pin) unpinUserPages(core, pages, nrPages);
    else gupPutPages(core, pages, nrPages);
  });
  gup.put_delta_usec = Math.floor(putNs / 1000);
  return 0;
}

/** pin_longterm_test_stop: release what START pinned (nothing if nothing is held). */
function pinLongtermTestStop(core: MmCore, state: GupTestFile): void {
  if (!state.pages) return;
  if (state.nrPages) unpinUserPages(core, state.pages, state.nrPages);
  state.pages = null;
  state.nrPages = 0;
}

/** pin_longterm_test_start: pin the range long-term and hold it. 0 or -errno (nothing held). */
function pinLongtermTestStart(core: MmCore, state: GupTestFile, current: Current, arg: IoctlArg): number {
  if (state.pages) return -ERRNO.EINVAL;
  const args = readIoctlArg(current, arg, PIN_LONGTERM_TEST_LAYOUT);
  if (typeof args === 'number') return args;
  if (args.flags & ~(PIN_LONGTERM_TEST_FLAG_USE_WRITE | PIN_LONGTERM_TEST_FLAG_USE_FAST))
    return -ERRNO.EINVAL;
  if (args.addr % PAGE_SIZE || args.size % PAGE_SIZE) return -ERRNO.EINVAL;
  if (args.size > LONG_MAX) return -ERRNO.EINVAL;
  const nrPages = args.size / PAGE_SIZE;
  if (!nrPages) return -ERRNO.EINVAL;
  if (nrPages > KVCALLOC_MAX_PAGES) return -ERRNO.ENOMEM;
  const mm = currentMm(current);
  if (!mm) return -ERRNO.EFAULT;
  const pages = new Int32Array(nrPages);
  const flags = FOLL_LONGTERM | (args.flags & PIN_LONGTERM_TEST_FLAG_USE_WRITE ? FOLL_WRITE : 0);
  const fast = (args.flags & PIN_LONGTERM_TEST_FLAG_USE_FAST) !== 0;
  state.pages = pages;
  state.nrPages = 0;
  while (nrPages - state.nrPages) {
    const remaining = nrPages - state.nrPages;
    const addr = args.addr + state.nrPages * PAGE_SIZE;
    const sub = pages.subarray(state.nrPages);
    let cur = fast
      ? pinUserPagesFast(mm, addr, remaining, flags, sub)
      : pinUserPages(mm, addr, remaining, flags, sub);
    // pin_user_pages* never return 0 for valid arguments; the kernel would spin here.
    if (cur === 0) cur = -ERRNO.EFAULT;
    if (cur < 0) {
      pinLongtermTestStop(core, state);
      return cur;
    }
    state.nrPages += cur;
  }
  return 0;
}

/** pin_longterm_test_read: copy every pinned page to the user address read from `arg`. */
function pinLongtermTestRead(core: MmCore, state: GupTestFile, current: Current, arg: IoctlArg): number {
  if (!state.pages) return -ERRNO.EINVAL;
  const a = readIoctlArg(current, arg, PIN_LONGTERM_TEST_READ_LAYOUT);
  if (typeof a === 'number') return a;
  let userAddr = a.user_addr;
  const buf = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < state.nrPages; i++) {
    buf.fill(0);
    core.data.read(state.pages[i], 0, PAGE_SIZE, buf, 0);
    if (current.mm.copyToUser(userAddr, buf) < 0) return -ERRNO.EFAULT;
    userAddr += PAGE_SIZE;
  }
  return 0;
}

/** The file operations of /sys/kernel/debug/gup_test for one kernel. */
function gupTestFops(core: MmCore): FileOperations {
  const stateOf = (file: File): GupTestFile => file.privateData as GupTestFile;
  return {
    owner: 'gup_test',
    open(_inode, file) {
      file.privateData = { pages: null, nrPages: 0 } satisfies GupTestFile;
      return 0;
    },
    release(_inode, file) {
      pinLongtermTestStop(core, stateOf(file));
    },
    unlockedIoctl(file, cmd, arg, current) {
      switch (cmd) {
        case GUP_FAST_BENCHMARK:
        case PIN_FAST_BENCHMARK:
        case PIN_LONGTERM_BENCHMARK:
        case GUP_BASIC_TEST:
        case PIN_BASIC_TEST:
        case DUMP_USER_PAGES_TEST:
          break;
        case PIN_LONGTERM_TEST_START:
          return pinLongtermTestStart(core, stateOf(file), current, arg);
        case PIN_LONGTERM_TEST_STOP:
          pinLongtermTestStop(core, stateOf(file));
          return 0;
        case PIN_LONGTERM_TEST_READ:
          return pinLongtermTestRead(core, stateOf(file), current, arg);
        default:
          return -ERRNO.EINVAL;
      }
      const gup = readIoctlArg(current, arg, GUP_TEST_LAYOUT);
      if (typeof gup === 'number') return gup;
      const mm = currentMm(current);
      if (!mm) return -ERRNO.EFAULT;
      const ret = gupTestCommand(core, mm, cmd, gup);
      if (ret) return ret;
      return writeIoctlArg(current, arg, GUP_TEST_LAYOUT, gup) < 0 ? -ERRNO.EFAULT : 0;
    },
  };
}

const registered = new WeakMap<DeviceCore, Inode>();

/**
 * registerGupTest - create /sys/kernel/debug/gup_test (gup_test_init) on `devices`, acting on
 * `core`'s memory: a char inode, mode 0600 owned by root (uid 1000 opening it gets EACCES).
 * Idempotent: a second call for the same DeviceCore does nothing.
 * Returns 0, or the -errno of mknod (-EEXIST when something else holds the path).
 * Released by unregisterGupTest.
 */
export function registerGupTest(devices: DeviceCore, core: MmCore): number {
  if (registered.has(devices)) return 0;
  const inode = new Inode({ mode: S_IFCHR | GUP_TEST_MODE, uid: 0, gid: 0, fops: gupTestFops(core) });
  const r = devices.vfs.mknod(GUP_TEST_PATH, inode);
  if (r < 0) return r;
  registered.set(devices, inode);
  return 0;
}

/** unregisterGupTest - remove the node (open files keep working until closed). */
export function unregisterGupTest(devices: DeviceCore): void {
  if (!registered.has(devices)) return;
  registered.delete(devices);
  devices.vfs.unlink(GUP_TEST_PATH);
}
