/**
 * How a re-render is requested: always as an S3-event-shaped payload, so the render function
 * has one code path. In AWS an asynchronous Lambda invoke of RENDER_FUNCTION_NAME; locally and
 * in tests, the render handler called in-process.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { RenderEvent } from '../render-handler.js';
import type { Config } from '../config.js';
import { logger } from '../observability.js';
import type { RenderHandler } from '../render-handler.js';

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

/** The render handler in this process: each dispatch is a whole render, one at a time. */
export class InProcessDispatcher implements Dispatcher {
  readonly kind = 'in-process';
  readonly concurrency = 1;
  private handler: Promise<RenderHandler> | undefined;

  constructor(
    private readonly config: Config,
    private readonly s3: S3Client,
  ) {}

  async dispatch(event: RenderEvent): Promise<void> {
    // Loaded on first use, so the Lambda path never loads the renderer.
    this.handler ??= import('../render-handler.js').then((m) => m.createRenderHandler(this.config, this.s3));
    const result = await (await this.handler)(event);
    const failed = result.records.filter((r) => r.outcome === 'error');
    if (failed.length > 0) throw new Error(failed.map((r) => `${r.key}: ${r.reason ?? 'render failed'}`).join('; '));
  }
}

/** Lambda when RENDER_FUNCTION_NAME is set, in-process otherwise. */
export function createDispatcher(config: Config, s3: S3Client): Dispatcher {
  if (config.renderFunctionName) return new LambdaDispatcher(config.renderFunctionName);
  logger.info('RENDER_FUNCTION_NAME is unset: re-renders run in-process, one at a time (local use and tests)');
  return new InProcessDispatcher(config, s3);
}
