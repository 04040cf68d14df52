/**
 * The page function's IIIF routes (docs/iiif.md): Image API 3.0 level 2 per page, a
 * Presentation 3.0 manifest per document. In order: the route, the document token (signed
 * mode), the source's current etag (a re-upload is seen at once), the page sizes (cached in S3
 * beside the variants, opened once per source), then the answer: info.json from the sizes; an
 * image from the variant cache (hit), or on a miss cut from its level in /tmp when it is a tile
 * of info.json's grid (levels.ts: the level drawn once per container by a fresh MuPDF), else
 * drawn, that region only, by a fresh MuPDF; and stored. Small answers come back in the body
 * (a 302 would double a viewer's round trips per tile), large ones redirect to a presigned GET. Every answer carries CORS; images the
 * canonical and profile Link headers; all an ETag for 304s.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { LambdaFunctionURLEvent } from 'aws-lambda';
import type { PageConfig } from '../config/page.js';
import { RenderError } from '../engine/errors.js';
import { encodeRows, layoutOf } from '../encode/encoders.js';
import { cropTurn, tileRows } from '../encode/rows.js';
import { fullImageOf, levelGeometry, qualityFieldOf, WEBP_MAX_PIXELS, WEBP_MAX_SIDE, type PageBox, type PageGeometry, type PageRegion, type RenderOptions } from '../engine/options.js';
import { startRender, type FailedPage, type RenderedPage } from '../engine/render.js';
import { isLegacy, isPageFailure, variantFolderOf } from '../job/manifest.js';
import { isNotFound, isPreconditionFailed } from '../s3/errors.js';
import { generationPrefix, MAX_KEY_BYTES, outputLocation, skipReason, type OutputLocation } from '../s3/layout.js';
import { readManifest } from '../s3/manifest-store.js';
import { headCurrent, type SourceObject } from '../s3/source.js';
import { HttpError } from '../on-demand/errors.js';
import { VARIANT_TAG } from '../on-demand/render-variant.js';
import type { SecretSource } from '../on-demand/secret.js';
import { leaseSource, SourceCache } from '../on-demand/source-cache.js';
import { parseImageRequest, resolveImage, rotatedSize, sizeLimitsOf, type ResolvedImage, type SizeLimits } from './image-request.js';
import { imageInfo, IMAGE_CONTEXT, LEVEL2_PROFILE_URI, levelOf, presentationManifest } from './info.js';
import { LEVEL_BAND_BYTES, LevelCache, writeLevelFile, type LevelLease } from './levels.js';
import { identifierOf, parseIiifRoute, type IiifRoute } from './route.js';
import { eagerBoxesOf, parseSizes, SIZES_FILE, SIZES_SCHEMA, type DocumentSizes, type EagerBoxes } from './sizes.js';
import { verifyToken } from './token.js';
import type { PageResult } from '../on-demand/handler.js';

/**
 * The most an answer carries in its body: a Function URL answers at most 6 MB, and a body of
 * bytes goes base64 (4/3 larger) in the response's JSON. Larger images redirect.
 */
export const MAX_BODY_BYTES = 4 * 2 ** 20;
/**
 * Browsers and caches keep an answer this long, then revalidate (If-None-Match, a 304 for one
 * HeadObject): a re-upload shows within 5 minutes. Chosen over an etag in the identifier, which
 * would change every published manifest's, annotation's and bookmark's URL at each re-upload.
 */
export const IIIF_MAX_AGE_SECONDS = 300;
/** Sources whose sizes (or eager boxes) a warm container keeps: a viewer's tiles then cost no S3 read for them. */
const SIZES_MEMO_ENTRIES = 16;
/** Failed level ids remembered per container: 64 bytes each; past this many the list starts again. */
const MAX_FAILED_LEVELS = 1_000;
/** Where the level cache lives (lib/iiif/levels.ts): under /tmp, beside the source cache. */
export const LEVEL_CACHE_DIR = join(tmpdir(), 'iiif-levels');

export interface IiifDeps {
  s3: S3Client;
  cache: SourceCache;
  /** Default: a LevelCache in LEVEL_CACHE_DIR of IIIF_LEVEL_CACHE_MB. */
  levels?: LevelCache;
  secret: SecretSource | undefined;
  now: () => number;
  /** The largest answer in the body (default MAX_BODY_BYTES); tests lower it to see the redirect. */
  maxBodyBytes?: number;
}

export type IiifHandler = (event: LambdaFunctionURLEvent, timeLeftMs: (() => number) | undefined, log: Record<string, unknown>) => Promise<PageResult>;

export function createIiifHandler(config: PageConfig, deps: IiifDeps): IiifHandler {
  const { s3, cache } = deps;
  const levels = deps.levels ?? new LevelCache(LEVEL_CACHE_DIR, config.page.levelCacheBytes);
  /** Levels this container could not draw (see tileFromLevel): their tiles are drawn as regions. */
  const failedLevels = new Set<string>();
  const maxBodyBytes = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  const bucket = config.sourceBucket;
  const { iiifDpi, maxPagePixels } = { iiifDpi: config.page.iiifDpi, maxPagePixels: config.output.maxPagePixels };
  const limitsOf = (full: { width: number; height: number }): SizeLimits => sizeLimitsOf(full, maxPagePixels);
  /** Sizes of the last few sources, by key and etag. */
  const sizesMemo = new Map<string, DocumentSizes>();
  /** The eager manifest's page boxes of the last few sources (null: it has none for these bytes). */
  const eagerMemo = new Map<string, EagerBoxes | null>();

  const presign = (target: { bucket: string; key: string }): Promise<string> =>
    getSignedUrl(s3, new GetObjectCommand({ Bucket: target.bucket, Key: target.key }), { expiresIn: config.page.presignSeconds });

  return async (event, timeLeftMs, log) => {
    const method = event.requestContext?.http?.method;
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `method ${JSON.stringify(method ?? '')} is not allowed: use GET or HEAD`);
    const route = parseIiifRoute(event.rawPath ?? '/');
    log['iiif'] = route.kind;
    const skip = skipReason(route.key, config);
    if (skip) throw new HttpError(404, 'NOT_FOUND', `no IIIF resource for ${JSON.stringify(route.key)}: ${skip}`);
    log['key'] = route.key;
    if (deps.secret) verifyToken(await deps.secret(), route.key, route.token, deps.now(), config.page.signedUrlMaxSeconds);
    const base = `${config.page.iiifBaseUrl ?? `https://${event.requestContext.domainName}`}/iiif/3/${route.token !== undefined ? `~${route.token}/` : ''}`;
    const cacheControl = `${deps.secret ? 'private' : 'public'}, max-age=${IIIF_MAX_AGE_SECONDS}`;

    const current = await headCurrent(s3, bucket, route.key);
    if (!current) throw new HttpError(404, 'NOT_FOUND', `no object ${JSON.stringify(route.key)} in the bucket`);
    const out = outputLocation(bucket, route.key, config);
    const folder = generationPrefix(out, variantFolderOf(current.etag));
    const etagOf = (text: string): string => `"${createHash('sha256').update(`${current.etag}\n${text}`).digest('base64url').slice(0, 27)}"`;
    // If-None-Match compares weakly (RFC 9110 §13.1.2): W/ is not part of the tag.
    const opaque = (tag: string): string => tag.trim().replace(/^W\//, '');
    const notModified = (etag: string): boolean => (event.headers?.['if-none-match'] ?? '').split(',').some((tag) => opaque(tag) === opaque(etag) || tag.trim() === '*');

    if (route.kind === 'source') return redirect(await presign({ bucket, key: route.key }));
    if (route.kind === 'base') return { statusCode: 303, headers: { location: `${base}${route.identifier}/info.json`, 'cache-control': cacheControl }, body: '' };

    if (route.kind === 'manifest') {
      const sizes = await pageSizes(route.key, current, out, folder, log);
      const text = await eagerText(out, current.etag);
      const manifest = presentationManifest({
        id: `${base}${route.identifier}/manifest`,
        label: sizes.title ?? basename(route.key),
        rendering: `${base}${route.identifier}/source.pdf`,
        pages: sizes.boxes.map((box, index) => {
          const full = fullOf(box, index + 1);
          const service = `${base}${identifierOf(route.key, index + 1)}`;
          return { service, width: full.width, height: full.height, ...(text.has(index + 1) ? { text: `${service}/text.json` } : {}) };
        }),
        ...(sizes.outline ? { outline: sizes.outline } : {}),
      });
      if (sizes.outlineTruncated) log['outlineTruncated'] = true;
      const body = JSON.stringify(manifest);
      // Named by its bytes: the page text the eager render writes later (seeAlso), the label, the
      // base URL and the page sizes all change it. Named by the page count alone, a cache kept
      // the manifest without seeAlso after the text appeared, and a revalidation got a 304.
      const etag = etagOf(`manifest\n${body}`);
      if (notModified(etag)) return { statusCode: 304, headers: { etag, 'cache-control': cacheControl }, body: '' };
      if (Buffer.byteLength(body) <= maxBodyBytes) return json(manifest, 'http://iiif.io/api/presentation/3/context.json', etag);
      // A canvas is ~2 KB: past ~2,000 pages the manifest would not fit a Function URL's 6 MB
      // answer. Stored beside the variants (named by its bytes, removed by the eager clean-up
      // with them) and redirected to, as a large image is.
      const target = { bucket: out.bucket, key: `${folder}iiif-manifest-${createHash('sha256').update(body).digest('hex').slice(0, 16)}.json` };
      if ((await headSize(target)) === undefined) {
        await s3
          .send(new PutObjectCommand({ Bucket: target.bucket, Key: target.key, Body: body, ContentType: 'application/json', Tagging: `${VARIANT_TAG.key}=${VARIANT_TAG.value}`, IfNoneMatch: '*' }))
          .catch((err: unknown) => {
            if (!isPreconditionFailed(err)) throw err;
          });
      }
      log['manifest'] = 'redirect';
      return redirect(await presign(target));
    }

    const { pageCount, box } = await pageBox(route.key, route.page, current, out, folder, log);
    if (!box) throw new HttpError(404, 'PAGE_OUT_OF_RANGE', `page ${route.page} does not exist: the document has ${pageCount} page${pageCount === 1 ? '' : 's'}`);
    const full = fullOf(box, route.page);
    const id = `${base}${route.identifier}`;
    if (route.kind === 'text') {
      const text = await eagerText(out, current.etag);
      const key = text.get(route.page);
      if (!key) throw new HttpError(404, 'NOT_FOUND', `page ${route.page} has no text: the eager render writes it when PAGE_TEXT is on`);
      return redirect(await presign({ bucket: out.bucket, key }));
    }
    if (route.kind === 'info') {
      const etag = etagOf(`info\n${id}\n${full.width}x${full.height}`);
      if (notModified(etag)) return { statusCode: 304, headers: { etag, 'cache-control': cacheControl }, body: '' };
      return json(imageInfo(id, full, limitsOf(full)), IMAGE_CONTEXT, etag);
    }

    // An image.
    const resolved = resolveImage(parseImageRequest(...route.segments), full, limitsOf(full));
    const turned = rotatedSize(resolved);
    if (resolved.format === 'webp' && (Math.max(turned.width, turned.height) > WEBP_MAX_SIDE || turned.width * turned.height > WEBP_MAX_PIXELS)) {
      throw new HttpError(400, 'INVALID_REQUEST', `a webp image is at most ${WEBP_MAX_SIDE} px a side and ${WEBP_MAX_PIXELS} pixels: ${turned.width}x${turned.height} asked; use jpg or png`);
    }
    Object.assign(log, { page: route.page, canonical: resolved.canonical });
    const links = `<${id}/${resolved.canonical}>;rel="canonical", <${LEVEL2_PROFILE_URI}>;rel="profile"`;
    const normalized = resolved.canonical.replace('/color.', '/default.');
    const qualityOf = resolved.format === 'jpg' ? config.output.jpegQuality : resolved.format === 'webp' ? config.output.webpQuality : 0;
    const hash = createHash('sha256').update(`${normalized}\n${iiifDpi}\n${maxPagePixels}\n${qualityOf}`).digest('hex').slice(0, 16);
    // The cache's own name of the pixels (the request, IIIF_DPI, MAX_PAGE_PIXELS, the quality; the
    // folder: the renderer's major): after a configuration change a revalidation is a 200, not a
    // 304 for a tile drawn at another scale.
    // Weak: a tile cut from its level and the same tile drawn as a region (a container without
    // the level, or with no room for it) are the same image, not always the same bytes (MuPDF's
    // anti-aliasing at a region's edges, docs/iiif.md).
    const etag = `W/${etagOf(`image\n${route.page}\n${folder}\n${hash}`)}`;
    const imageHeaders = { 'content-type': contentTypeOf(resolved.format), link: links, etag, 'cache-control': cacheControl };
    if (notModified(etag)) return { statusCode: 304, headers: imageHeaders, body: '' };
    const target = { bucket: out.bucket, key: `${folder}iiif-${String(route.page).padStart(4, '0')}-${hash}.${resolved.format}` };
    if (Buffer.byteLength(target.key) > MAX_KEY_BYTES) throw new HttpError(422, 'KEY_TOO_LONG', `the image's key would exceed S3's ${MAX_KEY_BYTES} bytes: use a shorter source key`);

    const hit = await headSize(target);
    if (hit !== undefined) {
      log['cache'] = 'hit';
      if (hit > maxBodyBytes) return { ...redirect(await presign(target)), headers: { location: await presign(target), link: links, 'cache-control': 'private, max-age=60' } };
      const got = await s3.send(new GetObjectCommand({ Bucket: target.bucket, Key: target.key }));
      const bytes = await got.Body!.transformToByteArray();
      return { statusCode: 200, headers: { ...imageHeaders, 'x-page-cache': 'hit' }, body: Buffer.from(bytes).toString('base64'), isBase64Encoded: true };
    }
    log['cache'] = 'miss';
    // A tile of info.json's grid is cut from its level when the level fits the level cache (drawn
    // first if this container has not yet); any other image, or a level too large, is drawn as a region.
    const factor = levelOf(resolved, full);
    const leveled = factor === undefined ? undefined : await tileFromLevel(route.key, route.page, current, folder, full, factor, resolved, target, timeLeftMs, log);
    if (!leveled) log['levelCache'] ??= 'none';
    const bytes = leveled ? (leveled.byteLength <= maxBodyBytes ? leveled : undefined) : await drawImage(route.key, route.page, current, resolved, target, timeLeftMs, log);
    if (bytes === undefined) return { statusCode: 302, headers: { location: await presign(target), link: links, 'cache-control': 'private, max-age=60', 'x-page-cache': 'miss' }, body: '' };
    return { statusCode: 200, headers: { ...imageHeaders, 'x-page-cache': 'miss' }, body: bytes.toString('base64'), isBase64Encoded: true };

    function fullOf(box: PageBox, page: number): PageGeometry {
      const geometry = fullImageOf(box, iiifDpi, maxPagePixels);
      if (!geometry) throw new HttpError(422, 'PAGE_TOO_LARGE', `page ${page} exceeds ${maxPagePixels} pixels even at 1 dpi`);
      return geometry;
    }

    function json(body: unknown, context: string, etag: string): PageResult {
      // JSON-LD when the client asks for it (the IIIF validator's jsonld test), plain JSON otherwise.
      const ld = (event.headers?.['accept'] ?? '').includes('application/ld+json');
      return {
        statusCode: 200,
        headers: { 'content-type': ld ? `application/ld+json;profile="${context}"` : 'application/json', etag, 'cache-control': cacheControl },
        body: JSON.stringify(body),
      };
    }
  };

  function redirect(location: string): PageResult {
    return { statusCode: 302, headers: { location, 'cache-control': 'private, max-age=60' }, body: '' };
  }

  async function headSize(target: { bucket: string; key: string }): Promise<number | undefined> {
    try {
      return (await s3.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.key }))).ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The eager render's page text keys, when its manifest is of these source bytes. */
  async function eagerText(out: OutputLocation, etag: string): Promise<Map<number, string>> {
    const { manifest } = await readManifest(s3, out);
    const text = new Map<number, string>();
    if (!manifest || isLegacy(manifest) || manifest.source.etag !== etag) return text;
    for (const page of manifest.pages) if (!isPageFailure(page) && page.text) text.set(page.number, page.text.key);
    return text;
  }

  /**
   * One page's box, for info.json and images, and the page count (the box is absent past it).
   * From memory; else from the eager render's manifest when it is of these bytes and recorded
   * the page's box (pages[].box): nothing opened, no sizes file; else the document's sizes.
   * `log.sizes` says which: memo, eager (from the manifest, read once per warm container and
   * source), stored or opened.
   */
  async function pageBox(key: string, page: number, current: SourceObject, out: OutputLocation, folder: string, log: Record<string, unknown>): Promise<{ pageCount: number; box?: PageBox }> {
    const memoKey = `${key}\n${current.etag}`;
    const known = sizesMemo.get(memoKey);
    if (known) {
      log['sizes'] = 'memo';
      return { pageCount: known.pageCount, ...(known.boxes[page - 1] ? { box: known.boxes[page - 1]! } : {}) };
    }
    let eager = eagerMemo.get(memoKey);
    if (eager === undefined) {
      const { manifest } = await readManifest(s3, out);
      eager = eagerBoxesOf(manifest, current.etag) ?? null;
      remember(eagerMemo, memoKey, eager);
    }
    const box = eager?.boxes.get(page);
    if (eager && (box || page > eager.pageCount)) {
      log['sizes'] = 'eager';
      return { pageCount: eager.pageCount, ...(box ? { box } : {}) };
    }
    const sizes = await pageSizes(key, current, out, folder, log);
    return { pageCount: sizes.pageCount, ...(sizes.boxes[page - 1] ? { box: sizes.boxes[page - 1]! } : {}) };
  }

  /** Every page's box, the title and the outline: from memory, from S3 beside the variants, or the document opened once (and stored). */
  async function pageSizes(key: string, current: SourceObject, out: OutputLocation, folder: string, log: Record<string, unknown>): Promise<DocumentSizes> {
    const memoKey = `${key}\n${current.etag}`;
    const memo = sizesMemo.get(memoKey);
    if (memo) {
      log['sizes'] = 'memo';
      return memo;
    }
    const sizesKey = `${folder}${SIZES_FILE}`;
    let sizes: DocumentSizes | undefined;
    let stale = false;
    try {
      const got = await s3.send(new GetObjectCommand({ Bucket: out.bucket, Key: sizesKey }));
      sizes = parseSizes(await got.Body!.transformToString());
      // Damaged, or of an older schema (no outline): opened again and replaced.
      stale = !sizes;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (sizes) log['sizes'] = 'stored';
    else {
      log['sizes'] = 'opened';
      sizes = await withSource(key, current, async (path) => {
        const job = await startRender(path, { ...config.output, pages: [], pageBoxes: true });
        await job.close();
        return {
          schema: SIZES_SCHEMA,
          pageCount: job.pageCount,
          boxes: [...(job.pageBoxes ?? [])],
          ...(job.title ? { title: job.title } : {}),
          ...(job.outline ? { outline: [...job.outline] } : {}),
          ...(job.outlineTruncated ? { outlineTruncated: true as const } : {}),
        };
      });
      const put = { Bucket: out.bucket, Key: sizesKey, Body: JSON.stringify(sizes), ContentType: 'application/json', Tagging: `${VARIANT_TAG.key}=${VARIANT_TAG.value}` };
      await s3.send(new PutObjectCommand(stale ? put : { ...put, IfNoneMatch: '*' })).catch((err: unknown) => {
        if (!isPreconditionFailed(err)) throw err;
      });
    }
    remember(sizesMemo, memoKey, sizes);
    return sizes;
  }

  function remember<T>(memo: Map<string, T>, key: string, value: T): void {
    if (memo.size >= SIZES_MEMO_ENTRIES) memo.delete(memo.keys().next().value!);
    memo.set(key, value);
  }

  /** The source from the warm cache (or S3), for `use`; document errors as the page URLs give them. */
  async function withSource<T>(key: string, current: SourceObject, use: (path: string) => Promise<T>): Promise<T> {
    const lease = await leaseSource(cache, s3, bucket, key, current);
    try {
      return await use(lease.path);
    } catch (err) {
      if (err instanceof RenderError && err.permanent) throw new HttpError(422, err.code, err.message);
      throw err;
    } finally {
      await lease.release();
    }
  }

  /**
   * A miss: the region drawn by a fresh MuPDF into a file in /tmp, stored with If-None-Match: *
   * (of concurrent misses the first stored wins). Returns the bytes when they fit a body.
   */
  async function drawImage(
    key: string,
    page: number,
    current: SourceObject,
    image: ResolvedImage,
    target: { bucket: string; key: string },
    timeLeftMs: (() => number) | undefined,
    log: Record<string, unknown>,
  ): Promise<Buffer | undefined> {
    const region: PageRegion = {
      ...image.region,
      width: image.width,
      height: image.height,
      rotate: image.rotation.degrees,
      mirror: image.rotation.mirror,
      quality: image.quality === 'default' ? 'color' : image.quality,
    };
    const format = image.format === 'jpg' ? 'jpeg' : image.format;
    const scratch = await mkdtemp(join(tmpdir(), 'iiif-'));
    try {
      const file = join(scratch, 'image');
      const started = performance.now();
      await renderPageOf(key, page, current, { format, region }, timeLeftMs, async (result) => {
        await pipeline(result.body, createWriteStream(file, { mode: 0o600 }));
      });
      const size = (await stat(file)).size;
      log['renderMs'] = Math.round(performance.now() - started);
      log['bytes'] = size;
      await putImage(target, createReadStream(file), size, image, page, current);
      return size <= maxBodyBytes ? await readFile(file) : undefined;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /**
   * A miss on a tile of level `factor`: its pixels read from the level's file (the level drawn
   * first, whole, by a fresh MuPDF when this container does not have it), mirrored, turned and
   * made gray as a drawn tile is (cropTurn, tileRows), encoded by the format's encoder, and
   * stored as drawImage stores. Undefined when the level does not fit the level cache: the
   * caller draws the region.
   */
  async function tileFromLevel(
    key: string,
    page: number,
    current: SourceObject,
    folder: string,
    full: PageGeometry,
    factor: number,
    image: ResolvedImage,
    target: { bucket: string; key: string },
    timeLeftMs: (() => number) | undefined,
    log: Record<string, unknown>,
  ): Promise<Buffer | undefined> {
    const started = performance.now();
    // The source's bytes (the folder names its etag and the renderer's major), the page, its full image and the scale.
    const id = createHash('sha256').update(`${bucket}\n${key}\n${folder}\n${page}\n${full.dpi}\n${full.width}x${full.height}\n${factor}`).digest('hex');
    if (failedLevels.has(id)) {
      log['levelCache'] = 'failed-before';
      return undefined;
    }
    // The level draw may take half the time left: the region can still be drawn in the rest.
    const levelTimeLeft = timeLeftMs && ((): number => timeLeftMs() / 2 + 1_500);
    let lease: LevelLease | undefined;
    try {
      lease = await levels.acquire(id, current.etag, levelGeometry(full, factor), (path) =>
        renderPageOf(key, page, current, { format: 'png', level: factor, bandBytes: LEVEL_BAND_BYTES }, levelTimeLeft, async (result) => {
          await writeLevelFile(path, { width: result.width, height: result.height, channels: result.color === 'gray' ? 1 : 3 }, current.etag, result.body);
        }),
      );
    } catch (err) {
      // A level that cannot be drawn (out of time on a dense page, the disk full, the page
      // failing) costs this tile nothing but the attempt: its region is drawn, as before the
      // level cache. Remembered, so this container's later tiles of that level go straight to
      // their regions instead of drawing the level again.
      // Remembered only when it would fail again: out of time or failed by the page (a 503 or a
      // 422), or the disk full; a failed download or a crashed worker may not recur.
      const lasting = (err instanceof HttpError && (err.status === 503 || err.status === 422)) || (err as NodeJS.ErrnoException).code === 'ENOSPC';
      if (lasting) {
        if (failedLevels.size >= MAX_FAILED_LEVELS) failedLevels.clear();
        failedLevels.add(id);
      }
      log['levelCache'] = 'failed';
      log['levelError'] = err instanceof Error ? err.message : String(err);
      return undefined;
    }
    if (!lease) return undefined;
    let pixels: Uint8Array;
    try {
      // Not `level`: the structured logger keeps that key for the log level and drops it.
      log['levelCache'] = lease.drawn ? 'drawn' : 'cached';
      log['levelFactor'] = factor;
      pixels = lease.read({ x: image.region.x / factor, y: image.region.y / factor, w: image.width, h: image.height });
      if (lease.raster.channels === 1) pixels = grayToRgb(pixels);
    } finally {
      lease.release();
    }
    const { width, height } = rotatedSize(image);
    const format = image.format === 'jpg' ? 'jpeg' : image.format;
    const packed = cropTurn(pixels, image.width, 0, 0, image.width, image.height, image.rotation.degrees, image.rotation.mirror);
    const rows = tileRows(packed, width, height, image.quality === 'default' ? 'color' : image.quality, layoutOf(format));
    const bytes = await encodeRows(format, rows.rows, { width, height, channels: rows.channels, quality: config.output[qualityFieldOf(format) ?? 'jpegQuality'] });
    log['renderMs'] = Math.round(performance.now() - started);
    log['bytes'] = bytes.byteLength;
    await putImage(target, bytes, bytes.byteLength, image, page, current);
    return bytes;
  }

  /** One page of the source drawn by a fresh MuPDF (a region or a level, as `options` say), its result handed to `take`; failures as HTTP errors. */
  async function renderPageOf(
    key: string,
    page: number,
    current: SourceObject,
    options: Pick<RenderOptions, 'format' | 'region' | 'level' | 'bandBytes'>,
    timeLeftMs: (() => number) | undefined,
    take: (result: RenderedPage) => Promise<void>,
  ): Promise<void> {
    await withSource(key, current, async (path) => {
      const job = await startRender(
        path,
        { ...config.output, ...options, dpi: iiifDpi, maxPages: 0, pages: [{ from: page, to: page }], pageTimeoutMs: config.pageTimeoutMs },
        timeLeftMs ? { deadline: Date.now() + timeLeftMs() - 3_000 } : {},
      );
      try {
        for await (const result of job) {
          if (!result.ok) throw failureOf(result, page);
          await take(result);
          await result.finished;
        }
      } finally {
        await job.close();
      }
    });
  }

  /** An image into the variant cache, with If-None-Match: * (of concurrent misses the first stored wins). */
  async function putImage(target: { bucket: string; key: string }, body: Buffer | Readable, size: number, image: ResolvedImage, page: number, current: SourceObject): Promise<void> {
    await s3
      .send(
        new PutObjectCommand({
          Bucket: target.bucket,
          Key: target.key,
          Body: body,
          ContentLength: size,
          ContentType: contentTypeOf(image.format),
          CacheControl: 'private, max-age=31536000, immutable',
          Metadata: { 'source-etag': current.etag, page: String(page), iiif: image.canonical },
          Tagging: `${VARIANT_TAG.key}=${VARIANT_TAG.value}`,
          IfNoneMatch: '*',
        }),
      )
      .catch((err: unknown) => {
        if (!isPreconditionFailed(err)) throw err;
      });
  }
}

function failureOf(result: FailedPage, page: number): HttpError {
  return new HttpError(result.deadline ? 503 : 422, result.deadline ? 'OUT_OF_TIME' : result.error.code, `page ${page}: ${result.error.message}`);
}

/** A gray level's pixels as RGB (a tile's: 786 KB at most), for the one tile rule (tileRows). */
function grayToRgb(gray: Uint8Array): Uint8Array {
  const rgb = new Uint8Array(gray.length * 3);
  for (let i = 0, j = 0; i < gray.length; i++, j += 3) rgb[j] = rgb[j + 1] = rgb[j + 2] = gray[i]!;
  return rgb;
}

function contentTypeOf(format: 'jpg' | 'png' | 'webp'): string {
  return format === 'jpg' ? 'image/jpeg' : `image/${format}`;
}
