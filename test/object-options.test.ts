/**
 * Per-object options (docs/contract.md, "Per-object options"): render-* metadata on an upload
 * overrides the function's settings for that object, feeds the options hash, and is validated
 * at the edge: a bad value is INVALID_OPTIONS naming the key; an unknown render-* key a warning.
 */
import { readFile } from 'node:fs/promises';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeEach, describe, expect, it } from 'vitest';
import { objectOptions } from '../lib/config/object-options.js';
import { loadConfig, type Config } from '../lib/config/env.js';
import { classify } from '../lib/job/freshness.js';
import { optionsHash, type Manifest } from '../lib/job/manifest.js';
import { DEFAULT_JOB_OPTIONS, formatPageSelection, parsePageSelection, pickJobOptions, selectionHead, selectionWithin } from '../lib/job/options.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { s3PutEvent } from '../lib/s3/event.js';
import { RENDERER } from '../lib/job/version.js';
import { CORPUS, createBucket, getBytes, listKeys, getText, resetS3, testConfig, testS3Client } from './support/s3.js';
import { decodePng, decodeWebp } from './engine/helpers.js';
import { readV2Manifest, renderedPages } from './support/manifests.js';

const BUCKET = 'meta';
let s3: S3Client;
let config: Config;

beforeEach(async () => {
  await resetS3();
  config = testConfig({ DPI: '40', SOURCE_BUCKET: BUCKET });
  s3 = testS3Client(config);
  await createBucket(s3, BUCKET);
});

async function upload(key: string, file: string, metadata: Record<string, string> = {}): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(`${CORPUS}${file}`), Metadata: metadata }));
}

const manifestOf = (name: string): Promise<Manifest> => readV2Manifest(s3, BUCKET, `rendered/${name}/manifest.json`);

describe('per-object options from S3 metadata', () => {
  it('render-pages 2-3 and render-dpi 72 give exactly pages 2-3 at 72 dpi; a second event is skipped; a re-upload without metadata renders every page at the default', async () => {
    const handler = createRenderHandler(config, s3);
    await upload('incoming/doc.pdf', 'arabic-rotations-4p.pdf', { 'render-pages': '2-3', 'render-dpi': '72' });
    expect((await handler(s3PutEvent(BUCKET, 'incoming/doc.pdf'))).records[0]).toMatchObject({ outcome: 'rendered', status: 'complete' });
    const chosen = await manifestOf('doc.pdf');
    expect(chosen.options).toMatchObject({ pages: '2-3', dpi: 72 });
    expect(renderedPages(chosen).map((p) => [p.number, p.dpi])).toEqual([[2, 72], [3, 72]]);
    expect(chosen.pageCount).toBe(4);
    expect((await listKeys(s3, BUCKET, 'rendered/doc.pdf/')).filter((k) => k.includes('/page-'))).toHaveLength(2);

    expect((await handler(s3PutEvent(BUCKET, 'incoming/doc.pdf'))).records[0]!.outcome).toBe('up-to-date');

    await upload('incoming/doc.pdf', 'arabic-rotations-4p.pdf');
    expect((await handler(s3PutEvent(BUCKET, 'incoming/doc.pdf'))).records[0]!.outcome).toBe('rendered');
    const all = await manifestOf('doc.pdf');
    expect(all.options).toMatchObject({ pages: '1-', dpi: 40 });
    expect(all.optionsHash).not.toBe(chosen.optionsHash);
    expect(all.generation).not.toBe(chosen.generation);
    expect(renderedPages(all).map((p) => [p.number, p.dpi])).toEqual([[1, 40], [2, 40], [3, 40], [4, 40]]);
  });

  it('an invalid value is a failed INVALID_OPTIONS manifest naming the key, the value and what is allowed; the invocation succeeds', async () => {
    await upload('incoming/bad.pdf', 'matplotlib-type3.pdf', { 'render-dpi': '5000' });
    expect((await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/bad.pdf'))).records[0]).toMatchObject({ outcome: 'rendered', status: 'failed' });
    const manifest = await manifestOf('bad.pdf');
    expect(manifest.error?.code).toBe('INVALID_OPTIONS');
    expect(manifest.error?.message).toBe('object metadata render-dpi="5000" is invalid: expected a whole number from 1 to 1200');
    expect(manifest.pages).toEqual([]);
  });

  it('an unknown render-* key is a warning in the manifest, and the render goes on', async () => {
    await upload('incoming/colour.pdf', 'matplotlib-type3.pdf', { 'render-colour': 'red', owner: 'someone' });
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/colour.pdf'));
    const manifest = await manifestOf('colour.pdf');
    expect(manifest.status).toBe('complete');
    expect(manifest.warnings).toContainEqual(expect.stringMatching(/^object metadata render-colour="red" ignored: not a render option \(known: render-dpi, /));
    expect(manifest.warnings.join('\n')).not.toContain('owner');
  });

  it('parses every render-* key with the same rules as the environment', () => {
    const base = { ...DEFAULT_JOB_OPTIONS, dpi: 40 };
    expect(objectOptions(base, undefined)).toEqual({ ok: true, options: base, warnings: [] });
    expect(objectOptions(base, { 'render-format': 'JPG', 'render-quality': '60', 'render-pages': '7, 1-3,2', 'render-thumbnail-width': '256', 'render-text': 'true' })).toEqual({
      ok: true,
      options: { ...base, format: 'jpeg', jpegQuality: 60, pages: '1-3,7', thumbnailWidth: 256, pageText: true },
      warnings: [],
    });
    for (const [key, value, message] of [
      ['render-format', 'tiff', 'expected "png", "jpeg", "webp" or "avif"'],
      ['render-pages', '3-1', 'expected pages such as "1-3,7,10-"'],
      ['render-thumbnail-width', '99999', 'expected a whole number from 0 to 2048'],
      ['render-text', 'maybe', 'expected "true" or "false"'],
    ]) {
      const result = objectOptions(base, { [key!]: value! });
      expect(result.ok, key).toBe(false);
      expect(!result.ok && result.message, key).toContain(`${key}=${JSON.stringify(value)} is invalid: ${message}`);
    }
  });

  it('render-quality is the quality of the format asked for (JPEG, WebP, AVIF); PNG has none and refuses it', () => {
    const base = { ...DEFAULT_JOB_OPTIONS, dpi: 40 };
    const quality = (metadata: Record<string, string>) => objectOptions(base, metadata);
    expect(quality({ 'render-format': 'jpeg', 'render-quality': '30' })).toMatchObject({ ok: true, options: { format: 'jpeg', jpegQuality: 30, webpQuality: 80, avifQuality: 60 } });
    expect(quality({ 'render-format': 'webp', 'render-quality': '30' })).toMatchObject({ ok: true, options: { format: 'webp', jpegQuality: 85, webpQuality: 30, avifQuality: 60 } });
    expect(quality({ 'render-format': 'avif', 'render-quality': '30' })).toMatchObject({ ok: true, options: { format: 'avif', jpegQuality: 85, webpQuality: 80, avifQuality: 30 } });
    // The function's FORMAT decides when the object names none.
    expect(objectOptions({ ...base, format: 'avif' }, { 'render-quality': '25' })).toMatchObject({ ok: true, options: { format: 'avif', avifQuality: 25, jpegQuality: 85 } });
    expect(quality({ 'render-quality': '60' })).toEqual({ ok: false, message: 'object metadata render-quality="60" is invalid: a PNG page has no quality (it sets the quality of jpeg, webp or avif)' });
    expect(quality({ 'render-format': 'avif', 'render-quality': '0' })).toEqual({ ok: false, message: 'object metadata render-quality="0" is invalid: expected a whole number from 1 to 100' });
    expect(quality({ 'render-format': 'webp', 'render-quality': '30', 'render-webp-quality': '40' })).toMatchObject({ ok: false, message: expect.stringMatching(/both set the webp quality, give one$/) });
  });
});

describe('fit-to-box sizing (render-width, render-height, WIDTH, HEIGHT)', () => {
  /** arabic-rotations-4p.pdf: A4 pages, landscape and portrait in turn. */
  const A4 = { long: 841.8897705078125, short: 595.2755737304688 };

  it('render-width=800 gives every page, landscape or portrait, an image 800 px wide; the manifest records each size and DPI', async () => {
    await upload('incoming/wide.pdf', 'arabic-rotations-4p.pdf', { 'render-width': '800' });
    expect((await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/wide.pdf'))).records[0]).toMatchObject({ status: 'complete' });
    const manifest = await manifestOf('wide.pdf');
    // The box replaces the function's DPI (40 here); dpi is then the most a page is drawn at.
    expect(manifest.options).toMatchObject({ width: 800, dpi: 1200 });
    expect(manifest.options).not.toHaveProperty('height');
    const pages = renderedPages(manifest);
    expect(pages.map((p) => [p.number, p.width, p.height])).toEqual([
      [1, 800, Math.ceil((800 * A4.short) / A4.long)],
      [2, 800, Math.ceil((800 * A4.long) / A4.short)],
      [3, 800, Math.ceil((800 * A4.short) / A4.long)],
      [4, 800, Math.ceil((800 * A4.long) / A4.short)],
    ]);
    for (const page of pages) {
      expect(page.dpi).toBeCloseTo((72 * 800) / (page.number % 2 ? A4.long : A4.short), 2);
      // MuPDF drew exactly the size the manifest says.
      const png = decodePng(await getBytes(s3, BUCKET, page.key));
      expect([png.width, png.height], `page ${page.number}`).toEqual([page.width, page.height]);
    }
  });

  it('render-width and render-height together fit each page inside the box', async () => {
    await upload('incoming/box.pdf', 'arabic-rotations-4p.pdf', { 'render-width': '800', 'render-height': '600' });
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/box.pdf'));
    const manifest = await manifestOf('box.pdf');
    expect(manifest.options).toMatchObject({ width: 800, height: 600 });
    // Landscape pages meet the width, portrait ones the height.
    expect(renderedPages(manifest).map((p) => [p.width, p.height])).toEqual([
      [800, 566],
      [Math.ceil((600 * A4.short) / A4.long), 600],
      [800, 566],
      [Math.ceil((600 * A4.short) / A4.long), 600],
    ]);
  });

  it('render-dpi together with render-width is INVALID_OPTIONS, naming both', async () => {
    await upload('incoming/both.pdf', 'matplotlib-type3.pdf', { 'render-dpi': '300', 'render-width': '800' });
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/both.pdf'));
    const manifest = await manifestOf('both.pdf');
    expect(manifest.error).toEqual({
      code: 'INVALID_OPTIONS',
      message: 'object metadata render-dpi="300" with render-width=800 is invalid: size pages by a DPI or by a box (width and/or height, in pixels), not both',
    });
  });

  it("an object's sizing replaces the function's whole; WIDTH beats the function's own DPI; bad sides are refused", () => {
    const boxed = loadConfig({ WIDTH: '800', HEIGHT: '600', DPI: '300' }).output;
    expect(boxed).toMatchObject({ width: 800, height: 600, dpi: 1200 });
    expect(objectOptions(boxed, { 'render-dpi': '72' })).toMatchObject({ ok: true, options: { dpi: 72 } });
    expect(objectOptions(boxed, { 'render-dpi': '72' }).ok && objectOptions(boxed, { 'render-dpi': '72' })).not.toHaveProperty('options.width');
    const narrower = objectOptions(boxed, { 'render-width': '320' });
    expect(narrower.ok && narrower.options).toMatchObject({ width: 320, dpi: 1200 });
    expect(narrower.ok && narrower.options).not.toHaveProperty('height');
    expect(objectOptions(boxed, { 'render-format': 'jpeg' })).toMatchObject({ ok: true, options: { width: 800, height: 600 } });
    for (const value of ['0', '65536', '80%']) {
      expect(objectOptions(boxed, { 'render-height': value })).toEqual({ ok: false, message: `object metadata render-height=${JSON.stringify(value)} is invalid: expected a whole number from 1 to 65535` });
    }
    expect(() => loadConfig({ WIDTH: 'wide' })).toThrow(/^WIDTH="wide" is invalid: expected a whole number from 1 to 65535$/);
  });

  it('a render without a box keeps the options hash it had before boxes existed (no stale renders from the upgrade)', () => {
    // The hash of the defaults as the previous release computed it (its pickJobOptions had no box).
    expect(optionsHash(DEFAULT_JOB_OPTIONS)).toBe('825d360726cd7338');
    // And JPEG's and WebP's renders keep theirs now that AVIF has a quality of its own.
    expect(optionsHash({ ...DEFAULT_JOB_OPTIONS, format: 'jpeg' })).toBe('528a85f8670a4ddb');
    expect(optionsHash({ ...DEFAULT_JOB_OPTIONS, format: 'webp' })).toBe('ebf5f43fff88c624');
  });

  it('the freshness rule: a changed WIDTH is stale; a changed DPI under a WIDTH is not (the box decides)', () => {
    const source = { etag: '"0123"' };
    const rendered = { ...DEFAULT_JOB_OPTIONS, ...loadConfig({ WIDTH: '800' }).output };
    const manifest = { schemaVersion: 2, status: 'complete', source, renderer: { name: 's3-pdf-render', version: RENDERER.version, mupdf: '' }, options: rendered, optionsHash: optionsHash(rendered) } as unknown as Manifest;
    expect(classify(manifest, source, loadConfig({ WIDTH: '800', DPI: '72' }).output, false)).toMatchObject({ class: 'ok' });
    expect(classify(manifest, source, loadConfig({ WIDTH: '600' }).output, false)).toMatchObject({ class: 'stale', reason: 'rendered with other options' });
    expect(classify(manifest, source, loadConfig({ WIDTH: '800', HEIGHT: '800' }).output, false)).toMatchObject({ class: 'stale' });
    expect(classify(manifest, source, loadConfig({}).output, false)).toMatchObject({ class: 'stale' });
  });
});

describe('WebP through S3 (render-format=webp, FORMAT=webp)', () => {
  it('render-format=webp with render-width=800: .webp pages of image/webp, 800 px wide, that decode; the manifest records WebP and its quality', async () => {
    await upload('incoming/web.pdf', 'arabic-rotations-4p.pdf', { 'render-format': 'webp', 'render-width': '800' });
    expect((await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/web.pdf'))).records[0]).toMatchObject({ status: 'complete' });
    const manifest = await manifestOf('web.pdf');
    expect(manifest.options).toMatchObject({ format: 'webp', webpQuality: 80, width: 800 });
    const pages = renderedPages(manifest);
    expect(pages).toHaveLength(4);
    for (const page of pages) {
      expect(page.key).toMatch(/\/page-000\d\.webp$/);
      expect(page).toMatchObject({ width: 800, contentType: 'image/webp' });
      const webp = await getBytes(s3, BUCKET, page.key);
      expect(webp.byteLength).toBe(page.bytes);
      expect(await decodeWebp(webp)).toMatchObject({ width: page.width, height: page.height });
      const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: page.key }));
      expect(head.ContentType).toBe('image/webp');
      expect(head.Metadata?.['dpi']).toBe(String(page.dpi));
    }
  });

  it('WEBP_QUALITY feeds the hash of WebP renders only: a WebP render goes stale when it changes, a PNG one does not', () => {
    const source = { etag: '"0123"' };
    const manifestOf = (env: Record<string, string>): Manifest => {
      const rendered = loadConfig(env).output;
      return { schemaVersion: 2, status: 'complete', source, renderer: { name: 's3-pdf-render', version: RENDERER.version, mupdf: '' }, options: rendered, optionsHash: optionsHash(rendered) } as unknown as Manifest;
    };
    expect(classify(manifestOf({ FORMAT: 'webp' }), source, loadConfig({ FORMAT: 'webp', WEBP_QUALITY: '60' }).output, false)).toMatchObject({ class: 'stale' });
    expect(classify(manifestOf({ FORMAT: 'webp' }), source, loadConfig({ FORMAT: 'webp', WEBP_QUALITY: '80' }).output, false)).toMatchObject({ class: 'ok' });
    expect(classify(manifestOf({}), source, loadConfig({ WEBP_QUALITY: '60' }).output, false)).toMatchObject({ class: 'ok' });
    expect(() => loadConfig({ WEBP_QUALITY: '0' })).toThrow(/^WEBP_QUALITY="0" is invalid: expected a whole number from 1 to 100$/);
  });

  it('AVIF_QUALITY feeds the hash of AVIF renders only and is recorded for them only', () => {
    const source = { etag: '"0123"' };
    const manifestOf = (env: Record<string, string>): Manifest => {
      const rendered = loadConfig(env).output;
      return { schemaVersion: 2, status: 'complete', source, renderer: { name: 's3-pdf-render', version: RENDERER.version, mupdf: '' }, options: rendered, optionsHash: optionsHash(rendered) } as unknown as Manifest;
    };
    expect(classify(manifestOf({ FORMAT: 'avif' }), source, loadConfig({ FORMAT: 'avif', AVIF_QUALITY: '30' }).output, false)).toMatchObject({ class: 'stale' });
    expect(classify(manifestOf({ FORMAT: 'avif' }), source, loadConfig({ FORMAT: 'avif', AVIF_QUALITY: '60' }).output, false)).toMatchObject({ class: 'ok' });
    expect(classify(manifestOf({}), source, loadConfig({ AVIF_QUALITY: '30' }).output, false)).toMatchObject({ class: 'ok' });
    expect(classify(manifestOf({ FORMAT: 'webp' }), source, loadConfig({ FORMAT: 'webp', AVIF_QUALITY: '30' }).output, false)).toMatchObject({ class: 'ok' });
    expect(pickJobOptions({ ...loadConfig({ FORMAT: 'avif', AVIF_QUALITY: '30' }).output })).toMatchObject({ avifQuality: 30 });
    expect(pickJobOptions({ ...loadConfig({ FORMAT: 'jpeg', AVIF_QUALITY: '30' }).output })).not.toHaveProperty('avifQuality');
    expect(() => loadConfig({ AVIF_QUALITY: '101' })).toThrow(/^AVIF_QUALITY="101" is invalid: expected a whole number from 1 to 100$/);
  });
});

describe('thumbnails and page text, stored beside the pages', () => {
  it('render-thumbnail-width and render-text: thumb-NNNN.jpg and text-NNNN.json in the generation, listed in the manifest', async () => {
    await upload('incoming/paper.pdf', 'tracemonkey-paper-14p.pdf', { 'render-pages': '1-2', 'render-thumbnail-width': '128', 'render-text': 'true' });
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/paper.pdf'));
    const manifest = await manifestOf('paper.pdf');
    expect(manifest.options).toMatchObject({ pages: '1-2', thumbnailWidth: 128, pageText: true });
    const pages = renderedPages(manifest);
    expect(pages).toHaveLength(2);
    const prefix = `rendered/paper.pdf/${manifest.generation}/`;
    for (const page of pages) {
      const n = String(page.number).padStart(4, '0');
      expect(page.thumbnail).toMatchObject({ key: `${prefix}thumb-${n}.jpg`, width: 128, height: Math.round((128 * page.height) / page.width) });
      expect(page.text).toMatchObject({ key: `${prefix}text-${n}.json` });
      expect(page.text!.chars).toBeGreaterThan(500);
      const text = JSON.parse(await getText(s3, BUCKET, page.text!.key)) as { width: number; height: number; text: string; blocks: unknown[] };
      expect([text.width, text.height]).toEqual([page.width, page.height]);
      expect(text.blocks.length).toBeGreaterThan(0);
      expect(text.text.replace(/\s/g, '').length).toBe(page.text!.chars);
    }
    expect(renderedPages(manifest)[0]!.text && (JSON.parse(await getText(s3, BUCKET, pages[0]!.text!.key)) as { text: string }).text).toContain('Trace-based Just-in-Time');
    // Exactly what the manifest lists, and nothing else.
    const listed = pages.flatMap((p) => [p.key, p.thumbnail!.key, p.text!.key]);
    expect(await listKeys(s3, BUCKET, 'rendered/paper.pdf/')).toEqual([...listed, 'rendered/paper.pdf/manifest.json'].sort());
  });
});

describe('page selections', () => {
  it('are written canonically: sorted, merged, open ends kept', () => {
    expect(formatPageSelection(parsePageSelection('7, 1-3,2'))).toBe('1-3,7');
    expect(formatPageSelection(parsePageSelection('5-,1,2,3'))).toBe('1-3,5-');
    expect(formatPageSelection(parsePageSelection('1-4,3-'))).toBe('1-');
  });

  it('give the pages of one invocation: the rest from a page on, a range, the head for fan-out', () => {
    expect(selectionWithin('1-', 5)).toEqual([{ from: 5 }]);
    expect(selectionWithin('2-3,7,10-', 3, 12)).toEqual([{ from: 3, to: 3 }, { from: 7, to: 7 }, { from: 10, to: 12 }]);
    expect(selectionWithin('2-3', 4)).toEqual([]);
    expect(selectionHead('1-', 50)).toEqual([{ from: 1, to: 50 }]);
    expect(selectionHead('2-3,10-', 5)).toEqual([{ from: 2, to: 3 }, { from: 10, to: 12 }]);
  });
});
