import type { AddressSpace } from '../mm/address-space';
import { UACCE_MAX_REGION } from './constants';
import type { UacceDevice } from './device';
import type { UacceQfileRegion } from './ops';
import type { UacceSvaHandle } from './sva-ops';

/**
 * enum uacce_q_state - the life of a queue: ZOMBIE (not yet opened, or dead), INIT (opened,
 * hardware taken by get_queue), STARTED (running after START_Q).
 *
 * Transitions (checked by {@link UacceQueue.setState}):
 * - ZOMBIE -> INIT: open() succeeded (once per queue);
 * - INIT -> STARTED: START_Q after the driver's start_queue;
 * - STARTED -> INIT: stop (PUT_Q, and the first half of every put);
 * - INIT -> ZOMBIE: put (close, uacceRemove, PUT_Q with the legacy semantics). Final.
 */
export enum UacceQState {
  UACCE_Q_ZOMBIE = 0,
  UACCE_Q_INIT = 1,
  UACCE_Q_STARTED = 2,
}

/** UACCE_Q_ZOMBIE - see {@link UacceQState}. */
export const UACCE_Q_ZOMBIE = UacceQState.UACCE_Q_ZOMBIE;
/** UACCE_Q_INIT - see {@link UacceQState}. */
export const UACCE_Q_INIT = UacceQState.UACCE_Q_INIT;
/** UACCE_Q_STARTED - see {@link UacceQState}. */
export const UACCE_Q_STARTED = UacceQState.UACCE_Q_STARTED;

const STATE_NAMES: Record<UacceQState, string> = {
  [UacceQState.UACCE_Q_ZOMBIE]: 'ZOMBIE',
  [UacceQState.UACCE_Q_INIT]: 'INIT',
  [UacceQState.UACCE_Q_STARTED]: 'STARTED',
};

/** uacceQStateName - "ZOMBIE", "INIT" or "STARTED", for messages. */
export function uacceQStateName(state: UacceQState): string {
  return STATE_NAMES[state] ?? `state ${String(state)}`;
}

/**
 * UacceQueue - struct uacce_queue: the queue behind one open fd of a uacce device (one fd, one
 * queue). Made by open() of /dev/<name>-<id> (the File's privateData); released by the File's
 * release (last close, or exit).
 */
export class UacceQueue {
  /** The device this queue belongs to. */
  readonly uacce: UacceDevice;
  /** Driver data (q->priv), typically the hardware queue pair get_queue took. */
  priv: unknown = null;
  /** The mapped regions by type (q->qfrs): set by a successful mmap, cleared by its VMA's close. */
  readonly qfrs: Array<UacceQfileRegion | null> = new Array<UacceQfileRegion | null>(UACCE_MAX_REGION).fill(
    null,
  );
  /** The SVA bond's PASID, 0 without UACCE_DEV_SVA. */
  pasid = 0;
  /** The SVA bond (q->handle), null without SVA and after unbinding. */
  handle: UacceSvaHandle | null = null;
  /** The file's address_space (q->mapping): uacceRemove zaps every user mapping through it. */
  mapping: AddressSpace | null = null;
  private current: UacceQState = UacceQState.UACCE_Q_ZOMBIE;
  private opened = false;

  /** @internal made by the uacce open() only. */
  constructor(uacce: UacceDevice) {
    this.uacce = uacce;
  }

  /** The queue's state; changed only through {@link setState}. */
  get state(): UacceQState {
    return this.current;
  }

  /**
   * setState - move to `to` along an allowed edge of the state machine (see UacceQState).
   * Throws Error on any other transition: that is a bug in the simulator or a driver, never a
   * user error (user errors are answered with -errno before a transition is attempted).
   */
  setState(to: UacceQState): void {
    const from = this.current;
    let ok: boolean;
    switch (from) {
      case UacceQState.UACCE_Q_ZOMBIE:
        ok = to === UacceQState.UACCE_Q_INIT && !this.opened;
        break;
      case UacceQState.UACCE_Q_INIT:
        ok = to === UacceQState.UACCE_Q_STARTED || to === UacceQState.UACCE_Q_ZOMBIE;
        break;
      case UacceQState.UACCE_Q_STARTED:
        ok = to === UacceQState.UACCE_Q_INIT;
        break;
      default:
        ok = false;
    }
    if (!ok)
      throw new Error(
        `uacce ${this.uacce.name}: illegal queue transition ${uacceQStateName(from)} -> ${uacceQStateName(to)}`,
      );
    if (to === UacceQState.UACCE_Q_INIT && from === UacceQState.UACCE_Q_ZOMBIE) this.opened = true;
    this.current = to;
  }
}

/**
 * uacceQueueIsValid - the queue can still reach its driver (uacce_queue_is_valid): INIT or
 * STARTED. A ZOMBIE queue (put by PUT_Q's legacy semantics or by uacceRemove) answers ioctl and
 * mmap with -ENXIO and poll with 0.
 */
export function uacceQueueIsValid(q: UacceQueue): boolean {
  return q.state === UacceQState.UACCE_Q_INIT || q.state === UacceQState.UACCE_Q_STARTED;
}
