/**
 * S3 Batch Operations' Lambda invocation, schema 2.0 (docs/reprocess.md, "Backfill"), checked at
 * the edge. The request: `invocationSchemaVersion`, `invocationId`, `job.id`,
 * `job.userArguments` (a string-to-string map, at most 10 entries), and `tasks[]` with `taskId`,
 * `s3Key`, `s3VersionId` (null when the manifest names none) and `s3Bucket` (a bucket name;
 * schema 1.0 sent `s3BucketArn` instead). The response: `invocationSchemaVersion`,
 * `treatMissingKeysAs`, `invocationId` and one `results[]` entry per task.
 *
 * `s3Key` is the key as the manifest spells it: manifests hold URL-encoded keys (S3 writes its
 * inventory reports and generated manifests that way, and a CSV manifest must), and Batch
 * Operations passes them on encoded. AWS's own example functions decode it with
 * `unquote_plus`, which is decodeEventKey.
 */
import { decodeEventKey } from '../s3/layout.js';

export const BATCH_SCHEMA_VERSION = '2.0';
export const RESULT_CODES = ['Succeeded', 'TemporaryFailure', 'PermanentFailure'] as const;
export type ResultCode = (typeof RESULT_CODES)[number];

export interface BatchTask {
  taskId: string;
  /** As sent: URL-encoded. */
  s3Key: string;
  s3VersionId: string | null;
  s3Bucket: string;
}

export interface BatchEvent {
  invocationSchemaVersion: string;
  invocationId: string;
  job: { id: string; userArguments?: Record<string, string> };
  tasks: BatchTask[];
}

export interface BatchResult {
  taskId: string;
  resultCode: ResultCode;
  resultString: string;
}

export interface BatchResponse {
  invocationSchemaVersion: string;
  treatMissingKeysAs: ResultCode;
  invocationId: string;
  results: BatchResult[];
}

/** What the job asks of every task, from `job.userArguments`. */
export interface BatchArguments {
  /** Classify and report; dispatch nothing. */
  dryRun: boolean;
  /** Dispatch every PDF that has a manifest, as if it were stale; the render message carries force. */
  force: boolean;
}

export const USER_ARGUMENTS = ['dryRun', 'force'] as const;

export class InvalidBatchEventError extends Error {
  override readonly name = 'InvalidBatchEventError';
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** An S3 Batch Operations invocation (any schema version): the reprocess function routes on this. */
export function isBatchEvent(event: unknown): boolean {
  return isRecord(event) && 'invocationSchemaVersion' in event && 'tasks' in event;
}

/**
 * The event, checked. Throws InvalidBatchEventError when there is no way to answer it (no
 * invocationId, no task list): Batch Operations then records the invocation as failed. A
 * task that is malformed on its own is answered PermanentFailure by the handler, not thrown.
 */
export function parseBatchEvent(event: unknown): { event: BatchEvent; badTasks: { taskId: string; problem: string }[] } {
  if (!isRecord(event)) throw new InvalidBatchEventError('an S3 Batch Operations event must be a JSON object');
  const { invocationSchemaVersion, invocationId, job, tasks } = event;
  if (typeof invocationSchemaVersion !== 'string') throw new InvalidBatchEventError(`"invocationSchemaVersion" must be a string such as "2.0"; got ${JSON.stringify(invocationSchemaVersion)}`);
  if (typeof invocationId !== 'string' || invocationId === '') throw new InvalidBatchEventError(`"invocationId" must be a non-empty string; got ${JSON.stringify(invocationId)}`);
  if (!isRecord(job) || typeof job['id'] !== 'string') throw new InvalidBatchEventError('"job" must be an object with an "id" string');
  if (!Array.isArray(tasks)) throw new InvalidBatchEventError(`"tasks" must be an array; got ${JSON.stringify(tasks)}`);
  const userArguments = job['userArguments'];
  if (userArguments !== undefined && userArguments !== null && !isRecord(userArguments)) throw new InvalidBatchEventError('"job.userArguments" must be an object of strings');
  const good: BatchTask[] = [];
  const badTasks: { taskId: string; problem: string }[] = [];
  for (const [i, task] of tasks.entries()) {
    if (!isRecord(task) || typeof task['taskId'] !== 'string') throw new InvalidBatchEventError(`"tasks[${i}]" must be an object with a "taskId" string`);
    const { taskId, s3Key, s3VersionId, s3Bucket } = task;
    if (typeof s3Key !== 'string' || s3Key === '') badTasks.push({ taskId, problem: `"s3Key" must be a non-empty string; got ${JSON.stringify(s3Key)}` });
    else if (typeof s3Bucket !== 'string' || s3Bucket === '') {
      badTasks.push({ taskId, problem: `"s3Bucket" must be a bucket name (schema 2.0; schema 1.0 sent "s3BucketArn"); got ${JSON.stringify(s3Bucket)}` });
    } else if (s3VersionId !== undefined && s3VersionId !== null && typeof s3VersionId !== 'string') badTasks.push({ taskId, problem: `"s3VersionId" must be a string or null; got ${JSON.stringify(s3VersionId)}` });
    else good.push({ taskId, s3Key, s3Bucket, s3VersionId: typeof s3VersionId === 'string' ? s3VersionId : null });
  }
  return {
    event: {
      invocationSchemaVersion,
      invocationId,
      job: { id: job['id'], ...(isRecord(userArguments) ? { userArguments: userArguments as Record<string, string> } : {}) },
      tasks: good,
    },
    badTasks,
  };
}

/**
 * `job.userArguments`: `dryRun` and `force`, each "true" or "false" (UserArguments is a map of
 * strings). Anything else is an error naming the argument, so that a job created with a typo
 * fails on its first tasks (and stops at the failure threshold) instead of running the wrong way.
 */
export function parseBatchArguments(userArguments: Record<string, unknown> | undefined): BatchArguments {
  const parsed: BatchArguments = { dryRun: false, force: false };
  const problems: string[] = [];
  for (const [name, value] of Object.entries(userArguments ?? {})) {
    if (!(USER_ARGUMENTS as readonly string[]).includes(name)) {
      problems.push(`unknown user argument ${JSON.stringify(name)} (known: ${USER_ARGUMENTS.join(', ')})`);
    } else if (value !== 'true' && value !== 'false') {
      problems.push(`user argument "${name}" must be "true" or "false"; got ${JSON.stringify(value)}`);
    } else parsed[name as keyof BatchArguments] = value === 'true';
  }
  if (problems.length > 0) throw new InvalidBatchEventError(problems.join('; '));
  return parsed;
}

/** The key a task names, decoded: `+` is a space and %XX a byte, as in S3 event notifications. */
export function taskKey(task: Pick<BatchTask, 's3Key'>): string {
  return decodeEventKey(task.s3Key);
}
