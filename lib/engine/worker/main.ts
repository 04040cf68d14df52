/**
 * The render worker's main loop: one MuPDF instance for one document, ended by the main thread
 * afterwards. It waits for its job, opens the document (open.ts), and renders the pages one by
 * one into an output port made of messages, paced by credits from the main thread; drawing is
 * draw-page.ts's, failure classification failures.ts's. It never touches the
 * file by path: it reads through the descriptor the main thread opened.
 */
import './wasm-hook.js';
import { parentPort } from 'node:worker_threads';
import * as mupdf from 'mupdf';
import { fullImageOf, pageGeometry, pagesOfLane, selectPages, type PageBox } from '../options.js';
import type { JobInput, MainMessage, WorkerMessage } from '../protocol.js';
import { drawPage } from './draw-page.js';
import { drawLevel } from './draw-level.js';
import { drawRegion } from './draw-region.js';
import { pageExtras } from './extras.js';
import { isFatal, pageErrorOf, RendererPoisoned } from './failures.js';
import { DocumentFailure, openDocument, pageLostInRepair, type OpenedDocument } from './open.js';
import { outlineOf } from './outline.js';
import type { PageOutput } from './page-output.js';
import { stackGuardIntact, wasmHeapBytes } from './wasm-hook.js';

const port = parentPort!;

function send(message: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

/**
 * Backpressure: the main thread grants credits as it consumes bands, so a slow consumer
 * (uploads) never makes encoded pages pile up in memory.
 */
class Credits {
  private available = 0;
  private wake: (() => void) | undefined;

  give(count: number): void {
    this.available += count;
    this.wake?.();
  }

  async take(): Promise<void> {
    while (this.available <= 0) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    this.available--;
  }
}

const credits = new Credits();
let given: (input: JobInput) => void;
const job = new Promise<JobInput>((resolve) => (given = resolve));
port.on('message', (message: MainMessage) => {
  if (message.type === 'open') {
    credits.give(message.input.initialCredits);
    given(message.input);
  } else if (message.type === 'credit') {
    credits.give(message.count);
  }
});

// MuPDF's own diagnostics: forwarded for the logs, and kept to classify open failures.
const MAX_FORWARDED_LOGS = 50;
let forwardedLogs = 0;
const openLog: string[] = [];
mupdf.setLog({
  warning: (message) => log('warning', message),
  error: (message) => log('error', message),
});
function log(level: 'warning' | 'error', message: string): void {
  if (openLog.length < MAX_FORWARDED_LOGS) openLog.push(message);
  if (forwardedLogs++ < MAX_FORWARDED_LOGS) send({ type: 'log', level, message });
}

/** Set after a WebAssembly trap or a stack overflow: MuPDF's memory is not to be touched again. */
let poisoned = false;

/**
 * Anything written below the stack means it overflowed: the page's pixels, and MuPDF's state,
 * cannot be trusted. The worker ends (the page fails as crashed, the rest goes on in a fresh one).
 */
function checkStackGuard(): void {
  if (stackGuardIntact()) return;
  poisoned = true;
  throw new RendererPoisoned('the renderer ran out of stack on this page (content nested too deep)');
}

/** One page's output port, as messages: page-begin (with the page's warning, if any), bands (each after a credit). */
function messageOutput(pageNumber: number, warning: string | undefined, box?: PageBox): PageOutput & { waitedMs: number } {
  const output = {
    waitedMs: 0,
    begin: (geometry, color) => {
      send({ type: 'page-begin', pageNumber, width: geometry.width, height: geometry.height, dpi: geometry.dpi, color, ...(warning ? { warning } : {}), ...(box ? { box } : {}) });
    },
    takeCredit: async () => {
      const waitStarted = performance.now();
      await credits.take();
      output.waitedMs += performance.now() - waitStarted;
    },
    returnCredit: () => credits.give(1),
    band: (rows, bytes) => send({ type: 'band', pageNumber, rows, bytes }, [bytes.buffer as ArrayBuffer]),
  } satisfies PageOutput & { waitedMs: number };
  return output;
}

/** One page, sent as page-begin, bands, page-end (or page-error at any point). */
async function renderPage(input: JobInput, doc: mupdf.Document, pageNumber: number, repaired: boolean): Promise<void> {
  const started = performance.now();
  const { output } = input;
  let page: mupdf.Page | undefined;
  try {
    if (repaired && pageLostInRepair(doc, pageNumber)) {
      const message = 'the page object is missing: MuPDF repaired the document and found nothing to draw for this page';
      send({ type: 'page-error', pageNumber, error: { code: 'PAGE_RENDER_FAILED', message }, wasmHeapBytes: wasmHeapBytes() });
      return;
    }
    page = doc.loadPage(pageNumber - 1);
    const box = page.getBounds() as PageBox;
    if (input.region || input.level !== undefined) {
      await renderRegion(input, page, box, pageNumber, started);
      return;
    }
    const { geometry, warning } = pageGeometry(box, output);
    if (!geometry) {
      const message = `page box ${(box[2] - box[0]).toFixed(0)}x${(box[3] - box[1]).toFixed(0)} pt exceeds ${output.maxPagePixels} pixels even at 1 dpi`;
      send({ type: 'page-error', pageNumber, error: { code: 'PAGE_TOO_LARGE', message }, wasmHeapBytes: wasmHeapBytes() });
      return;
    }
    const out = messageOutput(pageNumber, warning && `page ${pageNumber}: ${warning}`, box);
    await drawPage(page, box, geometry, out, { bandBytes: input.bandBytes, layout: output.format === 'png' ? 'png' : 'packed' });
    // Thumbnail and text from the same page load, before page-end; the page stands without them.
    const extras = pageExtras(page, box, geometry, pageNumber, { thumbnailWidth: input.thumbnailWidth ?? 0, pageText: input.pageText ?? false }, (message) =>
      log('warning', message),
    );
    checkStackGuard();
    const transfer = [extras.thumbnail?.rgb.buffer, extras.text?.json.buffer].filter((b): b is ArrayBuffer => b !== undefined);
    send({ type: 'page-end', pageNumber, renderMs: performance.now() - started - out.waitedMs, wasmHeapBytes: wasmHeapBytes(), ...extras }, transfer);
  } catch (err) {
    if (isFatal(err)) {
      poisoned = true;
      throw err;
    }
    checkStackGuard();
    const error = pageErrorOf(err, 'even drawn in bands');
    send({ type: 'page-error', pageNumber, error, wasmHeapBytes: wasmHeapBytes() });
  } finally {
    // After a trap MuPDF's memory is not to be touched again: the worker is about to end.
    if (!poisoned) {
      page?.destroy();
      // Cached fonts and images stay useful for the next page, but never let them accumulate.
      mupdf.shrinkStore(50);
    }
  }
}

/**
 * A region of the page's full image (RenderOptions.region), or a level of it
 * (RenderOptions.level, raw rows), sent as a page of its size: no thumbnail, no text.
 */
async function renderRegion(input: JobInput, page: mupdf.Page, box: PageBox, pageNumber: number, started: number): Promise<void> {
  const full = fullImageOf(box, input.output.dpi, input.output.maxPagePixels);
  if (!full) {
    send({ type: 'page-error', pageNumber, error: { code: 'PAGE_TOO_LARGE', message: `page exceeds ${input.output.maxPagePixels} pixels even at 1 dpi` }, wasmHeapBytes: wasmHeapBytes() });
    return;
  }
  if (input.level !== undefined) {
    const out = messageOutput(pageNumber, undefined);
    await drawLevel(page, box, full, input.level, out, { bandBytes: input.bandBytes });
    checkStackGuard();
    send({ type: 'page-end', pageNumber, renderMs: performance.now() - started - out.waitedMs, wasmHeapBytes: wasmHeapBytes() });
    return;
  }
  const region = input.region!;
  if (region.x + region.w > full.width || region.y + region.h > full.height) {
    const message = `region ${region.x},${region.y},${region.w},${region.h} is outside the page's ${full.width}x${full.height} image`;
    send({ type: 'page-error', pageNumber, error: { code: 'PAGE_RENDER_FAILED', message }, wasmHeapBytes: wasmHeapBytes() });
    return;
  }
  const out = messageOutput(pageNumber, undefined);
  await drawRegion(page, box, full, region, out, { bandBytes: input.bandBytes, layout: input.output.format === 'png' ? 'png' : 'packed' });
  checkStackGuard();
  send({ type: 'page-end', pageNumber, renderMs: performance.now() - started - out.waitedMs, wasmHeapBytes: wasmHeapBytes() });
}

/**
 * Every page's box (loaded one at a time, the store shrunk after each), the title and the
 * outline (bounded: outline.ts), for RenderOptions.pageBoxes: one open of the document gives
 * IIIF all it needs of it.
 */
function pageBoxesOf(doc: mupdf.Document, pageCount: number): Pick<Extract<WorkerMessage, { type: 'opened' }>, 'pageBoxes' | 'title' | 'outline' | 'outlineTruncated'> {
  const pageBoxes: PageBox[] = [];
  for (let i = 0; i < pageCount; i++) {
    const page = doc.loadPage(i);
    try {
      pageBoxes.push(page.getBounds() as PageBox);
    } finally {
      page.destroy();
    }
    if (i % 100 === 99) mupdf.shrinkStore(50);
  }
  const title = doc.getMetaData('info:Title')?.trim();
  const outline = outlineOf(doc, pageCount, (message) => log('warning', message));
  // MuPDF walks the outline recursively in C first: a nesting deep enough to overflow the stack ends the worker here.
  checkStackGuard();
  return { pageBoxes, ...(title ? { title } : {}), ...(outline ? { outline: outline.outline } : {}), ...(outline?.truncated ? { outlineTruncated: true as const } : {}) };
}

async function main(): Promise<void> {
  // MuPDF is instantiated (the import above waited for it): a spare worker waits here for its
  // job, and says it is ready once a session listens.
  const input = await job;
  send({ type: 'ready' });
  let opened: OpenedDocument;
  try {
    opened = openDocument(input.fd, input.fileSize, openLog);
  } catch (err) {
    if (!(err instanceof DocumentFailure)) throw err;
    send({ type: 'failed', code: err.code, message: err.message });
    return;
  }
  const { doc, pageCount, warnings, repaired } = opened;
  const pageNumbers = input.pageNumbers ?? selectPages(pageCount, { pages: input.pages, maxPages: input.output.maxPages });
  // The job hears the whole selection; this worker draws its lane's share of it.
  send({ type: 'opened', pageCount, pageNumbers, warnings, ...(input.pageBoxes ? pageBoxesOf(doc, pageCount) : {}) });
  for (const pageNumber of input.lane ? pagesOfLane(pageNumbers, input.lane) : pageNumbers) {
    send({ type: 'page-start', pageNumber });
    await renderPage(input, doc, pageNumber, repaired);
  }
  doc.destroy();
  send({ type: 'done', wasmHeapBytes: wasmHeapBytes() });
}

await main();
