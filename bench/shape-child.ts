/**
 * Our renderer on one file for the power tuning (bench/power-tuning.ts): bundled like the
 * deployed function and run inside a Lambda-shaped cgroup, it is one Lambda container: a cold
 * job, then --runs warm jobs, each in a fresh worker with a fresh MuPDF as deployed, every page
 * written to <dir>. Unlike bench/render-child.ts it keeps each page's drawing time (from loading
 * the page to its last band drawn), for the p95 page time. It draws with as many workers as the
 * function would at --memory-mb (workerCount(memoryMb), as render-pages.ts asks with Lambda's
 * AWS_LAMBDA_FUNCTION_MEMORY_SIZE). Prints one JSON line.
 *   node shape-child.mjs <file.pdf> --out <dir> --memory-mb N [--dpi N] [--format png|jpeg|webp] [--runs N] [--draw-only]
 * --draw-only: the floor under our pages, every page drawn as the render worker draws it
 * (draw-page.ts: MuPDF in WebAssembly, the copy out of its memory, gray detection) and thrown
 * away, no encoding or writing, in one thread.
 */
import '../functions/render-pdf/mupdf-wasm.js';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { parseFormatSetting } from '../lib/config/settings.js';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { DEFAULT_OUTPUT_OPTIONS, extensionOf, type RenderOptions } from '../lib/engine/options.js';
import { startRender, workerCount } from '../lib/engine/render.js';
import { mupdfWasmModule } from '../lib/engine/wasm.js';
import { pageFileName } from '../lib/job/manifest.js';
import type { DrawOnlyInput } from './draw-worker.js';

export interface ShapeChildResult {
  pages: number;
  failedPages: number;
  /** Whole jobs: the cold one first, then the warm ones. */
  jobMs: number[];
  /** Each page's drawing time, over the warm jobs (the cold job's when there are none). */
  pageMs: number[];
  error?: string;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string' },
    dpi: { type: 'string', default: '150' },
    format: { type: 'string', default: 'png' },
    runs: { type: 'string', default: '1' },
    'draw-only': { type: 'boolean', default: false },
    'memory-mb': { type: 'string' },
  },
});
const file = positionals[0];
if (!file || !values.out) throw new Error('usage: shape-child.ts <file.pdf> --out <dir> --memory-mb N [--dpi N] [--format png|jpeg|webp] [--runs N] [--draw-only]');
const format = parseFormatSetting('--format', values.format!);
const options: RenderOptions = { ...DEFAULT_OUTPUT_OPTIONS, format, dpi: Number(values.dpi) };
const memoryMb = Number(values['memory-mb']);
if (!Number.isInteger(memoryMb) || memoryMb < 128) throw new Error(`--memory-mb ${values['memory-mb']}: expected the shape's MemorySize`);
const workers = workerCount(memoryMb);

async function render(): Promise<{ ms: number; pageMs: number[]; pages: number; failed: number }> {
  const started = performance.now();
  const pageMs: number[] = [];
  let pages = 0;
  let failed = 0;
  const render = await startRender(file!, options, { workers });
  for await (const page of render) {
    if (!page.ok) {
      failed++;
      continue;
    }
    await pipeline(page.body, createWriteStream(join(values.out!, pageFileName(page.pageNumber, extensionOf(format)))));
    pageMs.push((await page.finished).renderMs);
    pages++;
  }
  return { ms: performance.now() - started, pageMs, pages, failed };
}

/** The drawing alone (draw-worker.ts): fresh workers with fresh MuPDFs, as many as a job would have, sharing the pages as its lanes do. */
async function drawOnly(): Promise<{ ms: number; pageMs: number[]; pages: number; failed: number }> {
  const started = performance.now();
  const { module, guard } = await mupdfWasmModule();
  const count = workers;
  const lanes = Array.from({ length: count }, async (_, index) => {
    const workerData: DrawOnlyInput = {
      wasmModule: module,
      stackGuard: guard,
      file: file!,
      dpi: options.dpi,
      maxPagePixels: options.maxPagePixels,
      layout: format === 'png' ? 'png' : 'packed',
      lane: { index, count },
    };
    const worker = new Worker(new URL('./draw-worker.mjs', import.meta.url), { workerData });
    const [done] = (await once(worker, 'message')) as [{ pageMs: number[]; failed: number }];
    await worker.terminate();
    return done;
  });
  const done = await Promise.all(lanes);
  const pageMs = done.flatMap((lane) => lane.pageMs);
  return { ms: performance.now() - started, pageMs, pages: pageMs.length, failed: done.reduce((sum, lane) => sum + lane.failed, 0) };
}

const job = values['draw-only'] ? drawOnly : render;

const result: ShapeChildResult = { pages: 0, failedPages: 0, jobMs: [], pageMs: [] };
try {
  const cold = await job();
  result.jobMs.push(cold.ms);
  let last = cold;
  const warmPageMs: number[] = [];
  for (let i = 0; i < Number(values.runs); i++) {
    last = await job();
    result.jobMs.push(last.ms);
    warmPageMs.push(...last.pageMs);
  }
  Object.assign(result, { pages: last.pages, failedPages: last.failed, pageMs: warmPageMs.length > 0 ? warmPageMs : cold.pageMs });
} catch (err) {
  result.error = `${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`;
}
console.log(JSON.stringify(result));
