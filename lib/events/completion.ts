/**
 * Completion events (docs/contract.md, "Completion events"): each commit of a final manifest
 * (`complete`, `failed`, or `partial` with no `nextPage`) is announced once on an EventBridge
 * bus, so a consumer matches a rule instead of polling for manifest.json. Checkpoints,
 * continuations, fan-out ranges that do not complete the set, duplicates and superseded renders
 * never reach a commit of a final manifest, so they announce nothing (lib/render-function/commit.ts
 * calls the announcer only after its compare-and-swap won).
 *
 * Sending is best effort after the commit: a PutEvents that fails is logged, counted
 * (METRIC.eventPutFailures) and tried again a few times within the invocation; one that never
 * succeeds is logged and counted as lost (METRIC.eventsLost). It never throws: the commit
 * stands, the render is not redone, and no retry of the invocation repeats the event.
 */
import { errorMessage } from '../engine/errors.js';
import { isLegacy, isPageFailure, type Manifest, type ManifestStatus, type StoredManifest } from '../job/manifest.js';
import { logger, METRIC, metrics, MetricUnit } from '../observability.js';

/** The events' `source`: a rule matches `{"source": ["s3-pdf-render"]}`. */
export const EVENT_SOURCE = 's3-pdf-render';

export const DETAIL_TYPE: Record<ManifestStatus, string> = {
  complete: 'Render Completed',
  partial: 'Render Partial',
  failed: 'Render Failed',
};

/** The event's `detail` (the schema in docs/contract.md). */
export interface CompletionDetail {
  bucket: string;
  key: string;
  etag: string;
  versionId: string | null;
  status: ManifestStatus;
  pageCount: number;
  pagesRendered: number;
  errorCode: string | null;
  manifestBucket: string;
  manifestKey: string;
  generation: string;
  durationMs: number;
}

export interface CompletionEvent {
  detailType: string;
  /** When the render finished (the manifest's finishedAt). */
  time: Date;
  detail: CompletionDetail;
}

/** The port the render function announces through: EventBridge in AWS (eventbridge.ts), anything a test likes. */
export interface CompletionEvents {
  /** Puts one event; throws when the bus did not take it. */
  put(event: CompletionEvent): Promise<void>;
}

/** Called by the committer after each commit that won its compare-and-swap. */
export type CommitListener = (committed: Manifest) => Promise<void>;

/** A manifest nothing will add to: complete, failed, or partial with no page left to resume. */
export function isFinal(manifest: Manifest): boolean {
  return manifest.status !== 'partial' || manifest.nextPage === undefined;
}

export function completionEvent(manifest: Manifest, location: { bucket: string; key: string }): CompletionEvent {
  return {
    detailType: DETAIL_TYPE[manifest.status],
    time: new Date(manifest.finishedAt),
    detail: {
      bucket: manifest.source.bucket!,
      key: manifest.source.key!,
      etag: manifest.source.etag,
      versionId: manifest.source.versionId ?? null,
      status: manifest.status,
      pageCount: manifest.pageCount,
      pagesRendered: manifest.pages.filter((p) => !isPageFailure(p)).length,
      errorCode: manifest.error?.code ?? null,
      manifestBucket: location.bucket,
      manifestKey: location.key,
      generation: manifest.generation,
      durationMs: manifest.durationMs,
    },
  };
}

/**
 * True when `found` (the manifest the render started from) already held this result: the same
 * generation, status, error code and renderer release. That is a duplicate delivery rendering a
 * `failed` document again (the render function re-runs those), or a forced re-render: the
 * consumer already has this result. A renderer upgrade that turns `failed` into `complete`
 * within one generation is a new result and is announced.
 */
export function isRepeat(found: StoredManifest | null, committed: Manifest): boolean {
  if (!found || isLegacy(found) || !isFinal(found)) return false;
  return (
    found.generation === committed.generation &&
    found.status === committed.status &&
    found.error?.code === committed.error?.code &&
    found.renderer.version === committed.renderer.version
  );
}

export interface AnnounceOptions {
  /** PutEvents attempts, at most (the client itself does not retry: eventbridge.ts). */
  attempts?: number;
  /** Wait before attempt n+1 is backoffMs * 4^(n-1): 250 ms, then 1 s. */
  backoffMs?: number;
}

/**
 * Three attempts, 1.25 s of waiting between them: with the client's 2 s request timeout an
 * unreachable bus costs at most ~7 s after the commit, while a throttled or briefly failing
 * PutEvents (its p99 is tens of ms) has two more chances.
 */
const ATTEMPTS = 3;
const BACKOFF_MS = 250;

/**
 * The listener a render's committer calls: announces the final commits of this render, given the
 * manifest it started from. Undefined when events are off.
 */
export function completionAnnouncer(
  events: CompletionEvents | undefined,
  location: { bucket: string; key: string },
  found: StoredManifest | null,
  options: AnnounceOptions = {},
): CommitListener | undefined {
  if (!events) return undefined;
  const attempts = options.attempts ?? ATTEMPTS;
  const backoffMs = options.backoffMs ?? BACKOFF_MS;
  return async (committed) => {
    if (!isFinal(committed)) return;
    const event = completionEvent(committed, location);
    const log = { bucket: event.detail.bucket, key: event.detail.key, generation: event.detail.generation, detailType: event.detailType };
    if (isRepeat(found, committed)) {
      logger.info('completion event not sent: the manifest already held this result', log);
      return;
    }
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await events.put(event);
        logger.info('completion event sent', { ...log, attempt });
        return;
      } catch (err) {
        metrics.addMetric(METRIC.eventPutFailures, MetricUnit.Count, 1);
        logger.warn('completion event not accepted', { ...log, attempt, attempts, error: errorMessage(err) });
        if (attempt < attempts) await new Promise((r) => setTimeout(r, backoffMs * 4 ** (attempt - 1)));
      }
    }
    metrics.addMetric(METRIC.eventsLost, MetricUnit.Count, 1);
    logger.error('completion event lost: the manifest is committed, the event was not sent', { ...log, attempts });
  };
}
