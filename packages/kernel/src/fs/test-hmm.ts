/**
 * The HMM test driver (lib/test_hmm.c, lib/test_hmm_uapi.h): /dev/hmm_dmirror<N>, through which
 * the kernel's selftests (tools/testing/selftests/mm/hmm-tests.c) drive hmm_range_fault,
 * migrate_vma and make_device_exclusive on the calling process's memory. Each open file mirrors
 * the opener's address space in a "device page table" (a map from virtual page to pfn, kept
 * coherent by an interval notifier over the whole address space); each device has its own
 * device-private memory, added chunk by chunk (memremapPages) as migrations need it.
 *
 * Registered by registerTestHmm(kernel, { devices }); not present by default (the kernel's is a
 * module). Differences from the kernel: chunks are DMIRROR_CHUNK_PAGES pages (the kernel's are
 * 256 MiB) and their number is bounded by the ZONE_DEVICE pfn space; device pages keep their own
 * bytes (the kernel's fake device backs each with a system page); only the device-private
 * variant exists (no MEMORY_DEVICE_COHERENT, so hmm-tests' coherent variants skip, as they do on
 * a machine without SPM); the 1 s hmm_range_fault timeout is a retry count; a bounce buffer
 * larger than DMIRROR_BOUNCE_MAX fails with ENOMEM (vmalloc's failure).
 */
import { ERRNO } from '../uapi/errno';
import { _IOWR } from '../uapi/ioctl';
import { PAGE_SIZE } from '../uapi/mman';
import type { DeviceCore } from '../base/device-core';
import { Cdev } from '../base/chrdev';
import { Device } from '../base/device';
import { VM_FAULT_SIGBUS } from '../mm/fault-flags';
import { GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../mm/gfp';
import {
  MEMORY_DEVICE_PRIVATE,
  folioTrylock,
  isDevicePrivatePage,
  isZoneDevicePage,
  memremapPages,
  memunmapPages,
  pagePgmap,
  releaseMemRegion,
  requestFreeMemRegion,
  zoneDevicePageInit,
  type DevPagemap,
  type DevPagemapFault,
  type PfnRange,
} from '../mm/memremap';
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
  type MigrateVma,
} from '../mm/migrate-device';
import type { MmCore } from '../mm/mm-core';
import { MmStruct } from '../mm/mm-struct';
import { MMU_NOTIFY_MIGRATE } from '../mm/notifier-hooks';
import { putPage } from '../mm/page-ref';
import { vmInsertPage } from '../mm/device-map';
import type { VmAreaStruct } from '../mm/vma';
import { VM_READ, VM_WRITE } from '../mm/vm-flags';
import {
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmmPfnToMapOrder,
  hmmPfnToPage,
  hmmRangeFault,
  type HmmRange,
} from '../hmm/hmm';
import { makeDeviceExclusive, putDeviceExclusiveFolio } from '../hmm/make-device-exclusive';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from '../mmu-notifier/interval-notifier';
import { MmuIntervalNotifier, type MmuIntervalNotifierOps } from '../mmu-notifier/types';
import type { Current } from '../proc/current';
import type { File, FileOperations, IoctlArg } from './file';
import { defineStruct, readIoctlArg, writeIoctlArg } from './struct-layout';
import { copyFromUser, copyToUser } from '../proc/current';

/** struct hmm_dmirror_cmd (40 bytes): addr, ptr, npages in; cpages, faults out. */
export const HMM_DMIRROR_CMD_LAYOUT = defineStruct('hmm_dmirror_cmd', [
  ['addr', 'u64'],
  ['ptr', 'u64'],
  ['npages', 'u64'],
  ['cpages', 'u64'],
  ['faults', 'u64'],
] as const);

/** The device reads [addr, addr + npages pages) into the buffer at ptr (faulting through hmm_range_fault). */
export const HMM_DMIRROR_READ = _IOWR('H', 0x00, HMM_DMIRROR_CMD_LAYOUT.size);
/** The device writes the buffer at ptr to [addr, ...). */
export const HMM_DMIRROR_WRITE = _IOWR('H', 0x01, HMM_DMIRROR_CMD_LAYOUT.size);
/** migrate_vma the range to the device's private memory, then read it back into ptr. */
export const HMM_DMIRROR_MIGRATE_TO_DEV = _IOWR('H', 0x02, HMM_DMIRROR_CMD_LAYOUT.size);
/** migrate_vma the device's pages of the range back to system memory. */
export const HMM_DMIRROR_MIGRATE_TO_SYS = _IOWR('H', 0x03, HMM_DMIRROR_CMD_LAYOUT.size);
/** One HMM_DMIRROR_PROT_* byte per page at ptr, from hmm_range_fault without faulting. */
export const HMM_DMIRROR_SNAPSHOT = _IOWR('H', 0x04, HMM_DMIRROR_CMD_LAYOUT.size);
/** make_device_exclusive every page of the range, then read it into ptr. */
export const HMM_DMIRROR_EXCLUSIVE = _IOWR('H', 0x05, HMM_DMIRROR_CMD_LAYOUT.size);
/** EPERM if the device still holds an exclusive (atomic) mapping in the range, else 0. */
export const HMM_DMIRROR_CHECK_EXCLUSIVE = _IOWR('H', 0x06, HMM_DMIRROR_CMD_LAYOUT.size);
/** Evict and remove all of the device's memory (migrate_device_range, memunmap_pages). */
export const HMM_DMIRROR_RELEASE = _IOWR('H', 0x07, HMM_DMIRROR_CMD_LAYOUT.size);

/** SNAPSHOT bytes (enum in test_hmm_uapi.h). */
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;
export const HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40;
export const HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50;

/** Zone device types of the uapi (0 is reserved). Only the private one is modelled. */
export const HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1;
export const HMM_DMIRROR_MEMORY_DEVICE_COHERENT = 2;

/** DMIRROR_NDEVICES: the most devices one registration makes (private and coherent pairs). */
export const DMIRROR_NDEVICES = 4;
/** Pages per device-memory chunk (the kernel's DEVMEM_CHUNK_SIZE is 256 MiB). */
export const DMIRROR_CHUNK_PAGES = 256;
/** Largest bounce buffer (a larger command fails with ENOMEM, as vmalloc would). */
export const DMIRROR_BOUNCE_MAX = 2 ** 30;
/** hmm_range_fault attempts before -EBUSY (the kernel's 1 s DMIRROR_RANGE_FAULT_TIMEOUT). */
const DMIRROR_RANGE_FAULT_RETRIES = 1000;
/** Pages per hmm_range_fault / migrate_vma call (the kernel's on-stack arrays of 64). */
const BATCH = 64;
/** The whole address space, for the mirror's interval (ULONG_MAX & PAGE_MASK). */
const WHOLE_MM = 2 ** 53 - PAGE_SIZE;
/** 2^64: a command's range must not wrap. */
const U64_END = 2 ** 64;

/** Mirror tags (the xarray pointer tags of test_hmm.c). */
const DPT_XA_TAG_READ = 0;
const DPT_XA_TAG_ATOMIC = 1;
const DPT_XA_TAG_WRITE = 3;

/** One chunk of a device's private memory (struct dmirror_chunk). */
interface DmirrorChunk {
  pagemap: DevPagemap;
  region: PfnRange;
  /** Being removed: pages freed now do not go back on the free list. */
  remove: boolean;
  /** Which open file's mirror maps each page (rpage->zone_device_data), to clear it on fault. */
  mirror: Array<Dmirror | null>;
}

/** One /dev/hmm_dmirror<N> (struct dmirror_device). */
class DmirrorDevice {
  chunks: DmirrorChunk[] = [];
  /** Free device pages, allocated from the end (mdevice->free_pages is a LIFO list). */
  freePages: number[] = [];
  /** Pages handed out and given back (calloc, cfree). */
  calloc = 0;
  cfree = 0;
  cdev: Cdev | null = null;
  device: Device | null = null;

  constructor(
    readonly id: number,
    readonly core: MmCore,
    readonly chunkPages: number,
  ) {}
}

/** The mirror's interval notifier, knowing its dmirror (container_of). */
class MirrorNotifier extends MmuIntervalNotifier {
  constructor(readonly dmirror: Dmirror) {
    super();
  }
}

/** One open file: the mirror of the opener's address space (struct dmirror). */
class Dmirror {
  /** Mirror page table: virtual page number -> pfn * 4 + tag. */
  readonly pt = new Map<number, number>();
  readonly notifier: MirrorNotifier;

  constructor(
    readonly mdevice: DmirrorDevice,
    readonly mm: MmStruct,
  ) {
    this.notifier = new MirrorNotifier(this);
  }
}

/** The registration of one kernel. */
interface TestHmm {
  devices: DmirrorDevice[];
  base: number;
  core: MmCore;
}

const registered = new WeakMap<DeviceCore, TestHmm>();

/** What registerTestHmm needs: a Kernel has both. */
export interface TestHmmHost {
  readonly devices: DeviceCore;
  readonly mmCore: MmCore;
}

/** Options of registerTestHmm. */
export interface TestHmmOptions {
  /** Devices to create, 1 to DMIRROR_NDEVICES (default 2: hmm-tests' hmm and hmm2 fixtures). */
  devices?: number;
  /** Pages per chunk of device memory (default DMIRROR_CHUNK_PAGES). */
  chunkPages?: number;
}

function currentMm(current: Current): MmStruct | null {
  const mm = (current as { mm?: unknown }).mm;
  return mm instanceof MmStruct ? mm : null;
}

function mirrorSet(d: Dmirror, vpn: number, pfn: number, tag: number): void {
  d.pt.set(vpn, pfn * 4 + tag);
}

/** dmirror_do_update: forget the mirror's entries for [start, end). */
function dmirrorDoUpdate(d: Dmirror, start: number, end: number): void {
  const first = Math.floor(start / PAGE_SIZE);
  const last = Math.ceil(end / PAGE_SIZE);
  if (last - first > d.pt.size) {
    for (const vpn of [...d.pt.keys()]) if (vpn >= first && vpn < last) d.pt.delete(vpn);
  } else for (let vpn = first; vpn < last; vpn++) d.pt.delete(vpn);
}

/**
 * dmirror_interval_invalidate. (The kernel's mutex_trylock for a non-blockable range cannot
 * fail here: nothing else holds the driver lock while an invalidation runs.)
 */
const dmirrorMinOps: MmuIntervalNotifierOps = {
  invalidate(sub, range, curSeq) {
    const d = (sub as MirrorNotifier).dmirror;
    // Invalidations of our own migrations are handled by the migration itself.
    if (range.event === MMU_NOTIFY_MIGRATE && range.owner === d.mdevice) return true;
    mmuIntervalSetSeq(sub, curSeq);
    dmirrorDoUpdate(d, range.start, range.end);
    return true;
  },
};

/** dmirror_do_fault: install the hmm pfns of a faulted range in the mirror. */
function dmirrorDoFault(d: Dmirror, range: HmmRange): number {
  const core = d.mdevice.core;
  const n = (range.end - range.start) / PAGE_SIZE;
  for (let i = 0; i < n; i++) {
    const v = range.hmmPfns[i];
    if (v & HMM_PFN_ERROR || !(v & HMM_PFN_VALID)) {
      core.dmesg.printk('WARNING: lib/test_hmm.c: dmirror_do_fault: invalid hmm pfn after hmm_range_fault');
      return -ERRNO.EFAULT;
    }
    let tag = DPT_XA_TAG_READ;
    if (v & HMM_PFN_WRITE) tag = DPT_XA_TAG_WRITE;
    else if (range.defaultFlags & HMM_PFN_REQ_WRITE) return -ERRNO.EFAULT;
    mirrorSet(d, range.start / PAGE_SIZE + i, hmmPfnToPage(v), tag);
  }
  return 0;
}

/** dmirror_range_fault: the hmm_range_fault retry loop, then install under the "lock". */
function dmirrorRangeFault(d: Dmirror, range: HmmRange): number {
  for (let tries = 0; ; tries++) {
    if (tries >= DMIRROR_RANGE_FAULT_RETRIES) return -ERRNO.EBUSY;
    range.notifierSeq = mmuIntervalReadBegin(range.notifier);
    const ret = hmmRangeFault(range);
    if (ret === -ERRNO.EBUSY) continue;
    if (ret) return ret;
    if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) continue;
    return dmirrorDoFault(d, range);
  }
}

/** dmirror_fault: fault [start, end) into the mirror, 64 pages at a time. */
function dmirrorFault(d: Dmirror, start: number, end: number, write: boolean): number {
  if (!d.mm.alive) return 0;
  const range: HmmRange = {
    notifier: d.notifier,
    notifierSeq: 0,
    start: 0,
    end: 0,
    hmmPfns: new Float64Array(BATCH),
    defaultFlags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
    pfnFlagsMask: 0,
    devPrivateOwner: d.mdevice,
  };
  for (let addr = start; addr < end; addr = range.end) {
    range.start = addr;
    range.end = Math.min(addr + BATCH * PAGE_SIZE, end);
    const ret = dmirrorRangeFault(d, range);
    if (ret) return ret;
  }
  return 0;
}

interface Bounce {
  buf: Uint8Array;
  addr: number;
  cpages: number;
}

function bounceInit(addr: number, size: number): Bounce | number {
  if (size > DMIRROR_BOUNCE_MAX) return -ERRNO.ENOMEM;
  return { buf: new Uint8Array(size), addr, cpages: 0 };
}

/** dmirror_do_read: copy the mirrored pages of [start, end) into the bounce buffer. */
function dmirrorDoRead(d: Dmirror, start: number, end: number, b: Bounce): number {
  const data = d.mdevice.core.data;
  let off = start - b.addr;
  for (let vpn = start / PAGE_SIZE; vpn < end / PAGE_SIZE; vpn++) {
    const e = d.pt.get(vpn);
    if (e === undefined) return -ERRNO.ENOENT;
    data.read(Math.floor(e / 4), 0, PAGE_SIZE, b.buf, off);
    off += PAGE_SIZE;
    b.cpages++;
  }
  return 0;
}

/** dmirror_do_write: copy the bounce buffer into the pages the mirror maps writable. */
function dmirrorDoWrite(d: Dmirror, start: number, end: number, b: Bounce): number {
  const data = d.mdevice.core.data;
  let off = start - b.addr;
  for (let vpn = start / PAGE_SIZE; vpn < end / PAGE_SIZE; vpn++) {
    const e = d.pt.get(vpn);
    if (e === undefined || e % 4 !== DPT_XA_TAG_WRITE) return -ERRNO.ENOENT;
    data.write(Math.floor(e / 4), 0, b.buf, off, PAGE_SIZE);
    off += PAGE_SIZE;
    b.cpages++;
  }
  return 0;
}

type Cmd = ReturnType<typeof HMM_DMIRROR_CMD_LAYOUT.decode>;

/** The device read or write loop: access what is mirrored, fault the rest in, again. */
function dmirrorAccess(d: Dmirror, cmd: Cmd, current: Current, write: boolean): number {
  const size = cmd.npages * PAGE_SIZE;
  let start = cmd.addr;
  const end = start + size;
  const b = bounceInit(start, size);
  if (typeof b === 'number') return b;
  if (write && copyFromUser(current, b.buf, cmd.ptr) < 0) return -ERRNO.EFAULT;
  let ret: number;
  // Each pass either copies pages or faults some in; a mirror that never fills is a bug.
  for (let passes = 0; ; passes++) {
    ret = write ? dmirrorDoWrite(d, start, end, b) : dmirrorDoRead(d, start, end, b);
    if (ret !== -ERRNO.ENOENT) break;
    if (passes > cmd.npages + 16) {
      ret = -ERRNO.EBUSY;
      break;
    }
    start = cmd.addr + b.cpages * PAGE_SIZE;
    ret = dmirrorFault(d, start, end, write);
    if (ret) break;
    cmd.faults++;
  }
  if (ret === 0 && !write && copyToUser(current, cmd.ptr, b.buf) < 0) ret = -ERRNO.EFAULT;
  cmd.cpages = b.cpages;
  return ret;
}

function chunkOf(md: DmirrorDevice, pfn: number): DmirrorChunk | null {
  for (const c of md.chunks) if (pfn >= c.region.start && pfn < c.region.end) return c;
  return null;
}

/** dmirror_allocate_chunk: a new chunk of device memory; with @take, one page of it for the caller. */
function dmirrorAllocateChunk(md: DmirrorDevice, take: boolean): number {
  const core = md.core;
  const region = requestFreeMemRegion(core, md.chunkPages, 'hmm_dmirror');
  if (typeof region === 'number') return region;
  const chunk: DmirrorChunk = {
    pagemap: {
      type: MEMORY_DEVICE_PRIVATE,
      range: region,
      ops: {
        pageFree: (pfn) => dmirrorDevmemFree(md, pfn),
        migrateToRam: (vmf) => dmirrorDevmemFault(md, vmf),
      },
      owner: md,
    },
    region,
    remove: false,
    mirror: new Array<Dmirror | null>(md.chunkPages).fill(null),
  };
  const r = memremapPages(core, chunk.pagemap);
  if (r < 0) {
    releaseMemRegion(core, region);
    return r;
  }
  md.chunks.push(chunk);
  const mb = (md.chunkPages * PAGE_SIZE) / 2 ** 20;
  core.dmesg.printk(
    `hmm_dmirror: added new ${mb} MB chunk (total ${md.chunks.length} chunks, ${md.chunks.length * mb} MB) PFNs [0x${region.start.toString(16)} 0x${region.end.toString(16)})`,
  );
  for (let pfn = region.start; pfn < region.end; pfn++) md.freePages.push(pfn);
  if (!take) return 0;
  md.calloc++;
  return md.freePages.pop()!;
}

/** dmirror_devmem_alloc_page: a free device page, referenced and locked, or -1. */
function dmirrorDevmemAllocPage(md: DmirrorDevice): number {
  let dpage: number;
  if (md.freePages.length) {
    dpage = md.freePages.pop()!;
    md.calloc++;
  } else {
    dpage = dmirrorAllocateChunk(md, true);
    if (dpage < 0) return -1;
  }
  return zoneDevicePageInit(md.core, dpage) === 0 ? dpage : -1;
}

/** dmirror_devmem_free: pagemap.ops.pageFree. */
function dmirrorDevmemFree(md: DmirrorDevice, pfn: number): void {
  const chunk = chunkOf(md, pfn);
  if (!chunk) return;
  chunk.mirror[pfn - chunk.region.start] = null;
  if (chunk.remove) return;
  md.cfree++;
  md.freePages.push(pfn);
}

/** dmirror_migrate_alloc_and_copy: device pages for every page to migrate, with its bytes. */
function dmirrorMigrateAllocAndCopy(args: MigrateVma, d: Dmirror): void {
  const md = d.mdevice;
  const core = md.core;
  const src = args.src!;
  const dst = args.dst!;
  for (let i = 0; i < args.npages; i++) {
    if (!(src[i] & MIGRATE_PFN_MIGRATE)) continue;
    const spage = migratePfnToPage(src[i]);
    if (spage >= 0 && isZoneDevicePage(core, spage)) {
      core.dmesg.printk(`WARNING: lib/test_hmm.c: page already in device spage pfn: 0x${spage.toString(16)}`);
      continue;
    }
    const dpage = dmirrorDevmemAllocPage(md);
    if (dpage < 0) continue;
    if (spage >= 0) core.data.copyPage(dpage, spage);
    else core.data.clear(dpage);
    core.charge(PAGE_SIZE / core.costs.memcpyBytesPerNs);
    const chunk = chunkOf(md, dpage)!;
    chunk.mirror[dpage - chunk.region.start] = d;
    dst[i] = migratePfn(dpage);
    if (src[i] & MIGRATE_PFN_WRITE || (spage < 0 && args.vma!.flags & VM_WRITE)) dst[i] += MIGRATE_PFN_WRITE;
  }
}

/** dmirror_migrate_finalize_and_map: map the migrated pages in the device's page table. */
function dmirrorMigrateFinalizeAndMap(args: MigrateVma, d: Dmirror): void {
  const src = args.src!;
  const dst = args.dst!;
  for (let i = 0; i < args.npages; i++) {
    if (!(src[i] & MIGRATE_PFN_MIGRATE)) continue;
    const dpage = migratePfnToPage(dst[i]);
    if (dpage < 0) continue;
    mirrorSet(
      d,
      args.start / PAGE_SIZE + i,
      dpage,
      dst[i] & MIGRATE_PFN_WRITE ? DPT_XA_TAG_WRITE : DPT_XA_TAG_READ,
    );
  }
}

/** dmirror_devmem_fault_alloc_and_copy: system pages for device pages going back. */
function dmirrorDevmemFaultAllocAndCopy(args: MigrateVma, d: Dmirror | null): void {
  const core = args.vma!.mm.core;
  const src = args.src!;
  const dst = args.dst!;
  for (let i = 0; i < args.npages; i++) {
    const spage = migratePfnToPage(src[i]);
    if (spage < 0 || !(src[i] & MIGRATE_PFN_MIGRATE)) continue;
    if (!isDevicePrivatePage(core, spage)) {
      core.dmesg.printk('WARNING: lib/test_hmm.c: dmirror_devmem_fault_alloc_and_copy: not a device page');
      continue;
    }
    const dpage = core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, args.vma!.mm.node);
    if (dpage < 0) continue;
    folioTrylock(core, dpage);
    d?.pt.delete(args.start / PAGE_SIZE + i);
    core.data.copyPage(dpage, spage);
    core.charge(PAGE_SIZE / core.costs.memcpyBytesPerNs);
    dst[i] = migratePfn(dpage) + (src[i] & MIGRATE_PFN_WRITE ? MIGRATE_PFN_WRITE : 0);
  }
}

/** dmirror_devmem_fault: pagemap.ops.migrateToRam. */
function dmirrorDevmemFault(md: DmirrorDevice, vmf: DevPagemapFault): number {
  const chunk = chunkOf(md, vmf.page);
  const d = chunk ? chunk.mirror[vmf.page - chunk.region.start] : null;
  const args: MigrateVma = {
    vma: vmf.vma,
    start: vmf.address,
    end: vmf.address + PAGE_SIZE,
    src: new Float64Array(1),
    dst: new Float64Array(1),
    cpages: 0,
    npages: 0,
    pgmapOwner: md,
    flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
    faultPage: vmf.page,
  };
  if (migrateVmaSetup(args)) return VM_FAULT_SIGBUS;
  dmirrorDevmemFaultAllocAndCopy(args, d);
  migrateVmaPages(args);
  migrateVmaFinalize(args);
  return 0;
}

/** The VMA-by-VMA, 64-page-batch loop of both migrate commands. */
function dmirrorMigrateLoop(d: Dmirror, cmd: Cmd, toDevice: boolean): number {
  const mm = d.mm;
  if (!mm.alive) return -ERRNO.EINVAL;
  const start = cmd.addr;
  const end = start + cmd.npages * PAGE_SIZE;
  const src = new Float64Array(BATCH);
  const dst = new Float64Array(BATCH);
  for (let addr = start; addr < end;) {
    const vma = mm.vmaLookup(addr);
    if (!vma || !(vma.flags & VM_READ)) return -ERRNO.EINVAL;
    const next = Math.min(end, addr + BATCH * PAGE_SIZE, vma.end);
    dst.fill(0);
    const args: MigrateVma = {
      vma,
      src,
      dst,
      start: addr,
      end: next,
      cpages: 0,
      npages: 0,
      pgmapOwner: d.mdevice,
      flags: toDevice ? MIGRATE_VMA_SELECT_SYSTEM : MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
    };
    const ret = migrateVmaSetup(args);
    if (ret) return ret;
    if (toDevice) {
      dmirrorMigrateAllocAndCopy(args, d);
      migrateVmaPages(args);
      dmirrorMigrateFinalizeAndMap(args, d);
    } else {
      dmirrorDevmemFaultAllocAndCopy(args, d);
      migrateVmaPages(args);
      for (let i = 0; i < args.npages; i++)
        if (src[i] & MIGRATE_PFN_VALID && src[i] & MIGRATE_PFN_MIGRATE) cmd.cpages++;
    }
    migrateVmaFinalize(args);
    addr = next;
  }
  return 0;
}

/** dmirror_migrate_to_device: migrate, then read the range back through the mirror. */
function dmirrorMigrateToDevice(d: Dmirror, cmd: Cmd, current: Current): number {
  const ret = dmirrorMigrateLoop(d, cmd, true);
  if (ret) return ret;
  const start = cmd.addr;
  const end = start + cmd.npages * PAGE_SIZE;
  const b = bounceInit(start, end - start);
  if (typeof b === 'number') return b;
  let r = dmirrorDoRead(d, start, end, b);
  if (r === 0 && copyToUser(current, cmd.ptr, b.buf) < 0) r = -ERRNO.EFAULT;
  cmd.cpages = b.cpages;
  return r;
}

/** dmirror_exclusive: make every page device-exclusive and map it "atomic", then read it back. */
function dmirrorExclusive(d: Dmirror, cmd: Cmd, current: Current): number {
  const mm = d.mm;
  if (!mm.alive) return -ERRNO.EINVAL;
  const core = d.mdevice.core;
  const start = cmd.addr;
  const end = start + cmd.npages * PAGE_SIZE;
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    const r = makeDeviceExclusive(mm, addr, null);
    if (typeof r === 'number') return r;
    mirrorSet(d, addr / PAGE_SIZE, r.page, DPT_XA_TAG_ATOMIC);
    putDeviceExclusiveFolio(core, r.folio);
  }
  const b = bounceInit(start, end - start);
  if (typeof b === 'number') return b;
  let ret = dmirrorDoRead(d, start, end, b);
  if (ret === 0 && copyToUser(current, cmd.ptr, b.buf) < 0) ret = -ERRNO.EFAULT;
  cmd.cpages = b.cpages;
  return ret;
}

/** dmirror_check_atomic: -EPERM while an atomic (exclusive) mapping of the range remains. */
function dmirrorCheckAtomic(d: Dmirror, start: number, end: number): number {
  const first = start / PAGE_SIZE;
  const last = end / PAGE_SIZE;
  for (const [vpn, e] of d.pt)
    if (vpn >= first && vpn < last && e % 4 === DPT_XA_TAG_ATOMIC) return -ERRNO.EPERM;
  return 0;
}

/** dmirror_mkentry: the snapshot byte of one hmm pfn. */
function dmirrorMkentry(d: Dmirror, v: number): number {
  if (v & HMM_PFN_ERROR) return HMM_DMIRROR_PROT_ERROR;
  if (!(v & HMM_PFN_VALID)) return HMM_DMIRROR_PROT_NONE;
  const core = d.mdevice.core;
  const page = hmmPfnToPage(v);
  let perm: number;
  if (isDevicePrivatePage(core, page))
    perm =
      pagePgmap(core, page)?.owner === d.mdevice
        ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL
        : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
  else if (page === core.alloc.zeroPfn) perm = HMM_DMIRROR_PROT_ZERO;
  else perm = HMM_DMIRROR_PROT_NONE;
  perm |= v & HMM_PFN_WRITE ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
  const order = hmmPfnToMapOrder(v);
  if (order === 9) perm |= HMM_DMIRROR_PROT_PMD;
  else if (order === 18) perm |= HMM_DMIRROR_PROT_PUD;
  return perm;
}

const snapshotOps: MmuIntervalNotifierOps = {
  invalidate(sub, _range, curSeq) {
    // Any invalidation of the interval spoils the whole snapshot: only the sequence matters.
    mmuIntervalSetSeq(sub, curSeq);
    return true;
  },
};

/** dmirror_range_snapshot: one batch, under a temporary interval notifier. */
function dmirrorRangeSnapshot(d: Dmirror, range: HmmRange, perm: Uint8Array): number {
  const notifier = new MmuIntervalNotifier();
  range.notifier = notifier;
  const ret = mmuIntervalNotifierInsert(notifier, d.mm, range.start, range.end - range.start, snapshotOps);
  if (ret) return ret;
  try {
    for (let tries = 0; ; tries++) {
      if (tries >= DMIRROR_RANGE_FAULT_RETRIES) return -ERRNO.EBUSY;
      range.notifierSeq = mmuIntervalReadBegin(notifier);
      const r = hmmRangeFault(range);
      if (r === -ERRNO.EBUSY) continue;
      if (r) return r;
      if (mmuIntervalReadRetry(notifier, range.notifierSeq)) continue;
      break;
    }
    const n = (range.end - range.start) / PAGE_SIZE;
    for (let i = 0; i < n; i++) perm[i] = dmirrorMkentry(d, range.hmmPfns[i]);
    return 0;
  } finally {
    mmuIntervalNotifierRemove(notifier);
  }
}

/** dmirror_snapshot: one HMM_DMIRROR_PROT_* byte per page, copied to ptr batch by batch. */
function dmirrorSnapshot(d: Dmirror, cmd: Cmd, current: Current): number {
  if (!d.mm.alive) return -ERRNO.EINVAL;
  const start = cmd.addr;
  const end = start + cmd.npages * PAGE_SIZE;
  const perm = new Uint8Array(BATCH);
  const range: HmmRange = {
    notifier: d.notifier,
    notifierSeq: 0,
    start: 0,
    end: 0,
    hmmPfns: new Float64Array(BATCH),
    defaultFlags: 0,
    pfnFlagsMask: 0,
    devPrivateOwner: d.mdevice,
  };
  let uptr = cmd.ptr;
  for (let addr = start; addr < end;) {
    const next = Math.min(addr + BATCH * PAGE_SIZE, end);
    range.start = addr;
    range.end = next;
    const ret = dmirrorRangeSnapshot(d, range, perm);
    if (ret) return ret;
    const n = (next - addr) / PAGE_SIZE;
    if (copyToUser(current, uptr, perm.subarray(0, n)) < 0) return -ERRNO.EFAULT;
    cmd.cpages += n;
    uptr += n;
    addr = next;
  }
  return 0;
}

/** dmirror_device_evict_chunk: move every page in use back to system memory. */
function dmirrorDeviceEvictChunk(md: DmirrorDevice, chunk: DmirrorChunk): void {
  const core = md.core;
  const npages = chunk.region.end - chunk.region.start;
  const src = new Float64Array(npages);
  const dst = new Float64Array(npages);
  migrateDeviceRange(core, src, chunk.region.start, npages);
  for (let i = 0; i < npages; i++) {
    const spage = migratePfnToPage(src[i]);
    if (spage < 0 || !(src[i] & MIGRATE_PFN_MIGRATE)) continue;
    const dpage = core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0);
    if (dpage < 0) continue; // __GFP_NOFAIL in the kernel; the page stays on the device
    folioTrylock(core, dpage);
    core.data.copyPage(dpage, spage);
    dst[i] = migratePfn(dpage) + (src[i] & MIGRATE_PFN_WRITE ? MIGRATE_PFN_WRITE : 0);
  }
  migrateDevicePages(core, src, dst, npages);
  migrateDeviceFinalize(core, src, dst, npages);
}

/** dmirror_device_remove_chunks: evict and unmap every chunk (RELEASE, unregister). */
function dmirrorDeviceRemoveChunks(md: DmirrorDevice): void {
  const core = md.core;
  const keep: DmirrorChunk[] = [];
  for (const chunk of md.chunks) {
    chunk.remove = true;
    md.freePages = md.freePages.filter((p) => p < chunk.region.start || p >= chunk.region.end);
    dmirrorDeviceEvictChunk(md, chunk);
    if (memunmapPages(core, chunk.pagemap) < 0) {
      core.dmesg.printk(`hmm_dmirror: chunk at PFN 0x${chunk.region.start.toString(16)} still in use`);
      keep.push(chunk);
      continue;
    }
    releaseMemRegion(core, chunk.region);
  }
  md.chunks = keep;
  md.freePages = [];
}

function dmirrorIoctl(file: File, command: number, arg: IoctlArg, current: Current): number {
  const d = file.privateData as Dmirror | null;
  if (!d) return -ERRNO.EINVAL;
  const cmd = readIoctlArg(current, arg, HMM_DMIRROR_CMD_LAYOUT);
  if (typeof cmd === 'number') return cmd;
  if (cmd.addr % PAGE_SIZE) return -ERRNO.EINVAL;
  const end = cmd.addr + cmd.npages * PAGE_SIZE;
  if (cmd.npages === 0 || end >= U64_END || !Number.isSafeInteger(end)) return -ERRNO.EINVAL;
  cmd.cpages = 0;
  cmd.faults = 0;
  let ret: number;
  switch (command) {
    case HMM_DMIRROR_READ:
      ret = dmirrorAccess(d, cmd, current, false);
      break;
    case HMM_DMIRROR_WRITE:
      ret = dmirrorAccess(d, cmd, current, true);
      break;
    case HMM_DMIRROR_MIGRATE_TO_DEV:
      ret = dmirrorMigrateToDevice(d, cmd, current);
      break;
    case HMM_DMIRROR_MIGRATE_TO_SYS:
      ret = dmirrorMigrateLoop(d, cmd, false);
      break;
    case HMM_DMIRROR_EXCLUSIVE:
      ret = dmirrorExclusive(d, cmd, current);
      break;
    case HMM_DMIRROR_CHECK_EXCLUSIVE:
      ret = dmirrorCheckAtomic(d, cmd.addr, end);
      break;
    case HMM_DMIRROR_SNAPSHOT:
      ret = dmirrorSnapshot(d, cmd, current);
      break;
    case HMM_DMIRROR_RELEASE:
      dmirrorDeviceRemoveChunks(d.mdevice);
      ret = 0;
      break;
    default:
      return -ERRNO.EINVAL;
  }
  if (ret) return ret;
  return writeIoctlArg(current, arg, HMM_DMIRROR_CMD_LAYOUT, cmd) < 0 ? -ERRNO.EFAULT : 0;
}

/** dmirror_fops_mmap: fill the VMA with zeroed kernel pages (vm_insert_page: a VM_MIXEDMAP mapping). */
function dmirrorMmap(core: MmCore, vma: VmAreaStruct): number {
  for (let addr = vma.start; addr < vma.end; addr += PAGE_SIZE) {
    const pfn = core.alloc.allocPages(GFP_KERNEL, 0);
    if (pfn < 0) return -ERRNO.ENOMEM;
    core.data.clear(pfn);
    const ret = vmInsertPage(vma, addr, pfn);
    putPage(core, pfn);
    if (ret) return ret;
  }
  return 0;
}

function dmirrorFops(md: DmirrorDevice): FileOperations {
  return {
    owner: 'test_hmm',
    open(_inode, file, current) {
      const mm = currentMm(current);
      if (!mm) return -ERRNO.EINVAL;
      const d = new Dmirror(md, mm);
      const ret = mmuIntervalNotifierInsert(d.notifier, mm, 0, WHOLE_MM, dmirrorMinOps);
      if (ret) return ret;
      file.privateData = d;
      return 0;
    },
    release(_inode, file) {
      const d = file.privateData as Dmirror | null;
      if (!d) return;
      mmuIntervalNotifierRemove(d.notifier);
      d.pt.clear();
      file.privateData = null;
    },
    unlockedIoctl: dmirrorIoctl,
    mmap(_file, vma) {
      return dmirrorMmap(md.core, vma);
    },
  };
}

/**
 * registerTestHmm - load the test driver (hmm_dmirror_init): @opts.devices devices
 * /dev/hmm_dmirror0.. (char devices under a dynamic major "HMM_DMIRROR", mode 0600 root), each
 * with a first chunk of device-private memory. Idempotent per kernel (a second call does nothing).
 * @host: the kernel (its DeviceCore and MmCore).
 * Return: 0, or -EINVAL (bad options), -EBUSY (no char major), -ERANGE / -ENOMEM (no ZONE_DEVICE
 * pfn space for a chunk), or device_add's -errno; nothing stays registered on failure.
 * Released by unregisterTestHmm.
 */
export function registerTestHmm(host: TestHmmHost, opts: TestHmmOptions = {}): number {
  const devices = host.devices;
  const core = host.mmCore;
  if (registered.has(devices)) return 0;
  const n = opts.devices ?? 2;
  const chunkPages = opts.chunkPages ?? DMIRROR_CHUNK_PAGES;
  if (!Number.isInteger(n) || n < 1 || n > DMIRROR_NDEVICES) return -ERRNO.EINVAL;
  if (!Number.isInteger(chunkPages) || chunkPages < 1) return -ERRNO.EINVAL;
  const base = devices.allocChrdevRegion(0, DMIRROR_NDEVICES, 'HMM_DMIRROR');
  if (base < 0) return base;
  const state: TestHmm = { devices: [], base, core };
  for (let id = 0; id < n; id++) {
    const md = new DmirrorDevice(id, core, chunkPages);
    md.cdev = new Cdev(dmirrorFops(md), 'test_hmm');
    md.device = new Device({ name: `hmm_dmirror${id}`, devt: base + id });
    let ret = devices.cdevDeviceAdd(md.cdev, md.device);
    if (ret === 0) {
      state.devices.push(md);
      ret = dmirrorAllocateChunk(md, false);
    }
    if (ret < 0) {
      removeDevices(state, devices);
      return ret;
    }
  }
  registered.set(devices, state);
  core.dmesg.printk('HMM test module loaded. This is only for testing HMM.');
  return 0;
}

function removeDevices(state: TestHmm, devices: DeviceCore): void {
  for (const md of state.devices) {
    dmirrorDeviceRemoveChunks(md);
    if (md.cdev && md.device) devices.cdevDeviceDel(md.cdev, md.device);
  }
  state.devices = [];
  devices.unregisterChrdevRegion(state.base, DMIRROR_NDEVICES);
}

/**
 * unregisterTestHmm - unload the driver (hmm_dmirror_exit): every device's memory is evicted
 * back to system memory and unmapped, the nodes go. Open files keep their mirror until closed.
 */
export function unregisterTestHmm(host: TestHmmHost): void {
  const state = registered.get(host.devices);
  if (!state) return;
  registered.delete(host.devices);
  removeDevices(state, host.devices);
}

/** TestHmmDeviceStats - one device's memory, for tests (calloc/cfree are the driver's counters). */
export interface TestHmmDeviceStats {
  chunks: number;
  freePages: number;
  calloc: number;
  cfree: number;
  /** The pagemap owner of the device's memory (what hmm_range_fault's devPrivateOwner matches). */
  owner: unknown;
}

/** testHmmStats - per device, the chunks, free pages and allocation counters (empty if not loaded). */
export function testHmmStats(host: TestHmmHost): TestHmmDeviceStats[] {
  const state = registered.get(host.devices);
  if (!state) return [];
  return state.devices.map((md) => ({
    chunks: md.chunks.length,
    freePages: md.freePages.length,
    calloc: md.calloc,
    cfree: md.cfree,
    owner: md,
  }));
}
