/**
 * A generation's files in S3: the page sink that streams each page into it, and the clean-ups
 * (a superseded render's own generation; once a render has committed, the other generations and
 * its own part records).
 * Only keys of the generation layout are ever deleted, so a source nested under another's
 * output prefix (incoming/a.pdf/b.pdf) never loses its outputs.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { PageSink } from '../job/run-job.js';
import { PART_FILE_PATTERN } from './part-store.js';
import { GENERATION_FILE_PATTERN, generationPrefix, LEGACY_PAGE_FILE_PATTERN, type OutputLocation } from './layout.js';

/**
 * Streams pages to <prefix><generation>/. A page larger than one part goes up as a multipart
 * upload, part by part; when a part fails, lib-storage aborts the upload (leavePartsOnError is
 * false), so no incomplete upload is left to bill (the bucket's lifecycle rule catches what a
 * crash leaves).
 */
export function s3PageSink(s3: S3Client, out: OutputLocation, generation: string, sourceEtag: string): PageSink {
  return {
    async putPage(page, fileName) {
      const key = generationPrefix(out, generation) + fileName;
      await new Upload({
        client: s3,
        queueSize: 2,
        leavePartsOnError: false,
        params: {
          Bucket: out.bucket,
          Key: key,
          Body: page.body,
          ContentType: page.contentType,
          Metadata: { 'source-etag': sourceEtag, generation, page: String(page.pageNumber), dpi: String(page.dpi) },
        },
      }).done();
      return key;
    },
    async putFile(pageNumber, fileName, body, contentType) {
      const key = generationPrefix(out, generation) + fileName;
      await s3.send(
        new PutObjectCommand({ Bucket: out.bucket, Key: key, Body: body, ContentType: contentType, Metadata: { 'source-etag': sourceEtag, generation, page: String(pageNumber) } }),
      );
      return key;
    },
  };
}

/** A generation file (or v1 page) under the prefix, as a listing gives it. */
interface Listed {
  key: string;
  /** Relative to the output prefix. */
  rel: string;
  /** Undefined for a v1 page (outside any generation). */
  generation: string | undefined;
}

/** Every generation file and v1 page under the prefix (never a nested source's outputs). */
async function listOutputs(s3: S3Client, out: OutputLocation): Promise<Listed[]> {
  const found: Listed[] = [];
  let token: string | undefined;
  do {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: out.bucket, Prefix: out.prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const object of listed.Contents ?? []) {
      const key = object.Key!;
      const rel = key.slice(out.prefix.length);
      const match = GENERATION_FILE_PATTERN.exec(rel);
      if (match) found.push({ key, rel, generation: match[1]! });
      else if (LEGACY_PAGE_FILE_PATTERN.test(rel)) found.push({ key, rel, generation: undefined });
    }
    token = listed.IsTruncated ? listed.NextContinuationToken : undefined;
  } while (token);
  return found;
}

async function deleteKeys(s3: S3Client, out: OutputLocation, keys: readonly string[]): Promise<number> {
  for (let at = 0; at < keys.length; at += DELETE_BATCH) {
    const batch = keys.slice(at, at + DELETE_BATCH);
    const result = await s3.send(new DeleteObjectsCommand({ Bucket: out.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
    if (result.Errors?.length) throw new Error(`could not delete old outputs: ${result.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
  }
  return keys.length;
}

/** DeleteObjects takes at most 1,000 keys. */
const DELETE_BATCH = 1000;

/**
 * The clean-up once `keep` is the committed generation: every other generation's files and v1
 * pages (but the folders `keep.alsoKeep` names: the page function's variants of the same source
 * bytes), and, when the committed manifest is final, `keep`'s own fan-out part records.
 * Idempotent, so every path that finds the current render committed runs it (the commit, a
 * lost compare-and-swap to the same render, a duplicate or redelivered message that finds it up
 * to date): a crash between the manifest PUT and the clean-up is repaired by the retry.
 *
 * `stillCurrent` is asked after the listing, before anything of another generation is deleted:
 * a newer upload's render writes its own generation, and S3 lists after a write consistently,
 * so if the source is still the committed one after the listing, nothing listed can be a newer
 * render's page. Otherwise the clean-up is left to that newer render's commit.
 */
export async function cleanUpAfterCommit(
  s3: S3Client,
  out: OutputLocation,
  keep: { generation: string; final: boolean; alsoKeep?: readonly string[] },
  stillCurrent: () => Promise<boolean>,
): Promise<number> {
  const doomed = (await listOutputs(s3, out)).filter((f) => (f.generation === keep.generation ? keep.final && PART_FILE_PATTERN.test(f.rel.slice(f.generation.length + 1)) : !(f.generation !== undefined && keep.alsoKeep?.includes(f.generation))));
  if (doomed.length === 0) return 0;
  if (!(await stillCurrent())) return 0;
  return deleteKeys(s3, out, doomed.map((f) => f.key));
}

/** A superseded render's own files. */
export async function deleteGeneration(s3: S3Client, out: OutputLocation, generation: string): Promise<number> {
  return deleteKeys(s3, out, (await listOutputs(s3, out)).filter((f) => f.generation === generation).map((f) => f.key));
}

