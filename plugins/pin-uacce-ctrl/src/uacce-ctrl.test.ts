import { afterEach, describe, expect, it } from '@jest/globals';
import {
  MAP_SHARED,
  MISC_DYNAMIC_MINOR,
  O_RDWR,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  SyscallError,
  UACCE_CMD_START_Q,
  UACCE_QFRT_MMIO,
  createKernel,
  dmaInflight,
  gupState,
  type Kernel,
  type KernelOptions,
  type Process,
  type SpawnOptions,
} from '@svasim/kernel';
import { memcpyAccelPlugin } from '@svasim/testkit';
import { UACCE_CMD_PIN, UACCE_CMD_UNPIN, UACCE_PIN_ADDRESS, UacceCtrl, uacceCtrlPlugin } from './index';

const KiB = 1024;
const P = PAGE_SIZE;
const U64_MAX = (1n << 64n) - 1n;

const kernels: Kernel[] = [];
afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

function boot(opts: KernelOptions = {}): Kernel {
  const k = createKernel({ memory: { nodes: [{ size: '256MiB' }] }, plugins: [uacceCtrlPlugin], ...opts });
  kernels.push(k);
  return k;
}

function errOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof SyscallError) return e.code;
    throw e;
  }
}

const pin = (p: Process, fd: number, addr: number | bigint, size: number | bigint) =>
  errOf(() => p.ioctl(fd, UACCE_CMD_PIN, { addr, size }));
const unpin = (p: Process, fd: number, addr: number | bigint, size: number | bigint) =>
  errOf(() => p.ioctl(fd, UACCE_CMD_UNPIN, { addr, size }));
const pinnedPages = (k: Kernel) => gupState(k.mmCore).pinnedPages;

function structAt(p: Process, addr: bigint, size: bigint, at?: number): number {
  const where = at ?? p.mmap(P);
  const b = new Uint8Array(UACCE_PIN_ADDRESS.size);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, addr, true);
  v.setBigUint64(8, size, true);
  p.write(where, b);
  return where;
}

/** A process with /dev/uacce_ctrl open and 16 pages mapped (root unless @opts say otherwise). */
function setup(opts: SpawnOptions = {}, kopts: KernelOptions = {}) {
  const k = boot(kopts);
  if (opts.uid) k.spawn().chmod('/dev/uacce_ctrl', 0o666); // as root would, for a trusted group
  const p = k.spawn(opts);
  const fd = p.open('/dev/uacce_ctrl', O_RDWR);
  const a = p.mmap(16 * P);
  return { k, p, fd, a };
}

describe('/dev/uacce_ctrl', () => {
  it('is a misc device, 0600 root:root; ioctls are _IOW(W, 2 and 3, 16 bytes)', () => {
    const k = boot();
    const node = k.devices.vfs.lookup('/dev/uacce_ctrl')!;
    expect(node.mode & 0o777).toBe(0o600);
    expect(node.uid).toBe(0);
    expect(node.gid).toBe(0);
    expect(k.devices.sysfs.readdir('/sys/class/misc')).toContain('uacce_ctrl');
    expect(UACCE_CMD_PIN).toBe(0x40105702);
    expect(UACCE_CMD_UNPIN).toBe(0x40105703);
    expect(UACCE_PIN_ADDRESS.size).toBe(16);
    expect(k.pinStrategy().name).toBe('uacce-ctrl');
  });

  it('EACCES for an unprivileged open; CAP_DAC_OVERRIDE or a chmod by root lets one in', () => {
    const k = boot();
    const user = k.spawn({ uid: 1000 });
    expect(errOf(() => user.open('/dev/uacce_ctrl', O_RDWR))).toBe('EACCES');
    expect(errOf(() => user.chmod('/dev/uacce_ctrl', 0o666))).toBe('EPERM');
    const dac = k.spawn({ uid: 1000, caps: ['CAP_DAC_OVERRIDE'] });
    expect(errOf(() => dac.open('/dev/uacce_ctrl', O_RDWR))).toBe('ok');
    k.spawn().chmod('/dev/uacce_ctrl', 0o666);
    const fd = user.open('/dev/uacce_ctrl', O_RDWR);
    const a = user.mmap(4 * P);
    expect(pin(user, fd, a, 4 * P)).toBe('ok'); // default RLIMIT_MEMLOCK 8 MiB
    expect(user.status().vmPin).toBe(4 * P);
  });

  it('goes away with the plugin; open files keep working until closed', () => {
    const { k, p, fd, a } = setup();
    expect(pin(p, fd, a, 4 * P)).toBe('ok');
    k.shutdown();
    expect(errOf(() => p.open('/dev/uacce_ctrl', O_RDWR))).toBe('ENOENT');
    expect(unpin(p, fd, a, 4 * P)).toBe('ok');
    expect(pin(p, fd, a, P)).toBe('ok');
    p.close(fd);
    expect(pinnedPages(k)).toBe(0);
  });

  it('each open is its own registry', () => {
    const { k, p, fd, a } = setup();
    const fd2 = p.open('/dev/uacce_ctrl', O_RDWR);
    expect(pin(p, fd, a, 4 * P)).toBe('ok');
    expect(pin(p, fd2, a, 4 * P)).toBe('ok'); // not EBUSY: another file
    expect(p.status().vmPin).toBe(8 * P);
    expect(k.plugin<UacceCtrl>('pin-uacce-ctrl').files()).toHaveLength(2);
    p.close(fd);
    expect(p.status().vmPin).toBe(4 * P);
    expect(unpin(p, fd2, a, 4 * P)).toBe('ok');
  });
});

describe('UACCE_CMD_PIN / UACCE_CMD_UNPIN', () => {
  it('pins long-term for writing and charges VmPin; unpin undoes all; the struct via copy_from_user', () => {
    const { k, p, fd, a } = setup();
    const s = structAt(p, BigInt(a), BigInt(16 * P));
    expect(p.ioctl(fd, UACCE_CMD_PIN, s)).toBe(0);
    for (let i = 0; i < 16; i++) expect(p.pagemap(a + i * P)).toMatchObject({ present: true, pinned: true });
    expect(gupState(k.mmCore).longtermPins(p.pagemap(a).pfn!)).toBe(1);
    expect(p.status().vmPin).toBe(16 * P);
    expect(k.checkInvariants()).toEqual([]);
    expect(p.ioctl(fd, UACCE_CMD_UNPIN, s)).toBe(0);
    expect(p.pagemap(a).pinned).toBe(false);
    expect(p.status().vmPin).toBe(0);
    expect(pinnedPages(k)).toBe(0);
  });

  it('moves pages out of ZONE_MOVABLE before pinning, keeping their data', () => {
    const { p, fd } = setup({}, { memory: { nodes: [{ size: '256MiB', movable: '64MiB' }] } });
    const a = p.mmap(8 * P);
    const data = new Uint8Array(8 * P).map((_, i) => (i * 13 + 1) & 0xff);
    p.write(a, data);
    expect(p.pagemap(a).zone).toBe('MOVABLE');
    expect(pin(p, fd, a, 8 * P)).toBe('ok');
    for (let i = 0; i < 8; i++) {
      const e = p.pagemap(a + i * P);
      expect(e.pinned).toBe(true);
      expect(e.zone).not.toBe('MOVABLE');
    }
    expect(Buffer.from(p.read(a, 8 * P)).equals(Buffer.from(data))).toBe(true);
  });

  it('unaligned ranges cover the pages they touch', () => {
    const { p, fd, a } = setup();
    expect(pin(p, fd, a + 100, 1)).toBe('ok');
    expect(pin(p, fd, a + 2 * P + 4000, 200)).toBe('ok');
    expect(p.status().vmPin).toBe(3 * P);
    expect(unpin(p, fd, a + 2 * P + 4000, 50)).toBe('EINVAL');
    expect(unpin(p, fd, a + 2 * P, 2 * P)).toBe('ok');
    expect(unpin(p, fd, a + 5, P - 5)).toBe('ok');
    expect(p.status().vmPin).toBe(0);
  });

  describe('errno table', () => {
    it('EINVAL: zero size, wrapping ranges (exact 64 bits), bad argument objects', () => {
      const { p, fd, a } = setup();
      const top = (1n << 64n) - BigInt(P);
      expect(pin(p, fd, a, 0)).toBe('EINVAL');
      expect(pin(p, fd, top, BigInt(2 * P))).toBe('EINVAL');
      expect(pin(p, fd, U64_MAX, 1n)).toBe('EINVAL');
      expect(pin(p, fd, top + 1n, BigInt(P - 10))).toBe('EINVAL');
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_PIN, structAt(p, top, BigInt(2 * P))))).toBe('EINVAL');
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_PIN, { addr: a, size: P, x: 1 }))).toBe('EINVAL');
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_PIN, { addr: 1n << 64n, size: 1 }))).toBe('EINVAL');
      expect(pin(p, fd, a, P)).toBe('ok');
      expect(unpin(p, fd, a, 0)).toBe('EINVAL');
      expect(unpin(p, fd, top, BigInt(2 * P))).toBe('EINVAL');
      expect(p.status().vmPin).toBe(P);
    });

    it('EFAULT: beyond user space, unmapped, a hole (nothing left pinned), read-only, PROT_NONE', () => {
      const { k, p, fd, a } = setup();
      expect(pin(p, fd, 2 ** 47, P)).toBe('EFAULT');
      expect(pin(p, fd, 0x10000, P)).toBe('EFAULT');
      p.munmap(a + 8 * P, P);
      expect(pin(p, fd, a, 16 * P)).toBe('EFAULT');
      expect(p.pagemap(a).pinned).toBe(false);
      expect(pinnedPages(k)).toBe(0);
      expect(pin(p, fd, p.mmap(P, { prot: PROT_READ }), P)).toBe('EFAULT');
      expect(pin(p, fd, p.mmap(P, { prot: PROT_NONE }), P)).toBe('EFAULT');
      expect(p.status().vmPin).toBe(0);
      const v = k.vmstat();
      expect(v.nr_foll_pin_acquired).toBe(v.nr_foll_pin_released);
    });

    it('EFAULT: a bad struct address', () => {
      const { p, fd, a } = setup();
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_PIN, 0x10000))).toBe('EFAULT');
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_PIN, 0))).toBe('EFAULT');
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_PIN))).toBe('EFAULT');
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_UNPIN, -8))).toBe('EFAULT');
      const two = p.mmap(2 * P);
      p.munmap(two + P, P);
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_PIN, two + P - 8))).toBe('EFAULT');
      const hidden = structAt(p, BigInt(a), BigInt(P));
      p.mprotect(hidden, P, PROT_NONE);
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_PIN, hidden))).toBe('EFAULT');
    });

    it("ENOTTY: another command (uacce's own START_Q too), a foreign fd without ioctls", () => {
      const { k, p, fd, a } = setup();
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_START_Q))).toBe('ENOTTY');
      expect(errOf(() => p.ioctl(fd, 0x40104d00, { addr: a, size: P }))).toBe('ENOTTY'); // MEM_CMD_PIN
      expect(k.miscRegister({ minor: MISC_DYNAMIC_MINOR, name: 'null', fops: {}, mode: 0o666 })).toBe(0);
      const other = p.open('/dev/null', O_RDWR);
      expect(errOf(() => p.ioctl(other, UACCE_CMD_PIN, { addr: a, size: P }))).toBe('ENOTTY');
    });

    it('EBADF after close; EBUSY for the same first page; ENODEV; EINVAL for another size', () => {
      const { p, fd, a } = setup();
      expect(pin(p, fd, a, 4 * P)).toBe('ok');
      expect(pin(p, fd, a + 16, P)).toBe('EBUSY');
      expect(pin(p, fd, a + P, 4 * P)).toBe('ok'); // overlapping, another start: charged again
      expect(p.status().vmPin).toBe(8 * P);
      expect(unpin(p, fd, a, 3 * P)).toBe('EINVAL');
      expect(unpin(p, fd, a + 2 * P, P)).toBe('ENODEV');
      expect(unpin(p, fd, a, 4 * P)).toBe('ok');
      expect(unpin(p, fd, a, 4 * P)).toBe('ENODEV');
      expect(p.pagemap(a + P).pinned).toBe(true);
      p.close(fd);
      expect(p.status().vmPin).toBe(0);
      expect(pin(p, fd, a, P)).toBe('EBADF');
      expect(unpin(p, fd, a + P, 4 * P)).toBe('EBADF');
    });

    it('EPERM without mlock rights; ENOMEM over RLIMIT_MEMLOCK; CAP_IPC_LOCK exempt', () => {
      const none = setup({ uid: 1000, rlimits: { memlock: 0 } });
      expect(pin(none.p, none.fd, none.a, P)).toBe('EPERM');
      const lim = setup({ uid: 1000, rlimits: { memlock: 32 * KiB } });
      expect(pin(lim.p, lim.fd, lim.a, 8 * P)).toBe('ok');
      expect(pin(lim.p, lim.fd, lim.a + P, P)).toBe('ENOMEM');
      expect(lim.p.status().vmPin).toBe(32 * KiB);
      const cap = setup({ uid: 1000, caps: ['CAP_IPC_LOCK'], rlimits: { memlock: 0 } });
      expect(pin(cap.p, cap.fd, cap.a, 16 * P)).toBe('ok');
      expect(cap.p.status().vmPin).toBe(16 * P);
    });

    it('EIO from another address space; the pins live while any holder has the file', () => {
      const { k, p, fd, a } = setup();
      expect(pin(p, fd, a, 2 * P)).toBe('ok');
      const child = p.fork();
      expect(pin(child, fd, child.mmap(P), P)).toBe('EIO');
      p.close(fd);
      expect(p.status().vmPin).toBe(2 * P);
      child.exit();
      expect(p.status().vmPin).toBe(0);
      expect(pinnedPages(k)).toBe(0);
    });

    it('EFAULT on device memory (VM_IO)', () => {
      const { p, fd } = setup({}, { plugins: [memcpyAccelPlugin, uacceCtrlPlugin] });
      const dev = p.open('/dev/memcpy_accel-0', O_RDWR);
      const mmio = p.mmap(P, {
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_SHARED,
        fd: dev,
        offset: UACCE_QFRT_MMIO * P,
      });
      expect(pin(p, fd, mmio, P)).toBe('EFAULT');
    });
  });

  it('exit unpins everything and frees the memory', () => {
    const k = boot();
    const free0 = k.vmstat().nr_free_pages;
    const p = k.spawn();
    const fd = p.open('/dev/uacce_ctrl', O_RDWR);
    const a = p.mmap(128 * P);
    expect(pin(p, fd, a, 128 * P)).toBe('ok');
    expect(pin(p, fd, a + 3 * P, 5 * P)).toBe('ok');
    p.exit();
    expect(pinnedPages(k)).toBe(0);
    expect(k.plugin<UacceCtrl>('pin-uacce-ctrl').files()).toHaveLength(0);
    expect(k.vmstat().nr_free_pages).toBe(free0);
  });

  it('user input cannot flood dmesg; DMA in flight at unpin is reported, rate-limited', () => {
    const { k, p, fd, a } = setup({ uid: 1000, rlimits: { memlock: 16 * KiB } });
    expect(pin(p, fd, a, P)).toBe('ok');
    const lines = k.dmesg().length;
    for (let i = 0; i < 1000; i++) {
      expect(pin(p, fd, 0x10000, P)).toBe('EFAULT');
      expect(pin(p, fd, a, 0)).toBe('EINVAL');
      expect(pin(p, fd, a, P)).toBe('EBUSY');
      expect(pin(p, fd, a + P, 8 * P)).toBe('ENOMEM');
      expect(unpin(p, fd, a + P, P)).toBe('ENODEV');
      expect(errOf(() => p.ioctl(fd, UACCE_CMD_PIN, 0x10000))).toBe('EFAULT');
    }
    expect(k.dmesg().length - lines).toBe(0);
    const dma = dmaInflight(k.mmCore);
    const pfn = p.pagemap(a).pfn!;
    dma.begin(pfn); // a device working on the page
    const events: Array<{ owner: string }> = [];
    k.trace.on('gup_unpin_dma_inflight', (e) => events.push(e));
    expect(unpin(p, fd, a, P)).toBe('ok');
    for (let i = 0; i < 1000; i++) {
      expect(pin(p, fd, a, P)).toBe('ok');
      expect(unpin(p, fd, a, P)).toBe('ok');
    }
    expect(k.vmstat().unpin_dma_inflight).toBe(1001);
    expect(events).toHaveLength(1001);
    expect(events[0]).toMatchObject({
      owner: 'uacce_ctrl',
      pid: p.pid,
      addr: a,
      nrPages: 1,
      busyPages: 1,
      pfn,
    });
    const logged = k.dmesg().slice(lines);
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.length).toBeLessThanOrEqual(10);
    expect(logged[0]).toMatch(/uacce_ctrl: pid \d+ unpinned .* with DMA in flight on 1 of them/);
    dma.end(pfn);
  });
});
