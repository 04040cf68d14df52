/**
 * One reprocess run (docs/reprocess.md): list the PDFs under INPUT_PREFIX + prefix page by page,
 * classify each against its manifest, dispatch a render for those that need one (at most
 * `limit`), and sum it all up. Work in flight is bounded: one listing page plus the one being
 * fetched, `concurrency` manifest reads, and the dispatcher's own concurrency.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/env.js';
import { logger, metrics, MetricUnit } from '../observability.js';
import { errorMessage } from '../engine/errors.js';
import { classify, RENDER_CLASSES, type Classification, type RenderClass } from '../job/freshness.js';
import { outputLocation } from '../s3/layout.js';
import { readManifest } from '../s3/manifest-store.js';
import type { CheckpointStore } from './checkpoint.js';
import type { Dispatcher } from './dispatch.js';
import type { ReprocessInput } from './input.js';
import { listPdfs, MAX_PAGE_SIZE, type ListedPdf } from './list.js';

export interface ReprocessDeps {
  s3: S3Client;
  config: Config;
  dispatcher: Dispatcher;
  /** ListObjectsV2 MaxKeys (1..1000). */
  pageSize?: number;
  /** Manifest reads in flight, at most. */
  concurrency?: number;
  /** Lambda's context.getRemainingTimeInMillis: no new PDF is taken once less than reserveMs is left. */
  timeLeftMs?: () => number;
  reserveMs?: number;
  /** Objects modified less than this long ago are left to their own events (default: RECENT_UPLOAD_SECONDS). */
  recentMs?: number;
  /** Called for each PDF once classified (and dispatched, when it is). */
  onClassified?: (item: ClassifiedPdf) => void;
  /** Where a real run resumes and records where the next one resumes (checkpoint.ts); dry runs neither read nor write it. */
  checkpoint?: CheckpointStore;
}

export type Action = 'dispatched' | 'dispatch-failed' | 'not-dispatched' | 'would-dispatch' | 'over-limit' | 'left-to-its-event';

export interface ClassifiedPdf extends ListedPdf, Classification {
  action: Action;
}

export interface ReprocessSummary {
  bucket: string;
  /** The listed prefix: INPUT_PREFIX + the input's prefix. */
  prefix: string;
  dryRun: boolean;
  force: boolean;
  limit: number;
  dispatcher: string;
  /** PDFs classified. */
  scanned: number;
  counts: Record<RenderClass, number>;
  /** PDFs that need a render (a subset of missing, failed, partial and stale), uploaded long enough ago. */
  needsWork: number;
  /** PDFs that need a render but were modified in the last few minutes: their own event is in flight. */
  recent: number;
  /** Failed or partial results that this renderer release already produced: counted, not retried. */
  settled: number;
  dispatched: number;
  dispatchFailures: number;
  /** Manifests that could not be read (other than "not there"): counted, not classified. */
  readFailures: number;
  /** PDFs needing a render that this run did not dispatch (over the limit, dispatch failures, or all of them in a dry run). */
  remaining: number;
  /** False when the run stopped before the end of the listing (out of time): there may be more. */
  complete: boolean;
  /** True when a later run has work to do: remaining > 0 or the listing was not finished. */
  moreRemain: boolean;
  /** This run listed the keys after this one (its checkpoint); null: from the first key. */
  startAfter: string | null;
  /** The checkpoint it left for the next run: null when it reached the end with nothing over its limit, and in dry runs (the next run starts from the first key). */
  nextStartAfter: string | null;
  durationMs: number;
}

const DEFAULT_CONCURRENCY = 16;
const DEFAULT_RESERVE_MS = 20_000;


/** A counting semaphore. */
function limiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    while (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

export async function reprocess(bucket: string, input: ReprocessInput, deps: ReprocessDeps): Promise<ReprocessSummary> {
  const started = performance.now();
  const { s3, config, dispatcher } = deps;
  const prefix = config.inputPrefix + input.prefix;
  const pageSize = Math.min(Math.max(deps.pageSize ?? MAX_PAGE_SIZE, 1), MAX_PAGE_SIZE);
  const concurrency = Math.max(deps.concurrency ?? DEFAULT_CONCURRENCY, 1);
  const reserveMs = deps.reserveMs ?? DEFAULT_RESERVE_MS;
  const counts = Object.fromEntries(RENDER_CLASSES.map((c) => [c, 0])) as Record<RenderClass, number>;
  let scanned = 0;
  let needsWork = 0;
  let recent = 0;
  // Younger objects may still have their own S3 event in the queue: dispatching them too would render them twice.
  const recentBefore = Date.now() - (deps.recentMs ?? config.recentUploadMs);
  let settled = 0;
  let attempts = 0;
  let dispatched = 0;
  let dispatchFailures = 0;
  let readFailures = 0;
  let complete = true;
  let stop = false;
  const dispatchSlot = limiter(Math.max(dispatcher.concurrency, 1));
  const checkpoint = input.dryRun ? undefined : deps.checkpoint;
  const startAfter = (await checkpoint?.read()) ?? null;
  const source = listPdfs(s3, bucket, prefix, config, pageSize, startAfter ?? undefined);
  // Keys in listing order: the last one taken, and the first one left over the limit (with the key
  // before it), so that the next run resumes where this one's work stopped, not after it.
  let taken = 0;
  let lastTaken: string | null = startAfter;
  let rewind: { index: number; startAfter: string | null } | undefined;

  logger.info('reprocess started', { bucket, prefix, dryRun: input.dryRun, force: input.force, limit: input.limit, dispatcher: dispatcher.kind });

  async function handle(pdf: ListedPdf, index: number, before: string | null): Promise<void> {
    let classification: Classification;
    try {
      classification = classify((await readManifest(s3, outputLocation(bucket, pdf.key, config))).manifest, pdf, config.output, input.force);
    } catch (err) {
      readFailures++;
      logger.error('manifest could not be read; PDF not classified', { bucket, key: pdf.key, error: errorMessage(err) });
      return;
    }
    scanned++;
    counts[classification.class]++;
    let action: Action = 'not-dispatched';
    if (classification.dispatch && pdf.lastModified > recentBefore) {
      recent++;
      action = 'left-to-its-event';
    } else if (classification.dispatch) {
      needsWork++;
      if (attempts >= input.limit) {
        action = 'over-limit';
        if (!rewind || index < rewind.index) rewind = { index, startAfter: before };
      }
      else if (input.dryRun) {
        attempts++;
        action = 'would-dispatch';
        logger.info('would dispatch (dry run)', { bucket, key: pdf.key, class: classification.class, reason: classification.reason });
      } else {
        attempts++;
        try {
          await dispatchSlot(() => dispatcher.dispatch({ bucket, key: pdf.key, etag: pdf.etag, ...(input.force ? { force: true } : {}) }));
          dispatched++;
          action = 'dispatched';
          logger.info('render dispatched', { bucket, key: pdf.key, class: classification.class, reason: classification.reason });
        } catch (err) {
          dispatchFailures++;
          action = 'dispatch-failed';
          logger.error('dispatch failed; the run goes on', { bucket, key: pdf.key, class: classification.class, error: errorMessage(err) });
        }
      }
    } else if (classification.class !== 'ok') {
      settled++;
    }
    deps.onClassified?.({ ...pdf, ...classification, action });
  }

  // `concurrency` workers pull from one listing; an async generator queues concurrent next() calls.
  async function worker(): Promise<void> {
    while (!stop) {
      if (deps.timeLeftMs && deps.timeLeftMs() < reserveMs) {
        if (complete) logger.warn('out of time: stopping before the end of the listing', { bucket, prefix, scanned });
        complete = false;
        stop = true;
        return;
      }
      const next = await source.next();
      if (next.done) return;
      const before = lastTaken;
      lastTaken = next.value.key;
      await handle(next.value, taken++, before);
    }
  }
  const results = await Promise.allSettled(
    Array.from({ length: concurrency }, () =>
      worker().catch((err: unknown) => {
        stop = true;
        throw err;
      }),
    ),
  );
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
  if (!complete) await source.return();

  const remaining = needsWork - dispatched;
  // Every key taken has been handled by now (workers finish the PDF in hand before stopping).
  // Without a checkpoint (dry runs) nothing is left for the next run: it starts from the first key.
  const nextStartAfter = !checkpoint ? null : rewind ? rewind.startAfter : complete ? null : lastTaken;
  if (checkpoint) {
    try {
      await checkpoint.write(nextStartAfter);
    } catch (err) {
      logger.error('the checkpoint could not be written: the next run starts where this one started', { bucket, prefix, nextStartAfter, error: errorMessage(err) });
    }
  }
  return {
    bucket,
    prefix,
    dryRun: input.dryRun,
    force: input.force,
    limit: input.limit,
    dispatcher: dispatcher.kind,
    scanned,
    counts,
    needsWork,
    recent,
    settled,
    dispatched,
    dispatchFailures,
    readFailures,
    remaining,
    complete,
    moreRemain: remaining > 0 || !complete,
    startAfter,
    nextStartAfter,
    durationMs: Math.round(performance.now() - started),
  };
}

/** The summary as CloudWatch metrics (EMF), with a `mode` dimension: run or dryRun. */
export function publishSummaryMetrics(summary: ReprocessSummary): void {
  metrics.addDimension('mode', summary.dryRun ? 'dryRun' : 'run');
  metrics.addMetric('ReprocessScanned', MetricUnit.Count, summary.scanned);
  for (const name of RENDER_CLASSES) metrics.addMetric(`Reprocess${name[0]!.toUpperCase()}${name.slice(1)}`, MetricUnit.Count, summary.counts[name]);
  metrics.addMetric('ReprocessNeedsWork', MetricUnit.Count, summary.needsWork);
  metrics.addMetric('ReprocessDispatched', MetricUnit.Count, summary.dispatched);
  metrics.addMetric('ReprocessDispatchFailures', MetricUnit.Count, summary.dispatchFailures);
  metrics.addMetric('ReprocessReadFailures', MetricUnit.Count, summary.readFailures);
  metrics.addMetric('ReprocessRemaining', MetricUnit.Count, summary.remaining);
  metrics.publishStoredMetrics();
}
