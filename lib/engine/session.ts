/**
 * One worker's session, from its 'open' message to its end: the message and streaming state
 * machine. Bands become page bodies through the format's encoder (PNG: encode/png-encoder.ts; JPEG,
 * WebP and AVIF: encode/sharp-encoder.ts), credits go back as bands are encoded, a watchdog ends a page that overruns
 * its limit or the job's deadline, and everything else becomes a queue of events that always
 * ends (done, failed, crashed, timeout, deadline). It does not start workers (pool.ts) nor decide what to do after
 * one ended (job.ts).
 */
import type { PassThrough } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { PageFailedError, pageErrors, type PageError } from './errors.js';
import { contentTypeOf, type ImageFormat } from './options.js';
import type { ImageEncoder } from '../encode/image-encoder.js';
import { createImageEncoder } from '../encode/encoders.js';
import { createRawEncoder } from '../encode/raw-encoder.js';
import { encodeThumbnail } from '../encode/thumbnail-jpeg.js';
import type { JobInput, MainMessage, WorkerMessage } from './protocol.js';
import type { PageStats, RenderedPage } from './results.js';

export type SessionEvent =
  | Exclude<WorkerMessage, { type: 'band' | 'page-begin' | 'page-end' | 'log' }>
  | { type: 'page'; page: RenderedPage }
  | { type: 'crashed'; message: string }
  | { type: 'page-timeout' }
  /** The job's deadline came while this page was drawing. */
  | { type: 'deadline'; pageNumber: number };

export interface SessionOptions {
  format: ImageFormat;
  /** Pages go out as their raw rows, not encoded (RenderOptions.level). */
  raw?: boolean;
  jpegQuality: number;
  webpQuality: number;
  avifQuality: number;
  /** A page still drawing after this is ended (page-timeout); 0 or undefined = no limit. */
  pageTimeoutMs: number | undefined;
  /** A Date.now() epoch: a page still drawing then is ended (deadline). */
  deadline: number | undefined;
  onLog: ((level: 'warning' | 'error', message: string) => void) | undefined;
}

/** The page being streamed: its output, and how to end it. */
interface StreamingPage {
  pageNumber: number;
  /** Rows in, the image file out (the page's body). */
  encoder: ImageEncoder;
  resolve: (stats: PageStats) => void;
  reject: (err: PageFailedError) => void;
}

/**
 * One worker. Bands are encoded and streamed as they arrive, whether or not the consumer is
 * pulling pages; everything else becomes a queue of events that always ends (done, failed,
 * crashed, timeout, deadline).
 */
export class WorkerSession {
  private readonly queue: SessionEvent[] = [];
  private waiter: ((event: SessionEvent) => void) | undefined;
  private ended = false;
  private pageTimer: NodeJS.Timeout | undefined;
  private streaming: StreamingPage | undefined;
  /** The page the worker is on, from page-start to page-end or page-error. */
  inFlight: number | undefined;
  /** The page the deadline cut off, once it did. */
  private deadlineCut: number | undefined;
  wasmHeapBytes = 0;
  /** The most bytes one page's encoder gathered outside the heap (ImageEncoder.gatheredBytes). */
  encoderGatheredBytes = 0;

  /** Takes `worker` over (it is ended with the session) and sends it the document. */
  constructor(
    private readonly worker: Worker,
    input: JobInput,
    private readonly options: SessionOptions,
  ) {
    this.worker.on('message', (message: WorkerMessage) => this.onMessage(message));
    this.worker.on('error', (err) => this.end({ type: 'crashed', message: err.message }));
    this.worker.on('exit', (exitCode) => this.end({ type: 'crashed', message: `render worker exited with code ${exitCode}` }));
    const open: MainMessage = { type: 'open', input };
    this.worker.postMessage(open);
  }

  private onMessage(message: WorkerMessage): void {
    if ('wasmHeapBytes' in message) this.wasmHeapBytes = Math.max(this.wasmHeapBytes, message.wasmHeapBytes);
    switch (message.type) {
      case 'log':
        this.options.onLog?.(message.level, message.message);
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
        // A band of a page that already failed (its encoder did) is dropped, and its credit
        // given back: the worker finishes the page and goes on to the next, instead of waiting
        // for a credit that would never come.
        if (!streaming || streaming.pageNumber !== message.pageNumber) return this.grantCredit();
        // Bands start encoding at once, in arrival order, side by side with the pages and bands
        // before them (each encoder writes its file out in order): that keeps the cores busy.
        streaming.encoder.writeRows(message.bytes, message.rows).then(
          // The band's memory is released: the worker may draw another.
          () => this.grantCredit(),
          (err: Error) => {
            this.failPage(streaming, pageErrors.encodingFailed(err.message));
            this.grantCredit();
          },
        );
        return;
      }
      case 'page-end': {
        const streaming = this.streaming;
        this.streaming = undefined;
        this.inFlight = undefined;
        clearTimeout(this.pageTimer);
        if (!streaming) return;
        const { renderMs, text } = message;
        const thumbnail = message.thumbnail && encodeThumbnail(message.thumbnail, message.pageNumber, this.options.onLog);
        const { encoder } = streaming;
        const done = (): void => streaming.resolve({ bytes: encoder.bytesOut, renderMs, ...(thumbnail ? { thumbnail } : {}), ...(text ? { text } : {}) });
        // The output ends with the last rows' encoding, maybe already.
        if ((encoder.output as PassThrough).writableFinished) done();
        else encoder.output.once('finish', done);
        encoder.end();
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
    const { width, height } = message;
    const channels = message.color === 'gray' ? 1 : 3;
    const { format } = this.options;
    const quality = format === 'jpeg' ? this.options.jpegQuality : format === 'webp' ? this.options.webpQuality : this.options.avifQuality;
    const encoder = this.options.raw ? createRawEncoder(width, height, channels) : createImageEncoder(format, { width, height, channels, quality });
    this.encoderGatheredBytes = Math.max(this.encoderGatheredBytes, encoder.gatheredBytes);
    const streaming: StreamingPage = { pageNumber: message.pageNumber, encoder, resolve, reject };
    const body = encoder.output;
    this.streaming = streaming;
    // Whatever fails the body (the worker, the encoder, abort, close) fails the page: `finished`
    // always settles. This listener also keeps an unread failed body from crashing the process.
    body.on('error', (err) => reject(err instanceof PageFailedError ? err : new PageFailedError({ code: 'PAGE_RENDER_FAILED', message: err.message })));
    this.push({
      type: 'page',
      page: {
        ok: true,
        pageNumber: message.pageNumber,
        width: message.width,
        height: message.height,
        dpi: message.dpi,
        contentType: this.options.raw ? 'application/octet-stream' : contentTypeOf(this.options.format),
        color: message.color,
        body,
        finished,
        ...(message.warning ? { warning: message.warning } : {}),
        ...(message.box ? { box: message.box } : {}),
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
    streaming.encoder.fail(err);
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
    if (event.type === 'deadline') this.deadlineCut = event.pageNumber;
    clearTimeout(this.pageTimer);
    const streamError = sessionEndPageError(event, this.options.pageTimeoutMs);
    if (streamError) this.failStreaming(streamError, event.type === 'deadline');
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
    const { deadline } = this.options;
    const untilDeadlineMs = deadline === undefined ? Infinity : Math.max(0, deadline - Date.now());
    if (pageLimitMs === Infinity && untilDeadlineMs === Infinity) return;
    const pageNumber = this.inFlight!;
    const cause: SessionEvent = untilDeadlineMs <= pageLimitMs ? { type: 'deadline', pageNumber } : { type: 'page-timeout' };
    this.pageTimer = setTimeout(() => {
      this.end(cause);
      void this.worker.terminate();
    }, Math.min(pageLimitMs, untilDeadlineMs));
  }

  /**
   * The job's deadline came (another worker of the job saw it first): the page this worker is
   * on, if any, is cut off as its own watchdog would have. Returns the page cut, if any.
   */
  cutAtDeadline(): number | undefined {
    if (!this.ended && this.inFlight !== undefined) {
      this.end({ type: 'deadline', pageNumber: this.inFlight });
      void this.worker.terminate();
    }
    return this.deadlineCut;
  }

  async terminate(reason = 'the render was stopped'): Promise<void> {
    this.end({ type: 'crashed', message: reason });
    // Pages begun but never taken (another worker's failure ended the job first): their
    // encoders wait for a reader that will not come.
    for (const event of this.queue) if (event.type === 'page') event.page.body.destroy();
    await this.worker.terminate();
  }
}

/**
 * The error of the page the worker was on when the session ended this way (crash, page limit,
 * deadline), the one home of those errors: the streaming page's body fails with it, and the job
 * reports a page that had not begun streaming with the same.
 */
export function sessionEndPageError(event: SessionEvent, pageTimeoutMs: number | undefined): PageError | undefined {
  switch (event.type) {
    case 'crashed':
      return pageErrors.crashed(event.message);
    case 'page-timeout':
      return pageErrors.timedOut(pageTimeoutMs);
    case 'deadline':
      return pageErrors.deadline();
    default:
      return undefined;
  }
}
