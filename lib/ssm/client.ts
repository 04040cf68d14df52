import { SSMClient, type SSMClientConfig } from '@aws-sdk/client-ssm';
import type { Config } from '../config/env.js';

/**
 * One client per container. With S3_ENDPOINT (local use: moto serves SSM on the same port) it
 * talks to that server, signing with test credentials when none are configured, as the S3
 * and SQS clients do.
 */
export function createSsmClient(config: Pick<Config, 's3Endpoint'>, overrides: SSMClientConfig = {}): SSMClient {
  const local: SSMClientConfig = config.s3Endpoint
    ? {
        endpoint: config.s3Endpoint,
        region: process.env['AWS_REGION'] ?? 'us-east-1',
        ...(process.env['AWS_ACCESS_KEY_ID'] ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
      }
    : {};
  return new SSMClient({ maxAttempts: 3, ...local, ...overrides });
}
