import type { AttributeGroup } from '../base/device';
import { DeviceClass } from '../base/device-class';
import type { DeviceCore } from '../base/device-core';
import type { FileOperations } from '../fs/file';
import { MAJOR, MINORMASK } from '../fs/inode';
import type { MmCore } from '../mm/mm-core';
import { ERRNO, KernelError } from '../uapi/errno';
import { UACCE_MAX_DEV_ID, UACCE_NAME } from './constants';
import { toUacceDevice, type UacceDevice } from './device';
import { createUacceFops, uacceVmOps } from './fops';
import { uacceQStateName, uacceQueueIsValid } from './queue';
import type { UacceSvaOps } from './sva-ops';
import { uacceDevGroup } from './sysfs';

/**
 * What UACCE_CMD_PUT_Q does:
 * - 'stop' (default): only stop the queue (STARTED -> INIT); the hardware is given back at close
 *   or removal ("uacce: ensure safe queue release with state management", stable Jan 2026 and
 *   mainline). START_Q works again afterwards.
 * - 'put': stop and put_queue, the queue becomes ZOMBIE (v5.7 - 2025); later ioctl and mmap on
 *   the fd answer -ENXIO (v6.3+ "Handle parent device removal or driver unbind").
 */
export type UaccePutQMode = 'stop' | 'put';

/**
 * How uacceAlloc treats UACCE_DEV_SVA on a parent without SVA support:
 * - 'clear' (default): clear it silently (v5.13 "Enable IOMMU_DEV_FEAT_IOPF" until 2025), so the
 *   negotiated uacce.flags tell the driver, and open() does not bind;
 * - 'copy': keep the flags as asked (2025 "Remove unnecessary IOMMU_DEV_FEAT_IOPF"); open() then
 *   fails with the bind's errno.
 */
export type UacceSvaNegotiation = 'clear' | 'copy';

/** Options of a {@link UacceCore}. */
export interface UacceCoreOptions {
  /** What PUT_Q does (default 'stop'). */
  putQ?: UaccePutQMode;
  /** How UACCE_DEV_SVA is negotiated (default 'clear'). */
  svaNegotiation?: UacceSvaNegotiation;
  /** Largest dev_id xa_alloc hands out (default UACCE_MAX_DEV_ID, xa_limit_32b). */
  maxDevId?: number;
}

/**
 * UacceCore - one kernel's uacce framework (the globals of drivers/misc/uacce/uacce.c): the
 * "uacce" class, its char device region, the global device-id allocator and the file operations,
 * plus the SVA operations open() binds with. Constructing it is uacce_init; {@link exit} is
 * uacce_exit. One per kernel (a second one in the same DeviceCore fails: the class exists).
 */
export class UacceCore {
  readonly devices: DeviceCore;
  readonly mmCore: MmCore;
  /**
   * The IOMMU's SVA operations. Replace it (the real IOMMU, a fake) only while no device is
   * allocated: open queues keep the handles they got.
   */
  svaOps: UacceSvaOps;
  readonly options: Readonly<Required<UacceCoreOptions>>;
  /** The "uacce" class (/sys/class/uacce). */
  readonly uacceClass: DeviceClass;
  /** First dev_t of the char region (uacce_devt); a device's minor is its dev_id. */
  readonly devt: number;
  /** uacce_fops: what every /dev/<name>-<id> opens to. */
  readonly fops: FileOperations;
  /** The attribute groups of every uacce device (uacce_dev_groups). */
  readonly devGroups: AttributeGroup[] = [uacceDevGroup];
  /** uacce_xa: allocated devices by dev_id. */
  private readonly xa = new Map<number, UacceDevice>();
  /** Every device not yet freed, removed or not (open fds keep removed ones), for the checks. */
  private readonly tracked = new Set<UacceDevice>();

  /**
   * uacce_init: register the class and reserve MINORMASK minors under a dynamic major.
   * Throws KernelError with the class or region errno (a boot failure). Undone by {@link exit}.
   */
  constructor(devices: DeviceCore, mmCore: MmCore, svaOps: UacceSvaOps, opts: UacceCoreOptions = {}) {
    this.devices = devices;
    this.mmCore = mmCore;
    this.svaOps = svaOps;
    const putQ = opts.putQ ?? 'stop';
    const svaNegotiation = opts.svaNegotiation ?? 'clear';
    const maxDevId = opts.maxDevId ?? UACCE_MAX_DEV_ID;
    if (putQ !== 'stop' && putQ !== 'put') throw new RangeError(`uacce: bad putQ ${String(putQ)}`);
    if (svaNegotiation !== 'clear' && svaNegotiation !== 'copy')
      throw new RangeError(`uacce: bad svaNegotiation ${String(svaNegotiation)}`);
    if (!Number.isInteger(maxDevId) || maxDevId < 0 || maxDevId > UACCE_MAX_DEV_ID)
      throw new RangeError(`uacce: bad maxDevId ${String(maxDevId)}`);
    this.options = Object.freeze({ putQ, svaNegotiation, maxDevId });
    this.uacceClass = new DeviceClass(UACCE_NAME);
    const cret = devices.classRegister(this.uacceClass);
    if (cret < 0) throw new KernelError(cret, 'uacce class');
    const devt = devices.allocChrdevRegion(0, MINORMASK, UACCE_NAME);
    if (devt < 0) {
      devices.classUnregister(this.uacceClass);
      throw new KernelError(devt, 'uacce chrdev region');
    }
    this.devt = devt;
    this.fops = createUacceFops(this);
  }

  /** The char major of every uacce device. */
  get major(): number {
    return MAJOR(this.devt);
  }

  /**
   * xaAlloc - store `uacce` at the lowest free id in [0, maxDevId] (xa_alloc with xa_limit_32b);
   * `make` builds the device once its id is known. Returns the device, or -EBUSY when every id is
   * taken. Released by {@link xaErase}.
   */
  xaAlloc(make: (id: number) => UacceDevice): UacceDevice | number {
    for (let id = 0; id <= this.options.maxDevId; id++) {
      if (this.xa.has(id)) continue;
      const uacce = make(id);
      this.xa.set(id, uacce);
      this.tracked.add(uacce);
      return uacce;
    }
    return -ERRNO.EBUSY;
  }

  /** xaLoad - the device with `id` (xa_load), or undefined once it was removed. */
  xaLoad(id: number): UacceDevice | undefined {
    return this.xa.get(id);
  }

  /** xaErase - free `id` (xa_erase); a later uacceAlloc may reuse it. */
  xaErase(id: number): void {
    this.xa.delete(id);
  }

  /** The allocated (not yet removed) devices, by dev_id. */
  deviceList(): UacceDevice[] {
    return [...this.xa.entries()].sort((a, b) => a[0] - b[0]).map(([, u]) => u);
  }

  /**
   * exit - uacce_exit: give back the char region and unregister the class. Returns 0, or -EBUSY
   * while devices are allocated.
   */
  exit(): number {
    if (this.xa.size > 0) return -ERRNO.EBUSY;
    this.devices.unregisterChrdevRegion(this.devt, MINORMASK);
    return this.devices.classUnregister(this.uacceClass);
  }

  /**
   * checkInvariants - uacce's part of Kernel.checkInvariants: every allocated device sits at its
   * dev_id; queues belong to their device; a removed device has only ZOMBIE, unbound queues; a
   * queue's PASID is its bond's; every region slot in use is held by a live mapping of that
   * queue. Empty when all hold.
   */
  checkInvariants(): string[] {
    const out: string[] = [];
    for (const [id, u] of this.xa) {
      if (u.devId !== id) out.push(`${u.name}: stored at dev_id ${id} but has ${u.devId}`);
      if (u.removed) out.push(`${u.name}: removed but still allocated`);
    }
    for (const dev of this.uacceClass.devices) {
      const u = toUacceDevice(dev);
      if (!u || this.xa.get(u.devId) !== u) out.push(`${dev.name}: in /sys/class/uacce but not allocated`);
    }
    for (const u of [...this.tracked]) {
      if (u.released) {
        this.tracked.delete(u);
        if (u.queues.length) out.push(`${u.name}: freed with ${u.queues.length} open queue(s)`);
        continue;
      }
      for (const q of u.queues) {
        if (q.uacce !== u) out.push(`${u.name}: holds a queue of ${q.uacce.name}`);
        if (u.removed && (uacceQueueIsValid(q) || q.handle))
          out.push(`${u.name}: removed with a live queue (${uacceQStateName(q.state)})`);
        if (q.handle && q.pasid !== q.handle.pasid)
          out.push(`${u.name}: queue pasid ${q.pasid} is not its bond's ${q.handle.pasid}`);
        q.qfrs.forEach((qfr, type) => {
          if (!qfr) return;
          const held = [...(q.mapping?.vmas ?? [])].some(
            (vma) => vma.vmOps === uacceVmOps && vma.privateData === q && vma.pgoff === type && vma.mm.alive,
          );
          if (!held) out.push(`${u.name}: region ${type} marked mapped but no VMA maps it`);
        });
      }
    }
    return out;
  }
}
