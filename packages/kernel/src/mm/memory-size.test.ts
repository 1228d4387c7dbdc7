import { describe, expect, it } from '@jest/globals';
import { formatBytes, parseMemorySize } from './memory-size';

describe('parseMemorySize', () => {
  it('reads bytes and binary units in every spelling', () => {
    expect(parseMemorySize(4096)).toBe(4096);
    expect(parseMemorySize('4096')).toBe(4096);
    expect(parseMemorySize('4096B')).toBe(4096);
    expect(parseMemorySize('4K')).toBe(4096);
    expect(parseMemorySize('4KB')).toBe(4096);
    expect(parseMemorySize('4KiB')).toBe(4096);
    expect(parseMemorySize('512MiB')).toBe(512 * 2 ** 20);
    expect(parseMemorySize('512m')).toBe(512 * 2 ** 20);
    expect(parseMemorySize('64G')).toBe(64 * 2 ** 30);
    expect(parseMemorySize('4GiB')).toBe(4 * 2 ** 30);
    expect(parseMemorySize(' 2 TiB ')).toBe(2 * 2 ** 40);
    expect(parseMemorySize('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(parseMemorySize('0')).toBe(0);
  });

  it('rejects what is not a size, naming the value', () => {
    expect(() => parseMemorySize(-1)).toThrow(RangeError);
    expect(() => parseMemorySize(NaN)).toThrow(/NaN/);
    expect(() => parseMemorySize(Infinity)).toThrow(RangeError);
    expect(() => parseMemorySize(1.5)).toThrow(/whole/);
    expect(() => parseMemorySize('-4GiB')).toThrow(/'-4GiB'/);
    expect(() => parseMemorySize('4XB')).toThrow(/unit/);
    expect(() => parseMemorySize('GiB')).toThrow(RangeError);
    expect(() => parseMemorySize('')).toThrow(RangeError);
    expect(() => parseMemorySize('12iB')).toThrow(/unit letter/);
    expect(() => parseMemorySize('0.3K')).toThrow(/whole number of bytes/);
    expect(() => parseMemorySize('9000P')).toThrow(/too large/);
  });
});

describe('formatBytes', () => {
  it('prints the largest binary unit', () => {
    expect(formatBytes(2 ** 30)).toBe('1 GiB');
    expect(formatBytes(2 * 2 ** 20)).toBe('2 MiB');
    expect(formatBytes(4096)).toBe('4 KiB');
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1.5 GiB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(0)).toBe('0 B');
  });
});
