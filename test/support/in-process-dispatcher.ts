/**
 * A dispatcher for tests: runs the render handler in this process, one render at a time, so a
 * reprocess run can be checked end to end without a Lambda endpoint.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../lib/config/env.js';
import { createRenderHandler, type RenderEvent, type RenderHandler } from '../../lib/render-function/handler.js';
import type { Dispatcher } from '../../lib/reprocess/dispatch.js';

export class InProcessDispatcher implements Dispatcher {
  readonly kind = 'in-process';
  readonly concurrency = 1;
  private readonly handler: RenderHandler;

  constructor(config: Config, s3: S3Client) {
    this.handler = createRenderHandler(config, s3);
  }

  async dispatch(event: RenderEvent): Promise<void> {
    const result = await this.handler(event);
    const failed = result.records.filter((r) => r.outcome === 'error');
    if (failed.length > 0) throw new Error(failed.map((r) => `${r.key}: ${r.reason ?? 'render failed'}`).join('; '));
  }
}
