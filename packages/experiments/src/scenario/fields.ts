/**
 * Field types shared by every part of the scenario schema: durations, sizes, rates, names.
 * Each is a plain input type (no transform), so the JSON Schema for editors can be generated
 * from the same zod objects that validate; conversion to ns and bytes is parseDuration/parseSize.
 */
import { z } from 'zod';
import { DURATION_PATTERN, SIZE_PATTERN } from './units';

/** Duration - simulated time: a whole number of ns, or a string such as '200ms', '1.5s', '10us'. */
export const Duration = z
  .union([
    z.number().int().nonnegative(),
    z.string().regex(DURATION_PATTERN, { error: "expected a duration such as '200ms', '1.5s' or '10us'" }),
  ])
  .meta({
    id: 'Duration',
    description: "simulated time: ns as a number, or a string such as '200ms', '1.5s', '10us'",
  });

/** Size - bytes: a whole number, or a string such as '4GiB', '512MiB', '64K'. */
export const Size = z
  .union([
    z.number().int().nonnegative(),
    z.string().regex(SIZE_PATTERN, { error: "expected a size such as '4GiB', '512MiB' or '64K'" }),
  ])
  .meta({
    id: 'Size',
    description: "bytes as a number, or a string such as '4GiB', '512MiB', '64K' (binary units)",
  });

/** Rate - events per simulated second, strictly positive. */
export const Rate = z.number().positive().meta({ description: 'events per simulated second (> 0)' });

/** Fraction - a number in [0, 1]. */
export const Fraction = z.number().min(0).max(1);

/** Name - a non-empty identifier: letters, digits, '.', '_', '-', '(', ')'. */
export const Name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._()-]*$/, { error: "expected a name (letters, digits, '.', '_', '-')" });
