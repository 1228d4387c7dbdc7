import { afterEach, describe, it, expect } from '@jest/globals';
import { Device } from '../base/device';
import { File } from '../fs/file';
import { Inode, MKDEV, S_IFCHR } from '../fs/inode';
import { IOMMU_PASID_INVALID } from '../iommu/types';
import { remapPfnRange, vmInsertPage } from '../mm/device-map';
import { GFP_KERNEL } from '../mm/gfp';
import { PG_slab } from '../mm/page-flags';
import { putPage } from '../mm/page-ref';
import { VM_DONTCOPY, VM_DONTEXPAND, VM_IO, VM_PFNMAP, VM_WIPEONFORK } from '../mm/vm-flags';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { ERRNO } from '../uapi/errno';
import { O_RDWR, POLLIN, POLLRDNORM } from '../uapi/fcntl';
import { _IO } from '../uapi/ioctl';
import { MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../uapi/mman';
import { UacceCore, type UacceCoreOptions } from './core';
import type { UacceDevice } from './device';
import { FakeUacceSvaOps } from './fake-sva';
import { uacceVmOps } from './fops';
import type { UacceOps } from './ops';
import { UACCE_Q_INIT, UACCE_Q_STARTED, UACCE_Q_ZOMBIE, UacceQueue } from './queue';
import { UACCE_CMD_PUT_Q, UACCE_CMD_START_Q, UACCE_DEV_SVA, UACCE_QFRT_DUS, UACCE_QFRT_MMIO } from './uapi';
import { uacceAlloc, uacceRegister, uacceRemove } from './uacce';

/** A driver-private ioctl of the toy driver. */
const TOY_CMD_PING = _IO('W', 7);
const MMIO_OFF = UACCE_QFRT_MMIO * PAGE_SIZE;
const DUS_OFF = UACCE_QFRT_DUS * PAGE_SIZE;
const EPOLL_READY = POLLIN | POLLRDNORM;

const kernels: Kernel[] = [];

afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });

interface ToyQp {
  pasid: number;
  ring: number[];
  updated: boolean;
}

interface ToyOptions {
  core?: UacceCoreOptions;
  sva?: FakeUacceSvaOps;
  flags?: number;
  /** Hardware queues (get_queue fails EBUSY beyond). */
  qpNum?: number;
  /** Doorbell pages: the most an MMIO mapping may cover. */
  dbPages?: number;
  /** DUS pages: a DUS mapping must be exactly this size. */
  dusPages?: number;
  /** Replace or remove (undefined) some of the driver's ops. */
  ops?: Partial<Record<keyof UacceOps, unknown>>;
}

/**
 * A HiSilicon-QM-like toy driver (hisi_qm_uacce_*): queue pairs with a DUS ring of kernel pages
 * and a doorbell MMIO region; MMIO maps with VM_IO + remapPfnRange, DUS with vmInsertPage.
 */
function toy(o: ToyOptions = {}) {
  const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] } });
  kernels.push(k);
  const sva = o.sva ?? new FakeUacceSvaOps();
  // The kernel starts a UacceCore wired to its IOMMU; these tests want their own options and a
  // fake SVA, so retire the kernel's first (it has no devices yet).
  expect(k.uacce.exit()).toBe(0);
  const core = new UacceCore(k.devices, k.mmCore, sva, o.core);
  k.addInvariantCheck('uacce', () => core.checkInvariants());
  const qpNum = o.qpNum ?? 4;
  const dbPages = o.dbPages ?? 1;
  const dusPages = o.dusPages ?? 2;
  const calls: string[] = [];
  const stores: Array<[number, number[]]> = [];
  const mmioBase = k.mmCore.iomem.register('toy-db', dbPages, {
    read: (_off, out) => out.fill(0x5a),
    write: (off, src) => void stores.push([off, [...src]]),
  });
  const qps = new Set<ToyQp>();
  let startErr = 0;
  const ops: UacceOps = {
    getAvailableInstances: () => qpNum - qps.size,
    getQueue(_uacce, pasid, q) {
      calls.push(`get:${pasid}`);
      if (qps.size >= qpNum) return -ERRNO.EBUSY;
      const ring: number[] = [];
      for (let i = 0; i < dusPages; i++) {
        const pfn = k.phys.allocPages(GFP_KERNEL, 0);
        k.phys.frames.flags[pfn] |= PG_slab;
        ring.push(pfn);
      }
      const qp: ToyQp = { pasid, ring, updated: false };
      qps.add(qp);
      q.priv = qp;
      return 0;
    },
    putQueue(q) {
      calls.push('put');
      const qp = q.priv as ToyQp;
      // dma_free_coherent: the driver's reference goes; a user mapping may still hold one.
      for (const pfn of qp.ring) {
        k.phys.frames.flags[pfn] &= ~PG_slab;
        putPage(k.mmCore, pfn);
      }
      qps.delete(qp);
    },
    startQueue() {
      calls.push('start');
      return startErr;
    },
    stopQueue() {
      calls.push('stop');
    },
    isQUpdated: (q) => (q.priv as ToyQp).updated,
    mmap(q, vma, qfr) {
      const sz = vma.end - vma.start;
      const qp = q.priv as ToyQp;
      if (qfr.type === UACCE_QFRT_MMIO) {
        if (sz > dbPages * PAGE_SIZE) return -ERRNO.EINVAL;
        vma.flags |= VM_IO;
        return remapPfnRange(vma, vma.start, mmioBase, sz);
      }
      if (sz !== dusPages * PAGE_SIZE) return -ERRNO.EINVAL;
      for (let i = 0; i < dusPages; i++) {
        const r = vmInsertPage(vma, vma.start + i * PAGE_SIZE, qp.ring[i]);
        if (r) return r;
      }
      return 0;
    },
    ioctl: (_q, cmd) => (cmd === TOY_CMD_PING ? 42 : -ERRNO.ENOTTY),
  };
  for (const [name, fn] of Object.entries(o.ops ?? {})) {
    if (fn === undefined) delete (ops as Record<string, unknown>)[name];
    else (ops as Record<string, unknown>)[name] = fn;
  }
  const parent = new Device({ name: '0000:75:00.0' });
  const uacce = uacceAlloc(core, parent, { name: 'hisi_zip', flags: o.flags ?? UACCE_DEV_SVA, ops });
  uacce.apiVer = 'hisi_qm_v2';
  uacce.algs = 'zlib\ngzip';
  uacce.qfPgNum[UACCE_QFRT_MMIO] = dbPages;
  uacce.qfPgNum[UACCE_QFRT_DUS] = dusPages;
  expect(uacceRegister(uacce)).toBe(0);
  const path = `/dev/${uacce.name}`;
  return {
    k,
    core,
    sva,
    uacce,
    parent,
    path,
    calls,
    stores,
    qps,
    setStartErr: (e: number) => void (startErr = e),
  };
}

/** The queue behind `fd` of `p`. */
function queue(p: Process, fd: number): UacceQueue {
  return p.files.get(fd)!.privateData as UacceQueue;
}

function mapRegion(p: Process, fd: number, off: number, len: number, flags = MAP_SHARED): number {
  return p.mmap(len, { prot: PROT_READ | PROT_WRITE, flags, fd, offset: off });
}

describe('open', () => {
  it('binds the caller for an SVA device and gets a queue with its PASID: INIT, one per fd', () => {
    const { k, sva, uacce, path, calls } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    const q = queue(p, fd);
    expect(q.state).toBe(UACCE_Q_INIT);
    expect(q.pasid).toBeGreaterThan(0);
    expect(calls).toEqual([`get:${q.pasid}`]);
    expect(uacce.queues).toEqual([q]);
    expect(k.readSysfs('/sys/class/uacce/hisi_zip-0/available_instances')).toBe('3\n');
    // A second fd of the same mm is a second queue sharing the bond and PASID.
    const fd2 = p.open(path);
    const q2 = queue(p, fd2);
    expect(q2).not.toBe(q);
    expect(q2.pasid).toBe(q.pasid);
    expect(sva.bonds()).toHaveLength(1);
    expect(sva.bonds()[0].users).toBe(2);
    // Another process gets its own PASID.
    const other = k.spawn();
    const q3 = queue(other, other.open(path));
    expect(q3.pasid).not.toBe(q.pasid);
    expect(sva.bonds()).toHaveLength(2);
    p.close(fd);
    p.close(fd2);
    other.exit();
    expect(calls.filter((c) => c === 'put')).toHaveLength(3);
    expect(sva.bonds()).toEqual([]);
    expect(uacce.queues).toEqual([]);
  });

  it('does not bind without UACCE_DEV_SVA: the PASID is 0', () => {
    const { k, sva, path, calls } = toy({ flags: 0 });
    const p = k.spawn();
    const q = queue(p, p.open(path));
    expect(q.pasid).toBe(0);
    expect(q.handle).toBeNull();
    expect(sva.binds).toBe(0);
    expect(calls).toEqual(['get:0']);
  });

  it('does not bind when UACCE_DEV_SVA was negotiated away', () => {
    const { k, sva, uacce, path } = toy({ sva: new FakeUacceSvaOps(false) });
    expect(uacce.flags & UACCE_DEV_SVA).toBe(0);
    const p = k.spawn();
    expect(queue(p, p.open(path)).pasid).toBe(0);
    expect(sva.binds).toBe(0);
  });

  it("fails with the bind's errno when the flag was kept (svaNegotiation 'copy')", () => {
    const { k, path, calls } = toy({ sva: new FakeUacceSvaOps(false), core: { svaNegotiation: 'copy' } });
    expect(() => k.spawn().open(path)).toThrow(errno('ENODEV'));
    expect(calls).toEqual([]);
  });

  it("passes the bind's errno through", () => {
    const { k, sva, path, calls } = toy();
    sva.bindErrno = -ERRNO.ENOSPC;
    const p = k.spawn();
    expect(() => p.open(path)).toThrow(errno('ENOSPC'));
    expect(calls).toEqual([]);
    expect(p.files.get(3)).toBeUndefined();
    sva.bindErrno = 0;
    expect(p.open(path)).toBeGreaterThanOrEqual(0);
  });

  it('unbinds and answers ENODEV when the bond has no valid PASID', () => {
    const { k, sva, path, calls } = toy();
    sva.invalidPasid = true;
    expect(() => k.spawn().open(path)).toThrow(errno('ENODEV'));
    expect(sva.binds).toBe(1);
    expect(sva.unbinds).toBe(1);
    expect(sva.bonds()).toEqual([]);
    expect(calls).toEqual([]);
    expect(IOMMU_PASID_INVALID).toBe(0xffffffff);
  });

  it("unbinds and passes get_queue's errno through", () => {
    const { k, sva, path, uacce } = toy({ qpNum: 1 });
    const p = k.spawn();
    p.open(path);
    expect(() => p.open(path)).toThrow(errno('EBUSY'));
    expect(sva.bonds()[0].users).toBe(1);
    expect(uacce.queues).toHaveLength(1);
    expect(k.readSysfs('/sys/class/uacce/hisi_zip-0/available_instances')).toBe('0\n');
  });

  it('opens without any ops: a queue with no hardware behind it', () => {
    const { k, path } = toy({
      ops: { getQueue: undefined, putQueue: undefined, mmap: undefined, ioctl: undefined },
    });
    const p = k.spawn();
    const fd = p.open(path);
    expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
    expect(() => p.ioctl(fd, TOY_CMD_PING)).toThrow(errno('EINVAL'));
    expect(() => mapRegion(p, fd, MMIO_OFF, PAGE_SIZE)).toThrow(errno('EINVAL'));
    p.close(fd);
  });

  it('answers ENODEV to an open that finds the id gone, EINVAL to one racing the removal', () => {
    const { k, core, uacce } = toy();
    const p = k.spawn();
    const inode = new Inode({ mode: S_IFCHR | 0o600, rdev: MKDEV(core.major, uacce.devId) });
    // Removal under way: parent already cleared, id not yet erased.
    const parent = uacce.parent;
    uacce.parent = null;
    expect(core.fops.open!(inode, new File(inode, core.fops, O_RDWR), p)).toBe(-ERRNO.EINVAL);
    uacce.parent = parent;
    uacceRemove(uacce);
    expect(core.fops.open!(inode, new File(inode, core.fops, O_RDWR), p)).toBe(-ERRNO.ENODEV);
  });
});

describe('ioctl', () => {
  it('START_Q: INIT -> STARTED once; EINVAL when not INIT', () => {
    const { k, path, calls } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
    expect(queue(p, fd).state).toBe(UACCE_Q_STARTED);
    expect(() => p.ioctl(fd, UACCE_CMD_START_Q)).toThrow(errno('EINVAL'));
    expect(calls.filter((c) => c === 'start')).toHaveLength(1);
  });

  it("passes start_queue's errno through and leaves the queue INIT", () => {
    const { k, path, setStartErr } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    setStartErr(-ERRNO.EIO);
    expect(() => p.ioctl(fd, UACCE_CMD_START_Q)).toThrow(errno('EIO'));
    expect(queue(p, fd).state).toBe(UACCE_Q_INIT);
    setStartErr(0);
    expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
  });

  it("PUT_Q ('stop', Jan 2026): stops only; START_Q works again; close puts the queue once", () => {
    const { k, path, calls } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    expect(p.ioctl(fd, UACCE_CMD_PUT_Q)).toBe(0); // INIT: nothing to stop
    expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
    expect(p.ioctl(fd, UACCE_CMD_PUT_Q)).toBe(0);
    expect(queue(p, fd).state).toBe(UACCE_Q_INIT);
    expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
    p.close(fd);
    expect(calls.slice(1)).toEqual(['start', 'stop', 'start', 'stop', 'put']);
  });

  it("PUT_Q ('put', up to 2025): stop + put_queue, ZOMBIE; the fd is dead afterwards", () => {
    const { k, path, calls } = toy({ core: { putQ: 'put' } });
    const p = k.spawn();
    const fd = p.open(path);
    expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
    expect(p.ioctl(fd, UACCE_CMD_PUT_Q)).toBe(0);
    expect(queue(p, fd).state).toBe(UACCE_Q_ZOMBIE);
    expect(calls.slice(1)).toEqual(['start', 'stop', 'put']);
    for (const cmd of [UACCE_CMD_START_Q, UACCE_CMD_PUT_Q, TOY_CMD_PING])
      expect(() => p.ioctl(fd, cmd)).toThrow(errno('ENXIO'));
    expect(() => mapRegion(p, fd, MMIO_OFF, PAGE_SIZE)).toThrow(errno('ENXIO'));
    expect(p.poll(fd)).toBe(0);
    p.close(fd);
    expect(calls.filter((c) => c === 'put')).toHaveLength(1);
    expect(k.readSysfs('/sys/class/uacce/hisi_zip-0/available_instances')).toBe('4\n');
  });

  it('hands other commands to ops.ioctl, or answers EINVAL without it', () => {
    const { k, path } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    expect(p.ioctl(fd, TOY_CMD_PING)).toBe(42);
    expect(() => p.ioctl(fd, _IO('W', 9))).toThrow(errno('ENOTTY'));
    const bare = toy({ ops: { ioctl: undefined } });
    const p2 = bare.k.spawn();
    expect(() => p2.ioctl(p2.open(bare.path), TOY_CMD_PING)).toThrow(errno('EINVAL'));
  });
});

describe('poll', () => {
  it('reports EPOLLIN | EPOLLRDNORM when the queue has completions, else 0', () => {
    const { k, path } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    expect(p.poll(fd)).toBe(0);
    (queue(p, fd).priv as ToyQp).updated = true;
    expect(p.poll(fd)).toBe(EPOLL_READY);
    const bare = toy({ ops: { isQUpdated: undefined } });
    const p2 = bare.k.spawn();
    expect(p2.poll(p2.open(bare.path))).toBe(0);
  });
});

describe('mmap', () => {
  it('maps the MMIO doorbells (VM_IO | VM_PFNMAP) and the DUS ring (kernel pages)', () => {
    const { k, path, stores } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    const q = queue(p, fd);
    const db = mapRegion(p, fd, MMIO_OFF, PAGE_SIZE);
    const dus = mapRegion(p, fd, DUS_OFF, 2 * PAGE_SIZE);
    const dbVma = p.mm.vmaLookup(db)!;
    const want = VM_DONTCOPY | VM_DONTEXPAND | VM_WIPEONFORK;
    expect(dbVma.flags & (want | VM_IO | VM_PFNMAP)).toBe(want | VM_IO | VM_PFNMAP);
    expect(p.mm.vmaLookup(dus)!.flags & want).toBe(want);
    expect(dbVma.vmOps).toBe(uacceVmOps);
    expect(q.qfrs.map((r) => r?.type)).toEqual([UACCE_QFRT_MMIO, UACCE_QFRT_DUS]);
    // Doorbell stores reach the device; loads come from it.
    p.write(db + 0x40, new Uint8Array([1, 2, 3]));
    expect(stores).toEqual([[0x40, [1, 2, 3]]]);
    expect([...p.read(db, 2)]).toEqual([0x5a, 0x5a]);
    // The ring is the driver's kernel memory.
    const ring = (q.priv as ToyQp).ring;
    p.write(dus + PAGE_SIZE + 8, new Uint8Array([9]));
    expect(k.phys.data.view(ring[1])?.[8]).toBe(9);
    expect(p.pagemap(dus).pfn).toBe(ring[0]);
  });

  it('answers EINVAL for an offset past the last region type', () => {
    const { k, path } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    for (const off of [2 * PAGE_SIZE, 100 * PAGE_SIZE])
      expect(() => mapRegion(p, fd, off, PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(queue(p, fd).qfrs).toEqual([null, null]);
  });

  it('answers EEXIST for a region already mapped; munmap frees the slot (vma close)', () => {
    const { k, path } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    const db = mapRegion(p, fd, MMIO_OFF, PAGE_SIZE);
    expect(() => mapRegion(p, fd, MMIO_OFF, PAGE_SIZE)).toThrow(errno('EEXIST'));
    expect(queue(p, fd).qfrs[UACCE_QFRT_MMIO]).not.toBeNull(); // the failed mmap did not free it
    p.munmap(db, PAGE_SIZE);
    expect(queue(p, fd).qfrs[UACCE_QFRT_MMIO]).toBeNull();
    const again = mapRegion(p, fd, MMIO_OFF, PAGE_SIZE);
    expect(again).toBeGreaterThan(0);
    // Another fd is another queue: its regions are its own.
    const fd2 = p.open(path);
    expect(mapRegion(p, fd2, MMIO_OFF, PAGE_SIZE)).toBeGreaterThan(0);
  });

  it("passes the driver's rules through: MMIO beyond the doorbells, DUS of the wrong size", () => {
    const { k, path } = toy({ dbPages: 1, dusPages: 2 });
    const p = k.spawn();
    const fd = p.open(path);
    expect(() => mapRegion(p, fd, MMIO_OFF, 2 * PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(() => mapRegion(p, fd, DUS_OFF, PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(() => mapRegion(p, fd, DUS_OFF, 3 * PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(queue(p, fd).qfrs).toEqual([null, null]);
    expect(p.mm.vmas).toHaveLength(0);
    expect(mapRegion(p, fd, DUS_OFF, 2 * PAGE_SIZE)).toBeGreaterThan(0);
  });

  it('answers EINVAL without ops.mmap', () => {
    const { k, path } = toy({ ops: { mmap: undefined } });
    const p = k.spawn();
    const fd = p.open(path);
    expect(() => mapRegion(p, fd, MMIO_OFF, PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(() => mapRegion(p, fd, DUS_OFF, PAGE_SIZE)).toThrow(errno('EINVAL'));
  });

  it('refuses mremap of a queue mapping with EPERM', () => {
    const { k, path } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    const vma = p.mm.vmaLookup(mapRegion(p, fd, MMIO_OFF, PAGE_SIZE))!;
    expect(vma.vmOps!.mremap!(vma)).toBe(-ERRNO.EPERM);
  });

  it('keeps the file open while mapped: release comes with the last munmap', () => {
    const { k, path, calls, sva } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    const dus = mapRegion(p, fd, DUS_OFF, 2 * PAGE_SIZE);
    p.close(fd);
    expect(calls).not.toContain('put');
    p.write(dus, new Uint8Array([1]));
    p.munmap(dus, 2 * PAGE_SIZE);
    expect(calls).toContain('put');
    expect(sva.bonds()).toEqual([]);
  });
});

describe('fork and two processes', () => {
  it('does not copy queue mappings into a child (VM_DONTCOPY): the child faults', () => {
    const { k, path, stores } = toy();
    const p = k.spawn();
    const fd = p.open(path);
    expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
    const db = mapRegion(p, fd, MMIO_OFF, PAGE_SIZE);
    const dus = mapRegion(p, fd, DUS_OFF, 2 * PAGE_SIZE);
    const child = p.fork();
    expect(child.mm.vmaLookup(db)).toBeFalsy();
    expect(() => child.write(db, new Uint8Array([1]))).toThrow(
      expect.objectContaining({ code: 'EFAULT', syscall: 'access' }),
    );
    expect(() => child.read(dus, 1)).toThrow(errno('EFAULT'));
    expect(stores).toEqual([]);
    // The parent keeps its mappings.
    p.write(db, new Uint8Array([7]));
    expect(stores).toEqual([[0, [7]]]);
    // The child shares the fd, hence the queue: its regions are taken, and it is already started.
    expect(queue(child, fd)).toBe(queue(p, fd));
    expect(() => mapRegion(child, fd, MMIO_OFF, PAGE_SIZE)).toThrow(errno('EEXIST'));
    expect(() => child.ioctl(fd, UACCE_CMD_START_Q)).toThrow(errno('EINVAL'));
    child.exit();
    expect(queue(p, fd).state).toBe(UACCE_Q_STARTED);
    p.exit();
  });

  it('gives two processes separate queues, PASIDs and mappings', () => {
    const { k, path, uacce } = toy();
    const a = k.spawn();
    const b = k.spawn();
    const fa = a.open(path);
    const fb = b.open(path);
    const qa = queue(a, fa);
    const qb = queue(b, fb);
    expect(qa.pasid).not.toBe(qb.pasid);
    const da = mapRegion(a, fa, DUS_OFF, 2 * PAGE_SIZE);
    const dbb = mapRegion(b, fb, DUS_OFF, 2 * PAGE_SIZE);
    a.write(da, new Uint8Array([0xaa]));
    b.write(dbb, new Uint8Array([0xbb]));
    expect(a.read(da, 1)[0]).toBe(0xaa);
    expect(b.read(dbb, 1)[0]).toBe(0xbb);
    expect(a.pagemap(da).pfn).not.toBe(b.pagemap(dbb).pfn);
    a.exit();
    expect(uacce.queues).toEqual([qb]);
    b.exit();
    expect(uacce.queues).toEqual([]);
  });
});

describe('uacceRemove with queues open', () => {
  function busy() {
    const t = toy();
    const { k, path } = t;
    const a = k.spawn();
    const b = k.spawn();
    const fa = a.open(path);
    const fb = b.open(path);
    expect(a.ioctl(fa, UACCE_CMD_START_Q)).toBe(0);
    const db = mapRegion(a, fa, MMIO_OFF, PAGE_SIZE);
    const dus = mapRegion(a, fa, DUS_OFF, 2 * PAGE_SIZE);
    a.write(dus, new Uint8Array([1]));
    return { ...t, a, b, fa, fb, db, dus };
  }

  it('puts every queue, unbinds and zaps the mappings; the fds see ENXIO, poll 0', () => {
    const { k, core, sva, uacce, calls, a, b, fa, fb, db, dus } = busy();
    const qa = queue(a, fa);
    const qb = queue(b, fb);
    (qa.priv as ToyQp).updated = true;
    expect(a.poll(fa)).toBe(EPOLL_READY);
    calls.length = 0;
    uacceRemove(uacce);
    expect(calls).toEqual(['stop', 'put', 'put']);
    expect([qa.state, qb.state]).toEqual([UACCE_Q_ZOMBIE, UACCE_Q_ZOMBIE]);
    expect(sva.bonds()).toEqual([]);
    expect([qa.handle, qb.handle]).toEqual([null, null]);
    // The mappings are still there but empty: touching them is SIGBUS.
    expect(a.mm.vmaLookup(db)).toBeDefined();
    expect(() => a.read(db, 1)).toThrow(expect.objectContaining({ code: 'EFAULT', syscall: 'access' }));
    expect(() => a.write(dus, new Uint8Array([2]))).toThrow(errno('EFAULT'));
    for (const cmd of [UACCE_CMD_START_Q, UACCE_CMD_PUT_Q, TOY_CMD_PING]) {
      expect(() => a.ioctl(fa, cmd)).toThrow(errno('ENXIO'));
      expect(() => b.ioctl(fb, cmd)).toThrow(errno('ENXIO'));
    }
    expect(() => mapRegion(b, fb, MMIO_OFF, PAGE_SIZE)).toThrow(errno('ENXIO'));
    expect(() => mapRegion(b, fb, 5 * PAGE_SIZE, PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect([a.poll(fa), b.poll(fb)]).toEqual([0, 0]);
    // The device is gone for new opens.
    expect(() => k.spawn().open(`/dev/${uacce.name}`)).toThrow(errno('ENOENT'));
    expect(k.devices.sysfs.readdir('/sys/class/uacce')).toBe(-ERRNO.ENOENT);
    expect(core.xaLoad(uacce.devId)).toBeUndefined();
    expect(k.checkInvariants()).toEqual([]);
    // close is safe, nothing is put twice, and the last close frees the device.
    b.close(fb);
    expect(uacce.released).toBe(false);
    a.munmap(db, PAGE_SIZE);
    a.munmap(dus, 2 * PAGE_SIZE);
    a.close(fa);
    expect(calls).toEqual(['stop', 'put', 'put']);
    expect(uacce.released).toBe(true);
    expect(uacce.queues).toEqual([]);
  });

  it('lets the id be reused while old fds are still open', () => {
    const { k, core, uacce, parent, a, fa } = busy();
    uacceRemove(uacce);
    const next = uacceAlloc(core, parent, { name: 'hisi_zip', flags: UACCE_DEV_SVA, ops: {} });
    expect(next.name).toBe(uacce.name);
    expect(uacceRegister(next)).toBe(0);
    const p = k.spawn();
    const fd = p.open(`/dev/${next.name}`);
    expect(queue(p, fd).uacce).toBe(next);
    // The old fd still belongs to the old, dead device.
    expect(() => a.ioctl(fa, UACCE_CMD_START_Q)).toThrow(errno('ENXIO'));
    a.exit();
    p.exit();
    uacceRemove(next as UacceDevice);
  });

  it('leaks nothing once every process is gone', () => {
    const { k, uacce, a, b, fa, fb } = busy();
    const rings = [queue(a, fa), queue(b, fb)].flatMap((q) => (q.priv as ToyQp).ring);
    uacceRemove(uacce);
    // put_queue dropped the driver's references, the zap the mappings': every ring page is free.
    a.exit();
    b.exit();
    expect(uacce.released).toBe(true);
    for (const pfn of rings) expect(k.phys.frames.refcount[pfn]).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });
});
