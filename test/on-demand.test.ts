/**
 * The page function end to end: the bundled artifact (npm run build), in Lambda containers
 * (tools/lambda-container.ts), handed Function URL events (tools/function-url.ts), against the
 * local S3 and SSM server. Whether a request rendered is read from the function's own output:
 * its "page rendered" log line and its CacheHit / CacheMiss metrics (EMF).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import type { S3Client } from '@aws-sdk/client-s3';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { everyService } from '../lib/aws/endpoint.js';
import { loadPageConfig } from '../lib/config/page.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { variantFolderOf } from '../lib/job/manifest.js';
import { createPageHandler, type PageResult } from '../lib/on-demand/handler.js';
import { SourceCache } from '../lib/on-demand/source-cache.js';
import { sign } from '../lib/on-demand/signature.js';
import { s3PutEvent } from '../lib/s3/event.js';
import { createSsmClient } from '../lib/ssm/client.js';
import { buildAll } from '../tools/build.js';
import { functionUrlEvent } from '../tools/function-url.js';
import { LambdaContainer } from '../tools/lambda-container.js';
import { loadTemplate, templateFunction } from '../tools/template.js';
import { decodeWebp } from './engine/helpers.js';
import { readV2Manifest, renderedPages } from './support/manifests.js';
import { CORPUS, createBucket, listKeys, putObject, resetS3, s3Endpoint, testConfig, testS3Client } from './support/s3.js';

const template = loadTemplate();
const fn = templateFunction(template, 'PageFunction');
const BUCKET = String(template.Parameters!['BucketName']!.Default);
const KEY = 'incoming/papers/trace monkey.pdf';
const PATH = `/${encodeURIComponent(KEY)}`;
const SECRET = 'a-test-secret-of-32-characters!!';
const pdf = (name: string) => readFile(join(CORPUS, name));

/** A warm page function container whose output (logs, EMF metrics) is kept, request by request. */
class PageContainer {
  private output = '';
  private constructor(readonly container: LambdaContainer) {}

  static async start(extraEnv: Record<string, string> = {}): Promise<PageContainer> {
    const logs = new PassThrough();
    const { container, initError } = await LambdaContainer.start(template, fn, {
      extraEnv: { S3_ENDPOINT: s3Endpoint(), POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'false', ...extraEnv },
      logs,
      memoryMb: 1024,
    });
    if (initError) throw new Error(`PageFunction did not start: ${JSON.stringify(initError.payload)}`);
    const page = new PageContainer(container);
    logs.on('data', (chunk: Buffer) => (page.output += chunk.toString()));
    return page;
  }

  /** One request: the function's answer and what it wrote while answering it. */
  async request(path: string, method = 'GET'): Promise<{ result: PageResult; log: string }> {
    const from = this.output.length;
    const outcome = await this.container.invoke(functionUrlEvent(method, path));
    expect(outcome.ok, JSON.stringify(outcome.payload)).toBe(true);
    // The runtime's stdout pipe may trail its answer: wait for the request's own last line.
    for (let i = 0; i < 50 && !this.output.slice(from).includes('"page request"'); i++) await new Promise((r) => setTimeout(r, 20));
    return { result: outcome.payload as PageResult, log: this.output.slice(from) };
  }

  close(): Promise<unknown> {
    return this.container.close();
  }
}

const rendered = (log: string): boolean => log.includes('"page rendered"');
const metric = (log: string, name: string): boolean => new RegExp(`"Metrics":\\[[^\\]]*"Name":"${name}"`).test(log);

/** Follows the redirect and decodes the image (PNG with pngjs, WebP with libwebp's decoder): a torn or wrong file throws. */
async function fetchImage(result: PageResult, type: 'image/png' | 'image/webp' = 'image/png'): Promise<{ png: { width: number; height: number }; location: string }> {
  expect(result.statusCode, String(result.body)).toBe(302);
  const location = String(result.headers!['location']);
  const response = await fetch(location);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe(type);
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { png: type === 'image/png' ? PNG.sync.read(Buffer.from(bytes)) : await decodeWebp(bytes), location };
}

const variantKeys = async (s3: S3Client) => (await listKeys(s3, BUCKET, 'rendered/')).filter((k) => /\/variant-\d{4}-/.test(k));

describe('PageFunction, bundled, on the local S3', () => {
  let s3: S3Client;
  let page: PageContainer;

  beforeAll(async () => {
    await buildAll({ only: ['PageFunction'] });
    s3 = testS3Client();
  });
  beforeEach(async () => {
    await resetS3();
    await createBucket(s3, BUCKET);
    page = await PageContainer.start();
  });
  afterAll(async () => {
    await page?.close();
  });

  it('renders page 3 as a WebP 800 px wide, then serves it from the cache without rendering; HEAD answers alike', async () => {
    await putObject(s3, BUCKET, KEY, await pdf('tracemonkey-paper-14p.pdf'));
    try {
      const first = await page.request(`${PATH}?page=3&width=800&format=webp`);
      expect(first.result.headers!['x-page-cache']).toBe('miss');
      expect(rendered(first.log)).toBe(true);
      expect(metric(first.log, 'CacheMiss')).toBe(true);
      const { png, location } = await fetchImage(first.result, 'image/webp');
      // A Letter page (612 x 792 pt) 800 px wide, its aspect kept (to the pixel rounding).
      expect(png.width).toBe(800);
      expect(Math.abs(png.height - (800 * 792) / 612)).toBeLessThanOrEqual(1);
      expect(location).toMatch(/\/variant-0003-[0-9a-f]{16}\.webp\?/);

      const second = await page.request(`${PATH}?format=webp&page=3&width=800`);
      expect(second.result.headers!['x-page-cache']).toBe('hit');
      expect(rendered(second.log)).toBe(false);
      expect(metric(second.log, 'CacheHit')).toBe(true);
      expect((await fetchImage(second.result, 'image/webp')).png.width).toBe(800);
      expect(await variantKeys(s3)).toHaveLength(1);

      const head = await page.request(`${PATH}?page=3&width=800&format=webp`, 'HEAD');
      expect(head.result).toMatchObject({ statusCode: 302, body: '' });
      expect(rendered(head.log)).toBe(false);

      // Another page of the same document: drawn from the copy the container kept in its /tmp.
      expect(first.log).toContain('"warmSource":false');
      const other = await page.request(`${PATH}?page=4&width=800&format=webp&quality=60`);
      expect(other.result.headers!['x-page-cache']).toBe('miss');
      expect(other.log).toContain('"warmSource":true');
    } finally {
      await page.close();
    }
  });

  it('renders again after the source is replaced; the eager commit of the new source removes the old variants and keeps the new', async () => {
    await putObject(s3, BUCKET, KEY, await pdf('tracemonkey-paper-14p.pdf'));
    try {
      expect((await page.request(`${PATH}?page=2&dpi=50`)).result.headers!['x-page-cache']).toBe('miss');
      const [old] = await variantKeys(s3);
      const { etag } = await putObject(s3, BUCKET, KEY, await pdf('arabic-rotations-4p.pdf'));
      const again = await page.request(`${PATH}?page=2&dpi=50`);
      expect(again.result.headers!['x-page-cache']).toBe('miss');
      expect(rendered(again.log)).toBe(true);
      expect(await variantKeys(s3)).toHaveLength(2);

      await createRenderHandler(testConfig({ SOURCE_BUCKET: BUCKET }), s3)(s3PutEvent(BUCKET, KEY));
      const manifest = await readV2Manifest(s3, BUCKET, 'rendered/papers/trace monkey.pdf/manifest.json');
      expect(manifest).toMatchObject({ status: 'complete', source: { etag } });
      const left = await variantKeys(s3);
      expect(left).not.toContain(old);
      expect(left).toHaveLength(1);
      expect(left[0]).toContain(`/${variantFolderOf(etag)}/variant-0002-`);

      // What the eager render drew (the function's own settings) is served from its generation.
      const eager = await page.request(`${PATH}?page=2`);
      expect(eager.result.headers!['x-page-cache']).toBe('eager');
      expect(rendered(eager.log)).toBe(false);
      expect(String(eager.result.headers!['location'])).toContain(encodeURI(renderedPages(manifest)[1]!.key).replace(/%20/g, '%20'));
    } finally {
      await page.close();
    }
  });

  it('a IIIF 501 (a format or a rotation the spec lets us refuse) is not counted in PageServerErrors', async () => {
    await putObject(s3, BUCKET, KEY, await pdf('tracemonkey-paper-14p.pdf'));
    try {
      for (const path of [`/iiif/3/${encodeURIComponent(KEY)};2/full/max/0/default.tif`, `/iiif/3/${encodeURIComponent(KEY)};2/full/max/45/default.jpg`]) {
        const { result, log } = await page.request(path);
        expect(result.statusCode, path).toBe(501);
        expect(metric(log, 'PageLatency'), `${path}: metrics published`).toBe(true);
        expect(metric(log, 'PageServerErrors'), path).toBe(false);
      }
    } finally {
      await page.close();
    }
  });

  it('answers bad requests with a 4xx JSON error and never renders', async () => {
    await putObject(s3, BUCKET, KEY, await pdf('tracemonkey-paper-14p.pdf'));
    await putObject(s3, BUCKET, 'private/other.pdf', await pdf('arabic-rotations-4p.pdf'));
    await putObject(s3, BUCKET, 'incoming/locked.pdf', await pdf('password-libreoffice.pdf'));
    try {
      const cases: [string, string, number, string][] = [
        ['GET', `${PATH}?page=15`, 404, 'PAGE_OUT_OF_RANGE'],
        ['GET', `${PATH}?page=0`, 400, 'INVALID_REQUEST'],
        ['GET', `${PATH}?dpi=5000`, 400, 'INVALID_REQUEST'],
        ['GET', `${PATH}?format=gif`, 400, 'INVALID_REQUEST'],
        ['GET', `${PATH}?size=big`, 400, 'INVALID_REQUEST'],
        ['GET', `/${encodeURIComponent('incoming/nothing here.pdf')}`, 404, 'NOT_FOUND'],
        ['GET', `/${encodeURIComponent('private/other.pdf')}`, 403, 'KEY_NOT_SERVED'],
        ['GET', `/${encodeURIComponent('incoming/../private/other.pdf')}`, 403, 'KEY_NOT_SERVED'],
        ['POST', PATH, 405, 'METHOD_NOT_ALLOWED'],
      ];
      for (const [method, path, status, code] of cases) {
        const { result, log } = await page.request(path, method);
        expect(result.statusCode, `${method} ${path}: ${String(result.body)}`).toBe(status);
        expect(result.headers!['content-type']).toBe('application/json');
        const body = JSON.parse(String(result.body)) as { error: { code: string; message: string } };
        expect(body.error.code, path).toBe(code);
        expect(body.error.message.length).toBeGreaterThan(10);
        expect(rendered(log), path).toBe(false);
      }
      // The page count comes from the document itself the first time: an out-of-range page opened it, drew nothing.
      expect(await variantKeys(s3)).toEqual([]);
      // A document that cannot be rendered: its code, as a manifest would record it.
      const locked = await page.request(`/${encodeURIComponent('incoming/locked.pdf')}?page=1`);
      expect(locked.result.statusCode).toBe(422);
      expect(JSON.parse(String(locked.result.body)).error.code).toBe('ENCRYPTED');
      // Counted under the page function's own metric, not the render function's Failures (its alarm).
      expect(metric(locked.log, 'PageDocumentErrors')).toBe(true);
      expect(metric(locked.log, 'Failures')).toBe(false);
      expect(locked.log).toContain('"warmSource"');

      // Once the eager render has a manifest, its page count and document error answer without opening the source.
      const render = createRenderHandler(testConfig({ SOURCE_BUCKET: BUCKET }), s3);
      await render(s3PutEvent(BUCKET, 'incoming/locked.pdf'));
      await render(s3PutEvent(BUCKET, KEY));
      const known = await page.request(`/${encodeURIComponent('incoming/locked.pdf')}?page=2&dpi=30`);
      expect([known.result.statusCode, JSON.parse(String(known.result.body)).error.code]).toEqual([422, 'ENCRYPTED']);
      const beyond = await page.request(`${PATH}?page=15&dpi=30`);
      expect([beyond.result.statusCode, JSON.parse(String(beyond.result.body)).error.code]).toEqual([404, 'PAGE_OUT_OF_RANGE']);
      for (const { log } of [known, beyond]) expect(log).not.toContain('"warmSource"');
    } finally {
      await page.close();
    }
  });
});

describe('PageFunction with signed URLs (Function URL AuthType NONE)', () => {
  let s3: S3Client;
  const PARAMETER = '/s3-pdf-render/test-url-secret';
  const PREVIOUS = 'the-previous-secret-of-32-chars!';

  beforeAll(async () => {
    await buildAll({ only: ['PageFunction'] });
    s3 = testS3Client();
  });

  const signed = (params: [string, string][], key = KEY, secret = SECRET): string => {
    const query = new URLSearchParams([...params, ['signature', sign(secret, key, params)]]);
    return `/${encodeURIComponent(key)}?${query}`;
  };

  it('serves a URL signed with the secret from SSM (current or previous); a wrong, tampered, unsigned, expired or too long-lived one is a 403 with no render', async () => {
    await resetS3();
    await createBucket(s3, BUCKET);
    await createSsmClient({ endpoints: everyService(s3Endpoint()) }).send(new PutParameterCommand({ Name: PARAMETER, Value: `${SECRET}\n${PREVIOUS}`, Type: 'SecureString', Overwrite: true }));
    await putObject(s3, BUCKET, KEY, await pdf('arabic-rotations-4p.pdf'));
    const page = await PageContainer.start({ PAGE_URL_AUTH_TYPE: 'NONE', PAGE_SIGNING_PARAMETER: PARAMETER });
    try {
      const later = String(Math.floor(Date.now() / 1000) + 600);
      const params: [string, string][] = [['page', '2'], ['dpi', '40'], ['expires', later]];
      const good = signed(params);
      const cases: [string, string][] = [
        [signed(params, KEY, 'another-secret-of-32-characters!'), 'SIGNATURE_INVALID'],
        [good.replace('page=2', 'page=3'), 'SIGNATURE_INVALID'],
        [good.replace('dpi=40', 'dpi=41'), 'SIGNATURE_INVALID'],
        [good.replace(`expires=${later}`, `expires=${Number(later) + 1}`), 'SIGNATURE_INVALID'],
        [`${PATH}?page=2&dpi=40`, 'SIGNATURE_MISSING'],
        [signed([['page', '2'], ['dpi', '40'], ['expires', String(Math.floor(Date.now() / 1000) - 1)]]), 'SIGNATURE_EXPIRED'],
        // SIGNED_URL_MAX_SECONDS: 7 days by default (the template's SignedUrlMaxSeconds).
        [signed([['page', '2'], ['dpi', '40'], ['expires', String(Math.floor(Date.now() / 1000) + 8 * 86_400)]]), 'SIGNATURE_EXPIRY_TOO_FAR'],
      ];
      for (const [path, code] of cases) {
        const { result, log } = await page.request(path);
        expect(result.statusCode, path).toBe(403);
        expect(JSON.parse(String(result.body)).error.code, path).toBe(code);
        expect(rendered(log)).toBe(false);
      }
      expect(await variantKeys(s3)).toEqual([]);
      const ok = await page.request(good);
      expect(ok.result.statusCode, String(ok.result.body)).toBe(302);
      expect(rendered(ok.log)).toBe(true);
      // The parameter's second line (the previous secret, during a rotation) verifies too.
      const previous = await page.request(signed(params, KEY, PREVIOUS));
      expect(previous.result.statusCode, String(previous.result.body)).toBe(302);
    } finally {
      await page.close();
    }
  });
});

describe('PageFunction under concurrent misses', () => {
  it('ten containers asked for one uncached variant at once give ten valid answers and store one object', async () => {
    await buildAll({ only: ['PageFunction'] });
    const s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    await putObject(s3, BUCKET, KEY, await pdf('arabic-rotations-4p.pdf'));
    const containers = await Promise.all(Array.from({ length: 10 }, () => PageContainer.start()));
    try {
      const answers = await Promise.all(containers.map((c) => c.request(`${PATH}?page=1&dpi=60`)));
      const images = await Promise.all(answers.map((a) => fetchImage(a.result)));
      const keys = new Set(images.map((i) => new URL(i.location).pathname));
      expect(keys.size).toBe(1);
      for (const { png } of images) expect([png.width, png.height]).toEqual([images[0]!.png.width, images[0]!.png.height]);
      expect(await variantKeys(s3)).toHaveLength(1);
      // Every miss rendered, but If-None-Match let only the first PUT store: the others served it.
      const logs = answers.map((a) => a.log);
      expect(logs.filter((log) => log.includes('"stored":true'))).toHaveLength(1);
      expect(logs.filter((log) => rendered(log)).length + logs.filter((log) => log.includes('"x-page-cache":"hit"') || metric(log, 'CacheHit')).length).toBe(10);
    } finally {
      await Promise.all(containers.map((c) => c.close()));
    }
  }, 300_000);
});

describe('PageFunction when the source changes during a request, or cannot fit /tmp (lib/on-demand/source-cache.ts leaseSource)', () => {
  const IIIF_TILE = `/iiif/3/${encodeURIComponent(KEY)};1/0,0,200,200/100,/0/default.jpg`;
  const answer = (result: PageResult): [number | undefined, string, string | undefined] => {
    const body = JSON.parse(String(result.body)) as { error?: { code?: string; status?: number; message?: string } };
    return [result.statusCode, String(result.headers!['content-type']), body.error?.code];
  };
  const freshCache = async (dirs: string[]): Promise<SourceCache> => {
    const dir = await mkdtemp(join(tmpdir(), 'page-source-cache-test-'));
    dirs.push(dir);
    return new SourceCache(dir, 64 * 2 ** 20);
  };
  const iiifImages = async (s3: S3Client) => (await listKeys(s3, BUCKET, 'rendered/')).filter((k) => /\/iiif-\d{4}-/.test(k));

  it('replaced between the HEAD and the GET: 409 SOURCE_CHANGED on the page URL and on a IIIF tile, nothing stored', async () => {
    const s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    await putObject(s3, BUCKET, KEY, await pdf('arabic-rotations-4p.pdf'));
    const bodies = [await pdf('tracemonkey-paper-14p.pdf'), await pdf('arabic-rotations-4p.pdf')];
    let replacements = 0;
    let armed = true;
    // The source's GET (If-Match the etag the HEAD found) goes out after another upload replaced it.
    const racing = testS3Client();
    racing.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string; IfMatch?: string };
        if (armed && context.commandName === 'GetObjectCommand' && input.Key === KEY && input.IfMatch !== undefined) {
          await putObject(s3, BUCKET, KEY, bodies[replacements++ % 2]!);
        }
        return next(args);
      },
      { step: 'initialize' },
    );
    const config = loadPageConfig({ SOURCE_BUCKET: BUCKET, S3_ENDPOINT: s3Endpoint(), IIIF_DPI: '50' });
    const dirs: string[] = [];
    try {
      const page = createPageHandler(config, { s3: racing, cache: await freshCache(dirs) });
      expect(answer(await page(functionUrlEvent('GET', `${PATH}?page=1&dpi=30`)))).toEqual([409, 'application/json', 'SOURCE_CHANGED']);
      expect(replacements).toBe(1);
      // The IIIF tile's own draw: the page sizes are known already (stored for this etag by an
      // info.json a warm container answered), so the tile's lease is the one that downloads.
      armed = false;
      expect((await createPageHandler(config, { s3, cache: await freshCache(dirs) })(functionUrlEvent('GET', `/iiif/3/${encodeURIComponent(KEY)};1/info.json`))).statusCode).toBe(200);
      armed = true;
      const tile = await createPageHandler(config, { s3: racing, cache: await freshCache(dirs) })(functionUrlEvent('GET', IIIF_TILE));
      expect(answer(tile)).toEqual([409, 'application/json', 'SOURCE_CHANGED']);
      expect(tile.headers!['access-control-allow-origin']).toBe('*');
      expect(replacements).toBe(2);
      expect(await variantKeys(s3)).toEqual([]);
      expect(await iiifImages(s3)).toEqual([]);
      // Asked again, the current source is drawn.
      armed = false;
      expect((await createPageHandler(config, { s3: racing, cache: await freshCache(dirs) })(functionUrlEvent('GET', IIIF_TILE))).statusCode).toBe(200);
    } finally {
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('larger than /tmp can hold (a HEAD that says 5 TB, S3\'s largest object): 422 TOO_LARGE on the page URL and on IIIF, nothing downloaded', async () => {
    const s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    await putObject(s3, BUCKET, KEY, await pdf('arabic-rotations-4p.pdf'));
    const gets: string[] = [];
    const huge = testS3Client();
    huge.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        if (input.Key === KEY && context.commandName === 'GetObjectCommand') gets.push(input.Key);
        const result = await next(args);
        if (input.Key === KEY && context.commandName === 'HeadObjectCommand') (result.output as { ContentLength?: number }).ContentLength = 5 * 2 ** 40;
        return result;
      },
      { step: 'initialize' },
    );
    const dirs: string[] = [];
    try {
      const page = createPageHandler(loadPageConfig({ SOURCE_BUCKET: BUCKET, S3_ENDPOINT: s3Endpoint(), IIIF_DPI: '50' }), { s3: huge, cache: await freshCache(dirs) });
      expect(answer(await page(functionUrlEvent('GET', `${PATH}?page=1&dpi=30`)))).toEqual([422, 'application/json', 'TOO_LARGE']);
      const tile = await page(functionUrlEvent('GET', IIIF_TILE));
      expect(answer(tile)).toEqual([422, 'application/json', 'TOO_LARGE']);
      expect(JSON.parse(String(tile.body)).error.message).toMatch(/free/);
      expect(tile.headers!['access-control-allow-origin']).toBe('*');
      expect(answer(await page(functionUrlEvent('GET', `/iiif/3/${encodeURIComponent(KEY)};1/info.json`)))).toEqual([422, 'application/json', 'TOO_LARGE']);
      expect(gets).toEqual([]);
      expect(await variantKeys(s3)).toEqual([]);
    } finally {
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
