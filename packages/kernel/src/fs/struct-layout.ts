import { ERRNO } from '../uapi/errno';
import { copyFromUser, copyToUser, type Current } from '../proc/current';
import type { IoctlArg } from './file';

/** A C integer type of a struct field (__u8 ... __s64; pointers are u64 on 64-bit). */
export type ScalarType = 'u8' | 's8' | 'u16' | 's16' | 'u32' | 's32' | 'u64' | 's64';
/** A byte array field (char name[64], __u32 pages[8] as bytes), aligned to `align` (default 1). */
export interface BytesType {
  bytes: number;
  align?: number;
}
/** The type of one field. */
export type FieldType = ScalarType | BytesType;
/** [field name, type], in declaration order. */
export type FieldSpec = readonly [string, FieldType];

type FieldValue<T> = T extends BytesType ? Uint8Array : number;
/** The decoded value of a struct: numbers for integers, Uint8Array for byte arrays. */
export type StructValue<F extends readonly FieldSpec[]> = { [K in F[number] as K[0]]: FieldValue<K[1]> };
/** What encode accepts: any subset of the fields (the rest are zero); byte arrays also as strings. */
export type StructInput<V> = {
  [P in keyof V]?: V[P] extends Uint8Array ? Uint8Array | string : number | bigint;
};

/** One laid-out field. */
export interface StructField {
  readonly name: string;
  readonly type: FieldType;
  readonly offset: number;
  readonly size: number;
  readonly align: number;
}

/** Options of {@link defineStruct}. */
export interface StructOptions {
  /** __packed: no padding, alignment 1. */
  packed?: boolean;
  /** __aligned(n): a minimum alignment for the whole struct. */
  align?: number;
}

/**
 * StructLayout - a C struct's layout, as the kernel and a 64-bit user space agree on it.
 */
export interface StructLayout<V = Record<string, number | Uint8Array>> {
  readonly name: string;
  /** sizeof, including tail padding: the size in the ioctl number. */
  readonly size: number;
  /** _Alignof. */
  readonly align: number;
  readonly fields: readonly StructField[];
  /** offsetof(name); throws RangeError for an unknown field. */
  offsetOf(field: string): number;
  /**
   * Decode `bytes` (at least `size` long, else RangeError). 64-bit fields come back as numbers:
   * exact up to 2^53 - 1, rounded to the nearest double above (no address or size svasim
   * models gets there; a driver that needs exact bits reads the bytes itself).
   */
  decode(bytes: Uint8Array): V;
  /**
   * Encode `value` into `size` bytes; missing fields are zero, like a C designated initializer.
   * Throws RangeError for an unknown field, a non-integer, a value out of the field's range
   * (64-bit fields: only safe integers or bigints that fit), or a byte array that is too long;
   * TypeError for a value of the wrong kind.
   */
  encode(value: StructInput<V>): Uint8Array;
}

const SCALARS: Record<ScalarType, { size: number; signed: boolean }> = {
  u8: { size: 1, signed: false },
  s8: { size: 1, signed: true },
  u16: { size: 2, signed: false },
  s16: { size: 2, signed: true },
  u32: { size: 4, signed: false },
  s32: { size: 4, signed: true },
  u64: { size: 8, signed: false },
  s64: { size: 8, signed: true },
};

const utf8 = new TextEncoder();

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function writeScalar(view: DataView, f: StructField, t: ScalarType, v: unknown): void {
  const { size, signed } = SCALARS[t];
  const bits = BigInt(size * 8);
  const min = signed ? -(1n << (bits - 1n)) : 0n;
  const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  let big: bigint;
  if (typeof v === 'bigint') big = v;
  else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RangeError(`${f.name}: ${v} is not a safe integer`);
    big = BigInt(v);
  } else throw new TypeError(`${f.name}: expected a number, got ${typeof v}`);
  if (big < min || big > max) throw new RangeError(`${f.name}: ${String(v)} does not fit in ${t}`);
  const o = f.offset;
  switch (t) {
    case 'u8':
      return view.setUint8(o, Number(big));
    case 's8':
      return view.setInt8(o, Number(big));
    case 'u16':
      return view.setUint16(o, Number(big), true);
    case 's16':
      return view.setInt16(o, Number(big), true);
    case 'u32':
      return view.setUint32(o, Number(big), true);
    case 's32':
      return view.setInt32(o, Number(big), true);
    case 'u64':
      return view.setBigUint64(o, big, true);
    case 's64':
      return view.setBigInt64(o, big, true);
  }
}

function readScalar(view: DataView, o: number, t: ScalarType): number {
  switch (t) {
    case 'u8':
      return view.getUint8(o);
    case 's8':
      return view.getInt8(o);
    case 'u16':
      return view.getUint16(o, true);
    case 's16':
      return view.getInt16(o, true);
    case 'u32':
      return view.getUint32(o, true);
    case 's32':
      return view.getInt32(o, true);
    case 'u64':
      return Number(view.getBigUint64(o, true));
    case 's64':
      return Number(view.getBigInt64(o, true));
  }
}

/**
 * defineStruct - lay out a C struct with natural alignment (each field at a multiple of its own
 * size, the struct padded to its largest alignment), little-endian, as on x86-64 and arm64.
 *
 * Returns the layout (nothing to release). Throws RangeError for a duplicate or empty field
 * name, a bad type or a bad alignment (a bug in the definition).
 *
 * @example defineStruct('x', [['a', 'u32'], ['b', 'u64']]) // size 16, b at offset 8
 */
export function defineStruct<const F extends readonly FieldSpec[]>(
  name: string,
  fields: F,
  opts: StructOptions = {},
): StructLayout<StructValue<F>> {
  if (opts.align !== undefined && !isPow2(opts.align)) {
    throw new RangeError(`struct ${name}: alignment ${opts.align} is not a power of two`);
  }
  const laid: StructField[] = [];
  const byName = new Map<string, StructField>();
  let offset = 0;
  let structAlign = 1;
  for (const [fname, type] of fields) {
    if (typeof fname !== 'string' || fname === '' || byName.has(fname)) {
      throw new RangeError(`struct ${name}: bad or duplicate field name '${String(fname)}'`);
    }
    let size: number;
    let align: number;
    if (typeof type === 'string') {
      const s = SCALARS[type];
      if (!s) throw new RangeError(`struct ${name}.${fname}: unknown type ${String(type)}`);
      size = align = s.size;
    } else {
      if (!type || !Number.isInteger(type.bytes) || type.bytes < 0) {
        throw new RangeError(`struct ${name}.${fname}: bad byte array size`);
      }
      size = type.bytes;
      align = type.align ?? 1;
      if (!isPow2(align)) throw new RangeError(`struct ${name}.${fname}: bad alignment ${align}`);
    }
    if (opts.packed) align = 1;
    offset = alignUp(offset, align);
    const f: StructField = Object.freeze({ name: fname, type, offset, size, align });
    laid.push(f);
    byName.set(fname, f);
    offset += size;
    structAlign = Math.max(structAlign, align);
  }
  structAlign = Math.max(structAlign, opts.align ?? 1);
  const size = alignUp(offset, structAlign);

  const layout: StructLayout<StructValue<F>> = {
    name,
    size,
    align: structAlign,
    fields: Object.freeze(laid),
    offsetOf(field: string): number {
      const f = byName.get(field);
      if (!f) throw new RangeError(`struct ${name} has no field ${field}`);
      return f.offset;
    },
    decode(bytes: Uint8Array): StructValue<F> {
      if (!(bytes instanceof Uint8Array) || bytes.length < size) {
        throw new RangeError(`struct ${name}: need ${size} bytes`);
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset, size);
      const out: Record<string, number | Uint8Array> = {};
      for (const f of laid) {
        out[f.name] =
          typeof f.type === 'string'
            ? readScalar(view, f.offset, f.type)
            : bytes.slice(f.offset, f.offset + f.size);
      }
      return out as StructValue<F>;
    },
    encode(value: StructInput<StructValue<F>>): Uint8Array {
      if (typeof value !== 'object' || value === null)
        throw new TypeError(`struct ${name}: expected an object`);
      const buf = new Uint8Array(size);
      const view = new DataView(buf.buffer);
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
        const f = byName.get(key);
        if (!f) throw new RangeError(`struct ${name} has no field ${key}`);
        if (v === undefined) continue;
        if (typeof f.type === 'string') {
          writeScalar(view, f, f.type, v);
          continue;
        }
        let bytes: Uint8Array;
        if (typeof v === 'string') bytes = utf8.encode(v);
        else if (v instanceof Uint8Array) bytes = v;
        else throw new TypeError(`${key}: expected bytes or a string`);
        if (bytes.length > f.size)
          throw new RangeError(`${key}: ${bytes.length} bytes do not fit in ${f.size}`);
        buf.set(bytes, f.offset);
      }
      return buf;
    },
  };
  return Object.freeze(layout);
}

/**
 * cString - the text of a NUL-terminated char array (up to the first NUL), decoded as UTF-8.
 */
export function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function isPlainObject(arg: unknown): arg is Record<string, unknown> {
  return typeof arg === 'object' && arg !== null && !Array.isArray(arg) && !ArrayBuffer.isView(arg);
}

/**
 * readIoctlArg - read an ioctl's struct argument (copy_from_user of the struct).
 *
 * - a user address: copies layout.size bytes from it; -EFAULT if any byte is inaccessible or
 *   the address is not a non-negative integer;
 * - a plain object: its fields, normalised through the layout (missing fields are 0, as with a
 *   C designated initializer); -EINVAL if it names a field the struct lacks or holds a value the
 *   field cannot (a non-integer, out of range, wrong kind): svasim refuses what C could not express;
 * - undefined, null or anything else: -EFAULT (a NULL or garbage pointer).
 *
 * Returns the decoded struct or -errno. Nothing to release.
 */
export function readIoctlArg<V>(current: Current, arg: IoctlArg, layout: StructLayout<V>): V | number {
  if (typeof arg === 'number') {
    const buf = new Uint8Array(layout.size);
    const ret = copyFromUser(current, buf, arg);
    if (ret < 0) return ret;
    return layout.decode(buf);
  }
  if (!isPlainObject(arg)) return -ERRNO.EFAULT;
  let bytes: Uint8Array;
  try {
    bytes = layout.encode(arg as StructInput<V>);
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) return -ERRNO.EINVAL;
    throw e;
  }
  return layout.decode(bytes);
}

/**
 * writeIoctlArg - hand a struct back to user space (copy_to_user of the struct).
 *
 * For a user address: encodes `value` (missing fields 0) and copies layout.size bytes to it;
 * -EFAULT if unwritable or not a valid address. For a plain object: assigns every field of the
 * layout into it (normalised the same way). undefined or anything else: -EFAULT.
 * Returns 0 or -errno. A `value` the layout cannot encode is a driver bug and throws.
 */
export function writeIoctlArg<V>(
  current: Current,
  arg: IoctlArg,
  layout: StructLayout<V>,
  value: StructInput<V>,
): number {
  if (typeof arg === 'number') return copyToUser(current, arg, layout.encode(value));
  if (!isPlainObject(arg)) return -ERRNO.EFAULT;
  Object.assign(arg, layout.decode(layout.encode(value)));
  return 0;
}
