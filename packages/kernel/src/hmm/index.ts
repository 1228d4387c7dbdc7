/**
 * hmm - Heterogeneous Memory Management helpers above GUP and MMU notifiers: hmm_range_fault
 * (mirroring a range of a process's page table into a device's) and make_device_exclusive
 * (atomic device access to system pages). ZONE_DEVICE memory and migrate_vma are in mm/
 * (memremap.ts, migrate-device.ts). See docs/hmm.md.
 */
export * from './hmm-config';
export * from './hmm';
export * from './make-device-exclusive';
