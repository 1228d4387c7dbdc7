import type { EventCallback } from './types';

/** Slots are addressed by the low 24 bits of an id: at most 16,777,216 events pending at once. */
const SLOT_LIMIT = 1 << 24;
/** Generations use the remaining 29 bits of a safe integer (2^53 / 2^24). */
const GEN_LIMIT = 2 ** 29;
/** Initial capacity of every array; small because most models keep few events pending. */
const INITIAL_CAPACITY = 64;

/**
 * EventQueue - the pending-event set of the simulator: a binary min-heap ordered by (time, seq).
 *
 * Every event lives in a slot (an index into parallel arrays: callback, argument, sequence number,
 * heap position, generation); the heap itself is two typed arrays (time, slot) indexed by heap
 * position. Scheduling and firing an event therefore allocate nothing: slots are recycled through a
 * free stack and the arrays only ever grow by doubling.
 *
 * Ties are broken by a sequence number that increases with every push, because a binary heap is
 * not stable and equal-time events must fire in the order they were scheduled for runs to be
 * reproducible.
 *
 * Event ids encode (generation, slot) as `generation * SLOT_LIMIT + slot`. A slot's generation is
 * bumped every time it is released, so the id of a fired or cancelled event never matches the
 * slot's next occupant; a slot whose generation would overflow the 53-bit id space is retired
 * instead of reused, which keeps the check exact for any run length.
 */
export class EventQueue {
  /** Time of the event at each heap position. */
  private heapTime = new Float64Array(INITIAL_CAPACITY);
  /** Slot of the event at each heap position. */
  private heapSlot = new Int32Array(INITIAL_CAPACITY);
  /** Sequence number of the event occupying each slot (Float64: may exceed 2^32 in long runs). */
  private slotSeq = new Float64Array(INITIAL_CAPACITY);
  /** Heap position of each slot's event, -1 when the slot is free. */
  private slotPos = new Int32Array(INITIAL_CAPACITY).fill(-1);
  /** Generation of each slot: the high part of the ids it hands out. Starts at 1 so no id is 0. */
  private slotGen = new Int32Array(INITIAL_CAPACITY).fill(1);
  private slotFn: Array<EventCallback | null> = [];
  private slotArg: unknown[] = [];
  /** Stack of released slots, reused LIFO so the working set stays small and cache-hot. */
  private freeSlots = new Int32Array(INITIAL_CAPACITY);
  private freeTop = 0;
  /** Slots handed out so far (the high-water mark, retired slots included). */
  private slotCount = 0;
  private slotCapacity = INITIAL_CAPACITY;
  private heapCapacity = INITIAL_CAPACITY;
  private heapSize = 0;
  private nextSeq = 0;

  /** Time of the event most recently returned by pop(). */
  poppedTime = 0;
  /** Argument of the event most recently returned by pop(). */
  poppedArg: unknown = undefined;

  constructor() {
    for (let i = 0; i < INITIAL_CAPACITY; i++) {
      this.slotFn.push(null);
      this.slotArg.push(undefined);
    }
  }

  /** Number of pending events. */
  get size(): number {
    return this.heapSize;
  }

  /**
   * push - add an event.
   * @timeNs: when it fires; the caller (the scheduler) has validated it.
   * @fn: the callback, called as fn(arg).
   * @arg: passed to @fn.
   *
   * Return: the event id (a positive integer), valid for cancel() until the event fires or is
   * cancelled. The slot it occupies is released by pop() or cancel(). Throws RangeError when
   * 16,777,216 events are already pending.
   */
  push(timeNs: number, fn: EventCallback, arg: unknown): number {
    let slot: number;
    if (this.freeTop > 0) {
      slot = this.freeSlots[--this.freeTop];
    } else {
      slot = this.slotCount;
      if (slot >= SLOT_LIMIT) throw new RangeError(`event queue: more than ${SLOT_LIMIT} pending events`);
      if (slot >= this.slotCapacity) this.growSlots();
      this.slotCount = slot + 1;
    }
    this.slotSeq[slot] = this.nextSeq++;
    this.slotFn[slot] = fn;
    this.slotArg[slot] = arg;

    let i = this.heapSize++;
    if (i >= this.heapCapacity) this.growHeap();
    const heapTime = this.heapTime;
    const heapSlot = this.heapSlot;
    const slotPos = this.slotPos;
    // The new event has the highest sequence number, so an equal-time parent already precedes it
    // and sift-up needs no sequence comparison.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const parentTime = heapTime[parent];
      if (parentTime <= timeNs) break;
      const parentSlot = heapSlot[parent];
      heapTime[i] = parentTime;
      heapSlot[i] = parentSlot;
      slotPos[parentSlot] = i;
      i = parent;
    }
    heapTime[i] = timeNs;
    heapSlot[i] = slot;
    slotPos[slot] = i;
    return this.slotGen[slot] * SLOT_LIMIT + slot;
  }

  /** Time of the earliest pending event, or Infinity when none is pending. */
  peekTime(): number {
    return this.heapSize > 0 ? this.heapTime[0] : Infinity;
  }

  /**
   * pop - remove the earliest event.
   *
   * Return: its callback, or null when the queue is empty. Its time and argument are left in
   * poppedTime and poppedArg (fields rather than a returned object, so popping allocates nothing).
   */
  pop(): EventCallback | null {
    if (this.heapSize === 0) return null;
    const slot = this.heapSlot[0];
    const fn = this.slotFn[slot];
    this.poppedTime = this.heapTime[0];
    this.poppedArg = this.slotArg[slot];
    this.release(slot);
    const last = --this.heapSize;
    if (last > 0) this.siftDown(0, this.heapTime[last], this.heapSlot[last]);
    return fn;
  }

  /**
   * cancel - remove a pending event.
   * @id: what push() returned.
   *
   * Return: true when the event was pending and is now removed; false when it already fired, was
   * cancelled, or @id was never issued.
   */
  cancel(id: number): boolean {
    if (!Number.isSafeInteger(id) || id < SLOT_LIMIT) return false;
    const slot = id % SLOT_LIMIT;
    if (slot >= this.slotCount || this.slotGen[slot] !== (id - slot) / SLOT_LIMIT) return false;
    const pos = this.slotPos[slot];
    if (pos < 0) return false;
    this.release(slot);
    const last = --this.heapSize;
    if (pos === last) return true;
    // Refill the hole with the last leaf, which may belong above or below it.
    const time = this.heapTime[last];
    const moved = this.heapSlot[last];
    if (pos > 0 && this.before(time, moved, (pos - 1) >> 1)) this.siftUp(pos, time, moved);
    else this.siftDown(pos, time, moved);
    return true;
  }

  /** True when the event (time, slot) must fire before the one at heap position @pos. */
  private before(time: number, slot: number, pos: number): boolean {
    const other = this.heapTime[pos];
    return time < other || (time === other && this.slotSeq[slot] < this.slotSeq[this.heapSlot[pos]]);
  }

  private siftUp(i: number, time: number, slot: number): void {
    const heapTime = this.heapTime;
    const heapSlot = this.heapSlot;
    const slotPos = this.slotPos;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(time, slot, parent)) break;
      const parentSlot = heapSlot[parent];
      heapTime[i] = heapTime[parent];
      heapSlot[i] = parentSlot;
      slotPos[parentSlot] = i;
      i = parent;
    }
    heapTime[i] = time;
    heapSlot[i] = slot;
    slotPos[slot] = i;
  }

  private siftDown(i: number, time: number, slot: number): void {
    const heapTime = this.heapTime;
    const heapSlot = this.heapSlot;
    const slotPos = this.slotPos;
    const slotSeq = this.slotSeq;
    const seq = slotSeq[slot];
    const n = this.heapSize;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      let childTime = heapTime[child];
      let childSlot = heapSlot[child];
      const right = child + 1;
      if (right < n) {
        const rightTime = heapTime[right];
        const rightSlot = heapSlot[right];
        if (rightTime < childTime || (rightTime === childTime && slotSeq[rightSlot] < slotSeq[childSlot])) {
          child = right;
          childTime = rightTime;
          childSlot = rightSlot;
        }
      }
      if (childTime > time || (childTime === time && slotSeq[childSlot] > seq)) break;
      heapTime[i] = childTime;
      heapSlot[i] = childSlot;
      slotPos[childSlot] = i;
      i = child;
    }
    heapTime[i] = time;
    heapSlot[i] = slot;
    slotPos[slot] = i;
  }

  /** Free a slot: drop its references (so fired events' arguments can be collected) and recycle it. */
  private release(slot: number): void {
    this.slotFn[slot] = null;
    this.slotArg[slot] = undefined;
    this.slotPos[slot] = -1;
    const gen = this.slotGen[slot] + 1;
    this.slotGen[slot] = gen;
    if (gen >= GEN_LIMIT) return; // retired: its ids could no longer be told apart
    if (this.freeTop >= this.freeSlots.length)
      this.freeSlots = grow(this.freeSlots, this.freeSlots.length * 2);
    this.freeSlots[this.freeTop++] = slot;
  }

  private growHeap(): void {
    const capacity = this.heapCapacity * 2;
    this.heapTime = grow(this.heapTime, capacity);
    this.heapSlot = grow(this.heapSlot, capacity);
    this.heapCapacity = capacity;
  }

  private growSlots(): void {
    const old = this.slotCapacity;
    const capacity = old * 2;
    this.slotSeq = grow(this.slotSeq, capacity);
    this.slotPos = grow(this.slotPos, capacity);
    this.slotPos.fill(-1, old);
    this.slotGen = grow(this.slotGen, capacity);
    this.slotGen.fill(1, old);
    for (let i = old; i < capacity; i++) {
      this.slotFn.push(null);
      this.slotArg.push(undefined);
    }
    this.slotCapacity = capacity;
  }
}

/** A copy of @array with room for @capacity elements. */
function grow<A extends Float64Array | Int32Array>(array: A, capacity: number): A {
  const bigger = new (array.constructor as new (n: number) => A)(capacity);
  bigger.set(array);
  return bigger;
}
