import { SSMClient, type SSMClientConfig } from '@aws-sdk/client-ssm';
import { localClientConfig } from '../aws/endpoint.js';
import type { Config } from '../config/env.js';

/**
 * One client per container. With a local endpoint (AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL or
 * S3_ENDPOINT: lib/aws/endpoint.ts; moto serves SSM on the same port as S3) it talks to that
 * server, signing with test credentials when none are configured, as the S3 client does.
 */
export function createSsmClient(config: Pick<Config, 'endpoints'>, overrides: SSMClientConfig = {}): SSMClient {
  return new SSMClient({ maxAttempts: 3, ...localClientConfig('SSM', config.endpoints), ...overrides });
}
