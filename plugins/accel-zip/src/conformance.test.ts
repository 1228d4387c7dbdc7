import { gunzipSync } from 'node:zlib';
import { describeAcceleratorConformance, firstDifference } from '@svasim/testkit';
import { zipPlugin } from './index';

// The accelerator conformance suite on hisi_zip: gzip of a few pages of text-like data; the
// output must inflate back to the input (byte-identity with node:zlib is zip.test.ts's job).
describeAcceleratorConformance({
  plugin: zipPlugin,
  alg: 'gzip',
  uaccePrefix: 'hisi_zip',
  sample({ proc, alloc, bytes, index }) {
    const len = 3 * 4096 + 97 * index + 1;
    // Half pseudo-random, half repeated, so the output is neither stored nor trivially small.
    const data = bytes(len);
    data.fill(0x61, len >> 1);
    const src = alloc(len);
    const dstLen = len + 1024;
    const dst = alloc(dstLen);
    proc.write(src, data);
    return {
      req: { op: 'compress', alg: 'gzip', src, srcLen: len, dst, dstLen },
      verify: (c, p) => {
        if (c.status !== 0) return `status ${c.status}`;
        if (c.consumed !== len) return `consumed ${c.consumed}, expected ${len}`;
        let back: Uint8Array;
        try {
          back = gunzipSync(p.read(dst, c.produced));
        } catch (e) {
          return `output does not inflate: ${(e as Error).message}`;
        }
        return firstDifference(back, data) ?? undefined;
      },
    };
  },
});
