import { ERRNO } from '../uapi/errno';
import { POLLNVAL } from '../uapi/fcntl';
import type { DeviceCore } from '../base/device-core';
import { vfsIoctl, vfsPoll, type IoctlArg } from '../fs/file';
import { doSysOpen } from '../fs/vfs';
import type { Current } from './current';
import type { SyscallTable } from './syscall-table';

/**
 * registerFsSyscalls - open, close, ioctl, poll and chmod on the kernel's VFS.
 * open(path, flags) -> fd; close(fd); ioctl(fd, cmd, arg); poll(fd) -> revents (POLLNVAL for a
 * bad fd, as poll(2) reports it, rather than an error); chmod(path, mode) (what a udev rule does
 * to let an unprivileged user open an accelerator's /dev node).
 */
export function registerFsSyscalls(table: SyscallTable, devices: DeviceCore): void {
  table.register('open', (current, path, flags) => {
    if (typeof path !== 'string') return -ERRNO.EFAULT;
    return doSysOpen(devices.vfs, current, path, (flags as number | undefined) ?? 0);
  });
  table.register('close', (current, fd) => current.files.close(fd as number, current));
  table.register('ioctl', (current, fd, cmd, arg) => {
    const file = current.files.get(fd as number);
    if (!file) return -ERRNO.EBADF;
    if (typeof cmd !== 'number' || !Number.isInteger(cmd)) return -ERRNO.ENOTTY;
    return vfsIoctl(file, cmd >>> 0, arg as IoctlArg, current);
  });
  table.register('poll', (current: Current, fd) => {
    const file = current.files.get(fd as number);
    if (!file) return POLLNVAL;
    return vfsPoll(file, current);
  });
  table.register('chmod', (current, path, mode) => {
    if (typeof path !== 'string') return -ERRNO.EFAULT;
    return devices.vfs.chmod(current, path, mode as number);
  });
  table.register('getpid', (current) => current.pid);
}
