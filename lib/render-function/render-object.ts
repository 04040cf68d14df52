/**
 * One S3 object, from event to a committed manifest: the render function's use case.
 * Decides, in this order: is the key ours to render; is the event's object still the current
 * one; is the render already up to date; can its outputs be stored at all (key length, /tmp
 * space). Then it downloads, renders into the generation's own keys and commits by
 * compare-and-swap (render-pages.ts). Permanent problems end in a `failed` manifest; anything
 * transient throws, so the request is retried (and a partial render resumes where it stopped).
 */
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { prefixesOverlap, type Config } from '../config/env.js';
import { completionAnnouncer, type CompletionEvents } from '../events/completion.js';
import { isSettled } from '../job/freshness.js';
import { failedManifest, generationOf, isLegacy, optionsHash, type ManifestSource, type StoredManifest } from '../job/manifest.js';
import type { JobOptions, OptionsSource } from '../job/options.js';
import { objectOptions, optionsSourceOf } from '../config/object-options.js';
import { countEventBridgeKeyForm, countFailure, logger } from '../observability.js';
import { isPreconditionFailed } from '../s3/errors.js';
import { keyLengthProblem, MAX_KEY_BYTES, outputLocation, skipReason, type OutputLocation } from '../s3/layout.js';
import { manifestKey, readManifest } from '../s3/manifest-store.js';
import { readPart } from '../s3/part-store.js';
import { downloadTo, headCurrent, plainEtag, type SourceObject } from '../s3/source.js';
import type { WorkQueue } from '../sqs/work-queue.js';
import type { WorkRequest } from '../work/messages.js';
import { ManifestCommitter } from './commit.js';
import { notCommitted, type RenderObjectOutcome } from './outcome.js';
import { renderPages, type PagePlan } from './render-pages.js';

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
  /** The render queue: continuations and fan-out ranges go there. Without it, no fan-out, and out of time throws. */
  queue?: WorkQueue;
  /** Where final commits are announced (EVENT_BUS); without it, none are. */
  events?: CompletionEvents;
}

/** Time kept back to finish uploads and commit the manifest: the page deadline is this far before the end. */
export const FINISH_RESERVE_MS = 5_000;
/** A long render commits a `partial` manifest this often, so a killed invocation loses at most this much work. */
export const CHECKPOINT_MS = 60_000;


/** Why the event's object is not the current one, or null when it is (or the event does not say). */
function supersededBy(request: WorkRequest, current: SourceObject): string | null {
  if (request.etag && plainEtag(request.etag) !== current.etag) return `the event is for etag ${plainEtag(request.etag)}; the key now holds ${current.etag}`;
  if (!request.etag && request.versionId && current.versionId && request.versionId !== current.versionId) {
    return `the event is for version ${request.versionId}; the current version is ${current.versionId}`;
  }
  return null;
}

export type { RenderObjectOutcome };
export { OutOfTimeError } from './outcome.js';

/**
 * The object a request names, and the request with the key that named it: the key as given,
 * then, for an EventBridge key holding %XX, its percent-decoded form (lib/work/messages.ts).
 * Which form matched is logged and counted. A string: why nothing is rendered (a key that is
 * not ours, or deleted before we got to it: retrying will not change that).
 */
async function locateSource(s3: S3Client, asked: WorkRequest, config: Config): Promise<{ request: WorkRequest; current: SourceObject } | string> {
  const { decodedKey, ...request } = asked;
  const skip = skipReason(request.key, config);
  const current = skip ? undefined : await headCurrent(s3, request.bucket, request.key);
  if (decodedKey === undefined) return current ? { request, current } : (skip ?? 'the source object no longer exists');
  const report = (form: 'as-given' | 'decoded' | 'neither'): void => {
    logger.info('EventBridge key holding %XX', { bucket: request.bucket, key: request.key, decodedKey, form });
    countEventBridgeKeyForm(form);
  };
  if (current) {
    report('as-given');
    return { request, current };
  }
  const decodedSkip = skipReason(decodedKey, config);
  const decoded = decodedSkip ? undefined : await headCurrent(s3, request.bucket, decodedKey);
  if (decoded) {
    report('decoded');
    return { request: { ...request, key: decodedKey }, current: decoded };
  }
  report('neither');
  return skip ?? decodedSkip ?? 'the source object no longer exists';
}

export async function renderObject(asked: WorkRequest, deps: RenderObjectDeps): Promise<RenderObjectOutcome> {
  const { s3, config } = deps;
  if (config.sourceBucket && asked.bucket !== config.sourceBucket) return { kind: 'ignored', reason: `bucket "${asked.bucket}" is not SOURCE_BUCKET "${config.sourceBucket}"` };
  const located = await locateSource(s3, asked, config);
  if (typeof located === 'string') return { kind: 'ignored', reason: located };
  const { request, current } = located;
  const { bucket, key } = request;
  const out = outputLocation(bucket, key, config);
  if (out.bucket === bucket && prefixesOverlap(config)) return { kind: 'ignored', reason: 'OUTPUT_BUCKET is the source bucket and the prefixes overlap: outputs would trigger renders' };
  const stale = supersededBy(request, current);
  if (stale) {
    // A late or redelivered message for an older object: its render, killed after the current
    // render's clean-up ran, may have left its generation behind. The current render's clean-up, again.
    const { manifest: committed } = await readManifest(s3, out);
    if (committed && !isLegacy(committed) && committed.source.etag === current.etag) await new ManifestCommitter(s3, out, { bucket, key }, undefined).settle(committed);
    return { kind: 'superseded', reason: stale };
  }
  // The object's own options (its render-* metadata) over the function's settings.
  const chosen = objectOptions(config.output, current.metadata);
  const options = chosen.ok ? chosen.options : config.output;
  const optionsSource = optionsSourceOf(current.metadata);
  const generation = generationOf(current.etag, optionsHash(options));
  const tooLong = keyLengthProblem(out, generation);
  if (tooLong === 'manifest') return { kind: 'ignored', reason: `its output keys would exceed S3's ${MAX_KEY_BYTES} bytes, manifest.json included: nothing can be written` };

  const previous = await readManifest(s3, out);
  const source: ManifestSource = { bucket, key, ...(current.versionId ? { versionId: current.versionId } : {}), etag: current.etag, size: current.size };
  const announcer = completionAnnouncer(deps.events, { s3, out }, previous, deps.timeLeftMs ? { timeLeftMs: deps.timeLeftMs } : {});
  const committer = new ManifestCommitter(s3, out, { bucket, key }, previous.etag, announcer);
  // Up to date, or failed (or a final partial) as this renderer release gives it again (NOT_PDF,
  // ENCRYPTED, INVALID_OPTIONS for the same metadata…): a render would only commit the same result
  // anew, under another renderId, after its event may have gone (lib/job/freshness.ts, isSettled).
  if (!deps.force && !request.force && previous.manifest && isSettled(previous.manifest, current, options, optionsSource, !chosen.ok)) {
    // A duplicate or redelivered message: the commit's clean-up may have been cut short (a crash right after the PUT).
    // Killed between the commit and PutEvents, or out of attempts: the event is sent again unless its marker says it went.
    await committer.settle(previous.manifest, previous.etag);
    return { kind: 'up-to-date', manifestKey: manifestKey(out) };
  }
  // Before rendering: a render with the function's settings must not hide bad metadata.
  if (!chosen.ok) return commitFailed(committer, out, source, options, optionsSource, 'INVALID_OPTIONS', chosen.message);
  if (tooLong === 'outputs') {
    return commitFailed(committer, out, source, options, optionsSource, 'KEY_TOO_LONG', `the output keys under ${out.prefix} would exceed S3's limit of ${MAX_KEY_BYTES} bytes: use a shorter key`);
  }
  const workRoot = tmpdir();
  const free = await freeBytes(workRoot);
  if (current.size > free) {
    return commitFailed(committer, out, source, options, optionsSource, 'TOO_LARGE', `the file is ${current.size} bytes; ${workRoot} has ${free} bytes free (raise the function's ephemeral storage)`);
  }
  const plan = await planPages(s3, request, previous.manifest, out, generation);

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
        return commitFailed(committer, out, source, options, optionsSource, 'TOO_LARGE', `the file (${current.size} bytes) did not fit in ${workRoot}`);
      }
      throw err;
    }
    logger.info('source downloaded', { bucket, key, versionId: current.versionId, size: current.size, downloadMs: Math.round(performance.now() - downloadStarted), from: plan.from, range: plan.range });
    return await renderPages({
      s3,
      config,
      request,
      source,
      options,
      optionsSource,
      warnings: chosen.warnings,
      out,
      generation,
      committer,
      filePath,
      plan,
      ...(deps.queue ? { queue: deps.queue } : {}),
      ...(deps.timeLeftMs ? { timeLeftMs: deps.timeLeftMs } : {}),
      reserveMs: deps.reserveMs ?? FINISH_RESERVE_MS,
      checkpointMs: deps.checkpointMs ?? CHECKPOINT_MS,
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** A permanent problem decided before rendering: a `failed` manifest, committed like any render. */
async function commitFailed(
  committer: ManifestCommitter,
  out: OutputLocation,
  source: ManifestSource,
  options: JobOptions,
  optionsSource: OptionsSource,
  code: string,
  message: string,
): Promise<RenderObjectOutcome> {
  const manifest = failedManifest(source, options, { code, message }, new Date(), optionsSource);
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

/**
 * What this invocation renders: a fan-out range (from its part, if an earlier invocation of the
 * range stored one), the rest of a document whose partial manifest of this generation says
 * where to resume, or a fresh document (which may fan out).
 */
async function planPages(s3: S3Client, request: WorkRequest, previous: StoredManifest | null, out: OutputLocation, generation: string): Promise<PagePlan> {
  const work = { hop: request.pages?.hop ?? 0, spentMs: request.pages?.spentMs ?? 0 };
  const range = request.pages?.range;
  if (range) {
    const part = await readPart(s3, out, generation, range);
    const from = part?.nextPage ?? range.from;
    return { range, from, kept: part ? part.pages.filter((p) => p.number < from) : [], work, mayFanOut: false };
  }
  if (previous && !isLegacy(previous) && previous.generation === generation && previous.status === 'partial' && previous.nextPage) {
    const from = previous.nextPage;
    return { from, kept: previous.pages.filter((p) => p.number < from), work, mayFanOut: false };
  }
  return { from: 1, kept: [], work, mayFanOut: true };
}
