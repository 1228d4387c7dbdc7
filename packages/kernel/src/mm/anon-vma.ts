import type { VmAreaStruct } from './vma';

/**
 * AnonVma - the reverse-map group of anonymous pages (struct anon_vma, simplified): the VMAs
 * that may map a page whose `mapping` names this group. A forked child's VMA joins its parent's
 * group, so a walk finds every process sharing a COW page; pages keep their virtual page number
 * in `index`, and fork preserves addresses, so the walk needs no offset arithmetic.
 */
export class AnonVma {
  readonly vmas = new Set<VmAreaStruct>();
  constructor(readonly id: number) {}
}

/** AnonVmaRegistry - anon_vma ids per kernel (page `mapping` = id + 1). */
export class AnonVmaRegistry {
  private readonly groups = new Map<number, AnonVma>();
  private nextId = 1;

  /** anonVmaPrepare - give `vma` a group if it has none (first anonymous fault). */
  prepare(vma: VmAreaStruct): AnonVma {
    if (vma.anonVma !== 0) return this.groups.get(vma.anonVma) as AnonVma;
    const g = new AnonVma(this.nextId++);
    this.groups.set(g.id, g);
    g.vmas.add(vma);
    vma.anonVma = g.id;
    return g;
  }

  /** get - the group with id `id`, or undefined once every VMA left it. */
  get(id: number): AnonVma | undefined {
    return this.groups.get(id);
  }

  /** link - `vma` (a split half or a fork child) joins group `id` (anon_vma_clone). */
  link(vma: VmAreaStruct, id: number): void {
    vma.anonVma = id;
    if (id === 0) return;
    this.groups.get(id)?.vmas.add(vma);
  }

  /** unlink - `vma` leaves its group (unlink_anon_vmas); an empty group is freed. */
  unlink(vma: VmAreaStruct): void {
    const g = this.groups.get(vma.anonVma);
    if (!g) return;
    g.vmas.delete(vma);
    if (g.vmas.size === 0) this.groups.delete(g.id);
  }

  /** Number of live groups (leak checking). */
  get size(): number {
    return this.groups.size;
  }
}
