/**
 * How a conformance check fails, and small helpers for saying why in one line.
 */

/** ConformanceFailure - a check's step found the device misbehaving; `message` says how. */
export class ConformanceFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConformanceFailure';
  }
}

/** fail - a ConformanceFailure to throw. */
export function fail(message: string): ConformanceFailure {
  return new ConformanceFailure(message);
}

/** errorText - one line for anything thrown: a SyscallError's code and message, an Error's message. */
export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

/**
 * firstDifference - where @actual and @expected first differ, as a sentence, or null when they
 * are equal. For verify() hooks: "byte 17 is 0x00, expected 0x2a" reads better than a dump.
 */
export function firstDifference(actual: Uint8Array, expected: Uint8Array): string | null {
  if (Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected)) return null;
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++)
    if (actual[i] !== expected[i]) return `byte ${i} is 0x${hex(actual[i])}, expected 0x${hex(expected[i])}`;
  return `length ${actual.length}, expected ${expected.length}`;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
