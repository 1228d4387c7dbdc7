/**
 * The page allocator's internal allocation flags (mm/internal.h ALLOC_*): which watermark an
 * attempt must respect and which reserves and free lists it may use. Derived from the gfp mask by
 * the allocator; compaction and reclaim use them to ask "would this allocation succeed now?".
 */
import { __GFP_HIGH, __GFP_KSWAPD_RECLAIM } from './gfp';

/** Respect the min watermark (the slow path). The watermark index sits in the low bits. */
export const ALLOC_WMARK_MIN = 0;
/** Respect the low watermark (the fast path). */
export const ALLOC_WMARK_LOW = 1;
/** Respect the high watermark. */
export const ALLOC_WMARK_HIGH = 2;
/** Ignore watermarks entirely (PF_MEMALLOC, OOM victims). */
export const ALLOC_NO_WATERMARKS = 0x04;
/** The watermark index bits of an ALLOC_* mask. */
export const ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1;
/** Allowed into half of the remaining reserve as an OOM victim. */
export const ALLOC_OOM = 0x08;
/** The caller cannot sleep: it may dig a little deeper into the min reserve (with ALLOC_MIN_RESERVE). */
export const ALLOC_NON_BLOCK = 0x10;
/** __GFP_HIGH: may use half of the min reserve. Same bit as __GFP_HIGH, as in the kernel. */
export const ALLOC_MIN_RESERVE = __GFP_HIGH;
/** May allocate from MIGRATE_CMA pageblocks (movable and not for a long-term pin). */
export const ALLOC_CMA = 0x80;
/** Avoid falling back to another migratetype below pageblock size (anti-fragmentation). */
export const ALLOC_NOFRAGMENT = 0x100;
/** Allow waking kswapd. Same bit as __GFP_KSWAPD_RECLAIM, as in the kernel. */
export const ALLOC_KSWAPD = __GFP_KSWAPD_RECLAIM;
/** Any flag that grants access to reserves below the watermark. */
export const ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_OOM;
