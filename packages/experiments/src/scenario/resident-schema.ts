/**
 * 'resident' - a process that is mostly memory: it maps `size` bytes, touches them, optionally
 * locks them, prepares a random share of its pages for DMA through the run's pin strategy and
 * keeps touching them. It stands for the rest of an application's heap around its DMA buffers
 * (experiment 5: small DMA buffers scattered through a large heap), or for an unrelated process
 * whose memory the system should still be free to compact and NUMA-balance (experiment 9).
 * No accelerator is needed: the strategy is called with no device (PinTarget fd -1, device '').
 */
import { z } from 'zod';
import { Duration, Fraction, Size } from './fields';

/** ResidentWorkloadSchema - see the file comment. */
export const ResidentWorkloadSchema = z.strictObject({
  kind: z.literal('resident'),
  start: Duration.default(0).meta({ description: 'when the process maps and touches its memory, from boot' }),
  size: Size.meta({ description: 'anonymous memory mapped and written once' }),
  thp: z.boolean().default(false).meta({
    description: 'let THP back the mapping (default: MADV_NOHUGEPAGE, 4 KiB pages)',
  }),
  scatter: z.boolean().default(false).meta({
    description:
      'fault the pages in alternately with a second mapping of the same size that is then unmapped, so the memory is spread over twice its size with a free page beside each page (fragmented memory)',
  }),
  mlock: z.boolean().default(false).meta({
    description: 'mlock the memory after touching it (a database keeping its memory resident)',
  }),
  prepareFraction: Fraction.default(0).meta({
    description:
      "prepare this share of the pages for DMA through the run's pin strategy, one page each, at random positions drawn from the workload's seeded stream (each page independently)",
  }),
  touchEvery: Duration.optional().meta({
    description:
      'read every page again this often (a working process: NUMA hinting faults move its pages after it)',
  }),
});

/** ResidentWorkloadSpec - a parsed 'resident' workload. */
export type ResidentWorkloadSpec = z.infer<typeof ResidentWorkloadSchema>;
