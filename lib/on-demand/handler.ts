/**
 * The page function's handler (Function URL, payload format 2.0): one page of one PDF at the
 * size and format asked, as a 302 to a short-lived presigned GET of the image in S3, so large
 * images never stream through Lambda. In order: the method and key, the signature (when the
 * function requires one), the options; then the source's current etag; a cached variant (hit);
 * the eager render's own page or what its manifest already knows (page count, a document
 * error); and only then a render of that one page (miss) from the warm source cache. Every
 * other answer is JSON with a status and a stable code (errors.ts).
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Context, LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import type { PageConfig } from '../config/page.js';
import { errorMessage } from '../engine/errors.js';
import type { ManifestSource } from '../job/manifest.js';
import { countPageDocumentError, logger, METRIC, metrics, MetricUnit } from '../observability.js';
import { createS3Client } from '../s3/client.js';
import { MAX_KEY_BYTES, outputLocation } from '../s3/layout.js';
import { readManifest } from '../s3/manifest-store.js';
import { headCurrent } from '../s3/source.js';
import { createSsmClient } from '../ssm/client.js';
import { createIiifHandler } from '../iiif/handler.js';
import type { LevelCache } from '../iiif/levels.js';
import { isIiifPath } from '../iiif/route.js';
import { HttpError } from './errors.js';
import { renderVariant } from './render-variant.js';
import { parseEnvelope, parseKey, parseOptions } from './request.js';
import { ssmSecret, type SecretSource } from './secret.js';
import { verifySignature } from './signature.js';
import { leaseSource, SourceCache } from './source-cache.js';
import { eagerAnswer, variantExists, variantKey } from './variant.js';

export interface PageHandlerDeps {
  s3?: S3Client;
  /** The URL-signing secret; default: the SSM parameter of the configuration, when it names one. */
  secret?: SecretSource;
  cache?: SourceCache;
  /** The IIIF level cache (lib/iiif/levels.ts); default: in /tmp, of IIIF_LEVEL_CACHE_MB. */
  levels?: LevelCache;
  now?: () => number;
  /** The largest IIIF answer in the body (default MAX_BODY_BYTES in lib/iiif/handler.ts). */
  maxBodyBytes?: number;
}

/** Always the structured form (a status, headers, a body), never Lambda's bare-string shorthand. */
export type PageResult = Exclude<LambdaFunctionURLResult, string>;

export type PageHandler = (event: LambdaFunctionURLEvent, context?: Partial<Pick<Context, 'getRemainingTimeInMillis' | 'awsRequestId'>>) => Promise<PageResult>;

/** How a request was answered, for the log line, the metrics and the X-Page-Cache header. */
type Served = 'hit' | 'eager' | 'miss';

/** Where the warm source cache lives: under /tmp, beside nothing else of ours. */
export const SOURCE_CACHE_DIR = join(tmpdir(), 'pdf-sources');

export function createPageHandler(config: PageConfig, deps: PageHandlerDeps = {}): PageHandler {
  const s3 = deps.s3 ?? createS3Client(config);
  const { signingParameter } = config.page;
  const secret = deps.secret ?? (signingParameter ? ssmSecret(createSsmClient(config), signingParameter) : undefined);
  const cache = deps.cache ?? new SourceCache(SOURCE_CACHE_DIR, config.page.sourceCacheBytes);
  const now = deps.now ?? Date.now;
  const bucket = config.sourceBucket;
  const iiif = createIiifHandler(config, { s3, cache, secret, now, ...(deps.levels ? { levels: deps.levels } : {}), ...(deps.maxBodyBytes !== undefined ? { maxBodyBytes: deps.maxBodyBytes } : {}) });

  const redirect = async (out: { bucket: string; key: string }, served: Served): Promise<PageResult> => {
    const location = await getSignedUrl(s3, new GetObjectCommand({ Bucket: out.bucket, Key: out.key }), { expiresIn: config.page.presignSeconds });
    return {
      statusCode: 302,
      // The browser may reuse the redirect a while, never past the presigned URL's own life.
      headers: { location, 'cache-control': `private, max-age=${Math.min(60, Math.floor(config.page.presignSeconds / 2))}`, 'x-page-cache': served },
      body: '',
    };
  };

  async function serve(event: LambdaFunctionURLEvent, timeLeftMs: (() => number) | undefined, log: Record<string, unknown>): Promise<PageResult> {
    const envelope = parseEnvelope(event);
    const key = parseKey(envelope.rawKey, config);
    log['key'] = key;
    if (secret) verifySignature(await secret(), key, envelope.params, now(), config.page.signedUrlMaxSeconds);
    const { page, options } = parseOptions(envelope.params, config.output);
    Object.assign(log, { page, format: options.format, dpi: options.dpi });

    const current = await headCurrent(s3, bucket, key);
    if (!current) throw new HttpError(404, 'NOT_FOUND', `no object ${JSON.stringify(key)} in the bucket`);
    const out = outputLocation(bucket, key, config);
    const target = { bucket: out.bucket, key: variantKey(out, current.etag, page, options) };
    if (Buffer.byteLength(target.key) > MAX_KEY_BYTES) throw new HttpError(422, 'KEY_TOO_LONG', `the variant's key would exceed S3's ${MAX_KEY_BYTES} bytes: use a shorter source key`);
    if (await variantExists(s3, target.bucket, target.key)) return done(await redirect(target, 'hit'), 'hit');

    const eager = eagerAnswer((await readManifest(s3, out)).manifest, current.etag, page, options);
    if (eager.kind === 'page') return done(await redirect({ bucket: out.bucket, key: eager.key }, 'eager'), 'eager');
    if (eager.kind === 'out-of-range') throw new HttpError(404, 'PAGE_OUT_OF_RANGE', `page=${page} is out of range: the document has ${eager.pageCount} page${eager.pageCount === 1 ? '' : 's'}`);
    if (eager.kind === 'document-error') throw new HttpError(422, eager.code, eager.message);

    // A miss: the source from the warm cache (or S3), that one page drawn and stored.
    const source: ManifestSource = { bucket, key, ...(current.versionId ? { versionId: current.versionId } : {}), etag: current.etag, size: current.size };
    const downloadStarted = performance.now();
    const lease = await leaseSource(cache, s3, bucket, key, current);
    Object.assign(log, { warmSource: lease.warm, downloadMs: Math.round(performance.now() - downloadStarted) });
    try {
      const rendered = await renderVariant({
        s3,
        filePath: lease.path,
        source,
        page,
        options,
        target,
        pageTimeoutMs: config.pageTimeoutMs,
        ...(timeLeftMs ? { timeLeftMs } : {}),
        onLog: (level, message) => logger[level === 'error' ? 'error' : 'warn'](`MuPDF: ${message}`, { key, page }),
      });
      Object.assign(log, { renderMs: Math.round(rendered.renderMs), storeMs: Math.round(rendered.storeMs), width: rendered.page.width, height: rendered.page.height, bytes: rendered.page.bytes, stored: rendered.stored });
      logger.info('page rendered', log);
    } finally {
      await lease.release();
    }
    return done(await redirect(target, 'miss'), 'miss');

    function done(result: PageResult, served: Served): PageResult {
      log['cache'] = served;
      metrics.addMetric(served === 'miss' ? METRIC.cacheMiss : METRIC.cacheHit, MetricUnit.Count, 1);
      return result;
    }
  }

  return async (event, context) => {
    const started = performance.now();
    if (context?.awsRequestId) logger.appendKeys({ requestId: context.awsRequestId });
    const timeLeftMs = context?.getRemainingTimeInMillis ? () => context.getRemainingTimeInMillis!() : undefined;
    const log: Record<string, unknown> = {};
    const isIiif = isIiifPath(event.rawPath ?? '/');
    let result: PageResult;
    try {
      result = await (isIiif ? iiif(event, timeLeftMs, log) : serve(event, timeLeftMs, log));
    } catch (err) {
      result = errorResult(err, log);
    }
    // IIIF viewers fetch from other origins: every IIIF answer, errors too, says who may read it.
    if (isIiif) result = { ...result, headers: { ...result.headers, 'access-control-allow-origin': config.page.corsOrigin } };
    const ms = Math.round(performance.now() - started);
    logger.info('page request', { ...log, status: result.statusCode, ms });
    metrics.addMetric(METRIC.pageLatency, MetricUnit.Milliseconds, ms);
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    // HEAD: the same status and headers, no body.
    return event.requestContext?.http?.method === 'HEAD' ? { ...result, body: '', isBase64Encoded: false } : result;
  };
}

function errorResult(err: unknown, log: Record<string, unknown>): PageResult {
  let status: number;
  let code: string;
  let message: string;
  if (err instanceof HttpError) {
    ({ status, code, message } = err);
    // A document's permanent problem, under the page function's own metric: the render
    // function's Failures alarm is about renders, and a viewer may ask for a broken PDF often.
    if (status === 422) countPageDocumentError(code);
  } else {
    status = 500;
    code = 'INTERNAL_ERROR';
    message = 'the page could not be served: try again';
    logger.error('page request failed', { ...log, error: errorMessage(err) });
  }
  // Every 5xx (a crash, a page out of time): the page function's alarm. Not a 501: a IIIF
  // request for a feature the spec lets us refuse (a .tif, a 45° rotation) is the client's.
  if (status >= 500 && status !== 501) metrics.addMetric(METRIC.pageServerErrors, MetricUnit.Count, 1);
  log['code'] = code;
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: JSON.stringify({ error: { status, code, message } }),
  };
}
