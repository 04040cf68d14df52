/**
 * Where a scheduled run resumes (docs/reprocess.md, "The schedule resumes where it stopped"):
 * one small JSON object per bucket and listed prefix, under OUTPUT_PREFIX + ".reprocess/" in the
 * output bucket. Only the schedule's own real runs read and move it (run.ts,
 * usesScheduleCheckpoint): a forced or manual run that moved it would make the schedule skip
 * what lies before.
 *
 * It holds a cursor and the keys a run could not finish. The cursor is the last key a run took
 * from the listing (null: from the first key, after a run that reached the end); it always
 * moves, so one key that fails on every run (a 403 from a disabled KMS key, a dispatch that
 * always fails) can never hold the schedule at it. Those keys go to `retry` instead, each with
 * the number of runs in a row it has failed; the next run tries them first. The cursor is only a
 * starting point: every key after it is classified again with the one freshness rule, so a
 * stale or lost checkpoint costs a re-scan, never a render of something up to date.
 *
 * A source key ending in .pdf never maps to this key (its outputs are under
 * OUTPUT_PREFIX + key + "/"), so no render can overwrite it.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/env.js';
import { logger } from '../observability.js';
import { isNotFound } from '../s3/errors.js';

/** A key a run could not finish, tried again first by the next run. */
export interface RetryKey {
  key: string;
  /** Runs in a row in which it failed (a failed read or dispatch); 0: only left over the limit. */
  failures: number;
  /** The last failure's message, for whoever reads the checkpoint. */
  lastError?: string;
}

export interface CheckpointState {
  /** List after this key next time; null: from the first key. */
  startAfter: string | null;
  /** Tried again (HEAD, classify, dispatch) before the listing, oldest first. */
  retry: RetryKey[];
}

export interface Checkpoint extends CheckpointState {
  bucket: string;
  /** The listed prefix (INPUT_PREFIX + the input's prefix). */
  prefix: string;
  writtenAt: string;
}

/**
 * Keys held for retry, at most. Beyond it the oldest are dropped (with a warning): a checkpoint
 * of 1,000 keys is about 100 KB, read and written once a run.
 */
export const MAX_RETRY_KEYS = 1000;

export interface CheckpointStore {
  /** Where the run starts: undefined when there is no (usable) checkpoint (from the first key, nothing to retry). */
  read(): Promise<CheckpointState | undefined>;
  write(state: CheckpointState): Promise<void>;
}

/** The checkpoint's key in the output bucket. */
export function checkpointKey(config: Pick<Config, 'outputPrefix'>, bucket: string, prefix: string): string {
  return `${config.outputPrefix}.reprocess/checkpoint-${createHash('sha256').update(`${bucket}\n${prefix}`).digest('hex').slice(0, 16)}.json`;
}

/**
 * The checkpoint's state if `value` is a checkpoint of this listing, else a message naming the
 * field that is not. Keys must lie under the listed prefix: anything else starts over.
 */
export function parseCheckpoint(value: unknown, bucket: string, prefix: string): CheckpointState | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const c = value as Record<string, unknown>;
  if (c.bucket !== bucket) return `"bucket" ${JSON.stringify(c.bucket)} is not ${JSON.stringify(bucket)}`;
  if (c.prefix !== prefix) return `"prefix" ${JSON.stringify(c.prefix)} is not ${JSON.stringify(prefix)}`;
  if (c.startAfter !== null && (typeof c.startAfter !== 'string' || !c.startAfter.startsWith(prefix))) return `"startAfter" ${JSON.stringify(c.startAfter)} is neither null nor a key under the prefix`;
  // A checkpoint written before the retry list had none.
  const list = c.retry ?? [];
  if (!Array.isArray(list)) return '"retry" is not an array';
  if (list.length > MAX_RETRY_KEYS) return `"retry" holds ${list.length} keys, more than ${MAX_RETRY_KEYS}`;
  const retry: RetryKey[] = [];
  for (const [i, item] of list.entries()) {
    const r = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    if (typeof r.key !== 'string' || !r.key.startsWith(prefix)) return `"retry[${i}].key" ${JSON.stringify(r.key)} is not a key under the prefix`;
    if (typeof r.failures !== 'number' || !Number.isSafeInteger(r.failures) || r.failures < 0) return `"retry[${i}].failures" ${JSON.stringify(r.failures)} is not a count`;
    if (r.lastError !== undefined && typeof r.lastError !== 'string') return `"retry[${i}].lastError" is not a string`;
    retry.push({ key: r.key, failures: r.failures, ...(r.lastError !== undefined ? { lastError: r.lastError } : {}) });
  }
  return { startAfter: c.startAfter, retry };
}

export function s3CheckpointStore(s3: S3Client, config: Pick<Config, 'outputPrefix' | 'outputBucket'>, bucket: string, prefix: string): CheckpointStore {
  const where = { Bucket: config.outputBucket ?? bucket, Key: checkpointKey(config, bucket, prefix) };
  return {
    async read() {
      let text: string;
      try {
        text = await (await s3.send(new GetObjectCommand(where))).Body!.transformToString();
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
      let parsed: CheckpointState | string;
      try {
        parsed = parseCheckpoint(JSON.parse(text), bucket, prefix);
      } catch {
        parsed = 'not JSON';
      }
      if (typeof parsed === 'string') {
        // Starting over costs a re-scan, never a needless render (the one freshness rule).
        logger.warn('checkpoint ignored: the run starts from the first key', { bucket, prefix, checkpoint: where.Key, error: parsed });
        return undefined;
      }
      return parsed;
    },
    async write(state) {
      const body: Checkpoint = { bucket, prefix, startAfter: state.startAfter, retry: state.retry, writtenAt: new Date().toISOString() };
      await s3.send(new PutObjectCommand({ ...where, Body: `${JSON.stringify(body)}\n`, ContentType: 'application/json' }));
    },
  };
}
