/**
 * GpuDevice - the simulated GPU and its driver: a misc device /dev/<name> (mode 0666) whose every
 * open file is a context mirroring the opener's address space (context.ts), device-private
 * memory (vram.ts), the ioctl interface (uapi.ts), sysfs attributes under /sys/class/misc/<name>,
 * invariant checks, the copy engine as a uacce device (copy-engine.ts), and hot removal
 * (unrealize) that brings device memory home with contexts still open. It is the instance
 * gpuPlugin registers: kernel.plugin('gpu').
 */
import {
  ERRNO,
  MISC_DYNAMIC_MINOR,
  MmStruct,
  PAGE_SIZE,
  migrateCallbackAttach,
  readIoctlArg,
  writeIoctlArg,
  copyFromUser,
  copyToUser,
  type AttributeGroup,
  type Current,
  type File,
  type FileOperations,
  type IoctlArg,
  type Kernel,
  type MiscDevice,
  type MmCore,
} from '@svasim/kernel';
import { GPU_ATOMIC_MODES } from './atomic-holds';
import { GpuCopyEngine } from './copy-engine';
import { GpuContext, type GpuDriver, type GpuThread, type OpResult } from './context';
import { GPU_DEFAULT_CONFIG, vramPagesOf, type GpuConfig, type GpuTiming } from './gpu-config';
import { checkGpuContext, checkVram } from './gpu-check';
import {
  GPU_ATOMIC_LAYOUT,
  GPU_CMD_LAYOUT,
  GPU_MODE_F_PIN_IN_PLACE,
  GPU_MODE_LAYOUT,
  GPU_STATS_LAYOUT,
  SVASIM_GPU_IOC_ATOMIC,
  SVASIM_GPU_IOC_EVICT,
  SVASIM_GPU_IOC_LAUNCH,
  SVASIM_GPU_IOC_MIGRATE_TO_DEV,
  SVASIM_GPU_IOC_MIGRATE_TO_SYS,
  SVASIM_GPU_IOC_MIRROR,
  SVASIM_GPU_IOC_READ,
  SVASIM_GPU_IOC_SET_MODE,
  SVASIM_GPU_IOC_SNAPSHOT,
  SVASIM_GPU_IOC_STATS,
  SVASIM_GPU_IOC_WRITE,
} from './uapi';
import { GpuVram } from './vram';
import { isPlainObject, readScalars, u64Of, u64Operand } from './ioctl-args';

/** Largest READ/WRITE/SNAPSHOT through a bounce buffer (vmalloc's limit in test_hmm). */
export const GPU_BOUNCE_MAX = 2 ** 30;

/** GpuDeviceStats - the device's counters (sysfs shows them too). */
export interface GpuDeviceStats {
  /** Contexts open now. */
  contexts: number;
  /** Simulated device time of all commands, and of work outside commands (ns). */
  commandNs: number;
  backgroundNs: number;
  /** ioctls served. */
  commands: number;
}

/**
 * GpuDevice - one GPU. The constructor sets defaults and cannot fail; realize() registers the
 * device (0 or -errno); unrealize() is hot removal.
 */
export class GpuDevice implements GpuDriver {
  readonly core: MmCore;
  readonly timing: GpuTiming;
  readonly vram: GpuVram;
  /** True once unrealized: open contexts answer -ENXIO, as uacce queues of a removed device do. */
  removed = false;
  /** The misc device while registered. */
  misc: MiscDevice | null = null;
  /** The copy engine (a uacce device), when the config asks for one. */
  readonly copyEngine: GpuCopyEngine | null;
  private readonly contexts = new Set<GpuContext>();
  private commandNs = 0;
  private backgroundNs = 0;
  private commands = 0;
  private checkAdded = false;

  constructor(
    readonly kernel: Kernel,
    readonly config: GpuConfig = GPU_DEFAULT_CONFIG,
  ) {
    this.core = kernel.mmCore;
    this.timing = { ...config.timing };
    this.vram = new GpuVram(this.core, this, config.chunkPages, vramPagesOf(config), config.name);
    this.copyEngine = config.copyEngine ? new GpuCopyEngine(kernel) : null;
  }

  /** The pagemap owner of the device memory (hmm's dev_private_owner): the device itself. */
  get owner(): object {
    return this;
  }

  /** /dev path of the device. */
  get devPath(): string {
    return `/dev/${this.config.name}`;
  }

  /** GpuDriver: device work outside any command. */
  addBackgroundNs(ns: number): void {
    this.backgroundNs += ns;
  }

  /**
   * realize - register /dev/<name> and its sysfs attributes, hook the migration callback's
   * reference accounting and the GPU invariant checks into the kernel.
   * Return: 0, or -EINVAL (a config that makes no sense), miscRegister's -errno (-EEXIST: the
   * name is taken).
   */
  realize(): number {
    const c = this.config;
    if (!/^[a-z0-9_]+$/.test(c.name) || !Number.isInteger(c.chunkPages) || c.chunkPages < 1)
      return -ERRNO.EINVAL;
    if (vramPagesOf(c) < c.chunkPages) return -ERRNO.EINVAL;
    migrateCallbackAttach(this.core, this.kernel);
    const misc: MiscDevice = {
      minor: MISC_DYNAMIC_MINOR,
      name: c.name,
      fops: this.fops(),
      mode: c.devMode,
      groups: [this.attributes()],
    };
    const r = this.kernel.miscRegister(misc);
    if (r < 0) return r;
    const ce = this.copyEngine ? this.copyEngine.realize() : 0;
    if (ce < 0) {
      this.kernel.miscDeregister(misc);
      return ce;
    }
    this.misc = misc;
    this.removed = false;
    if (!this.checkAdded) {
      this.checkAdded = true;
      this.kernel.addInvariantCheck('gpu', () => this.checkInvariants());
    }
    this.core.dmesg.printk(
      `${c.name}: GPU registered, ${c.vramBytes / 2 ** 20} MiB device memory, ${this.devPath}`,
    );
    return 0;
  }

  /**
   * unrealize - hot removal: open contexts stop (their mirrors and holds go; later ioctls answer
   * -ENXIO), every page in device memory is migrated back to system memory with its data, and
   * /dev/<name> and its sysfs directory disappear. Idempotent.
   */
  unrealize(): void {
    if (this.removed || !this.misc) return;
    this.removed = true;
    for (const ctx of this.contexts) ctx.release();
    const left = this.vram.evictAll();
    if (left) this.core.dmesg.printk(`${this.config.name}: ${left} device pages could not be evicted`);
    this.kernel.miscDeregister(this.misc);
    this.misc = null;
    this.copyEngine?.unrealize();
    this.core.dmesg.printk(`${this.config.name}: GPU removed`);
  }

  /** Contexts open now (files not yet released). */
  openContexts(): GpuContext[] {
    return [...this.contexts];
  }

  /** stats - the device's counters. */
  stats(): GpuDeviceStats {
    return {
      contexts: this.contexts.size,
      commandNs: this.commandNs,
      backgroundNs: this.backgroundNs,
      commands: this.commands,
    };
  }

  /** checkInvariants - the GPU's own checks (also run by kernel.checkInvariants as 'gpu'). */
  checkInvariants(): string[] {
    const out = checkVram(this.vram, this.config.name);
    let i = 0;
    for (const ctx of this.contexts) out.push(...checkGpuContext(ctx, `${this.config.name} context ${i++}`));
    return out;
  }

  private attributes(): AttributeGroup {
    const ro = (name: string, show: () => string | number) => ({
      name,
      mode: 0o444,
      show: () => `${show()}\n`,
    });
    return {
      attrs: [
        ro('vram_size', () => this.config.vramBytes),
        ro('vram_used', () => this.vram.stats().usedPages * PAGE_SIZE),
        ro('vram_chunks', () => this.vram.stats().chunks),
        ro('contexts', () => this.contexts.size),
        ro('atomic_modes', () => GPU_ATOMIC_MODES.join(' ')),
        ro('device_ns', () => Math.round(this.commandNs + this.backgroundNs)),
      ],
    };
  }

  private fops(): FileOperations {
    return {
      owner: 'svasim_gpu',
      open: (_inode, file, current) => {
        if (this.removed) return -ERRNO.ENODEV;
        const mm = (current as { mm?: unknown }).mm;
        if (!(mm instanceof MmStruct) || !mm.alive) return -ERRNO.EINVAL;
        const ctx = new GpuContext(this, mm);
        const r = ctx.open();
        if (r < 0) return r;
        file.privateData = ctx;
        this.contexts.add(ctx);
        return 0;
      },
      release: (_inode, file) => {
        const ctx = file.privateData;
        if (!(ctx instanceof GpuContext)) return;
        ctx.release();
        this.contexts.delete(ctx);
        file.privateData = null;
      },
      unlockedIoctl: (file, cmd, arg, current) => this.ioctl(file, cmd, arg, current),
    };
  }

  /** Account one command's device time: the calling thread waits for it. */
  private charge(ctx: GpuContext, ns: number): void {
    if (!(ns > 0)) return;
    ctx.stats.deviceNs += ns;
    this.commandNs += ns;
    this.core.charge(ns);
  }

  private ioctl(file: File, cmd: number, arg: IoctlArg, current: Current): number {
    const ctx = file.privateData;
    if (!(ctx instanceof GpuContext)) return -ERRNO.EINVAL;
    if (this.removed || ctx.released) return -ERRNO.ENXIO;
    this.commands++;
    switch (cmd) {
      case SVASIM_GPU_IOC_READ:
      case SVASIM_GPU_IOC_WRITE:
        return this.ioctlAccess(ctx, cmd === SVASIM_GPU_IOC_WRITE, arg, current);
      case SVASIM_GPU_IOC_MIGRATE_TO_DEV:
      case SVASIM_GPU_IOC_MIGRATE_TO_SYS:
      case SVASIM_GPU_IOC_EVICT:
        return this.ioctlMigrate(ctx, cmd, arg, current);
      case SVASIM_GPU_IOC_ATOMIC:
        return this.ioctlAtomic(ctx, arg, current);
      case SVASIM_GPU_IOC_SET_MODE: {
        const m = readScalars(current, arg, GPU_MODE_LAYOUT);
        if (typeof m === 'number') return m;
        const mode = GPU_ATOMIC_MODES[m.mode];
        if (!mode || m.flags & ~GPU_MODE_F_PIN_IN_PLACE) return -ERRNO.EINVAL;
        if (m.flags && mode !== 'longterm-pin') return -ERRNO.EINVAL;
        return ctx.setMode(mode, (m.flags & GPU_MODE_F_PIN_IN_PLACE) !== 0);
      }
      case SVASIM_GPU_IOC_SNAPSHOT:
      case SVASIM_GPU_IOC_MIRROR:
        return this.ioctlSnapshot(ctx, cmd === SVASIM_GPU_IOC_MIRROR, arg, current);
      case SVASIM_GPU_IOC_STATS: {
        const s = ctx.stats;
        return writeIoctlArg(current, arg, GPU_STATS_LAYOUT, {
          deviceNs: Math.round(s.deviceNs),
          faults: s.faults,
          atomics: s.atomics,
          atomicsLocal: s.atomicsLocal,
          acquires: s.acquires,
          revocations: s.revocations,
          revocationsByCpu: s.revocationsByCpu,
          revocationsByMigration: s.revocationsByMigration,
          callbackRevokes: s.callbackRevokes,
          reinstates: s.reinstates,
          tlbShootdowns: s.tlbShootdowns,
          migratedToDevice: s.migratedToDevice,
          migratedToSystem: s.migratedToSystem,
          heldPages: ctx.heldPages(),
          launches: s.launches,
        });
      }
      case SVASIM_GPU_IOC_LAUNCH: {
        if (!isPlainObject(arg) || typeof arg.kernel !== 'function') return -ERRNO.EINVAL;
        const r = ctx.launch(arg.kernel as (t: GpuThread) => void);
        return this.finish(ctx, r, arg, current);
      }
      default:
        return -ERRNO.ENOTTY;
    }
  }

  /** Charge @r, count its faults, and on success write cpages/faults/ns back into @arg. */
  private finish(
    ctx: GpuContext,
    r: OpResult,
    arg: IoctlArg,
    current: Current,
    base?: Record<string, number>,
  ): number {
    this.charge(ctx, r.ns);
    ctx.stats.faults += r.faults;
    if (r.ret) return r.ret;
    const out = { ...(base ?? {}), cpages: r.cpages, faults: r.faults, ns: Math.round(r.ns) };
    if (isPlainObject(arg)) {
      Object.assign(arg, out);
      return 0;
    }
    return writeIoctlArg(current, arg, GPU_CMD_LAYOUT, out) < 0 ? -ERRNO.EFAULT : 0;
  }

  private ioctlAccess(ctx: GpuContext, write: boolean, arg: IoctlArg, current: Current): number {
    const data = isPlainObject(arg) ? arg.data : undefined;
    if (data !== undefined && !(data instanceof Uint8Array)) return -ERRNO.EINVAL;
    const c = readScalars(current, arg, GPU_CMD_LAYOUT, ['data']);
    if (typeof c === 'number') return c;
    const len = data ? data.length : c.len;
    if (data && c.len && c.len !== data.length) return -ERRNO.EINVAL;
    if (!Number.isSafeInteger(len) || len > GPU_BOUNCE_MAX) return -ERRNO.ENOMEM;
    const buf = data ?? new Uint8Array(len);
    if (write && !data && copyFromUser(current, buf, c.ptr) < 0) return -ERRNO.EFAULT;
    const r = ctx.access(c.addr, buf, write);
    if (!r.ret && !write && !data && copyToUser(current, c.ptr, buf) < 0) r.ret = -ERRNO.EFAULT;
    return this.finish(ctx, r, arg, current, { addr: c.addr, ptr: c.ptr, len });
  }

  private ioctlMigrate(ctx: GpuContext, cmd: number, arg: IoctlArg, current: Current): number {
    const c = readScalars(current, arg ?? {}, GPU_CMD_LAYOUT);
    if (typeof c === 'number') return c;
    let r: OpResult;
    if (cmd === SVASIM_GPU_IOC_EVICT) {
      const before = this.vram.stats().evicted;
      this.vram.evictAll();
      r = { ret: 0, ns: 0, faults: 0, cpages: this.vram.stats().evicted - before };
    } else r = ctx.migrate(c.addr, c.len, cmd === SVASIM_GPU_IOC_MIGRATE_TO_DEV);
    if (arg === undefined) {
      this.charge(ctx, r.ns);
      return r.ret;
    }
    return this.finish(ctx, r, arg, current, { addr: c.addr, ptr: c.ptr, len: c.len });
  }

  private ioctlSnapshot(ctx: GpuContext, mirror: boolean, arg: IoctlArg, current: Current): number {
    const data = isPlainObject(arg) ? arg.data : undefined;
    if (data !== undefined && !(data instanceof Uint8Array)) return -ERRNO.EINVAL;
    const c = readScalars(current, arg, GPU_CMD_LAYOUT, ['data']);
    if (typeof c === 'number') return c;
    const npages = Math.ceil((data ? data.length * PAGE_SIZE : c.len) / PAGE_SIZE);
    if (npages > GPU_BOUNCE_MAX) return -ERRNO.ENOMEM;
    const out = data ?? new Uint8Array(npages);
    const ret = mirror ? ctx.mirrorState(c.addr, npages, out) : ctx.snapshot(c.addr, npages, out);
    if (ret) return ret;
    if (!data && copyToUser(current, c.ptr, out) < 0) return -ERRNO.EFAULT;
    return this.finish(ctx, { ret: 0, ns: 0, faults: 0, cpages: npages }, arg, current, {
      addr: c.addr,
      ptr: c.ptr,
      len: c.len,
    });
  }

  private ioctlAtomic(ctx: GpuContext, arg: IoctlArg, current: Current): number {
    let operand: bigint | null;
    let expected: bigint | null;
    let a: Record<string, number>;
    if (isPlainObject(arg)) {
      operand = u64Operand(arg.operand);
      expected = u64Operand(arg.expected);
      if (operand === null || expected === null) return -ERRNO.EINVAL;
      const f = readScalars(current, arg, GPU_ATOMIC_LAYOUT, ['operand', 'expected', 'result']);
      if (typeof f === 'number') return f;
      a = f;
    } else {
      const v = readIoctlArg(current, arg, GPU_ATOMIC_LAYOUT);
      if (typeof v === 'number') return v;
      operand = u64Of(v.operand);
      expected = u64Of(v.expected);
      a = v as unknown as Record<string, number>;
    }
    const r = ctx.atomic(a.addr, a.op, a.width, operand, expected);
    this.charge(ctx, r.ns);
    ctx.stats.faults += r.faults;
    if (r.ret) return r.ret;
    const ns = Math.round(r.ns);
    if (isPlainObject(arg)) {
      arg.result = r.result;
      arg.ns = ns;
      arg.faults = r.faults;
      arg.flags = r.flags;
      return 0;
    }
    const result = new Uint8Array(8);
    new DataView(result.buffer).setBigUint64(0, r.result, true);
    const out = { ...a, result, ns, faults: r.faults, flags: r.flags };
    return writeIoctlArg(current, arg, GPU_ATOMIC_LAYOUT, out) < 0 ? -ERRNO.EFAULT : 0;
  }
}
