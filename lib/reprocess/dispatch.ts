/**
 * How a re-render is requested: a render message on the render queue (RENDER_QUEUE_URL), the
 * queue S3's notifications arrive on, so the render function's concurrency cap holds for
 * reprocessing too. Tests inject their own dispatcher. This file must not import the render
 * function: the reprocess bundle would then carry MuPDF (test/template.test.ts checks it).
 */
import type { Config } from '../config/env.js';
import { logger } from '../observability.js';
import { createSqsClient } from '../sqs/client.js';
import { sqsWorkQueue, type WorkQueue } from '../sqs/work-queue.js';
import type { WorkRequest } from '../work/messages.js';

export interface Dispatcher {
  /** For logs and the summary. */
  readonly kind: string;
  /** Dispatches in flight at once, at most. */
  readonly concurrency: number;
  /** Resolves once the request is accepted (queued) or done (in-process, in tests); throws when it is not. */
  dispatch(request: WorkRequest): Promise<void>;
}

/** One message per render on the render queue. */
export class QueueDispatcher implements Dispatcher {
  readonly kind = 'queue';
  constructor(
    private readonly queue: WorkQueue,
    readonly concurrency = 8,
  ) {}

  async dispatch(request: WorkRequest): Promise<void> {
    await this.queue.send([request]);
  }
}

/** Without RENDER_QUEUE_URL: a dry run works, a real one reports each dispatch as failed. */
class UnconfiguredDispatcher implements Dispatcher {
  readonly kind = 'none';
  readonly concurrency = 1;
  async dispatch(): Promise<void> {
    throw new Error('RENDER_QUEUE_URL is not set: there is no render queue to send to');
  }
}

export function createDispatcher(config: Config): Dispatcher {
  if (config.renderQueueUrl) return new QueueDispatcher(sqsWorkQueue(createSqsClient(config), config.renderQueueUrl));
  logger.warn('RENDER_QUEUE_URL is unset: nothing can be dispatched (dry runs still classify)');
  return new UnconfiguredDispatcher();
}
