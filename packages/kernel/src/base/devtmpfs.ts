import { ERRNO } from '../uapi/errno';
import type { FileOperations } from '../fs/file';
import { Inode, S_IALLUGO, S_IFCHR, S_ISCHR } from '../fs/inode';
import type { Vfs } from '../fs/vfs';
import type { Device } from './device';

/** Where a device node goes and what it looks like: the devnode decision plus udev's rules. */
export interface DevnodeSpec {
  /** Path below the mount point ("foo" or "dri/card0"). */
  name: string;
  /** Permission bits (0o600 unless a class or udev rule says otherwise). */
  mode: number;
  uid: number;
  gid: number;
}

/** devtmpfs's default node mode when nobody chose one (drivers/base/devtmpfs.c). */
export const DEVTMPFS_DEFAULT_MODE = 0o600;

/**
 * Devtmpfs - creates and removes /dev nodes for devices with a device number, as devtmpfs and
 * udev do together. Nodes are character inodes whose fops are the chrdev dispatcher, so an open
 * finds the driver by device number at open time (chrdev_open).
 */
export class Devtmpfs {
  private readonly nodes = new Map<Device, string>();

  /**
   * @param vfs - the namespace to create nodes in
   * @param chrFops - the operations of every char node (ChrdevRegistry.defChrFops)
   * @param mountPoint - where devtmpfs is mounted
   */
  constructor(
    private readonly vfs: Vfs,
    private readonly chrFops: FileOperations,
    readonly mountPoint = '/dev',
  ) {}

  /**
   * createNode - mknod the node of `dev` (devtmpfs_create_node). Returns 0, or the mknod
   * -errno (-EEXIST when the name is taken); device_add ignores a failure, as the kernel does.
   * Removed by {@link deleteNode}.
   */
  createNode(dev: Device, spec: DevnodeSpec): number {
    const path = `${this.mountPoint}/${spec.name}`;
    const inode = new Inode({
      mode: S_IFCHR | (spec.mode & S_IALLUGO),
      uid: spec.uid,
      gid: spec.gid,
      rdev: dev.devt,
      fops: this.chrFops,
    });
    const ret = this.vfs.mknod(path, inode);
    if (ret === 0) this.nodes.set(dev, path);
    return ret;
  }

  /**
   * deleteNode - unlink the node createNode made for `dev`, if it still is that device's node
   * (devtmpfs_delete_node checks the device number). Returns 0 or -ENOENT.
   */
  deleteNode(dev: Device): number {
    const path = this.nodes.get(dev);
    if (path === undefined) return -ERRNO.ENOENT;
    this.nodes.delete(dev);
    const inode = this.vfs.lookup(path);
    if (!inode || !S_ISCHR(inode.mode) || inode.rdev !== dev.devt) return -ERRNO.ENOENT;
    return this.vfs.unlink(path);
  }

  /** The /dev path of `dev`'s node, or undefined. */
  nodePath(dev: Device): string | undefined {
    return this.nodes.get(dev);
  }
}
