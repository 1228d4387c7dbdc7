import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { _IOC_SIZE, _IOW } from '../uapi/ioctl';
import { Cred } from '../proc/cred';
import { Rlimits } from '../proc/rlimit';
import type { Current, IUserAccess } from '../proc/current';
import { FdTable } from './fdtable';
import { cString, defineStruct, readIoctlArg, writeIoctlArg } from './struct-layout';

const BASE = 0x10000;
function proc(): Current & { mem: Uint8Array } {
  const mem = new Uint8Array(0x1000);
  const ok = (a: number, n: number) => a >= BASE && a + n <= BASE + mem.length;
  const mm: IUserAccess = {
    copyFromUser(dst, a) {
      if (!ok(a, dst.length)) return -ERRNO.EFAULT;
      dst.set(mem.subarray(a - BASE, a - BASE + dst.length));
      return 0;
    },
    copyToUser(a, src) {
      if (!ok(a, src.length)) return -ERRNO.EFAULT;
      mem.set(src, a - BASE);
      return 0;
    },
  };
  return { pid: 1, cred: Cred.create(), rlimits: new Rlimits(), files: new FdTable(), mm, mem };
}

/** struct mem_pin_address { __u64 addr; __u64 size; } style, with a u32 first to force padding. */
const S = defineStruct('s', [
  ['a', 'u32'],
  ['b', 'u64'],
]);

describe('defineStruct', () => {
  it('aligns fields naturally and pads the tail', () => {
    expect(S.size).toBe(16);
    expect(S.align).toBe(8);
    expect(S.offsetOf('a')).toBe(0);
    expect(S.offsetOf('b')).toBe(8);
    const t = defineStruct('t', [
      ['x', 'u8'],
      ['y', 'u16'],
      ['z', 'u8'],
    ]);
    expect(t.size).toBe(6);
    expect(t.offsetOf('y')).toBe(2);
    const u = defineStruct('u', [
      ['b', 'u64'],
      ['c', 'u8'],
    ]);
    expect(u.size).toBe(16);
    const p = defineStruct(
      'p',
      [
        ['a', 'u8'],
        ['b', 'u64'],
      ],
      { packed: true },
    );
    expect(p.size).toBe(9);
    expect(p.offsetOf('b')).toBe(1);
    const n = defineStruct('n', [
      ['flags', 'u32'],
      ['name', { bytes: 5 }],
      ['pages', { bytes: 8, align: 4 }],
    ]);
    expect(n.offsetOf('name')).toBe(4);
    expect(n.offsetOf('pages')).toBe(12);
    expect(n.size).toBe(20);
    expect(_IOC_SIZE(_IOW('M', 1, S.size))).toBe(16);
    expect(() => S.offsetOf('nope')).toThrow(RangeError);
  });

  it('rejects broken definitions', () => {
    expect(() =>
      defineStruct('d', [
        ['a', 'u8'],
        ['a', 'u8'],
      ]),
    ).toThrow(RangeError);
    expect(() => defineStruct('d', [['a', 'u128' as never]])).toThrow(RangeError);
    expect(() => defineStruct('d', [['a', { bytes: 4, align: 3 }]])).toThrow(RangeError);
    expect(() => defineStruct('d', [['a', 'u8']], { align: 6 })).toThrow(RangeError);
  });

  it('round-trips little-endian values, signed and unsigned', () => {
    const L = defineStruct('l', [
      ['u8', 'u8'],
      ['s8', 's8'],
      ['u16', 'u16'],
      ['s32', 's32'],
      ['u32', 'u32'],
      ['u64', 'u64'],
      ['s64', 's64'],
      ['tag', { bytes: 8 }],
    ]);
    const v = {
      u8: 255,
      s8: -128,
      u16: 0xbeef,
      s32: -2,
      u32: 0xffffffff,
      u64: Number.MAX_SAFE_INTEGER,
      s64: -(2 ** 40),
      tag: 'hisi',
    };
    const bytes = L.encode(v);
    expect(bytes.length).toBe(L.size);
    const d = L.decode(bytes);
    expect({ ...d, tag: cString(d.tag) }).toEqual(v);
    expect(bytes[L.offsetOf('u16')]).toBe(0xef);
    expect(L.decode(L.encode({})).u64).toBe(0);
    expect(L.decode(L.encode({ u64: 2n ** 64n - 1n })).u64).toBe(2 ** 64);
  });

  it('refuses values the fields cannot hold', () => {
    expect(() => S.encode({ a: -1 })).toThrow(RangeError);
    expect(() => S.encode({ a: 2 ** 32 })).toThrow(RangeError);
    expect(() => S.encode({ a: 1.5 })).toThrow(RangeError);
    expect(() => S.encode({ b: 2 ** 53 })).toThrow(RangeError);
    expect(() => S.encode({ a: '1' as never })).toThrow(TypeError);
    expect(() => S.encode({ c: 1 } as never)).toThrow(RangeError);
    const B = defineStruct('b', [['name', { bytes: 4 }]]);
    expect(() => B.encode({ name: 'hello' })).toThrow(RangeError);
    expect(() => S.decode(new Uint8Array(15))).toThrow(RangeError);
  });
});

describe('readIoctlArg / writeIoctlArg', () => {
  it('reads a struct from a user address', () => {
    const p = proc();
    p.mem.set(S.encode({ a: 7, b: 0x123456789 }), 0x100);
    expect(readIoctlArg(p, BASE + 0x100, S)).toEqual({ a: 7, b: 0x123456789 });
  });

  it('answers EFAULT for bad or unmapped addresses and non-object arguments', () => {
    const p = proc();
    expect(readIoctlArg(p, BASE + 0xff8, S)).toBe(-ERRNO.EFAULT); // crosses the end
    expect(readIoctlArg(p, 0, S)).toBe(-ERRNO.EFAULT);
    expect(readIoctlArg(p, -8, S)).toBe(-ERRNO.EFAULT);
    expect(readIoctlArg(p, 1.5, S)).toBe(-ERRNO.EFAULT);
    expect(readIoctlArg(p, undefined, S)).toBe(-ERRNO.EFAULT);
    expect(readIoctlArg(p, null as never, S)).toBe(-ERRNO.EFAULT);
    expect(readIoctlArg(p, 'x' as never, S)).toBe(-ERRNO.EFAULT);
    expect(readIoctlArg(p, [1, 2] as never, S)).toBe(-ERRNO.EFAULT);
  });

  it('reads a plain object, missing fields as 0, malformed ones as EINVAL', () => {
    const p = proc();
    expect(readIoctlArg(p, { a: 1, b: 2 }, S)).toEqual({ a: 1, b: 2 });
    expect(readIoctlArg(p, { b: 9 }, S)).toEqual({ a: 0, b: 9 });
    expect(readIoctlArg(p, { a: 'x' }, S)).toBe(-ERRNO.EINVAL);
    expect(readIoctlArg(p, { a: NaN }, S)).toBe(-ERRNO.EINVAL);
    expect(readIoctlArg(p, { a: -1 }, S)).toBe(-ERRNO.EINVAL);
    expect(readIoctlArg(p, { adr: 1 }, S)).toBe(-ERRNO.EINVAL);
  });

  it('writes a struct to a user address or into a plain object', () => {
    const p = proc();
    expect(writeIoctlArg(p, BASE + 0x200, S, { a: 3, b: 4 })).toBe(0);
    expect(S.decode(p.mem.subarray(0x200))).toEqual({ a: 3, b: 4 });
    expect(writeIoctlArg(p, BASE + 0xffc, S, { a: 3 })).toBe(-ERRNO.EFAULT);
    const obj: Record<string, unknown> = { a: 1, extra: 'kept' };
    expect(writeIoctlArg(p, obj, S, { b: 5 })).toBe(0);
    expect(obj).toEqual({ a: 0, b: 5, extra: 'kept' });
    expect(writeIoctlArg(p, undefined, S, { b: 5 })).toBe(-ERRNO.EFAULT);
    expect(() => writeIoctlArg(p, obj, S, { a: -1 })).toThrow(RangeError);
  });
});
