/**
 * The job API: one document, rendered page by page in a worker thread that owns a fresh MuPDF
 * instance and is always ended afterwards, so WebAssembly memory (which never shrinks) goes back
 * to the OS with it. The worker draws; the pages are encoded off its thread (PNG: zlib on the
 * libuv pool; JPEG: an encoder thread) and streamed out while it draws the next one (session.ts). This file owns the
 * job's lifetime: opening, the order of results, the restart policy after a crashed or
 * timed-out page, the deadline, abort and close.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { RenderError, pageErrors } from './errors.js';
import { LIMITS, outputOptionsOf, pagesOfLane, type PageBox, type RenderOptions } from './options.js';
import { startSpare, takeWorker } from './pool.js';
import type { JobInput, WorkerMessage } from './protocol.js';
import type { OutlineEntry, PageResult } from './results.js';
import { WorkerSession, sessionEndPageError, type SessionEvent } from './session.js';
import { mupdfWasmModule } from './wasm.js';

export interface RenderStats {
  /** Largest WebAssembly memory of any worker of this job. */
  wasmHeapPeakBytes: number;
  /**
   * Largest memory one page's encoder gathered outside the WebAssembly heap, in a Node Buffer
   * (JPEG, WebP, AVIF: the whole page of packed rows, bounded by formats.ts maxPixelsOf x 3 bytes;
   * PNG: 0, it streams).
   */
  encoderGatheredPeakBytes: number;
  /** Workers started: one per lane (RenderControl.workers, at most one per page), plus one per page that crashed or timed out. */
  workers: number;
  /** From startRender to the document open in its worker: worker start, MuPDF instantiation, parsing. */
  startupMs: number;
}

export interface RenderJob extends AsyncIterable<PageResult> {
  readonly pageCount: number;
  /** The pages this job renders, ascending. */
  readonly pageNumbers: readonly number[];
  readonly warnings: readonly string[];
  /** Every page's box in points, when RenderOptions.pageBoxes asked for them. */
  readonly pageBoxes?: readonly PageBox[];
  /** The document's title (its Info dictionary), when RenderOptions.pageBoxes asked and it has one. */
  readonly title?: string;
  /** The document's outline (bounded: OUTLINE_LIMITS), when RenderOptions.pageBoxes asked and it has one. */
  readonly outline?: readonly OutlineEntry[];
  /** Set when the outline was longer or deeper than OUTLINE_LIMITS and cut there. */
  readonly outlineTruncated?: true;
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
  /**
   * Workers drawing pages of this document side by side, each with its own MuPDF (1 by
   * default; workerCount() says how many the function's CPU and memory allow). Pages still
   * come out in order.
   */
  workers?: number;
}

/** Bands (whole pages, mostly) drawn but not yet compressed: the worker waits beyond this. */
const BANDS_AHEAD = 3;
/**
 * Largest raw band: a Letter page up to 200 dpi (11 MB) or A3 at 150 is drawn in one piece,
 * posters in several. At 24 MB a 9000 px scan page made MuPDF decode larger image tiles and the
 * process peaked at 555 MB RSS; at 16 MB, 456 MB (multipage-9000px-image).
 */
export const BAND_BYTES = 16 * 2 ** 20;
/** After more than this many crashed or timed-out pages the rest of the document is not attempted. */
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
 * One lane of a job: the pages (every workers-th of the selection) one worker draws, in order.
 * After a crash the lane goes on in a fresh worker with its remaining pages.
 */
interface Lane {
  session: WorkerSession;
  /** Its worker's 'opened' (the lane may not be drawn from before). */
  opened: Promise<Extract<WorkerMessage, { type: 'opened' }>>;
  /** Its worker said done (or was ended): no more events to wait for. */
  finished: boolean;
}

/**
 * Opens `filePath` in a fresh worker and resolves once the document is open, with its page
 * count; document-level failures reject with a RenderError. Iterate the job for the pages, in
 * order, and read each page's body. The workers end when iteration ends, on error, on abort,
 * or on close().
 */
export async function startRender(filePath: string, options: RenderOptions, control: RenderControl = {}): Promise<RenderJob> {
  const { signal } = control;
  const { thumbnailWidth } = options;
  if (thumbnailWidth !== undefined && !(Number.isInteger(thumbnailWidth) && thumbnailWidth >= LIMITS.thumbnailWidth.min && thumbnailWidth <= LIMITS.thumbnailWidth.max)) {
    throw new RangeError(`thumbnailWidth must be a whole number of pixels in ${LIMITS.thumbnailWidth.min}..${LIMITS.thumbnailWidth.max}, got ${thumbnailWidth}`);
  }
  if (options.level !== undefined && !(Number.isInteger(options.level) && options.level >= 1 && !options.region)) {
    throw new RangeError(`level must be a whole scale factor of 1 or more, without a region, got ${options.level}`);
  }
  if (signal?.aborted) throw new RenderError('ABORTED', `render aborted: ${String(signal.reason ?? 'aborted')}`);
  const { module: wasmModule, guard: stackGuard } = await mupdfWasmModule();
  const fd = openSync(filePath, 'r');
  const fileSize = fstatSync(fd).size;
  const started = performance.now();
  const stats: RenderStats = { wasmHeapPeakBytes: 0, encoderGatheredPeakBytes: 0, workers: 0, startupMs: 0 };
  const laneCount = Math.max(1, Math.floor(control.workers ?? 1));
  const lanes: Lane[] = [];
  let closed = false;

  const terminateAll = (reason?: string): Promise<unknown> => Promise.all(lanes.map((lane) => lane.session.terminate(reason)));
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    signal?.removeEventListener('abort', onAbort);
    try {
      await terminateAll();
    } finally {
      closeSync(fd);
    }
  };
  // Abort ends the workers at once, even in the middle of a page.
  const onAbort = (): void => {
    void terminateAll('aborted');
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  const spawn = (share: Pick<JobInput, 'pageNumbers' | 'lane'>): WorkerSession => {
    stats.workers++;
    const input: JobInput = {
      fd,
      fileSize,
      output: outputOptionsOf(options),
      ...(options.pages ? { pages: options.pages } : {}),
      ...share,
      initialCredits: BANDS_AHEAD,
      bandBytes: options.bandBytes ?? BAND_BYTES,
      ...(options.thumbnailWidth ? { thumbnailWidth: options.thumbnailWidth } : {}),
      ...(options.pageText ? { pageText: true } : {}),
      ...(options.region ? { region: options.region } : {}),
      ...(options.level !== undefined ? { level: options.level } : {}),
      ...(options.pageBoxes ? { pageBoxes: true } : {}),
    };
    return new WorkerSession(takeWorker({ wasmModule, stackGuard }), input, {
      format: options.format,
      raw: options.level !== undefined,
      jpegQuality: options.jpegQuality,
      webpQuality: options.webpQuality,
      avifQuality: options.avifQuality,
      pageTimeoutMs: options.pageTimeoutMs,
      deadline: control.deadline,
      onLog: control.onLog,
    });
  };

  const nextEvent = async (current: WorkerSession): Promise<SessionEvent> => {
    const event = await current.next();
    stats.wasmHeapPeakBytes = Math.max(stats.wasmHeapPeakBytes, current.wasmHeapBytes);
    stats.encoderGatheredPeakBytes = Math.max(stats.encoderGatheredPeakBytes, current.encoderGatheredBytes);
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

  /** A lane's open, awaited when the lane is first drawn from: never an unhandled rejection meanwhile (the job may stop first). */
  const opening = (session: WorkerSession): Lane['opened'] => {
    const opened = awaitOpened(session);
    opened.catch(() => undefined);
    return opened;
  };

  const addLane = (share: Pick<JobInput, 'pageNumbers' | 'lane'>): Lane => {
    const session = spawn(share);
    const lane: Lane = { session, opened: opening(session), finished: false };
    lanes.push(lane);
    return lane;
  };

  let opened: Extract<WorkerMessage, { type: 'opened' }>;
  try {
    opened = await addLane({ lane: { index: 0, count: laneCount } }).opened;
    stats.startupMs = performance.now() - started;
    // The other lanes open the document while the first one draws; none without a page.
    for (let index = 1; index < Math.min(laneCount, opened.pageNumbers.length); index++) addLane({ lane: { index, count: laneCount } });
  } catch (err) {
    await close();
    throw err;
  }
  const selection = opened.pageNumbers;
  /** The lane that draws each page (the rule its worker follows too). */
  const owner = new Map<number, Lane>();
  lanes.forEach((lane, index) => {
    for (const pageNumber of pagesOfLane(selection, { index, count: laneCount })) owner.set(pageNumber, lane);
  });

  async function* pages(): AsyncGenerator<PageResult> {
    // Pages not yielded yet, in order: the next result is always pending[0]'s.
    const pending = selection.slice();
    let failures = 0;
    try {
      // Until every lane is done: the last pages may still be streaming after they began.
      for (;;) {
        const lane = pending.length > 0 ? owner.get(pending[0]!)! : lanes.find((l) => !l.finished);
        if (!lane) return;
        await lane.opened;
        const current = lane.session;
        const event = await nextEvent(current);
        switch (event.type) {
          case 'page':
          case 'page-error': {
            const pageNumber = event.type === 'page' ? event.page.pageNumber : event.pageNumber;
            if (pageNumber !== pending[0]) throw new RenderError('WORKER_FAILED', `the render worker sent page ${pageNumber} where page ${pending[0]} was due`);
            pending.shift();
            yield event.type === 'page' ? event.page : { ok: false, pageNumber, error: event.error };
            break;
          }
          case 'done':
            lane.finished = true;
            if (pending.length > 0 && owner.get(pending[0]!) === lane) {
              throw new RenderError('WORKER_FAILED', `the render worker finished without page ${pending[0]}`);
            }
            break;
          case 'deadline': {
            // Not a failure: every lane stops; the earliest page cut off (begun or not) is where
            // the next attempt resumes, and nothing after it is given.
            const cut = [event.pageNumber];
            for (const other of lanes) {
              const page = other.session.cutAtDeadline();
              if (page !== undefined) cut.push(page);
            }
            await terminateAll();
            yield { ok: false, pageNumber: Math.min(...cut), error: pageErrors.deadline(), deadline: true };
            return;
          }
          case 'crashed':
          case 'page-timeout': {
            // A page that had begun streaming already failed through its body; one that had
            // not is reported here. Either way the lane goes on in a fresh worker.
            const failedPage = current.inFlight;
            if (failedPage === undefined) {
              throw new RenderError('WORKER_FAILED', `the render worker stopped between pages: ${event.type === 'crashed' ? event.message : 'timeout'}`);
            }
            if (failedPage === pending[0]) {
              pending.shift();
              yield { ok: false, pageNumber: failedPage, error: sessionEndPageError(event, options.pageTimeoutMs)! };
            }
            await current.terminate();
            failures++;
            const laneRemaining = pending.filter((pageNumber) => owner.get(pageNumber) === lane);
            if (laneRemaining.length === 0) {
              lane.finished = true;
              break;
            }
            if (failures > MAX_WORKER_RESTARTS) {
              await terminateAll();
              for (const pageNumber of pending) yield { ok: false, pageNumber, error: pageErrors.notAttempted(MAX_WORKER_RESTARTS) };
              return;
            }
            // A fresh MuPDF for the rest of the lane.
            lane.session = spawn({ pageNumbers: laneRemaining });
            lane.opened = opening(lane.session);
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
    pageNumbers: selection,
    warnings: opened.warnings,
    ...(opened.pageBoxes ? { pageBoxes: opened.pageBoxes } : {}),
    ...(opened.title !== undefined ? { title: opened.title } : {}),
    ...(opened.outline ? { outline: opened.outline } : {}),
    ...(opened.outlineTruncated ? { outlineTruncated: true as const } : {}),
    stats,
    close: async () => {
      await iterator.return(undefined);
      await close();
    },
    [Symbol.asyncIterator]: () => iterator,
  };
}
