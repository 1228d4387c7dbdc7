/**
 * The plugin: gpuPlugin (the default GPU) and createGpuPlugin (a GPU of another name or shape).
 */
import { definePlugin, type Kernel, type Plugin } from '@svasim/kernel';
import { GPU_DEFAULT_CONFIG, gpuTiming, type GpuConfig, type GpuTiming } from './gpu-config';
import { GpuDevice } from './gpu-device';

/** Options of createGpuPlugin: the plugin's name and the device's shape. */
export interface GpuPluginOptions {
  /** Plugin name (kernel.plugin(name)); default 'gpu'. */
  pluginName?: string;
  /** Device name (/dev/<name>); default 'svasim_gpu0'. */
  name?: string;
  /** Device memory in bytes; default 32 MiB. */
  vramBytes?: number;
  /** Pages per chunk of device memory; default 256. */
  chunkPages?: number;
  /** /dev node mode; default 0o666. */
  devMode?: number;
  /** Register the copy engine as a uacce device too; default true. */
  copyEngine?: boolean;
  /** Latency figures to override. */
  timing?: Partial<GpuTiming>;
}

/**
 * createGpuPlugin - a GPU plugin with its own name and shape (for two GPUs in one kernel, or a
 * different latency model). Throws TypeError for a bad plugin name (definePlugin's rule).
 */
export function createGpuPlugin(opts: GpuPluginOptions = {}): Plugin<GpuDevice> {
  const config: GpuConfig = {
    name: opts.name ?? GPU_DEFAULT_CONFIG.name,
    vramBytes: opts.vramBytes ?? GPU_DEFAULT_CONFIG.vramBytes,
    chunkPages: opts.chunkPages ?? GPU_DEFAULT_CONFIG.chunkPages,
    devMode: opts.devMode ?? GPU_DEFAULT_CONFIG.devMode,
    copyEngine: opts.copyEngine ?? GPU_DEFAULT_CONFIG.copyEngine,
    timing: gpuTiming(opts.timing),
  };
  return definePlugin({
    name: opts.pluginName ?? 'gpu',
    kind: 'accelerator',
    register({ kernel }) {
      return new GpuDevice(kernel as Kernel, config);
    },
  });
}

/**
 * gpuPlugin - the default GPU: `createKernel({ plugins: [gpuPlugin] })` gives /dev/svasim_gpu0
 * (mode 0666) and kernel.plugin<GpuDevice>('gpu').
 */
export const gpuPlugin: Plugin<GpuDevice> = createGpuPlugin();
