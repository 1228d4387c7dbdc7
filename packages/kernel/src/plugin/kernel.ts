import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { ERRNO, KernelError, SyscallError } from '../uapi/errno';
import { DeviceCore } from '../base/device-core';
import type { MiscDevice } from '../base/misc';
import { checkBuddyInvariants } from '../mm/buddy-check';
import { cmaRelease as cmaReleaseRange, type CmaArea } from '../mm/cma';
import { compactMemory, initCompaction } from '../mm/compaction';
import { initKhugepaged } from '../mm/khugepaged';
import { initNumaBalancing } from '../mm/numa-balancing';
import { initReclaim } from '../mm/reclaim';
import { initZoneDevice } from '../mm/zone-device';
import { gupAttach } from '../gup/pin-tracker';
import { registerGupTest } from '../fs/gup-test';
import { CpuSet } from '../sim/cpus';
import { initIommu, IOMMU, type Iommu } from '../iommu/iommu';
import type { IommuDevice } from '../iommu/iommu-device';
import { IopfQueue } from '../iommu/iopf';
import { checkIommuInvariants } from '../iommu/iommu-check';
import { iommuSvaFindBinding, iommuSvaOps } from '../iommu/sva';
import { UacceCore } from '../uacce/core';
import { UACCE_CORE } from '../uacce/tokens';
import { cmaAllocBytes } from '../mm/contig-alloc';
import { allocHugetlbPoolPage } from '../mm/hugetlb-alloc';
import { memoryHotplugConfig, offlinePages } from '../mm/memory-hotplug';
import { checkMmInvariants, type ExtraRefs } from '../mm/debug-vm';
import type { ForkCowMode } from '../mm/fork';
import { formatBytes, parseMemorySize } from '../mm/memory-size';
import { MM_COST_DEFAULTS, tunableValues, type MmCosts, type MmSysctl } from '../mm/mm-config';
import { MmCore } from '../mm/mm-core';
import { PageAllocator } from '../mm/page-alloc';
import type { HugetlbPools } from '../mm/hugetlb-pool';
import type { HugepageSize } from '../mm/phys-types';
import { PAGE_SIZE } from '../uapi/mman';
import { registerFsSyscalls } from '../proc/fs-syscalls';
import { registerMmSyscalls } from '../proc/mm-syscalls';
import { PidAllocator } from '../proc/pid';
import { Process, type ProcessHost, type SpawnOptions } from '../proc/process';
import { SyscallTable, type SyscallHandler } from '../proc/syscall-table';
import { Dmesg } from '../sim/dmesg';
import { RngStreams } from '../sim/rng';
import { EventQueueScheduler } from '../sim/scheduler';
import { TaskRunner } from '../sim/task';
import { DMESG, RNG_STREAMS, SCHEDULER, TASK_RUNNER, TRACEPOINTS, VMSTAT } from '../sim/tokens';
import { Tracepoints } from '../sim/tracepoints';
import type { IScheduler } from '../sim/types';
import { Vmstat } from '../sim/vmstat';
import type { Plugin, Realizable } from './define-plugin';
import { PIN_STRATEGY, defaultPinStrategy, type PinStrategy } from './pin-strategy';
import { resolveKernelOptions, type KernelOptions, type ResolvedKernelOptions } from './kernel-options';
import { DEVICE_CORE, KERNEL, MM_CORE, PAGE_ALLOCATOR, SYSCALL_TABLE } from './tokens';

/** A named invariant check contributed by a subsystem or plugin. */
type InvariantCheck = () => string[];

/**
 * Kernel - one booted simulated machine: clock and event loop, physical memory, processes,
 * devices and the plugins loaded into it. Made by createKernel; two kernels share nothing.
 */
export class Kernel implements ProcessHost {
  readonly options: ResolvedKernelOptions;
  /** This kernel's own DI container (a child of tsyringe's root with nothing registered there). */
  readonly container: DependencyContainer;
  readonly scheduler: IScheduler;
  readonly tasks: TaskRunner;
  readonly rng: RngStreams;
  readonly counters: Vmstat;
  readonly log: Dmesg;
  readonly trace: Tracepoints;
  readonly phys: PageAllocator;
  readonly hugetlb: HugetlbPools;
  readonly mmCore: MmCore;
  readonly devices: DeviceCore;
  readonly syscalls: SyscallTable;
  readonly pids: PidAllocator;
  readonly forkCow: ForkCowMode;
  readonly cpus: number;
  readonly sysctl: MmSysctl;
  readonly costs: MmCosts;
  /** The simulated CPUs kernel work (the iopf workqueue's kworkers) runs on. */
  readonly cpuSet: CpuSet;
  /** The IOMMU (profile from options.iommu.profile), its SVA bonds, caches and DMA domains. */
  readonly iommu: Iommu;
  /** The IO page fault queue of the IOMMU: page requests, interrupts, the iopf workqueue. */
  readonly iopf: IopfQueue<IommuDevice>;
  /** The uacce framework: accelerator devices register here (uacceAlloc/uacceRegister). */
  readonly uacce: UacceCore;
  private readonly processes = new Map<number, Process>();
  private currentProcess: Process | null = null;
  private readonly loaded = new Map<string, { plugin: Plugin; instance: unknown }>();
  private readonly realized: Realizable[] = [];
  private chosenStrategy: PinStrategy = defaultPinStrategy;
  private readonly invariantChecks: Array<[string, InvariantCheck]> = [];
  private readonly refSources: Array<(refs: ExtraRefs) => void> = [];
  /** CMA allocations cmaAlloc made and keeps, oldest first. */
  private readonly cmaHeld: Array<{ area: CmaArea; pfn: number; nrPages: number }> = [];
  private cmaRefSourceAdded = false;

  /** @internal use createKernel(). */
  constructor(opts: KernelOptions = {}) {
    this.options = resolveKernelOptions(opts);
    this.container = rootContainer.createChildContainer();
    this.trace = new Tracepoints();
    this.scheduler = opts.scheduler ?? new EventQueueScheduler();
    this.tasks = new TaskRunner(this.scheduler, {}, this.trace);
    this.rng = new RngStreams(this.options.seed);
    this.counters = new Vmstat();
    this.log = new Dmesg(this.scheduler, {}, this.trace);
    this.cpus = this.options.cpus;
    this.forkCow = this.options.forkCow;
    this.sysctl = this.options.sysctl;
    this.costs = tunableValues(MM_COST_DEFAULTS) as MmCosts;
    this.phys = new PageAllocator(this.options.phys, this.counters);
    this.hugetlb = this.phys.hugetlb;
    this.mmCore = new MmCore(
      this.phys,
      this.hugetlb,
      this.counters,
      this.sysctl,
      this.costs,
      this.log,
      this.trace,
    );
    this.mmCore.now = () => this.scheduler.now();
    this.mmCore.scheduler = this.scheduler;
    this.mmCore.chargeHook = (ns) => {
      if (this.currentProcess) this.currentProcess.charge(ns);
      else this.tasks.current?.charge(ns);
    };
    this.devices = new DeviceCore();
    this.syscalls = new SyscallTable();
    this.pids = new PidAllocator();
    registerMmSyscalls(this.syscalls);
    registerFsSyscalls(this.syscalls, this.devices);
    this.registerServices();
    for (const line of this.phys.bootMessages) this.log.printk(line);
    this.log.printk(
      `svasim: ${this.cpus} CPUs, ${this.phys.nodes.length} node(s), ${formatBytes(this.phys.maxPfn * 4096)} RAM, forkCow=${this.forkCow}`,
    );
    this.addInvariantCheck('buddy', () => checkBuddyInvariants(this.phys));
    this.addInvariantCheck('mm', () => {
      const refs: ExtraRefs = new Map();
      for (const src of this.refSources) src(refs);
      return checkMmInvariants(this.mmCore, refs);
    });
    this.addInvariantCheck('proc', () => this.checkProcesses());
    this.startSubsystems();
    this.cpuSet = new CpuSet(this.scheduler, this.cpus, this.trace);
    this.iommu = initIommu(this.mmCore, { profile: this.options.iommuProfile });
    this.iopf = new IopfQueue<IommuDevice>({
      name: 'smmu',
      scheduler: this.scheduler,
      cpus: this.cpuSet,
      profile: this.iommu.profile,
      rng: this.rng,
      vmstat: this.counters,
      dmesg: this.log,
      devName: (d) => d.name,
      trace: this.trace,
      resolveMm: (dev, pasid) => iommuSvaFindBinding(dev, pasid)?.mm ?? null,
    });
    this.uacce = new UacceCore(this.devices, this.mmCore, iommuSvaOps(this.iommu));
    this.container.registerInstance(IOMMU, this.iommu);
    this.container.registerInstance(UACCE_CORE, this.uacce);
    this.addInvariantCheck('iommu', () => checkIommuInvariants(this.iommu));
    this.addInvariantCheck('uacce', () => this.uacce.checkInvariants());
  }

  /**
   * Start the mm subsystems layered on the core, each idempotent per MmCore: GUP bookkeeping and
   * the gup_test device, reclaim with kswapd and swap, the handlers of ZONE_DEVICE entries (HMM),
   * compaction with kcompactd, khugepaged,
   * and NUMA balancing (which only scans on machines with more than one node). Their daemons run
   * as background events, so an idle machine stays idle.
   */
  private startSubsystems(): void {
    gupAttach(this.mmCore, this);
    registerGupTest(this.devices, this.mmCore);
    initReclaim(this.mmCore, { swap: this.options.swap });
    initZoneDevice(this.mmCore);
    initCompaction(this.mmCore);
    initKhugepaged(this.mmCore);
    initNumaBalancing(this.mmCore, { chargeScan: (mm, ns) => this.processes.get(mm.ownerPid)?.charge(ns) });
  }

  private registerServices(): void {
    const c = this.container;
    c.registerInstance(KERNEL, this);
    c.registerInstance(SCHEDULER, this.scheduler);
    c.registerInstance(TASK_RUNNER, this.tasks);
    c.registerInstance(RNG_STREAMS, this.rng);
    c.registerInstance(VMSTAT, this.counters);
    c.registerInstance(DMESG, this.log);
    c.registerInstance(TRACEPOINTS, this.trace);
    c.registerInstance(PAGE_ALLOCATOR, this.phys);
    c.registerInstance(MM_CORE, this.mmCore);
    c.registerInstance(DEVICE_CORE, this.devices);
    c.registerInstance(SYSCALL_TABLE, this.syscalls);
  }

  /** @internal load the plugins (createKernel does this once). */
  loadPlugins(plugins: Plugin[]): void {
    const names = new Set<string>();
    for (const p of plugins) {
      if (!p || typeof p.register !== 'function')
        throw new TypeError('createKernel: plugins[] holds something that is not a plugin');
      if (names.has(p.name)) throw new RangeError(`createKernel: plugin '${p.name}' is loaded twice`);
      names.add(p.name);
    }
    for (const p of plugins)
      for (const r of p.requires ?? [])
        if (!names.has(r))
          throw new RangeError(`createKernel: plugin '${p.name}' requires '${r}', which is not loaded`);
    for (const p of plugins) {
      const instance = p.register({ container: this.container, kernel: this });
      this.loaded.set(p.name, { plugin: p, instance });
    }
    this.choosePinStrategy();
    for (const p of plugins) {
      const inst = this.loaded.get(p.name)!.instance as Realizable | undefined;
      if (!inst || typeof inst.realize !== 'function') {
        if (inst && typeof inst.unrealize === 'function') this.realized.push(inst);
        continue;
      }
      const r = inst.realize();
      if (typeof r === 'number' && r < 0) {
        this.shutdown();
        throw new KernelError(r, `plugin '${p.name}' failed to realize`);
      }
      this.realized.push(inst);
    }
  }

  /**
   * pinStrategy - the strategy in use: the one kernel option `pinStrategy` names, else the only
   * one registered under PIN_STRATEGY, else defaultPinStrategy. createKernel has already refused
   * an ambiguous or unknown choice, so this does not throw.
   */
  pinStrategy(): PinStrategy {
    return this.chosenStrategy;
  }

  /** Every strategy the loaded plugins registered, in registration order. */
  pinStrategies(): PinStrategy[] {
    return this.container.isRegistered(PIN_STRATEGY, false)
      ? this.container.resolveAll<PinStrategy>(PIN_STRATEGY)
      : [];
  }

  private choosePinStrategy(): void {
    const all = this.pinStrategies();
    const want = this.options.pinStrategy;
    if (want !== null) {
      const hit = all.find((s) => s.name === want) ?? (want === 'none' ? defaultPinStrategy : undefined);
      if (!hit)
        throw new RangeError(
          `createKernel: pinStrategy '${want}' is not loaded (loaded: ${all.map((s) => s.name).join(', ') || 'none'})`,
        );
      this.chosenStrategy = hit;
    } else if (all.length > 1) {
      throw new RangeError(
        `createKernel: several pin strategies are loaded (${all.map((s) => s.name).join(', ')}); choose one with options.pinStrategy`,
      );
    } else this.chosenStrategy = all[0] ?? defaultPinStrategy;
  }

  /** shutdown - unrealize every plugin instance in reverse order (devices go away). */
  shutdown(): void {
    while (this.realized.length) this.realized.pop()!.unrealize?.();
  }

  // ---- time ----

  /** now - simulated time in ns. */
  now(): number {
    return this.scheduler.now();
  }

  /** runFor - advance simulated time by `ns`, running events and tasks; rejects if a task failed. */
  runFor(ns: number): Promise<void> {
    return this.tasks.runFor(ns);
  }

  /** runUntilIdle - run until nothing is scheduled (bounded by `maxNs` if given). */
  runUntilIdle(maxNs?: number): Promise<void> {
    return this.tasks.runUntilIdle(maxNs);
  }

  // ---- processes ----

  /** spawn - a new process with an empty address space. Released by its exit(). */
  spawn(opts: SpawnOptions = {}): Process {
    return Process.create(this, opts);
  }

  /** Live processes by pid. */
  processList(): Process[] {
    return [...this.processes.values()];
  }

  /** @internal ProcessHost */
  setCurrent(p: Process | null): Process | null {
    const prev = this.currentProcess;
    this.currentProcess = p;
    return prev;
  }

  /** @internal ProcessHost */
  adopt(p: Process): void {
    this.processes.set(p.pid, p);
  }

  /** @internal ProcessHost */
  reap(p: Process): void {
    this.processes.delete(p.pid);
  }

  /** The process whose work is being charged right now, if any (the C `current`). */
  get current(): Process | null {
    return this.currentProcess;
  }

  // ---- observability ----

  /** vmstat - every counter by name (/proc/vmstat). */
  vmstat(): Record<string, number> {
    return this.counters.snapshot();
  }

  /** dmesg - the kernel log, oldest first. */
  dmesg(): string[] {
    return this.log.lines();
  }

  /**
   * checkInvariants - run every invariant check (buddy free lists, page tables against page
   * frames, reverse maps, accounting, leaks, and whatever plugins added). Empty when all hold.
   */
  checkInvariants(): string[] {
    const out: string[] = [];
    for (const [name, check] of this.invariantChecks) for (const v of check()) out.push(`${name}: ${v}`);
    return out;
  }

  /** addInvariantCheck - a subsystem or plugin adds its own checks to checkInvariants(). */
  addInvariantCheck(name: string, check: InvariantCheck): void {
    this.invariantChecks.push([name, check]);
  }

  /**
   * addRefSource - a subsystem that holds page references other than mappings (GUP pins, device
   * mappings) reports them so the refcount check balances: `fn` adds pfn -> count to the map.
   */
  addRefSource(fn: (refs: ExtraRefs) => void): void {
    this.refSources.push(fn);
  }

  private checkProcesses(): string[] {
    const out: string[] = [];
    const liveMms = new Set<unknown>();
    for (const p of this.processes.values()) {
      if (!p.mm.alive) out.push(`pid ${p.pid} is running with a dead mm`);
      liveMms.add(p.mm);
    }
    for (const mm of this.mmCore.mms) if (!liveMms.has(mm)) out.push(`mm ${mm.id} outlived its process`);
    return out;
  }

  // ---- physical memory: CMA, run-time huge pages, offlining, compaction ----

  /**
   * cmaAlloc - allocate @bytes (a number, or a size such as '16MiB') of physically contiguous
   * memory from CMA and keep it, as a camera or display driver's dma_alloc_coherent does
   * (cma_alloc): movable pages the buddy lent to the area are migrated away first. Counts
   * cma_alloc_success or cma_alloc_fail.
   *
   * Return: true when allocated; false when no CMA area has room or every candidate range kept a
   * busy page (a pinned or unmovable one: cma_alloc's -EBUSY). Released by cmaRelease(). Throws
   * RangeError for a size that is not positive.
   */
  cmaAlloc(bytes: number | string): boolean {
    const n = parseMemorySize(bytes);
    if (!(n > 0)) throw new RangeError(`cmaAlloc: size must be positive, got ${String(bytes)}`);
    const r = cmaAllocBytes(this.mmCore, n);
    if (!r.ok || r.area === undefined || r.pfn === undefined) return false;
    this.cmaHeld.push({ area: r.area, pfn: r.pfn, nrPages: r.nrPages });
    if (!this.cmaRefSourceAdded) {
      this.cmaRefSourceAdded = true;
      // The driver's reference on each page it holds.
      this.addRefSource((refs) => {
        for (const a of this.cmaHeld)
          for (let p = a.pfn; p < a.pfn + a.nrPages; p++) refs.set(p, (refs.get(p) ?? 0) + 1);
      });
    }
    return true;
  }

  /**
   * cmaRelease - give back CMA allocations cmaAlloc made (cma_release): the one at @index (0 = the
   * oldest still held), or all of them when @index is omitted.
   *
   * Return: the number of allocations released (0 when none is held at @index).
   */
  cmaRelease(index?: number): number {
    if (index !== undefined && !(Number.isInteger(index) && index >= 0)) return 0;
    const take = index === undefined ? this.cmaHeld.splice(0) : this.cmaHeld.splice(index, 1);
    for (const a of take) cmaReleaseRange(this.phys, a.area, a.pfn, a.nrPages);
    return take.length;
  }

  /**
   * allocHugepage - grow the hugetlb pool of @size by one page assembled at run time, on @node or
   * on each node in turn (echo N+1 > nr_hugepages): a 2 MiB page by an order-9 allocation that may
   * compact, a 1 GiB page by alloc_contig_range over 1 GiB-aligned ranges of ZONE_NORMAL and
   * ZONE_DMA32. Sets up compaction (initCompaction) if nothing did yet.
   *
   * Return: true when the pool grew. Released by shrinking the pool (hugetlb.setNrHugepages).
   * Throws RangeError for a node that does not exist.
   */
  allocHugepage(size: HugepageSize, node?: number): boolean {
    initCompaction(this.mmCore);
    return allocHugetlbPoolPage(this.mmCore, size, node).ok;
  }

  /**
   * offlineMemory - take @bytes of node @node's memory, from byte offset @start of the node,
   * offline (echo offline > /sys/devices/system/memory/memoryN/state): both must be whole 128 MiB
   * memory blocks. Everything movable is migrated away (to other nodes when there are any). A
   * pinned page in the range keeps the kernel retrying; svasim gives up after @opts.timeoutNs of
   * simulated time (-ETIMEDOUT) or, without one, after memoryHotplugConfig().offlineGiveUpNs
   * (-EBUSY), logging "memory offlining [mem ...] failed due to ...".
   *
   * Return: 0 (offline, or already offline), -EINVAL (no such node, not block-aligned, beyond the
   * node, across zones), -EBUSY (an unmovable page, or no progress), -ETIMEDOUT.
   */
  offlineMemory(node: number, start: number, bytes: number, opts: { timeoutNs?: number } = {}): number {
    const nd = this.phys.nodes[node];
    const block = memoryHotplugConfig(this.mmCore).memoryBlockBytes;
    if (!nd || !Number.isInteger(start) || !Number.isInteger(bytes)) return -ERRNO.EINVAL;
    if (start < 0 || bytes <= 0 || start % block !== 0 || bytes % block !== 0) return -ERRNO.EINVAL;
    if ((start + bytes) / PAGE_SIZE > nd.spannedPages) return -ERRNO.EINVAL;
    return offlinePages(this.mmCore, nd.startPfn + start / PAGE_SIZE, bytes / PAGE_SIZE, {
      timeoutNs: opts.timeoutNs,
    });
  }

  /**
   * compactMemory - compact every zone of every node completely (echo 1 >
   * /proc/sys/vm/compact_memory). Pinned pages stay where they are; the work is charged to the
   * current task, if any.
   */
  compactMemory(): void {
    compactMemory(this.mmCore);
  }

  // ---- plugins, sysfs, syscalls ----

  /** plugin - the instance plugin `name` registered (throws if it is not loaded). */
  plugin<T>(name: string): T {
    const e = this.loaded.get(name);
    if (!e)
      throw new RangeError(
        `plugin '${name}' is not loaded (loaded: ${[...this.loaded.keys()].join(', ') || 'none'})`,
      );
    return e.instance as T;
  }

  /** Names of the loaded plugins, in load order. */
  pluginNames(): string[] {
    return [...this.loaded.keys()];
  }

  /** readSysfs - read a /sys attribute; throws SyscallError (syscall 'read') on -errno. */
  readSysfs(path: string): string {
    const r = this.devices.readSysfs(path);
    if (typeof r === 'number') throw new SyscallError(r, 'read', path);
    return r;
  }

  /** writeSysfs - write a /sys attribute; throws SyscallError (syscall 'write') on -errno. */
  writeSysfs(path: string, value: string | number): void {
    const r = this.devices.writeSysfs(path, String(value));
    if (r < 0) throw new SyscallError(r, 'write', path);
  }

  /** registerSyscall - add a system call processes reach with syscall(name, ...). 0 or -EEXIST/-EINVAL. */
  registerSyscall(name: string, handler: SyscallHandler): number {
    return this.syscalls.register(name, handler);
  }

  /** miscRegister - register a misc device (/dev/<name>). 0 or -errno. Released by miscDeregister. */
  miscRegister(misc: MiscDevice): number {
    return this.devices.miscRegister(misc);
  }

  /** miscDeregister - remove a misc device. */
  miscDeregister(misc: MiscDevice): number {
    return this.devices.miscDeregister(misc);
  }

  /** bootSummary - a human-readable description of the booted machine. */
  bootSummary(): string {
    const lines: string[] = [];
    lines.push(`svasim kernel: ${this.cpus} CPUs, seed ${this.options.seed}, forkCow ${this.forkCow}`);
    for (const z of this.phys.zoneInfo()) {
      if (z.spannedPages === 0) continue;
      lines.push(
        `  node ${z.nid} ${z.zone.padEnd(7)} ${formatBytes(z.spannedPages * 4096).padStart(9)} spanned, ` +
          `${formatBytes(z.freePages * 4096).padStart(9)} free` +
          (z.freeCmaPages ? ` (CMA ${formatBytes(z.freeCmaPages * 4096)})` : '') +
          `, watermarks min/low/high ${z.watermarkMin}/${z.watermarkLow}/${z.watermarkHigh} pages`,
      );
    }
    for (const size of ['2MiB', '1GiB'] as const) {
      const s = this.hugetlb.stats(size);
      if (s.nr) lines.push(`  hugetlb ${size}: ${s.nr} pages, ${s.free} free`);
    }
    lines.push(
      `  sysctl: ${Object.entries(this.sysctl)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
    lines.push(`  plugins: ${this.pluginNames().join(', ') || 'none'}`);
    return lines.join('\n');
  }
}
