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
import { classifyObject, RENDER_CLASSES, type Classification, type RenderClass } from '../job/freshness.js';
import { outputLocation } from '../s3/layout.js';
import { readManifest } from '../s3/manifest-store.js';
import { headCurrent } from '../s3/source.js';
import { MAX_RETRY_KEYS, type CheckpointStore, type RetryKey } from './checkpoint.js';
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
  /** The schedule's checkpoint (checkpoint.ts): read and moved by scheduled real runs only (usesScheduleCheckpoint). */
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
  /** The schedule's run: the only kind that reads and moves its checkpoint. */
  scheduled: boolean;
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
  /** Objects HEADed for their render-* metadata: only those whose manifest says their options came from it. */
  metadataReads: number;
  /** PDFs needing a render that this run did not dispatch (over the limit, dispatch failures, or all of them in a dry run). */
  remaining: number;
  /** False when the run stopped before the end of the listing (out of time, or its limit reached): there may be more. */
  complete: boolean;
  /** True when a later run has work to do: remaining > 0, the listing was not finished, or keys are held for retry. */
  moreRemain: boolean;
  /** This run listed the keys after this one (its checkpoint); null: from the first key. */
  startAfter: string | null;
  /**
   * Where the next run starts: the last key this run took from the listing when it stopped
   * early; null when it reached the end, and in dry runs (from the first key). It never waits
   * for a key this run could not finish: those are held for retry instead. The schedule's
   * checkpoint holds it; a manual run's caller may pass it back as `startAfter`.
   */
  nextStartAfter: string | null;
  /** Keys held for retry from the checkpoint that this run tried again (scheduled runs). */
  retried: number;
  /**
   * Keys this run could not finish (a failed read or dispatch, or over its limit), plus those
   * held from earlier runs that it did not get to: a scheduled run writes them to its
   * checkpoint (at most MAX_RETRY_KEYS) and the next one tries them first. A manual run only
   * counts them (each failure is logged with its key).
   */
  heldForRetry: number;
  durationMs: number;
}

const DEFAULT_CONCURRENCY = 16;
const DEFAULT_RESERVE_MS = 20_000;
/** Runs in a row a key held for retry may fail before each further failure is logged as a warning ("key keeps failing"). */
export const WARN_AFTER_FAILURES = 3;


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

/** Whether a run reads and moves the schedule's checkpoint: the schedule's own real runs, and no other (docs/reprocess.md). */
export function usesScheduleCheckpoint(input: Pick<ReprocessInput, 'scheduled' | 'force' | 'dryRun'>): boolean {
  return input.scheduled && !input.force && !input.dryRun;
}

/** Why a PDF was not finished: a failed read or dispatch (error), or none (left over the limit). */
interface Unfinished {
  error?: string;
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
  let metadataReads = 0;
  let complete = true;
  let stop = false;
  const dispatchSlot = limiter(Math.max(dispatcher.concurrency, 1));
  // Only the schedule moves its checkpoint: a forced or manual run that did would make the next
  // scheduled run skip what lies before where it stopped. A manual run has its own cursor, held
  // by its caller (`startAfter` in, `nextStartAfter` out).
  const checkpoint = usesScheduleCheckpoint(input) ? deps.checkpoint : undefined;
  const prior = checkpoint ? await checkpoint.read() : undefined;
  const startAfter = (checkpoint ? prior?.startAfter : input.startAfter) ?? null;
  const toRetry = prior?.retry ?? [];
  const source = listPdfs(s3, bucket, prefix, config, pageSize, startAfter ?? undefined);
  /** What the next run tries again first, by key: those this run did not finish, or did not get to. */
  const held = new Map<string, RetryKey>();
  /** Keys tried again from the checkpoint: not taken a second time if the listing reaches them. */
  const retriedKeys = new Set<string>();
  /** The last key taken from the listing: the listing yields in key order, and every key taken is handled before the run ends. */
  let lastTaken: string | null = null;

  /** Holds an unfinished key for the next run; a failure counts one more run in a row. */
  function hold(key: string, unfinished: Unfinished, before: RetryKey | undefined): void {
    const failures = (before?.failures ?? 0) + (unfinished.error !== undefined ? 1 : 0);
    const lastError = unfinished.error ?? before?.lastError;
    held.set(key, { key, failures, ...(lastError !== undefined ? { lastError } : {}) });
    if (unfinished.error !== undefined && failures >= WARN_AFTER_FAILURES) {
      logger.warn('key keeps failing: held for retry, it does not hold the schedule back', { bucket, key, failures, error: unfinished.error });
    }
  }
  const outOfTime = (): boolean => deps.timeLeftMs !== undefined && deps.timeLeftMs() < reserveMs;

  logger.info('reprocess started', { bucket, prefix, dryRun: input.dryRun, force: input.force, limit: input.limit, scheduled: input.scheduled, startAfter, heldForRetry: toRetry.length, dispatcher: dispatcher.kind });

  /** Undefined when the PDF was finished: classified, and dispatched if it needed it (or left to its own event). */
  async function handle(pdf: ListedPdf): Promise<Unfinished | undefined> {
    let classification: Classification;
    try {
      const { manifest } = await readManifest(s3, outputLocation(bucket, pdf.key, config));
      // As the render function would classify it: an object rendered with its own render-*
      // metadata against that, read (HEAD) only for those objects (lib/job/freshness.ts).
      classification = await classifyObject(manifest, pdf, config.output, input.force, async () => {
        metadataReads++;
        return (await headCurrent(s3, bucket, pdf.key))?.metadata;
      });
    } catch (err) {
      readFailures++;
      logger.error('manifest or object could not be read; PDF not classified (the next scheduled run tries it again)', { bucket, key: pdf.key, error: errorMessage(err) });
      return { error: errorMessage(err) };
    }
    scanned++;
    counts[classification.class]++;
    let action: Action = 'not-dispatched';
    let dispatchError: string | undefined;
    if (classification.dispatch && pdf.lastModified > recentBefore) {
      recent++;
      action = 'left-to-its-event';
    } else if (classification.dispatch) {
      needsWork++;
      if (attempts >= input.limit) action = 'over-limit';
      else if (input.dryRun) {
        attempts++;
        action = 'would-dispatch';
        logger.info('would dispatch (dry run)', { bucket, key: pdf.key, class: classification.class, reason: classification.reason });
      } else {
        // The limit is reached: take no more keys (those in hand finish, or stay for the next run).
        if (++attempts >= input.limit) stop = true;
        try {
          await dispatchSlot(() => dispatcher.dispatch({ bucket, key: pdf.key, etag: pdf.etag, ...(input.force ? { force: true } : {}) }));
          dispatched++;
          action = 'dispatched';
          logger.info('render dispatched', { bucket, key: pdf.key, class: classification.class, reason: classification.reason });
        } catch (err) {
          dispatchFailures++;
          action = 'dispatch-failed';
          dispatchError = errorMessage(err);
          logger.error('dispatch failed; the run goes on, and the next scheduled run tries it again', { bucket, key: pdf.key, class: classification.class, error: errorMessage(err) });
        }
      }
    } else if (classification.class !== 'ok') {
      settled++;
    }
    deps.onClassified?.({ ...pdf, ...classification, action });
    if (action === 'over-limit') return {};
    if (action === 'dispatch-failed') return { error: dispatchError ?? 'dispatch failed' };
    return undefined;
  }

  /** A key held from an earlier run, tried once more: HEAD (as listing would have found it), classify, dispatch. */
  async function retry(before: RetryKey): Promise<void> {
    let pdf: ListedPdf;
    try {
      const head = await headCurrent(s3, bucket, before.key);
      if (!head) {
        logger.info('a key held for retry is gone: dropped', { bucket, key: before.key });
        return;
      }
      pdf = { key: before.key, etag: head.etag, size: head.size, lastModified: head.lastModified ?? 0 };
    } catch (err) {
      readFailures++;
      logger.error('a key held for retry could not be read (HEAD); held for the next scheduled run', { bucket, key: before.key, error: errorMessage(err) });
      hold(before.key, { error: errorMessage(err) }, before);
      return;
    }
    const unfinished = await handle(pdf);
    if (unfinished) hold(pdf.key, unfinished, before);
  }

  // Keys held from earlier runs go first (each once), then the listing from the cursor.
  let nextRetry = 0;
  async function retryWorker(): Promise<void> {
    while (nextRetry < toRetry.length) {
      const before = toRetry[nextRetry++]!;
      if (stop || outOfTime()) {
        // Not tried: held as it was, without counting a failure.
        held.set(before.key, before);
        continue;
      }
      retriedKeys.add(before.key);
      await retry(before);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, toRetry.length) }, () => retryWorker()));

  // `concurrency` workers pull from one listing; an async generator queues concurrent next() calls.
  async function worker(): Promise<void> {
    while (!stop) {
      if (outOfTime()) {
        if (complete) logger.warn('out of time: stopping before the end of the listing', { bucket, prefix, scanned });
        complete = false;
        stop = true;
        return;
      }
      const next = await source.next();
      if (next.done) return;
      lastTaken = next.value.key;
      if (retriedKeys.has(next.value.key)) continue;
      const unfinished = await handle(next.value);
      if (unfinished) hold(next.value.key, unfinished, undefined);
    }
    // Stopped at the limit: the listing was not read to its end.
    complete = false;
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
  // Every key taken has been handled by now (workers finish the PDF in hand before stopping),
  // and those not finished are held for retry: the cursor never waits for one of them. A run
  // that reached the end starts the next from the first key, so keys before the cursor are
  // classified again (after a renderer upgrade, say). A dry run leaves nothing for the next run.
  const nextStartAfter = input.dryRun || complete ? null : (lastTaken ?? startAfter);
  let retryList = [...held.values()];
  if (retryList.length > MAX_RETRY_KEYS) {
    const dropped = retryList.slice(0, retryList.length - MAX_RETRY_KEYS);
    retryList = retryList.slice(-MAX_RETRY_KEYS);
    // Dropped keys are not lost for good: the next pass of the listing classifies them again.
    logger.warn('too many keys held for retry: the oldest are dropped', { bucket, prefix, max: MAX_RETRY_KEYS, dropped: dropped.length, firstDropped: dropped.slice(0, 10).map((r) => r.key) });
  }
  if (checkpoint) {
    try {
      await checkpoint.write({ startAfter: nextStartAfter, retry: retryList });
    } catch (err) {
      logger.error('the checkpoint could not be written: the next run starts where this one started', { bucket, prefix, nextStartAfter, heldForRetry: retryList.length, error: errorMessage(err) });
    }
  }
  return {
    bucket,
    prefix,
    dryRun: input.dryRun,
    force: input.force,
    limit: input.limit,
    scheduled: input.scheduled,
    dispatcher: dispatcher.kind,
    scanned,
    counts,
    needsWork,
    recent,
    settled,
    dispatched,
    dispatchFailures,
    readFailures,
    metadataReads,
    remaining,
    complete,
    moreRemain: remaining > 0 || !complete || retryList.length > 0,
    startAfter,
    nextStartAfter,
    retried: retriedKeys.size,
    heldForRetry: retryList.length,
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
  metrics.addMetric('ReprocessHeldForRetry', MetricUnit.Count, summary.heldForRetry);
  metrics.publishStoredMetrics();
}
