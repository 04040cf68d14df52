/**
 * IIIF from the page function end to end: the bundled artifact in a Lambda container, handed
 * Function URL events, on the local S3 and SSM server. info.json, tiles (their pixels against
 * the full image), the cache and 304s, errors as the spec says, the Presentation manifest, and
 * signed mode's document token; and the eager clean-up removes what IIIF stored.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import type { S3Client } from '@aws-sdk/client-s3';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { everyService } from '../lib/aws/endpoint.js';
import { makeToken } from '../lib/iiif/token.js';
import { loadPageConfig } from '../lib/config/page.js';
import { parseManifest, type Manifest } from '../lib/job/manifest.js';
import { logger } from '../lib/observability.js';
import { createPageHandler, type PageResult } from '../lib/on-demand/handler.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { s3PutEvent } from '../lib/s3/event.js';
import { createSsmClient } from '../lib/ssm/client.js';
import { buildAll } from '../tools/build.js';
import { functionUrlEvent } from '../tools/function-url.js';
import { LambdaContainer } from '../tools/lambda-container.js';
import { loadTemplate, templateFunction } from '../tools/template.js';
import { CORPUS, createBucket, getText, listKeys, putObject, resetS3, s3Endpoint, testConfig, testS3Client } from './support/s3.js';

const template = loadTemplate();
const fn = templateFunction(template, 'PageFunction');
const BUCKET = String(template.Parameters!['BucketName']!.Default);
const KEY = 'incoming/papers/trace monkey.pdf';
const ID = `${encodeURIComponent(KEY)};2`;
const BASE = 'https://iiif.example.org';
const SECRET = 'a-test-secret-of-32-characters!!';
const pdf = (name: string) => readFile(join(CORPUS, name));

async function startPage(extraEnv: Record<string, string> = {}): Promise<LambdaContainer> {
  const { container, initError } = await LambdaContainer.start(template, fn, {
    extraEnv: { S3_ENDPOINT: s3Endpoint(), IIIF_BASE_URL: BASE, ...extraEnv },
    memoryMb: 1024,
  });
  if (initError) throw new Error(`PageFunction did not start: ${JSON.stringify(initError.payload)}`);
  return container;
}

async function get(container: LambdaContainer, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<PageResult> {
  const outcome = await container.invoke(functionUrlEvent(method, path, headers));
  expect(outcome.ok, JSON.stringify(outcome.payload)).toBe(true);
  return outcome.payload as PageResult;
}

const bodyBytes = (result: PageResult): Buffer => (result.isBase64Encoded ? Buffer.from(String(result.body), 'base64') : Buffer.from(String(result.body)));
const png = (result: PageResult) => PNG.sync.read(bodyBytes(result));

describe('IIIF Image API 3.0 and Presentation 3.0 from the page function', () => {
  let s3: S3Client;
  let page: LambdaContainer;

  beforeAll(async () => {
    await buildAll({ only: ['PageFunction'] });
    s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    await putObject(s3, BUCKET, KEY, await pdf('tracemonkey-paper-14p.pdf'));
    page = await startPage({ IIIF_DPI: '100' });
  }, 120_000);
  afterAll(async () => {
    await page?.close();
  });

  it('info.json: the page at IIIF_DPI, level 2, tiles and sizes, CORS; JSON-LD when asked; the base URI 303s to it', { timeout: 60_000 }, async () => {
    const result = await get(page, `/iiif/3/${ID}/info.json`);
    expect(result.statusCode, String(result.body)).toBe(200);
    expect(result.headers!['access-control-allow-origin']).toBe('*');
    expect(result.headers!['content-type']).toBe('application/json');
    const info = JSON.parse(String(result.body));
    // Letter at 100 dpi.
    expect(info).toMatchObject({ id: `${BASE}/iiif/3/${ID}`, type: 'ImageService3', profile: 'level2', width: 850, height: 1100, protocol: 'http://iiif.io/api/image' });
    expect(info.tiles).toEqual([{ width: 512, height: 512, scaleFactors: [1, 2, 4] }]);
    expect(info.sizes).toEqual([
      { width: 213, height: 275 },
      { width: 425, height: 550 },
    ]);
    expect(info.extraFeatures).toContain('mirroring');
    expect(info.extraFormats).toEqual(['webp']);
    const ld = await get(page, `/iiif/3/${ID}/info.json`, { accept: 'application/ld+json' });
    expect(ld.headers!['content-type']).toBe('application/ld+json;profile="http://iiif.io/api/image/3/context.json"');
    // Unchanged since: 304.
    const again = await get(page, `/iiif/3/${ID}/info.json`, { 'if-none-match': String(result.headers!['etag']) });
    expect(again.statusCode).toBe(304);
    const base = await get(page, `/iiif/3/${ID}`);
    expect([base.statusCode, base.headers!['location']]).toEqual([303, `${BASE}/iiif/3/${ID}/info.json`]);
    // No ;N is page 1.
    const first = JSON.parse(String((await get(page, `/iiif/3/${encodeURIComponent(KEY)}/info.json`)).body));
    expect(first.id).toBe(`${BASE}/iiif/3/${encodeURIComponent(KEY)}`);
  });

  it('a tile is the same pixels as the full image there; its second request is a cache hit; Link headers; ETag 304', { timeout: 120_000 }, async () => {
    const full = await get(page, `/iiif/3/${ID}/full/max/0/default.png`);
    expect(full.statusCode, String(full.body)).toBe(200);
    const fullPng = png(full);
    expect([fullPng.width, fullPng.height]).toEqual([850, 1100]);
    const tile = await get(page, `/iiif/3/${ID}/512,512,338,512/max/0/default.png`);
    expect(tile.statusCode).toBe(200);
    expect(tile.headers!['x-page-cache']).toBe('miss');
    expect(tile.headers!['link']).toBe(`<${BASE}/iiif/3/${ID}/512,512,338,512/max/0/default.png>;rel="canonical", <http://iiif.io/api/image/3/level2.json>;rel="profile"`);
    const tilePng = png(tile);
    expect([tilePng.width, tilePng.height]).toEqual([338, 512]);
    let over2 = 0;
    for (let y = 0; y < 512; y++) {
      for (let x = 0; x < 338; x++) {
        const t = (y * 338 + x) * 4;
        const f = ((512 + y) * 850 + 512 + x) * 4;
        if (Math.abs(tilePng.data[t]! - fullPng.data[f]!) > 2 || Math.abs(tilePng.data[t + 2]! - fullPng.data[f + 2]!) > 2) over2++;
      }
    }
    expect(over2).toBeLessThanOrEqual(338 * 512 * 0.03);
    const hit = await get(page, `/iiif/3/${ID}/512,512,338,512/max/0/default.png`);
    expect([hit.statusCode, hit.headers!['x-page-cache']]).toEqual([200, 'hit']);
    expect(bodyBytes(hit).equals(bodyBytes(tile))).toBe(true);
    const notModified = await get(page, `/iiif/3/${ID}/512,512,338,512/max/0/default.png`, { 'if-none-match': String(tile.headers!['etag']) });
    expect(notModified.statusCode).toBe(304);
    // A scaled, turned, gray jpg and a webp.
    const small = await get(page, `/iiif/3/${ID}/0,0,512,512/256,/90/gray.jpg`);
    expect([small.statusCode, small.headers!['content-type']]).toEqual([200, 'image/jpeg']);
    const webp = await get(page, `/iiif/3/${ID}/full/!200,200/!0/default.webp`);
    expect([webp.statusCode, bodyBytes(webp).subarray(8, 12).toString()]).toEqual([200, 'WEBP']);
  });

  it('errors: 400 for a bad parameter, 404 for an unknown identifier or page, 501 for a feature not offered; JSON with CORS', { timeout: 60_000 }, async () => {
    const cases: [string, number][] = [
      [`/iiif/3/${ID}/frobni/max/0/default.jpg`, 400],
      [`/iiif/3/${ID}/full/frobni/0/default.jpg`, 400],
      [`/iiif/3/${ID}/full/max/abcd/default.jpg`, 400],
      [`/iiif/3/${ID}/full/max/0/frobni.jpg`, 400],
      [`/iiif/3/${ID}/full/max/0/default.xyz`, 400],
      [`/iiif/3/${ID}/full/2000,/0/default.jpg`, 400],
      [`/iiif/3/${ID}/full/max/45/default.jpg`, 501],
      [`/iiif/3/${ID}/full/max/0/default.tif`, 501],
      [`/iiif/3/${encodeURIComponent(KEY)};15/info.json`, 404],
      [`/iiif/3/${encodeURIComponent('incoming/nothing.pdf')}/info.json`, 404],
      [`/iiif/3/a/b/full/max/0/default.jpg`, 404],
      [`/iiif/3/a%2Fb/full/max/0/default.jpg`, 404],
      [`/iiif/3/[frob]/full/max/0/default.jpg`, 404],
    ];
    for (const [path, status] of cases) {
      const result = await get(page, path);
      expect(result.statusCode, `${path}: ${String(result.body)}`).toBe(status);
      expect(result.headers!['content-type'], path).toBe('application/json');
      expect(result.headers!['access-control-allow-origin'], path).toBe('*');
      expect(JSON.parse(String(result.body)).error.message.length, path).toBeGreaterThan(10);
    }
  });

  it('the Presentation manifest: a Canvas per page sized as its image, painted by it with its ImageService3; the PDF as rendering; text as seeAlso once the eager render wrote it', { timeout: 120_000 }, async () => {
    const result = await get(page, `/iiif/3/${encodeURIComponent(KEY)}/manifest`);
    expect(result.statusCode, String(result.body)).toBe(200);
    const manifest = JSON.parse(String(result.body));
    const id = `${BASE}/iiif/3/${encodeURIComponent(KEY)}/manifest`;
    expect(manifest).toMatchObject({ '@context': 'http://iiif.io/api/presentation/3/context.json', id, type: 'Manifest' });
    expect(manifest.label.none[0]).toBeTruthy();
    expect(manifest.items).toHaveLength(14);
    const canvas = manifest.items[1];
    expect(canvas).toMatchObject({ id: `${id}/canvas/2`, type: 'Canvas', width: 850, height: 1100 });
    const annotation = canvas.items[0].items[0];
    expect(annotation).toMatchObject({ type: 'Annotation', motivation: 'painting', target: `${id}/canvas/2` });
    expect(annotation.body.service).toEqual([{ id: `${BASE}/iiif/3/${ID}`, type: 'ImageService3', profile: 'level2' }]);
    expect(manifest.rendering[0]).toMatchObject({ id: `${BASE}/iiif/3/${encodeURIComponent(KEY)}/source.pdf`, format: 'application/pdf' });
    // tracemonkey has no outline (`mutool show … outline` lists nothing): no structures.
    expect(manifest.structures).toBeUndefined();
    const source = await get(page, `/iiif/3/${encodeURIComponent(KEY)}/source.pdf`);
    expect(source.statusCode).toBe(302);
    expect(canvas.seeAlso).toBeUndefined();

    // The eager render with page text: seeAlso appears, and its URL redirects to the text; its commit removes nothing IIIF stored for these bytes.
    const before = (await listKeys(s3, BUCKET, 'rendered/')).filter((k) => k.includes('/iiif-'));
    expect(before.length).toBeGreaterThan(3);
    await createRenderHandler(testConfig({ SOURCE_BUCKET: BUCKET, PAGE_TEXT: 'true', DPI: '20' }), s3)(s3PutEvent(BUCKET, KEY));
    const after = (await listKeys(s3, BUCKET, 'rendered/')).filter((k) => k.includes('/iiif-'));
    expect(after).toEqual(before);
    const withText = JSON.parse(String((await get(page, `/iiif/3/${encodeURIComponent(KEY)}/manifest`)).body));
    expect(withText.items[1].seeAlso[0].id).toBe(`${BASE}/iiif/3/${ID}/text.json`);
    expect((await get(page, `/iiif/3/${ID}/text.json`)).statusCode).toBe(302);

    // A re-upload: the eager render's clean-up removes the old bytes' IIIF images and sizes.
    await putObject(s3, BUCKET, KEY, await pdf('arabic-rotations-4p.pdf'));
    await createRenderHandler(testConfig({ SOURCE_BUCKET: BUCKET, DPI: '20' }), s3)(s3PutEvent(BUCKET, KEY));
    expect((await listKeys(s3, BUCKET, 'rendered/')).filter((k) => before.includes(k))).toEqual([]);
    const fresh = JSON.parse(String((await get(page, `/iiif/3/${encodeURIComponent(KEY)}/manifest`)).body));
    expect(fresh.items).toHaveLength(4);
  });
});

describe('IIIF in signed mode: a document token in the path', () => {
  const PARAMETER = '/s3-pdf-render/test-iiif-secret';

  it('info.json\'s id carries the token so every tile does; no, a wrong, expired or another document\'s token is a 403', { timeout: 120_000 }, async () => {
    const s3 = testS3Client();
    await buildAll({ only: ['PageFunction'] });
    await resetS3();
    await createBucket(s3, BUCKET);
    await createSsmClient({ endpoints: everyService(s3Endpoint()) }).send(new PutParameterCommand({ Name: PARAMETER, Value: SECRET, Type: 'SecureString', Overwrite: true }));
    await putObject(s3, BUCKET, KEY, await pdf('arabic-rotations-4p.pdf'));
    const page = await startPage({ PAGE_URL_AUTH_TYPE: 'NONE', PAGE_SIGNING_PARAMETER: PARAMETER, IIIF_DPI: '50' });
    try {
      const later = Math.floor(Date.now() / 1000) + 600;
      const token = makeToken(SECRET, KEY, later);
      const info = await get(page, `/iiif/3/~${token}/${ID}/info.json`);
      expect(info.statusCode, String(info.body)).toBe(200);
      const id = JSON.parse(String(info.body)).id as string;
      expect(id).toBe(`${BASE}/iiif/3/~${token}/${ID}`);
      const tile = await get(page, `${id.slice(BASE.length)}/0,0,100,100/max/0/default.jpg`);
      expect(tile.statusCode).toBe(200);
      const manifest = JSON.parse(String((await get(page, `/iiif/3/~${token}/${encodeURIComponent(KEY)}/manifest`)).body));
      expect(manifest.items[0].items[0].items[0].body.service[0].id).toBe(`${BASE}/iiif/3/~${token}/${encodeURIComponent(KEY)};1`);
      const cases: [string, string][] = [
        [`/iiif/3/${ID}/info.json`, 'SIGNATURE_MISSING'],
        [`/iiif/3/~${makeToken('another-secret-of-32-characters!', KEY, later)}/${ID}/info.json`, 'SIGNATURE_INVALID'],
        [`/iiif/3/~${token.replace(String(later), String(later + 1))}/${ID}/info.json`, 'SIGNATURE_INVALID'],
        [`/iiif/3/~${makeToken(SECRET, 'incoming/other.pdf', later)}/${ID}/info.json`, 'SIGNATURE_INVALID'],
        [`/iiif/3/~${makeToken(SECRET, KEY, Math.floor(Date.now() / 1000) - 1)}/${ID}/info.json`, 'SIGNATURE_EXPIRED'],
        [`/iiif/3/~garbage/${ID}/info.json`, 'SIGNATURE_INVALID'],
        // The page URLs' maximum lifetime holds for tokens too (SIGNED_URL_MAX_SECONDS, 7 days by default).
        [`/iiif/3/~${makeToken(SECRET, KEY, Math.floor(Date.now() / 1000) + 8 * 24 * 3600)}/${ID}/info.json`, 'SIGNATURE_EXPIRY_TOO_FAR'],
      ];
      for (const [path, code] of cases) {
        const result = await get(page, path);
        expect(result.statusCode, path).toBe(403);
        expect(JSON.parse(String(result.body)).error.code, path).toBe(code);
        expect(result.headers!['access-control-allow-origin']).toBe('*');
      }
    } finally {
      await page.close();
    }
  });
});

describe('IIIF manifests too large for a body', () => {
  it('a manifest over the body limit is stored beside the variants and answered by a 302 to it', { timeout: 120_000 }, async () => {
    const s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    await putObject(s3, BUCKET, KEY, await pdf('tracemonkey-paper-14p.pdf'));
    const config = loadPageConfig({ SOURCE_BUCKET: BUCKET, S3_ENDPOINT: s3Endpoint(), IIIF_BASE_URL: BASE, IIIF_DPI: '100' });
    // 14 canvases are ~28 KB: over a 10 KB limit as 3,000 pages are over the real 4 MB one.
    const handler = createPageHandler(config, { s3, maxBodyBytes: 10_000 });
    const result = await handler(functionUrlEvent('GET', `/iiif/3/${encodeURIComponent(KEY)}/manifest`));
    expect(result.statusCode, String(result.body)).toBe(302);
    expect(result.headers!['access-control-allow-origin']).toBe('*');
    const stored = (await listKeys(s3, BUCKET, 'rendered/')).filter((k) => /\/iiif-manifest-[0-9a-f]{16}\.json$/.test(k));
    expect(stored).toHaveLength(1);
    const manifest = (await (await fetch(String(result.headers!['location']))).json()) as { id: string; items: unknown[] };
    expect(manifest.id).toBe(`${BASE}/iiif/3/${encodeURIComponent(KEY)}/manifest`);
    expect(manifest.items).toHaveLength(14);
    // Asked again: the stored one, not a second object.
    expect((await handler(functionUrlEvent('GET', `/iiif/3/${encodeURIComponent(KEY)}/manifest`))).statusCode).toBe(302);
    expect((await listKeys(s3, BUCKET, 'rendered/')).filter((k) => k.includes('/iiif-manifest-'))).toEqual(stored);
    // The eager render's clean-up of a re-upload removes it with the variants.
    await createRenderHandler(testConfig({ SOURCE_BUCKET: BUCKET, DPI: '20' }), s3)(s3PutEvent(BUCKET, KEY));
    await putObject(s3, BUCKET, KEY, await pdf('arabic-rotations-4p.pdf'));
    await createRenderHandler(testConfig({ SOURCE_BUCKET: BUCKET, DPI: '20' }), s3)(s3PutEvent(BUCKET, KEY));
    expect((await listKeys(s3, BUCKET, 'rendered/')).filter((k) => stored.includes(k))).toEqual([]);
  });
});

describe('IIIF image ETags', () => {
  it('an image\'s ETag changes with IIIF_DPI and the format\'s quality: after a configuration change a revalidation is a 200, not a 304', { timeout: 120_000 }, async () => {
    const s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    await putObject(s3, BUCKET, KEY, await pdf('tracemonkey-paper-14p.pdf'));
    const handlerOf = (env: Record<string, string>) => createPageHandler(loadPageConfig({ SOURCE_BUCKET: BUCKET, S3_ENDPOINT: s3Endpoint(), IIIF_BASE_URL: BASE, ...env }), { s3 });
    const tile = `/iiif/3/${ID}/0,0,100,100/max/0/default.jpg`;
    const first = await handlerOf({ IIIF_DPI: '100', JPEG_QUALITY: '80' })(functionUrlEvent('GET', tile));
    expect(first.statusCode, String(first.body)).toBe(200);
    const etag = String(first.headers!['etag']);
    // The same settings: 304.
    expect((await handlerOf({ IIIF_DPI: '100', JPEG_QUALITY: '80' })(functionUrlEvent('GET', tile, { 'if-none-match': etag }))).statusCode).toBe(304);
    for (const env of [{ IIIF_DPI: '150', JPEG_QUALITY: '80' }, { IIIF_DPI: '100', JPEG_QUALITY: '60' }]) {
      const again = await handlerOf(env)(functionUrlEvent('GET', tile, { 'if-none-match': etag }));
      expect(again.statusCode, JSON.stringify(env)).toBe(200);
      expect(again.headers!['etag'], JSON.stringify(env)).not.toBe(etag);
    }
  });
});

describe('IIIF upscaling bounded by the full image', () => {
  it('info.json\'s maxWidth, maxHeight and maxArea are the full image; ^max of a 1-px region stops there; a ^ size beyond is a 400', { timeout: 120_000 }, async () => {
    const s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    await putObject(s3, BUCKET, KEY, await pdf('tracemonkey-paper-14p.pdf'));
    const handler = createPageHandler(loadPageConfig({ SOURCE_BUCKET: BUCKET, S3_ENDPOINT: s3Endpoint(), IIIF_BASE_URL: BASE, IIIF_DPI: '100' }), { s3 });
    const get = (path: string) => handler(functionUrlEvent('GET', path));
    const info = JSON.parse(String((await get(`/iiif/3/${ID}/info.json`)).body));
    expect(info).toMatchObject({ width: 850, height: 1100, maxWidth: 850, maxHeight: 1100, maxArea: 850 * 1100 });
    for (const size of ['^2000,', '^,1101', '^851,851', '^pct:100000']) {
      const result = await get(`/iiif/3/${ID}/0,0,1,1/${size}/0/default.jpg`);
      expect(result.statusCode, size).toBe(400);
    }
    expect((await get(`/iiif/3/${ID}/full/^1000,/0/default.jpg`)).statusCode).toBe(400);
    // ^max: the region scaled to the limits (850 across), not to 40 Mpx.
    const max = await get(`/iiif/3/${ID}/0,0,1,1/^max/0/default.jpg`);
    expect(max.statusCode, String(max.body)).toBe(200);
    expect(max.headers!['link']).toContain(`/0,0,1,1/^850,850/0/default.jpg>;rel="canonical"`);
    // Within the full image, ^ still zooms a region.
    expect((await get(`/iiif/3/${ID}/0,0,100,100/^400,/0/default.jpg`)).statusCode).toBe(200);
  });
});

/** The `sizes` field of each 'page request' log line the handler wrote while `run` ran: how a page's size was found. */
async function sizesLogged(run: () => Promise<void>): Promise<unknown[]> {
  const info = vi.spyOn(logger, 'info');
  try {
    await run();
    return info.mock.calls.filter((call) => call[0] === 'page request').map((call) => (call[1] as Record<string, unknown>)['sizes']);
  } finally {
    info.mockRestore();
  }
}

describe('IIIF structures: the outline as Ranges', () => {
  it('a document with an outline has structures (nested Ranges of its Canvases); its sizes file keeps the outline, and one of the schema before it is opened again and replaced', { timeout: 120_000 }, async () => {
    const s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    const key = 'incoming/scans/multipage.pdf';
    await putObject(s3, BUCKET, key, await pdf('multipage-9000px-image.pdf'));
    const handlerOf = () => createPageHandler(loadPageConfig({ SOURCE_BUCKET: BUCKET, S3_ENDPOINT: s3Endpoint(), IIIF_BASE_URL: BASE }), { s3 });
    const path = `/iiif/3/${encodeURIComponent(key)}/manifest`;
    const id = `${BASE}${path}`;
    const canvas = (n: number) => ({ id: `${id}/canvas/${n}`, type: 'Canvas' });
    // `mutool show multipage-9000px-image.pdf outline`: Chapter II (1), Huge Page (2), Wikipedia image (3) > Indented image (4).
    const expected = [
      { id: `${id}/range/1`, type: 'Range', label: { none: ['Chapter II'] }, items: [canvas(1)] },
      { id: `${id}/range/2`, type: 'Range', label: { none: ['Huge Page'] }, items: [canvas(2)] },
      { id: `${id}/range/3`, type: 'Range', label: { none: ['Wikipedia image'] }, items: [canvas(3), { id: `${id}/range/3-1`, type: 'Range', label: { none: ['Indented image'] }, items: [canvas(4)] }] },
    ];
    let manifest: { structures?: unknown; items: unknown[] } | undefined;
    expect(await sizesLogged(async () => void (manifest = JSON.parse(String((await handlerOf()(functionUrlEvent('GET', path))).body))))).toEqual(['opened']);
    expect(manifest!.items).toHaveLength(6);
    expect(manifest!.structures).toEqual(expected);
    const [sizesKey] = (await listKeys(s3, BUCKET, 'rendered/')).filter((k) => k.endsWith('/iiif-pages.json'));
    const stored = JSON.parse(await getText(s3, BUCKET, sizesKey!));
    expect([stored.schema, stored.outline[2].children]).toEqual([2, [{ title: 'Indented image', page: 4 }]]);
    // Another container reads the stored file: the same structures, nothing opened.
    expect(await sizesLogged(async () => void (manifest = JSON.parse(String((await handlerOf()(functionUrlEvent('GET', path))).body))))).toEqual(['stored']);
    expect(manifest!.structures).toEqual(expected);
    // A sizes file of the schema before the outline (no schema, no outline) is not trusted: opened again, replaced.
    await putObject(s3, BUCKET, sizesKey!, JSON.stringify({ pageCount: stored.pageCount, boxes: stored.boxes }));
    expect(await sizesLogged(async () => void (manifest = JSON.parse(String((await handlerOf()(functionUrlEvent('GET', path))).body))))).toEqual(['opened']);
    expect(manifest!.structures).toEqual(expected);
    expect(JSON.parse(await getText(s3, BUCKET, sizesKey!)).schema).toBe(2);
  });
});

describe('IIIF page sizes from the eager manifest', () => {
  it('with an eager manifest of the same bytes, info.json and tiles open no document and store no sizes file; the sizes are those of the opened path', { timeout: 180_000 }, async () => {
    const s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    const eagerKey = 'incoming/eager/trace.pdf';
    const openedKey = 'incoming/opened/trace.pdf';
    for (const key of [eagerKey, openedKey]) await putObject(s3, BUCKET, key, await pdf('tracemonkey-paper-14p.pdf'));
    await createRenderHandler(testConfig({ SOURCE_BUCKET: BUCKET, DPI: '20' }), s3)(s3PutEvent(BUCKET, eagerKey));
    const committed = parseManifest(await getText(s3, BUCKET, 'rendered/eager/trace.pdf/manifest.json')) as Manifest;
    expect(committed.status).toBe('complete');
    // Each page's box in points, as MuPDF bounds it: Letter.
    expect(committed.pages.map((p) => ('box' in p ? p.box : undefined))).toEqual(Array.from({ length: 14 }, () => [0, 0, 612, 792]));

    const handler = createPageHandler(loadPageConfig({ SOURCE_BUCKET: BUCKET, S3_ENDPOINT: s3Endpoint(), IIIF_BASE_URL: BASE, IIIF_DPI: '100' }), { s3 });
    const infos = new Map<string, string[]>();
    const logged = await sizesLogged(async () => {
      for (const key of [eagerKey, openedKey]) {
        const bodies: string[] = [];
        for (let n = 1; n <= 14; n++) {
          const result = await handler(functionUrlEvent('GET', `/iiif/3/${encodeURIComponent(key)};${n}/info.json`));
          expect(result.statusCode, String(result.body)).toBe(200);
          bodies.push(String(result.body).replaceAll(encodeURIComponent(key), '{key}'));
        }
        infos.set(key, bodies);
      }
    });
    expect(logged).toEqual([...Array(14).fill('eager'), 'opened', ...Array(13).fill('memo')]);
    expect(infos.get(eagerKey)).toEqual(infos.get(openedKey));
    expect(JSON.parse(infos.get(eagerKey)![1]!)).toMatchObject({ width: 850, height: 1100 });
    // A tile and a page past the end, from the eager manifest too; no sizes file for those bytes.
    const more = await sizesLogged(async () => {
      expect((await handler(functionUrlEvent('GET', `/iiif/3/${encodeURIComponent(eagerKey)};3/0,0,512,512/256,/0/default.jpg`))).statusCode).toBe(200);
      expect((await handler(functionUrlEvent('GET', `/iiif/3/${encodeURIComponent(eagerKey)};15/info.json`))).statusCode).toBe(404);
    });
    expect(more).toEqual(['eager', 'eager']);
    expect((await listKeys(s3, BUCKET, 'rendered/eager/')).filter((k) => k.endsWith('/iiif-pages.json'))).toEqual([]);
    expect((await listKeys(s3, BUCKET, 'rendered/opened/')).filter((k) => k.endsWith('/iiif-pages.json'))).toHaveLength(1);
  });
});
