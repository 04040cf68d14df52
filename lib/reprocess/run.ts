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
  /** True when a later run has work to do: remaining > 0 or the listing was not finished. */
  moreRemain: boolean;
  /** This run listed the keys after this one (its checkpoint); null: from the first key. */
  startAfter: string | null;
  /**
   * Where the next run starts: the last key before the first one this run did not finish (a read
   * or dispatch failure, or over its limit), or the last key it took when it stopped early; null
   * when it reached the end with every key finished, and in dry runs (from the first key). The
   * schedule's checkpoint holds it; a manual run's caller may pass it back as `startAfter`.
   */
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

/** Whether a run reads and moves the schedule's checkpoint: the schedule's own real runs, and no other (docs/reprocess.md). */
export function usesScheduleCheckpoint(input: Pick<ReprocessInput, 'scheduled' | 'force' | 'dryRun'>): boolean {
  return input.scheduled && !input.force && !input.dryRun;
}

/**
 * Where the next run may start: every key taken up to it, in listing order, has been finished
 * (classified, and dispatched when it needed it). A key that was not (a manifest that could not
 * be read, a failed dispatch, one left over the limit) holds it back for good, so the next run
 * classifies it again instead of stepping past it.
 */
class Frontier {
  private readonly taken: { key: string; finished?: boolean }[] = [];
  private held = false;
  constructor(public last: string | null) {}
  take(key: string): { key: string; finished?: boolean } {
    const entry = { key };
    if (!this.held) this.taken.push(entry);
    return entry;
  }
  done(entry: { key: string; finished?: boolean }, finished: boolean): void {
    entry.finished = finished;
    while (!this.held && this.taken[0]?.finished !== undefined) {
      const head = this.taken.shift()!;
      if (!head.finished) {
        this.held = true;
        this.taken.length = 0;
      } else this.last = head.key;
    }
  }
  /** True once a key was left unfinished: the frontier stays before it. */
  get isHeld(): boolean {
    return this.held;
  }
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
  const startAfter = (checkpoint ? await checkpoint.read() : input.startAfter) ?? null;
  const source = listPdfs(s3, bucket, prefix, config, pageSize, startAfter ?? undefined);
  const frontier = new Frontier(startAfter);

  logger.info('reprocess started', { bucket, prefix, dryRun: input.dryRun, force: input.force, limit: input.limit, scheduled: input.scheduled, startAfter, dispatcher: dispatcher.kind });

  /** Whether the PDF was finished: classified, and dispatched if it needed it (or left to its own event). */
  async function handle(pdf: ListedPdf): Promise<boolean> {
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
      logger.error('manifest or object could not be read; PDF not classified (the next run tries it again)', { bucket, key: pdf.key, error: errorMessage(err) });
      return false;
    }
    scanned++;
    counts[classification.class]++;
    let action: Action = 'not-dispatched';
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
          logger.error('dispatch failed; the run goes on, and the next one tries it again', { bucket, key: pdf.key, class: classification.class, error: errorMessage(err) });
        }
      }
    } else if (classification.class !== 'ok') {
      settled++;
    }
    deps.onClassified?.({ ...pdf, ...classification, action });
    return action !== 'over-limit' && action !== 'dispatch-failed';
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
      const entry = frontier.take(next.value.key);
      frontier.done(entry, await handle(next.value));
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
  // Every key taken has been handled by now (workers finish the PDF in hand before stopping).
  // A dry run leaves nothing for the next run: it starts from the first key.
  const nextStartAfter = input.dryRun || (complete && !frontier.isHeld) ? null : frontier.last;
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
