import { ERRNO, SyscallError } from '../uapi/errno';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../uapi/mman';
import { O_RDWR } from '../uapi/fcntl';
import type { CapName } from '../uapi/capability';
import { FdTable } from '../fs/fdtable';
import { accessUserMemory } from '../mm/access';
import { exitMmap } from '../mm/exit-mmap';
import { dupMmap, type ForkCowMode } from '../mm/fork';
import type { MmCaller } from '../mm/mm-caller';
import type { MmCore } from '../mm/mm-core';
import { MmStruct } from '../mm/mm-struct';
import { pagemapEntry, type PagemapEntry } from '../mm/pagemap';
import type { Task, TaskRunner } from '../sim/task';
import { Cred } from './cred';
import type { PidAllocator } from './pid';
import type { ProcessContext } from './process-context';
import { RLIMIT_MEMLOCK, RLIMIT_NOFILE, Rlimits } from './rlimit';
import type { SyscallTable } from './syscall-table';

/** What a process needs from the kernel that runs it. */
export interface ProcessHost {
  readonly mmCore: MmCore;
  readonly syscalls: SyscallTable;
  readonly pids: PidAllocator;
  readonly tasks: TaskRunner;
  readonly forkCow: ForkCowMode;
  /** Make `p` the process whose work is being charged (null when the call ends). */
  setCurrent(p: Process | null): Process | null;
  /** A process was created (spawn or fork). */
  adopt(p: Process): void;
  /** A process exited. */
  reap(p: Process): void;
}

/** Options of Kernel.spawn. */
export interface SpawnOptions {
  name?: string;
  /** uid 0 (the default) has every capability. */
  uid?: number;
  /** Capability names such as 'CAP_IPC_LOCK' (uid 0 has all of them anyway). */
  caps?: string[];
  /** RLIMIT_MEMLOCK in bytes (default 8 MiB; Infinity = unlimited) and RLIMIT_NOFILE. */
  rlimits?: { memlock?: number; nofile?: number };
  /** Preferred NUMA node for this process's memory. */
  node?: number;
}

/** Options of Process.mmap (defaults: PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS). */
export interface MmapOptions {
  addr?: number;
  prot?: number;
  flags?: number;
  fd?: number;
  offset?: number;
}

/** ProcessStatus - /proc/PID/status memory lines, in bytes. */
export interface ProcessStatus {
  vmRss: number;
  vmLck: number;
  vmPin: number;
  vmSize: number;
  /** Swapped-out anonymous memory (VmSwap). */
  vmSwap: number;
}

/**
 * Process - a simulated user-space process: credentials, limits, open files and an address
 * space, driven through system calls. Every failing call throws SyscallError with the kernel's
 * errno; CPU accesses (read/write/touch) that the kernel would answer with SIGSEGV or SIGBUS
 * throw EFAULT with syscall 'access' and leave the process usable.
 * Created by Kernel.spawn or fork(); released by exit().
 */
export class Process implements ProcessContext {
  readonly pid: number;
  readonly name: string;
  readonly cred: Cred;
  readonly rlimits: Rlimits;
  readonly files: FdTable;
  readonly mm: MmStruct;
  readonly parent: Process | null;
  /** 'running' until exit(). */
  state: 'running' | 'exited' = 'running';
  exitCode = 0;
  /** Simulated CPU time this process was charged, in ns. */
  cpuNs = 0;
  /** The task running this process's workload, if one is bound (run()). */
  task: Task | null = null;

  /**
   * @internal use Kernel.spawn or fork().
   * @param host the kernel running this process (public so that user-space libraries can find
   *   the kernel of a process they are handed, as a real library finds it through its syscalls).
   */
  constructor(
    readonly host: ProcessHost,
    init: {
      pid: number;
      name: string;
      cred: Cred;
      rlimits: Rlimits;
      files?: FdTable;
      mm?: MmStruct;
      parent?: Process;
    },
  ) {
    this.pid = init.pid;
    this.name = init.name;
    this.cred = init.cred;
    this.rlimits = init.rlimits;
    const rl = this.rlimits;
    this.files = init.files ?? new FdTable(() => rl.cur(RLIMIT_NOFILE));
    this.mm = init.mm ?? new MmStruct(host.mmCore);
    this.mm.ownerPid = this.pid;
    this.parent = init.parent ?? null;
  }

  /** create - build a new process for Kernel.spawn (validates the options; RangeError on bad ones). */
  static create(host: ProcessHost, opts: SpawnOptions = {}): Process {
    const uid = opts.uid ?? 0;
    if (!Number.isInteger(uid) || uid < 0) throw new RangeError(`spawn: bad uid ${String(opts.uid)}`);
    const cred = Cred.create({ uid, caps: opts.caps as CapName[] | undefined });
    const rlimits = new Rlimits();
    const memlock = opts.rlimits?.memlock;
    if (memlock !== undefined) {
      if (!(memlock >= 0)) throw new RangeError(`spawn: bad rlimits.memlock ${String(memlock)}`);
      rlimits.set(RLIMIT_MEMLOCK, memlock, Math.max(memlock, rlimits.get(RLIMIT_MEMLOCK).max));
    }
    const nofile = opts.rlimits?.nofile;
    if (nofile !== undefined) {
      if (!Number.isInteger(nofile) || nofile < 0)
        throw new RangeError(`spawn: bad rlimits.nofile ${String(nofile)}`);
      rlimits.set(RLIMIT_NOFILE, nofile, Math.max(nofile, rlimits.get(RLIMIT_NOFILE).max));
    }
    // Validate everything before taking a pid and creating the mm, so a refused spawn leaves
    // neither a used pid nor an orphaned address space behind.
    const node = opts.node ?? 0;
    if (!Number.isInteger(node) || node < 0 || node >= host.mmCore.alloc.nodes.length)
      throw new RangeError(`spawn: no NUMA node ${String(opts.node)}`);
    const pid = host.pids.allocPid();
    if (pid < 0) throw new SyscallError(pid, 'spawn');
    const p = new Process(host, { pid, name: opts.name ?? `proc${pid}`, cred, rlimits });
    p.mm.node = node;
    host.adopt(p);
    return p;
  }

  /** mmCaller - CAP_IPC_LOCK and RLIMIT_MEMLOCK for mm's checks. */
  mmCaller(): MmCaller {
    return {
      ipcLock: this.cred.capable('CAP_IPC_LOCK'),
      memlockLimit: this.rlimits.cur(RLIMIT_MEMLOCK),
      sysRawio: this.cred.capable('CAP_SYS_RAWIO'),
    };
  }

  /** charge - account simulated CPU time to this process (and its task, which then runs later). */
  charge(ns: number): void {
    this.cpuNs += ns;
    this.task?.charge(ns);
  }

  /**
   * syscall - invoke a system call by name (built-in or added by a plugin, e.g. 'mempinfd').
   * Returns its non-negative result; a negative errno is thrown as SyscallError (ENOSYS for an
   * unknown name).
   */
  syscall(name: string, ...args: unknown[]): number {
    this.assertAlive(name);
    const prev = this.host.setCurrent(this);
    try {
      this.charge(this.host.mmCore.costs.syscall);
      const ret = this.host.syscalls.invoke(this, name, args);
      if (ret < 0) throw new SyscallError(ret, name);
      return ret;
    } finally {
      this.host.setCurrent(prev);
    }
  }

  /** mmap - map memory; returns the address. See MmapOptions for the defaults. Released by munmap or exit. */
  mmap(length: number, opts: MmapOptions = {}): number {
    return this.syscall(
      'mmap',
      opts.addr ?? 0,
      length,
      opts.prot ?? PROT_READ | PROT_WRITE,
      opts.flags ?? MAP_PRIVATE | MAP_ANONYMOUS,
      opts.fd ?? -1,
      opts.offset ?? 0,
    );
  }

  /** munmap - remove mappings in [addr, addr + length). */
  munmap(addr: number, length: number): void {
    this.syscall('munmap', addr, length);
  }

  /** mprotect - change protection of [addr, addr + length). */
  mprotect(addr: number, length: number, prot: number): void {
    this.syscall('mprotect', addr, length, prot);
  }

  /** madvise - advise about [addr, addr + length) (MADV_*). */
  madvise(addr: number, length: number, advice: number): void {
    this.syscall('madvise', addr, length, advice);
  }

  /** mlock - lock and fault in [addr, addr + length). Released by munlock, munmap or exit. */
  mlock(addr: number, length: number): void {
    this.syscall('mlock', addr, length);
  }

  /** munlock - unlock [addr, addr + length). */
  munlock(addr: number, length: number): void {
    this.syscall('munlock', addr, length);
  }

  /** mlockall - lock current and/or future mappings (MCL_*). Released by munlockall. */
  mlockall(flags: number): void {
    this.syscall('mlockall', flags);
  }

  /** munlockall - unlock everything. */
  munlockall(): void {
    this.syscall('munlockall');
  }

  /** open - open a path (a device node); returns the fd. Released by close. */
  open(path: string, flags: number = O_RDWR): number {
    return this.syscall('open', path, flags);
  }

  /** chmod - set a node's permission bits (owner or CAP_FOWNER; EPERM otherwise). */
  chmod(path: string, mode: number): void {
    this.syscall('chmod', path, mode);
  }

  /** close - close an fd. */
  close(fd: number): void {
    this.syscall('close', fd);
  }

  /** ioctl - device control; `arg` is a user address of the struct or a plain object of its fields. */
  ioctl(fd: number, cmd: number, arg?: unknown): number {
    return this.syscall('ioctl', fd, cmd, arg);
  }

  /** poll - the ready mask of one fd (POLLNVAL for a bad fd). */
  poll(fd: number): number {
    return this.syscall('poll', fd);
  }

  /** write - store `bytes` at `addr`, faulting as the CPU would. */
  write(addr: number, bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array))
      throw new SyscallError(-ERRNO.EINVAL, 'access', 'bytes must be a Uint8Array');
    this.access(addr, bytes.length, true, bytes);
  }

  /** read - load `length` bytes at `addr`, faulting as the CPU would. */
  read(addr: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(length) || length < 0)
      throw new SyscallError(-ERRNO.EINVAL, 'access', 'bad length');
    // More bytes than every VMA together spans cannot all be readable: take the same faults
    // without a buffer (it ends in EFAULT) instead of allocating one that size.
    if (length > this.mm.totalVm * PAGE_SIZE) this.access(addr, length, false, null);
    const out = new Uint8Array(length);
    this.access(addr, length, false, out);
    return out;
  }

  /** touch - access every page of [addr, addr + length) without changing its bytes (write: a store fault). */
  touch(addr: number, length: number, opts: { write?: boolean } = {}): void {
    if (!Number.isSafeInteger(length) || length < 0)
      throw new SyscallError(-ERRNO.EINVAL, 'access', 'bad length');
    this.access(addr, length, opts.write ?? false, null);
  }

  private access(addr: number, length: number, write: boolean, buf: Uint8Array | null): void {
    this.assertAlive('access');
    const prev = this.host.setCurrent(this);
    try {
      const ret = accessUserMemory(this.mm, addr, length, write, buf);
      if (ret < 0)
        throw new SyscallError(
          ret,
          'access',
          `${write ? 'write' : 'read'} at 0x${Number(addr).toString(16)}`,
        );
    } finally {
      this.host.setCurrent(prev);
    }
  }

  /**
   * fork - a child process with a copy-on-write copy of this address space, the same open
   * files and copies of the credentials and limits. Throws ENOMEM (no memory for early COW
   * copies) or EAGAIN (no pid). Released by the child's exit().
   */
  fork(): Process {
    this.assertAlive('fork');
    const prev = this.host.setCurrent(this);
    try {
      this.charge(this.host.mmCore.costs.syscall);
      const pid = this.host.pids.allocPid();
      if (pid < 0) throw new SyscallError(pid, 'fork');
      const mm = dupMmap(this.mm, this.host.forkCow);
      if (typeof mm === 'number') {
        this.host.pids.freePid(pid);
        throw new SyscallError(mm, 'fork');
      }
      const rlimits = this.rlimits.clone();
      const child = new Process(this.host, {
        pid,
        name: this.name,
        cred: this.cred.clone(),
        rlimits,
        files: this.files.dupForFork(() => rlimits.cur(RLIMIT_NOFILE)),
        mm,
        parent: this,
      });
      this.host.adopt(child);
      return child;
    } finally {
      this.host.setCurrent(prev);
    }
  }

  /**
   * exit - end the process: close every fd (releasing devices), then tear down the address
   * space, freeing everything it alone held. Calling it twice is harmless.
   */
  exit(code = 0): void {
    if (this.state === 'exited') return;
    const prev = this.host.setCurrent(this);
    try {
      this.exitCode = code;
      this.files.closeAll(this);
      if (--this.mm.users === 0) exitMmap(this.mm);
      this.state = 'exited';
      this.host.pids.freePid(this.pid);
      this.host.reap(this);
    } finally {
      this.host.setCurrent(prev);
    }
  }

  /** pagemap - inspect the page at `addr` without faulting it in (ESRCH once exited, EINVAL for a bad address). */
  pagemap(addr: number): PagemapEntry {
    this.assertAlive('pagemap');
    if (!Number.isSafeInteger(addr) || addr < 0) throw new SyscallError(-ERRNO.EINVAL, 'pagemap');
    return pagemapEntry(this.mm, addr);
  }

  /** status - VmRSS, VmLck, VmPin, VmSize and VmSwap in bytes, as /proc/PID/status reports them (ESRCH once exited). */
  status(): ProcessStatus {
    this.assertAlive('status');
    const m = this.mm;
    return {
      vmRss: m.rssBytes,
      vmLck: m.lockedVm * 4096,
      vmPin: m.pinnedVm * 4096,
      vmSize: m.totalVm * 4096,
      vmSwap: m.swapEnts * 4096,
    };
  }

  /**
   * run - start an async workload task bound to this process: CPU time the process is charged
   * while the task runs delays the task's next sleep. Returns the task (await task.done).
   */
  run(body: (task: Task) => Promise<void>, name = this.name): Task {
    const t = this.host.tasks.spawn(name, async (task) => {
      this.task = task;
      try {
        await body(task);
      } finally {
        if (this.task === task) this.task = null;
      }
    });
    return t;
  }

  private assertAlive(call: string): void {
    if (this.state !== 'running')
      throw new SyscallError(-ERRNO.ESRCH, call, `process ${this.pid} has exited`);
  }
}
