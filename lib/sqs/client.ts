import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { localClientConfig } from '../aws/endpoint.js';
import type { Config } from '../config/env.js';

/**
 * One client per container. With a local endpoint (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL or
 * S3_ENDPOINT: lib/aws/endpoint.ts; moto serves SQS on the same port as S3) it talks to that
 * server, signing with test credentials when none are configured, as the S3 client does.
 */
export function createSqsClient(config: Pick<Config, 'endpoints'>, overrides: SQSClientConfig = {}): SQSClient {
  return new SQSClient({ maxAttempts: 5, ...localClientConfig('SQS', config.endpoints), ...overrides });
}
