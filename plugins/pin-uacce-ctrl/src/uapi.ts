/**
 * The user ABI of /dev/uacce_ctrl (include/uapi/misc/uacce/uacce.h of seeds/002, RFC v2):
 * struct uacce_pin_address and the two ioctl commands, next to uacce's own START_Q (_IO('W', 0))
 * and PUT_Q (_IO('W', 1)).
 */
import { _IOW, PIN_ADDRESS_SIZE, defineStruct } from '@svasim/kernel';

/** The misc device's name: /dev/uacce_ctrl, /sys/class/misc/uacce_ctrl. */
export const UACCE_CTRL_NAME = 'uacce_ctrl';

/** UACCE_CTRL_MODE - the /dev node's mode: 0600 root:root (the thread: only root, or whom root lets in). */
export const UACCE_CTRL_MODE = 0o600;

/**
 * UACCE_PIN_ADDRESS - struct uacce_pin_address { __u64 addr; __u64 size; } (16 bytes): the range
 * to pin or unpin; neither field needs to be page-aligned.
 */
export const UACCE_PIN_ADDRESS = defineStruct('uacce_pin_address', [
  ['addr', 'u64'],
  ['size', 'u64'],
] as const);

/** UACCE_CMD_PIN - _IOW('W', 2, struct uacce_pin_address) = 0x40105702: pin a range. */
export const UACCE_CMD_PIN = _IOW('W', 2, PIN_ADDRESS_SIZE);

/** UACCE_CMD_UNPIN - _IOW('W', 3, struct uacce_pin_address) = 0x40105703: unpin a range. */
export const UACCE_CMD_UNPIN = _IOW('W', 3, PIN_ADDRESS_SIZE);
