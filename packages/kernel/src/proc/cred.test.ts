import { describe, it, expect } from '@jest/globals';
import { CAPS, CAP_LAST_CAP } from '../uapi/capability';
import { Cred } from './cred';

describe('Cred', () => {
  it('gives uid 0 every capability', () => {
    const root = Cred.create();
    expect(root.uid).toBe(0);
    expect(root.gid).toBe(0);
    for (const name of Object.keys(CAPS)) expect(root.capable(name as keyof typeof CAPS)).toBe(true);
    expect(root.capable(CAP_LAST_CAP)).toBe(true);
    expect(root.capNames()).toHaveLength(CAP_LAST_CAP + 1);
  });

  it('gives other users only the listed capabilities', () => {
    const user = Cred.create({ uid: 1000, caps: ['CAP_IPC_LOCK', 'CAP_CHECKPOINT_RESTORE'] });
    expect(user.gid).toBe(1000);
    expect(user.euid).toBe(1000);
    expect(user.capable('CAP_IPC_LOCK')).toBe(true);
    expect(user.capable(CAPS.CAP_CHECKPOINT_RESTORE)).toBe(true);
    expect(user.capable('CAP_SYS_ADMIN')).toBe(false);
    expect(user.capable('CAP_DAC_OVERRIDE')).toBe(false);
    expect(user.capNames()).toEqual(['CAP_IPC_LOCK', 'CAP_CHECKPOINT_RESTORE']);
    expect(Cred.create({ uid: 1000 }).capNames()).toEqual([]);
  });

  it('rejects unknown capability names, naming them', () => {
    expect(() => Cred.create({ uid: 5, caps: ['CAP_IPC_LOCKK'] })).toThrow(/CAP_IPC_LOCKK/);
    expect(() => Cred.create({ uid: 5, caps: ['toString'] })).toThrow(RangeError);
  });

  it('rejects invalid ids and capability numbers', () => {
    expect(() => Cred.create({ uid: -1 })).toThrow(RangeError);
    expect(() => Cred.create({ uid: 1.5 })).toThrow(RangeError);
    expect(() => Cred.create().capable(41)).toThrow(RangeError);
    expect(() => Cred.create().capable('CAP_NOPE' as never)).toThrow(RangeError);
  });

  it('clones into an equal, distinct object', () => {
    const a = Cred.create({ uid: 7, gid: 8, caps: ['CAP_SYS_RESOURCE'] });
    const b = a.clone();
    expect(b).not.toBe(a);
    expect(b).toEqual(a);
  });
});
