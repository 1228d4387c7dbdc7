/**
 * The GPU's user-space interface (a svasim design, modelled on lib/test_hmm_uapi.h and the
 * shape of /dev/kfd-style ioctls): /dev/svasim_gpu<N> is a misc device, each open file is one
 * GPU context mirroring the opener's address space, and everything is an ioctl of type 'G'.
 *
 * An ioctl argument is a user address of the struct, or (svasim's convenience for JavaScript
 * callers, as for every driver) a plain object of its fields. READ and WRITE also take a
 * Uint8Array in a plain object's `data` field instead of a user pointer, and LAUNCH takes only
 * a plain object (its `kernel` is a JavaScript function).
 */
import { _IOWR, defineStruct } from '@svasim/kernel';

/** struct svasim_gpu_cmd (48 bytes): addr, ptr, len in; cpages, faults, ns out. */
export const GPU_CMD_LAYOUT = defineStruct('svasim_gpu_cmd', [
  ['addr', 'u64'],
  ['ptr', 'u64'],
  ['len', 'u64'],
  ['cpages', 'u64'],
  ['faults', 'u64'],
  ['ns', 'u64'],
] as const);

/**
 * struct svasim_gpu_atomic (56 bytes): addr, op, width, operand, expected in; result, ns,
 * faults, flags out. The 64-bit operands are little-endian byte arrays so that every bit
 * survives (decoded u64 fields are JavaScript numbers).
 */
export const GPU_ATOMIC_LAYOUT = defineStruct('svasim_gpu_atomic', [
  ['addr', 'u64'],
  ['op', 'u32'],
  ['width', 'u32'],
  ['operand', { bytes: 8, align: 8 }],
  ['expected', { bytes: 8, align: 8 }],
  ['result', { bytes: 8, align: 8 }],
  ['ns', 'u64'],
  ['faults', 'u32'],
  ['flags', 'u32'],
] as const);

/** struct svasim_gpu_mode (8 bytes): how this context keeps the pages of its atomics. */
export const GPU_MODE_LAYOUT = defineStruct('svasim_gpu_mode', [
  ['mode', 'u32'],
  ['flags', 'u32'],
] as const);

/** struct svasim_gpu_stats: the context's counters (all out). */
export const GPU_STATS_LAYOUT = defineStruct('svasim_gpu_stats', [
  ['deviceNs', 'u64'],
  ['faults', 'u64'],
  ['atomics', 'u64'],
  ['atomicsLocal', 'u64'],
  ['acquires', 'u64'],
  ['revocations', 'u64'],
  ['revocationsByCpu', 'u64'],
  ['revocationsByMigration', 'u64'],
  ['callbackRevokes', 'u64'],
  ['reinstates', 'u64'],
  ['tlbShootdowns', 'u64'],
  ['migratedToDevice', 'u64'],
  ['migratedToSystem', 'u64'],
  ['heldPages', 'u64'],
  ['launches', 'u64'],
] as const);

/** The device reads [addr, addr + len) into the buffer at ptr (or into `data`). */
export const SVASIM_GPU_IOC_READ = _IOWR('G', 0x00, GPU_CMD_LAYOUT.size);
/** The device writes the buffer at ptr (or `data`) to [addr, addr + len). */
export const SVASIM_GPU_IOC_WRITE = _IOWR('G', 0x01, GPU_CMD_LAYOUT.size);
/** migrate_vma the pages of [addr, addr + len) into device memory; cpages counts them. */
export const SVASIM_GPU_IOC_MIGRATE_TO_DEV = _IOWR('G', 0x02, GPU_CMD_LAYOUT.size);
/** migrate_vma this device's pages of [addr, addr + len) back to system memory; cpages counts them. */
export const SVASIM_GPU_IOC_MIGRATE_TO_SYS = _IOWR('G', 0x03, GPU_CMD_LAYOUT.size);
/** One atomic operation on a 32- or 64-bit word (struct svasim_gpu_atomic). */
export const SVASIM_GPU_IOC_ATOMIC = _IOWR('G', 0x04, GPU_ATOMIC_LAYOUT.size);
/** Choose how the context keeps the pages of its atomics (struct svasim_gpu_mode). */
export const SVASIM_GPU_IOC_SET_MODE = _IOWR('G', 0x05, GPU_MODE_LAYOUT.size);
/** One HMM_DMIRROR_PROT_* byte per page of [addr, addr + len) at ptr: the CPU page table as hmm_range_fault sees it. */
export const SVASIM_GPU_IOC_SNAPSHOT = _IOWR('G', 0x06, GPU_CMD_LAYOUT.size);
/** One GPU_MIRROR_* byte per page at ptr: what the GPU's own page table maps. */
export const SVASIM_GPU_IOC_MIRROR = _IOWR('G', 0x07, GPU_CMD_LAYOUT.size);
/** Evict every page of the device's memory back to system memory (test_hmm's RELEASE). */
export const SVASIM_GPU_IOC_EVICT = _IOWR('G', 0x08, GPU_CMD_LAYOUT.size);
/** The context's counters (struct svasim_gpu_stats). */
export const SVASIM_GPU_IOC_STATS = _IOWR('G', 0x09, GPU_STATS_LAYOUT.size);
/** Run a GPU kernel: a plain object { kernel: (t: GpuThread) => void }; ns and faults come back. */
export const SVASIM_GPU_IOC_LAUNCH = _IOWR('G', 0x0a, GPU_CMD_LAYOUT.size);

/** Atomic modes (struct svasim_gpu_mode.mode). */
export const GPU_ATOMIC_MODE_NOTIFIER_ONLY = 0;
export const GPU_ATOMIC_MODE_SHORT_TERM = 1;
export const GPU_ATOMIC_MODE_LONGTERM_PIN = 2;
/**
 * svasim_gpu_mode.flags for LONGTERM_PIN: pin without FOLL_LONGTERM, so the page stays where it
 * is, in ZONE_MOVABLE or CMA (what the 2021 series asked for: "allows pinned pages to be created
 * in ZONE_MOVABLE").
 */
export const GPU_MODE_F_PIN_IN_PLACE = 1;

/** Atomic operations (svasim_gpu_atomic.op). */
export const GPU_ATOMIC_FETCH_ADD = 0;
export const GPU_ATOMIC_CAS = 1;

/** svasim_gpu_atomic.flags: where the operation ran and what it took. */
export const GPU_ATOMIC_F_VRAM = 1;
export const GPU_ATOMIC_F_SYSMEM = 2;
/** The GPU had to take a fault (first use, or its exclusive access had been revoked). */
export const GPU_ATOMIC_F_FAULTED = 4;
/** The driver re-installed the mapping after a migration callback (short-term mode). */
export const GPU_ATOMIC_F_REINSTATED = 8;

/** GPU_MIRROR_* bits: what the GPU page table holds for one page. */
export const GPU_MIRROR_NONE = 0;
export const GPU_MIRROR_READ = 1;
export const GPU_MIRROR_WRITE = 2;
/** Exclusive (atomic) access through a device-exclusive entry. */
export const GPU_MIRROR_ATOMIC = 4;
/** The page is in this GPU's device memory. */
export const GPU_MIRROR_VRAM = 8;
/** The context holds the page (a long-term pin or a short-term reference). */
export const GPU_MIRROR_HELD = 0x10;
/** A migration callback revoked the page; the driver will reinstate it before the next command. */
export const GPU_MIRROR_REINSTATE = 0x20;
