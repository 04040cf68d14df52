/**
 * Completion events (docs/contract.md, "Completion events"): each commit of a final manifest
 * (`complete`, `failed`, or `partial` with no `nextPage`) is announced on an EventBridge bus, so
 * a consumer matches a rule instead of polling for manifest.json. Checkpoints, continuations,
 * fan-out ranges that do not complete the set and superseded renders never reach a commit of a
 * final manifest, so they announce nothing.
 *
 * At least once, with an id (the transactional outbox): the manifest is committed first; the
 * event is put after it, and once PutEvents took it, a marker (lib/s3/marker-store.ts) records
 * its `renderId` beside the pages. A message that finds the render committed and no marker (a
 * redelivery after a kill between the commit and PutEvents, or after an announcement that ran out
 * of attempts or time) sends it again. Every copy carries the same `detail.renderId`, so a
 * consumer drops duplicates by it: a PutEvents that was taken but answered too slowly is retried
 * and arrives twice, and so does one whose marker was not written before a kill.
 *
 * The announcement is bounded by the invocation's time left (minus the reserve): what it cannot
 * send in time, or after every attempt, is reported `unsent`, and the committer fails the
 * request after its clean-up, so the message comes back and its redelivery announces.
 */
import { errorMessage } from '../engine/errors.js';
import { isLegacy, isPageFailure, type Manifest, type ManifestStatus, type StoredManifest } from '../job/manifest.js';
import { logger, METRIC, metrics, MetricUnit } from '../observability.js';
import type { S3Client } from '@aws-sdk/client-s3';
import type { OutputLocation } from '../s3/layout.js';
import { readMarker, writeMarker } from '../s3/marker-store.js';
import { manifestKey } from '../s3/manifest-store.js';
import { plainEtag } from '../s3/source.js';

/** The events' `source`: a rule matches `{"source": ["s3-pdf-render"]}`. */
export const EVENT_SOURCE = 's3-pdf-render';

export const DETAIL_TYPE: Record<ManifestStatus, string> = {
  complete: 'Render Completed',
  partial: 'Render Partial',
  failed: 'Render Failed',
};

/** The event's `detail` (the schema in docs/contract.md). */
export interface CompletionDetail {
  /** The commit's id: the same in every copy of its event, another for every commit (renderIdOf). */
  renderId: string;
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

/**
 * The bus refused the event for good (EventBridge's 4xx other than throttling: AccessDenied, a
 * missing bus, a ValidationException): the same request fails the same way on every retry, so
 * the announcer logs and counts it and does not fail the message (a misconfigured EVENT_BUS
 * would otherwise send every render to the DLQ after all its receives).
 */
export class EventRefusedError extends Error {
  override readonly name = 'EventRefused';
  constructor(
    message: string,
    /** The service's error code, e.g. AccessDeniedException. */
    readonly code: string,
  ) {
    super(message);
  }
}

/** The port the render function announces through: EventBridge in AWS (eventbridge.ts), anything a test likes. */
export interface CompletionEvents {
  /** Puts one event; throws when the bus did not take it (EventRefusedError when it never will), or when `signal` aborts the request. */
  put(event: CompletionEvent, signal?: AbortSignal): Promise<void>;
}

/** A manifest nothing will add to: complete, failed, or partial with no page left to resume. */
export function isFinal(manifest: Manifest): boolean {
  return manifest.status !== 'partial' || manifest.nextPage === undefined;
}

/**
 * The id of one commit: its generation, status and the manifest object's etag. A copy of the
 * event (a retried PutEvents, a redelivery announcing again) names the same manifest object, so
 * the same id; another commit writes another manifest object (its finishedAt and durationMs
 * differ), so another etag and another id, even in the same generation.
 */
export function renderIdOf(manifest: Manifest, manifestEtag: string): string {
  return `${manifest.generation}-${manifest.status}-${plainEtag(manifestEtag)}`;
}

export function completionEvent(manifest: Manifest, location: { bucket: string; key: string }, renderId: string): CompletionEvent {
  return {
    detailType: DETAIL_TYPE[manifest.status],
    time: new Date(manifest.finishedAt),
    detail: {
      renderId,
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
 * generation, status, error code and renderer release: a forced re-render (a duplicate of a
 * result this release gave is settled without rendering: lib/job/freshness.ts, isSettled). The
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
  /** Lambda's context.getRemainingTimeInMillis: the announcement ends reserveMs before it. */
  timeLeftMs?: () => number;
  /** Time the announcement leaves of the invocation (default ANNOUNCE_RESERVE_MS). */
  reserveMs?: number;
}

/**
 * Three attempts, 1.25 s of waiting between them: with the client's 2 s request timeout an
 * unreachable bus costs at most ~7 s after the commit, while a throttled or briefly failing
 * PutEvents (its p99 is tens of ms) has two more chances.
 */
const ATTEMPTS = 3;
const BACKOFF_MS = 250;
/** The longest one attempt takes: the client's 2 s request timeout and its 1 s connection timeout (eventbridge.ts). */
const ATTEMPT_MS = 3_000;
/** An attempt is not started with less time than this: PutEvents' p99 is tens of ms, a cold connection ~100 ms. */
const MIN_ATTEMPT_MS = 250;
/**
 * Kept back from the invocation's time left: the announcement ends this long before the function
 * would time out, so the handler still answers (the clean-up runs beside it, and a timeout would
 * redeliver and redo the request). Not the render's FINISH_RESERVE_MS: that one is what a render
 * that drew until its page deadline still has to store its last pages and commit, and the
 * announcement comes inside it.
 */
export const ANNOUNCE_RESERVE_MS = 1_000;

/**
 * What became of an announcement. `unsent`: not put within its attempts or its time; the
 * committer fails the request after the clean-up, so the redelivered message announces.
 * `refused`: the bus refused it for good (EventRefusedError); logged and counted, not retried.
 */
export type Announcement = 'sent' | 'unsent' | 'refused' | 'already-sent' | 'repeat' | 'not-final';

/** How the render function's committer announces (lib/render-function/commit.ts). A failed PutEvents is `unsent`, never thrown; only S3 failing on the marker throws (the request is then retried). */
export interface Announcer {
  /** A commit this render won (its compare-and-swap, or its own PUT whose answer was lost). */
  committed(manifest: Manifest, manifestEtag: string): Promise<Announcement>;
  /** A final render found committed (a duplicate or redelivered message): sent again unless its marker says it went. */
  found(manifest: Manifest, manifestEtag: string): Promise<Announcement>;
}

/**
 * The announcer of one render, given the manifest it started from (`found`, with its etag) and
 * where manifests and markers live. Undefined when events are off.
 */
export function completionAnnouncer(
  events: CompletionEvents | undefined,
  store: { s3: S3Client; out: OutputLocation },
  found: { manifest: StoredManifest | null; etag: string | undefined },
  options: AnnounceOptions = {},
): Announcer | undefined {
  if (!events) return undefined;
  const { s3, out } = store;
  const location = { bucket: out.bucket, key: manifestKey(out) };
  const attempts = options.attempts ?? ATTEMPTS;
  const backoffMs = options.backoffMs ?? BACKOFF_MS;
  const reserveMs = options.reserveMs ?? ANNOUNCE_RESERVE_MS;
  /** Time this announcement may still take; Infinity outside Lambda. */
  const budget = (): number => (options.timeLeftMs ? options.timeLeftMs() - reserveMs : Number.POSITIVE_INFINITY);

  async function send(manifest: Manifest, renderId: string): Promise<Announcement> {
    const event = completionEvent(manifest, location, renderId);
    const log = { bucket: event.detail.bucket, key: event.detail.key, generation: event.detail.generation, detailType: event.detailType, renderId };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const left = budget();
      if (left < MIN_ATTEMPT_MS) {
        logger.warn('completion event not sent: out of time', { ...log, attempt, timeLeftMs: left + reserveMs });
        break;
      }
      try {
        // Aborted when the attempt's time or the invocation's is up: an answer that comes later is a lost answer (a copy may follow).
        await events!.put(event, AbortSignal.timeout(Math.min(left, ATTEMPT_MS)));
      } catch (err) {
        if (err instanceof EventRefusedError) {
          // Not retried, and the message is not failed: only a change of configuration helps (docs/operate.md).
          metrics.addMetric(METRIC.eventsLost, MetricUnit.Count, 1);
          logger.error('completion event refused by the bus: not retried; the commit stands', { ...log, attempt, code: err.code, error: err.message });
          return 'refused';
        }
        metrics.addMetric(METRIC.eventPutFailures, MetricUnit.Count, 1);
        logger.warn('completion event not accepted', { ...log, attempt, attempts, error: errorMessage(err) });
        const wait = backoffMs * 4 ** (attempt - 1);
        if (attempt < attempts) await new Promise((r) => setTimeout(r, Math.max(0, Math.min(wait, budget() - MIN_ATTEMPT_MS))));
        continue;
      }
      logger.info('completion event sent', { ...log, attempt });
      try {
        await writeMarker(s3, out, manifest.generation, renderId);
      } catch (err) {
        // The event went: without its marker, a redelivery would only send a copy with the same renderId.
        logger.warn('completion event marker not written', { ...log, error: errorMessage(err) });
      }
      return 'sent';
    }
    metrics.addMetric(METRIC.eventsLost, MetricUnit.Count, 1);
    logger.error('completion event not sent: the manifest is committed; the message is retried and its redelivery announces', { ...log, attempts });
    return 'unsent';
  }

  return {
    async committed(manifest, manifestEtag) {
      if (!isFinal(manifest)) return 'not-final';
      const renderId = renderIdOf(manifest, manifestEtag);
      // The manifest it replaced already held this result, and its event went (its marker says
      // so): the consumer has it. The marker moves to this commit, so no redelivery repeats it.
      if (found.manifest && found.etag && isRepeat(found.manifest, manifest) && (await readMarker(s3, out, manifest.generation)) === renderIdOf(found.manifest as Manifest, found.etag)) {
        logger.info('completion event not sent: the manifest already held this result', { bucket: out.bucket, key: manifest.source.key, generation: manifest.generation, renderId });
        await writeMarker(s3, out, manifest.generation, renderId);
        return 'repeat';
      }
      return send(manifest, renderId);
    },
    async found(manifest, manifestEtag) {
      if (!isFinal(manifest)) return 'not-final';
      const renderId = renderIdOf(manifest, manifestEtag);
      if ((await readMarker(s3, out, manifest.generation)) === renderId) return 'already-sent';
      logger.info('completion event sent again: the render is committed and its marker is missing', { bucket: out.bucket, key: manifest.source.key, generation: manifest.generation, renderId });
      return send(manifest, renderId);
    },
  };
}
