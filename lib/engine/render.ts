/**
 * The render core: one document, rendered page by page in a worker thread that owns a fresh
 * MuPDF instance and is always ended afterwards, so WebAssembly memory (which never shrinks)
 * goes back to the OS with it. The worker draws; this thread compresses (zlib on the libuv
 * pool) and streams each page out while the worker draws the next one.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { RenderError, type PageError } from './errors.js';
import { contentTypeOf, type RenderOptions } from './options.js';
import { createPngEncoder, type PngEncoder } from './png-encoder.js';
import type { JobInput, MainMessage, WorkerBoot, WorkerMessage } from './protocol.js';
import { mupdfWasmModule } from './wasm.js';

/** Why a page that had started streaming did not finish: its body and `finished` fail with it. */
export class PageFailedError extends Error {
  override readonly name = 'PageFailedError';
  constructor(
    readonly pageError: PageError,
    /** The page was cut off at the job's deadline (RenderControl.deadline): not a failure of the page. */
    readonly deadline: boolean = false,
  ) {
    super(`${pageError.code}: ${pageError.message}`);
  }
}

export interface PageStats {
  /** Bytes of the encoded image. */
  bytes: number;
  /** From loading the page to its last band drawn. */
  renderMs: number;
}

export interface RenderedPage {
  ok: true;
  pageNumber: number;
  width: number;
  height: number;
  /** The DPI actually used: lower than requested when the page exceeded the pixel budget. */
  dpi: number;
  contentType: string;
  /** The encoded image as it is produced. Read it: the worker waits for its reader. */
  body: Readable;
  /** Resolves when the whole image was produced; rejects with PageFailedError if the page failed midway. */
  finished: Promise<PageStats>;
  /** Set when the page was rendered below the requested DPI for a reason worth recording. */
  warning?: string;
}

export interface FailedPage {
  ok: false;
  pageNumber: number;
  error: PageError;
  /**
   * The job's deadline cut this page off (RenderControl.deadline): the page did not fail, it is
   * where a later attempt resumes. Always the job's last result.
   */
  deadline?: true;
}

export type PageResult = RenderedPage | FailedPage;

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

/** The last result of a job cut off at its deadline, for the page it was on. */
const DEADLINE_ERROR: PageError = { code: 'PAGE_TIMEOUT', message: 'cut off at the deadline' };

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

type SessionEvent =
  | Exclude<WorkerMessage, { type: 'band' | 'page-begin' | 'page-end' | 'log' }>
  | { type: 'page'; page: RenderedPage }
  | { type: 'crashed'; message: string }
  | { type: 'page-timeout' }
  /** The job's deadline came while a page was drawing. */
  | { type: 'deadline'; pageNumber: number };

/** The page being streamed: its output, and how to end it. */
interface StreamingPage {
  pageNumber: number;
  /** PNG: rows in, PNG out (the body). JPEG: none, the worker sends encoded bytes. */
  encoder: PngEncoder | undefined;
  body: Readable;
  /** JPEG bytes received from the worker. */
  encodedBytes: number;
  resolve: (stats: PageStats) => void;
  reject: (err: PageFailedError) => void;
}

/** Encoded bytes (JPEG) into the page's body, waiting for its reader. */
async function writeInOrder(streaming: StreamingPage, bytes: Uint8Array): Promise<void> {
  const body = streaming.body as PassThrough;
  streaming.encodedBytes += bytes.byteLength;
  if (!body.write(bytes)) await new Promise((resolve) => body.once('drain', resolve));
}

/**
 * One worker. Bands are encoded and streamed as they arrive, whether or not the consumer is
 * pulling pages; everything else becomes a queue of events that always ends (done, failed,
 * crashed, timeout).
 */
class WorkerSession {
  private readonly worker: Worker;
  private readonly queue: SessionEvent[] = [];
  private waiter: ((event: SessionEvent) => void) | undefined;
  private ended = false;
  private pageTimer: NodeJS.Timeout | undefined;
  private streaming: StreamingPage | undefined;
  /** JPEG bytes are written to the body one after the other, in arrival order. */
  private bandChain: Promise<void> = Promise.resolve();
  /** The page the worker is on, from page-start to page-end or page-error. */
  inFlight: number | undefined;
  wasmHeapBytes = 0;

  constructor(
    boot: WorkerBoot,
    input: JobInput,
    private readonly options: RenderOptions,
    onLog: RenderControl['onLog'],
    private readonly deadline: number | undefined,
  ) {
    this.worker = takeWorker(boot);
    this.worker.on('message', (message: WorkerMessage) => this.onMessage(message, onLog));
    this.worker.on('error', (err) => this.end({ type: 'crashed', message: err.message }));
    this.worker.on('exit', (exitCode) => this.end({ type: 'crashed', message: `render worker exited with code ${exitCode}` }));
    const open: MainMessage = { type: 'open', input };
    this.worker.postMessage(open);
  }

  private onMessage(message: WorkerMessage, onLog: RenderControl['onLog']): void {
    if ('wasmHeapBytes' in message) this.wasmHeapBytes = Math.max(this.wasmHeapBytes, message.wasmHeapBytes);
    switch (message.type) {
      case 'log':
        onLog?.(message.level, message.message);
        return;
      case 'page-start':
        this.inFlight = message.pageNumber;
        this.armWatchdog();
        return;
      case 'page-begin':
        this.beginPage(message);
        return;
      case 'band': {
        const streaming = this.streaming;
        if (!streaming || streaming.pageNumber !== message.pageNumber) return;
        const { encoder } = streaming;
        // PNG bands start compressing at once, in arrival order, side by side with the pages and
        // bands before them (the encoder writes them out in order): that keeps both cores busy.
        // JPEG arrives encoded and goes to the body in order.
        const stored = encoder ? encoder.writeScanlines(message.bytes, message.rows) : this.bandChain.then(() => writeInOrder(streaming, message.bytes));
        if (!encoder) this.bandChain = stored.catch(() => undefined);
        stored.then(
          // The band's memory is released: the worker may draw another.
          () => this.grantCredit(),
          (err: Error) => this.failPage(streaming, { code: 'PAGE_RENDER_FAILED', message: `encoding failed: ${err.message}` }),
        );
        return;
      }
      case 'page-end': {
        const streaming = this.streaming;
        this.streaming = undefined;
        this.inFlight = undefined;
        clearTimeout(this.pageTimer);
        if (!streaming) return;
        const done = (): void => streaming.resolve({ bytes: streaming.encoder?.bytesOut ?? streaming.encodedBytes, renderMs: message.renderMs });
        if (streaming.encoder) {
          // The output ends with the last rows' deflate, maybe already.
          if ((streaming.encoder.output as PassThrough).writableFinished) done();
          else streaming.encoder.output.once('finish', done);
          streaming.encoder.end();
        } else {
          this.bandChain = this.bandChain.then(() => void (streaming.body as PassThrough).end(done));
        }
        return;
      }
      case 'page-error':
        this.inFlight = undefined;
        clearTimeout(this.pageTimer);
        if (this.streaming?.pageNumber === message.pageNumber) {
          this.failStreaming(message.error);
        } else {
          this.push({ type: 'page-error', pageNumber: message.pageNumber, error: message.error, wasmHeapBytes: message.wasmHeapBytes });
        }
        return;
      case 'done':
      case 'failed':
        this.end(message);
        return;
      default:
        this.push(message);
    }
  }

  private beginPage(message: Extract<WorkerMessage, { type: 'page-begin' }>): void {
    let resolve!: (stats: PageStats) => void;
    let reject!: (err: PageFailedError) => void;
    const finished = new Promise<PageStats>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A failure is also reported through the body; never leave this rejection unobserved.
    finished.catch(() => undefined);
    const encoder = this.options.format === 'png' ? createPngEncoder(message.width, message.height, 3) : undefined;
    const streaming: StreamingPage = {
      pageNumber: message.pageNumber,
      encoder,
      body: encoder ? encoder.output : new PassThrough({ highWaterMark: 1 << 20 }),
      encodedBytes: 0,
      resolve,
      reject,
    };
    this.streaming = streaming;
    // Whatever fails the body (the worker, the encoder, abort, close) fails the page: `finished`
    // always settles. This listener also keeps an unread failed body from crashing the process.
    streaming.body.on('error', (err) => reject(err instanceof PageFailedError ? err : new PageFailedError({ code: 'PAGE_RENDER_FAILED', message: err.message })));
    this.push({
      type: 'page',
      page: {
        ok: true,
        pageNumber: message.pageNumber,
        width: message.width,
        height: message.height,
        dpi: message.dpi,
        contentType: contentTypeOf(this.options.format),
        body: streaming.body,
        finished,
        ...(message.warning ? { warning: message.warning } : {}),
      },
    });
  }

  private failStreaming(error: PageError, deadline = false): void {
    if (this.streaming) this.failPage(this.streaming, error, deadline);
  }

  private failPage(streaming: StreamingPage, error: PageError, deadline = false): void {
    if (this.streaming === streaming) this.streaming = undefined;
    const err = new PageFailedError(error, deadline);
    streaming.reject(err);
    if (streaming.encoder) streaming.encoder.fail(err);
    else streaming.body.destroy(err);
  }

  private push(event: SessionEvent): void {
    if (this.ended) return;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter(event);
    else this.queue.push(event);
  }

  /** The last event: a streaming page that did not finish fails with the reason. */
  private end(event: SessionEvent): void {
    if (this.ended) return;
    clearTimeout(this.pageTimer);
    if (event.type === 'crashed' || event.type === 'page-timeout') {
      this.failStreaming(
        event.type === 'crashed'
          ? { code: 'PAGE_CRASHED', message: `the renderer crashed on this page: ${event.message}` }
          : { code: 'PAGE_TIMEOUT', message: `the page took longer than ${this.options.pageTimeoutMs} ms` },
      );
    }
    if (event.type === 'deadline') this.failStreaming(DEADLINE_ERROR, true);
    this.push(event);
    this.ended = true;
  }

  next(): Promise<SessionEvent> {
    const event = this.queue.shift();
    if (event) return Promise.resolve(event);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  private grantCredit(): void {
    const message: MainMessage = { type: 'credit', count: 1 };
    if (!this.ended) this.worker.postMessage(message);
  }

  /** At each page start: the page's own limit, or the job's deadline if that comes first. */
  private armWatchdog(): void {
    clearTimeout(this.pageTimer);
    const pageLimitMs = this.options.pageTimeoutMs || Infinity;
    const untilDeadlineMs = this.deadline === undefined ? Infinity : Math.max(0, this.deadline - Date.now());
    if (pageLimitMs === Infinity && untilDeadlineMs === Infinity) return;
    const pageNumber = this.inFlight!;
    const cause: SessionEvent = untilDeadlineMs <= pageLimitMs ? { type: 'deadline', pageNumber } : { type: 'page-timeout' };
    this.pageTimer = setTimeout(() => {
      this.end(cause);
      void this.worker.terminate();
    }, Math.min(pageLimitMs, untilDeadlineMs));
  }

  async terminate(reason = 'the render was stopped'): Promise<void> {
    this.end({ type: 'crashed', message: reason });
    await this.worker.terminate();
  }
}

// Deployed, the worker is bundled beside this module as render-worker.mjs. From source (tests,
// scripts) it is the TypeScript file, loaded through tsx's loader registered inside the worker.
function workerScript(): { script: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./render-worker.mjs', import.meta.url), eval: false };
  const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxRoot, 'dist/esm/api/index.mjs')).href;
  const worker = new URL('./worker/main.ts', import.meta.url).href;
  return { script: `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(worker)});`, eval: true };
}
const WORKER_SCRIPT = workerScript();

/**
 * A worker started ahead of need: MuPDF instantiated, no document given yet. Each job takes it
 * and starts the next one while it renders, so a warm container's next job (or a restart after
 * a crash) finds MuPDF ready instead of paying for its start. Every document still gets a
 * MuPDF that has never seen another; the price is one idle instance in the baseline.
 */
let spare: Worker | undefined;

function startWorker(boot: WorkerBoot): Worker {
  const worker = new Worker(WORKER_SCRIPT.script, { eval: WORKER_SCRIPT.eval, workerData: boot, stdout: false, stderr: false });
  // Until a session takes it, a spare's failure is only noted: it has ended, and is not used.
  worker.on('error', () => undefined);
  return worker;
}

function takeWorker(boot: WorkerBoot): Worker {
  // threadId is -1 once a worker's thread has stopped.
  const taken = spare && spare.threadId !== -1 ? spare : startWorker(boot);
  spare = startWorker(boot);
  // An idle spare never keeps the process alive (a CLI run ends when its work does).
  spare.unref();
  taken.ref();
  return taken;
}

/**
 * Opens `filePath` in a fresh worker and resolves once the document is open, with its page
 * count; document-level failures reject with a RenderError. Iterate the job for the pages, in
 * order, and read each page's body. The worker ends when iteration ends, on error, on abort,
 * or on close().
 */
export async function startRender(filePath: string, options: RenderOptions, control: RenderControl = {}): Promise<RenderJob> {
  const { signal } = control;
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
    return new WorkerSession(
      { wasmModule, stackGuard },
      {
        fd,
        fileSize,
        format: options.format,
        dpi: options.dpi,
        jpegQuality: options.jpegQuality,
        maxPagePixels: options.maxPagePixels,
        maxPages: options.maxPages,
        ...(options.pages ? { pages: options.pages } : {}),
        ...(pageNumbers ? { pageNumbers } : {}),
        initialCredits: BANDS_AHEAD,
        bandBytes: options.bandBytes ?? BAND_BYTES,
        jpegPixmapBytes: JPEG_PIXMAP_BYTES,
      },
      options,
      control.onLog,
      control.deadline,
    );
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
          case 'deadline': {
            // Not a failure: the page the worker was on (begun or not) is where the next attempt
            // resumes, and nothing after it is rendered.
            await current.terminate();
            yield { ok: false, pageNumber: event.pageNumber, error: DEADLINE_ERROR, deadline: true };
            return;
          }
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
              yield event.type === 'crashed'
                ? { ok: false, pageNumber: failedPage, error: { code: 'PAGE_CRASHED', message: `the renderer crashed on this page: ${event.message}` } }
                : { ok: false, pageNumber: failedPage, error: { code: 'PAGE_TIMEOUT', message: `the page took longer than ${options.pageTimeoutMs} ms` } };
            }
            await current.terminate();
            if (remaining.length === 0) return;
            if (stats.workers > MAX_WORKER_RESTARTS) {
              for (const pageNumber of remaining) {
                yield { ok: false, pageNumber, error: { code: 'PAGE_CRASHED', message: `not attempted: the renderer failed on ${MAX_WORKER_RESTARTS} pages of this document` } };
              }
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
