/**
 * Memory probe, run as its own process so its RSS is not the test runner's:
 *
 *   node --expose-gc --import tsx bench/memory-probe.ts [--jobs N] [--dpi N] [--format png|jpeg|webp|avif] [--direct]
 *        [--heavy file.pdf] [--light file.pdf] [--light-pages 1-3] [--summary]
 *
 * Renders N documents in one process, alternating light and heavy (light first), and prints
 * one JSON object: RSS after each job (after a forced GC), its WASM heap peak, and VmHWM.
 * --direct bypasses the render worker: MuPDF runs in this thread (the CONTROL; its WebAssembly
 * memory can never shrink, so RSS must stay high after the heavy document).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { parseFormatSetting, parsePageSelection } from '../lib/config/settings.js';
import { DEFAULT_OUTPUT_OPTIONS, selectPages, type PageRange, type RenderOptions } from '../lib/engine/options.js';
import { startRender } from '../lib/engine/render.js';
import { corpusFile } from '../tools/corpus.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20' },
    dpi: { type: 'string', default: '150' },
    direct: { type: 'boolean', default: false },
    heavy: { type: 'string', default: corpusFile('go-poster-3294pt.pdf') },
    light: { type: 'string', default: corpusFile('tracemonkey-paper-14p.pdf') },
    'light-pages': { type: 'string', default: '1-3' },
    format: { type: 'string', default: 'png' },
    /** One line per 20 jobs and the first/last RSS instead of every job's figures. */
    summary: { type: 'boolean', default: false },
  },
});

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function vmHwmBytes(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const SETTLE_MS = Number(process.env['PROBE_SETTLE_MS'] ?? 50);
async function settledRss(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await sleep(SETTLE_MS);
  }
  return process.memoryUsage().rss;
}

interface JobResult {
  pages: number;
  bytes: number;
  wasmHeapPeakBytes: number;
}

async function viaWorker(path: string, options: RenderOptions): Promise<JobResult> {
  const job = await startRender(path, options);
  let pages = 0;
  let bytes = 0;
  for await (const page of job) {
    if (!page.ok) throw new Error(`page ${page.pageNumber}: ${page.error.code} ${page.error.message}`);
    for await (const chunk of page.body) bytes += (chunk as Buffer).byteLength;
    await page.finished;
    pages++;
  }
  return { pages, bytes, wasmHeapPeakBytes: job.stats.wasmHeapPeakBytes };
}

/** JS-side figures, to tell a JS leak (heapUsed, arrayBuffers) from native memory kept by malloc. */
function heapFigures() {
  const { heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { heapTotal, heapUsed, external, arrayBuffers };
}

let mupdf: typeof import('mupdf') | undefined;
/** The same rendering with MuPDF in this thread, everything destroyed afterwards. */
async function direct(path: string, options: RenderOptions): Promise<JobResult> {
  mupdf ??= await import('mupdf');
  const doc = mupdf.Document.openDocument(readFileSync(path), 'application/pdf');
  let pages = 0;
  let bytes = 0;
  for (const n of selectPages(doc.countPages(), options)) {
    const page = doc.loadPage(n - 1);
    const scale = options.dpi / 72;
    const pixmap = page.toPixmap([scale, 0, 0, scale, 0, 0], mupdf.ColorSpace.DeviceRGB, false, true);
    bytes += pixmap.asPNG().byteLength;
    pixmap.destroy();
    page.destroy();
    mupdf.emptyStore();
    pages++;
  }
  doc.destroy();
  return { pages, bytes, wasmHeapPeakBytes: 0 };
}

const dpi = Number(values.dpi);
const jobs = Number(values.jobs);
const heavy = resolve(values.heavy!);
const light = resolve(values.light!);
const lightPages: PageRange[] = parsePageSelection(values['light-pages']!);
const format = parseFormatSetting('--format', values.format!);
const startRss = await settledRss();
const results = [];
for (let i = 0; i < jobs; i++) {
  const isHeavy = i % 2 === 1;
  const options: RenderOptions = { ...DEFAULT_OUTPUT_OPTIONS, dpi, format, ...(isHeavy ? {} : { pages: lightPages }) };
  const started = performance.now();
  const r = await (values.direct ? direct : viaWorker)(isHeavy ? heavy : light, options);
  const ms = Math.round(performance.now() - started);
  results.push({ job: i, kind: isHeavy ? 'heavy' : 'light', ms, ...r, rss: await settledRss(), vmHwm: vmHwmBytes(), ...heapFigures() });
  if (values.summary && (i + 1) % 20 === 0) {
    const MiB = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    process.stderr.write(`${i + 1} documents: RSS ${MiB(results.at(-1)!.rss)}, VmHWM ${MiB(vmHwmBytes())}\n`);
  }
}
if (values.summary) {
  const MiB = (n: number) => Math.round(n / 2 ** 20);
  console.log(JSON.stringify({ mode: values.direct ? 'direct' : 'worker', format, dpi, heavy, light, jobs, startRssMiB: MiB(startRss), afterFirst20MiB: MiB(results[Math.min(19, results.length - 1)]!.rss), lastRssMiB: MiB(results.at(-1)!.rss), vmHwmMiB: MiB(vmHwmBytes()) }));
} else {
  console.log(JSON.stringify({ mode: values.direct ? 'direct' : 'worker', format, dpi, heavy, light, startRss, results }));
}
