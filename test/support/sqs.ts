/** SQS on the test server (moto serves SQS beside S3): queues for the render queue's tests. */
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { everyService } from '../../lib/aws/endpoint.js';
import { createSqsClient } from '../../lib/sqs/client.js';
import { s3Endpoint } from './s3.js';

export function testSqsClient(): SQSClient {
  return createSqsClient({ endpoints: everyService(s3Endpoint()) });
}

export async function createQueue(sqs: SQSClient, name: string, attributes: Record<string, string> = {}): Promise<string> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  return QueueUrl!;
}

/** Takes every message now on the queue (deleting them), in as many receives as it needs. */
export async function drain(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 30 }));
    if (!Messages?.length) return all;
    for (const m of Messages) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
    all.push(...Messages);
  }
}
