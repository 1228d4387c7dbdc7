/**
 * The accelerator templates: src/index.ts (a working VirtualAccelerator with one real operation,
 * XOR with a key) and src/NAME.test.ts (the conformance suite plus tests of the operation).
 * The text is checked by packages/cli/src/new-plugin.test.ts, which compiles and runs it.
 */
import type { PluginNames } from '../names';

/** acceleratorIndex - src/index.ts of an accelerator plugin. */
export function acceleratorIndex(n: PluginNames): string {
  return `/**
 * ${n.pkg} - an accelerator plugin made by \`svasim new-plugin\`: a device that XORs a buffer with
 * a key (op 'encrypt', and 'decrypt', the same transform), registered through uacce as
 * /dev/${n.uacce}-<id> with Shared Virtual Addressing. Everything but the operation (queues, rings,
 * doorbell, DMA through the IOMMU, IO page faults, service time) comes from VirtualAccelerator.
 * Replace process() with your device's operation and ${n.upper}_TIMING with measured figures;
 * docs/plugin-authoring.md walks through it.
 */
import {
  ERRNO,
  VirtualAccelerator,
  definePlugin,
  type AccelRequestParams,
  type AccelResult,
  type AccelSqe,
  type AccelTiming,
  type AcceleratorConfig,
  type Kernel,
} from '@svasim/kernel';

/** The algorithm the device lists in sysfs: what openContext(proc, alg) looks for. */
export const ${n.upper}_ALG = 'xor';

/** Shortest and longest key the device takes, bytes; other lengths complete -EINVAL. */
export const ${n.upper}_KEY_LEN = { min: 1, max: 32 } as const;

/**
 * The engine's figures. Each names its source: the model is only as good as these, and a reader
 * must be able to tell a measurement from a guess.
 */
export const ${n.upper}_TIMING: AccelTiming = {
  throughputBytesPerS: 10e9,
  perRequestNs: 1500,
  doorbellNs: 200,
  sources: {
    throughputBytesPerS: 'assumption: a streaming XOR engine at 10 GB/s; not measured',
    perRequestNs: 'assumption: descriptor fetch, key load and completion write, ~1.5 us; not measured',
    doorbellNs: 'assumption: a posted MMIO write reaching the device, ~0.2 us; not measured',
  },
};

/** The device's shape; tests may spread it and override (fewer queues, more engines). */
export const ${n.upper}_CONFIG: AcceleratorConfig = {
  name: '${n.uacce}',
  parentName: '0000:7a:00.0',
  apiVer: '${n.uacce}_v1',
  algorithms: [${n.upper}_ALG],
  ops: ['encrypt', 'decrypt'],
  timing: ${n.upper}_TIMING,
  queues: 4,
  engines: 1,
};

/**
 * xorBytes - @src XORed with @key repeated over it: the device's operation, exported so tests
 * compute the expected bytes the same way. Returns a new array; @key must not be empty.
 */
export function xorBytes(src: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] ^ key[i % key.length];
  return out;
}

/** ${n.pascal}Accelerator - the device: its only job is to say what its ops do to the bytes. */
export class ${n.pascal}Accelerator extends VirtualAccelerator {
  /**
   * process - the operation on real bytes. Before it the base has checked the op against
   * config.ops (-EOPNOTSUPP) and DMA-read the key and the source through the IOMMU; after it the
   * base checks the output against dst_len (-ENOSPC), charges perRequestNs + bytes / throughput
   * and DMA-writes the output. Bad input returns a negative status: never throw (a throw
   * completes the request -EIO).
   */
  protected process(_op: string, src: Uint8Array, _sqe: AccelSqe, params: AccelRequestParams): AccelResult {
    const key = params.key;
    if (key.length < ${n.upper}_KEY_LEN.min || key.length > ${n.upper}_KEY_LEN.max)
      return { status: -ERRNO.EINVAL, produced: 0, output: new Uint8Array(0) };
    // XOR is its own inverse: 'encrypt' and 'decrypt' are the same transform.
    const output = xorBytes(src, key);
    return { status: 0, produced: output.length, output };
  }
}

/**
 * ${n.camel}Plugin - \`createKernel({ plugins: [${n.camel}Plugin] })\`. register() only builds the
 * device (it cannot fail); the kernel realizes it (probe on the IOMMU, uacce register) after
 * every plugin is registered and unrealizes it (hot removal) at shutdown.
 */
export const ${n.camel}Plugin = definePlugin({
  name: '${n.name}',
  kind: 'accelerator',
  register({ kernel }) {
    return new ${n.pascal}Accelerator(kernel as Kernel, ${n.upper}_CONFIG);
  },
});
`;
}

/** acceleratorTest - src/NAME.test.ts of an accelerator plugin. */
export function acceleratorTest(n: PluginNames): string {
  return `import { describe, expect, it } from '@jest/globals';
import { ERRNO, PAGE_SIZE, createKernel } from '@svasim/kernel';
import {
  describeAcceleratorConformance,
  firstDifference,
  type AcceleratorConformanceTarget,
} from '@svasim/testkit';
import { openContext, type AccelRequest } from '@svasim/user';
import { ${n.upper}_ALG, ${n.upper}_CONFIG, ${n.camel}Plugin, xorBytes } from './index';

/**
 * The device as the conformance suite sees it: one 'encrypt' of a few pages with a 16-byte key,
 * on buffers the suite allocates (and prepares through each pin strategy it runs).
 */
export const ${n.camel}Target: AcceleratorConformanceTarget = {
  plugin: ${n.camel}Plugin,
  alg: ${n.upper}_ALG,
  uaccePrefix: ${n.upper}_CONFIG.name,
  sample({ proc, alloc, bytes, index }) {
    const len = 2 * PAGE_SIZE + 17 * index + 1;
    const src = alloc(len);
    const dst = alloc(len);
    const data = bytes(len);
    const key = bytes(16, 1);
    proc.write(src, data);
    const expected = xorBytes(data, key);
    return {
      req: { op: 'encrypt', alg: ${n.upper}_ALG, src, srcLen: len, dst, dstLen: len, key },
      verify: (c, p) => {
        if (c.status !== 0) return \`status \${c.status}\`;
        if (c.produced !== len) return \`produced \${c.produced}, expected \${len}\`;
        return firstDifference(p.read(dst, len), expected) ?? undefined;
      },
    };
  },
};

describeAcceleratorConformance(${n.camel}Target);

describe('${n.name}: the xor operation', () => {
  function boot() {
    const kernel = createKernel({ memory: { nodes: [{ size: '256MiB' }] }, plugins: [${n.camel}Plugin] });
    const proc = kernel.spawn();
    return { kernel, proc, ctx: openContext(proc, ${n.upper}_ALG) };
  }

  const xor = (op: 'encrypt' | 'decrypt', src: number, dst: number, len: number, key: Uint8Array): AccelRequest => ({
    op,
    alg: ${n.upper}_ALG,
    src,
    srcLen: len,
    dst,
    dstLen: len,
    key,
  });

  it('encrypts real bytes, and decrypt gives them back', () => {
    const { kernel, proc, ctx } = boot();
    const len = 3 * PAGE_SIZE + 5;
    const [a, b, c] = [proc.mmap(len), proc.mmap(len), proc.mmap(len)];
    const text = new TextEncoder().encode('svasim '.repeat(len)).subarray(0, len);
    const key = new TextEncoder().encode('secret');
    proc.write(a, text);
    expect(ctx.submitSync(xor('encrypt', a, b, len, key))).toMatchObject({ status: 0, produced: len });
    expect(firstDifference(proc.read(b, len), xorBytes(text, key))).toBeNull();
    expect(ctx.submitSync(xor('decrypt', b, c, len, key))).toMatchObject({ status: 0, produced: len });
    expect(firstDifference(proc.read(c, len), text)).toBeNull();
    ctx.close();
    expect(kernel.checkInvariants()).toEqual([]);
  });

  it('completes bad requests with their errno and keeps serving', () => {
    const { kernel, proc, ctx } = boot();
    const buf = proc.mmap(2 * PAGE_SIZE);
    const key = new Uint8Array([1, 2, 3]);
    const status = (req: AccelRequest) => ctx.submitSync(req).status;
    expect(status(xor('encrypt', buf, buf + PAGE_SIZE, 64, new Uint8Array(0)))).toBe(-ERRNO.EINVAL);
    expect(status(xor('encrypt', buf, buf + PAGE_SIZE, 64, new Uint8Array(33)))).toBe(-ERRNO.EINVAL);
    expect(status({ ...xor('encrypt', buf, buf + PAGE_SIZE, 64, key), dstLen: 10 })).toBe(-ERRNO.ENOSPC);
    expect(status(xor('encrypt', 0x10000, buf, 64, key))).toBe(-ERRNO.EFAULT);
    expect(status({ ...xor('encrypt', buf, buf + PAGE_SIZE, 64, key), op: 'compress' })).toBe(-ERRNO.EOPNOTSUPP);
    proc.write(buf, new Uint8Array(64).fill(7));
    expect(status(xor('encrypt', buf, buf + PAGE_SIZE, 64, key))).toBe(0);
    expect(firstDifference(proc.read(buf + PAGE_SIZE, 64), xorBytes(new Uint8Array(64).fill(7), key))).toBeNull();
    ctx.close();
    expect(kernel.checkInvariants()).toEqual([]);
  });
});
`;
}
