/**
 * The user-space interface of the 'odp' strategy's kernel part: three system calls standing for
 * the uverbs calls an RDMA application makes for an On-Demand Paging memory region
 * (ibv_reg_mr with IBV_ACCESS_ON_DEMAND, ibv_advise_mr, ibv_dereg_mr). svasim has no uverbs
 * device, so they are plain system calls of the process that owns the memory.
 */

/**
 * odp_reg_mr(addr, len) - register [addr, addr + len) (rounded out to pages) as an ODP region of
 * the calling process: an MMU interval notifier over it and a mirror of what is resident now
 * (hmm_range_fault without fault requests, mlx5's MLX5_PF_FLAGS_SNAPSHOT). Nothing is pinned,
 * faulted in or charged. Returns the region's key (a positive integer).
 */
export const ODP_REG_MR_SYSCALL = 'odp_reg_mr';
/** odp_dereg_mr(addr, len) - drop the newest region registered over exactly these pages. Returns 0. */
export const ODP_DEREG_MR_SYSCALL = 'odp_dereg_mr';
/**
 * odp_advise_mr(addr, len, advice) - prefetch [addr, addr + len) into every region of the caller
 * that contains it (ibv_advise_mr): fault in what is missing and mirror it. Returns 0.
 */
export const ODP_ADVISE_MR_SYSCALL = 'odp_advise_mr';

/** IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH: fault the pages in for reading (mlx5's DOWNGRADE). */
export const ODP_ADVISE_PREFETCH = 0;
/** IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE: fault them in writable where the memory may be written. */
export const ODP_ADVISE_PREFETCH_WRITE = 1;
/** IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT: mirror only what is resident (mlx5's SNAPSHOT). */
export const ODP_ADVISE_PREFETCH_NO_FAULT = 2;
