/**
 * The render core: one document, rendered page by page in a worker thread that owns a fresh
 * MuPDF instance and is always ended afterwards, so WebAssembly memory (which never shrinks)
 * goes back to the OS with it.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { RenderError, type PageError } from './errors.js';
import { contentTypeOf, type RenderOptions } from './options.js';
import type { MainMessage, WorkerInput, WorkerMessage } from './protocol.js';
import { mupdfWasmModule } from './wasm.js';

export interface RenderedPage {
  ok: true;
  pageNumber: number;
  width: number;
  height: number;
  /** The DPI actually used: lower than requested when the page exceeded the pixel budget. */
  dpi: number;
  contentType: string;
  bytes: Uint8Array;
  renderMs: number;
  encodeMs: number;
}

export interface FailedPage {
  ok: false;
  pageNumber: number;
  error: PageError;
}

export type PageResult = RenderedPage | FailedPage;

export interface RenderStats {
  /** Largest WebAssembly memory of any worker of this job. */
  wasmHeapPeakBytes: number;
  /** Workers started: 1, plus one per page that crashed or timed out. */
  workers: number;
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
}

/** Pages rendered ahead of the consumer: one being consumed, one being drawn. */
const PAGES_AHEAD = 2;
/** After this many crashed or timed-out pages the rest of the document is not attempted. */
const MAX_WORKER_RESTARTS = 3;

type SessionEvent = WorkerMessage | { type: 'crashed'; message: string } | { type: 'page-timeout' };

/** One worker, seen as a queue of events that always ends (done, failed, crashed). */
class WorkerSession {
  private readonly worker: Worker;
  private readonly queue: SessionEvent[] = [];
  private waiter: ((event: SessionEvent) => void) | undefined;
  private ended = false;
  private pageTimer: NodeJS.Timeout | undefined;

  constructor(input: WorkerInput, onLog: RenderControl['onLog']) {
    this.worker = new Worker(WORKER_SCRIPT.script, { eval: WORKER_SCRIPT.eval, workerData: input, stdout: false, stderr: false });
    this.worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'log') onLog?.(message.level, message.message);
      else this.push(message);
    });
    this.worker.on('error', (err) => this.push({ type: 'crashed', message: err.message }));
    this.worker.on('exit', (exitCode) => this.push({ type: 'crashed', message: `render worker exited with code ${exitCode}` }));
  }

  private push(event: SessionEvent): void {
    if (this.ended) return;
    if (event.type === 'done' || event.type === 'failed' || event.type === 'crashed' || event.type === 'page-timeout') {
      this.ended = true;
      clearTimeout(this.pageTimer);
    }
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter(event);
    else this.queue.push(event);
  }

  next(): Promise<SessionEvent> {
    const event = this.queue.shift();
    if (event) return Promise.resolve(event);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  grantCredit(): void {
    const message: MainMessage = { type: 'credit', count: 1 };
    if (!this.ended) this.worker.postMessage(message);
  }

  /** Arms a watchdog for the page the worker just started. */
  watchPage(timeoutMs: number | undefined): void {
    clearTimeout(this.pageTimer);
    if (!timeoutMs) return;
    this.pageTimer = setTimeout(() => {
      this.push({ type: 'page-timeout' });
      void this.worker.terminate();
    }, timeoutMs);
  }

  async terminate(): Promise<void> {
    this.ended = true;
    clearTimeout(this.pageTimer);
    await this.worker.terminate();
  }
}

// Deployed, the worker is bundled beside this module as render-worker.mjs. From source (tests,
// scripts) it is the TypeScript file, loaded through tsx's loader registered inside the worker.
function workerScript(): { script: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./render-worker.mjs', import.meta.url), eval: false };
  const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxRoot, 'dist/esm/api/index.mjs')).href;
  const worker = new URL('./worker.ts', import.meta.url).href;
  return { script: `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(worker)});`, eval: true };
}
const WORKER_SCRIPT = workerScript();

/**
 * Opens `filePath` in a fresh worker and resolves once the document is open, with its page
 * count; document-level failures reject with a RenderError. Iterate the job for the pages, in
 * order. The worker ends when iteration ends, on error, on abort, or on close().
 */
export async function startRender(filePath: string, options: RenderOptions, control: RenderControl = {}): Promise<RenderJob> {
  const { signal } = control;
  signal?.throwIfAborted();
  const wasmModule = await mupdfWasmModule();
  const fd = openSync(filePath, 'r');
  const fileSize = fstatSync(fd).size;
  const stats: RenderStats = { wasmHeapPeakBytes: 0, workers: 0 };
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
  // Abort ends the worker at once, even in the middle of a page; the pending read then throws.
  let abortedWhile: ((event: SessionEvent) => void) | undefined;
  const onAbort = (): void => {
    void session?.terminate();
    abortedWhile?.({ type: 'crashed', message: 'aborted' });
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  const spawn = (pageNumbers?: number[]): WorkerSession => {
    stats.workers++;
    return new WorkerSession(
      {
        wasmModule,
        fd,
        fileSize,
        format: options.format,
        dpi: options.dpi,
        jpegQuality: options.jpegQuality,
        maxPagePixels: options.maxPagePixels,
        maxPages: options.maxPages,
        ...(options.pages ? { pages: options.pages } : {}),
        ...(pageNumbers ? { pageNumbers } : {}),
        initialCredits: PAGES_AHEAD,
      },
      control.onLog,
    );
  };

  const nextEvent = async (current: WorkerSession): Promise<SessionEvent> => {
    const event = await Promise.race([current.next(), new Promise<SessionEvent>((resolve) => (abortedWhile = resolve))]);
    abortedWhile = undefined;
    if (signal?.aborted) throw new RenderError('ABORTED', `render aborted: ${String(signal.reason ?? 'aborted')}`);
    if (event.type === 'page' || event.type === 'page-error' || event.type === 'done') {
      stats.wasmHeapPeakBytes = Math.max(stats.wasmHeapPeakBytes, event.wasmHeapBytes);
    }
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
  } catch (err) {
    await close();
    throw err;
  }

  async function* pages(): AsyncGenerator<PageResult> {
    let remaining = opened.pageNumbers.slice();
    let inFlight: number | undefined;
    try {
      while (remaining.length > 0) {
        const current = session!;
        const event = await nextEvent(current);
        switch (event.type) {
          case 'page-start':
            inFlight = event.pageNumber;
            current.watchPage(options.pageTimeoutMs);
            break;
          case 'page': {
            remaining = remaining.filter((n) => n !== event.pageNumber);
            inFlight = undefined;
            current.watchPage(undefined);
            const { type: _type, wasmHeapBytes: _heap, ...page } = event;
            yield { ok: true, contentType: contentTypeOf(options.format), ...page };
            current.grantCredit();
            break;
          }
          case 'page-error':
            remaining = remaining.filter((n) => n !== event.pageNumber);
            inFlight = undefined;
            current.watchPage(undefined);
            yield { ok: false, pageNumber: event.pageNumber, error: event.error };
            current.grantCredit();
            break;
          case 'done':
            remaining = [];
            break;
          case 'crashed':
          case 'page-timeout': {
            if (inFlight === undefined) {
              throw new RenderError('WORKER_FAILED', `the render worker stopped between pages: ${event.type === 'crashed' ? event.message : 'timeout'}`);
            }
            const lost = inFlight;
            inFlight = undefined;
            remaining = remaining.filter((n) => n !== lost);
            yield event.type === 'crashed'
              ? { ok: false, pageNumber: lost, error: { code: 'PAGE_CRASHED', message: `the renderer crashed on this page: ${event.message}` } }
              : { ok: false, pageNumber: lost, error: { code: 'PAGE_TIMEOUT', message: `the page took longer than ${options.pageTimeoutMs} ms` } };
            await current.terminate();
            if (remaining.length === 0) break;
            if (stats.workers > MAX_WORKER_RESTARTS) {
              for (const pageNumber of remaining) {
                yield { ok: false, pageNumber, error: { code: 'PAGE_CRASHED', message: `not attempted: the renderer failed on ${MAX_WORKER_RESTARTS} pages of this document` } };
              }
              remaining = [];
              break;
            }
            // A fresh MuPDF for the rest of the document.
            session = spawn(remaining);
            await awaitOpened(session);
            break;
          }
          case 'failed':
          case 'opened':
          case 'ready':
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
