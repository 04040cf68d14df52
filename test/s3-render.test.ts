/**
 * The S3-triggered render function end to end against a real S3-compatible server (moto on
 * loopback), with faults injected over HTTP by a proxy.
 */
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { HeadObjectCommand, PutBucketVersioningCommand, type S3Client } from '@aws-sdk/client-s3';
import { PNG } from 'pngjs';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../lib/config/env.js';
import type { Manifest } from '../lib/job/manifest.js';
import { createRenderHandler, type RenderEvent } from '../lib/render-function/handler.js';
import { s3PutEvent } from '../lib/s3/event.js';
import { useFaultProxy } from './support/fault-proxy.js';
import { CORPUS, createBucket, getBytes, listKeys, putObject, resetS3, testConfig, testS3Client } from './support/s3.js';
import { readV2Manifest, renderedPages } from './support/manifests.js';

const BUCKET = 'uploads';
// Low DPI keeps the suite fast; behaviour does not depend on it.
const ENV = { DPI: '40' };
const TRACEMONKEY = `${CORPUS}tracemonkey-paper-14p.pdf`; // 14 pages
const MATPLOTLIB = `${CORPUS}matplotlib-type3.pdf`; // 1 page
const ARABIC = `${CORPUS}arabic-rotations-4p.pdf`; // 4 pages, rotated

let s3: S3Client;
let config: Config;

beforeEach(async () => {
  await resetS3();
  config = testConfig(ENV);
  s3 = testS3Client(config);
  await createBucket(s3, BUCKET);
});

async function upload(key: string, file: string, bucket = BUCKET): Promise<{ etag: string; versionId?: string }> {
  return putObject(s3, bucket, key, await readFile(file));
}

const manifestAt = (bucket: string, key: string): Promise<Manifest> => readV2Manifest(s3, bucket, key);

function jobDirs(): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith('pdf-render-'));
}


/** What a committed render must leave under its prefix: the manifest and exactly the pages it lists. */
async function expectOnlyListedOutputs(bucket: string, prefix: string, manifest: Manifest): Promise<void> {
  expect(await listKeys(s3, bucket, prefix)).toEqual([...renderedPages(manifest).map((p) => p.key), `${prefix}manifest.json`].sort());
  for (const page of renderedPages(manifest)) expect(page.key.startsWith(`${prefix}${manifest.generation}/`)).toBe(true);
}

describe('rendering from S3', () => {
  it('renders a PDF to pages and a manifest that describe each other', async () => {
    const { etag } = await upload('incoming/papers/tracemonkey.pdf', TRACEMONKEY);
    const result = await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/papers/tracemonkey.pdf'));
    expect(result.records).toEqual([{ bucket: BUCKET, key: 'incoming/papers/tracemonkey.pdf', outcome: 'rendered', status: 'complete' }]);

    const prefix = 'rendered/papers/tracemonkey.pdf/';
    const manifest = await manifestAt(BUCKET, `${prefix}manifest.json`);
    expect(manifest.generation).toMatch(/^[0-9a-f]{16}$/);
    const expectedPages = Array.from({ length: 14 }, (_, i) => `${prefix}${manifest.generation}/page-${String(i + 1).padStart(4, '0')}.png`);
    expect(await listKeys(s3, BUCKET, prefix)).toEqual([...expectedPages, `${prefix}manifest.json`].sort());
    expect(manifest).toMatchObject({
      schemaVersion: 2,
      status: 'complete',
      source: { bucket: BUCKET, key: 'incoming/papers/tracemonkey.pdf', etag },
      renderer: { name: 's3-pdf-render' },
      options: { format: 'png', dpi: 40 },
      pageCount: 14,
    });
    expect(manifest.pages.map((p) => p.number)).toEqual(expectedPages.map((_, i) => i + 1));
    // The manifest says how each page is stored: this paper's text pages are gray, its figures in colour.
    expect(new Set(renderedPages(manifest).map((p) => p.color))).toEqual(new Set(['gray', 'rgb']));

    for (const page of renderedPages(manifest)) {
      const png = PNG.sync.read(Buffer.from(await getBytes(s3, BUCKET, page.key)));
      expect([png.width, png.height]).toEqual([page.width, page.height]);
      // US Letter at 40 dpi.
      expect(page.width).toBeCloseTo((612 * 40) / 72, -0.5);
    }
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: expectedPages[2] }));
    expect(head.ContentType).toBe('image/png');
    expect(head.Metadata).toEqual({ 'source-etag': etag, generation: manifest.generation, page: '3', dpi: '40' });
  });

  it('respects /Rotate: landscape pages come out landscape', async () => {
    await upload('incoming/arabic.pdf', ARABIC);
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/arabic.pdf'));
    const manifest = await manifestAt(BUCKET, 'rendered/arabic.pdf/manifest.json');
    const shapes = renderedPages(manifest).map((p) => (p.width > p.height ? 'landscape' : 'portrait'));
    expect(shapes).toEqual(['landscape', 'portrait', 'landscape', 'portrait']);
  });

  it('decodes keys with spaces, "+", unicode and nested folders as S3 encodes them', async () => {
    const key = 'incoming/Q3 reports/ü+ñ 報告/plan (final)+v2.PDF';
    await upload(key, MATPLOTLIB);
    const event = s3PutEvent(BUCKET, key);
    expect(event.Records[0]!.s3.object.key).toBe('incoming/Q3+reports/%C3%BC%2B%C3%B1+%E5%A0%B1%E5%91%8A/plan+(final)%2Bv2.PDF');
    const result = await createRenderHandler(config, s3)(event);
    expect(result.records[0]).toMatchObject({ key, outcome: 'rendered', status: 'complete' });
    const manifest = await manifestAt(BUCKET, 'rendered/Q3 reports/ü+ñ 報告/plan (final)+v2.PDF/manifest.json');
    expect(manifest.source.key).toBe(key);
    expect(renderedPages(manifest)[0]!.key).toBe(`rendered/Q3 reports/ü+ñ 報告/plan (final)+v2.PDF/${manifest.generation}/page-0001.png`);
  });

  it('ignores events for output keys and non-PDF keys, writing nothing', async () => {
    await upload('incoming/notes.txt', MATPLOTLIB);
    await upload('rendered/x.pdf/page-0001.pdf', MATPLOTLIB);
    const before = await listKeys(s3, BUCKET);
    const handler = createRenderHandler(config, s3);
    const result = await handler({ Records: [...s3PutEvent(BUCKET, 'incoming/notes.txt').Records, ...s3PutEvent(BUCKET, 'rendered/x.pdf/page-0001.pdf').Records] });
    expect(result.records.map((r) => [r.outcome, r.reason])).toEqual([
      ['ignored', 'not a .pdf key'],
      ['ignored', 'outside INPUT_PREFIX "incoming/"'],
    ]);
    expect(await listKeys(s3, BUCKET)).toEqual(before);
  });

  it('does not render the same event twice', async () => {
    await upload('incoming/a.pdf', MATPLOTLIB);
    const handler = createRenderHandler(config, s3);
    await handler(s3PutEvent(BUCKET, 'incoming/a.pdf'));
    const first = await manifestAt(BUCKET, 'rendered/a.pdf/manifest.json');
    const second = await handler(s3PutEvent(BUCKET, 'incoming/a.pdf'));
    expect(second.records[0]!.outcome).toBe('up-to-date');
    expect((await manifestAt(BUCKET, 'rendered/a.pdf/manifest.json')).startedAt).toBe(first.startedAt);
    // A changed option is not up to date.
    const jpeg = await createRenderHandler(testConfig({ ...ENV, FORMAT: 'jpeg' }), s3)(s3PutEvent(BUCKET, 'incoming/a.pdf'));
    expect(jpeg.records[0]!.outcome).toBe('rendered');
    const jpegManifest = await manifestAt(BUCKET, 'rendered/a.pdf/manifest.json');
    expect(jpegManifest.generation).not.toBe(first.generation);
    expect(await listKeys(s3, BUCKET, 'rendered/a.pdf/')).toEqual([`rendered/a.pdf/${jpegManifest.generation}/page-0001.jpg`, 'rendered/a.pdf/manifest.json']);
  });

  it('gives one consistent manifest when two invocations race on one key', async () => {
    await upload('incoming/race.pdf', ARABIC);
    const [a, b] = await Promise.all([
      createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/race.pdf')),
      createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/race.pdf')),
    ]);
    expect([a.records[0]!.outcome, b.records[0]!.outcome]).toContain('rendered');
    const manifest = await manifestAt(BUCKET, 'rendered/race.pdf/manifest.json');
    expect(manifest.status).toBe('complete');
    await expectOnlyListedOutputs(BUCKET, 'rendered/race.pdf/', manifest);
  });

  it('removes the extra pages when a shorter PDF replaces a longer one', async () => {
    const handler = createRenderHandler(config, s3);
    await upload('incoming/doc.pdf', ARABIC);
    await handler(s3PutEvent(BUCKET, 'incoming/doc.pdf'));
    expect(await listKeys(s3, BUCKET, 'rendered/doc.pdf/')).toHaveLength(5);
    await upload('incoming/doc.pdf', MATPLOTLIB);
    await handler(s3PutEvent(BUCKET, 'incoming/doc.pdf'));
    const manifest = await manifestAt(BUCKET, 'rendered/doc.pdf/manifest.json');
    expect(manifest.pageCount).toBe(1);
    await expectOnlyListedOutputs(BUCKET, 'rendered/doc.pdf/', manifest);
  });

  it('an event for a version that is no longer current is superseded before anything is written', async () => {
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
    const v1 = await upload('incoming/v.pdf', ARABIC);
    await upload('incoming/v.pdf', MATPLOTLIB);
    expect(v1.versionId).toBeTruthy();
    const handler = createRenderHandler(config, s3);
    const event = s3PutEvent(BUCKET, 'incoming/v.pdf', { versionId: v1.versionId! });
    const result = await handler(event);
    // The key now holds the 1-page version: rendering v1 must not claim the manifest for it.
    expect(result.records[0]!.outcome).toBe('superseded');
    expect(await listKeys(s3, BUCKET, 'rendered/')).toEqual([]);
    // With v1 still current, the event's version is the one read.
    await resetS3();
    await createBucket(s3, BUCKET);
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
    const only = await upload('incoming/v.pdf', ARABIC);
    await handler(s3PutEvent(BUCKET, 'incoming/v.pdf', { versionId: only.versionId! }));
    const manifest = await manifestAt(BUCKET, 'rendered/v.pdf/manifest.json');
    expect(manifest.source.versionId).toBe(only.versionId);
    expect(manifest.pageCount).toBe(4);
  });

  it('writes outputs to OUTPUT_BUCKET and nothing to the source bucket', async () => {
    await createBucket(s3, 'rendered-images');
    const outConfig = testConfig({ ...ENV, OUTPUT_BUCKET: 'rendered-images', OUTPUT_PREFIX: 'pages/' });
    await upload('incoming/a.pdf', MATPLOTLIB);
    await createRenderHandler(outConfig, s3)(s3PutEvent(BUCKET, 'incoming/a.pdf'));
    expect(await listKeys(s3, BUCKET)).toEqual(['incoming/a.pdf']);
    const manifest = await manifestAt('rendered-images', 'pages/a.pdf/manifest.json');
    expect(await listKeys(s3, 'rendered-images')).toEqual([`pages/a.pdf/${manifest.generation}/page-0001.png`, 'pages/a.pdf/manifest.json']);
  });
});

describe('bad input', () => {
  const cases: [string, () => Promise<Uint8Array | string>, string][] = [
    ['empty.pdf', async () => new Uint8Array(0), 'EMPTY'],
    ['random.pdf', async () => new Uint8Array(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)), 'NOT_PDF'],
    ['page.pdf', async () => '<!doctype html><html><body><h1>Not found</h1></body></html>', 'NOT_PDF'],
    ['locked.pdf', () => readFile(`${CORPUS}password-libreoffice.pdf`), 'ENCRYPTED'],
    ['nopages.pdf', () => readFile(`${CORPUS}zero-pages.pdf`), 'NO_PAGES'],
    ['broken.pdf', () => readFile(`${CORPUS}unreadable-page-tree.pdf`), 'CORRUPT'],
  ];

  it('writes a failed manifest with a stable code, and the invocation succeeds', async () => {
    for (const [name, body] of cases) await putObject(s3, BUCKET, `incoming/${name}`, await body());
    const event: RenderEvent = { Records: cases.flatMap(([name]) => s3PutEvent(BUCKET, `incoming/${name}`).Records) };
    const result = await createRenderHandler(config, s3)(event);
    expect(result.records.map((r) => r.status)).toEqual(cases.map(() => 'failed'));
    for (const [name, , code] of cases) {
      const manifest = await manifestAt(BUCKET, `rendered/${name}/manifest.json`);
      expect({ name, status: manifest.status, code: manifest.error?.code, pages: manifest.pages }).toEqual({ name, status: 'failed', code, pages: [] });
      expect(manifest.error?.message.length).toBeGreaterThan(10);
    }
    // Nothing else than manifests was written (a duplicate of these is settled without rendering:
    // this renderer release fails them again).
    expect((await listKeys(s3, BUCKET, 'rendered/')).every((k) => k.endsWith('/manifest.json'))).toBe(true);
  });

  it('refuses malformed events record by record', async () => {
    const result = await createRenderHandler(config, s3)({ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: {} } }] } as unknown as RenderEvent);
    expect(result.records).toEqual([]);
    await expect(createRenderHandler(config, s3)({} as RenderEvent)).resolves.toEqual({ records: [] });
    for (const garbage of [null, undefined, 'x', 42, [], { Records: 'no' }, { Records: [null, 7] }]) {
      await expect(createRenderHandler(config, s3)(garbage)).resolves.toEqual({ records: [] });
    }
  });
});

describe('faults, retries and the time budget', () => {
  const via = useFaultProxy();

  const download = /^\/uploads\/incoming\/f\.pdf$/;
  const thirdPage = /^\/uploads\/rendered\/f\.pdf\/[0-9a-f]{16}\/page-0003\.png$/;

  for (const [name, method, path, fault] of [
    ['a 503 SlowDown on the download', 'GET', download, { kind: 'status', status: 503, code: 'SlowDown' }],
    ['a connection reset on the download', 'GET', download, { kind: 'reset' }],
    ['a 500 on the 3rd page upload', 'PUT', thirdPage, { kind: 'status', status: 500, code: 'InternalError' }],
    ['a connection reset on the 3rd page upload', 'PUT', thirdPage, { kind: 'reset' }],
  ] as const) {
    it(`${name}: the invocation throws, no complete manifest appears, and the retry completes`, async () => {
      await upload('incoming/f.pdf', ARABIC);
      const dirsBefore = jobDirs();
      // Every attempt the SDK makes fails: the error reaches the handler.
      via.proxy.setRules([{ method, path, occurrences: [1, 2, 3], fault }]);
      const handler = createRenderHandler(config, via.s3);
      await expect(handler(s3PutEvent(BUCKET, 'incoming/f.pdf'))).rejects.toThrow(/failed transiently/);
      expect(via.proxy.injected()).toBe(3);
      expect(await listKeys(s3, BUCKET, 'rendered/f.pdf/manifest.json')).toEqual([]);
      expect(jobDirs()).toEqual(dirsBefore);

      // Lambda's retry: the same event, the fault gone.
      via.proxy.setRules([]);
      await handler(s3PutEvent(BUCKET, 'incoming/f.pdf'));
      const manifest = await manifestAt(BUCKET, 'rendered/f.pdf/manifest.json');
      expect(manifest.status).toBe('complete');
      expect(await listKeys(s3, BUCKET, 'rendered/f.pdf/')).toEqual([...renderedPages(manifest).map((p) => p.key), 'rendered/f.pdf/manifest.json'].sort());
      expect(renderedPages(manifest)).toHaveLength(4);
    });
  }

  it('absorbs a single transient fault with the SDK retry', async () => {
    await upload('incoming/f.pdf', ARABIC);
    via.proxy.setRules([{ method: 'PUT', path: thirdPage, occurrences: [1], fault: { kind: 'status', status: 503, code: 'SlowDown' } }]);
    const result = await createRenderHandler(config, via.s3)(s3PutEvent(BUCKET, 'incoming/f.pdf'));
    expect(via.proxy.injected()).toBe(1);
    expect(result.records[0]!.status).toBe('complete');
  });

  it('one failing record does not hide the others', async () => {
    await upload('incoming/f.pdf', ARABIC);
    await upload('incoming/ok.pdf', MATPLOTLIB);
    via.proxy.setRules([{ method: 'GET', path: download, occurrences: [1, 2, 3], fault: { kind: 'reset' } }]);
    const event: RenderEvent = { Records: [...s3PutEvent(BUCKET, 'incoming/f.pdf').Records, ...s3PutEvent(BUCKET, 'incoming/ok.pdf').Records] };
    await expect(createRenderHandler(config, via.s3)(event)).rejects.toThrow(/1 of 2 records failed transiently/);
    expect((await manifestAt(BUCKET, 'rendered/ok.pdf/manifest.json')).status).toBe('complete');
  });

  it('stops before the deadline with a partial manifest, and the retry resumes without redoing pages', async () => {
    await upload('incoming/f.pdf', TRACEMONKEY);
    // 150 dpi: 14 pages take well over the 300 ms left after the reserve.
    const handler = createRenderHandler(testConfig({ DPI: '150' }), via.s3, { reserveMs: 1_000 });
    const end = Date.now() + 1_300;
    await expect(handler(s3PutEvent(BUCKET, 'incoming/f.pdf'), { getRemainingTimeInMillis: () => end - Date.now() })).rejects.toThrow(/out of time/);
    const partial = await manifestAt(BUCKET, 'rendered/f.pdf/manifest.json');
    expect(partial.status).toBe('partial');
    expect(partial.nextPage).toBeGreaterThanOrEqual(1);
    expect(partial.nextPage).toBeLessThan(14);
    const done = renderedPages(partial).map((p) => p.number);
    expect(done).toEqual(Array.from({ length: partial.nextPage! - 1 }, (_, i) => i + 1));

    via.proxy.log.length = 0;
    await handler(s3PutEvent(BUCKET, 'incoming/f.pdf'), { getRemainingTimeInMillis: () => 600_000 });
    const complete = await manifestAt(BUCKET, 'rendered/f.pdf/manifest.json');
    expect(complete.status).toBe('complete');
    expect(complete.generation).toBe(partial.generation);
    expect(renderedPages(complete).map((p) => p.number)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    // Uploads run side by side, so they reach the server in any order.
    const reuploaded = via.proxy.log.filter((line) => /^PUT \/uploads\/rendered\/f\.pdf\/[0-9a-f]{16}\/page-/.test(line)).map((line) => Number(/page-(\d+)/.exec(line)![1]));
    expect(reuploaded.sort((a, b) => a - b)).toEqual(Array.from({ length: 14 - done.length }, (_, i) => partial.nextPage! + i));
  });

  it('leaves nothing of a job in the temporary directory, after success or failure', async () => {
    const before = jobDirs();
    await upload('incoming/ok.pdf', MATPLOTLIB);
    await putObject(s3, BUCKET, 'incoming/bad.pdf', 'not a pdf at all');
    await createRenderHandler(config, s3)({ Records: [...s3PutEvent(BUCKET, 'incoming/ok.pdf').Records, ...s3PutEvent(BUCKET, 'incoming/bad.pdf').Records] });
    expect(jobDirs()).toEqual(before);
  });
});
