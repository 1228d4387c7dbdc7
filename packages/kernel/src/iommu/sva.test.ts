import { describe, expect, it } from '@jest/globals';
import { Device } from '../base/device';
import { mmHasNotifiers } from '../mmu-notifier/mmu-notifier';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { KernelError } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { IOMMU_DOMAIN_SVA } from './domain';
import { initIommu, iommuOf, type Iommu, type IommuProbeOptions } from './iommu';
import { checkIommuInvariants } from './iommu-check';
import { devIommu, type IommuDevice } from './iommu-device';
import {
  iommuAttachDevicePasid,
  iommuDetachDevicePasid,
  iommuGetDomainForDevPasid,
  iommuSvaBindDevice,
  iommuSvaFindBinding,
  iommuSvaGetPasid,
  iommuSvaOps,
  iommuSvaUnbindDevice,
  mmPasidDrop,
} from './sva';
import { TRANSLATION_ABORT, iommuTranslate } from './translate';
import { IOMMU_PASID_INVALID } from './types';

function machine(profile = 'smmuv3'): { k: Kernel; iommu: Iommu } {
  const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] }, iommu: { profile } });
  return { k, iommu: initIommu(k.mmCore, { profile }) };
}

let devNo = 0;
function probe(iommu: Iommu, opts: IommuProbeOptions = {}): IommuDevice {
  return iommu.iommuProbeDevice(new Device({ name: `acc${devNo++}` }), { ats: true, ...opts });
}

/** The errno name a bind throws, or 'ok'. */
function bindErr(dev: Device | IommuDevice, p: Process): string {
  try {
    iommuSvaBindDevice(dev, p.mm);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    return (e as KernelError).code;
  }
}

function ok(k: Kernel, iommu: Iommu): void {
  expect(checkIommuInvariants(iommu)).toEqual([]);
  expect(k.checkInvariants()).toEqual([]);
}

describe('initIommu', () => {
  it('makes one IOMMU per kernel, with the profile asked for', () => {
    // createKernel starts the IOMMU with options.iommu.profile; later inits return it.
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
    const a = initIommu(k.mmCore);
    expect(iommuOf(k.mmCore)).toBe(a);
    expect(a.profile.name).toBe('smmuv3');
    expect(initIommu(k.mmCore)).toBe(a);
    expect(initIommu(k.mmCore, { profile: 'smmuv3' })).toBe(a);
    expect(() => initIommu(k.mmCore, { profile: 'vtd' })).toThrow(RangeError);
    expect(iommuOf(k.mmCore)).toBe(a);
    expect(() => createKernel({ iommu: { profile: 'bogus' } })).toThrow(RangeError);
    const k2 = createKernel({ memory: { nodes: [{ size: '64MiB' }] }, iommu: { profile: 'vtd' } });
    expect(initIommu(k2.mmCore, { profile: 'vtd' })).not.toBe(a);
  });

  it('probes devices into groups, sizes their ATC from the profile, and releases them', () => {
    const { iommu } = machine('vtd');
    const dev = new Device({ name: 'iax1' });
    const idev = iommu.iommuProbeDevice(dev);
    expect(iommu.iommuProbeDevice(dev)).toBe(idev);
    expect(devIommu(dev)).toBe(idev);
    expect(idev.ats).toBe(true); // vtd: atsDefault
    expect(idev.atc!.entries).toBe(iommu.profile.atcEntries);
    expect(idev.maxPasids).toBe(2 ** 20);
    expect(idev.svaSupported).toBe(true);
    const sibling = iommu.iommuProbeDevice(new Device({ name: 'iax1.1' }), { group: idev.group, ats: false });
    expect(sibling.group).toBe(idev.group);
    expect(sibling.atc).toBeNull();
    expect(iommu.groups.length).toBe(1);
    expect(() => iommu.iommuProbeDevice(new Device({ name: 'x' }), { pasidBits: 21 })).toThrow(RangeError);
    iommu.iommuReleaseDevice(dev);
    expect(devIommu(dev)).toBeNull();
    expect(iommu.groups.length).toBe(1);
    iommu.iommuReleaseDevice(sibling);
    expect(iommu.groups.length).toBe(0);
    expect(iommu.domains.size).toBe(0);
    expect(checkIommuInvariants(iommu)).toEqual([]);
  });
});

describe('iommuSvaBindDevice errors (KERNEL-FACTS 5)', () => {
  it('-ENODEV without an IOMMU group or without SVA', () => {
    const { k, iommu } = machine();
    const p = k.spawn();
    expect(bindErr(new Device({ name: 'unprobed' }), p)).toBe('ENODEV');
    expect(bindErr(probe(iommu, { sva: false }), p)).toBe('ENODEV');
    expect(bindErr(probe(iommu, { pasidBits: 0 }), p)).toBe('ENODEV');
    const gone = probe(iommu);
    iommu.iommuReleaseDevice(gone);
    expect(bindErr(gone, p)).toBe('ENODEV');
    expect(iommu.pasidIda.count).toBe(0);
    ok(k, iommu);
  });

  it('-EINVAL for an mm that has exited', () => {
    const { k, iommu } = machine();
    const p = k.spawn();
    p.exit();
    expect(bindErr(probe(iommu), p)).toBe('EINVAL');
  });

  it('-EBUSY when the page table cannot be shared or another domain holds the PASID', () => {
    const { k, iommu } = machine();
    const dev = probe(iommu);
    const p = k.spawn();
    iommu.archPgtableDmaCompat = (mm) => mm !== p.mm;
    expect(bindErr(dev, p)).toBe('EBUSY');
    iommu.archPgtableDmaCompat = () => true;
    // A driver attached its own paging domain at PASID 1 of the device; the next mm gets PASID 1.
    const mine = iommu.iommuPagingDomainAlloc();
    expect(iommuAttachDevicePasid(mine, dev, 1)).toBe(0);
    expect(iommuAttachDevicePasid(mine, dev, 1)).toBe(-16); // -EBUSY
    expect(bindErr(dev, p)).toBe('EBUSY');
    expect(iommu.mmData.get(p.mm)!.pasid).toBe(1);
    iommuDetachDevicePasid(mine, dev, 1);
    iommu.iommuDomainFree(mine);
    expect(bindErr(dev, p)).toBe('ok');
    ok(k, iommu);
  });

  it('-EOVERFLOW when the mm already has a PASID beyond the device, -ENOSPC when none is left', () => {
    const { k, iommu } = machine();
    const wide = probe(iommu);
    const narrow = probe(iommu, { pasidBits: 1 }); // PASIDs 0..1, so only PASID 1 usable
    const [a, b, c] = [k.spawn(), k.spawn(), k.spawn()];
    iommuSvaBindDevice(wide, a.mm); // PASID 1
    iommuSvaBindDevice(wide, b.mm); // PASID 2
    expect(bindErr(narrow, b)).toBe('EOVERFLOW');
    expect(bindErr(narrow, c)).toBe('ENOSPC'); // needs a new PASID <= 1: taken by a
    expect(iommu.mmData.has(c.mm)).toBe(false);
    expect(bindErr(narrow, a)).toBe('ok'); // a's PASID 1 fits
    ok(k, iommu);
  });

  it('-ENOMEM when an allocation fails, with nothing left behind', () => {
    const { k, iommu } = machine();
    const dev = probe(iommu);
    const p = k.spawn();
    iommu.faultInject.failAllocs = 1; // iommu_mm
    expect(bindErr(dev, p)).toBe('ENOMEM');
    expect(iommu.pasidIda.count).toBe(0);
    iommu.faultInject.failAllocs = 0;
    const h = iommuSvaBindDevice(dev, p.mm);
    iommuSvaUnbindDevice(h);
    iommu.faultInject.failAllocs = 1; // the handle
    expect(bindErr(dev, p)).toBe('ENOMEM');
    iommu.faultInject.afterAllocs = 1; // the handle succeeds, the domain fails
    iommu.faultInject.failAllocs = 1;
    expect(bindErr(dev, p)).toBe('ENOMEM');
    expect(iommu.domains.size).toBe(1); // only the default DMA domain
    expect(iommu.domainIda.count).toBe(1);
    expect(iommu.mmData.get(p.mm)!.svaDomains).toEqual([]);
    expect(bindErr(dev, p)).toBe('ok');
    ok(k, iommu);
  });
});

describe('SVA bond lifecycles', () => {
  it('a repeat bind of the same device and mm returns the same handle; unbinds are counted', () => {
    const { k, iommu } = machine();
    const dev = probe(iommu);
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([1]));
    const h1 = iommuSvaBindDevice(dev, p.mm);
    const h2 = iommuSvaBindDevice(dev.dev, p.mm);
    expect(h2).toBe(h1);
    expect(h1.users).toBe(2);
    const pasid = iommuSvaGetPasid(h1);
    expect(pasid).toBe(1);
    expect(h1.pasid).toBe(pasid);
    expect(iommuSvaFindBinding(dev, pasid)?.mm).toBe(p.mm);
    expect(iommuTranslate(dev, pasid, a, false)).toBe(p.pagemap(a).pfn);
    iommuSvaUnbindDevice(h1);
    expect(iommuTranslate(dev, pasid, a, true)).toBe(p.pagemap(a).pfn); // still bound
    iommuSvaUnbindDevice(h2);
    expect(iommuSvaGetPasid(h1)).toBe(IOMMU_PASID_INVALID);
    expect(iommuSvaFindBinding(dev, pasid)).toBeNull();
    expect(iommuTranslate(dev, pasid, a, false)).toBe(TRANSLATION_ABORT);
    expect(mmHasNotifiers(p.mm)).toBe(false);
    // The PASID stays with the live mm (mm_pasid_drop only at mm destruction).
    expect(iommu.mmData.get(p.mm)?.pasid).toBe(pasid);
    expect(iommu.pasidIda.has(pasid)).toBe(true);
    expect(iommuSvaBindDevice(dev, p.mm).pasid).toBe(pasid);
    iommuSvaUnbindDevice(h1); // the rebind made a new handle; h1 has no reference left
    expect(k.dmesg().some((l) => l.includes('unbind of a released SVA handle'))).toBe(true);
    expect(iommu.stats.svaBinds).toBe(3);
    ok(k, iommu);
  });

  it('devices bound to one mm share its PASID and one SVA domain; other mms get other PASIDs', () => {
    const { k, iommu } = machine();
    const [d1, d2] = [probe(iommu), probe(iommu, { ats: false })];
    const [p, q] = [k.spawn(), k.spawn()];
    const h1 = iommuSvaBindDevice(d1, p.mm);
    const h2 = iommuSvaBindDevice(d2, p.mm);
    const hq = iommuSvaBindDevice(d1, q.mm);
    expect(h1).not.toBe(h2);
    expect(h1.pasid).toBe(h2.pasid);
    expect(hq.pasid).not.toBe(h1.pasid);
    expect(h1.svaDomain).toBe(h2.svaDomain);
    expect(h1.svaDomain.users).toBe(2);
    expect(iommuGetDomainForDevPasid(d2, h1.pasid, IOMMU_DOMAIN_SVA)).toBe(h1.svaDomain);
    expect(iommu.stats.svaDomainsAllocated).toBe(2);
    iommuSvaUnbindDevice(h1);
    expect(h2.svaDomain.freed).toBe(false);
    expect(h2.svaDomain.notifier!.hashed).toBe(true);
    ok(k, iommu);
    iommuSvaUnbindDevice(h2);
    expect(h2.svaDomain.freed).toBe(true);
    expect(mmHasNotifiers(p.mm)).toBe(false);
    expect(mmHasNotifiers(q.mm)).toBe(true);
    iommuSvaUnbindDevice(hq);
    ok(k, iommu);
  });

  it('devices of one group share the bond: a second device binding the mm gets the same handle', () => {
    const { k, iommu } = machine();
    const d1 = probe(iommu);
    const d2 = iommu.iommuProbeDevice(new Device({ name: 'fn1' }), { group: d1.group, ats: true });
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.touch(a, PAGE_SIZE, { write: true });
    const h = iommuSvaBindDevice(d1, p.mm);
    expect(iommuSvaBindDevice(d2, p.mm)).toBe(h);
    expect(h.users).toBe(2);
    expect(iommuTranslate(d2, h.pasid, a, true)).toBe(p.pagemap(a).pfn);
    p.munmap(a, PAGE_SIZE);
    expect(d1.stats.atcInvalidations).toBeGreaterThan(0);
    expect(d2.stats.atcInvalidations).toBeGreaterThan(0);
    ok(k, iommu);
  });

  it('mm exit puts the PASID in fault-all state; the last unbind then frees the PASID', () => {
    const { k, iommu } = machine();
    const dev = probe(iommu);
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.touch(a, 4 * PAGE_SIZE, { write: true });
    const h = iommuSvaBindDevice(dev, p.mm);
    const pasid = h.pasid;
    for (let i = 0; i < 4; i++)
      expect(iommuTranslate(dev, pasid, a + i * PAGE_SIZE, true)).toBeGreaterThan(0);
    expect(iommu.iotlb.validEntries).toBe(4);
    p.exit();
    expect(h.svaDomain.faultAll).toBe(true);
    expect(iommu.iotlb.validEntries).toBe(0);
    expect(dev.atc!.validEntries).toBe(0);
    for (let i = 0; i < 4; i++)
      expect(iommuTranslate(dev, pasid, a + i * PAGE_SIZE, false)).toBe(TRANSLATION_ABORT);
    expect(dev.stats.aborts).toBe(4);
    // No access to freed memory, and the PASID lives until unbind.
    expect(iommu.pasidIda.has(pasid)).toBe(true);
    expect(iommuSvaGetPasid(h)).toBe(pasid);
    expect(iommuSvaFindBinding(dev, pasid)?.mm.alive).toBe(false);
    ok(k, iommu);
    iommuSvaUnbindDevice(h);
    expect(iommu.pasidIda.has(pasid)).toBe(false);
    expect(iommu.mmData.has(p.mm)).toBe(false);
    expect(iommu.stats.pasidsFreed).toBe(1);
    // The next mm gets the lowest free PASID again.
    expect(iommuSvaBindDevice(dev, k.spawn().mm).pasid).toBe(pasid);
    ok(k, iommu);
  });

  it('the PASID of an mm unbound while alive is reclaimed once the mm has exited', () => {
    const { k, iommu } = machine();
    const dev = probe(iommu);
    const [p, q] = [k.spawn(), k.spawn()];
    iommuSvaUnbindDevice(iommuSvaBindDevice(dev, p.mm)); // p keeps PASID 1
    iommuSvaUnbindDevice(iommuSvaBindDevice(dev, q.mm)); // q keeps PASID 2
    expect(iommu.pasidIda.count).toBe(2);
    p.exit();
    // Reclaimed before the next allocation (the mmdrop that already happened)...
    expect(iommuSvaBindDevice(dev, k.spawn().mm).pasid).toBe(1);
    // ...or at once through mmPasidDrop.
    q.exit();
    mmPasidDrop(iommu, q.mm);
    expect(iommu.pasidIda.has(2)).toBe(false);
    ok(k, iommu);
  });

  it('offers uacce its bind/supported pair', () => {
    const { k, iommu } = machine();
    const sva = probe(iommu);
    const plain = probe(iommu, { sva: false });
    const ops = iommuSvaOps(iommu);
    expect(ops.supported(sva.dev)).toBe(true);
    expect(ops.supported(plain.dev)).toBe(false);
    expect(ops.supported(new Device({ name: 'none' }))).toBe(false);
    const p = k.spawn();
    const h = ops.bind(sva.dev, p.mm);
    expect(h.pasid).toBe(1);
    h.unbind();
    expect(h.pasid).toBe(IOMMU_PASID_INVALID);
    expect(() => ops.bind(plain.dev, p.mm)).toThrow(KernelError);
  });
});
