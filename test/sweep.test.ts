/**
 * Nothing of a replaced source survives its successor's commit: for every image format of the
 * formats table (lib/encode/formats.ts), with thumbnails, page text and the page function's
 * variants in every format, each kind of output of the old source is gone once the new one
 * commits. Against the local S3 (moto), through the real render handler and page handler.
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
    const render = createRenderHandler(config, s3);
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
    expect(new Set(before.map(kindOf))).toEqual(new Set(['manifest.json', `page.${extension(format)}`, 'thumb.jpg', 'text.json', ...IMAGE_FORMATS.map((f) => `variant.${extension(f)}`)]));

    await upload('matplotlib-type3.pdf');
    expect((await render(s3PutEvent(BUCKET, key))).records[0]).toMatchObject({ outcome: 'rendered', status: 'complete' });
    const current = await readV2Manifest(s3, BUCKET, `${prefix}manifest.json`);
    expect(current.generation).not.toBe(old.generation);
    const left = (await listKeys(s3, BUCKET, prefix)).filter((k) => k !== `${prefix}manifest.json` && !k.startsWith(`${prefix}${current.generation}/`));
    expect(left, 'outputs of the replaced source').toEqual([]);
  });
});
