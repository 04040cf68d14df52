import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import type { Config } from '../config/env.js';

/**
 * One client per container. The SDK sends each call to the host of its QueueUrl, so a local
 * queue (moto on loopback) needs no endpoint setting; with S3_ENDPOINT set (local use) and no
 * credentials configured, it signs with test credentials as the S3 client does.
 */
export function createSqsClient(config: Pick<Config, 's3Endpoint'>, overrides: SQSClientConfig = {}): SQSClient {
  const local: SQSClientConfig = config.s3Endpoint
    ? {
        region: process.env['AWS_REGION'] ?? 'us-east-1',
        ...(process.env['AWS_ACCESS_KEY_ID'] ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
      }
    : {};
  return new SQSClient({ maxAttempts: 5, ...local, ...overrides });
}
