/**
 * The job API: one document, rendered page by page in a worker thread that owns a fresh MuPDF
 * instance and is always ended afterwards, so WebAssembly memory (which never shrinks) goes back
 * to the OS with it. The worker draws; the main thread compresses (zlib on the libuv pool) and
 * streams each page out while the worker draws the next one (session.ts). This file owns the
 * job's lifetime: opening, the order of results, the restart policy after a crashed or
 * timed-out page, the deadline, abort and close.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { RenderError, pageErrors } from './errors.js';
import { LIMITS, outputOptionsOf, type RenderOptions } from './options.js';
import { startSpare, takeWorker } from './pool.js';
import type { JobInput, WorkerMessage } from './protocol.js';
import type { PageResult } from './results.js';
import { WorkerSession, sessionEndPageError, type SessionEvent } from './session.js';
import { mupdfWasmModule } from './wasm.js';

export interface RenderStats {
  /** Largest WebAssembly memory of any worker of this job. */
  wasmHeapPeakBytes: number;
  /** Workers started: 1, plus one per page that crashed or timed out. */
  workers: number;
  /** From startRender to the document open in its worker: worker start, MuPDF instantiation, parsing. */
  startupMs: number;
}

export interface RenderJob extends AsyncIterable<PageResult> {
  readonly pageCount: number;
  /** The pages this job renders, ascending. */
  readonly pageNumbers: readonly number[];
  readonly warnings: readonly string[];
  readonly stats: RenderStats;
  /** Ends the worker and releases the file. Idempotent; iteration to the end does it too. */
  close(): Promise<void>;
}

export interface RenderControl {
  signal?: AbortSignal;
  /** MuPDF's own warnings and errors, for logging. */
  onLog?: (level: 'warning' | 'error', message: string) => void;
  /**
   * A Date.now() epoch in ms: a page still drawing then is cut off (its worker ended), reported
   * as the job's last result with `deadline: true`, and no later page is rendered.
   */
  deadline?: number;
}

/** Bands (whole pages, mostly) drawn but not yet compressed: the worker waits beyond this. */
const BANDS_AHEAD = 3;
/**
 * Largest raw band: a Letter page up to 200 dpi (11 MB) or A3 at 150 is drawn in one piece,
 * posters in several. At 24 MB a 9000 px scan page made MuPDF decode larger image tiles and the
 * process peaked at 555 MB RSS; at 16 MB, 456 MB (multipage-9000px-image).
 */
const BAND_BYTES = 16 * 2 ** 20;
/**
 * Largest whole-page pixmap for JPEG (MuPDF's JPEG encoder takes the page in one piece). At
 * 160 MiB a 40 Mpx poster page, drawn and encoded, ran out of the 384 MiB heap and fell back to
 * half its pixels; at 96 MiB it is drawn at 96% of its DPI in one go.
 */
const JPEG_PIXMAP_BYTES = 96 * 2 ** 20;
/** After this many crashed or timed-out pages the rest of the document is not attempted. */
const MAX_WORKER_RESTARTS = 3;

/**
 * Does ahead of the first job what it would otherwise pay for: compiling MuPDF's WebAssembly
 * and starting the spare worker (MuPDF instantiated, no document). Call it at a Lambda's init
 * (functions/render-pdf/mupdf-wasm.ts does): the first invocation then starts like a warm one.
 * Never throws; a failure here is met again, and reported, by the first job.
 */
export function prewarm(): Promise<void> {
  return mupdfWasmModule().then(
    ({ module, guard }) => startSpare({ wasmModule: module, stackGuard: guard }),
    () => undefined,
  );
}

/**
 * Opens `filePath` in a fresh worker and resolves once the document is open, with its page
 * count; document-level failures reject with a RenderError. Iterate the job for the pages, in
 * order, and read each page's body. The worker ends when iteration ends, on error, on abort,
 * or on close().
 */
export async function startRender(filePath: string, options: RenderOptions, control: RenderControl = {}): Promise<RenderJob> {
  const { signal } = control;
  const { thumbnailWidth } = options;
  if (thumbnailWidth !== undefined && !(Number.isInteger(thumbnailWidth) && thumbnailWidth >= LIMITS.thumbnailWidth.min && thumbnailWidth <= LIMITS.thumbnailWidth.max)) {
    throw new RangeError(`thumbnailWidth must be a whole number of pixels in ${LIMITS.thumbnailWidth.min}..${LIMITS.thumbnailWidth.max}, got ${thumbnailWidth}`);
  }
  if (signal?.aborted) throw new RenderError('ABORTED', `render aborted: ${String(signal.reason ?? 'aborted')}`);
  const { module: wasmModule, guard: stackGuard } = await mupdfWasmModule();
  const fd = openSync(filePath, 'r');
  const fileSize = fstatSync(fd).size;
  const started = performance.now();
  const stats: RenderStats = { wasmHeapPeakBytes: 0, workers: 0, startupMs: 0 };
  let session: WorkerSession | undefined;
  let closed = false;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    signal?.removeEventListener('abort', onAbort);
    try {
      await session?.terminate();
    } finally {
      closeSync(fd);
    }
  };
  // Abort ends the worker at once, even in the middle of a page.
  const onAbort = (): void => {
    void session?.terminate('aborted');
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  const spawn = (pageNumbers?: number[]): WorkerSession => {
    stats.workers++;
    const input: JobInput = {
      fd,
      fileSize,
      output: outputOptionsOf(options),
      ...(options.pages ? { pages: options.pages } : {}),
      ...(pageNumbers ? { pageNumbers } : {}),
      initialCredits: BANDS_AHEAD,
      bandBytes: options.bandBytes ?? BAND_BYTES,
      jpegPixmapBytes: JPEG_PIXMAP_BYTES,
      ...(options.thumbnailWidth ? { thumbnailWidth: options.thumbnailWidth } : {}),
      ...(options.pageText ? { pageText: true } : {}),
    };
    return new WorkerSession(takeWorker({ wasmModule, stackGuard }), input, {
      format: options.format,
      pageTimeoutMs: options.pageTimeoutMs,
      deadline: control.deadline,
      onLog: control.onLog,
    });
  };

  const nextEvent = async (current: WorkerSession): Promise<SessionEvent> => {
    const event = await current.next();
    stats.wasmHeapPeakBytes = Math.max(stats.wasmHeapPeakBytes, current.wasmHeapBytes);
    if (signal?.aborted) throw new RenderError('ABORTED', `render aborted: ${String(signal.reason ?? 'aborted')}`);
    return event;
  };

  /** Waits for a fresh worker to open the document: its 'opened' message, or the reason it did not. */
  const awaitOpened = async (current: WorkerSession): Promise<Extract<WorkerMessage, { type: 'opened' }>> => {
    const ready = await nextEvent(current);
    if (ready.type !== 'ready') {
      throw new RenderError('WORKER_FAILED', `the render worker did not start: ${ready.type === 'crashed' ? ready.message : ready.type}`);
    }
    const event = await nextEvent(current);
    if (event.type === 'failed') throw new RenderError(event.code, event.message);
    if (event.type === 'crashed') throw new RenderError('RENDERER_CRASHED', `the renderer crashed while opening the document: ${event.message}`);
    if (event.type !== 'opened') throw new RenderError('WORKER_FAILED', `unexpected message from the render worker: ${event.type}`);
    return event;
  };

  let opened: Extract<WorkerMessage, { type: 'opened' }>;
  try {
    session = spawn();
    opened = await awaitOpened(session);
    stats.startupMs = performance.now() - started;
  } catch (err) {
    await close();
    throw err;
  }

  async function* pages(): AsyncGenerator<PageResult> {
    // Pages neither begun nor failed yet: what a fresh worker resumes with after a crash.
    let remaining = opened.pageNumbers.slice();
    const settle = (pageNumber: number): void => {
      remaining = remaining.filter((n) => n !== pageNumber);
    };
    try {
      // Until the worker says done: the last page may still be streaming after it began.
      for (;;) {
        const current = session!;
        const event = await nextEvent(current);
        switch (event.type) {
          case 'page':
            settle(event.page.pageNumber);
            yield event.page;
            break;
          case 'page-error':
            settle(event.pageNumber);
            yield { ok: false, pageNumber: event.pageNumber, error: event.error };
            break;
          case 'done':
            return;
          case 'deadline':
            // Not a failure: the page the worker was on (begun or not) is where the next attempt
            // resumes, and nothing after it is rendered.
            await current.terminate();
            yield { ok: false, pageNumber: event.pageNumber, error: pageErrors.deadline(), deadline: true };
            return;
          case 'crashed':
          case 'page-timeout': {
            // A page that had begun streaming already failed through its body; one that had
            // not is reported here. Either way the document goes on in a fresh worker.
            const failedPage = current.inFlight;
            if (failedPage === undefined) {
              throw new RenderError('WORKER_FAILED', `the render worker stopped between pages: ${event.type === 'crashed' ? event.message : 'timeout'}`);
            }
            if (remaining.includes(failedPage)) {
              settle(failedPage);
              yield { ok: false, pageNumber: failedPage, error: sessionEndPageError(event, options.pageTimeoutMs)! };
            }
            await current.terminate();
            if (remaining.length === 0) return;
            if (stats.workers > MAX_WORKER_RESTARTS) {
              for (const pageNumber of remaining) yield { ok: false, pageNumber, error: pageErrors.notAttempted(MAX_WORKER_RESTARTS) };
              return;
            }
            // A fresh MuPDF for the rest of the document.
            session = spawn(remaining);
            await awaitOpened(session);
            break;
          }
          case 'failed':
          case 'opened':
          case 'ready':
          case 'page-start':
            throw new RenderError('WORKER_FAILED', `unexpected message from the render worker: ${event.type}`);
        }
      }
    } finally {
      await close();
    }
  }

  const iterator = pages();
  return {
    pageCount: opened.pageCount,
    pageNumbers: opened.pageNumbers,
    warnings: opened.warnings,
    stats,
    close: async () => {
      await iterator.return(undefined);
      await close();
    },
    [Symbol.asyncIterator]: () => iterator,
  };
}
