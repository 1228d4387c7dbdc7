/**
 * The user ABI of mempinfd (include/uapi/linux/mempinfd.h of seeds/001, RFC v3): the syscall
 * number, struct mem_pin_address and the two ioctl commands, with the patch's values.
 */
import { _IOW, PIN_ADDRESS_SIZE, defineStruct } from '@svasim/kernel';

/**
 * __NR_mempinfd - the number the patch gave the syscall in asm-generic/unistd.h (442). Mainline
 * later gave 442 to mount_setattr (Linux 5.12), so the number only means mempinfd inside svasim,
 * which registers no numbered syscall of its own. Processes call it by name: syscall('mempinfd').
 */
export const __NR_mempinfd = 442;

/**
 * MEM_PIN_ADDRESS - struct mem_pin_address { __u64 addr; __u64 size; } (16 bytes): the range to
 * pin or unpin. Neither field needs to be page-aligned: the pages the range touches are pinned.
 */
export const MEM_PIN_ADDRESS = defineStruct('mem_pin_address', [
  ['addr', 'u64'],
  ['size', 'u64'],
] as const);

/** MEM_CMD_PIN - _IOW('M', 0, struct mem_pin_address) = 0x40104d00: pin a range. */
export const MEM_CMD_PIN = _IOW('M', 0, PIN_ADDRESS_SIZE);

/** MEM_CMD_UNPIN - _IOW('M', 1, struct mem_pin_address) = 0x40104d01: unpin a range pinned before. */
export const MEM_CMD_UNPIN = _IOW('M', 1, PIN_ADDRESS_SIZE);
