/**
 * Worker provisioning: where the worker's script is (the bundle's render-worker.mjs, or the
 * TypeScript source through tsx), and the spare worker kept ready for the next job. It starts
 * and hands out workers; what a worker does once taken is session.ts's business.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WorkerBoot } from './protocol.js';

// Deployed, the worker is bundled beside this module as render-worker.mjs. From source (tests,
// scripts) it is the TypeScript file, loaded through tsx's loader registered inside the worker.
function workerScript(): { script: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./render-worker.mjs', import.meta.url), eval: false };
  const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxRoot, 'dist/esm/api/index.mjs')).href;
  const worker = new URL('./worker/main.ts', import.meta.url).href;
  return { script: `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(worker)});`, eval: true };
}
const WORKER_SCRIPT = workerScript();

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

/** A worker with MuPDF instantiated (or instantiating) for one document; a new spare starts behind it. */
export function takeWorker(boot: WorkerBoot): Worker {
  // threadId is -1 once a worker's thread has stopped.
  const taken = spare && spare.threadId !== -1 ? spare : startWorker(boot);
  spare = startWorker(boot);
  // An idle spare never keeps the process alive (a CLI run ends when its work does).
  spare.unref();
  taken.ref();
  return taken;
}
