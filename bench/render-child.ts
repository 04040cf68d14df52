/**
 * One benchmark run of our renderer, in a process of its own so its peak RSS is this file's.
 * bench.ts bundles it like the deployed function (esbuild, the template's options, the worker
 * beside it, the .wasm shipped by the file loader) and runs
 *   node render-child.mjs <file.pdf> --out <dir> [--dpi N] [--format png|jpeg]
 * Writes every page to <dir> (as mutool draw does) and prints one JSON line.
 */
import '../functions/render-pdf/mupdf-wasm.js';
import { createWriteStream, readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pageFileName } from '../lib/manifest.js';
import { DEFAULT_OUTPUT_OPTIONS, extensionOf, parseFormatSetting } from '../lib/render/options.js';
import { startRender } from '../lib/render/render.js';

export interface ChildResult {
  pages: number;
  failedPages: number;
  bytes: number;
  /** From startRender to the last page written: worker start, WASM instantiation, open, render, encode, write. */
  ms: number;
  wasmHeapPeakBytes: number;
  /** VmHWM of this process (main thread + render worker). */
  peakRssBytes: number;
  /** Pages rendered below the requested dpi (pixel budget), as { dpi: [page numbers] }. */
  dpiGroups: Record<string, number[]>;
  error?: string;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { out: { type: 'string' }, dpi: { type: 'string', default: '150' }, format: { type: 'string', default: 'png' } },
});
const file = positionals[0];
if (!file || !values.out) throw new Error('usage: render-child.ts <file.pdf> --out <dir> [--dpi N] [--format png|jpeg]');
const format = parseFormatSetting('--format', values.format!);
const options = { ...DEFAULT_OUTPUT_OPTIONS, format, dpi: Number(values.dpi) };

const result: ChildResult = { pages: 0, failedPages: 0, bytes: 0, ms: 0, wasmHeapPeakBytes: 0, peakRssBytes: 0, dpiGroups: {} };
const started = performance.now();
try {
  const job = await startRender(file, options);
  for await (const page of job) {
    if (!page.ok) {
      result.failedPages++;
      continue;
    }
    try {
      await pipeline(page.body, createWriteStream(join(values.out, pageFileName(page.pageNumber, extensionOf(format)))));
      result.bytes += (await page.finished).bytes;
    } catch {
      result.failedPages++;
      continue;
    }
    result.pages++;
    (result.dpiGroups[page.dpi] ??= []).push(page.pageNumber);
  }
  result.wasmHeapPeakBytes = job.stats.wasmHeapPeakBytes;
} catch (err) {
  result.error = `${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`;
}
result.ms = performance.now() - started;
const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
result.peakRssBytes = hwm ? Number(hwm[1]) * 1024 : process.memoryUsage().rss;
console.log(JSON.stringify(result));
