/**
 * The per-object task of an S3 Batch Operations job (docs/reprocess.md, "Backfill"): for each
 * task, HEAD the object, read its manifest, classify it with the one freshness rule
 * (lib/job/freshness.ts) under the options the render function would use (its render-*
 * metadata over the settings), and send a render request to the render queue when it needs one.
 * The queue stays the one gate on render concurrency: this never renders.
 *
 * Every task gets an answer, and `resultString` says what was found and done, so the job's
 * completion report audits the bucket:
 *
 * | resultCode | resultString |
 * |---|---|
 * | Succeeded | `ok`, `dispatched:<class>`, `would-dispatch:<class>` (dry run), `failed-settled:<CODE>`, `partial-settled`, `left-to-its-event:<class>` (modified in the last RECENT_UPLOAD_SECONDS), `deleted`, `not-a-pdf-key`, `skipped:<reason>` (a key that is not ours) |
 * | TemporaryFailure | `temporary:<error code>: …` (throttling, 5xx, timeouts, resets: Batch Operations retries the task) |
 * | PermanentFailure | `invalid:…` (a malformed task or user argument, or a bucket other than SOURCE_BUCKET), `error:<code>: …` (an S3 or SQS 4xx that a retry cannot change) |
 *
 * Must not import the render function (the reprocess artifact would then carry MuPDF).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/env.js';
import { errorMessage } from '../engine/errors.js';
import { classifyObject, type Classification } from '../job/freshness.js';
import { isLegacy } from '../job/manifest.js';
import { logger, metrics, MetricUnit } from '../observability.js';
import type { Dispatcher } from '../reprocess/dispatch.js';
import { isPermanentS3Error, s3ErrorCode } from '../s3/errors.js';
import { outputLocation, skipReason } from '../s3/layout.js';
import { readManifest } from '../s3/manifest-store.js';
import { headCurrent } from '../s3/source.js';
import {
  BATCH_SCHEMA_VERSION,
  InvalidBatchEventError,
  parseBatchArguments,
  parseBatchEvent,
  taskKey,
  type BatchArguments,
  type BatchResponse,
  type BatchResult,
  type BatchTask,
  type ResultCode,
} from './event.js';

export interface BatchTaskDeps {
  s3: S3Client;
  config: Config;
  dispatcher: Dispatcher;
  /** Objects modified less than this long ago are left to their own events (default: RECENT_UPLOAD_SECONDS). */
  recentMs?: number;
}

export type BatchTaskHandler = (event: unknown) => Promise<BatchResponse>;

/** Error names that mean "slow down", across S3 (503 SlowDown), SQS (400 RequestThrottled) and the SDK. */
const THROTTLING = new Set(['SlowDown', 'RequestThrottled', 'RequestThrottledException', 'ThrottlingException', 'Throttling', 'TooManyRequestsException', 'ThrottledException', 'KmsThrottled']);

/**
 * Whether Batch Operations should try the task again: throttling, 5xx, timeouts, resets (no
 * HTTP status at all), and S3's 403/408/409/412 that the contract treats as transient. A 4xx
 * that a retry cannot change (KeyTooLongError, QueueDoesNotExist, AccessDenied from SQS) is
 * permanent: the job's failure threshold then stops a misconfigured job early.
 */
export function isTemporary(err: unknown): boolean {
  const name = s3ErrorCode(err);
  if (name && THROTTLING.has(name)) return true;
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  if (status === undefined) return true;
  if (status >= 500) return true;
  return !isPermanentS3Error(err);
}

interface TaskOutcome {
  resultCode: ResultCode;
  resultString: string;
  /** Set when a render request was sent. */
  dispatched?: boolean;
}

const succeeded = (resultString: string, dispatched = false): TaskOutcome => ({ resultCode: 'Succeeded', resultString, ...(dispatched ? { dispatched } : {}) });

/** What a settled result (not dispatched, not ok) is called in the report. */
function settledString(classification: Classification, manifestError: string | undefined): string {
  if (classification.class === 'failed') return `failed-settled:${manifestError ?? 'unknown'}`;
  return `${classification.class}-settled`;
}

async function runTask(task: BatchTask, args: BatchArguments, deps: BatchTaskDeps, recentBefore: number): Promise<TaskOutcome> {
  const { s3, config, dispatcher } = deps;
  let key: string;
  try {
    key = taskKey(task);
  } catch {
    return { resultCode: 'PermanentFailure', resultString: `invalid:s3Key ${JSON.stringify(task.s3Key)} is not URL-encoded (manifests hold URL-encoded keys)` };
  }
  const bucket = task.s3Bucket;
  // A job on another bucket is misdirected as a whole: a failure per task lets its failure
  // threshold stop it, where "Succeeded" would report 100 % success for work never done.
  if (config.sourceBucket && bucket !== config.sourceBucket) {
    return { resultCode: 'PermanentFailure', resultString: `invalid:bucket ${bucket} is not SOURCE_BUCKET ${config.sourceBucket}: this function renders only that bucket (create the job on its objects)` };
  }
  const skip = skipReason(key, config);
  if (skip === 'not a .pdf key') return succeeded('not-a-pdf-key');
  if (skip) return succeeded(`skipped:${skip}`);

  // The current object: renders are always of what is current under the key (the render
  // function checks again), whatever version the manifest listed.
  const current = await headCurrent(s3, bucket, key);
  if (!current) return succeeded('deleted');
  const out = outputLocation(bucket, key, config);
  const { manifest } = await readManifest(s3, out);
  // The options the render function would use for this object: its render-* metadata over the settings.
  const classification = await classifyObject(manifest, current, config.output, args.force, current.metadata);
  if (!classification.dispatch) return succeeded(classification.class === 'ok' ? 'ok' : settledString(classification, manifest && !isLegacy(manifest) ? manifest.error?.code : undefined));
  if (current.lastModified !== undefined && current.lastModified > recentBefore) return succeeded(`left-to-its-event:${classification.class}`);
  if (args.dryRun) return succeeded(`would-dispatch:${classification.class}`);
  await dispatcher.dispatch({ bucket, key, etag: current.etag, ...(args.force ? { force: true } : {}) });
  logger.info('render dispatched', { bucket, key, class: classification.class, reason: classification.reason, taskId: task.taskId });
  return succeeded(`dispatched:${classification.class}`, true);
}

/** One task, never thrown: every error becomes a result code Batch Operations understands. */
async function answer(task: BatchTask, args: BatchArguments, deps: BatchTaskDeps, recentBefore: number): Promise<BatchResult> {
  let outcome: TaskOutcome;
  try {
    outcome = await runTask(task, args, deps, recentBefore);
  } catch (err) {
    const code = s3ErrorCode(err) ?? 'Error';
    const temporary = isTemporary(err);
    outcome = { resultCode: temporary ? 'TemporaryFailure' : 'PermanentFailure', resultString: `${temporary ? 'temporary' : 'error'}:${code}: ${errorMessage(err)}` };
    logger.error('batch task failed', { bucket: task.s3Bucket, s3Key: task.s3Key, taskId: task.taskId, code, temporary, error: errorMessage(err) });
  }
  return { taskId: task.taskId, resultCode: outcome.resultCode, resultString: outcome.resultString };
}

export function createBatchTaskHandler(deps: BatchTaskDeps): BatchTaskHandler {
  return async (raw) => {
    let parsed;
    try {
      parsed = parseBatchEvent(raw);
    } catch (err) {
      logger.error('invalid S3 Batch Operations event', { error: errorMessage(err) });
      throw err;
    }
    const { event, badTasks } = parsed;
    const respond = (results: BatchResult[]): BatchResponse => ({
      invocationSchemaVersion: event.invocationSchemaVersion,
      // A result missing for a task would be a bug here: it must not pass for a success.
      treatMissingKeysAs: 'PermanentFailure',
      invocationId: event.invocationId,
      results,
    });
    const invalid = (taskId: string, problem: string): BatchResult => ({ taskId, resultCode: 'PermanentFailure', resultString: `invalid:${problem}` });
    const bad = badTasks.map((t) => invalid(t.taskId, t.problem));
    if (event.invocationSchemaVersion !== BATCH_SCHEMA_VERSION) {
      const problem = `invocationSchemaVersion ${JSON.stringify(event.invocationSchemaVersion)}: this function takes ${BATCH_SCHEMA_VERSION} (create the job with InvocationSchemaVersion "2.0": npm run backfill does)`;
      logger.error('unsupported S3 Batch Operations schema', { invocationSchemaVersion: event.invocationSchemaVersion, jobId: event.job.id });
      return respond([...event.tasks.map((t) => invalid(t.taskId, problem)), ...bad]);
    }
    let args: BatchArguments;
    try {
      args = parseBatchArguments(event.job.userArguments);
    } catch (err) {
      if (!(err instanceof InvalidBatchEventError)) throw err;
      logger.error('invalid S3 Batch Operations user arguments', { jobId: event.job.id, error: err.message });
      return respond([...event.tasks.map((t) => invalid(t.taskId, err.message)), ...bad]);
    }
    logger.appendKeys({ jobId: event.job.id });
    const recentBefore = Date.now() - (deps.recentMs ?? deps.config.recentUploadMs);
    // Batch Operations sends one task per invocation; a list is answered all the same.
    const results = [...(await Promise.all(event.tasks.map((task) => answer(task, args, deps, recentBefore)))), ...bad];
    for (const result of results) {
      const single = metrics.singleMetric();
      single.addDimension('resultCode', result.resultCode);
      single.addMetric('BatchTasks', MetricUnit.Count, 1);
    }
    return respond(results);
  };
}
