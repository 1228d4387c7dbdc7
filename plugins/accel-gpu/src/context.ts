/**
 * One GPU context (one open file of /dev/svasim_gpu<N>): the mirror of the opener's address
 * space, the pages it holds for atomics, and the device operations on them: reads and writes by
 * the GPU through the mirror, migration to and from device memory, atomics, snapshots and GPU
 * kernels. Every operation returns its -errno instead of throwing (the ioctl layer turns it into
 * the SyscallError user space sees) and the simulated device time it took.
 */
import {
  ERRNO,
  FOLL_GET,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE,
  HMM_DMIRROR_PROT_ERROR,
  HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_PUD,
  HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_ZERO,
  HMM_PFN_ERROR,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  KernelError,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  MMU_NOTIFY_CLEAR,
  MMU_NOTIFY_EXCLUSIVE,
  MMU_NOTIFY_MIGRATE,
  MMU_NOTIFY_RELEASE,
  MMU_NOTIFY_UNMAP,
  PAGE_SIZE,
  TASK_SIZE,
  VM_READ,
  VM_WRITE,
  getUserPagesRemote,
  gupPutFolio,
  hmmPfnToMapOrder,
  hmmPfnToPage,
  isDevicePrivatePage,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
  type MigrateVma,
  type MmCore,
  type MmStruct,
  type MmuNotifierRange,
} from '@svasim/kernel';
import { AtomicHolds, currentPfn, type GpuAtomicMode } from './atomic-holds';
import type { GpuTiming } from './gpu-config';
import { GpuMirror, MIRROR_BATCH, TAG_ATOMIC, TAG_READ, TAG_WRITE, type MirrorInvalidation } from './mirror';
import {
  GPU_ATOMIC_CAS,
  GPU_ATOMIC_FETCH_ADD,
  GPU_ATOMIC_F_FAULTED,
  GPU_ATOMIC_F_REINSTATED,
  GPU_ATOMIC_F_SYSMEM,
  GPU_ATOMIC_F_VRAM,
  GPU_MIRROR_ATOMIC,
  GPU_MIRROR_HELD,
  GPU_MIRROR_READ,
  GPU_MIRROR_REINSTATE,
  GPU_MIRROR_VRAM,
  GPU_MIRROR_WRITE,
} from './uapi';
import type { GpuVram } from './vram';

/** What a context needs from its device. */
export interface GpuDriver {
  readonly core: MmCore;
  readonly vram: GpuVram;
  readonly timing: GpuTiming;
  /** Device time spent outside any command (revocations, reinstates, CPU faults). */
  addBackgroundNs(ns: number): void;
}

/** GpuContextStats - one context's counters. */
export interface GpuContextStats {
  /** Simulated device time of this context's commands (ns). */
  deviceNs: number;
  /** GPU page faults (hmm_range_fault batches the driver serviced for this context). */
  faults: number;
  /** Atomics done, and how many of them on device memory. */
  atomics: number;
  atomicsLocal: number;
  /** Exclusive accesses taken with make_device_exclusive after a fault. */
  acquires: number;
  /** Atomic mappings the MMU notifier took away (a CPU access, a migration, munmap...). */
  revocations: number;
  /** ...of which by a CPU access (MMU_NOTIFY_EXCLUSIVE without our owner). */
  revocationsByCpu: number;
  /** ...of which by a migration (MMU_NOTIFY_MIGRATE). */
  revocationsByMigration: number;
  /** Pages a migration callback revoked (short-term mode). */
  callbackRevokes: number;
  /** Atomic mappings the driver re-installed after a callback, without a GPU fault. */
  reinstates: number;
  /** GPU TLB shootdowns done for invalidations. */
  tlbShootdowns: number;
  migratedToDevice: number;
  migratedToSystem: number;
  launches: number;
}

/** OpResult - what one command did: 0 or -errno, device ns, GPU faults, pages done. */
export interface OpResult {
  ret: number;
  ns: number;
  faults: number;
  cpages: number;
}

/** AtomicResult - an atomic's outcome: the old value and where it ran (GPU_ATOMIC_F_*). */
export interface AtomicResult extends OpResult {
  result: bigint;
  flags: number;
}

/**
 * GpuThread - what a GPU kernel (launch) sees: device accesses to the process's memory through
 * the mirror. Every method throws KernelError with the errno the same ioctl would return.
 */
export interface GpuThread {
  read(addr: number, len: number): Uint8Array;
  write(addr: number, bytes: Uint8Array): void;
  load32(addr: number): number;
  store32(addr: number, value: number): void;
  atomicAdd(addr: number, value: number): number;
  atomicAdd64(addr: number, value: bigint): bigint;
  atomicCas(addr: number, expected: number, desired: number): number;
  atomicCas64(addr: number, expected: bigint, desired: bigint): bigint;
}

const MASK32 = 0xffffffffn;
const MASK64 = (1n << 64n) - 1n;

/** Store a 32-bit value little-endian at @off of @b. */
function storeWord(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 255;
  b[off + 1] = (v >>> 8) & 255;
  b[off + 2] = (v >>> 16) & 255;
  b[off + 3] = v >>> 24;
}

function ok(ns = 0, faults = 0, cpages = 0): OpResult {
  return { ret: 0, ns, faults, cpages };
}

function err(ret: number, ns = 0, faults = 0, cpages = 0): OpResult {
  return { ret, ns, faults, cpages };
}

/**
 * GpuContext - the driver's state of one open file. open() inserts the mirror's notifier;
 * release() (the file's last close) drops everything.
 */
export class GpuContext {
  readonly mirror: GpuMirror;
  holds: AtomicHolds;
  readonly stats: GpuContextStats = {
    deviceNs: 0,
    faults: 0,
    atomics: 0,
    atomicsLocal: 0,
    acquires: 0,
    revocations: 0,
    revocationsByCpu: 0,
    revocationsByMigration: 0,
    callbackRevokes: 0,
    reinstates: 0,
    tlbShootdowns: 0,
    migratedToDevice: 0,
    migratedToSystem: 0,
    launches: 0,
  };
  /** Pages a migration callback took while mapped: reinstated once the move ends. */
  private readonly moving = new Set<number>();
  /** Pages to re-map before the next command (short-term mode). */
  private readonly reinstate = new Set<number>();
  /** Held pages whose mapping an MMU_NOTIFY_CLEAR changed: checked before the next command. */
  private readonly suspect = new Set<number>();
  /** Set while the driver itself restores its device-exclusive entries (not revocations). */
  private selfRestore = false;
  released = false;

  constructor(
    readonly driver: GpuDriver,
    /** The address space mirrored: the opener's. */
    readonly mm: MmStruct,
    mode: GpuAtomicMode = 'notifier-only',
  ) {
    this.mirror = new GpuMirror(mm, driver, (pfn) => driver.vram.isOurs(pfn), {
      invalidated: (range, removed) => this.invalidated(range, removed),
    });
    this.holds = new AtomicHolds(this, mode, false);
  }

  /** The atomic mode in force. */
  get mode(): GpuAtomicMode {
    return this.holds.mode;
  }

  /** The owner make_device_exclusive announces: this context. */
  get exclusiveOwner(): object {
    return this;
  }

  private get core(): MmCore {
    return this.driver.core;
  }

  private get t(): GpuTiming {
    return this.driver.timing;
  }

  /** open - start mirroring. Return: 0 or -errno. */
  open(): number {
    return this.mirror.insert();
  }

  /** release - stop mirroring, drop every hold. Device-exclusive entries stay until the CPU touches them. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.holds.releaseAll();
    this.mirror.remove();
    this.moving.clear();
    this.reinstate.clear();
    this.suspect.clear();
  }

  /**
   * setMode - keep the pages of later atomics as @mode says; @pinInPlace (longterm-pin only)
   * pins without FOLL_LONGTERM. What the old mode held is released and the GPU's atomic
   * mappings are given back to the CPU first. Return: 0.
   */
  setMode(mode: GpuAtomicMode, pinInPlace: boolean): number {
    this.dropAtomic(0, Number.MAX_SAFE_INTEGER);
    this.holds.releaseAll();
    this.holds = new AtomicHolds(this, mode, mode === 'longterm-pin' && pinInPlace);
    this.moving.clear();
    this.reinstate.clear();
    this.suspect.clear();
    return 0;
  }

  /** Whether longterm-pin pins in place. */
  get pinInPlace(): boolean {
    return this.holds.pinInPlace;
  }

  // ---- notifier and callback hooks -------------------------------------------------------

  private invalidated(range: Readonly<MmuNotifierRange>, removed: MirrorInvalidation): void {
    const own = range.event === MMU_NOTIFY_EXCLUSIVE && range.owner === this;
    if (!own && removed.entries) {
      // The GPU's TLB must forget what the mirror just dropped; the invalidating CPU waits.
      this.stats.tlbShootdowns++;
      this.core.charge(this.t.tlbShootdownNs);
      this.driver.addBackgroundNs(this.t.tlbShootdownNs);
    }
    if (!own && !this.selfRestore && removed.atomics.length) {
      const n = removed.atomics.length;
      this.stats.revocations += n;
      if (range.event === MMU_NOTIFY_EXCLUSIVE) this.stats.revocationsByCpu += n;
      else if (range.event === MMU_NOTIFY_MIGRATE) this.stats.revocationsByMigration += n;
    }
    if (this.holds.size === 0) return;
    const first = Math.floor(range.start / PAGE_SIZE);
    const end = Math.ceil(range.end / PAGE_SIZE);
    if (range.event === MMU_NOTIFY_UNMAP || range.event === MMU_NOTIFY_RELEASE) {
      // The mapping goes: so does the reason to keep the page.
      this.holds.releaseRange(first, end);
      for (const vpn of [...this.reinstate]) if (vpn >= first && vpn < end) this.reinstate.delete(vpn);
    } else if (range.event === MMU_NOTIFY_CLEAR) {
      for (const vpn of this.holds.vpns()) if (vpn >= first && vpn < end) this.suspect.add(vpn);
    }
  }

  /** AtomicHoldsHost: the migration callback revoked @vpn. */
  callbackRevoke(vpn: number): boolean {
    this.stats.callbackRevokes++;
    const e = this.mirror.get(vpn);
    const mapped = e !== undefined && e % 4 === TAG_ATOMIC;
    if (e !== undefined) {
      this.mirror.pt.delete(vpn);
      this.stats.tlbShootdowns++;
      this.core.charge(this.t.tlbShootdownNs);
      this.driver.addBackgroundNs(this.t.tlbShootdownNs);
    }
    if (mapped) this.moving.add(vpn);
    return mapped;
  }

  /** AtomicHoldsHost: the reference of @vpn is back; re-map it before the next command. */
  callbackReinstate(vpn: number, _moved: boolean): void {
    if (this.moving.delete(vpn)) this.reinstate.add(vpn);
  }

  /** Work the driver does before each command: stale holds go, revoked atomics come back. */
  private pending(): void {
    if (this.suspect.size) {
      for (const vpn of this.suspect) this.holds.validate(vpn);
      this.suspect.clear();
    }
    if (!this.reinstate.size) return;
    const vpns = [...this.reinstate];
    this.reinstate.clear();
    for (const vpn of vpns) {
      if (!this.holds.has(vpn)) continue;
      const e = this.mirror.get(vpn);
      if (e !== undefined && e % 4 === TAG_ATOMIC) continue;
      const pfn = currentPfn(this.mm, vpn * PAGE_SIZE);
      if (pfn < 0) continue;
      const r = this.holds.acquire(vpn * PAGE_SIZE, pfn);
      if (r < 0) continue;
      this.mirror.set(vpn, r, TAG_ATOMIC);
      this.stats.reinstates++;
      this.driver.addBackgroundNs(this.t.remapNs);
    }
  }

  /**
   * dropAtomic - give the CPU back every page of [start, end) the GPU holds for atomics: release
   * the holds and restore the device-exclusive entries (a GUP touch, as a CPU access would).
   */
  private dropAtomic(start: number, end: number): void {
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.ceil(Math.min(end, Number.MAX_SAFE_INTEGER) / PAGE_SIZE);
    this.holds.releaseRange(first, last);
    const atomics: number[] = [];
    for (const [vpn, e] of this.mirror.pt)
      if (vpn >= first && vpn < last && e % 4 === TAG_ATOMIC) atomics.push(vpn);
    if (!atomics.length || !this.mm.alive) return;
    const pages = new Int32Array(1);
    this.selfRestore = true;
    try {
      for (const vpn of atomics) {
        if (getUserPagesRemote(this.mm, vpn * PAGE_SIZE, 1, FOLL_GET, pages) === 1)
          gupPutFolio(this.core, pages[0], 1, FOLL_GET);
        this.mirror.pt.delete(vpn);
      }
    } finally {
      this.selfRestore = false;
    }
  }

  // ---- device reads and writes -------------------------------------------------------------

  /** Does the mirror entry @e allow the access? */
  private usable(e: number | undefined, write: boolean): boolean {
    return e !== undefined && (!write || e % 4 !== TAG_READ);
  }

  /**
   * access - the GPU reads [@addr, @addr + @buf.length) into @buf, or writes @buf there, through
   * its mirror; missing or read-only entries are faulted in with hmm_range_fault, one run of
   * consecutive pages at a time (pages the GPU already maps are never faulted again, so an
   * atomic mapping is not revoked by the GPU's own read).
   * Return: 0, -EFAULT (unmapped, PROT_NONE, VM_IO), -EPERM (write to read-only memory), -EBUSY
   * (hmm_range_fault kept being invalidated), -EINVAL (a range that wraps).
   */
  access(addr: number, buf: Uint8Array, write: boolean): OpResult {
    const len = buf.length;
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + len > Number.MAX_SAFE_INTEGER)
      return err(-ERRNO.EINVAL);
    if (len === 0) return ok();
    if (addr + len > TASK_SIZE) return err(-ERRNO.EFAULT);
    this.pending();
    const data = this.core.data;
    const first = Math.floor(addr / PAGE_SIZE);
    const last = Math.floor((addr + len - 1) / PAGE_SIZE);
    let faults = 0;
    let sysBytes = 0;
    let vramBytes = 0;
    let passes = 0;
    for (let vpn = first; vpn <= last;) {
      const e = this.mirror.get(vpn);
      if (this.usable(e, write)) {
        const pfn = Math.floor(e! / 4);
        const lo = Math.max(addr, vpn * PAGE_SIZE);
        const hi = Math.min(addr + len, (vpn + 1) * PAGE_SIZE);
        if (write) data.write(pfn, lo - vpn * PAGE_SIZE, buf, lo - addr, hi - lo);
        else data.read(pfn, lo - vpn * PAGE_SIZE, hi - lo, buf, lo - addr);
        if (this.driver.vram.isOurs(pfn)) vramBytes += hi - lo;
        else sysBytes += hi - lo;
        vpn++;
        continue;
      }
      if (++passes > last - first + 16)
        return err(-ERRNO.EBUSY, this.accessNs(sysBytes, vramBytes, faults), faults);
      let end = vpn + 1;
      while (end <= last && !this.usable(this.mirror.get(end), write)) end++;
      const f = this.mirror.fault(vpn * PAGE_SIZE, end * PAGE_SIZE, write);
      faults += f.batches;
      if (f.ret) return err(f.ret, this.accessNs(sysBytes, vramBytes, faults), faults);
      // Our own device pages come back read-only after fork: bring them home to write them.
      for (const own of f.ownReadOnly) {
        const r = this.migrate(own * PAGE_SIZE, PAGE_SIZE, false);
        if (r.ret) return err(r.ret, this.accessNs(sysBytes, vramBytes, faults), faults);
      }
    }
    return ok(this.accessNs(sysBytes, vramBytes, faults), faults, last - first + 1);
  }

  private accessNs(sysBytes: number, vramBytes: number, faults: number): number {
    const t = this.t;
    let ns = faults * t.gpuFaultNs;
    if (sysBytes) ns += t.sysmemLatencyNs + sysBytes / t.sysmemBytesPerNs;
    if (vramBytes) ns += t.vramLatencyNs + vramBytes / t.vramBytesPerNs;
    return Math.round(ns);
  }

  // ---- migration ---------------------------------------------------------------------------

  /**
   * migrate - move the pages of [@addr, @addr + @len) (addr page aligned; len rounded up to
   * pages) into this GPU's memory, or this GPU's pages of the range back to system memory, with
   * migrate_vma, VMA by VMA, MIGRATE_BATCH pages at a time. Pages the GPU holds for atomics are
   * given back to the CPU first (a device-exclusive entry is not migratable by migrate_vma).
   * Return (cpages: pages moved): 0; -EINVAL (unaligned, empty or wrapping range, a hole or a
   * VMA without read permission, as test_hmm answers); to device also -ENOENT (some page could
   * not move: shared memory, another device's page, a page pinned by someone), -ENOMEM (device
   * memory is full).
   */
  migrate(addr: number, len: number, toDevice: boolean): OpResult {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || addr % PAGE_SIZE || len <= 0)
      return err(-ERRNO.EINVAL);
    const end = addr + Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
    if (end > TASK_SIZE) return err(-ERRNO.EINVAL);
    if (!this.mm.alive) return err(-ERRNO.EINVAL);
    this.pending();
    if (toDevice) this.dropAtomic(addr, end);
    const t = this.t;
    const vram = this.driver.vram;
    const src = new Float64Array(MIRROR_BATCH);
    const dst = new Float64Array(MIRROR_BATCH);
    let ns = 0;
    let moved = 0;
    let nomem = false;
    for (let a = addr; a < end;) {
      const vma = this.mm.vmaLookup(a);
      if (!vma || !(vma.flags & VM_READ)) return err(-ERRNO.EINVAL, ns, 0, moved);
      const next = Math.min(end, a + MIRROR_BATCH * PAGE_SIZE, vma.end);
      dst.fill(0);
      const args: MigrateVma = {
        vma,
        src,
        dst,
        start: a,
        end: next,
        cpages: 0,
        npages: 0,
        pgmapOwner: this.driver,
        flags: toDevice ? MIGRATE_VMA_SELECT_SYSTEM : MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
      };
      const ret = migrateVmaSetup(args);
      if (ret) return err(ret, ns, 0, moved);
      let n = 0;
      if (toDevice) {
        for (let i = 0; i < args.npages; i++) {
          if (!(src[i] & MIGRATE_PFN_MIGRATE)) continue;
          const spage = migratePfnToPage(src[i]);
          const dpage = vram.allocPage();
          if (dpage < 0) {
            nomem = true;
            continue;
          }
          if (spage >= 0) this.core.data.copyPage(dpage, spage);
          else this.core.data.clear(dpage);
          dst[i] = migratePfn(dpage);
          if (src[i] & MIGRATE_PFN_WRITE || (spage < 0 && vma.flags & VM_WRITE)) dst[i] += MIGRATE_PFN_WRITE;
        }
      } else vram.copyToSystem(args, this.mm.node);
      migrateVmaPages(args);
      for (let i = 0; i < args.npages; i++) {
        if (!(src[i] & MIGRATE_PFN_MIGRATE) || !(dst[i] & MIGRATE_PFN_VALID)) continue;
        n++;
        // Map what moved in the device page table (dmirror_migrate_finalize_and_map).
        if (toDevice)
          this.mirror.set(
            a / PAGE_SIZE + i,
            migratePfnToPage(dst[i]),
            dst[i] & MIGRATE_PFN_WRITE ? TAG_WRITE : TAG_READ,
          );
      }
      migrateVmaFinalize(args);
      if (args.cpages) ns += t.migrateSetupNs + (n * PAGE_SIZE) / t.migrateBytesPerNs;
      moved += n;
      a = next;
    }
    if (toDevice) this.stats.migratedToDevice += moved;
    else this.stats.migratedToSystem += moved;
    ns = Math.round(ns);
    if (!toDevice) return ok(ns, 0, moved);
    // Every page of the range must now be ours (the selftests' -ENOENT otherwise).
    let ours = 0;
    const q = this.mirror.query(addr, end, (start, pfns, count) => {
      for (let i = 0; i < count; i++) {
        const v = pfns[i];
        if (!(v & HMM_PFN_VALID) || !vram.isOurs(hmmPfnToPage(v))) continue;
        ours++;
        this.mirror.set(start / PAGE_SIZE + i, hmmPfnToPage(v), v & HMM_PFN_WRITE ? TAG_WRITE : TAG_READ);
      }
    });
    if (q) return err(q, ns, 0, moved);
    if (ours < (end - addr) / PAGE_SIZE) return err(nomem ? -ERRNO.ENOMEM : -ERRNO.ENOENT, ns, 0, moved);
    return ok(ns, 0, moved);
  }

  // ---- atomics -----------------------------------------------------------------------------

  /**
   * atomic - one atomic operation of @width bits (32 or 64) at @addr (aligned to its size):
   * GPU_ATOMIC_FETCH_ADD adds @operand; GPU_ATOMIC_CAS stores @operand when the word equals
   * @expected. Either way result is the old value. On this GPU's memory the atomic is local; on
   * system memory the GPU first takes exclusive access (make_device_exclusive, held as the
   * context's mode says), and keeps it until the CPU or mm takes it back.
   * Return: 0; -EINVAL (bad width, op or alignment); -EFAULT (unmapped, PROT_NONE); -EPERM
   * (read-only memory, as hmm_range_fault answers a write request there); -EOPNOTSUPP (shared or
   * hugetlb memory: make_device_exclusive works on private anonymous memory only); -ENOMEM
   * (longterm-pin could not move the page out of ZONE_MOVABLE); -EBUSY.
   */
  atomic(addr: number, op: number, width: number, operand: bigint, expected: bigint): AtomicResult {
    const bad = (ret: number, ns = 0, faults = 0, flags = 0): AtomicResult => ({
      ...err(ret, ns, faults),
      result: 0n,
      flags,
    });
    if (width !== 32 && width !== 64) return bad(-ERRNO.EINVAL);
    if (op !== GPU_ATOMIC_FETCH_ADD && op !== GPU_ATOMIC_CAS) return bad(-ERRNO.EINVAL);
    if (!Number.isSafeInteger(addr) || addr < 0 || addr % (width / 8)) return bad(-ERRNO.EINVAL);
    if (addr >= TASK_SIZE) return bad(-ERRNO.EFAULT);
    const vpn = Math.floor(addr / PAGE_SIZE);
    const wasQueued = this.reinstate.has(vpn);
    this.pending();
    const t = this.t;
    const vram = this.driver.vram;
    const va = vpn * PAGE_SIZE;
    let faults = 0;
    const back = this.mirror.get(vpn);
    let flags = wasQueued && back !== undefined && back % 4 === TAG_ATOMIC ? GPU_ATOMIC_F_REINSTATED : 0;
    let pfn = -1;
    let local = false;
    for (let tries = 0; pfn < 0; tries++) {
      if (tries > 16) return bad(-ERRNO.EBUSY, faults * t.gpuFaultNs, faults, flags);
      const e = this.mirror.get(vpn);
      if (e !== undefined) {
        const p = Math.floor(e / 4);
        if (e % 4 === TAG_ATOMIC) {
          pfn = p;
          break;
        }
        if (e % 4 === TAG_WRITE && vram.isOurs(p)) {
          pfn = p;
          local = true;
          break;
        }
      }
      // A GPU fault: make the page present and writable for the device, then see where it is.
      flags |= GPU_ATOMIC_F_FAULTED;
      const f = this.mirror.fault(va, va + PAGE_SIZE, true);
      faults += f.batches;
      if (f.ret) return bad(f.ret, faults * t.gpuFaultNs, faults, flags);
      if (f.ownReadOnly.length) {
        const r = this.migrate(va, PAGE_SIZE, false);
        if (r.ret) return bad(r.ret, faults * t.gpuFaultNs, faults, flags);
        continue;
      }
      const now = this.mirror.get(vpn);
      if (now === undefined) continue;
      const p = Math.floor(now / 4);
      if (vram.isOurs(p)) continue;
      const r = this.holds.acquire(va, p);
      if (r === -ERRNO.EAGAIN) continue;
      if (r < 0) return bad(r, faults * t.gpuFaultNs, faults, flags);
      this.mirror.set(vpn, r, TAG_ATOMIC);
      this.stats.acquires++;
    }
    const result = this.apply(pfn, addr % PAGE_SIZE, op, width, operand, expected);
    this.stats.atomics++;
    if (local) this.stats.atomicsLocal++;
    flags |= local ? GPU_ATOMIC_F_VRAM : GPU_ATOMIC_F_SYSMEM;
    const ns = faults * t.gpuFaultNs + (local ? t.vramAtomicNs : t.sysmemAtomicNs);
    return { ret: 0, ns, faults, cpages: 1, result, flags };
  }

  /**
   * The read-modify-write itself, little-endian, on the page's bytes (32-bit words in plain
   * numbers: this is the hot path of every atomic).
   */
  private apply(
    pfn: number,
    off: number,
    op: number,
    width: number,
    operand: bigint,
    expected: bigint,
  ): bigint {
    const data = this.core.data;
    const page = data.view(pfn);
    const lo = page
      ? (page[off] | (page[off + 1] << 8) | (page[off + 2] << 16) | (page[off + 3] << 24)) >>> 0
      : 0;
    if (width === 32) {
      const arg = Number(operand & MASK32);
      let next: number;
      if (op === GPU_ATOMIC_FETCH_ADD) next = (lo + arg) >>> 0;
      else if (lo === Number(expected & MASK32)) next = arg;
      else return BigInt(lo);
      if (next !== lo) storeWord(data.writable(pfn), off, next);
      return BigInt(lo);
    }
    const hi = page
      ? (page[off + 4] | (page[off + 5] << 8) | (page[off + 6] << 16) | (page[off + 7] << 24)) >>> 0
      : 0;
    const old = (BigInt(hi) << 32n) | BigInt(lo);
    let next: bigint;
    if (op === GPU_ATOMIC_FETCH_ADD) next = (old + operand) & MASK64;
    else if (old === (expected & MASK64)) next = operand & MASK64;
    else return old;
    if (next !== old) {
      const w = data.writable(pfn);
      storeWord(w, off, Number(next & MASK32));
      storeWord(w, off + 4, Number(next >> 32n));
    }
    return old;
  }

  // ---- introspection -----------------------------------------------------------------------

  /**
   * snapshot - one HMM_DMIRROR_PROT_* byte per page of [@addr, @addr + @npages pages) into
   * @out: the CPU page table as hmm_range_fault reports it, without faulting (dmirror_snapshot).
   * Return: 0, or -EINVAL (unaligned, empty), hmm_range_fault's -errno.
   */
  snapshot(addr: number, npages: number, out: Uint8Array): number {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE || !(npages > 0) || out.length < npages)
      return -ERRNO.EINVAL;
    if (!this.mm.alive) return -ERRNO.EINVAL;
    if (addr + npages * PAGE_SIZE > TASK_SIZE) return -ERRNO.EFAULT;
    const core = this.core;
    return this.mirror.query(addr, addr + npages * PAGE_SIZE, (start, pfns, n) => {
      const base = (start - addr) / PAGE_SIZE;
      for (let i = 0; i < n; i++) {
        const v = pfns[i];
        let perm: number;
        if (v & HMM_PFN_ERROR) perm = HMM_DMIRROR_PROT_ERROR;
        else if (!(v & HMM_PFN_VALID)) perm = HMM_DMIRROR_PROT_NONE;
        else {
          const page = hmmPfnToPage(v);
          if (isDevicePrivatePage(core, page))
            perm = this.driver.vram.isOurs(page)
              ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL
              : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
          else perm = page === core.alloc.zeroPfn ? HMM_DMIRROR_PROT_ZERO : HMM_DMIRROR_PROT_NONE;
          perm |= v & HMM_PFN_WRITE ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
          const order = hmmPfnToMapOrder(v);
          if (order === 9) perm |= HMM_DMIRROR_PROT_PMD;
          else if (order === 18) perm |= HMM_DMIRROR_PROT_PUD;
        }
        out[base + i] = perm;
      }
    });
  }

  /** mirrorState - one GPU_MIRROR_* byte per page of [@addr, ... @npages pages): what the GPU maps and holds. */
  mirrorState(addr: number, npages: number, out: Uint8Array): number {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE || !(npages > 0) || out.length < npages)
      return -ERRNO.EINVAL;
    const first = addr / PAGE_SIZE;
    for (let i = 0; i < npages; i++) {
      const vpn = first + i;
      const e = this.mirror.get(vpn);
      let b = 0;
      if (e !== undefined) {
        const tag = e % 4;
        b |=
          tag === TAG_READ
            ? GPU_MIRROR_READ
            : tag === TAG_WRITE
              ? GPU_MIRROR_READ | GPU_MIRROR_WRITE
              : GPU_MIRROR_READ | GPU_MIRROR_WRITE | GPU_MIRROR_ATOMIC;
        if (this.driver.vram.isOurs(Math.floor(e / 4))) b |= GPU_MIRROR_VRAM;
      }
      if (this.holds.has(vpn)) b |= GPU_MIRROR_HELD;
      if (this.reinstate.has(vpn) || this.moving.has(vpn)) b |= GPU_MIRROR_REINSTATE;
      out[i] = b;
    }
    return 0;
  }

  /** heldPages - pages held now (pins or short-term references). */
  heldPages(): number {
    return this.holds.size;
  }

  // ---- GPU kernels -------------------------------------------------------------------------

  /**
   * launch - run @kernel, a JavaScript function standing for a GPU kernel, against a GpuThread
   * whose accesses go through this context. Its time is the launch overhead plus the sum of its
   * accesses (one thread: no overlap is modelled).
   * Return: 0, or the first -errno an access threw (the kernel stops there, as a GPU kernel
   * taking an unrecoverable fault does); a non-KernelError exception propagates.
   */
  launch(kernel: (t: GpuThread) => void): OpResult {
    let ns = this.t.launchNs;
    let faults = 0;
    let ops = 0;
    const run = <R extends OpResult>(r: R): R => {
      ns += r.ns;
      faults += r.faults;
      ops++;
      if (r.ret) throw new KernelError(r.ret, 'GPU kernel access');
      return r;
    };
    const word = (addr: number, op: number, width: number, operand: bigint, expected: bigint): bigint =>
      run(this.atomic(addr, op, width, operand, expected)).result;
    const thread: GpuThread = {
      read: (addr, len) => {
        if (!Number.isSafeInteger(len) || len < 0) throw new KernelError(-ERRNO.EINVAL, 'read length');
        const buf = new Uint8Array(len);
        run(this.access(addr, buf, false));
        return buf;
      },
      write: (addr, bytes) => void run(this.access(addr, bytes, true)),
      load32: (addr) => {
        const b = thread.read(addr, 4);
        return new DataView(b.buffer).getUint32(0, true);
      },
      store32: (addr, value) => {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, value >>> 0, true);
        thread.write(addr, b);
      },
      atomicAdd: (addr, value) => Number(word(addr, GPU_ATOMIC_FETCH_ADD, 32, BigInt(value >>> 0), 0n)),
      atomicAdd64: (addr, value) => word(addr, GPU_ATOMIC_FETCH_ADD, 64, BigInt.asUintN(64, value), 0n),
      atomicCas: (addr, expected, desired) =>
        Number(word(addr, GPU_ATOMIC_CAS, 32, BigInt(desired >>> 0), BigInt(expected >>> 0))),
      atomicCas64: (addr, expected, desired) =>
        word(addr, GPU_ATOMIC_CAS, 64, BigInt.asUintN(64, desired), BigInt.asUintN(64, expected)),
    };
    this.stats.launches++;
    try {
      kernel(thread);
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      return err(e.errno, ns, faults, ops);
    }
    return ok(ns, faults, ops);
  }
}
