import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../uapi/mman';
import { committedAsPages, vmCommitLimit } from './overcommit';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe('overcommit accounting', () => {
  it('heuristic (0): one request larger than RAM + swap is refused, many smaller ones are not', () => {
    const k = createKernel({ memory: { nodes: [{ size: '1GiB' }] } });
    const p = k.spawn();
    expect(() => p.mmap(2 * GiB)).toThrow(expect.objectContaining({ code: 'ENOMEM', syscall: 'mmap' }));
    for (let i = 0; i < 4; i++) p.mmap(900 * MiB); // 3.6 GiB committed on a 1 GiB machine
    expect(committedAsPages(k.mmCore)).toBe((4 * 900 * MiB) / 4096);
    p.mmap(2 * GiB, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE }); // not accounted
    expect(committedAsPages(k.mmCore)).toBe((4 * 900 * MiB) / 4096);
  });

  it('always (1) accepts anything', () => {
    const p = createKernel({ sysctl: { 'vm.overcommit_memory': 1 } }).spawn();
    expect(p.mmap(64 * GiB)).toBeGreaterThan(0);
  });

  it('never (2): Committed_AS stays under swap + overcommit_ratio% of RAM, across mmap, mprotect, fork and munmap', () => {
    const k = createKernel({
      memory: { nodes: [{ size: '256MiB' }] },
      sysctl: { 'vm.overcommit_memory': 2 },
    });
    const limit = vmCommitLimit(k.mmCore);
    expect(limit).toBeGreaterThan(0);
    const p = k.spawn();
    const a = p.mmap(Math.floor((limit * 4096 * 0.6) / 4096) * 4096);
    expect(() => p.mmap(Math.floor((limit * 4096 * 0.5) / 4096) * 4096)).toThrow(
      expect.objectContaining({ code: 'ENOMEM' }),
    );
    const ro = p.mmap(Math.floor((limit * 4096 * 0.5) / 4096) * 4096, { prot: PROT_READ }); // read-only: not charged
    expect(() => p.mprotect(ro, 4096 * 1024, PROT_READ | PROT_WRITE)).not.toThrow(); // 4 MiB more fits
    expect(() =>
      p.mprotect(ro, Math.floor((limit * 4096 * 0.5) / 4096) * 4096, PROT_READ | PROT_WRITE),
    ).toThrow(expect.objectContaining({ code: 'ENOMEM', syscall: 'mprotect' }));
    expect(() => p.fork()).toThrow(expect.objectContaining({ code: 'ENOMEM', syscall: 'fork' }));
    expect(k.checkInvariants()).toEqual([]);
    const before = committedAsPages(k.mmCore);
    p.munmap(a, 4096 * 1024);
    expect(committedAsPages(k.mmCore)).toBe(before - 1024);
    p.exit();
    expect(committedAsPages(k.mmCore)).toBe(0);
  });
});
