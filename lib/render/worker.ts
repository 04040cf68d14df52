/**
 * The render worker: one MuPDF instance for one document, ended by the main thread afterwards.
 * It never touches the file by path: it reads through the descriptor the main thread opened.
 */
import './wasm-hook.js';
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import * as mupdf from 'mupdf';
import { errorMessage, type DocumentErrorCode, type PageError } from './errors.js';
import { fitPage, selectPages, type PageBox } from './options.js';
import type { MainMessage, WorkerInput, WorkerMessage } from './protocol.js';
import { wasmHeapBytes } from './wasm-hook.js';

const input = workerData as WorkerInput;
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
let credits = input.initialCredits;
let wake: (() => void) | undefined;
port.on('message', (message: MainMessage) => {
  if (message.type === 'credit') {
    credits += message.count;
    wake?.();
  }
});
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
  if (doc.needsPassword()) {
    doc.destroy();
    throw new DocumentFailure('ENCRYPTED', 'the document is encrypted and needs a password to open');
  }
  return doc;
}

function renderPage(doc: mupdf.Document, pageNumber: number): void {
  const started = performance.now();
  let page: mupdf.Page | undefined;
  let pixmap: mupdf.Pixmap | undefined;
  try {
    page = doc.loadPage(pageNumber - 1);
    const box = page.getBounds() as PageBox;
    const geometry = fitPage(box, input.dpi, input.maxPagePixels);
    if (!geometry) {
      const error: PageError = {
        code: 'PAGE_TOO_LARGE',
        message: `page box ${(box[2] - box[0]).toFixed(0)}x${(box[3] - box[1]).toFixed(0)} pt exceeds ${input.maxPagePixels} pixels even at 1 dpi`,
      };
      send({ type: 'page-error', pageNumber, error, wasmHeapBytes: wasmHeapBytes() });
      return;
    }
    const scale = geometry.dpi / 72;
    pixmap = page.toPixmap([scale, 0, 0, scale, 0, 0], mupdf.ColorSpace.DeviceRGB, false, true);
    pixmap.setResolution(geometry.dpi, geometry.dpi);
    const drawn = performance.now();
    // asPNG/asJPEG return a view into a JS-side copy, so it survives the pixmap's destruction.
    const encoded = input.format === 'png' ? pixmap.asPNG() : pixmap.asJPEG(input.jpegQuality, false);
    const bytes = encoded.byteOffset === 0 && encoded.byteLength === encoded.buffer.byteLength ? encoded : encoded.slice();
    send(
      {
        type: 'page',
        pageNumber,
        width: pixmap.getWidth(),
        height: pixmap.getHeight(),
        dpi: geometry.dpi,
        bytes,
        renderMs: drawn - started,
        encodeMs: performance.now() - drawn,
        wasmHeapBytes: wasmHeapBytes(),
      },
      [bytes.buffer as ArrayBuffer],
    );
  } catch (err) {
    const error: PageError = { code: 'PAGE_RENDER_FAILED', message: errorMessage(err) };
    send({ type: 'page-error', pageNumber, error, wasmHeapBytes: wasmHeapBytes() });
  } finally {
    pixmap?.destroy();
    page?.destroy();
    // Cached fonts and images stay useful for the next page, but never let them accumulate.
    mupdf.shrinkStore(50);
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
    await takeCredit();
    send({ type: 'page-start', pageNumber });
    renderPage(doc, pageNumber);
  }
  doc.destroy();
  send({ type: 'done', wasmHeapBytes: wasmHeapBytes() });
}

await main();
