/**
 * A generation's files in S3: the page sink that streams each page into it, and the clean-ups
 * (a superseded render's own generation; the other generations once a render has committed).
 * Only keys of the generation layout are ever deleted, so a source nested under another's
 * output prefix (incoming/a.pdf/b.pdf) never loses its outputs.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { PageSink } from '../job/run-job.js';
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

/** Deletes the generation files under the prefix for which `doomed(generation)` holds (and v1 pages when `legacy`). */
async function deleteWhere(s3: S3Client, out: OutputLocation, doomed: (generation: string) => boolean, legacy: boolean): Promise<number> {
  let deleted = 0;
  let token: string | undefined;
  do {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: out.bucket, Prefix: out.prefix, ...(token ? { ContinuationToken: token } : {}) }));
    const keys = (listed.Contents ?? [])
      .map((o) => o.Key!)
      .filter((key) => {
        const rel = key.slice(out.prefix.length);
        const match = GENERATION_FILE_PATTERN.exec(rel);
        return match ? doomed(match[1]!) : legacy && LEGACY_PAGE_FILE_PATTERN.test(rel);
      });
    if (keys.length > 0) {
      const result = await s3.send(new DeleteObjectsCommand({ Bucket: out.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
      if (result.Errors?.length) throw new Error(`could not delete old outputs: ${result.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
      deleted += keys.length;
    }
    token = listed.IsTruncated ? listed.NextContinuationToken : undefined;
  } while (token);
  return deleted;
}

/** After a commit: every other generation (but `alsoKeep`: the same source's cached variants), and the pages of a v1 render. */
export function deleteOtherGenerations(s3: S3Client, out: OutputLocation, keep: string, alsoKeep: readonly string[] = []): Promise<number> {
  return deleteWhere(s3, out, (generation) => generation !== keep && !alsoKeep.includes(generation), true);
}

/** A superseded render's own files. */
export function deleteGeneration(s3: S3Client, out: OutputLocation, generation: string): Promise<number> {
  return deleteWhere(s3, out, (g) => g === generation, false);
}
