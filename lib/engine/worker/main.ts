/**
 * The render worker: one MuPDF instance for one document, ended by the main thread afterwards.
 * It never touches the file by path: it reads through the descriptor the main thread opened.
 */
import './wasm-hook.js';
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import * as mupdf from 'mupdf';
import { errorMessage, type DocumentErrorCode, type PageError } from '../errors.js';
import { fitPage, pixelRect, selectPages, type PageBox, type PageGeometry } from '../options.js';
import { toScanlines } from '../png-encoder.js';
import type { JobInput, MainMessage, WorkerMessage } from '../protocol.js';
import { stackGuardIntact, wasmHeapBytes } from './wasm-hook.js';
import { WASM_HEAP_LIMIT_BYTES } from '../wasm.js';

const port = parentPort!;

function send(message: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

class DocumentFailure extends Error {
  constructor(
    readonly code: DocumentErrorCode,
    message: string,
  ) {
    super(message);
  }
}

// Backpressure: the main thread grants credits as it consumes pages, so a slow consumer
// (uploads) never makes encoded pages pile up in memory.
let credits = 0;
let wake: (() => void) | undefined;
let given: (input: JobInput) => void;
const job = new Promise<JobInput>((resolve) => (given = resolve));
port.on('message', (message: MainMessage) => {
  if (message.type === 'open') {
    credits = message.input.initialCredits;
    given(message.input);
  } else if (message.type === 'credit') {
    credits += message.count;
    wake?.();
  }
});
// MuPDF is instantiated (the import above waited for it): a spare worker waits here for its job.
const input = await job;
async function takeCredit(): Promise<void> {
  while (credits <= 0) await new Promise<void>((resolve) => (wake = resolve));
  wake = undefined;
  credits--;
}

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

function fileStartsLikePdf(): boolean {
  const head = Buffer.alloc(Math.min(1024, input.fileSize));
  readSync(input.fd, head, 0, head.length, 0);
  return head.includes('%PDF-');
}

function openDocument(): mupdf.Document {
  if (input.fileSize === 0) throw new DocumentFailure('EMPTY', 'the file is empty (0 bytes)');
  const stream = new mupdf.Stream({
    fileSize: () => input.fileSize,
    read: (memory, offset, length, position) => readSync(input.fd, memory, offset, length, position),
    // The main thread owns and closes the descriptor.
    close: () => undefined,
  });
  let doc: mupdf.Document;
  try {
    doc = mupdf.Document.openDocument(stream, 'application/pdf');
  } catch (err) {
    const message = errorMessage(err);
    if (!fileStartsLikePdf()) throw new DocumentFailure('NOT_PDF', `not a PDF: no %PDF- header and MuPDF could not open it (${message})`);
    if (/no objects found/i.test(message)) throw new DocumentFailure('NOT_PDF', `not a PDF: it has a PDF header but no PDF objects (${message})`);
    throw new DocumentFailure('CORRUPT', `damaged beyond repair: ${message}`);
  } finally {
    stream.destroy();
  }
  // MuPDF sniffs the content and ignores the 'application/pdf' hint: HTML, images, etc. named .pdf would render.
  if (!(doc instanceof mupdf.PDFDocument)) {
    const format = doc.getMetaData('format') || 'another format';
    doc.destroy();
    throw new DocumentFailure('NOT_PDF', `not a PDF: the content is ${format}`);
  }
  if (doc.needsPassword()) {
    doc.destroy();
    throw new DocumentFailure('ENCRYPTED', 'the document is encrypted and needs a password to open');
  }
  return doc;
}

const WHITE = 255;
/**
 * Rows drawn above and below each band and thrown away. MuPDF draws through the band's clip,
 * and where a path or glyph crosses the clip edge its rasterization can differ by a level in
 * the rows near it; with this margin, text, line art and mesh shadings come out as a
 * whole-page pixmap has them (tested). Images MuPDF decodes only in part for the band, and
 * lattice shadings, still differ by a resampling phase.
 */
const BAND_MARGIN_ROWS = 32;
/** A JPEG page this large empties MuPDF's caches between drawing and encoding. */
const JPEG_EMPTY_STORE_BYTES = 64 * 2 ** 20;
/** A page that ran out of memory drawn whole is drawn again in at least this many bands. */
const OUT_OF_MEMORY_BANDS = 16;

/** The renderer's state is broken: the worker must end (the main thread treats it as a crash). */
class RendererPoisoned extends Error {
  override readonly name = 'RendererPoisoned';
}
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

/** A WebAssembly trap (out-of-bounds access, unreachable) or a stack overflow caught by the guard. */
function isFatal(err: unknown): boolean {
  return (err instanceof Error && err.name === 'RuntimeError') || err instanceof RendererPoisoned;
}

/** MuPDF's (and its JPEG encoder's) allocation failures, once the heap reached WASM_HEAP_LIMIT_BYTES and the caches were evicted. */
function isOutOfMemory(err: unknown): boolean {
  return /\b(malloc|calloc|realloc)\b.*\bfailed\b|out of memory|insufficient memory/i.test(errorMessage(err));
}

/**
 * One page, sent as page-begin, bands, page-end (or page-error at any point). PNG pages go out
 * as raw RGB bands drawn from one display list into one band-sized pixmap, so their memory is
 * O(band) whatever the page size; JPEG pages are encoded whole, within jpegPixmapBytes.
 */
async function renderPage(doc: mupdf.Document, pageNumber: number): Promise<void> {
  const started = performance.now();
  let waitedMs = 0;
  const waitForCredit = async (): Promise<void> => {
    const waitStarted = performance.now();
    await takeCredit();
    waitedMs += performance.now() - waitStarted;
  };
  let page: mupdf.Page | undefined;
  let list: mupdf.DisplayList | undefined;
  const fail = (error: PageError): void => send({ type: 'page-error', pageNumber, error, wasmHeapBytes: wasmHeapBytes() });
  try {
    page = doc.loadPage(pageNumber - 1);
    const box = page.getBounds() as PageBox;
    const requested = fitPage(box, input.dpi, input.maxPagePixels);
    if (!requested) {
      return fail({
        code: 'PAGE_TOO_LARGE',
        message: `page box ${(box[2] - box[0]).toFixed(0)}x${(box[3] - box[1]).toFixed(0)} pt exceeds ${input.maxPagePixels} pixels even at 1 dpi`,
      });
    }
    let geometry: PageGeometry = requested;
    let warning: string | undefined;
    if (input.format === 'jpeg' && geometry.width * geometry.height * 3 > input.jpegPixmapBytes) {
      // MuPDF encodes JPEG from a whole-page pixmap: past the memory budget, lower the DPI.
      const fitted = fitPage(box, geometry.dpi, Math.floor(input.jpegPixmapBytes / 3));
      if (!fitted) return fail({ code: 'PAGE_TOO_LARGE', message: 'the page does not fit the JPEG memory budget even at 1 dpi' });
      warning = `page ${pageNumber}: JPEG rendered at ${fitted.dpi} dpi instead of ${geometry.dpi} dpi to fit the memory budget (PNG has no such limit)`;
      geometry = fitted;
    }
    const begin = (): void =>
      send({ type: 'page-begin', pageNumber, width: geometry.width, height: geometry.height, dpi: geometry.dpi, ...(warning ? { warning } : {}) });

    if (input.format === 'jpeg') {
      const requestedDpi = geometry.dpi;
      let jpeg: Uint8Array | undefined;
      while (!jpeg) {
        let pixmap: mupdf.Pixmap | undefined;
        try {
          pixmap = page.toPixmap(mupdf.Matrix.scale(geometry.dpi / 72, geometry.dpi / 72), mupdf.ColorSpace.DeviceRGB, false, true);
          // The images this page decoded are drawn: let the encoder have their memory.
          if (geometry.width * geometry.height * 3 > JPEG_EMPTY_STORE_BYTES) mupdf.emptyStore();
          pixmap.setResolution(geometry.dpi, geometry.dpi);
          // Copied out of WebAssembly memory into a buffer the main thread can take over.
          jpeg = new Uint8Array(pixmap.asJPEG(input.jpegQuality, false));
        } catch (err) {
          // Out of the heap ceiling, whole page and encoder together: try again with half the pixels.
          const smaller = isOutOfMemory(err) ? fitPage(box, geometry.dpi, Math.floor((geometry.width * geometry.height) / 2)) : null;
          if (!smaller || smaller.dpi >= geometry.dpi) throw err;
          geometry = smaller;
          warning = `page ${pageNumber}: JPEG rendered at ${geometry.dpi} dpi instead of ${requestedDpi} dpi: at more it needed over the renderer's ${WASM_HEAP_LIMIT_BYTES / 2 ** 20} MiB (PNG has no such limit)`;
          mupdf.emptyStore();
        } finally {
          pixmap?.destroy();
        }
      }
      begin();
      await waitForCredit();
      send({ type: 'band', pageNumber, rows: geometry.height, bytes: jpeg, encoded: true }, [jpeg.buffer as ArrayBuffer]);
    } else {
      begin();
      const ctm = mupdf.Matrix.scale(geometry.dpi / 72, geometry.dpi / 72);
      const [x0, y0, x1] = pixelRect(box, geometry.dpi);
      const sendBand = (rows: number, pixmap: mupdf.Pixmap, skipRows: number): void => {
        const stride = geometry.width * 3;
        // Copied out of WebAssembly memory as PNG scanlines, into a buffer the main thread takes over.
        const scanlines = toScanlines(pixmap.getPixels().subarray(skipRows * stride, (skipRows + rows) * stride), geometry.width, rows, 3);
        send({ type: 'band', pageNumber, rows, bytes: scanlines, encoded: false }, [scanlines.buffer as ArrayBuffer]);
      };
      let rowsPerBand = Math.max(1, Math.floor(input.bandBytes / (geometry.width * 3)));
      if (rowsPerBand >= geometry.height) {
        // A page that fits one band is drawn directly.
        await waitForCredit();
        let pixmap: mupdf.Pixmap | undefined;
        try {
          pixmap = page.toPixmap(ctm, mupdf.ColorSpace.DeviceRGB, false, true);
          sendBand(geometry.height, pixmap, 0);
        } catch (err) {
          if (!isOutOfMemory(err)) throw err;
          // Nothing was sent: draw it again in small bands, where MuPDF holds only the edges
          // and pixels of one band (a page of millions of path segments, say).
          credits++;
          mupdf.emptyStore();
          rowsPerBand = Math.ceil(geometry.height / OUT_OF_MEMORY_BANDS);
          if (rowsPerBand >= geometry.height) throw err;
        } finally {
          pixmap?.destroy();
        }
      }
      if (rowsPerBand < geometry.height) {
        list = page.toDisplayList(true);
        for (let top = 0; top < geometry.height; top += rowsPerBand) {
          const rows = Math.min(rowsPerBand, geometry.height - top);
          await waitForCredit();
          let pixmap: mupdf.Pixmap | undefined;
          let device: mupdf.DrawDevice | undefined;
          try {
            const above = Math.min(BAND_MARGIN_ROWS, top);
            const below = Math.min(BAND_MARGIN_ROWS, geometry.height - top - rows);
            pixmap = new mupdf.Pixmap(mupdf.ColorSpace.DeviceRGB, [x0, y0 + top - above, x1, y0 + top + rows + below], false);
            pixmap.clear(WHITE);
            device = new mupdf.DrawDevice(mupdf.Matrix.identity, pixmap);
            list.run(device, ctm);
            device.close();
            sendBand(rows, pixmap, above);
          } finally {
            device?.destroy();
            pixmap?.destroy();
          }
        }
      }
    }
    checkStackGuard();
    send({ type: 'page-end', pageNumber, renderMs: performance.now() - started - waitedMs, wasmHeapBytes: wasmHeapBytes() });
  } catch (err) {
    if (isFatal(err)) {
      poisoned = true;
      throw err;
    }
    checkStackGuard();
    if (isOutOfMemory(err)) {
      const tried = input.format === 'png' ? 'even drawn in bands' : 'even at a lower DPI';
      fail({ code: 'PAGE_OUT_OF_MEMORY', message: `the page needs more than the renderer's ${WASM_HEAP_LIMIT_BYTES / 2 ** 20} MiB, ${tried}: ${errorMessage(err)}` });
    } else if (/exception stack overflow/i.test(errorMessage(err))) {
      fail({ code: 'PAGE_RENDER_FAILED', message: `the page's content is nested deeper than MuPDF allows (forms, patterns or groups): ${errorMessage(err)}` });
    } else {
      fail({ code: 'PAGE_RENDER_FAILED', message: errorMessage(err) });
    }
  } finally {
    // After a trap MuPDF's memory is not to be touched again: the worker is about to end.
    if (!poisoned) {
      list?.destroy();
      page?.destroy();
      // Cached fonts and images stay useful for the next page, but never let them accumulate.
      mupdf.shrinkStore(50);
    }
  }
}

async function main(): Promise<void> {
  send({ type: 'ready' });
  let doc: mupdf.Document;
  try {
    doc = openDocument();
  } catch (err) {
    if (err instanceof DocumentFailure) {
      send({ type: 'failed', code: err.code, message: err.message });
      return;
    }
    send({ type: 'failed', code: 'CORRUPT', message: `could not open: ${errorMessage(err)}` });
    return;
  }
  const warnings: string[] = [];
  const repaired = doc instanceof mupdf.PDFDocument && doc.wasRepaired();
  if (repaired) warnings.push('document was damaged and repaired');
  let pageCount: number;
  try {
    pageCount = doc.countPages();
  } catch (err) {
    send({ type: 'failed', code: 'CORRUPT', message: `cannot read the page tree: ${errorMessage(err)}` });
    return;
  }
  if (pageCount === 0) {
    if (repaired || openLog.length > 0) {
      send({ type: 'failed', code: 'CORRUPT', message: `no usable page tree: ${openLog.slice(0, 3).join('; ') || 'repair found no pages'}` });
    } else {
      send({ type: 'failed', code: 'NO_PAGES', message: 'the document has no pages' });
    }
    return;
  }
  const pageNumbers = input.pageNumbers ?? selectPages(pageCount, input);
  send({ type: 'opened', pageCount, pageNumbers, warnings });
  for (const pageNumber of pageNumbers) {
    send({ type: 'page-start', pageNumber });
    await renderPage(doc, pageNumber);
  }
  doc.destroy();
  send({ type: 'done', wasmHeapBytes: wasmHeapBytes() });
}

await main();
