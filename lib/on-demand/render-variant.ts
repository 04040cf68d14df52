/**
 * A cache miss: one page of a local source file drawn by the render job (a fresh MuPDF in its
 * own worker, as every render; lib/job/run-job.ts) and stored as the variant. The encoded page
 * streams to a file in /tmp first (memory stays bounded by the engine's bands, whatever the
 * image's size), then goes up in one PutObject with If-None-Match: * — S3 stores a PUT whole or
 * not at all, so a reader never sees a torn image, and of concurrent misses for one variant
 * the first stored wins; the others (412, or 409 for a write in progress) serve it.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ManifestPage, ManifestSource } from '../job/manifest.js';
import { isPageFailure } from '../job/manifest.js';
import type { JobOptions } from '../job/options.js';
import { runRenderJob, type PageSink } from '../job/run-job.js';
import { isPreconditionFailed } from '../s3/errors.js';
import { HttpError } from './errors.js';

/** Tag of every stored variant: the bucket's lifecycle rule expires objects under the output prefix that carry it. */
export const VARIANT_TAG = { key: 's3-pdf-render-variant', value: 'true' } as const;

export interface VariantTarget {
  bucket: string;
  key: string;
}

export interface RenderedVariant {
  page: ManifestPage;
  /** False when a concurrent request stored the variant first (this one's bytes were dropped). */
  stored: boolean;
  renderMs: number;
  storeMs: number;
}

export interface RenderVariantInput {
  s3: S3Client;
  filePath: string;
  source: ManifestSource;
  page: number;
  options: JobOptions;
  target: VariantTarget;
  pageTimeoutMs: number;
  timeLeftMs?: () => number;
  onLog?: (level: 'warning' | 'error', message: string) => void;
}

/** Time kept back to store the page and answer. */
const RESERVE_MS = 3_000;

export async function renderVariant(input: RenderVariantInput): Promise<RenderedVariant> {
  const { s3, target } = input;
  const scratch = await mkdtemp(join(tmpdir(), 'page-variant-'));
  let stored = true;
  let storeMs = 0;
  const sink: PageSink = {
    async putPage(page) {
      const file = join(scratch, 'page');
      await pipeline(page.body, createWriteStream(file, { mode: 0o600 }));
      const started = performance.now();
      try {
        await s3.send(
          new PutObjectCommand({
            Bucket: target.bucket,
            Key: target.key,
            Body: createReadStream(file),
            ContentLength: (await stat(file)).size,
            ContentType: page.contentType,
            CacheControl: 'private, max-age=31536000, immutable',
            Metadata: { 'source-etag': input.source.etag, page: String(page.pageNumber), dpi: String(page.dpi) },
            Tagging: `${VARIANT_TAG.key}=${VARIANT_TAG.value}`,
            IfNoneMatch: '*',
          }),
        );
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err;
        stored = false;
      }
      storeMs = performance.now() - started;
      return target.key;
    },
    putFile() {
      throw new Error('a page variant has no thumbnail or text');
    },
  };
  const started = performance.now();
  try {
    const { manifest } = await runRenderJob({
      filePath: input.filePath,
      source: input.source,
      options: { ...input.options, selection: [{ from: input.page, to: input.page }], pageTimeoutMs: input.pageTimeoutMs },
      sink,
      concurrency: 1,
      ...(input.timeLeftMs ? { timeLeftMs: input.timeLeftMs, reserveMs: RESERVE_MS } : {}),
      ...(input.onLog ? { onLog: input.onLog } : {}),
    });
    if (manifest.error) throw new HttpError(422, manifest.error.code, manifest.error.message);
    const entry = manifest.pages.find((p) => p.number === input.page);
    if (!entry) {
      if (manifest.nextPage !== undefined) throw new HttpError(503, 'OUT_OF_TIME', `page ${input.page} did not finish before the function's timeout: try again`);
      throw new HttpError(404, 'PAGE_OUT_OF_RANGE', `page=${input.page} is out of range: the document has ${manifest.pageCount} page${manifest.pageCount === 1 ? '' : 's'}`);
    }
    if (isPageFailure(entry)) throw new HttpError(422, entry.error.code, `page ${input.page}: ${entry.error.message}`);
    return { page: entry, stored, renderMs: performance.now() - started - storeMs, storeMs };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
