import { describe, expect, it } from '@jest/globals';
import { SetAssocTlb, TLB_PERM_READ, TLB_PERM_WRITE } from './tlb-cache';

const RW = TLB_PERM_READ | TLB_PERM_WRITE;

describe('SetAssocTlb', () => {
  it('refuses sizes that do not make a cache', () => {
    expect(() => new SetAssocTlb(0, 1)).toThrow(RangeError);
    expect(() => new SetAssocTlb(10, 4)).toThrow(RangeError);
    expect(() => new SetAssocTlb(8, 1.5)).toThrow(RangeError);
    const t = new SetAssocTlb(64, 4);
    expect(t.sets).toBe(16);
  });

  it('hits after insert, misses on another tag, and counts both', () => {
    const t = new SetAssocTlb(16, 4);
    expect(t.lookup(1, 100)).toBe(-1);
    const i = t.insert(1, 100, 555, TLB_PERM_READ);
    expect(t.lookup(1, 100)).toBe(i);
    expect(t.pfn[i]).toBe(555);
    expect(t.lookup(2, 100)).toBe(-1);
    expect(t.hits).toBe(1);
    expect(t.misses).toBe(2);
    expect(t.validEntries).toBe(1);
  });

  it('treats an entry without the permission asked for as a miss, and upgrades it in place', () => {
    const t = new SetAssocTlb(16, 4);
    const i = t.insert(1, 7, 70, TLB_PERM_READ);
    expect(t.lookup(1, 7, TLB_PERM_WRITE)).toBe(-1);
    expect(t.insert(1, 7, 70, RW)).toBe(i);
    expect(t.lookup(1, 7, TLB_PERM_WRITE)).toBe(i);
    expect(t.validEntries).toBe(1);
    expect(t.evictions).toBe(0);
  });

  it('keeps page numbers above 2^32 exact', () => {
    const t = new SetAssocTlb(8, 2);
    const vpn = 2 ** 35 + 3; // a 48-bit address space's top pages
    t.insert(3, vpn, 2 ** 33 + 1, RW);
    expect(t.lookup(3, vpn - t.sets)).toBe(-1); // same set, different page
    const i = t.lookup(3, vpn);
    expect(i).toBeGreaterThanOrEqual(0);
    expect(t.vpn[i]).toBe(vpn);
    expect(t.pfn[i]).toBe(2 ** 33 + 1);
  });

  it('indexes sets by the low page-number bits and evicts the least recently used way', () => {
    const t = new SetAssocTlb(8, 2); // 4 sets of 2 ways
    // 0, 4, 8 all map to set 0.
    t.insert(1, 0, 10, TLB_PERM_READ);
    t.insert(1, 4, 14, TLB_PERM_READ);
    expect(t.lookup(1, 0)).toBeGreaterThanOrEqual(0); // 0 is now more recent than 4
    t.insert(1, 8, 18, TLB_PERM_READ); // evicts 4
    expect(t.evictions).toBe(1);
    expect(t.lookup(1, 4)).toBe(-1);
    expect(t.lookup(1, 0)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(1, 8)).toBeGreaterThanOrEqual(0);
    // Other sets are untouched by set 0's conflicts.
    t.insert(1, 1, 11, TLB_PERM_READ);
    t.insert(1, 5, 15, TLB_PERM_READ);
    expect(t.validEntries).toBe(4);
    // Tags do not take part in the index: another ASID on page 0 competes with ASID 1's pages.
    t.insert(2, 0, 99, TLB_PERM_READ);
    expect(t.evictions).toBe(2);
    expect(t.lookup(2, 0)).toBeGreaterThanOrEqual(0);
  });

  it('fills a fully associative cache before evicting, then evicts in LRU order', () => {
    const t = new SetAssocTlb(4, 4);
    for (let v = 0; v < 4; v++) t.insert(1, v, v, TLB_PERM_READ);
    expect(t.evictions).toBe(0);
    t.lookup(1, 0);
    t.lookup(1, 1);
    t.insert(1, 10, 10, TLB_PERM_READ); // LRU is 2
    expect(t.peek(1, 2)).toBe(-1);
    t.insert(1, 11, 11, TLB_PERM_READ); // then 3
    expect(t.peek(1, 3)).toBe(-1);
    expect([0, 1, 10, 11].every((v) => t.peek(1, v) >= 0)).toBe(true);
  });

  it('reuses an invalidated way before evicting a valid one', () => {
    const t = new SetAssocTlb(2, 2);
    t.insert(1, 0, 0, TLB_PERM_READ);
    t.insert(1, 2, 2, TLB_PERM_READ);
    t.invalidateRange(1, 0, 1);
    t.insert(1, 4, 4, TLB_PERM_READ);
    expect(t.evictions).toBe(0);
    expect(t.peek(1, 2)).toBeGreaterThanOrEqual(0);
  });

  it('invalidates by range for one tag only, probing or scanning alike', () => {
    for (const [entries, ways] of [
      [64, 4], // 16 sets: a 2-page range is probed set by set
      [16, 16], // 1 set: every range is a scan
    ]) {
      const t = new SetAssocTlb(entries, ways);
      for (let v = 0; v < 8; v++) {
        t.insert(1, 1000 + v, v, TLB_PERM_READ);
        t.insert(2, 1000 + v, v, TLB_PERM_READ);
      }
      expect(t.validEntries).toBe(16);
      expect(t.invalidateRange(1, 1002, 1004)).toBe(2);
      expect(t.peek(1, 1001)).toBeGreaterThanOrEqual(0);
      expect(t.peek(1, 1004)).toBeGreaterThanOrEqual(0);
      expect(t.invalidateRange(1, 0, 1_000_000)).toBe(6);
      expect(t.validEntries).toBe(8);
      for (let v = 0; v < 8; v++) {
        expect(t.peek(1, 1000 + v)).toBe(-1);
        expect(t.peek(2, 1000 + v)).toBeGreaterThanOrEqual(0);
      }
      expect(t.invalidatedEntries).toBe(8);
    }
  });

  it('invalidates a whole tag and everything', () => {
    const t = new SetAssocTlb(32, 4);
    for (let v = 0; v < 5; v++) {
      t.insert(1, v, v, RW);
      t.insert(2, v, v, RW);
      t.insert(3, v, v, RW);
    }
    expect(t.invalidateAsid(2)).toBe(5);
    expect(t.peek(2, 0)).toBe(-1);
    expect(t.peek(1, 0)).toBeGreaterThanOrEqual(0);
    expect(t.invalidateAll()).toBe(10);
    expect(t.validEntries).toBe(0);
    expect(t.peek(1, 0)).toBe(-1);
    expect(t.invalidatedEntries).toBe(15);
    t.resetStats();
    expect(t.invalidatedEntries + t.hits + t.misses + t.evictions).toBe(0);
  });
});
