/**
 * iommu - the IOMMU core (drivers/iommu): devices, groups and domains, the DMA API over IOVAs,
 * Shared Virtual Addressing with one PASID per mm, the IOTLB and device ATCs kept coherent with
 * CPU page tables through MMU notifiers, device address translation, and the latency profiles.
 * The IO page fault pipeline (page requests, the iopf workqueue) builds on this.
 */
export * from './types';
export * from './profiles';
export * from './tlb-cache';
export * from './iova';
export * from './domain';
export * from './iommu-group';
export * from './iommu-device';
export * from './iommu';
export * from './sva';
export * from './translate';
export * from './dma-api';
export * from './iommu-check';
export * from './iopf-config';
export * from './iopf';
