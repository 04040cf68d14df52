/**
 * Worker provisioning: the render worker (its script from encode/thread-script.ts), and the spare
 * worker kept ready for the next job. It starts and hands out workers; what a worker does once
 * taken is session.ts's business.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { WorkerBoot } from './protocol.js';
import { threadScript } from '../encode/thread-script.js';

const WORKER_SCRIPT = threadScript('render-worker.mjs', new URL('./worker/main.ts', import.meta.url));

/**
 * A worker started ahead of need: MuPDF instantiated, no document given yet. Each job takes it
 * and starts the next one while it renders, so a warm container's next job (or a restart after
 * a crash) finds MuPDF ready instead of paying for its start. Every document still gets a
 * MuPDF that has never seen another; the price is one idle instance in the baseline.
 */
let spare: Worker | undefined;

function startWorker(boot: WorkerBoot): Worker {
  const worker = new Worker(WORKER_SCRIPT.script, { eval: WORKER_SCRIPT.eval, workerData: boot, stdout: false, stderr: false });
  // Until a session takes it, a spare's failure is only noted: it has ended, and is not used.
  worker.on('error', () => undefined);
  return worker;
}

/** Starts the spare worker if there is none alive (ahead of the first job: a Lambda's init, say). */
export function startSpare(boot: WorkerBoot): void {
  if (spare && spare.threadId !== -1) return;
  spare = startWorker(boot);
  spare.unref();
}

/**
 * Lambda gives one vCPU per 1,769 MB of memory. A worker beyond the first needs at most its
 * WebAssembly heap ceiling (384 MiB) and its thread, so at every Lambda shape the vCPUs bind
 * before the memory does.
 */
const LAMBDA_MB_PER_VCPU = 1769;

/** The cgroup's CPU quota in CPUs (v2 cpu.max, or v1 cfs quota/period), undefined when unlimited or unreadable. */
function cgroupCpuQuota(): number | undefined {
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const v2 = read('/sys/fs/cgroup/cpu.max')?.split(/\s+/);
  if (v2 && v2[0] !== 'max' && Number(v2[1]) > 0) return Number(v2[0]) / Number(v2[1]);
  const quota = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const period = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return quota > 0 && period > 0 ? quota / period : undefined;
}

/**
 * How many workers a job should draw with (RenderControl.workers): the CPUs the function really
 * has (os.availableParallelism(), the cgroup's CPU quota, and with `memoryMb` Lambda's vCPU per
 * 1,769 MB, whichever is smallest), at least 1. A fractional CPU rounds down: at 2,048 MB a
 * second worker would only time-share the first one's core.
 */
export function workerCount(memoryMb?: number): number {
  const cpus = Math.min(availableParallelism(), cgroupCpuQuota() ?? Infinity, memoryMb === undefined ? Infinity : memoryMb / LAMBDA_MB_PER_VCPU);
  return Math.max(1, Math.floor(cpus));
}

/** Workers handed out whose thread has not stopped yet: 0 between jobs (tested). */
let inUse = 0;

/** Workers taken by jobs and still running (the spare not counted). */
export function workersInUse(): number {
  return inUse;
}

/** A worker with MuPDF instantiated (or instantiating) for one document; a new spare starts behind it. */
export function takeWorker(boot: WorkerBoot): Worker {
  // threadId is -1 once a worker's thread has stopped.
  const taken = spare && spare.threadId !== -1 ? spare : startWorker(boot);
  spare = startWorker(boot);
  // An idle spare never keeps the process alive (a CLI run ends when its work does).
  spare.unref();
  taken.ref();
  inUse++;
  taken.once('exit', () => inUse--);
  return taken;
}
