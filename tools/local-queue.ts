/**
 * The render queue on a local server (moto serves SQS beside S3), and a poller that drives the
 * render function the way Lambda's SQS event source mapping does: it receives messages, invokes
 * the function with a batch of one, deletes the message when the invocation succeeded and did
 * not report it in batchItemFailures, and otherwise leaves it to come back (SQS counts the
 * receives and moves it to the dead-letter queue after maxReceiveCount). At most `concurrency`
 * invocations run at once, like MaximumConcurrency. Used by `npm run local`, `npm run invoke`
 * and the tests: the one local path for queued work.
 */
import { PutBucketNotificationConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';

export interface LocalQueues {
  queueUrl: string;
  queueArn: string;
  deadLetterUrl: string;
}

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  return Attributes!['QueueArn']!;
}

/** The render queue and its dead-letter queue, as template.yaml declares them (a short visibility timeout: local renders are short). */
export async function createRenderQueues(sqs: SQSClient, options: { name?: string; maxReceiveCount?: number; visibilityTimeoutS?: number } = {}): Promise<LocalQueues> {
  const name = options.name ?? 'RenderQueue';
  const dead = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dead-letters` }));
  const deadLetterArn = await queueArn(sqs, dead.QueueUrl!);
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutS ?? 60),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetterArn, maxReceiveCount: options.maxReceiveCount ?? 3 }),
      },
    }),
  );
  return { queueUrl: queue.QueueUrl!, queueArn: await queueArn(sqs, queue.QueueUrl!), deadLetterUrl: dead.QueueUrl! };
}

/** Uploads under `inputPrefix` ending in .pdf or .PDF notify the queue, as the template wires the bucket. */
export async function notifyQueueOnUpload(s3: S3Client, bucket: string, inputPrefix: string, queueArnValue: string): Promise<void> {
  const rule = (suffix: string) => ({
    QueueArn: queueArnValue,
    Events: ['s3:ObjectCreated:*' as const],
    Filter: { Key: { FilterRules: [{ Name: 'prefix' as const, Value: inputPrefix }, { Name: 'suffix' as const, Value: suffix }] } },
  });
  await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: { QueueConfigurations: [rule('.pdf'), rule('.PDF')] } }));
}

/** An SQS event of one message, as the event source mapping delivers it. */
export function sqsEventOf(message: Message, queueArnValue: string): SQSEvent {
  return {
    Records: [
      {
        messageId: message.MessageId!,
        receiptHandle: message.ReceiptHandle!,
        body: message.Body ?? '',
        attributes: {
          ApproximateReceiveCount: message.Attributes?.['ApproximateReceiveCount'] ?? '1',
          SentTimestamp: message.Attributes?.['SentTimestamp'] ?? String(Date.now()),
          SenderId: message.Attributes?.['SenderId'] ?? 'local',
          ApproximateFirstReceiveTimestamp: message.Attributes?.['ApproximateFirstReceiveTimestamp'] ?? String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: message.MD5OfBody ?? '',
        eventSource: 'aws:sqs',
        eventSourceARN: queueArnValue,
        awsRegion: queueArnValue.split(':')[3] ?? 'us-east-1',
      },
    ],
  };
}

/** What the function answered: its partial batch response (or nothing), or a thrown error. */
export type Invoke = (event: SQSEvent) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] } | undefined | void>;

export interface PollOptions {
  sqs: SQSClient;
  queues: LocalQueues;
  invoke: Invoke;
  /** Invocations at once, at most (the event source mapping's MaximumConcurrency). */
  concurrency: number;
  /** Stop once the queue has been empty, with nothing in flight, for this long. */
  idleMs?: number;
  /** Called for each invocation's end, for progress output. */
  onInvoked?: (message: Message, ok: boolean) => void;
  /**
   * A failed message: 'at-once' makes it visible again at once (locally nobody wants to wait);
   * 'visibility-timeout' leaves it invisible until the queue's visibility timeout, as Lambda does.
   */
  retry?: 'at-once' | 'visibility-timeout';
  /** When the queue looks empty with nothing in flight: stop only if this says so (messages still invisible or delayed, more work to come). */
  drained?: () => Promise<boolean>;
}

export interface PollStats {
  invocations: number;
  failures: number;
  /** The most invocations that ran at once. */
  maxInFlight: number;
}

/** Runs the queue until it stays empty. */
export async function pollQueue(options: PollOptions): Promise<PollStats> {
  const { sqs, queues, invoke, concurrency } = options;
  const stats: PollStats = { invocations: 0, failures: 0, maxInFlight: 0 };
  const inFlight = new Set<Promise<void>>();
  let idleSince: number | undefined;

  const run = async (message: Message): Promise<void> => {
    let ok = false;
    try {
      const response = await invoke(sqsEventOf(message, queues.queueArn));
      ok = !(response && response.batchItemFailures?.some((f) => f.itemIdentifier === message.MessageId));
    } catch {
      ok = false;
    }
    stats.invocations++;
    if (ok) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queues.queueUrl, ReceiptHandle: message.ReceiptHandle! }));
    } else {
      stats.failures++;
      // Back on the queue at once (Lambda waits for the visibility timeout; locally nobody wants to).
      if (options.retry !== 'visibility-timeout') await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queues.queueUrl, ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: 0 }));
    }
    options.onInvoked?.(message, ok);
  };

  for (;;) {
    const room = concurrency - inFlight.size;
    const { Messages } =
      room > 0
        ? await sqs.send(new ReceiveMessageCommand({ QueueUrl: queues.queueUrl, MaxNumberOfMessages: Math.min(10, room), WaitTimeSeconds: 0, AttributeNames: ['All'] }))
        : { Messages: [] };
    for (const message of Messages ?? []) {
      const task: Promise<void> = run(message).finally(() => inFlight.delete(task));
      inFlight.add(task);
      stats.maxInFlight = Math.max(stats.maxInFlight, inFlight.size);
    }
    if (Messages?.length) {
      idleSince = undefined;
      continue;
    }
    if (inFlight.size > 0) {
      await Promise.race(inFlight);
      continue;
    }
    idleSince ??= Date.now();
    if (Date.now() - idleSince >= (options.idleMs ?? 300) && (!options.drained || (await options.drained()))) return stats;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
