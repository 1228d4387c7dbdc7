/**
 * PinnedRanges - a registry of user address ranges pinned long-term on behalf of one open file:
 * the shared core of the pinning interfaces proposed in the seed threads, mempinfd()
 * (seeds/001, an fd from a syscall) and /dev/uacce_ctrl (seeds/002, a misc device), with their
 * reviews applied. Each plugin keeps one PinnedRanges per open file and turns its two ioctls into
 * pin() and unpin(); the file's release calls releaseAll().
 *
 * Semantics (what both patches did, and what their reviewers asked for):
 *  - A range is keyed by its first page, as the patches' xarray is: a second pin starting in the
 *    same page is -EBUSY (xa_insert; v2's xa_store silently replaced the first range and leaked
 *    its pins). Overlapping ranges that start in other pages are allowed, and each is pinned and
 *    charged on its own (Matthew Wilcox asked "Is that OK?"; Zhou Wang kept it, "let's make it
 *    simple firstly").
 *  - Addresses and sizes need not be page-aligned: the range covers every page [addr, addr+size)
 *    touches, as the patches compute first/last page. An unpin names the same pages: same first
 *    page and same page count (-ENODEV when no range starts in that page, -EINVAL when the count
 *    differs).
 *  - A zero size or a range that wraps the 64-bit address space (including one whose end rounds
 *    up past it, as ib_umem_get checks) is -EINVAL, for pin and unpin alike.
 *  - Pages are pinned with FOLL_LONGTERM | FOLL_WRITE (pin_user_pages_fast, in batches of
 *    PAGE_SIZE / 8 pages as ib_umem_get does): pages in ZONE_MOVABLE or CMA are migrated out first,
 *    and a read-only mapping is -EFAULT. The patches' FOLL_FORCE is dropped: it lets a pin break
 *    COW through a PROT_READ private mapping, a debugger's (ptrace) privilege, not a DMA one.
 *  - Permission and accounting as ib_umem_get (Matthew Wilcox: "You check for can_do_mlock(), but
 *    you don't account the pages to this rlimit"; Jason Gunthorpe: "copy the RLIMIT_MEMLOCK and
 *    can_do_mlock() stuff from ... ib_umem_get"): -EPERM when the caller cannot mlock
 *    (RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK); the pages are added to mm->pinned_vm (VmPin) and a
 *    total over RLIMIT_MEMLOCK without CAP_IPC_LOCK is undone and -ENOMEM. CAP_IPC_LOCK is exempt
 *    from the limit but still counted. The charge is per range, so overlapping ranges count twice.
 *  - A failed pin leaves nothing pinned and nothing charged (v3 returned the partial count of
 *    pin_user_pages_fast as success-looking garbage and leaked those pins).
 *  - Nothing here logs on bad input (Matthew Wilcox: "You mustn't allow the user to be able to
 *    generate messages to syslog, just by passing garbage to a syscall"); the one report an
 *    application can provoke, DMA in flight at unpin, is rate-limited.
 *  - An unpin, or releaseAll at close or exit, of pages a device still has DMA in flight on
 *    (dma-inflight.ts) is reported: vmstat unpin_dma_inflight (pages), the
 *    gup_unpin_dma_inflight tracepoint and a rate-limited warning. The pages are unpinned anyway,
 *    as the patches would: with SVA the mm still maps them and the device faults or reads
 *    current data; with a non-SVA (IOVA) mapping nothing holds them any more, which is the
 *    use-after-free Jason Gunthorpe warned of ("unpinning without guaranteeing there is no
 *    ongoing DMA is really weird").
 *
 * Context: called from syscalls and ioctls of the owning process (svasim runs one call at a
 * time, so the patches' mutex has nothing to protect). Released by releaseAll().
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE, TASK_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import { callerCanDoMlock, type MmCaller } from '../mm/mm-caller';
import type { MmStruct } from '../mm/mm-struct';
import { folioHead } from '../mm/page-ref';
import { dmaInflight } from './dma-inflight';
import { FOLL_LONGTERM, FOLL_WRITE } from './foll-flags';
import { pinUserPagesFast, unpinUserPages, unpinUserPagesDirtyLock } from './gup';
import { folioIsLongtermPinnable } from './pinnable';
import { gupState } from './pin-tracker';

/** sizeof(struct mem_pin_address) and of struct uacce_pin_address: { __u64 addr; __u64 size; }. */
export const PIN_ADDRESS_SIZE = 16;

/** The GUP flags every registry pins with. */
export const PINNED_RANGES_GUP_FLAGS = FOLL_LONGTERM | FOLL_WRITE;

/** Pages per pin_user_pages_fast call (ib_umem_get: PAGE_SIZE / sizeof(struct page *)). */
const PIN_BATCH = PAGE_SIZE / 8;

const PAGE = BigInt(PAGE_SIZE);
const U64_END = 1n << 64n;
const TASK_END = BigInt(TASK_SIZE);

/** PinRange - a decoded struct mem_pin_address / uacce_pin_address, exact to 64 bits. */
export interface PinRange {
  addr: bigint;
  size: bigint;
}

/** The uaccess a struct is read through (an MmStruct or a syscall's Current.mm). */
export interface PinRangeUaccess {
  copyFromUser(dst: Uint8Array, addr: number): number;
}

function u64(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v >= 0n && v < U64_END ? v : null;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return null;
}

/**
 * readPinRange - copy_from_user of the 16-byte { addr, size } struct both interfaces take.
 * @uaccess: the calling process's user memory.
 * @arg: the ioctl argument: a user address of the struct, or (svasim's convenience, API.md) a
 *   plain object { addr?, size? } of numbers or bigints (missing fields are 0).
 *
 * Return: the range with exact 64-bit values (the generic struct decoder rounds above 2^53, which
 * would hide a wrapping range), or -EFAULT (not a valid user address, or a byte of the struct is
 * not readable; null/undefined/anything else, a NULL or garbage pointer), or -EINVAL (an object
 * naming another field, or a value a __u64 cannot hold). Nothing to release.
 */
export function readPinRange(uaccess: PinRangeUaccess, arg: unknown): PinRange | number {
  if (typeof arg === 'number') {
    if (!Number.isSafeInteger(arg) || arg < 0) return -ERRNO.EFAULT;
    const buf = new Uint8Array(PIN_ADDRESS_SIZE);
    const ret = uaccess.copyFromUser(buf, arg);
    if (ret < 0) return -ERRNO.EFAULT;
    const view = new DataView(buf.buffer);
    return { addr: view.getBigUint64(0, true), size: view.getBigUint64(8, true) };
  }
  if (typeof arg !== 'object' || arg === null || Array.isArray(arg) || ArrayBuffer.isView(arg))
    return -ERRNO.EFAULT;
  const o = arg as Record<string, unknown>;
  for (const key of Object.keys(o)) if (key !== 'addr' && key !== 'size') return -ERRNO.EINVAL;
  const addr = o.addr === undefined ? 0n : u64(o.addr);
  const size = o.size === undefined ? 0n : u64(o.size);
  if (addr === null || size === null) return -ERRNO.EINVAL;
  return { addr, size };
}

/**
 * pinRangePages - the pages [addr, addr + size) touches: { first page index, page count }, or
 * -EINVAL for a zero size or a range that wraps 2^64 (also when only its page-aligned end does).
 */
export function pinRangePages(addr: bigint, size: bigint): { first: number; nrPages: number } | number {
  if (size === 0n || addr < 0n || size < 0n) return -ERRNO.EINVAL;
  const end = addr + size;
  if (end >= U64_END) return -ERRNO.EINVAL;
  const first = addr / PAGE;
  const last = (end + PAGE - 1n) / PAGE;
  if (last * PAGE >= U64_END) return -ERRNO.EINVAL; // PAGE_ALIGN(addr + size) wraps
  return { first: Number(first), nrPages: Number(last - first) };
}

/**
 * accountPinnedVm - charge @npages to @mm->pinned_vm as ib_umem_get does: add them, and when the
 * total exceeds RLIMIT_MEMLOCK (in pages) and the caller lacks CAP_IPC_LOCK, take them back.
 * Return: 0 or -ENOMEM. Released by unaccountPinnedVm(@mm, @npages).
 */
export function accountPinnedVm(mm: MmStruct, caller: MmCaller, npages: number): number {
  const limit = caller.memlockLimit === Infinity ? Infinity : Math.floor(caller.memlockLimit / PAGE_SIZE);
  mm.pinnedVm += npages;
  if (mm.pinnedVm > limit && !caller.ipcLock) {
    mm.pinnedVm -= npages;
    return -ERRNO.ENOMEM;
  }
  return 0;
}

/** unaccountPinnedVm - give back @npages charged by accountPinnedVm. */
export function unaccountPinnedVm(mm: MmStruct, npages: number): void {
  mm.pinnedVm -= npages;
}

/** One pinned range: the pfn of each of its pages (the review's "embed the pages array"). */
interface Range {
  readonly first: number;
  readonly nrPages: number;
  readonly pages: Int32Array;
}

/** One registered range, as entries() lists it. */
export interface PinnedRangeInfo {
  /** Address of the first page. */
  addr: number;
  nrPages: number;
}

/**
 * PinnedRanges - the pins of one open file on one address space (a mempinfd fd, an open of
 * /dev/uacce_ctrl). See the file comment for the rules. Made by the file's creation; released
 * by releaseAll() in its release.
 */
export class PinnedRanges {
  private readonly ranges = new Map<number, Range>();
  /** Pages pinned and charged to mm.pinnedVm by this registry (overlapping ranges count twice). */
  pinnedPages = 0;
  /** True once releaseAll() ran: pin() then answers -EBADF. */
  released = false;

  /**
   * @mm: the address space the ranges are in and whose pinned_vm is charged.
   * @owner: the interface's name ('mempinfd', 'uacce_ctrl'), for reports.
   */
  constructor(
    readonly mm: MmStruct,
    readonly owner: string,
  ) {}

  /** Number of ranges held. */
  get size(): number {
    return this.ranges.size;
  }

  /** entries - the ranges held, by first page. */
  entries(): PinnedRangeInfo[] {
    return [...this.ranges.values()]
      .sort((a, b) => a.first - b.first)
      .map((r) => ({ addr: r.first * PAGE_SIZE, nrPages: r.nrPages }));
  }

  /**
   * pin - pin every page of [@addr, @addr + @size) long-term for DMA, charge it, and record it.
   * @caller: the calling task's CAP_IPC_LOCK and RLIMIT_MEMLOCK.
   *
   * Return: 0, or
   *  -EINVAL: zero size, or the range wraps;
   *  -EPERM: the caller cannot mlock (RLIMIT_MEMLOCK 0 without CAP_IPC_LOCK);
   *  -EBUSY: a range starting in the same page is pinned already;
   *  -EFAULT: the range goes beyond user space, or GUP's -EFAULT (a hole, PROT_NONE, a read-only
   *   mapping, VM_IO/VM_PFNMAP device memory, an exited mm);
   *  -ENOMEM: pinned_vm would exceed RLIMIT_MEMLOCK (no CAP_IPC_LOCK), no memory to fault a page
   *   in, or FOLL_LONGTERM could not migrate a page out of ZONE_MOVABLE/CMA;
   *  -EBADF: the registry was released;
   *  another GUP -errno (-EHWPOISON...).
   * On any error nothing is pinned and nothing is charged. Released by unpin() or releaseAll().
   */
  pin(caller: MmCaller, addr: bigint, size: bigint): number {
    if (this.released) return -ERRNO.EBADF;
    const span = pinRangePages(addr, size);
    if (typeof span === 'number') return span;
    if (!callerCanDoMlock(caller)) return -ERRNO.EPERM;
    const { first, nrPages } = span;
    if (this.ranges.has(first)) return -ERRNO.EBUSY;
    if (BigInt(first + nrPages) * PAGE > TASK_END) return -ERRNO.EFAULT;
    const mm = this.mm;
    const acct = accountPinnedVm(mm, caller, nrPages);
    if (acct < 0) return acct;
    // Grow the pfn array with what is actually pinned, so a huge range over a hole costs little.
    let pages = new Int32Array(Math.min(nrPages, PIN_BATCH));
    let done = 0;
    while (done < nrPages) {
      const batch = Math.min(PIN_BATCH, nrPages - done);
      if (pages.length < done + batch) {
        const bigger = new Int32Array(Math.min(nrPages, Math.max(done + batch, pages.length * 2)));
        bigger.set(pages.subarray(0, done));
        pages = bigger;
      }
      const ret = pinUserPagesFast(
        mm,
        (first + done) * PAGE_SIZE,
        batch,
        PINNED_RANGES_GUP_FLAGS,
        pages.subarray(done, done + batch),
      );
      if (ret <= 0) {
        if (done) unpinUserPages(mm.core, pages, done);
        unaccountPinnedVm(mm, nrPages);
        return ret < 0 ? ret : -ERRNO.EFAULT;
      }
      done += ret;
    }
    this.ranges.set(first, {
      first,
      nrPages,
      pages: pages.length === nrPages ? pages : pages.slice(0, nrPages),
    });
    this.pinnedPages += nrPages;
    return 0;
  }

  /**
   * unpin - release the range that starts in @addr's page and covers the same number of pages as
   * [@addr, @addr + @size): unpin its pages (marking them dirty, as the device may have written
   * them), give back the pinned_vm charge, forget it. DMA still in flight on its pages is
   * reported (file comment) and does not stop the unpin.
   *
   * Return: 0, or -EINVAL (zero size, a wrapping range, or a page count different from the pinned
   * range's), -ENODEV (no range starts in that page), -EBADF (the registry was released).
   */
  unpin(addr: bigint, size: bigint): number {
    if (this.released) return -ERRNO.EBADF;
    const span = pinRangePages(addr, size);
    if (typeof span === 'number') return span;
    const r = this.ranges.get(span.first);
    if (!r) return -ERRNO.ENODEV;
    if (r.nrPages !== span.nrPages) return -ERRNO.EINVAL;
    this.ranges.delete(r.first);
    this.drop(r);
    return 0;
  }

  /**
   * releaseAll - unpin and uncharge every range (the file's release: last close or exit),
   * reporting DMA still in flight as unpin does. Later pin/unpin calls answer -EBADF.
   */
  releaseAll(): void {
    this.released = true;
    const all = [...this.ranges.values()].sort((a, b) => a.first - b.first);
    this.ranges.clear();
    for (const r of all) this.drop(r);
  }

  private drop(r: Range): void {
    this.reportDmaInflight(r);
    unpinUserPagesDirtyLock(this.mm.core, r.pages, r.nrPages, true);
    unaccountPinnedVm(this.mm, r.nrPages);
    this.pinnedPages -= r.nrPages;
  }

  /** The DMA-in-flight report of an unpin (file comment). */
  private reportDmaInflight(r: Range): void {
    const core = this.mm.core;
    const dma = dmaInflight(core);
    const busy = dma.busyPages(r.pages, r.nrPages);
    if (busy === 0) return;
    const pfn = dma.firstBusy;
    const pid = this.mm.ownerPid;
    const addr = r.first * PAGE_SIZE;
    core.vmstat.inc(VM.unpin_dma_inflight, busy);
    if (core.trace.enabled('gup_unpin_dma_inflight'))
      core.trace.emit('gup_unpin_dma_inflight', {
        owner: this.owner,
        pid,
        addr,
        nrPages: r.nrPages,
        busyPages: busy,
        pfn,
      });
    core.dmesg.printkRatelimited(
      `${this.owner}_unpin_dma_inflight`,
      `${this.owner}: pid ${pid} unpinned 0x${addr.toString(16)} (${r.nrPages} pages) with DMA in flight ` +
        `on ${busy} of them (pfn ${pfn})`,
    );
  }

  /**
   * checkInvariants - the registry against GUP and the mm: every page of every range is held by a
   * long-term pin in a pinnable place, and the ranges add up to pinnedPages, which pinned_vm
   * covers. Returns violations (empty when all hold).
   */
  checkInvariants(): string[] {
    const out: string[] = [];
    const core = this.mm.core;
    const st = gupState(core);
    let total = 0;
    for (const r of this.ranges.values()) {
      total += r.nrPages;
      for (let i = 0; i < r.nrPages; i++) {
        const pfn = r.pages[i];
        const head = folioHead(core, pfn);
        if (st.pins(head) <= 0 || st.longtermPins(head) <= 0) {
          out.push(
            `${this.owner}: page ${i} of 0x${(r.first * PAGE_SIZE).toString(16)} (pfn ${pfn}) is not pinned`,
          );
          break;
        }
        if (!folioIsLongtermPinnable(core, head)) {
          out.push(`${this.owner}: pfn ${pfn} is pinned long-term where it may not be`);
          break;
        }
      }
    }
    if (total !== this.pinnedPages)
      out.push(`${this.owner}: ranges hold ${total} pages, pinnedPages ${this.pinnedPages}`);
    if (this.mm.pinnedVm < this.pinnedPages)
      out.push(
        `${this.owner}: mm ${this.mm.id} pinned_vm ${this.mm.pinnedVm} below the ${this.pinnedPages} pages charged`,
      );
    return out;
  }
}
