/**
 * Records every AWS API call a client makes as the IAM authorization requests AWS would
 * evaluate for it: action as IAM names it, resource ARN, and the condition keys IAM would see
 * (s3:prefix …). SDK middleware on the clients the functions are given (handler factories take
 * them), so nothing is mocked: the calls still go to the local server.
 *
 * Owns the mapping from API operation to IAM action (S3's and SQS's "Actions, resources,
 * and condition keys" pages). An operation it does not know is recorded as unmapped, so a new
 * call fails the IAM test until it is mapped here, never slips through.
 */
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { S3Client } from '@aws-sdk/client-s3';

export interface IamRequest {
  /** The function whose role makes the call (its logical ID in template.yaml). */
  principal: string;
  /** The API operation, e.g. HeadObject. */
  operation: string;
  /** The IAM action, e.g. s3:GetObject; undefined when the operation is not mapped. */
  action?: string;
  resource: string;
  context: Record<string, string>;
  /** Why this check happens, when it is not the call's own permission. */
  note?: string;
}

const ACCOUNT = '123456789012';

type Input = Record<string, unknown>;
const str = (value: unknown): string => (typeof value === 'string' ? value : '');

/** The IAM requests of one S3 operation. */
export function s3IamRequests(operation: string, input: Input): Omit<IamRequest, 'principal'>[] {
  const bucket = str(input['Bucket']);
  const object = (key: string) => `arn:aws:s3:::${bucket}/${key}`;
  const key = str(input['Key']);
  const versioned = (plain: string, withVersion: string) => (input['VersionId'] ? withVersion : plain);
  // S3 answers a GET or HEAD of a missing key with 404 only when the caller may s3:ListBucket the
  // bucket with the key as s3:prefix; otherwise 403 (ceph/ceph#68577 models it the same way). The
  // functions rely on the 404 (a missing manifest, a deleted source): it is a permission they need.
  const missingIs404 = { operation, action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}`, context: { 's3:prefix': key }, note: 'a missing key answers 404, not 403' };
  switch (operation) {
    case 'HeadObject':
    case 'GetObject':
      return [{ operation, action: versioned('s3:GetObject', 's3:GetObjectVersion'), resource: object(key), context: {} }, missingIs404];
    case 'PutObject':
      // Tags given with the object (x-amz-tagging) are authorised as s3:PutObjectTagging too.
      return [{ operation, action: 's3:PutObject', resource: object(key), context: {} }, ...(input['Tagging'] ? [{ operation, action: 's3:PutObjectTagging', resource: object(key), context: {} }] : [])];
    case 'CreateMultipartUpload':
    case 'UploadPart':
    case 'CompleteMultipartUpload':
      return [{ operation, action: 's3:PutObject', resource: object(key), context: {} }];
    case 'AbortMultipartUpload':
      return [{ operation, action: 's3:AbortMultipartUpload', resource: object(key), context: {} }];
    case 'DeleteObject':
      return [{ operation, action: versioned('s3:DeleteObject', 's3:DeleteObjectVersion'), resource: object(key), context: {} }];
    case 'DeleteObjects': {
      // No IAM action of its own: S3 checks s3:DeleteObject(Version) for every key.
      const objects = ((input['Delete'] as { Objects?: { Key?: string; VersionId?: string }[] } | undefined)?.Objects ?? []);
      return objects.map((o) => ({ operation, action: o.VersionId ? 's3:DeleteObjectVersion' : 's3:DeleteObject', resource: object(str(o.Key)), context: {} }));
    }
    case 'ListObjectsV2':
    case 'ListObjects':
      return [{ operation, action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}`, context: { 's3:prefix': str(input['Prefix']), ...(input['Delimiter'] ? { 's3:delimiter': str(input['Delimiter']) } : {}) } }];
    case 'ListObjectVersions':
      return [{ operation, action: 's3:ListBucketVersions', resource: `arn:aws:s3:::${bucket}`, context: { 's3:prefix': str(input['Prefix']) } }];
    default:
      return [{ operation, resource: `arn:aws:s3:::${bucket}`, context: {} }];
  }
}

/** The IAM requests of one SQS operation: the queue ARN from its URL (https://sqs.<region>.amazonaws.com/<account>/<name>, or moto's http://host/<account>/<name>). */
export function sqsIamRequests(operation: string, input: Input, region: string): Omit<IamRequest, 'principal'>[] {
  const [account, name] = new URL(str(input['QueueUrl'])).pathname.split('/').filter(Boolean);
  const arn = `arn:aws:sqs:${region}:${account}:${name}`;
  // SendMessageBatch is authorised as sqs:SendMessage.
  if (operation === 'SendMessage' || operation === 'SendMessageBatch') return [{ operation, action: 'sqs:SendMessage', resource: arn, context: {} }];
  return [{ operation, resource: arn, context: {} }];
}

/** The IAM requests of one SSM operation: a parameter's ARN drops the name's leading "/" into "parameter/…". */
export function ssmIamRequests(operation: string, input: Input, region: string): Omit<IamRequest, 'principal'>[] {
  const name = str(input['Name']);
  const resource = `arn:aws:ssm:${region}:${ACCOUNT}:parameter${name.startsWith('/') ? name : `/${name}`}`;
  if (operation === 'GetParameter') return [{ operation, action: 'ssm:GetParameter', resource, context: {} }];
  return [{ operation, resource, context: {} }];
}

/** The IAM requests of one EventBridge operation: PutEvents is authorised per entry, on each entry's bus (a name or an ARN). */
export function eventsIamRequests(operation: string, input: Input, region: string): Omit<IamRequest, 'principal'>[] {
  const bus = (name: string) => (name.startsWith('arn:') ? name : `arn:aws:events:${region}:${ACCOUNT}:event-bus/${name || 'default'}`);
  if (operation === 'PutEvents') {
    const entries = (input['Entries'] as { EventBusName?: string }[] | undefined) ?? [];
    return entries.map((entry) => ({ operation, action: 'events:PutEvents', resource: bus(str(entry.EventBusName)), context: {} }));
  }
  return [{ operation, resource: bus(''), context: {} }];
}

/** Where recorded requests go; one per end-to-end run. */
export class IamRecorder {
  readonly requests: IamRequest[] = [];

  /** Records the S3 calls of `client` as made by `principal`; returns the client. */
  s3(client: S3Client, principal: string): S3Client {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = String(context.commandName).replace(/Command$/, '');
        for (const request of s3IamRequests(operation, args.input as Input)) this.requests.push({ principal, ...request });
        return next(args);
      },
      { step: 'initialize', name: 'iamRecorder', override: true },
    );
    return client;
  }

  ssm(client: SSMClient, principal: string, region: string): SSMClient {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = String(context.commandName).replace(/Command$/, '');
        for (const request of ssmIamRequests(operation, args.input as Input, region)) this.requests.push({ principal, ...request });
        return next(args);
      },
      { step: 'initialize', name: 'iamRecorder', override: true },
    );
    return client;
  }

  sqs(client: SQSClient, principal: string, region: string): SQSClient {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = String(context.commandName).replace(/Command$/, '');
        for (const request of sqsIamRequests(operation, args.input as Input, region)) this.requests.push({ principal, ...request });
        return next(args);
      },
      { step: 'initialize', name: 'iamRecorder', override: true },
    );
    return client;
  }

  /** Records the EventBridge calls of `client` as made by `principal`. */
  events(client: EventBridgeClient, principal: string, region: string): EventBridgeClient {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = String(context.commandName).replace(/Command$/, '');
        for (const request of eventsIamRequests(operation, args.input as Input, region)) this.requests.push({ principal, ...request });
        return next(args);
      },
      { step: 'initialize', name: 'iamRecorder', override: true },
    );
    return client;
  }
}
