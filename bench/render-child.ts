/**
 * Our renderer on one file, in a process of its own so its peak RSS is this file's. bench.ts
 * bundles it like the deployed function (esbuild, the template's options, the worker beside
 * it, the .wasm shipped by the file loader) and runs
 *   node render-child.mjs <file.pdf> --out <dir> [--dpi N] [--format png|jpeg] [--runs N] [--max-page-pixels N]
 * The process is a Lambda container: its first job is the cold start (WebAssembly compiled on
 * first use), the --runs jobs after it are warm invocations, each in a fresh worker with a
 * fresh MuPDF as deployed. Every job writes every page to <dir> (as mutool draw does). Prints
 * one JSON line.
 */
import '../functions/render-pdf/mupdf-wasm.js';
import { createWriteStream, readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pageFileName } from '../lib/job/manifest.js';
import { parseFormatSetting } from '../lib/config/settings.js';
import { DEFAULT_OUTPUT_OPTIONS, extensionOf, type RenderOptions } from '../lib/engine/options.js';
import { startRender } from '../lib/engine/render.js';

export interface JobTiming {
  /** From startRender to the last page written: worker start, WASM instantiation, open, render, encode, write. */
  ms: number;
  /** From startRender to the document open in its fresh worker (the per-job overhead). */
  startupMs: number;
}

export interface ChildResult {
  pages: number;
  failedPages: number;
  bytes: number;
  /** From the process's start to the first page encoded and written, in the first (cold) job. */
  coldStartMs: number;
  /** The first job's time: a fresh process, nothing compiled yet. */
  cold: JobTiming;
  /** The warm jobs after it. */
  warm: JobTiming[];
  wasmHeapPeakBytes: number;
  /** VmHWM of this process (main thread + render worker) over all its jobs. */
  peakRssBytes: number;
  /** Pages rendered below the requested dpi (pixel budget), as { dpi: [page numbers] }. */
  dpiGroups: Record<string, number[]>;
  /** Pages written as grayscale PNG (every pixel R = G = B). */
  grayPages: number;
  error?: string;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string' },
    dpi: { type: 'string', default: '150' },
    format: { type: 'string', default: 'png' },
    runs: { type: 'string', default: '3' },
    'max-page-pixels': { type: 'string' },
  },
});
const file = positionals[0];
if (!file || !values.out) throw new Error('usage: render-child.ts <file.pdf> --out <dir> [--dpi N] [--format png|jpeg] [--runs N]');
const format = parseFormatSetting('--format', values.format!);
const options: RenderOptions = {
  ...DEFAULT_OUTPUT_OPTIONS,
  format,
  dpi: Number(values.dpi),
  ...(values['max-page-pixels'] ? { maxPagePixels: Number(values['max-page-pixels']) } : {}),
};
const outDir = values.out;

interface JobResult extends JobTiming {
  pages: number;
  failedPages: number;
  bytes: number;
  firstPageAt: number;
  wasmHeapPeakBytes: number;
  dpiGroups: Record<string, number[]>;
  grayPages: number;
}

async function renderOnce(): Promise<JobResult> {
  const started = performance.now();
  const result: JobResult = { ms: 0, startupMs: 0, pages: 0, failedPages: 0, bytes: 0, firstPageAt: 0, wasmHeapPeakBytes: 0, dpiGroups: {}, grayPages: 0 };
  const job = await startRender(file!, options);
  for await (const page of job) {
    if (!page.ok) {
      result.failedPages++;
      continue;
    }
    try {
      await pipeline(page.body, createWriteStream(join(outDir, pageFileName(page.pageNumber, extensionOf(format)))));
      result.bytes += (await page.finished).bytes;
    } catch {
      result.failedPages++;
      continue;
    }
    result.firstPageAt ||= performance.now();
    result.pages++;
    if (page.color === 'gray') result.grayPages++;
    (result.dpiGroups[page.dpi] ??= []).push(page.pageNumber);
  }
  result.ms = performance.now() - started;
  result.startupMs = job.stats.startupMs;
  result.wasmHeapPeakBytes = job.stats.wasmHeapPeakBytes;
  return result;
}

const output: ChildResult = {
  pages: 0,
  failedPages: 0,
  bytes: 0,
  coldStartMs: 0,
  cold: { ms: 0, startupMs: 0 },
  warm: [],
  wasmHeapPeakBytes: 0,
  peakRssBytes: 0,
  dpiGroups: {},
  grayPages: 0,
};
try {
  const cold = await renderOnce();
  // performance.now() counts from the process's start.
  output.coldStartMs = cold.firstPageAt;
  output.cold = { ms: cold.ms, startupMs: cold.startupMs };
  output.wasmHeapPeakBytes = cold.wasmHeapPeakBytes;
  let last = cold;
  for (let i = 0; i < Number(values.runs); i++) {
    last = await renderOnce();
    output.warm.push({ ms: last.ms, startupMs: last.startupMs });
    output.wasmHeapPeakBytes = Math.max(output.wasmHeapPeakBytes, last.wasmHeapPeakBytes);
  }
  Object.assign(output, { pages: last.pages, failedPages: last.failedPages, bytes: last.bytes, dpiGroups: last.dpiGroups, grayPages: last.grayPages });
} catch (err) {
  output.error = `${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`;
}
const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
output.peakRssBytes = hwm ? Number(hwm[1]) * 1024 : process.memoryUsage().rss;
console.log(JSON.stringify(output));
