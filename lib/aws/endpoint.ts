/**
 * Where each AWS client sends its requests: AWS itself, or a local server (moto, MinIO,
 * LocalStack) named the way every AWS SDK and the AWS CLI name it. One home for this rule: the
 * S3 and SQS clients call it, and so does any client added later (EventBridge, CloudWatch).
 *
 * The AWS SDK for JavaScript v3 (@smithy/core, endpoints: getEndpointUrlConfig) reads
 * `AWS_ENDPOINT_URL_<SERVICE>` first, then `AWS_ENDPOINT_URL`, and ignores both when
 * `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true; <SERVICE> is the client's serviceId in
 * upper case, spaces as "_" (S3, SQS, EVENTBRIDGE, CLOUDWATCH). This module resolves the same
 * variables itself, rather than leaving it to the SDK, because a local server needs more than
 * the URL: S3 path-style addressing, a region, and credentials to sign with when none are set.
 * `S3_ENDPOINT`, this project's older variable, stays as an alias of `AWS_ENDPOINT_URL` for
 * every service (moto serves them all on one port), below the SDK's own variables.
 */
import { InvalidSettingError } from '../config/settings.js';

/** The SDK serviceIds this project talks to. */
export const AWS_SERVICES = ['S3', 'SQS', 'EventBridge', 'CloudWatch', 'SSM'] as const;
export type AwsService = (typeof AWS_SERVICES)[number];

/** A local endpoint per service; a service absent talks to AWS. */
export type AwsEndpoints = Partial<Record<AwsService, string>>;

/** The project's alias for AWS_ENDPOINT_URL (docs/contract.md). */
export const ENDPOINT_ALIAS = 'S3_ENDPOINT';

type Env = Record<string, string | undefined>;

/** AWS_ENDPOINT_URL_<SERVICE>, as the SDK derives it from the serviceId. */
export function endpointVariable(service: AwsService): string {
  return ['AWS_ENDPOINT_URL', ...service.split(' ').map((w) => w.toUpperCase())].join('_');
}

function checked(name: string, value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (!/^https?:\/\/[^/]+/.test(value)) throw new InvalidSettingError(`${name}=${JSON.stringify(value)} is invalid: expected a URL such as http://127.0.0.1:5000`);
  return value;
}

/**
 * Every service's endpoint from the environment, checked (a malformed URL stops start-up with
 * the variable's name): AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL (both skipped when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is "true", as the SDK does), then S3_ENDPOINT.
 */
export function readEndpoints(env: Env = process.env): AwsEndpoints {
  const ignore = (env['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS'] ?? '').toLowerCase() === 'true';
  const shared = ignore ? undefined : checked('AWS_ENDPOINT_URL', env['AWS_ENDPOINT_URL']);
  const alias = checked(ENDPOINT_ALIAS, env[ENDPOINT_ALIAS]);
  const endpoints: AwsEndpoints = {};
  for (const service of AWS_SERVICES) {
    const own = ignore ? undefined : checked(endpointVariable(service), env[endpointVariable(service)]);
    const endpoint = own ?? shared ?? alias;
    if (endpoint) endpoints[service] = endpoint;
  }
  return endpoints;
}

/** One local server for every service (moto): what S3_ENDPOINT or AWS_ENDPOINT_URL alone give. */
export function everyService(endpoint: string): AwsEndpoints {
  return Object.fromEntries(AWS_SERVICES.map((service) => [service, endpoint])) as AwsEndpoints;
}

/** The client settings for `service`: nothing in AWS; for a local endpoint, the URL, a region, and test credentials when none are configured. */
export function localClientConfig(service: AwsService, endpoints: AwsEndpoints | undefined): { endpoint?: string; region?: string; credentials?: { accessKeyId: string; secretAccessKey: string } } {
  const endpoint = endpoints?.[service];
  if (!endpoint) return {};
  return {
    endpoint,
    region: process.env['AWS_REGION'] ?? 'us-east-1',
    ...(process.env['AWS_ACCESS_KEY_ID'] ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
  };
}
