import fc from 'fast-check';
import {
  ACCEL_CQE,
  ACCEL_DB_SQ_TAIL,
  ACCEL_OP_COPY,
  ACCEL_QUEUE_CTRL,
  ACCEL_SQE,
  ERRNO,
  MAP_FIXED_NOREPLACE,
  MAP_SHARED,
  O_RDWR,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  UACCE_CMD_PUT_Q,
  UACCE_CMD_START_Q,
  UACCE_QFRT_DUS,
  UACCE_QFRT_MMIO,
  type AccelCqe,
  type Kernel,
  type Process,
  type VirtualAccelerator,
} from '@svasim/kernel';
import { DeviceModel, type QueueModel } from './device-model';
import { UNMAPPED, check, errnoOf, expectCode, firstDiff, hex, pageOf, pick, slotOf } from './fuzz-helpers';
import type { MmReal } from './mm-commands';
import { checkPins, mmPinCommands, pinFuzzTeardown } from './pin-commands';

/** The system under test with the accelerator: where its node is and how big a queue's rings are. */
export interface DeviceReal extends MmReal {
  accel: VirtualAccelerator;
  devPath: string;
  dusSize: number;
}

type Cmd = fc.Command<DeviceModel, DeviceReal>;

/**
 * Queue regions go far from everything the mm commands map (the mmap area near the top, the
 * unmapped probe at 1 GiB), so a munmap or mprotect running past a model mapping never reaches a
 * ring, and the model's "holes give ENOMEM" stays true.
 */
const QUEUE_AREA = 0x100000000;
const QUEUE_STRIDE = 0x1000000;
/** Simulated time a copy may take before the fuzz calls it a hang (a few KiB; ~100 faults at most). */
const COPY_TIMEOUT_NS = 1_000_000_000;

/** How often the device outcomes happened over a run (the test checks the fuzz reaches them). */
export interface DeviceFuzzCoverage {
  opens: number;
  opensBusy: number;
  copies: number;
  copiesFaulted: number;
  /** Copies served entirely from cached translations (no page request). */
  copiesWarm: number;
  copiesEfault: number;
  /** Copies whose source was fine but whose destination failed part-way. */
  copiesPartial: number;
  /** ATC invalidations the kernel sent to the device (translations it had to drop). */
  atcInvalidations: number;
  closes: number;
  removals: number;
  /** Copies left in flight when their process exited. */
  exitsWithDma: number;
  /** Forks of a process holding a queue. */
  forksHoldingQueue: number;
}

export const deviceFuzzCoverage: DeviceFuzzCoverage = {
  opens: 0,
  opensBusy: 0,
  copies: 0,
  copiesFaulted: 0,
  copiesWarm: 0,
  copiesEfault: 0,
  copiesPartial: 0,
  atcInvalidations: 0,
  closes: 0,
  removals: 0,
  exitsWithDma: 0,
  forksHoldingQueue: 0,
};

function ctrlOf(p: Process, q: QueueModel) {
  return ACCEL_QUEUE_CTRL.decode(p.read(q.dus, ACCEL_QUEUE_CTRL.size));
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

/** Write one copy descriptor into the SQ and ring the doorbell (throws EFAULT once the rings are gone). */
function submitCopy(p: Process, q: QueueModel, src: number, dst: number, len: number): number {
  const tag = q.tag + 1;
  const slot = PAGE_SIZE + (q.tail % q.sqDepth) * ACCEL_SQE.size;
  p.write(q.dus + slot, ACCEL_SQE.encode({ op: ACCEL_OP_COPY, tag, src, dst, src_len: len, dst_len: len }));
  q.tag = tag;
  q.tail = (q.tail + 1) >>> 0;
  p.write(q.mmio + ACCEL_DB_SQ_TAIL, u32(q.tail));
  return tag;
}

/** Take the completion at cq_head (there must be one). */
function reap(p: Process, q: QueueModel): AccelCqe {
  const c = ctrlOf(p, q);
  const cqOff = PAGE_SIZE + Math.ceil((c.sq_depth * ACCEL_SQE.size) / PAGE_SIZE) * PAGE_SIZE;
  const cqe = ACCEL_CQE.decode(
    p.read(q.dus + cqOff + (c.cq_head % c.cq_depth) * ACCEL_CQE.size, ACCEL_CQE.size),
  );
  p.write(q.dus + ACCEL_QUEUE_CTRL.offsetOf('cq_head'), u32(c.cq_head + 1));
  return cqe;
}

/** The queues `slot` opened and still drives (has the rings mapped). */
function owned(m: DeviceModel, slot: number): QueueModel[] {
  return m.queues.filter((q) => q.owner === slot);
}

/**
 * open(/dev/<dev>, O_RDWR), mmap the doorbell page and the rings, UACCE_CMD_START_Q: EBUSY when
 * every hardware queue is taken, ENOENT once the device is gone.
 */
export class OpenQueueCmd implements Cmd {
  constructor(readonly pick: number) {}
  check = () => true;
  run(m: DeviceModel, r: DeviceReal): void {
    const what = this.toString();
    const slot = slotOf(m, this.pick);
    const proc = r.procs[slot]!;
    let fd = -1;
    const got = errnoOf(() => {
      fd = proc.open(r.devPath, O_RDWR);
    });
    const want = m.removed ? 'ENOENT' : m.busyQueues() >= m.nrHwQueues ? 'EBUSY' : 'OK';
    expectCode(got, want, what);
    if (got === 'EBUSY') deviceFuzzCoverage.opensBusy++;
    if (got === 'OK') {
      deviceFuzzCoverage.opens++;
      const rw = PROT_READ | PROT_WRITE;
      const flags = MAP_SHARED | MAP_FIXED_NOREPLACE;
      const base = QUEUE_AREA + fd * QUEUE_STRIDE;
      const mmio = proc.mmap(PAGE_SIZE, {
        prot: rw,
        flags,
        fd,
        offset: UACCE_QFRT_MMIO * PAGE_SIZE,
        addr: base,
      });
      // A guard page between the two regions, as nothing says they are adjacent.
      const dus = proc.mmap(r.dusSize, {
        prot: rw,
        flags,
        fd,
        offset: UACCE_QFRT_DUS * PAGE_SIZE,
        addr: base + 2 * PAGE_SIZE,
      });
      expectCode(String(proc.ioctl(fd, UACCE_CMD_START_Q)), '0', `${what}: START_Q`);
      const q = m.addQueue({
        holders: new Map([[slot, fd]]),
        owner: slot,
        mmio,
        dus,
        dusSize: r.dusSize,
        sqDepth: 0,
        tail: 0,
        tag: 0,
      });
      q.sqDepth = ctrlOf(proc, q).sq_depth;
    }
    check(r, what);
  }
  toString = () => `openQueue(p${this.pick})`;
}

/** Where a copy's source or destination goes: a model page plus an offset, or the unmapped probe. */
interface Place {
  page: number;
  offset: number;
  stray: boolean;
  /** A writable page whose next page is not writable (so a copy there stops part-way), if any. */
  edge?: boolean;
}

/**
 * A device copy of `len` bytes between two places of the process's memory, run to completion.
 * The model's answer: the device reads the whole source first (any page not mapped readable:
 * -EFAULT, nothing written), then writes the destination page by page in address order and stops
 * at the first page not mapped writable (-EFAULT, the pages before it written). The bytes the
 * process reads back afterwards must match, and the request must complete, never hang.
 */
export class CopyCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly queue: number,
    readonly src: Place,
    readonly dst: Place,
    readonly len: number,
  ) {}
  check = () => true;
  run(m: DeviceModel, r: DeviceReal): void {
    const what = this.toString();
    const slot = slotOf(m, this.pick);
    const mine = owned(m, slot);
    if (mine.length) this.copy(m, r, slot, mine[this.queue % mine.length], what);
    check(r, what);
    checkPins(m, r, what);
  }

  private addr(m: DeviceModel, slot: number, p: Place): number {
    if (p.stray) return UNMAPPED + p.offset;
    const pm = m.procs[slot]!;
    if (p.edge) {
      const writable = (va: number) => ((pm.pages.get(va)?.prot ?? 0) & PROT_WRITE) !== 0;
      const edges = [...pm.pages.keys()].filter((va) => writable(va) && !writable(va + PAGE_SIZE));
      if (edges.length) return edges.sort((a, b) => a - b)[p.page % edges.length] + p.offset;
    }
    return pageOf(pm, p.page) + p.offset;
  }

  private copy(m: DeviceModel, r: DeviceReal, slot: number, q: QueueModel, what: string): void {
    const pm = m.procs[slot]!;
    const proc = r.procs[slot]!;
    const src = this.addr(m, slot, this.src);
    const dst = this.addr(m, slot, this.dst);
    const len = this.len;
    if (m.removed) {
      // uacce_remove zapped the rings: the descriptor write itself faults.
      expectCode(
        errnoOf(() => submitCopy(proc, q, src, dst, len)),
        'EFAULT',
        `${what}: submit after removal`,
      );
      return;
    }
    // The model's side, computed before the device runs.
    const srcBytes = new Uint8Array(len);
    let want = 0;
    for (let off = 0; off < len && want === 0;) {
      const va = src + off;
      const pva = va - (va % PAGE_SIZE);
      const n = Math.min(PAGE_SIZE - (va - pva), len - off);
      const pg = pm.pages.get(pva);
      if (!pg || !(pg.prot & PROT_READ)) want = -ERRNO.EFAULT;
      else srcBytes.set(m.bytes(pg).subarray(va - pva, va - pva + n), off);
      off += n;
    }
    const touched = new Set<number>();
    let wrote = 0;
    if (want === 0) {
      for (let off = 0; off < len;) {
        const va = dst + off;
        const pva = va - (va % PAGE_SIZE);
        const n = Math.min(PAGE_SIZE - (va - pva), len - off);
        const pg = pm.pages.get(pva);
        if (!pg || !(pg.prot & PROT_WRITE)) {
          want = -ERRNO.EFAULT;
          break;
        }
        m.writable(pg).set(srcBytes.subarray(off, off + n), va - pva);
        touched.add(pva);
        wrote += n;
        off += n;
      }
    }

    const atc0 = r.kernel.iommu.stats.atcInvalidations;
    const tag = submitCopy(proc, q, src, dst, len);
    const done = r.kernel.tasks.runUntilSync(() => {
      const c = ctrlOf(proc, q);
      return c.cq_head !== c.cq_tail;
    }, COPY_TIMEOUT_NS);
    if (!done) throw new Error(`${what}: no completion after ${COPY_TIMEOUT_NS} ns (hang)`);
    const cqe = reap(proc, q);
    deviceFuzzCoverage.atcInvalidations += r.kernel.iommu.stats.atcInvalidations - atc0;
    if (cqe.tag !== tag) throw new Error(`${what}: completion tag ${cqe.tag}, expected ${tag}`);
    if (cqe.status !== want)
      throw new Error(
        `${what}: src ${hex(src)} dst ${hex(dst)} len ${len}: status ${cqe.status}, expected ${want}`,
      );
    deviceFuzzCoverage.copies++;
    if (cqe.faults > 0) deviceFuzzCoverage.copiesFaulted++;
    else deviceFuzzCoverage.copiesWarm++;
    if (want === 0) {
      if (cqe.consumed !== len || cqe.produced !== len)
        throw new Error(`${what}: consumed ${cqe.consumed} produced ${cqe.produced}, expected ${len}`);
    } else {
      deviceFuzzCoverage.copiesEfault++;
      if (wrote > 0) deviceFuzzCoverage.copiesPartial++;
    }
    // What the process sees now on every page the copy wrote, and the page it stopped at.
    for (const pva of touched) {
      const got = proc.read(pva, PAGE_SIZE);
      const i = firstDiff(got, m.bytes(pm.pages.get(pva)!));
      if (i >= 0)
        throw new Error(
          `${what}: ${hex(pva)} byte ${i} is ${got[i]}, expected ${m.bytes(pm.pages.get(pva)!)[i]}`,
        );
    }
  }

  toString = () => {
    const place = (p: Place) =>
      p.stray ? `stray+${p.offset}` : `${p.edge ? 'edge ' : ''}page ${p.page}+${p.offset}`;
    return `copy(p${this.pick}, q${this.queue}, ${place(this.src)} -> ${place(this.dst)}, ${this.len}B)`;
  };
}

/**
 * Release a queue file the process holds: the opener puts the queue (UACCE_CMD_PUT_Q, ENXIO once
 * the device is gone), unmaps the regions and closes; a process that inherited the fd closes it.
 */
export class CloseQueueCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly queue: number,
    readonly putFirst: boolean,
  ) {}
  check = () => true;
  run(m: DeviceModel, r: DeviceReal): void {
    const what = this.toString();
    const slot = slotOf(m, this.pick);
    const held = m.heldBy(slot);
    if (held.length) {
      const q = held[this.queue % held.length];
      const proc = r.procs[slot]!;
      const fd = q.holders.get(slot)!;
      if (q.owner === slot) {
        if (this.putFirst)
          expectCode(
            errnoOf(() => proc.ioctl(fd, UACCE_CMD_PUT_Q)),
            m.removed ? 'ENXIO' : 'OK',
            `${what}: PUT_Q`,
          );
        proc.munmap(q.mmio, PAGE_SIZE);
        proc.munmap(q.dus, q.dusSize);
      }
      expectCode(
        errnoOf(() => proc.close(fd)),
        'OK',
        `${what}: close`,
      );
      m.drop(q, slot);
      deviceFuzzCoverage.closes++;
      if (!m.removed) {
        const free = Number(r.kernel.readSysfs(`/sys/class/uacce/${r.devPath.slice(5)}/available_instances`));
        if (free !== m.nrHwQueues - m.busyQueues())
          throw new Error(`${what}: available_instances ${free}, model ${m.nrHwQueues - m.busyQueues()}`);
      }
    }
    check(r, what);
  }
  toString = () => `closeQueue(p${this.pick}, q${this.queue}${this.putFirst ? ', PUT_Q' : ''})`;
}

/**
 * Submit a copy and exit before the device has fetched it: the queue goes with the process's
 * files (or, when a child still holds the file, the mm's exit revokes the PASID), so the request
 * completes or is cancelled without touching memory. Nothing may be left in flight, and no page
 * of a live process or a pin changes (checkPins, and every later read).
 */
export class ExitWithDmaCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly queue: number,
    readonly len: number,
  ) {}
  check = (m: Readonly<DeviceModel>) => m.live().length > 1 && !m.removed;
  run(m: DeviceModel, r: DeviceReal): void {
    const what = this.toString();
    const slot = slotOf(m, this.pick);
    const mine = owned(m, slot);
    if (mine.length) {
      const proc = r.procs[slot]!;
      const q = mine[this.queue % mine.length];
      const pm = m.procs[slot]!;
      // Both ends in the process's own memory when it has some, so a buggy device would scribble
      // on pages that might be shared or pinned.
      const a = pageOf(pm, this.queue);
      const b = pageOf(pm, this.queue + 1);
      submitCopy(proc, q, a, b, this.len);
      proc.exit();
      r.procs[slot] = null;
      m.procs[slot] = null;
      m.exited(slot);
      deviceFuzzCoverage.exitsWithDma++;
      r.kernel.tasks.runUntilSync(() => r.accel.busy === 0, COPY_TIMEOUT_NS);
      if (r.accel.busy !== 0) throw new Error(`${what}: ${r.accel.busy} request(s) still in flight`);
    }
    check(r, what);
    checkPins(m, r, what);
  }
  toString = () => `exitWithDma(p${this.pick}, q${this.queue}, ${this.len}B)`;
}

/** Hot removal of the device (the driver's remove) with whatever queues are open. */
export class HotRemoveCmd implements Cmd {
  check = (m: Readonly<DeviceModel>) => !m.removed;
  run(m: DeviceModel, r: DeviceReal): void {
    r.accel.unrealize();
    m.removed = true;
    deviceFuzzCoverage.removals++;
    if (r.accel.busy !== 0) throw new Error(`hotRemove: ${r.accel.busy} request(s) left`);
    check(r, this.toString());
    checkPins(m, r, this.toString());
  }
  toString = () => 'hotRemove';
}

/** Counts forks of a process that holds a queue (the fork itself is mm-commands' ForkCmd). */
class CountForks implements Cmd {
  constructor(readonly inner: fc.Command<DeviceModel, DeviceReal>) {}
  check = (m: Readonly<DeviceModel>) => this.inner.check(m);
  run(m: DeviceModel, r: DeviceReal): void {
    const before = m.procs.length;
    const holders = new Set(m.queues.flatMap((q) => [...q.holders.keys()]));
    this.inner.run(m, r);
    if (m.procs.length > before && holders.size) deviceFuzzCoverage.forksHoldingQueue++;
  }
  toString = () => this.inner.toString();
}

/** A page and an offset into it (page-aligned half the time); stray is decided by the copy. */
const place = fc.record({
  page: pick,
  // Page-aligned, anywhere, or near the end so that a copy runs into the next page.
  offset: fc.oneof(
    fc.constant(0),
    fc.nat({ max: PAGE_SIZE - 1 }),
    fc.integer({ min: 1, max: 64 }).map((n) => PAGE_SIZE - n),
  ),
});

/**
 * deviceCommands - the accelerator commands alone: open a queue (mapped and started), copy between
 * two places of the process's memory (now and then an unmapped one), close a queue (with or
 * without PUT_Q), exit with a copy in flight, and hot removal of the device.
 */
export function deviceCommands(): Array<fc.Arbitrary<Cmd>> {
  const len = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 3 * PAGE_SIZE }));
  const copy = fc
    .tuple(pick, pick, place, place, len, fc.nat({ max: 15 }))
    .map(
      ([p, q, s, d, n, stray]) =>
        new CopyCmd(p, q, { ...s, stray: stray === 0 }, { ...d, stray: stray === 1, edge: stray >= 12 }, n),
    );
  return [
    pick.map((p) => new OpenQueueCmd(p)),
    pick.map((p) => new OpenQueueCmd(p)),
    copy,
    copy,
    copy,
    copy,
    fc.tuple(pick, pick, fc.boolean()).map(([p, q, put]) => new CloseQueueCmd(p, q, put)),
    fc
      .tuple(pick, pick, fc.integer({ min: 1, max: 2 * PAGE_SIZE }))
      .map(([p, q, n]) => new ExitWithDmaCmd(p, q, n)),
    fc.nat({ max: 7 }).map((n) => (n === 0 ? new HotRemoveCmd() : new OpenQueueCmd(n))),
  ];
}

/**
 * mmPinDeviceCommands - mm, pin and device commands together: the device copies through IO page
 * faults while pages are migrated, compacted, collapsed, swapped, forked and unmapped under it.
 */
export function mmPinDeviceCommands(): Array<fc.Arbitrary<Cmd>> {
  const mmPin = mmPinCommands().map((a) =>
    a.map((c) => new CountForks(c as unknown as fc.Command<DeviceModel, DeviceReal>) as Cmd),
  );
  return [...mmPin, ...deviceCommands()];
}

/**
 * deviceFuzzSetup - a fresh kernel with an SVA copy accelerator (the first uacce device listing
 * 'memcpy', the plugin named `plugin`), and one unprivileged process, with the device model.
 */
export function deviceFuzzSetup(
  createKernel: () => Kernel,
  plugin = 'memcpy_accel',
  memlockPages = 12,
): { model: DeviceModel; real: DeviceReal } {
  const kernel = createKernel();
  const accel = kernel.plugin<VirtualAccelerator>(plugin);
  const devPath = accel.devPath;
  if (!devPath) throw new Error(`deviceFuzzSetup: ${plugin} is not realized`);
  const dir = `/sys/class/uacce/${devPath.slice('/dev/'.length)}`;
  const dusSize = Number(kernel.readSysfs(`${dir}/region_dus_size`));
  const nrHwQueues = Number(kernel.readSysfs(`${dir}/available_instances`));
  // A udev rule opens the node to everyone, as UADK installations do; the process stays unprivileged.
  const udev = kernel.spawn({ name: 'udevd' });
  udev.chmod(devPath, 0o666);
  udev.exit();
  const p = kernel.spawn({ uid: 1000, rlimits: { memlock: memlockPages * PAGE_SIZE } });
  const model = new DeviceModel(nrHwQueues);
  model.procs.push({ pages: new Map(), memlockPages });
  return { model, real: { kernel, procs: [p], accel, devPath, dusSize } };
}

/**
 * deviceFuzzTeardown - the pin teardown (bytes, pins, every process exits, no leak against
 * `freeAtBoot`, or `freeAfterRemoval` when the device was removed), then: nothing in flight on
 * the device and, if it is still there, every hardware queue free again.
 */
export function deviceFuzzTeardown(
  model: DeviceModel,
  real: DeviceReal,
  freeAtBoot: number,
  freeAfterRemoval: number,
): void {
  pinFuzzTeardown(model, real, model.removed ? freeAfterRemoval : freeAtBoot);
  if (real.accel.busy !== 0) throw new Error(`teardown: ${real.accel.busy} request(s) in flight`);
  if (!model.removed) {
    const dir = `/sys/class/uacce/${real.devPath.slice('/dev/'.length)}`;
    const free = Number(real.kernel.readSysfs(`${dir}/available_instances`));
    if (free !== model.nrHwQueues) throw new Error(`teardown: ${free} of ${model.nrHwQueues} queues free`);
  }
}
