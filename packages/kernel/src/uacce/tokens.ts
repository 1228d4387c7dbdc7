import type { Token } from '../sim/tokens';
import type { UacceCore } from './core';

/** UACCE_CORE - the kernel's uacce framework (class, ids, SVA ops), for drivers resolved by DI. */
export const UACCE_CORE = Symbol.for('@svasim/kernel/uacce/UacceCore') as Token<UacceCore>;
