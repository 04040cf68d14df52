/**
 * The render function's handler, built from a validated configuration. Each record is handled
 * on its own; permanent document errors are recorded in manifests; a malformed event, or S3
 * answering a 4xx that no retry can change, is logged and the invocation succeeds; transient
 * errors are collected and rethrown once every record has had its turn, so the event is retried.
 */
import type { Context, S3Event } from 'aws-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/env.js';
import { countFailure, logger, metrics } from '../observability.js';
import { errorMessage } from '../engine/errors.js';
import { createS3Client } from '../s3/client.js';
import { isPermanentS3Error, s3ErrorCode } from '../s3/errors.js';
import { parseRecords } from '../s3/event.js';
import { FINISH_RESERVE_MS, OutOfTimeError, renderObject, type RenderObjectDeps, type RenderObjectOutcome } from './render-object.js';

/** Timing knobs, for tests: how much time is kept back, how often progress is committed. */
export type RenderTuning = Pick<RenderObjectDeps, 'reserveMs' | 'checkpointMs'>;

export interface RecordResult {
  bucket: string;
  key: string;
  /** 'failed': a permanent S3 error; 'error': a transient one (the event is retried). */
  outcome: RenderObjectOutcome['kind'] | 'failed' | 'error';
  status?: string;
  reason?: string;
}

export interface RenderHandlerResult {
  records: RecordResult[];
}

/**
 * An S3 event, optionally marked by the reprocess function to render even what is up to date.
 * S3 itself never sets `forceRender`.
 */
export type RenderEvent = S3Event & { forceRender?: boolean };

export type RenderHandler = (event: RenderEvent | null | unknown, context?: Partial<Pick<Context, 'getRemainingTimeInMillis' | 'awsRequestId'>>) => Promise<RenderHandlerResult>;

export function createRenderHandler(config: Config, s3: S3Client = createS3Client(config), tuning: RenderTuning = {}): RenderHandler {
  const reserveMs = tuning.reserveMs ?? FINISH_RESERVE_MS;
  return async (event, context) => {
    if (context?.awsRequestId) logger.appendKeys({ requestId: context.awsRequestId });
    const { records, rejected } = parseRecords(event);
    const force = typeof event === 'object' && event !== null && (event as { forceRender?: unknown }).forceRender === true;
    const timeLeftMs = context?.getRemainingTimeInMillis ? () => context.getRemainingTimeInMillis!() : undefined;
    for (const reason of rejected) logger.warn('record ignored', { reason });
    const results: RecordResult[] = [];
    const transient: string[] = [];
    try {
      for (const record of records) {
        const { bucket, key } = record;
        try {
          // A record started with no more than the reserve left could only end half done.
          if (timeLeftMs && timeLeftMs() <= reserveMs) throw new OutOfTimeError(`out of time before starting ${key}: the retry renders it`);
          const outcome = await renderObject(record, { s3, config, force, ...tuning, ...(timeLeftMs ? { timeLeftMs } : {}) });
          if (outcome.kind === 'ignored') logger.info('record ignored', { bucket, key, reason: outcome.reason });
          if (outcome.kind === 'up-to-date') logger.info('already rendered with these options; skipped', { bucket, key, reason: outcome.reason });
          results.push({
            bucket,
            key,
            outcome: outcome.kind,
            ...(outcome.kind === 'rendered' ? { status: outcome.manifest.status } : {}),
            ...(outcome.kind === 'ignored' || outcome.kind === 'superseded' ? { reason: outcome.reason } : {}),
          });
        } catch (err) {
          if (isPermanentS3Error(err)) {
            // KeyTooLongError, InvalidArgument…: a retry gets the same answer.
            const code = s3ErrorCode(err) ?? 'S3_CLIENT_ERROR';
            logger.error('record failed permanently; not retried', { bucket, key, code, error: errorMessage(err) });
            countFailure(code, 'document');
            results.push({ bucket, key, outcome: 'failed', reason: `${code}: ${errorMessage(err)}` });
            continue;
          }
          const code = err instanceof OutOfTimeError ? 'OUT_OF_TIME' : ((err as { code?: string; name?: string }).code ?? (err as Error).name ?? 'ERROR');
          logger.error('record failed; the event will be retried', { bucket, key, code, error: errorMessage(err) });
          countFailure(code, 'transient');
          results.push({ bucket, key, outcome: 'error', reason: errorMessage(err) });
          transient.push(`${bucket}/${key}: ${errorMessage(err)}`);
        }
      }
    } finally {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    }
    if (transient.length > 0) throw new Error(`${transient.length} of ${records.length} records failed transiently: ${transient.join('; ')}`);
    return { records: results };
  };
}
