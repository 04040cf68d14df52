/**
 * The reprocess function's handler: validates the input, picks the bucket (SOURCE_BUCKET; the
 * event's "bucket" only where SOURCE_BUCKET is unset, as in local runs, or names the same one), runs one reprocess pass, then logs, publishes and returns the
 * summary. Dispatch failures are counted, not thrown: a run that did most of its work succeeds.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import type { Config } from '../config/env.js';
import { logger } from '../observability.js';
import { createS3Client } from '../s3/client.js';
import { s3CheckpointStore } from './checkpoint.js';
import { createDispatcher, type Dispatcher } from './dispatch.js';
import { InvalidReprocessInputError, parseReprocessInput } from './input.js';
import { publishSummaryMetrics, reprocess, type ReprocessDeps, type ReprocessSummary } from './run.js';

export type ReprocessHandler = (event: unknown, context?: Partial<Pick<Context, 'getRemainingTimeInMillis' | 'awsRequestId'>>) => Promise<ReprocessSummary>;

export interface ReprocessHandlerOptions extends Partial<Pick<ReprocessDeps, 'pageSize' | 'concurrency' | 'reserveMs' | 'recentMs' | 'onClassified'>> {
  s3?: S3Client;
  /** Default: messages on RENDER_QUEUE_URL. */
  dispatcher?: Dispatcher;
}

export function createReprocessHandler(config: Config, options: ReprocessHandlerOptions = {}): ReprocessHandler {
  const { s3 = createS3Client(config), dispatcher = createDispatcher(config), ...tuning } = options;
  return async (event, context) => {
    if (context?.awsRequestId) logger.appendKeys({ requestId: context.awsRequestId });
    let parsed;
    try {
      parsed = parseReprocessInput(event);
    } catch (err) {
      logger.error('invalid reprocess input', { error: (err as Error).message });
      throw err;
    }
    const { input, warnings } = parsed;
    for (const warning of warnings) logger.warn('reprocess input', { warning });
    if (input.prefix.startsWith(config.inputPrefix)) {
      logger.warn('"prefix" is relative to INPUT_PREFIX: did you mean it without it?', { prefix: input.prefix, inputPrefix: config.inputPrefix });
    }
    if (input.bucket && config.sourceBucket && input.bucket !== config.sourceBucket) {
      const error = new InvalidReprocessInputError(`"bucket" ${JSON.stringify(input.bucket)} is not SOURCE_BUCKET ${JSON.stringify(config.sourceBucket)}: this function scans only its own bucket`);
      logger.error('invalid reprocess input', { error: error.message });
      throw error;
    }
    const listed = config.inputPrefix + input.prefix;
    if (input.startAfter !== undefined && !input.startAfter.startsWith(listed)) {
      const error = new InvalidReprocessInputError(`"startAfter" ${JSON.stringify(input.startAfter)} is not under the listed prefix ${JSON.stringify(listed)} (INPUT_PREFIX + "prefix"): pass a summary's "nextStartAfter" with the same "prefix"`);
      logger.error('invalid reprocess input', { error: error.message });
      throw error;
    }
    const bucket = input.bucket ?? config.sourceBucket;
    if (!bucket) {
      const error = new InvalidReprocessInputError('no bucket to reprocess: set SOURCE_BUCKET, or pass "bucket" in the input');
      logger.error('invalid reprocess input', { error: error.message });
      throw error;
    }
    const summary = await reprocess(bucket, input, {
      s3,
      config,
      dispatcher,
      // Read and moved by the schedule's real runs only (run.ts, usesScheduleCheckpoint).
      checkpoint: s3CheckpointStore(s3, config, bucket, listed),
      ...tuning,
      ...(context?.getRemainingTimeInMillis ? { timeLeftMs: () => context.getRemainingTimeInMillis!() } : {}),
    });
    logger.info('reprocess summary', { summary });
    publishSummaryMetrics(summary);
    return summary;
  };
}
