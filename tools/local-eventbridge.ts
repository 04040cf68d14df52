/**
 * An existing bucket's uploads through EventBridge, on a local server (moto 5.2 forwards S3
 * events to EventBridge rules when the bucket's EventBridge notifications are on, and its rules
 * deliver to SQS): what `SourceBucketMode=existing` deploys, for `npm run local --
 * --existing-bucket` and the tests.
 */
import { DeleteRuleCommand, PutRuleCommand, PutTargetsCommand, RemoveTargetsCommand } from '@aws-sdk/client-eventbridge';
import { GetBucketNotificationConfigurationCommand, PutBucketNotificationConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { createEventBridgeClient } from '../lib/events/eventbridge.js';
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

/**
 * The template's rule on the local server's default bus, targeting the render queue. Returns
 * the rule's ARN (what the queue policy allows in existing mode).
 */
export async function putSourceRule(endpoint: string, pattern: Record<string, unknown>, queueArn: string, region = 'us-east-1', name = SOURCE_RULE): Promise<string> {
  const events = localEvents(endpoint, region);
  const { RuleArn } = await events.send(new PutRuleCommand({ Name: name, EventPattern: JSON.stringify(pattern), State: 'ENABLED' }));
  const targets = await events.send(new PutTargetsCommand({ Rule: name, Targets: [{ Id: 'RenderQueue', Arn: queueArn }] }));
  if (targets.FailedEntryCount) throw new Error(`EventBridge PutTargets: ${JSON.stringify(targets.FailedEntries)}`);
  return String(RuleArn);
}

/** Removes the rule again (moto keeps rules across its S3 reset). */
export async function deleteSourceRule(endpoint: string, region = 'us-east-1', name = SOURCE_RULE): Promise<void> {
  const events = localEvents(endpoint, region);
  await events.send(new RemoveTargetsCommand({ Rule: name, Ids: ['RenderQueue'] })).catch(() => undefined);
  await events.send(new DeleteRuleCommand({ Name: name })).catch(() => undefined);
}

/** The project's EventBridge client on the local server, with retries (these are set-up calls, not completion events). */
function localEvents(endpoint: string, region: string) {
  return createEventBridgeClient({ endpoints: { EventBridge: endpoint } }, { region, maxAttempts: 3 });
}
