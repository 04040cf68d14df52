/**
 * The reprocess function's one entry: an S3 Batch Operations invocation (schema 2.0, one object
 * per task: lib/batch/task.ts) or a scheduled/manual run over a prefix (handler.ts). One
 * function for both: the same settings, the same role (list and read, send to the render queue,
 * and write only the schedule's checkpoint), the same freshness rule, and no MuPDF in either
 * (test/template.test.ts). Its own function would have needed a second role with the same
 * permissions and a second artifact of the same code.
 */
import type { Context } from 'aws-lambda';
import type { Config } from '../config/env.js';
import { isBatchEvent, type BatchResponse } from '../batch/event.js';
import { createBatchTaskHandler } from '../batch/task.js';
import { createS3Client } from '../s3/client.js';
import { createDispatcher } from './dispatch.js';
import { createReprocessHandler, type ReprocessHandlerOptions } from './handler.js';
import type { ReprocessSummary } from './run.js';

export type ReprocessFunction = (
  event: unknown,
  context?: Partial<Pick<Context, 'getRemainingTimeInMillis' | 'awsRequestId'>>,
) => Promise<ReprocessSummary | BatchResponse>;

export function createReprocessFunction(config: Config, options: ReprocessHandlerOptions = {}): ReprocessFunction {
  const s3 = options.s3 ?? createS3Client(config);
  const dispatcher = options.dispatcher ?? createDispatcher(config);
  const scheduled = createReprocessHandler(config, { ...options, s3, dispatcher });
  const batch = createBatchTaskHandler({ s3, config, dispatcher, ...(options.recentMs !== undefined ? { recentMs: options.recentMs } : {}) });
  return (event, context) => (isBatchEvent(event) ? batch(event) : scheduled(event, context));
}
