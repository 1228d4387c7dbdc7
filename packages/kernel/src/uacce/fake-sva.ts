import type { Device } from '../base/device';
import { IOMMU_PASID_INVALID } from '../iommu/types';
import type { MmStruct } from '../mm/mm-struct';
import { ERRNO, KernelError } from '../uapi/errno';
import type { UacceSvaHandle, UacceSvaOps } from './sva-ops';

/** First PASID the fake hands out (PASID 0 is the RID/no-PASID address space). */
const FIRST_PASID = 1;

/** One live (device, mm) bond of the fake. */
export interface FakeSvaBond {
  readonly parent: Device;
  readonly mm: MmStruct;
  readonly pasid: number;
  /** Handles bound and not yet unbound. */
  users: number;
}

/**
 * FakeUacceSvaOps - a stand-in for the IOMMU's SVA support, for tests and for kernels booted
 * without an IOMMU model. Like iommu_sva_bind_device, a (device, mm) pair has one bond, shared
 * and counted by every bind; an mm keeps one PASID for all devices. Failures are injected with
 * {@link bindErrno} and {@link invalidPasid}.
 */
export class FakeUacceSvaOps implements UacceSvaOps {
  /** Whether a parent not listed in {@link setSupported} can do SVA. */
  supportedByDefault: boolean;
  /** When non-zero, every bind throws KernelError with this errno (e.g. -ENOSPC). */
  bindErrno = 0;
  /** When true, binds succeed but report IOMMU_PASID_INVALID (uacce must unbind and fail -ENODEV). */
  invalidPasid = false;
  /** Binds that succeeded (including invalid-PASID ones) and unbinds, for assertions. */
  binds = 0;
  unbinds = 0;
  private readonly support = new Map<Device, boolean>();
  private readonly pasids = new WeakMap<MmStruct, number>();
  private readonly bondList: FakeSvaBond[] = [];
  private nextPasid = FIRST_PASID;

  /** @param supportedByDefault - can parents do SVA unless told otherwise (default true). */
  constructor(supportedByDefault = true) {
    this.supportedByDefault = supportedByDefault;
  }

  /** setSupported - whether `parent` can do SVA (what supported() answers for it). */
  setSupported(parent: Device, yes: boolean): void {
    this.support.set(parent, yes);
  }

  /** supported - see UacceSvaOps.supported. */
  supported(parent: Device): boolean {
    return this.support.get(parent) ?? this.supportedByDefault;
  }

  /**
   * bind - see UacceSvaOps.bind. Throws KernelError -ENODEV for a parent without SVA support or a
   * dead mm, or bindErrno when set. Released by the handle's unbind (a second unbind throws Error).
   */
  bind(parent: Device, mm: MmStruct): UacceSvaHandle {
    if (!this.supported(parent)) throw new KernelError(-ERRNO.ENODEV, `${parent.name}: no SVA`);
    if (this.bindErrno) throw new KernelError(this.bindErrno, `${parent.name}: injected bind failure`);
    if (!mm.alive) throw new KernelError(-ERRNO.ENODEV, 'bind of a dead mm');
    let bond = this.bondList.find((b) => b.parent === parent && b.mm === mm);
    if (!bond) {
      let pasid = this.pasids.get(mm);
      if (pasid === undefined) {
        pasid = this.nextPasid++;
        this.pasids.set(mm, pasid);
      }
      bond = { parent, mm, pasid: this.invalidPasid ? IOMMU_PASID_INVALID : pasid, users: 0 };
      this.bondList.push(bond);
    }
    bond.users++;
    this.binds++;
    const b = bond;
    let bound = true;
    return {
      pasid: b.pasid,
      unbind: () => {
        if (!bound) throw new Error(`iommu_sva_unbind_device twice (pasid ${b.pasid})`);
        bound = false;
        this.unbinds++;
        if (--b.users === 0) this.bondList.splice(this.bondList.indexOf(b), 1);
      },
    };
  }

  /** bonds - the live bonds, oldest first. */
  bonds(): readonly FakeSvaBond[] {
    return [...this.bondList];
  }
}
