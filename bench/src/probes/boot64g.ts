import 'reflect-metadata';
import { createKernel } from '@svasim/kernel';

// Run in a fresh process so its RSS is the kernel's alone: boot a 64 GiB two-node machine and
// print the boot time and the resident memory after boot as one JSON line.
const t0 = process.hrtime.bigint();
const k = createKernel({ memory: { nodes: [{ size: '32GiB' }, { size: '32GiB' }] } });
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const rssMb = process.memoryUsage().rss / 2 ** 20;
process.stdout.write(JSON.stringify({ ms, rssMb, freePages: k.vmstat().nr_free_pages }) + '\n');
