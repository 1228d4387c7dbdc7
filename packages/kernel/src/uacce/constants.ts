/**
 * Kernel-side uacce limits (include/linux/uacce.h).
 */

/** UACCE_NAME - the class name (/sys/class/uacce) and the char region's name. */
export const UACCE_NAME = 'uacce';
/** UACCE_MAX_REGION - number of queue file region types (MMIO, DUS); mmap pgoff must be below it. */
export const UACCE_MAX_REGION = 2;
/** UACCE_MAX_NAME_SIZE - size of uacce_interface.name including the NUL: names are at most 63 characters. */
export const UACCE_MAX_NAME_SIZE = 64;
/** UACCE_MAX_ERR_THRESHOLD - largest hardware-error threshold isolate_strategy accepts (errors per hour). */
export const UACCE_MAX_ERR_THRESHOLD = 65535;
/** Largest dev_id: xa_alloc with xa_limit_32b. */
export const UACCE_MAX_DEV_ID = 0xffffffff;
