/**
 * The render queue, as the functions send to it: continuations, fan-out ranges and reprocess
 * requests, ten to a SendMessageBatch call. A message that SQS did not take is an error (the
 * caller's work is then retried), never silently lost.
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { workMessage, type WorkRequest } from '../work/messages.js';

export interface WorkQueue {
  send(requests: readonly WorkRequest[]): Promise<void>;
}

/** SQS's largest batch. */
const BATCH = 10;

export function sqsWorkQueue(sqs: Pick<SQSClient, 'send'>, queueUrl: string): WorkQueue {
  return {
    async send(requests) {
      for (let at = 0; at < requests.length; at += BATCH) {
        const batch = requests.slice(at, at + BATCH);
        const result = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: batch.map((request, i) => ({ Id: String(i), MessageBody: JSON.stringify(workMessage(request)) })),
          }),
        );
        if (result.Failed?.length) {
          throw new Error(`the render queue refused ${result.Failed.length} message(s): ${result.Failed.map((f) => `${f.Code}: ${f.Message ?? ''}`).join('; ')}`);
        }
      }
    },
  };
}
