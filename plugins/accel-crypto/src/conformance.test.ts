import { createCipheriv } from 'node:crypto';
import { describeAcceleratorConformance, firstDifference } from '@svasim/testkit';
import { cryptoPlugin } from './index';

// The accelerator conformance suite on hisi_sec2: cbc(aes) encryption of whole blocks, checked
// against node:crypto with the same key and IV.
const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff);
const IV = Uint8Array.from({ length: 16 }, (_, i) => (i * 13 + 1) & 0xff);

describeAcceleratorConformance({
  plugin: cryptoPlugin,
  alg: 'cbc(aes)',
  uaccePrefix: 'hisi_sec2',
  sample({ proc, alloc, bytes, index }) {
    const len = 3 * 4096 + 16 * (index + 1);
    const data = bytes(len);
    const src = alloc(len);
    const dst = alloc(len);
    proc.write(src, data);
    const c = createCipheriv('aes-256-cbc', KEY, IV).setAutoPadding(false);
    const want = new Uint8Array(Buffer.concat([c.update(data), c.final()]));
    return {
      req: { op: 'encrypt', alg: 'cbc(aes)', src, srcLen: len, dst, dstLen: len, key: KEY, iv: IV },
      verify: (done, p) => {
        if (done.status !== 0) return `status ${done.status}`;
        if (done.produced !== len) return `produced ${done.produced}, expected ${len}`;
        return firstDifference(p.read(dst, len), want) ?? undefined;
      },
    };
  },
});
