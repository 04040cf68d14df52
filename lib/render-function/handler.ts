/**
 * The render function's handler, built from a validated configuration. It takes the render
 * queue's SQS batches (one message in production: batch size 1), and plain S3 events or S3's
 * EventBridge events invoked directly (sam local invoke, or S3 or a rule wired to the function). Each request is handled on its own: permanent
 * document errors are recorded in manifests; a malformed event or message, or S3 answering a
 * 4xx that no retry can change, is logged and not retried. A transient error fails its SQS
 * message alone (a partial batch response: SQS redelivers it, then dead-letters it), or, for
 * a plain S3 event, is rethrown once every record has had its turn, so the event is retried.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, S3Event, SQSBatchItemFailure, SQSRecord } from 'aws-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/env.js';
import { countFailure, logger, metrics } from '../observability.js';
import { errorMessage } from '../engine/errors.js';
import type { CompletionEvents } from '../events/completion.js';
import { createEventBridgeClient, eventBridgeEvents } from '../events/eventbridge.js';
import { createS3Client } from '../s3/client.js';
import { isPermanentS3Error, s3ErrorCode } from '../s3/errors.js';
import { createSqsClient } from '../sqs/client.js';
import { sqsWorkQueue, type WorkQueue } from '../sqs/work-queue.js';
import { isSqsEvent, parseDirectEvent, parseQueueBody, type ParsedWork, type WorkRequest } from '../work/messages.js';
import { FINISH_RESERVE_MS, OutOfTimeError, renderObject, type RenderObjectDeps, type RenderObjectOutcome } from './render-object.js';

/** Timing knobs, the queue and the events port, for tests: how much time is kept back, how often progress is committed, where continuations and completion events go. */
export type RenderTuning = Pick<RenderObjectDeps, 'reserveMs' | 'checkpointMs' | 'queue' | 'events'>;

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
  /** For an SQS batch: the messages to leave on the queue (Lambda's partial batch response). */
  batchItemFailures?: SQSBatchItemFailure[];
}

/**
 * A plain S3 event, optionally marked `forceRender` by hand to render even what is up to date
 * (S3 never sets it; the reprocess function asks with `"force": true` in its render message).
 */
export type RenderEvent = S3Event & { forceRender?: boolean };

export type RenderHandler = (event: RenderEvent | null | unknown, context?: Partial<Pick<Context, 'getRemainingTimeInMillis' | 'awsRequestId'>>) => Promise<RenderHandlerResult>;

export function createRenderHandler(config: Config, s3: S3Client = createS3Client(config), tuning: RenderTuning = {}): RenderHandler {
  const reserveMs = tuning.reserveMs ?? FINISH_RESERVE_MS;
  const queue: WorkQueue | undefined = tuning.queue ?? (config.renderQueueUrl ? sqsWorkQueue(createSqsClient(config), config.renderQueueUrl) : undefined);
  const events: CompletionEvents | undefined = tuning.events ?? (config.eventBus ? eventBridgeEvents(createEventBridgeClient(config), config.eventBus) : undefined);

  /** One request: its result, or a thrown transient error (the caller decides how it is retried). */
  async function handle(request: WorkRequest, timeLeftMs: (() => number) | undefined): Promise<RecordResult> {
    const { bucket, key } = request;
    // A request started with no more than the reserve left could only end half done.
    if (timeLeftMs && timeLeftMs() <= reserveMs) throw new OutOfTimeError(`out of time before starting ${key}: it is retried`);
    try {
      const outcome = await renderObject(request, { s3, config, ...tuning, ...(queue ? { queue } : {}), ...(events ? { events } : {}), ...(timeLeftMs ? { timeLeftMs } : {}) });
      if (outcome.kind === 'ignored') logger.info('request ignored', { bucket, key, reason: outcome.reason });
      if (outcome.kind === 'up-to-date') logger.info('already rendered with these options; skipped', { bucket, key, reason: outcome.reason });
      return {
        bucket,
        key,
        outcome: outcome.kind,
        ...(outcome.kind === 'rendered' ? { status: outcome.manifest.status } : {}),
        ...(outcome.kind === 'ignored' || outcome.kind === 'superseded' ? { reason: outcome.reason } : {}),
        ...(outcome.kind === 'continued' ? { reason: `out of time: a continuation renders from page ${outcome.nextPage}` } : {}),
        ...(outcome.kind === 'range-stored' ? { reason: `pages ${outcome.range.from}-${outcome.range.to} stored: ${outcome.ranges.done} of ${outcome.ranges.count} ranges done` } : {}),
      };
    } catch (err) {
      if (!isPermanentS3Error(err)) throw err;
      // KeyTooLongError, InvalidArgument…: a retry gets the same answer.
      const code = s3ErrorCode(err) ?? 'S3_CLIENT_ERROR';
      logger.error('request failed permanently; not retried', { bucket, key, code, error: errorMessage(err) });
      countFailure(code, 'document');
      return { bucket, key, outcome: 'failed', reason: `${code}: ${errorMessage(err)}` };
    }
  }

  function transientResult(request: WorkRequest, err: unknown): RecordResult {
    const { bucket, key } = request;
    const code = err instanceof OutOfTimeError ? 'OUT_OF_TIME' : ((err as { code?: string; name?: string }).code ?? (err as Error).name ?? 'ERROR');
    logger.error('request failed; it will be retried', { bucket, key, code, error: errorMessage(err) });
    countFailure(code, 'transient');
    return { bucket, key, outcome: 'error', reason: errorMessage(err) };
  }

  const logRejected = (parsed: ParsedWork): void => {
    for (const reason of parsed.rejected) logger.error('input ignored: not retried', { reason });
  };

  return async (event, context) => {
    if (context?.awsRequestId) logger.appendKeys({ requestId: context.awsRequestId });
    const timeLeftMs = context?.getRemainingTimeInMillis ? () => context.getRemainingTimeInMillis!() : undefined;
    const results: RecordResult[] = [];
    try {
      if (isSqsEvent(event)) {
        // Powertools' batch processor turns a throwing record into a batch item failure; with
        // batch size 1 a failed message is simply left on the queue for its next receive.
        const recordHandler = async (record: SQSRecord): Promise<void> => {
          const parsed = parseQueueBody(record.body);
          logRejected(parsed);
          for (const request of parsed.requests) {
            try {
              results.push(await handle(request, timeLeftMs));
            } catch (err) {
              results.push(transientResult(request, err));
              throw err;
            }
          }
        };
        const response = await processPartialResponse(event, recordHandler, new BatchProcessor(EventType.SQS), {
          throwOnFullBatchFailure: false,
          processInParallel: false,
        });
        return { records: results, batchItemFailures: response.batchItemFailures };
      }
      const parsed = parseDirectEvent(event);
      logRejected(parsed);
      const transient: string[] = [];
      for (const request of parsed.requests) {
        try {
          results.push(await handle(request, timeLeftMs));
        } catch (err) {
          results.push(transientResult(request, err));
          transient.push(`${request.bucket}/${request.key}: ${errorMessage(err)}`);
        }
      }
      if (transient.length > 0) throw new Error(`${transient.length} of ${parsed.requests.length} records failed transiently: ${transient.join('; ')}`);
      return { records: results };
    } finally {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    }
  };
}
