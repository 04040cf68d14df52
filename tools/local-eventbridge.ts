/**
 * An existing bucket's uploads through EventBridge, on a local server (moto 5.2 forwards S3
 * events to EventBridge rules when the bucket's EventBridge notifications are on, and its rules
 * deliver to SQS): what `SourceBucketMode=existing` deploys, for `npm run local --
 * --existing-bucket` and the tests.
 *
 * EventBridge is called over its JSON protocol (AWSEvents.PutRule, PutTargets) rather than
 * through @aws-sdk/client-eventbridge: two calls to a local server do not justify a dependency
 * here; switch to the SDK client (lib/aws/endpoint.ts localClientConfig('EventBridge', …)) once
 * the project depends on it for its own events.
 */
import { GetBucketNotificationConfigurationCommand, PutBucketNotificationConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { resolveIntrinsics, type ResolveContext, type Template } from './template.js';

/** The logical ID of the template's rule (SourceBucketMode existing). */
export const SOURCE_RULE = 'SourceBucketEventsRule';

/**
 * Turns the bucket's EventBridge notifications on without touching its other notification
 * settings: read the configuration, add EventBridgeConfiguration, put it back (a bare put
 * replaces every queue, topic and function notification the bucket had). docs/deploy.md gives
 * the same three steps with the AWS CLI.
 */
export async function enableEventBridge(s3: S3Client, bucket: string): Promise<void> {
  const { $metadata: _metadata, ...current } = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
  await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: { ...current, EventBridgeConfiguration: {} } }));
}

/** The template's rule pattern for these parameters (ExistingBucketName, InputPrefix). */
export function sourceRulePattern(template: Template, ctx: ResolveContext): Record<string, unknown> {
  const rule = template.Resources[SOURCE_RULE];
  if (!rule?.Properties?.['EventPattern']) throw new Error(`template.yaml has no ${SOURCE_RULE} with an EventPattern`);
  return resolveIntrinsics(rule.Properties['EventPattern'], template, ctx) as Record<string, unknown>;
}

async function eventsCall(endpoint: string, action: string, body: unknown, region: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${endpoint.replace(/\/$/, '')}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `AWSEvents.${action}`,
      // moto routes a request on its shared port by the service of the credential scope.
      authorization: `AWS4-HMAC-SHA256 Credential=test/20260101/${region}/events/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`EventBridge ${action} at ${endpoint}: HTTP ${response.status} ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/**
 * The template's rule on the local server's default bus, targeting the render queue. Returns
 * the rule's ARN (what the queue policy allows in existing mode).
 */
export async function putSourceRule(endpoint: string, pattern: Record<string, unknown>, queueArn: string, region = 'us-east-1', name = SOURCE_RULE): Promise<string> {
  const { RuleArn } = await eventsCall(endpoint, 'PutRule', { Name: name, EventPattern: JSON.stringify(pattern), State: 'ENABLED' }, region);
  const targets = await eventsCall(endpoint, 'PutTargets', { Rule: name, Targets: [{ Id: 'RenderQueue', Arn: queueArn }] }, region);
  if (targets['FailedEntryCount']) throw new Error(`EventBridge PutTargets: ${JSON.stringify(targets['FailedEntries'])}`);
  return String(RuleArn);
}

/** Removes the rule again (moto keeps rules across its S3 reset). */
export async function deleteSourceRule(endpoint: string, region = 'us-east-1', name = SOURCE_RULE): Promise<void> {
  await eventsCall(endpoint, 'RemoveTargets', { Rule: name, Ids: ['RenderQueue'] }, region).catch(() => undefined);
  await eventsCall(endpoint, 'DeleteRule', { Name: name }, region).catch(() => undefined);
}
