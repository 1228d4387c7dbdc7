/**
 * accel - the virtual accelerator base that accelerator plugins extend: uacce queues with
 * descriptor rings in DUS memory, an MMIO doorbell, engines with a service-time model and a DMA
 * engine that works on process addresses through the IOMMU and IO page faults.
 */
export * from './layout';
export * from './accelerator';
