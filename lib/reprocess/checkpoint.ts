/**
 * Where a scheduled run resumes (docs/reprocess.md, "The schedule resumes where it stopped"):
 * one small JSON object per bucket and listed prefix, under OUTPUT_PREFIX + ".reprocess/" in the
 * output bucket. Only the schedule's own real runs read and move it (run.ts,
 * usesScheduleCheckpoint): a forced or manual run that moved it would make the schedule skip
 * what lies before. A run that stops before the end of the listing (out of time, or at its
 * limit) records the last key before the first one it did not finish (a failed read or
 * dispatch is tried again, never stepped past); a run that reaches the end with every key
 * finished records none, so the next one starts from the first key. It is only a starting point: every
 * key after it is classified again with the one freshness rule, so a stale or lost checkpoint
 * costs a re-scan, never a render of something up to date.
 *
 * A source key ending in .pdf never maps to this key (its outputs are under
 * OUTPUT_PREFIX + key + "/"), so no render can overwrite it.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/env.js';
import { isNotFound } from '../s3/errors.js';

export interface Checkpoint {
  bucket: string;
  /** The listed prefix (INPUT_PREFIX + the input's prefix). */
  prefix: string;
  /** List after this key next time; null: from the first key. */
  startAfter: string | null;
  writtenAt: string;
}

export interface CheckpointStore {
  /** Where the run starts: undefined when there is no checkpoint (from the first key). */
  read(): Promise<string | undefined>;
  write(startAfter: string | null): Promise<void>;
}

/** The checkpoint's key in the output bucket. */
export function checkpointKey(config: Pick<Config, 'outputPrefix'>, bucket: string, prefix: string): string {
  return `${config.outputPrefix}.reprocess/checkpoint-${createHash('sha256').update(`${bucket}\n${prefix}`).digest('hex').slice(0, 16)}.json`;
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
      let parsed: Partial<Checkpoint>;
      try {
        parsed = JSON.parse(text) as Partial<Checkpoint>;
      } catch {
        return undefined;
      }
      // Only a checkpoint of this listing, with a key under its prefix, is taken; anything else starts over.
      return parsed.bucket === bucket && parsed.prefix === prefix && typeof parsed.startAfter === 'string' && parsed.startAfter.startsWith(prefix) ? parsed.startAfter : undefined;
    },
    async write(startAfter) {
      const body: Checkpoint = { bucket, prefix, startAfter, writtenAt: new Date().toISOString() };
      await s3.send(new PutObjectCommand({ ...where, Body: `${JSON.stringify(body)}\n`, ContentType: 'application/json' }));
    },
  };
}
