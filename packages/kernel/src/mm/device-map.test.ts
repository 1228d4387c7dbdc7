import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { FileOperations } from '../fs/file';
import { MISC_DYNAMIC_MINOR } from '../base/misc';
import { MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../uapi/mman';
import { GFP_KERNEL } from './gfp';
import { PG_slab } from './page-flags';
import { remapPfnRange, unmapMappingRange, vmInsertPage } from './device-map';
import type { AddressSpace } from './address-space';
import type { MmapFile } from './mmap-file';

/** A toy device: page 0 of its mmap is an MMIO doorbell, page 1 a RAM ring page. */
function setup() {
  const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] } });
  const stores: Array<[number, number[]]> = [];
  const mmio = k.mmCore.iomem.register('toy', 1, {
    read: (off, out) => out.fill(0xab),
    write: (off, src) => void stores.push([off, [...src]]),
  });
  const ring = k.phys.allocPages(GFP_KERNEL, 0);
  k.phys.frames.flags[ring] |= PG_slab;
  let mapping: AddressSpace | undefined;
  const fops: FileOperations = {
    mmap: (_file, vma) => {
      mapping = (vma.file as MmapFile).mapping;
      const r = remapPfnRange(vma, vma.start, mmio, PAGE_SIZE);
      return r < 0 ? r : vmInsertPage(vma, vma.start + PAGE_SIZE, ring);
    },
  };
  expect(k.miscRegister({ minor: MISC_DYNAMIC_MINOR, name: 'toy', fops })).toBe(0);
  const p = k.spawn();
  const fd = p.open('/dev/toy');
  const addr = p.mmap(2 * PAGE_SIZE, { prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd });
  return { k, p, fd, addr, stores, ring, mapping: () => mapping! };
}

describe('device mappings', () => {
  it('routes MMIO loads and stores to the device and maps ring pages', () => {
    const { k, p, addr, stores, ring } = setup();
    p.write(addr + 8, new Uint8Array([1, 2]));
    expect(stores).toEqual([[8, [1, 2]]]);
    expect([...p.read(addr, 2)]).toEqual([0xab, 0xab]);
    p.write(addr + PAGE_SIZE, new Uint8Array([7]));
    expect(k.phys.data.view(ring)?.[0]).toBe(7);
    expect(p.pagemap(addr + PAGE_SIZE).pfn).toBe(ring);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('unmapMappingRange zaps every mapping: the next access is EFAULT (SIGBUS)', () => {
    const { k, p, addr, mapping } = setup();
    const child = p.fork();
    unmapMappingRange(mapping());
    expect(() => p.read(addr, 1)).toThrow(expect.objectContaining({ code: 'EFAULT', syscall: 'access' }));
    expect(() => child.read(addr + PAGE_SIZE, 1)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(k.checkInvariants()).toEqual([]);
    child.exit();
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('rejects ranges outside the VMA and double inserts', () => {
    const { p, addr } = setup();
    const vma = p.mm.vmaLookup(addr)!;
    expect(remapPfnRange(vma, addr + 3 * PAGE_SIZE, 1, PAGE_SIZE)).toBe(-22);
    expect(remapPfnRange(vma, addr + 1, 1, PAGE_SIZE)).toBe(-22);
    expect(vmInsertPage(vma, addr + PAGE_SIZE, 5)).toBe(-16);
  });
});
