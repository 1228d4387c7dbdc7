import { CAPS, CAP_LAST_CAP, type CapName } from '../uapi/capability';

/** Highest valid uid/gid: (uid_t)-1 is the "no change" marker of setresuid, so it is not a real id. */
const MAX_ID = 0xfffffffe;

/** A bitmask with every capability bit 0..CAP_LAST_CAP set (CAP_FULL_SET). */
const CAP_FULL_SET = (1n << BigInt(CAP_LAST_CAP + 1)) - 1n;

/** Options of {@link Cred.create}. */
export interface CredOptions {
  /** Real and effective user id (default 0, root). */
  uid?: number;
  /** Real and effective group id (default: the uid, as a per-user group). */
  gid?: number;
  /**
   * Capability names such as 'CAP_IPC_LOCK' held by a non-root user. Ignored for uid 0, which
   * holds every capability (the kernel's root gets CAP_FULL_SET at exec).
   */
  caps?: readonly string[];
}

function checkId(what: string, id: number): number {
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new RangeError(`Cred: invalid ${what} ${id}`);
  return id;
}

function capBit(cap: CapName | number): bigint {
  const nr = typeof cap === 'number' ? cap : CAPS[cap as CapName];
  // cap_valid(): an out-of-range capability is a caller bug, not a permission answer.
  if (nr === undefined || !Number.isInteger(nr) || nr < 0 || nr > CAP_LAST_CAP) {
    throw new RangeError(`capable: unknown capability ${String(cap)}`);
  }
  return 1n << BigInt(nr);
}

/**
 * Cred - a task's credentials (struct cred): ids and the effective capability set.
 *
 * Immutable once made, as the kernel's committed creds are: a change makes a new Cred
 * (prepare_creds/commit_creds), so a Cred may be shared by a parent and its children.
 * The effective set is a bigint because capability numbers reach 40.
 */
export class Cred {
  /** Real user id. */
  readonly uid: number;
  /** Real group id. */
  readonly gid: number;
  /** Effective user id: the one permission checks use (also the fsuid here). */
  readonly euid: number;
  /** Effective group id. */
  readonly egid: number;
  /** Effective capability set (cap_effective), bit n = capability n. */
  readonly capEffective: bigint;

  /**
   * Build credentials from explicit fields. Prefer {@link Cred.create}.
   *
   * Throws RangeError for an id that is not an integer in [0, 2^32 - 2] (a simulator bug).
   */
  constructor(fields: { uid: number; gid: number; euid?: number; egid?: number; capEffective: bigint }) {
    this.uid = checkId('uid', fields.uid);
    this.gid = checkId('gid', fields.gid);
    this.euid = checkId('euid', fields.euid ?? fields.uid);
    this.egid = checkId('egid', fields.egid ?? fields.gid);
    this.capEffective = fields.capEffective & CAP_FULL_SET;
  }

  /**
   * Cred.create - credentials of a new process.
   *
   * uid 0 gets every capability; any other uid gets exactly `caps`.
   * Returns the Cred. Throws RangeError naming an unknown capability or an invalid id:
   * these come from scenario files and must fail loudly rather than silently drop a privilege.
   */
  static create(opts: CredOptions = {}): Cred {
    const uid = opts.uid ?? 0;
    const gid = opts.gid ?? uid;
    let caps = 0n;
    for (const name of opts.caps ?? []) {
      if (!Object.prototype.hasOwnProperty.call(CAPS, name)) {
        throw new RangeError(`Cred: unknown capability '${name}'`);
      }
      caps |= capBit(name as CapName);
    }
    return new Cred({ uid, gid, capEffective: uid === 0 ? CAP_FULL_SET : caps });
  }

  /**
   * capable - true if the effective set holds `cap` (a name such as 'CAP_IPC_LOCK' or its number).
   *
   * Throws RangeError for an unknown capability (the kernel's cap_valid() BUG).
   */
  capable(cap: CapName | number): boolean {
    return (this.capEffective & capBit(cap)) !== 0n;
  }

  /** The names of the capabilities held, in capability-number order (for /proc/PID/status-like output). */
  capNames(): CapName[] {
    return (Object.keys(CAPS) as CapName[]).filter((n) => this.capable(n));
  }

  /**
   * clone - a copy for a forked child (copy_creds). Creds are immutable, so the copy is only
   * needed to keep identity checks (===) meaningful per task.
   */
  clone(): Cred {
    return new Cred({
      uid: this.uid,
      gid: this.gid,
      euid: this.euid,
      egid: this.egid,
      capEffective: this.capEffective,
    });
  }
}

/** Every capability bit set (CAP_FULL_SET in include/linux/capability.h). */
export const CAP_FULL_SET_MASK = CAP_FULL_SET;
