/**
 * The pages of one invocation: runs the job on the downloaded file, then settles what it did.
 * A whole document commits its manifest (progress on the way, `partial` with `nextPage` when
 * out of time). A fan-out range stores its part and, if it completes the set, commits the
 * merged manifest. Out of time with budget left and a queue: a continuation message carries the
 * rest and the invocation succeeds; with no queue the invocation throws so it is retried.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/env.js';
import { workerCount } from '../engine/render.js';
import type { JobOptions, OptionsSource } from '../job/options.js';
import { selectionHead, selectionWithin } from '../job/options.js';
import type { Manifest, ManifestPage, ManifestPageFailure, ManifestSource } from '../job/manifest.js';
import { isLegacy, isPageFailure } from '../job/manifest.js';
import { runRenderJob } from '../job/run-job.js';
import { countFailure, logger, METRIC, metrics, MetricUnit } from '../observability.js';
import type { OutputLocation } from '../s3/layout.js';
import { manifestKey, readManifest } from '../s3/manifest-store.js';
import { s3PageSink } from '../s3/page-store.js';
import { readParts, writePart } from '../s3/part-store.js';
import type { WorkQueue } from '../sqs/work-queue.js';
import type { PageWork, WorkRequest } from '../work/messages.js';
import type { ManifestCommitter } from './commit.js';
import { mergeParts, planRanges, selectedPages, setComplete } from './fan-out.js';
import type { RenderObjectOutcome } from './outcome.js';
import { notCommitted, OutOfTimeError, StopRendering } from './outcome.js';

/** What this invocation renders: the whole document (from `from` on) or one range of it. */
export interface PagePlan {
  range?: { from: number; to: number; count: number };
  /** First page to draw. */
  from: number;
  /** Pages earlier invocations stored (continuations). */
  kept: (ManifestPage | ManifestPageFailure)[];
  work: PageWork;
  /** A fresh whole-document render may split itself into ranges once it knows the page count. */
  mayFanOut: boolean;
}

export interface RenderPagesContext {
  s3: S3Client;
  config: Config;
  request: WorkRequest;
  source: ManifestSource;
  options: JobOptions;
  /** Where `options` came from, for the manifest. */
  optionsSource: OptionsSource;
  /** For the manifest, before what the render adds (unknown object metadata…). */
  warnings: string[];
  out: OutputLocation;
  generation: string;
  committer: ManifestCommitter;
  filePath: string;
  plan: PagePlan;
  queue?: WorkQueue;
  timeLeftMs?: () => number;
  reserveMs: number;
  checkpointMs: number;
  signal?: AbortSignal;
}

export async function renderPages(ctx: RenderPagesContext): Promise<RenderObjectOutcome> {
  const { s3, config, source, out, generation, committer, plan } = ctx;
  const log = { bucket: source.bucket, key: source.key, generation };
  let range = plan.range;
  const started = performance.now();
  let rendered;
  try {
    rendered = await runRenderJob({
      filePath: ctx.filePath,
      source,
      options: {
        ...ctx.options,
        // This invocation's pages: its range, or the rest of the document, or (fresh, may fan out) at most the first range.
        selection: range
          ? selectionWithin(ctx.options.pages, plan.from, range.to)
          : plan.mayFanOut && ctx.queue && config.fanoutPages > 0
            ? selectionHead(ctx.options.pages, config.fanoutPages)
            : selectionWithin(ctx.options.pages, plan.from),
        ...(config.pageTimeoutMs ? { pageTimeoutMs: config.pageTimeoutMs } : {}),
      },
      optionsSource: ctx.optionsSource,
      warnings: ctx.warnings,
      kept: plan.kept,
      concurrency: config.uploadConcurrency,
      // As many workers as the function has vCPUs (one below 3,538 MB): lib/engine/pool.ts.
      workers: workerCount(config.functionMemoryMb),
      sink: s3PageSink(s3, out, generation, source.etag),
      ...(ctx.timeLeftMs ? { timeLeftMs: ctx.timeLeftMs, reserveMs: ctx.reserveMs } : {}),
      async onOpened(pageCount) {
        if (!plan.mayFanOut || !ctx.queue) return;
        const ranges = planRanges(selectedPages(pageCount, ctx.options), config.fanoutPages);
        if (ranges.length === 0) return;
        // This invocation is range 1; the others go to the queue before any page is drawn.
        range = ranges[0]!;
        await ctx.queue.send(ranges.slice(1).map((r) => ({ ...requestOf(ctx), pages: { range: r, hop: 0, spentMs: 0 } })));
        logger.info('fanned out', { ...log, pageCount, ranges: ranges.length, rangePages: config.fanoutPages });
      },
      checkpoint: {
        everyMs: ctx.checkpointMs,
        async commit(partial) {
          // Ranges commit nothing but their part; the manifest is the last range's to write.
          if (range) return;
          const result = await committer.commit(partial);
          logger.info('progress committed', { ...log, result, nextPage: partial.nextPage });
          if (result !== 'committed') throw new StopRendering(result);
        },
      },
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onLog: (level, message) => logger.debug('mupdf', { ...log, level, detail: message }),
      onPage: (page, timing) => {
        if (isPageFailure(page)) {
          logger.warn('page failed', { ...log, page: page.number, code: page.error.code, detail: page.error.message });
          countFailure(page.error.code, 'page');
        } else {
          metrics.addMetric(METRIC.pagesRendered, MetricUnit.Count, 1);
          metrics.addMetric(METRIC.bytesOut, MetricUnit.Bytes, page.bytes);
          if (timing) metrics.addMetric(METRIC.renderMs, MetricUnit.Milliseconds, timing.renderMs);
        }
      },
    });
  } catch (err) {
    if (err instanceof StopRendering) return notCommitted(err.result, out);
    throw err;
  }
  const { manifest, stats } = rendered;
  const work: PageWork = { ...plan.work, hop: plan.work.hop + 1, spentMs: plan.work.spentMs + Math.round(performance.now() - started) };
  logger.info('pages rendered', { ...log, range, nextPage: manifest.nextPage, hop: work.hop, spentMs: work.spentMs, wasmHeapPeakBytes: stats.wasmHeapPeakBytes });

  let nextPage = manifest.nextPage;
  const warnings = [...manifest.warnings];
  if (nextPage !== undefined && (work.hop >= config.documentBudget.maxHops || work.spentMs >= config.documentBudget.maxRenderMs)) {
    const what = range ? `pages ${nextPage}-${range.to}` : `pages ${nextPage}-`;
    warnings.push(
      `${what} not rendered: the document's budget is spent (${work.hop} invocations, ${Math.round(work.spentMs / 1000)} s of rendering; ` +
        `DOCUMENT_MAX_HOPS ${config.documentBudget.maxHops}, DOCUMENT_MAX_RENDER_SECONDS ${config.documentBudget.maxRenderMs / 1000})`,
    );
    logger.warn('document budget spent: stopping as partial', { ...log, nextPage, hop: work.hop, spentMs: work.spentMs });
    nextPage = undefined;
  }
  const continuation = nextPage !== undefined && ctx.queue ? { ...requestOf(ctx), pages: { ...work, ...(range ? { range } : {}) } } : undefined;

  if (range) {
    await writePart(s3, out, generation, {
      range: { from: range.from, to: range.to },
      pages: manifest.pages,
      warnings,
      ...(nextPage !== undefined ? { nextPage } : {}),
      complete: manifest.nextPage === undefined,
      pageCount: manifest.pageCount,
      startedAt: manifest.startedAt,
    });
    if (continuation) {
      await ctx.queue!.send([continuation]);
      return { kind: 'continued', nextPage: nextPage! };
    }
    if (nextPage !== undefined) throw new OutOfTimeError(`out of time: pages ${range.from}-${nextPage - 1} of ${source.key} stored; the retry resumes at page ${nextPage}`);
    return completeSet(ctx, range);
  }

  const final: Manifest = { ...manifest, warnings };
  // Over budget: still `partial`, but nothing will resume it (the warning says why).
  if (nextPage === undefined) delete final.nextPage;
  const result = await committer.commit(final);
  if (result !== 'committed') return notCommitted(result, out);
  logDocument(final);
  if (continuation) {
    await ctx.queue!.send([continuation]);
    return { kind: 'continued', nextPage: nextPage! };
  }
  if (nextPage !== undefined) throw new OutOfTimeError(`out of time: ${source.key} stored up to page ${nextPage - 1}; the retry resumes at page ${nextPage}`);
  return { kind: 'rendered', manifestKey: manifestKey(out), manifest: final };
}

/** After a range stored its part: the one that finds the set complete commits the manifest. */
async function completeSet(ctx: RenderPagesContext, range: NonNullable<PagePlan['range']>): Promise<RenderObjectOutcome> {
  const parts = await readParts(ctx.s3, ctx.out, ctx.generation);
  if (!setComplete(parts, range.count)) {
    // A duplicate of this range that ran after the set was merged has just written its part
    // again: the merge's clean-up has already run, so it is run again. (S3 lists after a write
    // consistently: a merge whose listing missed this part committed before this read.)
    const { manifest: stored, etag: storedEtag } = await readManifest(ctx.s3, ctx.out);
    if (stored && !isLegacy(stored) && stored.generation === ctx.generation) await ctx.committer.settle(stored, storedEtag);
    // A range commits nothing, so nothing else tells it that a newer upload was rendered and
    // cleaned up while it drew: its pages and part would stay for good.
    else if (await ctx.committer.discardIfSuperseded(ctx.source.etag, ctx.generation)) return notCommitted('superseded', ctx.out);
    return { kind: 'range-stored', range: { from: range.from, to: range.to }, ranges: { done: parts.filter((p) => p.nextPage === undefined).length, count: range.count } };
  }
  const manifest = mergeParts(ctx.source, ctx.options, parts, ctx.optionsSource);
  const result = await ctx.committer.commit(manifest);
  // The commit's clean-up removes the part records of a final manifest.
  if (result !== 'committed') return notCommitted(result, ctx.out);
  logDocument(manifest);
  return { kind: 'rendered', manifestKey: manifestKey(ctx.out), manifest };
}

/** The request again, for a message about the same object: its etag pins it. */
function requestOf(ctx: RenderPagesContext): WorkRequest {
  const { bucket, key, etag, versionId } = ctx.source;
  return { bucket: bucket!, key: key!, etag, ...(versionId ? { versionId } : {}), ...(ctx.request.force ? { force: true } : {}) };
}

function logDocument(manifest: Manifest): void {
  const summary = { bucket: manifest.source.bucket, key: manifest.source.key, status: manifest.status, generation: manifest.generation, pageCount: manifest.pageCount, durationMs: manifest.durationMs };
  if (manifest.error) {
    logger.error('document failed', { ...summary, code: manifest.error.code, detail: manifest.error.message });
    countFailure(manifest.error.code, 'document');
  } else {
    logger.info('document committed', { ...summary, nextPage: manifest.nextPage, warnings: manifest.warnings });
  }
}
