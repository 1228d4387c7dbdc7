import { PAGE_SIZE } from '@svasim/kernel';

/** One virtual page as the model sees it. */
export interface PageModel {
  /** PROT_* bits of the page's VMA. */
  prot: number;
  /** Shared-memory object id (0 for private anonymous memory). */
  obj: number;
  /** Page index inside the shared object. */
  objIdx: number;
  locked: boolean;
  dontfork: boolean;
  wipeonfork: boolean;
  /** Bytes of a private page (undefined = still zero). */
  data?: Uint8Array;
}

/** ProcModel - a process: its pages by address and its RLIMIT_MEMLOCK in pages. */
export interface ProcModel {
  pages: Map<number, PageModel>;
  memlockPages: number;
}

/**
 * MmModel - what a correct kernel must give back: every process's mapped pages with their
 * protection, lock and fork flags, and the bytes last written (private pages per process,
 * shared pages per shared object). Deliberately much simpler than the kernel: no VMAs, no page
 * tables, no reference counts.
 */
export class MmModel {
  procs: Array<ProcModel | null> = [];
  readonly objects = new Map<number, Map<number, Uint8Array>>();
  private nextObj = 1;

  newObject(): number {
    const id = this.nextObj++;
    this.objects.set(id, new Map());
    return id;
  }

  /**
   * forked - the process in `parent` forked into `child` (called after the pages are copied).
   * A hook for models that track more per process than memory (open files, queues).
   */
  forked(_parent: number, _child: number): void {}

  /** exited - the process in `slot` exited (called after its slot is cleared). */
  exited(_slot: number): void {}

  /** Live process slots. */
  live(): number[] {
    const out: number[] = [];
    this.procs.forEach((p, i) => p && out.push(i));
    return out;
  }

  /** bytes - the current content of a page (a fresh zero page when never written). */
  bytes(page: PageModel): Uint8Array {
    if (page.obj) return this.objects.get(page.obj)!.get(page.objIdx) ?? new Uint8Array(PAGE_SIZE);
    return page.data ?? new Uint8Array(PAGE_SIZE);
  }

  /** writable - the array to store into for a page. */
  writable(page: PageModel): Uint8Array {
    if (page.obj) {
      const o = this.objects.get(page.obj)!;
      let d = o.get(page.objIdx);
      if (!d) o.set(page.objIdx, (d = new Uint8Array(PAGE_SIZE)));
      return d;
    }
    return (page.data ??= new Uint8Array(PAGE_SIZE));
  }

  /** lockedPages - VmLck of a process in pages. */
  lockedPages(p: ProcModel): number {
    let n = 0;
    for (const pg of p.pages.values()) if (pg.locked) n++;
    return n;
  }

  /**
   * mappedPrefix - the addresses of [va, va + n pages) that are mapped without a gap from `va`,
   * i.e. what the kernel's VMA-by-VMA loops (mprotect, mlock) reach before a hole stops them.
   */
  mappedPrefix(p: ProcModel, va: number, n: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = va + i * PAGE_SIZE;
      if (!p.pages.has(a)) break;
      out.push(a);
    }
    return out;
  }
}
