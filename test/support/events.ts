/**
 * Completion events as a consumer sees them: a rule on the test server's default bus (moto
 * serves EventBridge beside S3 and SQS, and delivers rule targets to SQS) sends every
 * `s3-pdf-render` event to a queue the test reads.
 */
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { EVENT_SOURCE, type CompletionDetail } from '../../lib/events/completion.js';
import { createEventBridgeClient } from '../../lib/events/eventbridge.js';
import { s3Endpoint } from './s3.js';
import { createQueue, drain } from './sqs.js';

export interface ReceivedEvent {
  source: string;
  'detail-type': string;
  time: string;
  detail: CompletionDetail;
}

export function testEventBridgeClient(endpoint = s3Endpoint()): EventBridgeClient {
  return createEventBridgeClient({ endpoints: { EventBridge: endpoint } });
}

/** A queue that a rule on the default bus fills with this function's events; take() empties it. */
export async function subscribeToRenders(sqs: SQSClient, name = 'render-events'): Promise<{ take(): Promise<ReceivedEvent[]> }> {
  const eventBridge = testEventBridgeClient();
  const queueUrl = await createQueue(sqs, name);
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  // The sample rule of docs/contract.md.
  await eventBridge.send(new PutRuleCommand({ Name: `${name}-rule`, EventBusName: 'default', EventPattern: JSON.stringify({ source: [EVENT_SOURCE] }) }));
  await eventBridge.send(new PutTargetsCommand({ Rule: `${name}-rule`, EventBusName: 'default', Targets: [{ Id: 'queue', Arn: Attributes!['QueueArn']! }] }));
  return { take: async () => (await drain(sqs, queueUrl)).map((m) => JSON.parse(m.Body!) as ReceivedEvent) };
}
