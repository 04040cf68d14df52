/**
 * One document from a local file to stored pages and a manifest, whatever the storage is
 * (S3 for the function, a folder for the CLI). The caller stores the manifest: last. The job
 * stops in time: between pages when the next one will not fit, and in the middle of a page at
 * the deadline (the page is then where the next attempt resumes, not a failed page).
 */
import { RenderError } from '../engine/errors.js';
import { extensionOf, selectPages, type PageRange, type RenderOptions } from '../engine/options.js';
import { PageFailedError, startRender, type PageStats, type RenderedPage, type RenderStats } from '../engine/render.js';
import {
  buildManifest,
  failedManifest,
  isPageFailure,
  pageFileName,
  type Manifest,
  type ManifestPage,
  type ManifestPageFailure,
  type ManifestFields,
  type ManifestSource,
} from './manifest.js';
import { formatPageSelection, parsePageSelection, pickJobOptions, type JobOptions, type OptionsSource } from './options.js';

export interface PageSink {
  /** Stores one page under `fileName` and returns the key or path it was stored at. */
  putPage(page: RenderedPage, fileName: string): Promise<string>;
  /** Stores a small companion file of a page (its thumbnail, its text) and returns its key or path. */
  putFile(pageNumber: number, fileName: string, body: Uint8Array, contentType: string): Promise<string>;
}

export interface RenderJobInput {
  filePath: string;
  source: ManifestSource;
  options: JobOptions & Pick<RenderOptions, 'pageTimeoutMs'> & {
    /** The pages this invocation draws (a continuation, a fan-out range); default: options.pages. */
    selection?: PageRange[];
  };
  /** Recorded in the manifest: where `options` came from (settings or object metadata). */
  optionsSource?: OptionsSource;
  /** Said in the manifest's warnings before anything the render adds (unknown object metadata…). */
  warnings?: readonly string[];
  sink: PageSink;
  /** Pages stored at once, at most. */
  concurrency?: number;
  /** Workers drawing the document side by side (the engine keeps pages in order); default 1. */
  workers?: number;
  /**
   * Pages an earlier invocation of the same generation already stored (a continuation): listed
   * again in the manifest. The caller's page selection (options.pages) starts after them.
   */
  kept?: readonly (ManifestPage | ManifestPageFailure)[];
  /** Told the page count once the document is open, before any page is drawn (fan-out decides here). */
  onOpened?: (pageCount: number) => Promise<void>;
  /**
   * Remaining time. The job stops as `partial` when the next page will not fit in it with
   * `reserveMs` to spare, and a page still drawing when only `reserveMs` is left is cut off
   * and becomes nextPage.
   */
  timeLeftMs?: () => number;
  reserveMs?: number;
  /**
   * Called with a `partial` manifest (nextPage set, every listed page stored) at most every
   * `everyMs` of a long job, so an invocation that is killed loses at most that stretch.
   */
  checkpoint?: { everyMs: number; commit: (manifest: Manifest) => Promise<void> };
  signal?: AbortSignal;
  onLog?: (level: 'warning' | 'error', message: string) => void;
  onPage?: (page: ManifestPage | ManifestPageFailure, timing?: { renderMs: number }) => void;
}

export interface RenderJobResult {
  /** A job stopped early for lack of time has a `partial` manifest with `nextPage`: where the next attempt resumes. */
  manifest: Manifest;
  stats: RenderStats;
}

export async function runRenderJob(input: RenderJobInput): Promise<RenderJobResult> {
  const startedAt = new Date();
  const options = pickJobOptions(input.options);
  const recorded = input.optionsSource ? { optionsSource: input.optionsSource } : {};
  const finish = (fields: ManifestFields): Manifest => buildManifest(input.source, options, startedAt, { ...recorded, ...fields });

  const pages: (ManifestPage | ManifestPageFailure)[] = [...(input.kept ?? [])];

  // Stops the worker when storing fails: nobody reads the page bodies any more.
  const stop = new AbortController();
  const signal = input.signal ? AbortSignal.any([input.signal, stop.signal]) : stop.signal;
  const reserveMs = input.reserveMs ?? 0;
  const deadline = input.timeLeftMs ? Date.now() + input.timeLeftMs() - reserveMs : undefined;
  let job;
  try {
    job = await startRender(
      input.filePath,
      {
        ...options,
        // The manifest records WebP's and AVIF's qualities for their own format only; the engine always takes them.
        webpQuality: input.options.webpQuality,
        avifQuality: input.options.avifQuality,
        pages: input.options.selection ?? parsePageSelection(options.pages),
        ...(input.options.pageTimeoutMs ? { pageTimeoutMs: input.options.pageTimeoutMs } : {}),
      },
      { signal, ...(input.workers ? { workers: input.workers } : {}), ...(deadline !== undefined ? { deadline } : {}), ...(input.onLog ? { onLog: input.onLog } : {}) },
    );
  } catch (err) {
    if (err instanceof RenderError && err.permanent) {
      return {
        manifest: failedManifest(input.source, options, { code: err.code, message: err.message }, startedAt, input.optionsSource),
        stats: { wasmHeapPeakBytes: 0, encoderGatheredPeakBytes: 0, workers: 1, startupMs: 0 },
      };
    }
    throw err;
  }

  // A selection that names no page of this document is the asker's mistake, said as such
  // (not "complete: 0 pages"); decided before fan-out, so no part is ever dispatched for it.
  const unselected = input.kept?.length ? undefined : selectionProblem(options, job.pageCount);
  if (unselected) {
    await job.close();
    // With the page count it was decided on, and the warnings already said (unknown metadata…).
    const manifest = finish({ status: 'failed', pageCount: job.pageCount, pages: [], warnings: [...(input.warnings ?? [])], error: { code: 'INVALID_OPTIONS', message: unselected } });
    return { manifest, stats: job.stats };
  }
  await input.onOpened?.(job.pageCount);
  const warnings = [...(input.warnings ?? []), ...job.warnings];
  const beyond = pagesBeyond(options.pages, job.pageCount);
  if (beyond) warnings.push(`pages ${beyond} not rendered: the document has ${job.pageCount} page${job.pageCount === 1 ? '' : 's'}`);
  if (options.maxPages > 0 && job.pageCount > options.maxPages) {
    warnings.push(`pages ${options.maxPages + 1}-${job.pageCount} not rendered: MAX_PAGES is ${options.maxPages}`);
  }

  const extension = extensionOf(options.format);
  const concurrency = Math.max(1, input.concurrency ?? 4);
  const inFlight = new Set<Promise<void>>();
  let storeError: unknown;
  let slowestPageMs = 0;
  let lastPageAt = performance.now();
  let nextPage: number | undefined;
  /** Pages cut off at the deadline: the earliest is where the next attempt resumes. */
  const cutOff = (pageNumber: number): void => {
    nextPage = nextPage === undefined ? pageNumber : Math.min(nextPage, pageNumber);
  };
  let lastCheckpoint = performance.now();
  const recordFailure = (failure: ManifestPageFailure): void => {
    pages.push(failure);
    input.onPage?.(failure);
  };

  /** Stores one page while the worker goes on; a page that fails midway is recorded as failed. */
  const store = async (page: RenderedPage): Promise<void> => {
    try {
      const key = await input.sink.putPage(page, pageFileName(page.pageNumber, extension));
      const stats: PageStats = await page.finished;
      const { bytes, renderMs } = stats;
      const entry: ManifestPage = { number: page.pageNumber, key, width: page.width, height: page.height, dpi: page.dpi, bytes, contentType: page.contentType, color: page.color, ...(page.box ? { box: page.box } : {}) };
      if (stats.thumbnail) {
        const { jpeg, width, height } = stats.thumbnail;
        const thumbKey = await input.sink.putFile(page.pageNumber, pageFileName(page.pageNumber, 'jpg', 'thumb'), jpeg, 'image/jpeg');
        entry.thumbnail = { key: thumbKey, width, height, bytes: jpeg.byteLength };
      }
      if (stats.text) {
        const textKey = await input.sink.putFile(page.pageNumber, pageFileName(page.pageNumber, 'json', 'text'), stats.text.json, 'application/json');
        entry.text = { key: textKey, chars: stats.text.chars };
      }
      pages.push(entry);
      if (page.warning) warnings.push(page.warning);
      input.onPage?.(entry, { renderMs });
    } catch (err) {
      const pageFailure = await page.finished.then(
        () => undefined,
        (failed: unknown) => (failed instanceof PageFailedError ? failed : undefined),
      );
      if (pageFailure?.deadline) {
        cutOff(page.pageNumber);
      } else if (pageFailure) {
        recordFailure({ number: page.pageNumber, error: pageFailure.pageError });
      } else {
        storeError ??= err;
        stop.abort(err);
      }
    }
  };

  try {
    for await (const result of job) {
      if (!result.ok && result.deadline) {
        // The engine stopped at the deadline: this page is where the next attempt starts.
        await Promise.all(inFlight);
        cutOff(result.pageNumber);
        break;
      }
      if (!result.ok) {
        recordFailure({ number: result.pageNumber, error: result.error });
      } else {
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        if (storeError) break;
        const tracked: Promise<void> = store(result).finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
      }
      const now = performance.now();
      slowestPageMs = Math.max(slowestPageMs, now - lastPageAt);
      lastPageAt = now;
      const after = job.pageNumbers.find((n) => n > result.pageNumber);
      if (after !== undefined && input.timeLeftMs && input.timeLeftMs() < reserveMs + 2 * slowestPageMs) {
        // Out of time: let the page that began finish and be stored, then stop.
        await Promise.all(inFlight);
        cutOff(after);
        break;
      }
      if (after !== undefined && input.checkpoint && now - lastCheckpoint >= input.checkpoint.everyMs) {
        await Promise.all(inFlight);
        if (storeError) break;
        const stored = [...pages].sort((a, b) => a.number - b.number);
        await input.checkpoint.commit(finish({ status: 'partial', pageCount: job.pageCount, pages: stored, warnings: [...warnings], nextPage: after }));
        lastCheckpoint = performance.now();
      }
    }
  } catch (err) {
    // A failed upload stopped the worker; report the upload's error, not the abort.
    if (!storeError) throw err;
  } finally {
    await job.close();
    await Promise.all(inFlight);
  }
  if (storeError) throw storeError;

  // Resume at nextPage: anything from there on is rendered again by the next attempt.
  const listed = pages.filter((p) => nextPage === undefined || p.number < nextPage).sort((a, b) => a.number - b.number);
  const status = nextPage !== undefined || listed.some(isPageFailure) ? 'partial' : 'complete';
  const manifest = finish({
    status,
    pageCount: job.pageCount,
    pages: listed,
    warnings,
    ...(nextPage !== undefined ? { nextPage } : {}),
  });
  return { manifest, stats: job.stats };
}


/** Why the selection renders no page of a `pageCount`-page document, or undefined when it renders some. */
export function selectionProblem(options: Pick<JobOptions, 'pages' | 'maxPages'>, pageCount: number): string | undefined {
  if (selectPages(pageCount, { pages: parsePageSelection(options.pages), maxPages: options.maxPages }).length > 0) return undefined;
  const limit = options.maxPages > 0 && options.maxPages < pageCount ? ` (MAX_PAGES renders the first ${options.maxPages})` : '';
  return `pages "${options.pages}" select no page of this document: it has ${pageCount} page${pageCount === 1 ? '' : 's'}${limit}`;
}

/** The explicitly selected pages past the document's end ("7", "5-9"), or undefined; an open end ("3-") never is. */
export function pagesBeyond(pages: string, pageCount: number): string | undefined {
  const beyond = parsePageSelection(pages).flatMap((r) => {
    if (r.to === undefined) return r.from > pageCount ? [{ from: r.from }] : [];
    return r.to > pageCount ? [{ from: Math.max(r.from, pageCount + 1), to: r.to }] : [];
  });
  return beyond.length ? formatPageSelection(beyond) : undefined;
}
