import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import type { Config } from '../config/env.js';

/**
 * One client per container. With S3_ENDPOINT (local use: moto serves SQS on the same port) it
 * talks to that server, signing with test credentials when none are configured, as the S3
 * client does.
 */
export function createSqsClient(config: Pick<Config, 's3Endpoint'>, overrides: SQSClientConfig = {}): SQSClient {
  const local: SQSClientConfig = config.s3Endpoint
    ? {
        endpoint: config.s3Endpoint,
        region: process.env['AWS_REGION'] ?? 'us-east-1',
        ...(process.env['AWS_ACCESS_KEY_ID'] ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
      }
    : {};
  return new SQSClient({ maxAttempts: 5, ...local, ...overrides });
}
