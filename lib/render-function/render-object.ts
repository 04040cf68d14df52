/**
 * One S3 object, from event to a committed manifest: the render function's use case.
 * Decides, in this order: is the key ours to render; is the event's object still the current
 * one; is the render already up to date; can its outputs be stored at all (key length, /tmp
 * space). Then it downloads, renders into the generation's own keys and commits by
 * compare-and-swap. Permanent problems end in a `failed` manifest; anything transient throws,
 * so the event is retried (and a partial render resumes where it stopped).
 */
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { prefixesOverlap, type Config } from '../config/env.js';
import type { OutputOptions } from '../engine/options.js';
import { classify } from '../job/freshness.js';
import { generationOf, isLegacy, isPageFailure, optionsHash, pickOutputOptions, type Manifest, type ManifestSource } from '../job/manifest.js';
import { failedManifest, runRenderJob } from '../job/run-job.js';
import { countFailure, logger, metrics, MetricUnit } from '../observability.js';
import { isPreconditionFailed } from '../s3/errors.js';
import { keyLengthProblem, MAX_KEY_BYTES, outputLocation, skipReason, type OutputLocation } from '../s3/layout.js';
import { manifestKey, readManifest } from '../s3/manifest-store.js';
import { s3PageSink } from '../s3/page-store.js';
import { downloadTo, headCurrent, type SourceObject } from '../s3/source.js';
import { ManifestCommitter, type CommitResult } from './commit.js';

export interface RenderObjectRequest {
  bucket: string;
  /** Decoded key. */
  key: string;
  /** What the event says the object was: a later object under the key supersedes it. */
  versionId?: string;
  etag?: string;
}

export type RenderObjectOutcome =
  | { kind: 'ignored'; reason: string }
  | { kind: 'up-to-date'; manifestKey: string; reason?: string }
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
  /** How often a long render commits its progress as a `partial` manifest (default CHECKPOINT_MS). */
  checkpointMs?: number;
  /** Time kept back to store the last pages and commit (default FINISH_RESERVE_MS). */
  reserveMs?: number;
}

/** Thrown after a `partial` manifest was committed because time ran out: a retry resumes. */
export class OutOfTimeError extends Error {
  override readonly name = 'OutOfTimeError';
}

/** A checkpoint found the source replaced, or another delivery further along: stop rendering. */
class StopRendering extends Error {
  constructor(readonly result: Exclude<CommitResult, 'committed'>) {
    super(result);
  }
}

/** Time kept back to finish uploads and commit the manifest: the page deadline is this far before the end. */
export const FINISH_RESERVE_MS = 5_000;
/** A long render commits a `partial` manifest this often, so a killed invocation loses at most this much work. */
export const CHECKPOINT_MS = 60_000;

const stripQuotes = (etag: string): string => etag.replace(/"/g, '');

/** Why the event's object is not the current one, or null when it is (or the event does not say). */
function supersededBy(request: RenderObjectRequest, current: SourceObject): string | null {
  if (request.etag && stripQuotes(request.etag) !== current.etag) return `the event is for etag ${stripQuotes(request.etag)}; the key now holds ${current.etag}`;
  if (!request.etag && request.versionId && current.versionId && request.versionId !== current.versionId) {
    return `the event is for version ${request.versionId}; the current version is ${current.versionId}`;
  }
  return null;
}

export async function renderObject(request: RenderObjectRequest, deps: RenderObjectDeps): Promise<RenderObjectOutcome> {
  const { s3, config } = deps;
  const { bucket, key } = request;
  if (config.sourceBucket && bucket !== config.sourceBucket) return { kind: 'ignored', reason: `bucket "${bucket}" is not SOURCE_BUCKET "${config.sourceBucket}"` };
  const skip = skipReason(key, config);
  if (skip) return { kind: 'ignored', reason: skip };

  // Deleted before we got to it: nothing to render, and retrying will not change that.
  const current = await headCurrent(s3, bucket, key);
  if (!current) return { kind: 'ignored', reason: 'the source object no longer exists' };
  const stale = supersededBy(request, current);
  if (stale) return { kind: 'superseded', reason: stale };

  const out = outputLocation(bucket, key, config);
  if (out.bucket === bucket && prefixesOverlap(config)) return { kind: 'ignored', reason: 'OUTPUT_BUCKET is the source bucket and the prefixes overlap: outputs would trigger renders' };
  const options = pickOutputOptions(config.output);
  const generation = generationOf(current.etag, optionsHash(options));
  const tooLong = keyLengthProblem(out, generation);
  if (tooLong === 'manifest') return { kind: 'ignored', reason: `its output keys would exceed S3's ${MAX_KEY_BYTES} bytes, manifest.json included: nothing can be written` };

  const previous = await readManifest(s3, out);
  if (!deps.force && classify(previous.manifest, current, options, false).class === 'ok') return { kind: 'up-to-date', manifestKey: manifestKey(out) };
  const source: ManifestSource = { bucket, key, ...(current.versionId ? { versionId: current.versionId } : {}), etag: current.etag, size: current.size };
  const committer = new ManifestCommitter(s3, out, { bucket, key }, previous.etag);

  if (tooLong === 'outputs') {
    return commitFailed(committer, out, source, options, 'KEY_TOO_LONG', `the output keys under ${out.prefix} would exceed S3's limit of ${MAX_KEY_BYTES} bytes: use a shorter key`);
  }
  const workRoot = tmpdir();
  const free = await freeBytes(workRoot);
  if (current.size > free) {
    return commitFailed(committer, out, source, options, 'TOO_LARGE', `the file is ${current.size} bytes; ${workRoot} has ${free} bytes free (raise the function's ephemeral storage)`);
  }
  const resume =
    previous.manifest && !isLegacy(previous.manifest) && previous.manifest.generation === generation && previous.manifest.status === 'partial' && previous.manifest.nextPage
      ? previous.manifest
      : undefined;

  const workDir = await mkdtemp(join(workRoot, 'pdf-render-'));
  try {
    // The file name is ours, never the key's: keys are user input.
    const filePath = join(workDir, 'source.pdf');
    const downloadStarted = performance.now();
    try {
      await downloadTo(s3, bucket, key, current, filePath);
    } catch (err) {
      if (isPreconditionFailed(err)) return { kind: 'superseded', reason: 'the key was overwritten before the download' };
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
        return commitFailed(committer, out, source, options, 'TOO_LARGE', `the file (${current.size} bytes) did not fit in ${workRoot}`);
      }
      throw err;
    }
    logger.info('source downloaded', { bucket, key, versionId: current.versionId, size: current.size, downloadMs: Math.round(performance.now() - downloadStarted), resumeFrom: resume?.nextPage });

    let rendered;
    try {
      rendered = await runRenderJob({
        filePath,
        source,
        options: { ...config.output, ...(config.pageTimeoutMs ? { pageTimeoutMs: config.pageTimeoutMs } : {}) },
        ...(resume ? { resume } : {}),
        concurrency: config.uploadConcurrency,
        sink: s3PageSink(s3, out, generation, current.etag),
        ...(deps.timeLeftMs ? { timeLeftMs: deps.timeLeftMs, reserveMs: deps.reserveMs ?? FINISH_RESERVE_MS } : {}),
        checkpoint: {
          everyMs: deps.checkpointMs ?? CHECKPOINT_MS,
          async commit(partial) {
            const result = await committer.commit(partial);
            logger.info('progress committed', { bucket, key, result, nextPage: partial.nextPage });
            if (result !== 'committed') throw new StopRendering(result);
          },
        },
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
    } catch (err) {
      if (err instanceof StopRendering) return notCommitted(err.result, out);
      throw err;
    }
    const { manifest, stats, outOfTime } = rendered;
    const result = await committer.commit(manifest);
    if (result !== 'committed') return notCommitted(result, out);
    const summary = { bucket, key, status: manifest.status, generation, pageCount: manifest.pageCount, durationMs: manifest.durationMs, wasmHeapPeakBytes: stats.wasmHeapPeakBytes };
    if (manifest.error) {
      logger.error('document failed', { ...summary, code: manifest.error.code, detail: manifest.error.message });
      countFailure(manifest.error.code, 'document');
    } else {
      logger.info('document rendered', { ...summary, nextPage: manifest.nextPage, warnings: manifest.warnings });
    }
    if (outOfTime) throw new OutOfTimeError(`out of time: ${key} stored up to page ${manifest.nextPage! - 1}; the retry resumes at page ${manifest.nextPage}`);
    return { kind: 'rendered', manifestKey: manifestKey(out), manifest };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

function notCommitted(result: Exclude<CommitResult, 'committed'>, out: OutputLocation): RenderObjectOutcome {
  if (result === 'superseded') {
    logger.warn('source changed during the render; its own outputs removed, the manifest left to the newer object', { prefix: out.prefix });
    return { kind: 'superseded', reason: 'the source changed during the render' };
  }
  return { kind: 'up-to-date', manifestKey: manifestKey(out), reason: 'another delivery committed the same render' };
}

/** A permanent problem decided before rendering: a `failed` manifest, committed like any render. */
async function commitFailed(
  committer: ManifestCommitter,
  out: OutputLocation,
  source: ManifestSource,
  options: OutputOptions,
  code: string,
  message: string,
): Promise<RenderObjectOutcome> {
  const manifest = failedManifest(source, options, { code, message }, new Date());
  const result = await committer.commit(manifest);
  if (result !== 'committed') return notCommitted(result, out);
  logger.error('document failed', { bucket: source.bucket, key: source.key, code, detail: message });
  countFailure(code, 'document');
  return { kind: 'rendered', manifestKey: manifestKey(out), manifest };
}

/** Bytes free for this process under `dir`. */
async function freeBytes(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return stats.bavail * stats.bsize;
}
