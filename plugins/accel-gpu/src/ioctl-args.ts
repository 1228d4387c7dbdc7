/**
 * Reading the GPU's ioctl arguments. A user address goes through the kernel's struct layout
 * (copy_from_user of the struct); a plain object (svasim's convenience for JavaScript callers) is
 * read field by field here, with the same rules - unknown fields, non-integers and values that do
 * not fit their field are -EINVAL - but without encoding and decoding a struct on every call: the
 * library issues one ioctl per atomic, and that path must stay cheap.
 */
import { ERRNO, readIoctlArg, type Current, type IoctlArg, type StructLayout } from '@svasim/kernel';

const U32_MAX = 2 ** 32 - 1;
const U64_END = 2n ** 64n;

/** isPlainObject - an ioctl argument given as an object of fields (not a typed array). */
export function isPlainObject(arg: unknown): arg is Record<string, unknown> {
  return typeof arg === 'object' && arg !== null && !Array.isArray(arg) && !ArrayBuffer.isView(arg);
}

/** One unsigned integer field of a plain object: its value, or -1 when it is not valid. */
function unsignedField(v: unknown, type: string): number {
  if (v === undefined) return 0;
  let n: number;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) return -1;
    n = v;
  } else if (typeof v === 'bigint') {
    if (v < 0n || v >= U64_END) return -1;
    n = Number(v);
  } else return -1;
  if (type === 'u32' && n > U32_MAX) return -1;
  return n;
}

/**
 * readScalars - the integer fields of @layout from @arg: a user address (the whole struct is
 * copied in; byte-array fields are ignored here) or a plain object, whose fields named in
 * @extras are left to the caller. Only unsigned fields are expected (the GPU's structs have no
 * signed ones).
 * Return: the values by field name (missing ones 0), or -EFAULT (unreadable user address, or an
 * argument that is neither), -EINVAL (an unknown field, a value that does not fit).
 */
export function readScalars<V>(
  current: Current,
  arg: IoctlArg,
  layout: StructLayout<V>,
  extras: readonly string[] = [],
): Record<string, number> | number {
  if (!isPlainObject(arg)) {
    const v = readIoctlArg(current, arg, layout);
    return typeof v === 'number' ? v : (v as unknown as Record<string, number>);
  }
  const types = scalarTypes(layout);
  const out: Record<string, number> = {};
  for (const name of types.keys()) out[name] = 0;
  for (const key in arg) {
    if (extras.includes(key)) continue;
    const type = types.get(key);
    if (type === undefined) return -ERRNO.EINVAL;
    const n = unsignedField(arg[key], type);
    if (n < 0) return -ERRNO.EINVAL;
    out[key] = n;
  }
  return out;
}

const typeCache = new WeakMap<object, Map<string, string>>();

/** The integer fields of @layout by name (computed once per layout). */
function scalarTypes(layout: StructLayout<unknown>): Map<string, string> {
  let m = typeCache.get(layout);
  if (!m) {
    m = new Map();
    for (const f of layout.fields) if (typeof f.type === 'string') m.set(f.name, f.type);
    typeCache.set(layout, m);
  }
  return m;
}

/**
 * u64Operand - a 64-bit operand of a plain-object atomic: a bigint or a safe integer (negative
 * values are two's complement), or 8 little-endian bytes.
 * Return: the unsigned value, or null when it is none of those or does not fit 64 bits.
 */
export function u64Operand(v: unknown): bigint | null {
  if (v === undefined) return 0n;
  if (v instanceof Uint8Array) return v.length === 8 ? u64Of(v) : null;
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else return null;
  if (b < -(1n << 63n) || b >= U64_END) return null;
  return BigInt.asUintN(64, b);
}

/** u64Of - the little-endian unsigned 64-bit value of 8 bytes. */
export function u64Of(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}
