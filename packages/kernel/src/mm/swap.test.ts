import { describe, it, expect } from '@jest/globals';
import { PAGE_SIZE } from '../uapi/mman';
import { ERRNO } from '../uapi/errno';
import { tunableValues } from './mm-config';
import { SWAP_TUNABLE_DEFAULTS, type SwapTunables } from './reclaim-config';
import { SwapInfo } from './swap';

const io = tunableValues(SWAP_TUNABLE_DEFAULTS) as SwapTunables;

describe('SwapInfo', () => {
  it('keeps slot 0 for the header and hands slots out next-fit until full', () => {
    const si = new SwapInfo(16 * PAGE_SIZE, io);
    expect(si.totalPages).toBe(15);
    const got: number[] = [];
    for (let i = 0; i < 15; i++) got.push(si.getSwapPage());
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(si.getSwapPage()).toBe(0); // full
    expect(si.freePages).toBe(0);
    expect(si.swapFree(4)).toBe(0);
    expect(si.swapFree(9)).toBe(0);
    // Next-fit: the cursor wrapped, the first free slot after it is taken.
    expect(si.getSwapPage()).toBe(4);
    expect(si.getSwapPage()).toBe(9);
  });

  it('counts references: swapDuplicate adds one, swapFree frees the slot at the last', () => {
    const si = new SwapInfo(16 * PAGE_SIZE, io);
    const s = si.getSwapPage();
    expect(si.swapCount(s)).toBe(1);
    expect(si.swapDuplicate(s)).toBe(0);
    expect(si.swapDuplicate(s)).toBe(0);
    expect(si.swapCount(s)).toBe(3);
    expect(si.swapFree(s)).toBe(2);
    expect(si.swapFree(s)).toBe(1);
    expect(si.inusePages).toBe(1);
    expect(si.swapFree(s)).toBe(0);
    expect(si.inusePages).toBe(0);
    expect(si.swapFree(s)).toBe(-ERRNO.EINVAL);
    expect(si.swapDuplicate(s)).toBe(-ERRNO.EINVAL);
    expect(si.swapDuplicate(0)).toBe(-ERRNO.EINVAL); // the header
    expect(si.swapFree(16)).toBe(-ERRNO.EINVAL); // beyond the area
  });

  it('stores exact bytes, nothing for zero pages, and drops them when the slot is freed', () => {
    const si = new SwapInfo(16 * PAGE_SIZE, io);
    const a = si.getSwapPage();
    const b = si.getSwapPage();
    const page = new Uint8Array(PAGE_SIZE).map((_, i) => (i * 31 + 7) & 255);
    expect(si.writePage(a, page)).toBe(true);
    expect(si.writePage(b, new Uint8Array(PAGE_SIZE))).toBe(false); // zero-filled: zeromap
    expect(si.writePage(b, undefined)).toBe(false);
    page[0] ^= 1; // the store holds a copy, not the caller's buffer
    const back = si.readPage(a)!;
    expect(back[0]).toBe(7);
    expect(back[4095]).toBe((4095 * 31 + 7) & 255);
    expect(si.readPage(b)).toBeUndefined();
    expect(si.usage()).toEqual({ totalPages: 15, inusePages: 2, freePages: 13, pagesWithData: 1 });
    si.swapFree(a);
    expect(si.readPage(a)).toBeUndefined();
    expect(si.usage().pagesWithData).toBe(0);
  });

  it('checks the swap map against the swap entries that refer to it', () => {
    const si = new SwapInfo(16 * PAGE_SIZE, io);
    const a = si.getSwapPage();
    si.swapDuplicate(a); // two entries installed...
    si.swapDuplicate(a);
    si.swapFree(a); // ...and the swap-out's own reference dropped
    expect(si.checkInvariants(new Map([[a, 2]]))).toEqual([]);
    expect(si.checkInvariants(new Map([[a, 1]]))).toEqual([
      `swap slot ${a}: count 2 but 1 swap entries refer to it`,
    ]);
    expect(
      si.checkInvariants(
        new Map([
          [a, 2],
          [5, 1],
        ]),
      ),
    ).toEqual(['swap slot 5: count 0 but 1 swap entries refer to it']);
  });

  it('models IO time from the profile: a batch streams after the first write', () => {
    const si = new SwapInfo(16 * PAGE_SIZE, io);
    expect(si.writeTimeNs(0)).toBe(0);
    expect(si.writeTimeNs(1)).toBe(io.writeLatencyNs);
    expect(si.writeTimeNs(32)).toBe(io.writeLatencyNs + 31 * io.writeServiceNs);
    expect(si.readTimeNs()).toBe(io.readLatencyNs);
  });

  it('refuses an area smaller than mkswap allows', () => {
    expect(() => new SwapInfo(9 * PAGE_SIZE, io)).toThrow(RangeError);
    expect(new SwapInfo(10 * PAGE_SIZE + 100, io).totalPages).toBe(9);
  });
});
