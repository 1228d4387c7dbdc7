/**
 * memcpyConformanceTarget - the memcpy reference device as the conformance suite sees it. A
 * pin-strategy plugin's tests run the suite on it with their strategy loaded:
 *
 *   describeAcceleratorConformance(memcpyConformanceTarget, { strategies: [myStrategyPlugin] });
 */
import { PAGE_SIZE } from '@svasim/kernel';
import { memcpyAccelPlugin } from '../memcpy-accel';
import { firstDifference } from './failure';
import type { AcceleratorConformanceTarget } from './types';

/**
 * One copy of a little over three pages (a ragged length that grows with the sample index, so
 * requests in flight together differ) between two fresh buffers, the source written first.
 */
export const memcpyConformanceTarget: AcceleratorConformanceTarget = Object.freeze({
  plugin: memcpyAccelPlugin,
  alg: 'memcpy',
  uaccePrefix: 'memcpy_accel',
  sample({ proc, alloc, bytes, index }) {
    const len = 3 * PAGE_SIZE + 100 * index + 1;
    const src = alloc(len);
    const dst = alloc(len);
    const data = bytes(len);
    proc.write(src, data);
    return {
      req: { op: 'copy', alg: 'memcpy', src, srcLen: len, dst, dstLen: len },
      verify: (c, p) => {
        if (c.status !== 0) return `status ${c.status}`;
        if (c.produced !== len) return `produced ${c.produced}, expected ${len}`;
        return firstDifference(p.read(dst, len), data) ?? undefined;
      },
    };
  },
} satisfies AcceleratorConformanceTarget);
