import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { Config } from '../config/env.js';

/**
 * One client per container. With S3_ENDPOINT (moto, MinIO, LocalStack) it uses path-style
 * addressing, and test credentials when none are configured.
 */
export function createS3Client(config: Pick<Config, 's3Endpoint'>, overrides: S3ClientConfig = {}): S3Client {
  const local: S3ClientConfig = config.s3Endpoint
    ? {
        endpoint: config.s3Endpoint,
        forcePathStyle: true,
        region: process.env['AWS_REGION'] ?? 'us-east-1',
        ...(process.env['AWS_ACCESS_KEY_ID'] ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
      }
    : {};
  return new S3Client({ maxAttempts: 3, ...local, ...overrides });
}
