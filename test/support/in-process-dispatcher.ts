/**
 * A dispatcher for tests: hands each request to the render handler in this process, as the
 * body of an SQS message exactly as the render queue would deliver it, one render at a time,
 * so a reprocess run can be checked end to end without a queue consumer.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import type { Config } from '../../lib/config/env.js';
import { createRenderHandler, type RenderHandler } from '../../lib/render-function/handler.js';
import type { Dispatcher } from '../../lib/reprocess/dispatch.js';
import { workMessage, type WorkRequest } from '../../lib/work/messages.js';
import { sqsEventOf as sqsEventOfMessage } from '../../tools/local-queue.js';

/** An SQS batch of these message bodies, as the event source mapping delivers them. */
export function sqsEventOf(bodies: string[]): SQSEvent {
  const queueArn = 'arn:aws:sqs:us-east-1:123456789012:RenderQueue';
  return { Records: bodies.flatMap((body, i) => sqsEventOfMessage({ MessageId: `local-${i}`, ReceiptHandle: `local-${i}`, Body: body }, queueArn).Records) };
}

export class InProcessDispatcher implements Dispatcher {
  readonly kind = 'in-process';
  readonly concurrency = 1;
  private readonly handler: RenderHandler;

  constructor(config: Config, s3: S3Client) {
    this.handler = createRenderHandler(config, s3);
  }

  async dispatch(request: WorkRequest): Promise<void> {
    const result = await this.handler(sqsEventOf([JSON.stringify(workMessage(request))]));
    if (result.batchItemFailures?.length) throw new Error(result.records.map((r) => `${r.key}: ${r.reason ?? 'render failed'}`).join('; '));
  }
}
