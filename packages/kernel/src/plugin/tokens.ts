import type { Token } from '../sim/tokens';
import type { DeviceCore } from '../base/device-core';
import type { MmCore } from '../mm/mm-core';
import type { PageAllocator } from '../mm/page-alloc';
import type { SyscallTable } from '../proc/syscall-table';
import type { Kernel } from './kernel';

/** KERNEL - the Kernel object itself, for plugin classes that need the whole surface. */
export const KERNEL = Symbol.for('@svasim/kernel/plugin/Kernel') as Token<Kernel>;
/** MM_CORE - the memory-management state (allocator, reverse maps, tunables). */
export const MM_CORE = Symbol.for('@svasim/kernel/mm/MmCore') as Token<MmCore>;
/** PAGE_ALLOCATOR - the buddy allocator, CMA areas and hugetlb pools. */
export const PAGE_ALLOCATOR = Symbol.for('@svasim/kernel/mm/PageAllocator') as Token<PageAllocator>;
/** DEVICE_CORE - VFS, sysfs, char and misc devices. */
export const DEVICE_CORE = Symbol.for('@svasim/kernel/base/DeviceCore') as Token<DeviceCore>;
/** SYSCALL_TABLE - the system-call table plugins extend. */
export const SYSCALL_TABLE = Symbol.for('@svasim/kernel/proc/SyscallTable') as Token<SyscallTable>;

/**
 * resolve - typed lookup in a tsyringe container: the phantom type of the token is the result
 * type, so call sites need no cast.
 */
export function resolve<T>(container: { resolve<U>(token: symbol): U }, token: Token<T>): T {
  return container.resolve<T>(token);
}
