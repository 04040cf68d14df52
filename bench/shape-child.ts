/**
 * Our renderer on one file for the power tuning (bench/power-tuning.ts): bundled like the
 * deployed function and run inside a Lambda-shaped cgroup, it is one Lambda container: a cold
 * job, then --runs warm jobs, each in a fresh worker with a fresh MuPDF as deployed, every page
 * written to <dir>. Unlike bench/render-child.ts it keeps each page's drawing time (from loading
 * the page to its last band drawn), for the p95 page time. Prints one JSON line.
 *   node shape-child.mjs <file.pdf> --out <dir> [--dpi N] [--format png|jpeg] [--runs N]
 */
import '../functions/render-pdf/mupdf-wasm.js';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { parseFormatSetting } from '../lib/config/settings.js';
import { DEFAULT_OUTPUT_OPTIONS, extensionOf, type RenderOptions } from '../lib/engine/options.js';
import { startRender } from '../lib/engine/render.js';
import { pageFileName } from '../lib/job/manifest.js';

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
  options: { out: { type: 'string' }, dpi: { type: 'string', default: '150' }, format: { type: 'string', default: 'png' }, runs: { type: 'string', default: '1' } },
});
const file = positionals[0];
if (!file || !values.out) throw new Error('usage: shape-child.ts <file.pdf> --out <dir> [--dpi N] [--format png|jpeg] [--runs N]');
const format = parseFormatSetting('--format', values.format!);
const options: RenderOptions = { ...DEFAULT_OUTPUT_OPTIONS, format, dpi: Number(values.dpi) };

async function job(): Promise<{ ms: number; pageMs: number[]; pages: number; failed: number }> {
  const started = performance.now();
  const pageMs: number[] = [];
  let pages = 0;
  let failed = 0;
  const render = await startRender(file!, options);
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
