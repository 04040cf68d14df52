/**
 * One S3 object, from event to stored pages and manifest: the logic behind the render handler.
 * Permanent problems with the document end in a `failed` manifest; anything transient throws,
 * so Lambda retries (and a partial render resumes where it stopped).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config/env.js';
import { classify } from '../job/freshness.js';
import { isPageFailure, optionsHash, type Manifest } from '../job/manifest.js';
import { countFailure, logger, metrics, MetricUnit } from '../observability.js';
import { runRenderJob } from '../job/run-job.js';
import { isNotFound, readManifest } from '../s3/manifest-store.js';
import { MANIFEST_FILE, outputLocation, PAGE_FILE_PATTERN, skipReason, type OutputLocation } from '../s3/layout.js';

export interface RenderObjectRequest {
  bucket: string;
  /** Decoded key. */
  key: string;
  versionId?: string;
}

export type RenderObjectOutcome =
  | { kind: 'ignored'; reason: string }
  | { kind: 'up-to-date'; manifestKey: string }
  | { kind: 'superseded'; reason: string }
  | { kind: 'rendered'; manifestKey: string; manifest: Manifest };

export interface RenderObjectDeps {
  s3: S3Client;
  config: Config;
  /** Lambda's context.getRemainingTimeInMillis. */
  timeLeftMs?: () => number;
  signal?: AbortSignal;
  /** Render even when the manifest says it is up to date (a forced reprocess). */
  force?: boolean;
}

/** Thrown after a `partial` manifest was written because time ran out: a retry resumes. */
export class OutOfTimeError extends Error {
  override readonly name = 'OutOfTimeError';
}

/** Time kept back, once the next page no longer fits, to finish uploads and write the manifest. */
const FINISH_RESERVE_MS = 5_000;

export async function renderObject(request: RenderObjectRequest, deps: RenderObjectDeps): Promise<RenderObjectOutcome> {
  const { s3, config } = deps;
  const { bucket, key } = request;
  const skip = skipReason(key, config);
  if (skip) return { kind: 'ignored', reason: skip };
  const out = outputLocation(bucket, key, config);
  const manifestKey = out.prefix + MANIFEST_FILE;

  let head;
  try {
    head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...(request.versionId ? { VersionId: request.versionId } : {}) }));
  } catch (err) {
    // Deleted before we got to it: nothing to render, and retrying will not change that.
    if (isNotFound(err)) return { kind: 'ignored', reason: 'the source object no longer exists' };
    throw err;
  }
  const etag = (head.ETag ?? '').replace(/"/g, '');
  const versionId = request.versionId ?? head.VersionId;
  const size = head.ContentLength ?? 0;

  const previous = await readManifest(s3, out);
  if (!deps.force && classify(previous, { etag }, config.output, false).class === 'ok') return { kind: 'up-to-date', manifestKey };
  const resume =
    previous?.status === 'partial' && previous.nextPage && previous.source.etag === etag && previous.optionsHash === optionsHash(config.output)
      ? previous
      : undefined;

  const workDir = await mkdtemp(join(tmpdir(), 'pdf-render-'));
  try {
    // The file name is ours, never the key's: keys are user input.
    const filePath = join(workDir, 'source.pdf');
    const downloadStarted = performance.now();
    const object = await s3.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        ...(versionId ? { VersionId: versionId } : {}),
        // Exactly the bytes whose etag we checked, even if the key is overwritten meanwhile.
        ...(etag ? { IfMatch: `"${etag}"` } : {}),
      }),
    );
    await pipeline(object.Body as Readable, createWriteStream(filePath, { mode: 0o600 }));
    const downloadMs = Math.round(performance.now() - downloadStarted);
    logger.info('source downloaded', { bucket, key, versionId, size, downloadMs, resumeFrom: resume?.nextPage });

    const { manifest, stats, outOfTime } = await runRenderJob({
      filePath,
      source: { bucket, key, ...(versionId ? { versionId } : {}), etag, size },
      options: { ...config.output, ...(config.pageTimeoutMs ? { pageTimeoutMs: config.pageTimeoutMs } : {}) },
      ...(resume ? { resume } : {}),
      concurrency: config.uploadConcurrency,
      sink: {
        async putPage(page, fileName) {
          const pageKey = out.prefix + fileName;
          // Streamed: a page larger than one part goes up as a multipart upload, part by part,
          // and is aborted (nothing stored) if the page fails midway.
          await new Upload({
            client: s3,
            queueSize: 2,
            params: {
              Bucket: out.bucket,
              Key: pageKey,
              Body: page.body,
              ContentType: page.contentType,
              Metadata: { 'source-etag': etag, page: String(page.pageNumber), dpi: String(page.dpi) },
            },
          }).done();
          return pageKey;
        },
      },
      ...(deps.timeLeftMs ? { timeLeftMs: deps.timeLeftMs, reserveMs: FINISH_RESERVE_MS } : {}),
      ...(deps.signal ? { signal: deps.signal } : {}),
      onLog: (level, message) => logger.debug('mupdf', { bucket, key, level, detail: message }),
      onPage: (page, timing) => {
        if (isPageFailure(page)) {
          logger.warn('page failed', { bucket, key, page: page.number, code: page.error.code, detail: page.error.message });
          countFailure(page.error.code, 'page');
        } else {
          metrics.addMetric('PagesRendered', MetricUnit.Count, 1);
          metrics.addMetric('BytesOut', MetricUnit.Bytes, page.bytes);
          if (timing) metrics.addMetric('RenderMs', MetricUnit.Milliseconds, timing.renderMs);
        }
      },
    });

    // The key now holds other bytes (overwritten while we rendered, or a late event for an old
    // version): the newer object's own event renders it, and our manifest must not claim the
    // output prefix, whose pages that render may be overwriting.
    const current = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!current || (current.ETag ?? '').replace(/"/g, '') !== etag) {
      logger.warn('source changed during the render; leaving the manifest to the newer event', { bucket, key, etag });
      return { kind: 'superseded', reason: 'the source changed during the render' };
    }

    await deleteStalePages(s3, out, manifest);
    await s3.send(
      new PutObjectCommand({
        Bucket: out.bucket,
        Key: manifestKey,
        Body: `${JSON.stringify(manifest, null, 2)}\n`,
        ContentType: 'application/json',
        CacheControl: 'no-cache',
        Metadata: { 'source-etag': etag, status: manifest.status },
      }),
    );
    const summary = { bucket, key, status: manifest.status, pageCount: manifest.pageCount, durationMs: manifest.durationMs, wasmHeapPeakBytes: stats.wasmHeapPeakBytes };
    if (manifest.error) {
      logger.error('document failed', { ...summary, code: manifest.error.code, detail: manifest.error.message });
      countFailure(manifest.error.code, 'document');
    } else {
      logger.info('document rendered', { ...summary, nextPage: manifest.nextPage, warnings: manifest.warnings });
    }
    if (outOfTime) throw new OutOfTimeError(`out of time: ${key} stored up to page ${manifest.nextPage! - 1}; the retry resumes at page ${manifest.nextPage}`);
    return { kind: 'rendered', manifestKey, manifest };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Page images under the output prefix that the new manifest does not list: a longer earlier render, or another format. */
async function deleteStalePages(s3: S3Client, out: OutputLocation, manifest: Manifest): Promise<void> {
  const keep = new Set(manifest.pages.flatMap((p) => (isPageFailure(p) ? [] : [p.key])));
  let continuationToken: string | undefined;
  do {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: out.bucket, Prefix: out.prefix, ContinuationToken: continuationToken }));
    const stale = (listed.Contents ?? [])
      .map((o) => o.Key!)
      .filter((k) => PAGE_FILE_PATTERN.test(k.slice(out.prefix.length)) && !keep.has(k));
    if (stale.length > 0) {
      const result = await s3.send(new DeleteObjectsCommand({ Bucket: out.bucket, Delete: { Objects: stale.map((Key) => ({ Key })), Quiet: true } }));
      if (result.Errors?.length) throw new Error(`could not delete stale pages: ${result.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
    }
    continuationToken = listed.IsTruncated ? listed.NextContinuationToken : undefined;
  } while (continuationToken);
}
