/**
 * Nothing of a replaced source survives its successor's commit: for every image format of the
 * formats table (lib/encode/formats.ts), with thumbnails, page text and the page function's
 * variants in every format, and the completion event's marker, each kind of output of the old
 * source is gone once the new one commits. Against the local S3 (moto), through the real render handler and page handler.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FILE_EXTENSION, IMAGE_FORMATS, type ImageFormat } from '../lib/encode/formats.js';
import { loadPageConfig } from '../lib/config/page.js';
import { createPageHandler } from '../lib/on-demand/handler.js';
import { SourceCache } from '../lib/on-demand/source-cache.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { s3PutEvent } from '../lib/s3/event.js';
import { outputLocation } from '../lib/s3/layout.js';
import { writeMarker } from '../lib/s3/marker-store.js';
import { functionUrlEvent } from '../tools/function-url.js';
import { readV2Manifest } from './support/manifests.js';
import { CORPUS, createBucket, listKeys, resetS3, s3Endpoint, testConfig, testS3Client } from './support/s3.js';

const BUCKET = 'uploads';
const ENV = { DPI: '30', SOURCE_BUCKET: BUCKET };
let s3: S3Client;
let cacheDir: string;

beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'sweep-cache-'));
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});
beforeEach(async () => {
  await resetS3();
  s3 = testS3Client(testConfig(ENV));
  await createBucket(s3, BUCKET);
});

/** The kind of an output file, by its name: page-0001.webp is "page.webp". */
const kindOf = (key: string): string => key.split('/').pop()!.replace(/-\d{4,}(-[0-9a-f]{16})?\./, '.');

describe('a replaced source leaves nothing behind', () => {
  it.each(IMAGE_FORMATS.map((format) => [format]))('%s pages with thumbnails, text and variants of every format: all gone after the new commit', async (format: ImageFormat) => {
    const config = testConfig(ENV);
    // Completion events on (a bus that takes everything): each commit leaves its marker, which goes with its generation.
    const render = createRenderHandler(config, s3, { events: { put: async () => undefined } });
    const page = createPageHandler(loadPageConfig({ S3_ENDPOINT: s3Endpoint(), ...ENV }), { s3, cache: new SourceCache(join(cacheDir, format), 64 * 2 ** 20) });
    const key = `incoming/sweep/${format}.pdf`;
    const prefix = `rendered/sweep/${format}.pdf/`;
    const upload = async (file: string) =>
      s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: key,
          Body: await readFile(join(CORPUS, file)),
          Metadata: { 'render-format': format, 'render-thumbnail-width': '48', 'render-text': 'true' },
        }),
      );

    await upload('arabic-rotations-4p.pdf');
    expect((await render(s3PutEvent(BUCKET, key))).records[0]).toMatchObject({ outcome: 'rendered', status: 'complete' });
    for (const variant of IMAGE_FORMATS) {
      const answer = await page(functionUrlEvent('GET', `/${encodeURIComponent(key)}?page=2&width=64&format=${variant}`));
      expect(answer.statusCode, String(answer.body)).toBe(302);
    }
    const old = await readV2Manifest(s3, BUCKET, `${prefix}manifest.json`);
    const before = await listKeys(s3, BUCKET, prefix);
    // Every kind of output is there to be swept: pages, thumbnails, text, variants of each format.
    const extension = (f: ImageFormat) => FILE_EXTENSION[f];
    expect(new Set(before.map(kindOf))).toEqual(new Set(['manifest.json', 'announced.json', `page.${extension(format)}`, 'thumb.jpg', 'text.json', ...IMAGE_FORMATS.map((f) => `variant.${extension(f)}`)]));

    await upload('matplotlib-type3.pdf');
    expect((await render(s3PutEvent(BUCKET, key))).records[0]).toMatchObject({ outcome: 'rendered', status: 'complete' });
    const current = await readV2Manifest(s3, BUCKET, `${prefix}manifest.json`);
    expect(current.generation).not.toBe(old.generation);
    const left = (await listKeys(s3, BUCKET, prefix)).filter((k) => k !== `${prefix}manifest.json` && !k.startsWith(`${prefix}${current.generation}/`));
    expect(left, 'outputs of the replaced source').toEqual([]);
  });

  it('a completion marker written after a newer render committed and cleaned up is removed at once, not left behind', async () => {
    const config = testConfig(ENV);
    const key = 'incoming/sweep/marker.pdf';
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(join(CORPUS, 'matplotlib-type3.pdf')) }));
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, key));
    const out = outputLocation(BUCKET, key, config);
    const current = await readV2Manifest(s3, BUCKET, `${out.prefix}manifest.json`);
    // An older render's announcement, late: its generation is no longer the committed one.
    await writeMarker(s3, out, 'a0a0a0a0a0a0a0a0', 'a0a0a0a0a0a0a0a0-complete-old');
    expect(await listKeys(s3, BUCKET, `${out.prefix}a0a0a0a0a0a0a0a0/`)).toEqual([]);
    // The committed generation's marker stays.
    await writeMarker(s3, out, current.generation, `${current.generation}-complete-x`);
    expect(await listKeys(s3, BUCKET, `${out.prefix}${current.generation}/`)).toContain(`${out.prefix}${current.generation}/announced.json`);
  });
});
