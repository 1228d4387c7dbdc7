import { PinModel } from './pin-model';

/**
 * One opened accelerator queue (one open file of the device) as the model sees it. fork copies
 * the fd table, so several processes may hold the file; the queue is released (its hardware queue
 * free again) when the last of them closes it or exits. Only the opener submits: uacce maps its
 * regions VM_DONTCOPY, so a child holds the file but has no rings.
 */
export interface QueueModel {
  id: number;
  /** The fd number in every process holding the file, by slot. */
  holders: Map<number, number>;
  /** The opener's slot while it lives and keeps the file open; null after. */
  owner: number | null;
  /** Where the opener mapped the doorbell page and the rings. */
  mmio: number;
  dus: number;
  dusSize: number;
  sqDepth: number;
  /** The opener's free-running submission tail and last tag. */
  tail: number;
  tag: number;
}

/**
 * DeviceModel - PinModel plus the accelerator: the queues opened on it and whether it has been
 * hot-removed. The device's effect on memory is modelled by the commands (a copy is a read of
 * the source and a write of the destination through the model's pages), so pins, forks and
 * shared pages need nothing new here.
 */
export class DeviceModel extends PinModel {
  readonly queues: QueueModel[] = [];
  /** The device went away (uacce_remove): opens find no node, rings are unmapped. */
  removed = false;
  private nextQueue = 1;

  constructor(readonly nrHwQueues: number) {
    super();
  }

  addQueue(q: Omit<QueueModel, 'id'>): QueueModel {
    const out = { ...q, id: this.nextQueue++ };
    this.queues.push(out);
    return out;
  }

  /** Hardware queues in use: files still held by someone (and the device still there). */
  busyQueues(): number {
    return this.removed ? 0 : this.queues.length;
  }

  /** The queues `slot` holds a file of. */
  heldBy(slot: number): QueueModel[] {
    return this.queues.filter((q) => q.holders.has(slot));
  }

  /** One holder closed its fd; the queue goes when nobody holds it. */
  drop(q: QueueModel, slot: number): void {
    q.holders.delete(slot);
    if (q.owner === slot) q.owner = null;
    if (q.holders.size === 0) this.queues.splice(this.queues.indexOf(q), 1);
  }

  override forked(parent: number, child: number): void {
    for (const q of this.queues) {
      const fd = q.holders.get(parent);
      if (fd !== undefined) q.holders.set(child, fd);
    }
  }

  override exited(slot: number): void {
    for (const q of this.heldBy(slot)) this.drop(q, slot);
  }
}
