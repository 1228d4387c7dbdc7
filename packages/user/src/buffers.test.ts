import { describe, expect, it } from '@jest/globals';
import { PAGE_SIZE, createKernel, type PinStrategy, type PinTarget } from '@svasim/kernel';
import { memcpyAccelNoSvaPlugin, memcpyAccelPlugin } from '@svasim/testkit';
import { MAX_IV_LEN, MAX_KEY_LEN, openContext } from './index';

const errno = (code: string) => expect.objectContaining({ code });

function boot(accel = memcpyAccelPlugin) {
  const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] }, plugins: [accel] });
  const p = k.spawn();
  return { k, p };
}

describe('ctx.allocBuffer / ctx.freeBuffer', () => {
  it('without a strategy allocator: a private anonymous mapping, given back by munmap, also after close', () => {
    const { k, p } = boot();
    const ctx = openContext(p, 'memcpy', { kernel: k });
    const a = ctx.allocBuffer(3 * PAGE_SIZE);
    expect(p.pagemap(a).present).toBe(false); // not populated: the strategy's prepare decides
    p.write(a, new Uint8Array([1, 2, 3]));
    expect(() => ctx.allocBuffer(0)).toThrow(errno('EINVAL'));
    ctx.close();
    expect(() => ctx.allocBuffer(PAGE_SIZE)).toThrow(errno('EBADF'));
    ctx.freeBuffer(a, 3 * PAGE_SIZE);
    expect(() => p.read(a, 1)).toThrow(errno('EFAULT'));
    expect(k.checkInvariants()).toEqual([]);
  });

  it("goes through the strategy's allocBuffer and freeBuffer when it has them", () => {
    const { k, p } = boot();
    const calls: string[] = [];
    const pool: PinStrategy = {
      name: 'pool',
      prepare() {},
      release() {},
      allocBuffer(t: PinTarget, len: number) {
        calls.push(`alloc ${t.device} ${len}`);
        return t.proc.mmap(len);
      },
      freeBuffer(t: PinTarget, addr: number, len: number) {
        calls.push(`free ${len}`);
        t.proc.munmap(addr, len);
      },
    };
    const ctx = openContext(p, 'memcpy', { kernel: k, pin: pool });
    const a = ctx.allocBuffer(PAGE_SIZE);
    ctx.freeBuffer(a, PAGE_SIZE);
    expect(calls).toEqual(['alloc memcpy_accel-0 4096', 'free 4096']);
    ctx.close();
  });

  it("under an 'iova' strategy the library prepares its key/IV area itself and releases it at close", () => {
    const { k, p } = boot(memcpyAccelNoSvaPlugin);
    const log: string[] = [];
    const iova: PinStrategy = {
      name: 'iova-log',
      addressing: 'iova',
      prepare: (_t, _a, len) => void log.push(`prepare ${len}`),
      release: (_t, _a, len) => void log.push(`release ${len}`),
    };
    const ctx = openContext(p, 'memcpy', { kernel: k, pin: iova });
    const a = ctx.allocBuffer(PAGE_SIZE);
    // No mapping for the device (the log strategy maps nothing): the request aborts, after the
    // library prepared its parameter area for the key.
    const c = ctx.submitSync({
      op: 'copy',
      alg: 'memcpy',
      src: a,
      srcLen: 8,
      dst: a + 64,
      dstLen: 8,
      key: new Uint8Array(4),
    });
    expect(c.status).toBeLessThan(0);
    const area = Math.ceil((ctx.layout.sqDepth * (MAX_KEY_LEN + MAX_IV_LEN)) / PAGE_SIZE) * PAGE_SIZE;
    expect(log).toEqual([`prepare ${area}`]);
    ctx.close();
    expect(log).toEqual([`prepare ${area}`, `release ${area}`]);
    expect(k.checkInvariants()).toEqual([]);
  });
});
