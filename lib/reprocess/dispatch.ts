/**
 * How a re-render is requested: always as an S3-event-shaped payload, so the render function
 * has one code path: an asynchronous Lambda invoke of RENDER_FUNCTION_NAME (in AWS, or the
 * local Lambda endpoint of `npm run invoke`). Tests inject their own dispatcher. This file must
 * not import the render function: the reprocess bundle would then carry MuPDF.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { RenderEvent } from '../render-function/handler.js';
import type { Config } from '../config/env.js';
import { logger } from '../observability.js';

export interface DispatchTarget {
  bucket: string;
  key: string;
  etag: string;
  size: number;
}

export interface Dispatcher {
  /** For logs and the summary. */
  readonly kind: string;
  /** Dispatches in flight at once, at most. */
  readonly concurrency: number;
  /** Resolves once the render is accepted (Lambda) or done (in-process); throws when it is not. */
  dispatch(event: RenderEvent, target: DispatchTarget): Promise<void>;
}

/** Asynchronous invocation (InvocationType Event): Lambda queues it, retries it, and sends failures to the on-failure destination. */
export class LambdaDispatcher implements Dispatcher {
  readonly kind = 'lambda';
  constructor(
    readonly functionName: string,
    private readonly client: Pick<LambdaClient, 'send'> = new LambdaClient({ maxAttempts: 5 }),
    readonly concurrency = 8,
  ) {}

  async dispatch(event: RenderEvent): Promise<void> {
    const response = await this.client.send(
      new InvokeCommand({ FunctionName: this.functionName, InvocationType: 'Event', Payload: new TextEncoder().encode(JSON.stringify(event)) }),
    );
    if (response.StatusCode !== 202) throw new Error(`Lambda did not queue the invocation of ${this.functionName}: HTTP ${response.StatusCode ?? 'unknown'}`);
  }
}

/** Without RENDER_FUNCTION_NAME: a dry run works, a real one reports each dispatch as failed. */
class UnconfiguredDispatcher implements Dispatcher {
  readonly kind = 'none';
  readonly concurrency = 1;
  async dispatch(): Promise<void> {
    throw new Error('RENDER_FUNCTION_NAME is not set: there is no render function to dispatch to');
  }
}

/** Lambda when RENDER_FUNCTION_NAME is set (npm run invoke points it at a local Lambda endpoint). */
export function createDispatcher(config: Config): Dispatcher {
  if (config.renderFunctionName) return new LambdaDispatcher(config.renderFunctionName);
  logger.warn('RENDER_FUNCTION_NAME is unset: nothing can be dispatched (dry runs still classify)');
  return new UnconfiguredDispatcher();
}
