import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { localClientConfig } from '../aws/endpoint.js';
import type { Config } from '../config/env.js';

/**
 * One client per container. With a local endpoint (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or
 * S3_ENDPOINT: lib/aws/endpoint.ts) it uses path-style addressing, and test credentials when
 * none are configured.
 */
export function createS3Client(config: Pick<Config, 'endpoints'>, overrides: S3ClientConfig = {}): S3Client {
  const local = localClientConfig('S3', config.endpoints);
  return new S3Client({ maxAttempts: 3, ...local, ...(local.endpoint ? { forcePathStyle: true } : {}), ...overrides });
}
