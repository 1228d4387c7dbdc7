/**
 * The accelerator conformance suite's vocabulary: what a plugin author hands the suite (a target:
 * the plugin, one algorithm and a sample request) and what the suite hands back (one result per
 * check). The suite itself is in checks.ts; run.ts and describe.ts are its two front ends.
 */
import type { KernelOptions, Plugin, Process, Kernel } from '@svasim/kernel';
import type { AccelRequest, Completion } from '@svasim/user';

/**
 * ConformanceSampleEnv - what a target's sample() gets: the process the request runs in and a
 * way to get buffers the suite owns (it prepares them through the loaded pin strategy before the
 * request, and releases and frees them after).
 */
export interface ConformanceSampleEnv {
  readonly kernel: Kernel;
  /** The process whose context submits the request; write the input bytes through it. */
  readonly proc: Process;
  /**
   * Which sample this is (0 for the synchronous one, then 1, 2, ... for the requests in flight
   * together): vary the data with it so that a device mixing up requests is caught.
   */
  readonly index: number;
  /**
   * alloc - @len bytes of fresh memory in @proc for one buffer of the request: the pin strategy's
   * allocBuffer when it has one, else an anonymous private mapping. Nothing is present yet, so
   * the device takes IO page faults on what the CPU does not write first.
   */
  alloc(len: number): number;
  /** bytes - @len deterministic pseudo-random bytes, different for each sample index and @salt. */
  bytes(len: number, salt?: number): Uint8Array;
}

/**
 * ConformanceSample - one request and how to check its outcome.
 *
 * verify() reads the result through @proc and returns a description of what is wrong (a string),
 * or nothing when the completion and the bytes are right. A throw counts as wrong too, so
 * jest's expect() works inside it.
 */
export interface ConformanceSample {
  req: AccelRequest;
  verify(completion: Completion, proc: Process): string | void;
}

/** AcceleratorConformanceTarget - one accelerator plugin under test. */
export interface AcceleratorConformanceTarget {
  /** The accelerator plugin (kind 'accelerator'), as given to createKernel. */
  plugin: Plugin;
  /** An algorithm the device lists in sysfs `algorithms`; the sample's requests use it. */
  alg: string;
  /**
   * sample - build one request on buffers from env.alloc, write its input, and say how to check
   * it. Called once per request (the suite never reuses a sample).
   */
  sample(env: ConformanceSampleEnv): ConformanceSample;
  /**
   * Options of every kernel the suite boots (memory, cpus, hugepages, iommu profile...); `plugins`,
   * `seed` and `pinStrategy` are the suite's. Default: one node of 256 MiB.
   */
  kernelOptions?: Omit<KernelOptions, 'plugins' | 'seed' | 'pinStrategy'>;
  /** The uacce interface name: the device must be `<prefix>-<id>` (e.g. 'hisi_zip'). */
  uaccePrefix?: string;
  /**
   * Whether the device claims Shared Virtual Addressing (sysfs `flags` must then include
   * UACCE_DEV_SVA). Default: the instance's `config.sva` when it is a VirtualAccelerator, else true.
   */
  sva?: boolean;
  /** A label for reports (default: the plugin's name). */
  name?: string;
}

/** ConformanceOptions - how the suite runs a target. */
export interface ConformanceOptions {
  /**
   * Pin-strategy plugins to serve requests under, each loaded next to the accelerator on its own
   * kernel. The default strategy ('none') is always run first.
   */
  strategies?: Plugin[];
  /** Seed of every kernel the suite boots (default 1). */
  seed?: number;
  /** Requests in flight at once in the async and hot-removal checks (default 4). */
  inFlight?: number;
  /**
   * Simulated time a request may take before the suite calls it hung (default 1 s): the
   * contexts' submitSync timeout and the bound on every run of the simulation.
   */
  timeoutNs?: number;
  /** Simulated ns from submitting the in-flight requests to the hot removal (default 1000). */
  removeAfterNs?: number;
  /** Jest timeout of each check in describeAcceleratorConformance, wall ms (default 20000). */
  jestTimeoutMs?: number;
}

/** ConformanceCheck - the outcome of one check. */
export interface ConformanceCheck {
  /** What is checked, e.g. "serves requests under pin strategy 'none'". */
  name: string;
  pass: boolean;
  /** On success a short summary; on failure what went wrong and at which step. */
  message: string;
}

/** ConformanceResult - every check of one run of the suite. */
export interface ConformanceResult {
  /** The target's label. */
  target: string;
  /** True when every check passed. */
  pass: boolean;
  checks: ConformanceCheck[];
}
