/**
 * ScenarioSchema - a whole scenario file: the machine, kernel knobs, IOMMU profile, devices,
 * processes with their workloads, background activity, how long to run, the seeds and the
 * strategies to compare. docs/experiments.md describes each field with an example.
 */
import { z } from 'zod';
import { BackgroundSchema } from './background-schema';
import { Duration, Name, Size } from './fields';
import { DeviceSchema, IommuProfileSchema, KernelKnobsSchema, MachineSchema } from './machine-schema';
import { WorkloadSchema } from './workload-schema';

/** One simulated process and the workload it runs. */
export const ProcessSchema = z.strictObject({
  name: Name,
  node: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .meta({ description: 'NUMA node it runs on and allocates from' }),
  uid: z.number().int().nonnegative().default(0),
  memlock: z
    .union([Size, z.literal('unlimited')])
    .default('unlimited')
    .meta({ description: 'RLIMIT_MEMLOCK (default unlimited, so strategies that lock memory can)' }),
  workload: WorkloadSchema,
});

/** ScenarioSchema - the scenario file (see the file comment). */
export const ScenarioSchema = z.strictObject({
  name: Name.meta({ description: 'the experiment name used in reports' }),
  description: z.string().default(''),
  machine: MachineSchema.default({ cpus: 4, memory: { nodes: [{ size: '1GiB' }] } }),
  kernel: KernelKnobsSchema.default({ sysctl: {}, forkCow: 'early' }),
  iommu: IommuProfileSchema.default('smmuv3').meta({ description: 'IOMMU latency/size profile' }),
  devices: z.array(DeviceSchema).default([]),
  processes: z.array(ProcessSchema).min(1),
  background: z.array(BackgroundSchema).default([]),
  duration: Duration.meta({ description: 'simulated time each run lasts' }),
  sampleEvery: Duration.optional().meta({
    description: 'time-series sampling period (default: duration / 200)',
  }),
  seeds: z
    .union([z.number().int().min(1).max(1000), z.array(z.number().int().nonnegative()).min(1).max(1000)])
    .default(1)
    .meta({ description: 'a count N (seeds 1..N) or the list of seeds' }),
  strategies: z
    .array(Name)
    .min(1)
    .default(['none'])
    .meta({ description: "pin strategies to compare, by API.md name ('none', 'mlock', 'mempinfd', ...)" }),
});

/** Scenario - a parsed scenario (defaults filled in); plain data, so it crosses worker threads. */
export type Scenario = z.infer<typeof ScenarioSchema>;
/** ScenarioInput - what a scenario file may contain (defaults optional). */
export type ScenarioInput = z.input<typeof ScenarioSchema>;
/** ProcessSpec - one parsed process. */
export type ProcessSpec = z.infer<typeof ProcessSchema>;
