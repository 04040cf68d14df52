/**
 * The page function's edges without MuPDF: the request parser, the URL signature, the warm
 * source cache, and where a variant lives (the eager clean-up must catch it).
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPageConfig } from '../lib/config/page.js';
import { DEFAULT_JOB_OPTIONS } from '../lib/job/options.js';
import { variantFolderOf } from '../lib/job/manifest.js';
import { HttpError } from '../lib/on-demand/errors.js';
import { parseEnvelope, parseKey, parseOptions } from '../lib/on-demand/request.js';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { everyService } from '../lib/aws/endpoint.js';
import { parseSecrets, SECRET_GRACE_MS, SECRET_TTL_MS, ssmSecret } from '../lib/on-demand/secret.js';
import { startFaultProxy } from '../tools/fault-proxy.js';
import { canonicalRequest, DEFAULT_SIGNED_URL_MAX_SECONDS, sign, verifySigned, verifySignature } from '../lib/on-demand/signature.js';
import { createSsmClient } from '../lib/ssm/client.js';
import { checkedSignedPath } from '../tools/sign-url.js';
import { s3Endpoint } from './support/s3.js';
import { SourceCache } from '../lib/on-demand/source-cache.js';
import { variantKey } from '../lib/on-demand/variant.js';
import { GENERATION_FILE_PATTERN, outputLocation } from '../lib/s3/layout.js';
import { functionUrlEvent } from '../tools/function-url.js';

const config = { inputPrefix: 'incoming/' };
const failure = (fn: () => unknown): HttpError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  throw new Error('expected an HttpError');
};

describe('the page request', () => {
  it('decodes the key and takes defaults: page 1, the function\'s format and dpi', () => {
    const envelope = parseEnvelope(functionUrlEvent('GET', '/incoming%2Freports%202024%2Fq3%2Bdraft%20r%C3%A9sum%C3%A9.pdf'));
    expect(parseKey(envelope.rawKey, config)).toBe('incoming/reports 2024/q3+draft résumé.pdf');
    const { page, options } = parseOptions(envelope.params, { ...DEFAULT_JOB_OPTIONS, dpi: 110 });
    expect(page).toBe(1);
    expect(options).toMatchObject({ format: 'png', dpi: 110, pages: '1-', maxPages: 0, thumbnailWidth: 0, pageText: false });
  });

  it('sizes by a box (width, height: the engine fits the page inside, aspect kept) instead of the function\'s DPI', () => {
    const { options } = parseOptions(parseEnvelope(functionUrlEvent('GET', '/k.pdf?width=800')).params, DEFAULT_JOB_OPTIONS);
    expect(options).toMatchObject({ width: 800, dpi: 1200 });
    expect(options.height).toBeUndefined();
    // A DPI replaces a function's box whole.
    const byDpi = parseOptions(parseEnvelope(functionUrlEvent('GET', '/k.pdf?dpi=72')).params, { ...DEFAULT_JOB_OPTIONS, width: 500, dpi: 1200 });
    expect(byDpi.options).toMatchObject({ dpi: 72 });
    expect(byDpi.options.width).toBeUndefined();
  });

  it('gives quality to the format asked for: WebP\'s for webp, JPEG\'s for jpeg, AVIF\'s for avif', () => {
    const avif = parseOptions(parseEnvelope(functionUrlEvent('GET', '/k.pdf?format=avif&quality=35')).params, DEFAULT_JOB_OPTIONS);
    expect(avif.options).toMatchObject({ format: 'avif', avifQuality: 35, jpegQuality: DEFAULT_JOB_OPTIONS.jpegQuality, webpQuality: DEFAULT_JOB_OPTIONS.webpQuality });
    const webp = parseOptions(parseEnvelope(functionUrlEvent('GET', '/k.pdf?format=webp&quality=55')).params, DEFAULT_JOB_OPTIONS);
    expect(webp.options).toMatchObject({ format: 'webp', webpQuality: 55, jpegQuality: DEFAULT_JOB_OPTIONS.jpegQuality });
    const jpeg = parseOptions(parseEnvelope(functionUrlEvent('GET', '/k.pdf?format=jpeg&quality=55')).params, DEFAULT_JOB_OPTIONS);
    expect(jpeg.options).toMatchObject({ format: 'jpeg', jpegQuality: 55, webpQuality: DEFAULT_JOB_OPTIONS.webpQuality });
    expect(() => parseOptions(parseEnvelope(functionUrlEvent('GET', '/k.pdf?format=webp&quality=0')).params, DEFAULT_JOB_OPTIONS)).toThrow(/quality="0" is invalid/);
  });

  it('reads page, dpi, format and quality; PNG has one variant whatever the quality', () => {
    const params = parseEnvelope(functionUrlEvent('GET', '/k.pdf?page=7&dpi=300&format=jpeg&quality=60')).params;
    expect(parseOptions(params, DEFAULT_JOB_OPTIONS)).toMatchObject({ page: 7, options: { format: 'jpeg', dpi: 300, jpegQuality: 60 } });
    const png = parseOptions(parseEnvelope(functionUrlEvent('GET', '/k.pdf?quality=10')).params, DEFAULT_JOB_OPTIONS);
    expect(png.options.jpegQuality).toBe(DEFAULT_JOB_OPTIONS.jpegQuality);
  });

  it.each([
    ['page=0', /page="0" is invalid: expected a whole number from 1/],
    ['page=two', /page="two" is invalid/],
    ['dpi=1201', /dpi="1201" is invalid: expected a whole number from 1 to 1200/],
    ['format=tiff', /format="tiff" is invalid: expected/],
    ['format=gif&quality=50', /format="gif" is invalid/],
    ['quality=101', /quality="101" is invalid/],
    ['page=1&page=2', /"page" is given twice/],
    ['w=800', /unknown query parameter "w": allowed are page, width, height, dpi, format, quality, expires, signature/],
    ['width=800&dpi=100', /dpi="100" with width=800 is invalid: size pages by a DPI or by a box/],
    ['height=0', /height="0" is invalid: expected a whole number from 1/],
  ])('rejects %s with a 400 that names the field and what is allowed', (query, message) => {
    const error = failure(() => parseOptions(parseEnvelope(functionUrlEvent('GET', `/k.pdf?${query}`)).params, DEFAULT_JOB_OPTIONS));
    expect(error).toMatchObject({ status: 400, code: 'INVALID_REQUEST' });
    expect(error.message).toMatch(message);
  });

  it.each([
    ['private%2Fx.pdf', /outside INPUT_PREFIX/],
    ['incoming%2Fnotes.txt', /not a .pdf key/],
    ['incoming%2F..%2Fprivate%2Fx.pdf', /".." path segment/],
    ['incoming%2F%2Fx.pdf', /empty path segment/],
  ])('refuses the key %s with a 403 saying why', (raw, message) => {
    const error = failure(() => parseKey(raw, config));
    expect(error).toMatchObject({ status: 403, code: 'KEY_NOT_SERVED' });
    expect(error.message).toMatch(message);
  });

  it('answers 400 to a path that is not URL encoding, and 405 to methods other than GET and HEAD', () => {
    expect(failure(() => parseKey('incoming%2Fbad%E0%A4.pdf', config))).toMatchObject({ status: 400 });
    expect(failure(() => parseEnvelope(functionUrlEvent('DELETE', '/k.pdf')))).toMatchObject({ status: 405, code: 'METHOD_NOT_ALLOWED' });
    expect(parseEnvelope(functionUrlEvent('HEAD', '/k.pdf')).method).toBe('HEAD');
  });
});

describe('signed URLs', () => {
  const secret = 'a-unit-test-secret-of-32-chars!!';
  const now = Date.UTC(2026, 0, 1);
  const expires = String(now / 1000 + 60);
  const params: [string, string][] = [['page', '3'], ['dpi', '100'], ['expires', expires]];

  it('signs the key and the sorted parameters, whatever their order in the URL', () => {
    expect(canonicalRequest('incoming/a b.pdf', params)).toBe(`/incoming/a b.pdf\ndpi=100&expires=${expires}&page=3`);
    const signature = sign(secret, 'incoming/a b.pdf', params);
    expect(signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(() => verifySignature([secret], 'incoming/a b.pdf', [...params].reverse().concat([['signature', signature]]), now)).not.toThrow();
  });

  it.each([
    ['another key', 'incoming/b.pdf', params, 'SIGNATURE_INVALID'],
    ['another page', 'incoming/a b.pdf', [['page', '4'], ['dpi', '100'], ['expires', expires]], 'SIGNATURE_INVALID'],
    ['an added parameter', 'incoming/a b.pdf', [...params, ['format', 'jpeg']], 'SIGNATURE_INVALID'],
    ['a later expiry', 'incoming/a b.pdf', [['page', '3'], ['dpi', '100'], ['expires', String(Number(expires) + 1)]], 'SIGNATURE_INVALID'],
  ] as const)('rejects a signature carried over to %s', (_, key, changed, code) => {
    const signature = sign(secret, 'incoming/a b.pdf', params);
    expect(failure(() => verifySignature([secret], key, [...changed, ['signature', signature]], now))).toMatchObject({ status: 403, code });
  });

  it('rejects an expired URL, a missing signature, one without expiry and another secret\'s', () => {
    const signature = sign(secret, 'k.pdf', params);
    expect(failure(() => verifySignature([secret], 'k.pdf', [...params, ['signature', signature]], now + 60_000))).toMatchObject({ code: 'SIGNATURE_EXPIRED' });
    expect(failure(() => verifySignature([secret], 'k.pdf', params, now))).toMatchObject({ code: 'SIGNATURE_MISSING' });
    const noExpiry: [string, string][] = [['page', '3']];
    expect(failure(() => verifySignature([secret], 'k.pdf', [...noExpiry, ['signature', sign(secret, 'k.pdf', noExpiry)]], now))).toMatchObject({ code: 'SIGNATURE_INVALID' });
    expect(failure(() => verifySignature(['another-secret-of-32-characters!'], 'k.pdf', [...params, ['signature', signature]], now))).toMatchObject({ code: 'SIGNATURE_INVALID' });
    expect(failure(() => verifySignature([secret], 'k.pdf', [...params, ['signature', `${signature}x`]], now))).toMatchObject({ code: 'SIGNATURE_INVALID' });
  });

  it('refuses an expiry more than SIGNED_URL_MAX_SECONDS ahead (default 7 days), after the signature', () => {
    const week = DEFAULT_SIGNED_URL_MAX_SECONDS;
    expect(week).toBe(604_800);
    const at = (seconds: number): [string, string][] => [['page', '1'], ['expires', String(now / 1000 + seconds)]];
    const signedAt = (seconds: number): [string, string][] => [...at(seconds), ['signature', sign(secret, 'k.pdf', at(seconds))]];
    expect(() => verifySignature([secret], 'k.pdf', signedAt(week), now)).not.toThrow();
    expect(failure(() => verifySignature([secret], 'k.pdf', signedAt(week + 1), now))).toMatchObject({ status: 403, code: 'SIGNATURE_EXPIRY_TOO_FAR' });
    expect(failure(() => verifySignature([secret], 'k.pdf', signedAt(10 * 365 * 86_400), now))).toMatchObject({ code: 'SIGNATURE_EXPIRY_TOO_FAR' });
    expect(failure(() => verifySignature([secret], 'k.pdf', signedAt(3600), now, 600))).toMatchObject({ code: 'SIGNATURE_EXPIRY_TOO_FAR' });
    // A forger with no secret learns only that the signature is wrong.
    expect(failure(() => verifySignature(['another-secret-of-32-characters!'], 'k.pdf', signedAt(week + 1), now))).toMatchObject({ code: 'SIGNATURE_INVALID' });
    expect(() => loadPageConfig({ SOURCE_BUCKET: 'example-bucket', SIGNED_URL_MAX_SECONDS: '10' })).toThrow(/SIGNED_URL_MAX_SECONDS/);
    expect(loadPageConfig({ SOURCE_BUCKET: 'example-bucket' }).page.signedUrlMaxSeconds).toBe(week);
    expect(loadPageConfig({ SOURCE_BUCKET: 'example-bucket', SIGNED_URL_MAX_SECONDS: '3600' }).page.signedUrlMaxSeconds).toBe(3600);
  });

  it('verifies with the current or the previous secret; verifySigned checks any signed text', () => {
    const previous = 'the-previous-secret-32-chars!!!!';
    const signature = sign(previous, 'k.pdf', params);
    expect(() => verifySignature([secret, previous], 'k.pdf', [...params, ['signature', signature]], now)).not.toThrow();
    expect(failure(() => verifySignature([secret], 'k.pdf', [...params, ['signature', signature]], now))).toMatchObject({ code: 'SIGNATURE_INVALID' });
    const text = 'iiif/3/incoming%2Fa.pdf;1';
    const token = sign(secret, text, [['expires', expires]]);
    expect(verifySigned(canonicalRequest(text, [['expires', expires]]), token, expires, now, [previous, secret], 3600)).toEqual({ ok: true, expiresAt: Number(expires) });
    expect(verifySigned(canonicalRequest(text, [['expires', expires]]), token, expires, now + 61_000, [secret], 3600)).toMatchObject({ ok: false, code: 'SIGNATURE_EXPIRED' });
  });

  it('reads one or two secrets from the parameter, one per line, the signing one first', () => {
    expect(parseSecrets('current-secret-0123456789', '/p')).toEqual(['current-secret-0123456789']);
    expect(parseSecrets('current-secret-0123456789\nprevious-secret-012345678\n', '/p')).toEqual(['current-secret-0123456789', 'previous-secret-012345678']);
    expect(() => parseSecrets('short', '/p')).toThrow('SSM parameter /p: line 1 is not a secret of at least 16 characters');
    expect(() => parseSecrets('current-secret-0123456789\n\nprevious-secret-012345678', '/p')).toThrow(/holds 3 lines/);
    expect(() => parseSecrets(undefined, '/p')).toThrow(/line 1 is not a secret/);
  });

  it('re-reads the parameter once SECRET_TTL_MS has passed (SSM on moto): a rotation reaches a warm container within minutes', async () => {
    const ssm = createSsmClient({ endpoints: everyService(s3Endpoint()) });
    const name = `/s3-pdf-render/ttl-test-${process.pid}`;
    let gets = 0;
    ssm.middlewareStack.add((next, context) => async (args) => {
      if ((context as { commandName?: string }).commandName === GetParameterCommand.name) gets++;
      return next(args);
    }, { step: 'initialize', name: 'countGets' });
    const put = (value: string) => ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: 'SecureString', Overwrite: true }));
    await put('first-secret-0123456789');
    let clock = 1_000_000;
    const secrets = ssmSecret(ssm, name, SECRET_TTL_MS, () => clock);
    expect(await secrets()).toEqual(['first-secret-0123456789']);
    await put('second-secret-0123456789\nfirst-secret-0123456789');
    clock += SECRET_TTL_MS - 1;
    expect(await secrets()).toEqual(['first-secret-0123456789']);
    expect(gets).toBe(1);
    clock += 1;
    expect(await secrets()).toEqual(['second-secret-0123456789', 'first-secret-0123456789']);
    expect(gets).toBe(2);
    expect(SECRET_TTL_MS).toBeLessThanOrEqual(10 * 60_000);
  });

  it('keeps serving the last secrets read for SECRET_GRACE_MS when a refresh fails (SSM on moto behind the fault proxy), then fails', async () => {
    const proxy = await startFaultProxy(s3Endpoint());
    try {
      const ssm = createSsmClient({ endpoints: everyService(proxy.endpoint) }, { maxAttempts: 1 });
      const name = `/s3-pdf-render/grace-test-${process.pid}`;
      await ssm.send(new PutParameterCommand({ Name: name, Value: 'first-secret-0123456789', Type: 'SecureString', Overwrite: true }));
      const start = 1_000_000;
      let clock = start;
      const secrets = ssmSecret(ssm, name, SECRET_TTL_MS, () => clock);
      expect(await secrets()).toEqual(['first-secret-0123456789']);
      await ssm.send(new PutParameterCommand({ Name: name, Value: 'second-secret-0123456789', Type: 'SecureString', Overwrite: true }));
      proxy.setRules([{ method: 'POST', path: /^\//, target: 'AmazonSSM.GetParameter', occurrences: Array.from({ length: 100 }, (_, i) => i + 1), fault: { kind: 'reset' } }]);
      // Past the TTL, SSM unreachable: the last good secrets, not a 500 for every signed request.
      clock += SECRET_TTL_MS;
      expect(await secrets()).toEqual(['first-secret-0123456789']);
      clock = start + SECRET_GRACE_MS - 1;
      expect(await secrets()).toEqual(['first-secret-0123456789']);
      expect(proxy.injected()).toBeGreaterThan(0);
      // Past the grace period: the failure itself.
      clock = start + SECRET_GRACE_MS;
      await expect(secrets()).rejects.toThrow();
      // SSM back: the new value.
      proxy.setRules([]);
      clock += 1;
      expect(await secrets()).toEqual(['second-secret-0123456789']);
      expect(SECRET_GRACE_MS).toBeLessThanOrEqual(60 * 60_000);
    } finally {
      await proxy.close();
    }
  });

  it('npm run sign-url refuses what the function would refuse', () => {
    const good = checkedSignedPath(secret, 'incoming/a b.pdf', [['page', '2']], 3600, {}, now);
    const url = new URL(`http://x${good}`);
    expect(() => verifySignature([secret], 'incoming/a b.pdf', [...url.searchParams.entries()], now)).not.toThrow();
    expect(() => checkedSignedPath(secret, 'incoming/a.pdf', [], DEFAULT_SIGNED_URL_MAX_SECONDS + 1, {}, now)).toThrow(/403 SIGNATURE_EXPIRY_TOO_FAR/);
    expect(() => checkedSignedPath(secret, 'incoming/a.pdf', [], 7200, { SIGNED_URL_MAX_SECONDS: '3600' }, now)).toThrow(/SIGNATURE_EXPIRY_TOO_FAR/);
    expect(() => checkedSignedPath(secret, 'incoming/a.pdf', [], 0, {}, now)).toThrow(/--expires 0/);
    expect(() => checkedSignedPath(secret, 'elsewhere/a.pdf', [], 60, {}, now)).toThrow(/403 KEY_NOT_SERVED/);
    expect(() => checkedSignedPath(secret, 'incoming/a.pdf', [['page', '0']], 60, {}, now)).toThrow(/400 INVALID_REQUEST: page="0"/);
    expect(() => checkedSignedPath(secret, 'incoming/a.pdf', [['format', 'gif']], 60, {}, now)).toThrow(/400 INVALID_REQUEST/);
    expect(() => checkedSignedPath('short', 'incoming/a.pdf', [], 60, {}, now)).toThrow(/at least 16 characters/);
    // Two lines: the first signs.
    const rotated = new URL(`http://x${checkedSignedPath(`${secret}\nthe-previous-secret-32-chars!!!!`, 'incoming/a.pdf', [], 60, {}, now)}`);
    expect(() => verifySignature([secret], 'incoming/a.pdf', [...rotated.searchParams.entries()], now)).not.toThrow();
  });

  it('requires a signing parameter when the URL is public', () => {
    const env = { SOURCE_BUCKET: 'example-bucket' };
    expect(() => loadPageConfig({ ...env, PAGE_URL_AUTH_TYPE: 'NONE' })).toThrow(/requires PAGE_SIGNING_PARAMETER/);
    expect(() => loadPageConfig({ ...env, PAGE_URL_AUTH_TYPE: 'PUBLIC' })).toThrow(/PAGE_URL_AUTH_TYPE="PUBLIC" is invalid/);
    expect(() => loadPageConfig({ PAGE_URL_AUTH_TYPE: 'AWS_IAM' })).toThrow(/SOURCE_BUCKET is required/);
    expect(loadPageConfig({ ...env, PAGE_URL_AUTH_TYPE: 'NONE', PAGE_SIGNING_PARAMETER: '/a/b' }).page).toMatchObject({ authType: 'NONE', signingParameter: '/a/b' });
  });
});

describe('the warm source cache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'source-cache-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const id = (n: number) => String(n).repeat(64).slice(0, 64);
  const writer = (bytes: number, calls: string[]) => async (path: string) => {
    calls.push(path);
    await writeFile(path, Buffer.alloc(bytes, 1));
  };

  it('downloads a source once and serves it warm after; the least recently used goes first past the cap', async () => {
    const cache = new SourceCache(dir, 250);
    const calls: string[] = [];
    const a = await cache.acquire(id(1), 100, writer(100, calls));
    expect(a.warm).toBe(false);
    await a.release();
    const again = await cache.acquire(id(1), 100, writer(100, calls));
    expect(again.warm).toBe(true);
    expect(again.path).toBe(a.path);
    await again.release();
    expect(calls).toHaveLength(1);
    // Downloaded under a temporary name, then renamed.
    expect(calls[0]).toMatch(/\.part$/);
    await (await cache.acquire(id(2), 100, writer(100, calls))).release();
    await (await cache.acquire(id(1), 100, writer(100, calls))).release();
    await (await cache.acquire(id(3), 100, writer(100, calls))).release();
    // 1 was used after 2: 2 went.
    expect((await readdir(dir)).sort()).toEqual([`${id(1)}.pdf`, `${id(3)}.pdf`]);
    expect(cache.bytes).toBe(200);
  });

  it('never evicts a file a request holds, and shares one download between concurrent requests', async () => {
    const cache = new SourceCache(dir, 150);
    const calls: string[] = [];
    const [x, y] = await Promise.all([cache.acquire(id(1), 100, writer(100, calls)), cache.acquire(id(1), 100, writer(100, calls))]);
    expect(calls).toHaveLength(1);
    const z = await cache.acquire(id(2), 100, writer(100, calls));
    // Over the cap while 1 is held: both stay until released.
    expect((await readdir(dir)).sort()).toEqual([`${id(1)}.pdf`, `${id(2)}.pdf`]);
    await Promise.all([x.release(), y.release(), z.release()]);
    await (await cache.acquire(id(3), 100, writer(100, calls))).release();
    expect(await readdir(dir)).toEqual([`${id(3)}.pdf`]);
  });

  it('leaves nothing behind from a failed download, and keeps a source larger than the cap for its request only', async () => {
    const cache = new SourceCache(dir, 50);
    await expect(cache.acquire(id(1), 10, async (path) => {
      await writeFile(path, 'half');
      throw new Error('connection reset');
    })).rejects.toThrow('connection reset');
    expect(await readdir(dir)).toEqual([]);
    const big = await cache.acquire(id(2), 100, writer(100, []));
    expect(await readdir(dir)).toHaveLength(1);
    await big.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over whole files a previous process left, and removes partial ones', async () => {
    await writeFile(join(dir, `${id(1)}.pdf`), Buffer.alloc(10));
    await writeFile(join(dir, `${id(2)}.abc.part`), Buffer.alloc(10));
    const cache = new SourceCache(dir, 100);
    const lease = await cache.acquire(id(1), 10, () => Promise.reject(new Error('must not download')));
    expect(lease.warm).toBe(true);
    expect(await readdir(dir)).toEqual([`${id(1)}.pdf`]);
  });
});

describe('where a variant lives', () => {
  it('in a folder of the source etag that the generation clean-up recognises', () => {
    const out = outputLocation('b', 'incoming/a.pdf', { inputPrefix: 'incoming/', outputPrefix: 'rendered/' });
    for (const format of ['png', 'jpeg', 'webp'] as const) {
      const key = variantKey(out, 'etag-1', 3, { ...DEFAULT_JOB_OPTIONS, format });
      const match = GENERATION_FILE_PATTERN.exec(key.slice(out.prefix.length));
      expect(match?.[1], key).toBe(variantFolderOf('etag-1'));
    }
    // Another etag, other options, another renderer major: another key.
    const base = variantKey(out, 'etag-1', 3, DEFAULT_JOB_OPTIONS);
    expect(variantKey(out, 'etag-2', 3, DEFAULT_JOB_OPTIONS)).not.toBe(base);
    expect(variantKey(out, 'etag-1', 3, { ...DEFAULT_JOB_OPTIONS, dpi: 151 })).not.toBe(base);
    expect(variantFolderOf('etag-1', '99.0.0')).not.toBe(variantFolderOf('etag-1'));
  });
});
