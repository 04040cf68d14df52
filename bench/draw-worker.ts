/**
 * The floor under our pages, for `shape-child.ts --draw-only`: a worker thread with its own
 * MuPDF (instantiated from the module the main thread compiled, as a render worker is) that
 * draws every page as the render worker draws it (lib/engine/worker/draw-page.ts: bands,
 * gray detection, the copy out of WebAssembly memory) and throws the rows away: nothing
 * encoded, nothing written. Posts each page's drawing time, then ends.
 */
import '../lib/engine/worker/wasm-hook.js';
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import * as mupdf from 'mupdf';
import { BAND_BYTES } from '../lib/engine/job.js';
import { fitPage, type PageBox } from '../lib/engine/options.js';
import type { WorkerBoot } from '../lib/engine/protocol.js';
import type { RowLayout } from '../lib/encode/rows.js';
import { drawPage } from '../lib/engine/worker/draw-page.js';

export interface DrawOnlyInput extends WorkerBoot {
  file: string;
  dpi: number;
  maxPagePixels: number;
  layout: RowLayout;
  /** This worker's pages: every count-th, from the index-th (as a job's lanes share a document). */
  lane: { index: number; count: number };
}

const input = workerData as DrawOnlyInput;
const discard = { begin: () => undefined, takeCredit: async () => undefined, returnCredit: () => undefined, band: () => undefined };
const pageMs: number[] = [];
let failed = 0;
const doc = mupdf.Document.openDocument(readFileSync(input.file), 'application/pdf');
for (let n = input.lane.index; n < doc.countPages(); n += input.lane.count) {
  const started = performance.now();
  const page = doc.loadPage(n);
  try {
    const box = page.getBounds() as PageBox;
    const geometry = fitPage(box, input.dpi, input.maxPagePixels);
    if (!geometry) throw new Error('page too large');
    await drawPage(page, box, geometry, discard, { bandBytes: BAND_BYTES, layout: input.layout });
    pageMs.push(performance.now() - started);
  } catch {
    failed++;
  } finally {
    page.destroy();
    mupdf.shrinkStore(50);
  }
}
doc.destroy();
parentPort!.postMessage({ pageMs, failed });
