/**
 * ioctl number encoding (include/uapi/asm-generic/ioctl.h): dir in bits 30-31, size in 16-29,
 * type in 8-15, nr in 0-7. Results are unsigned 32-bit numbers.
 */
export const _IOC_NRBITS = 8;
export const _IOC_TYPEBITS = 8;
export const _IOC_SIZEBITS = 14;
export const _IOC_DIRBITS = 2;
export const _IOC_NRSHIFT = 0;
export const _IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS;
export const _IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS;
export const _IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS;
export const _IOC_NONE = 0;
export const _IOC_WRITE = 1;
export const _IOC_READ = 2;

function typeCode(type: string | number): number {
  return typeof type === 'string' ? type.charCodeAt(0) : type;
}

/** _IOC - build an ioctl number from its four fields. */
export function _IOC(dir: number, type: string | number, nr: number, size: number): number {
  return (
    ((dir << _IOC_DIRSHIFT) |
      (typeCode(type) << _IOC_TYPESHIFT) |
      (nr << _IOC_NRSHIFT) |
      (size << _IOC_SIZESHIFT)) >>>
    0
  );
}
/** _IO - an ioctl with no argument struct. */
export const _IO = (type: string | number, nr: number): number => _IOC(_IOC_NONE, type, nr, 0);
/** _IOR - the kernel writes a struct of `size` bytes to user space. */
export const _IOR = (type: string | number, nr: number, size: number): number =>
  _IOC(_IOC_READ, type, nr, size);
/** _IOW - the kernel reads a struct of `size` bytes from user space. */
export const _IOW = (type: string | number, nr: number, size: number): number =>
  _IOC(_IOC_WRITE, type, nr, size);
/** _IOWR - both directions. */
export const _IOWR = (type: string | number, nr: number, size: number): number =>
  _IOC(_IOC_READ | _IOC_WRITE, type, nr, size);

export const _IOC_DIR = (nr: number): number => (nr >>> _IOC_DIRSHIFT) & ((1 << _IOC_DIRBITS) - 1);
export const _IOC_TYPE = (nr: number): number => (nr >>> _IOC_TYPESHIFT) & ((1 << _IOC_TYPEBITS) - 1);
export const _IOC_NR = (nr: number): number => (nr >>> _IOC_NRSHIFT) & ((1 << _IOC_NRBITS) - 1);
export const _IOC_SIZE = (nr: number): number => (nr >>> _IOC_SIZESHIFT) & ((1 << _IOC_SIZEBITS) - 1);
