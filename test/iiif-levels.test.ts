/**
 * The IIIF level cache (lib/iiif/levels.ts): tiles of info.json's grid cut from a page's level in
 * /tmp. The cache alone (one draw for concurrent requests, no file left by a failed draw, the
 * budget and its least-recently-used eviction, a header that names the etag), then the page
 * function on the local S3 server: a level is drawn once and its other tiles draw nothing (the
 * request log's `levelCache` field), its tiles are the whole page's pixels drawn at that scale, a
 * re-upload draws a new level, and a level over the budget (the 30000 px page's) takes the
 * region path.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadPageConfig } from '../lib/config/page.js';
import { DEFAULT_OUTPUT_OPTIONS } from '../lib/engine/options.js';
import { startRender } from '../lib/engine/render.js';
import { LevelCache, levelFileBytes, writeLevelFile, type LevelRaster } from '../lib/iiif/levels.js';
import { logger } from '../lib/observability.js';
import { HttpError } from '../lib/on-demand/errors.js';
import { createPageHandler, type PageResult } from '../lib/on-demand/handler.js';
import { SourceCache } from '../lib/on-demand/source-cache.js';
import { corpusFile } from '../tools/corpus.js';
import { functionUrlEvent } from '../tools/function-url.js';
import { collect, decodePng, writeCroppedPdf } from './engine/helpers.js';
import { writeGiantPagePdf } from './fixtures/generated-pdfs.js';
import { createBucket, putObject, resetS3, s3Endpoint, testS3Client } from './support/s3.js';

const dir = mkdtempSync(join(tmpdir(), 'iiif-levels-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 2 ** 20;
let folders = 0;
const freshDir = (name: string): string => join(dir, `${name}-${++folders}`);

/** A level's pixels: channel c of (x, y) is a function of both, so a misplaced byte shows. */
function pixelsOf(raster: LevelRaster, seed = 0): Buffer {
  const out = Buffer.alloc(raster.width * raster.height * raster.channels);
  for (let y = 0; y < raster.height; y++) for (let x = 0; x < raster.width; x++) for (let c = 0; c < raster.channels; c++) out[(y * raster.width + x) * raster.channels + c] = (x * 7 + y * 13 + c * 101 + seed) & 255;
  return out;
}

const ID = (n: number): string => n.toString(16).padStart(64, '0');

describe('the level cache', () => {
  it('IIIF_LEVEL_CACHE_MB: 1,024 MB by default, 0 turns the cache off, a value outside 0..10240 stops start-up naming it', () => {
    const env = { SOURCE_BUCKET: 'example-bucket' };
    expect(loadPageConfig(env).page.levelCacheBytes).toBe(1024 * MiB);
    expect(loadPageConfig({ ...env, IIIF_LEVEL_CACHE_MB: '0' }).page.levelCacheBytes).toBe(0);
    for (const value of ['-1', '10241', 'lots']) expect(() => loadPageConfig({ ...env, IIIF_LEVEL_CACHE_MB: value }), value).toThrow(/^IIIF_LEVEL_CACHE_MB=/);
  });

  it('concurrent requests for one level wait for one draw; a tile reads its rows of the file', async () => {
    const cache = new LevelCache(freshDir('levels'), 10 * MiB);
    const raster: LevelRaster = { width: 40, height: 30, channels: 3 };
    let draws = 0;
    const draw = async (path: string): Promise<void> => {
      draws++;
      await new Promise((resolve) => setTimeout(resolve, 50));
      await writeLevelFile(path, raster, 'etag-1', Readable.from([pixelsOf(raster)]));
    };
    const [a, b] = await Promise.all([cache.acquire(ID(1), 'etag-1', raster, draw), cache.acquire(ID(1), 'etag-1', raster, draw)]);
    expect(draws).toBe(1);
    expect([a!.drawn, b!.drawn].sort()).toEqual([false, true]);
    const rect = { x: 3, y: 5, w: 4, h: 2 };
    const expected = Buffer.alloc(4 * 2 * 3);
    const all = pixelsOf(raster);
    for (let row = 0; row < 2; row++) all.copy(expected, row * 12, ((5 + row) * 40 + 3) * 3, ((5 + row) * 40 + 7) * 3);
    expect(Buffer.from(a!.read(rect)).equals(expected)).toBe(true);
    expect(() => a!.read({ x: 38, y: 0, w: 4, h: 1 })).toThrow(/outside the level/);
    a!.release();
    b!.release();
    const again = await cache.acquire(ID(1), 'etag-1', raster, draw);
    expect([again!.drawn, draws]).toEqual([false, 1]);
    again!.release();
    expect(cache.bytes).toBe(levelFileBytes(raster));
  });

  it('a failed draw leaves no file behind and fails every request waiting for it; the next request draws again', async () => {
    const folder = freshDir('levels');
    const cache = new LevelCache(folder, 10 * MiB);
    const raster: LevelRaster = { width: 40, height: 30, channels: 3 };
    const failing = async (path: string): Promise<void> => {
      await writeLevelFile(path, raster, 'etag-1', Readable.from([pixelsOf(raster).subarray(0, 1000)]));
      throw new Error('the renderer crashed');
    };
    const results = await Promise.allSettled([cache.acquire(ID(2), 'etag-1', raster, failing), cache.acquire(ID(2), 'etag-1', raster, failing)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await readdir(folder)).toEqual([]);
    // A file shorter than its header says is not a level either.
    const short = async (path: string): Promise<void> => writeLevelFile(path, raster, 'etag-1', Readable.from([pixelsOf(raster).subarray(0, 1000)]));
    await expect(cache.acquire(ID(2), 'etag-1', raster, short)).rejects.toThrow(/level file of/);
    expect(await readdir(folder)).toEqual([]);
    const lease = await cache.acquire(ID(2), 'etag-1', raster, (path) => writeLevelFile(path, raster, 'etag-1', Readable.from([pixelsOf(raster)])));
    expect(lease!.drawn).toBe(true);
    lease!.release();
    expect(await readdir(folder)).toEqual([`${ID(2)}.level`]);
  });

  it('least recently used levels go to stay in the budget; a level over the budget is never drawn; a leased one is never evicted', async () => {
    const folder = freshDir('levels');
    const raster: LevelRaster = { width: 10, height: 10, channels: 3 };
    const cache = new LevelCache(folder, 2 * levelFileBytes(raster));
    const drawn: string[] = [];
    const use = async (id: string, size: LevelRaster = raster) => {
      const lease = await cache.acquire(id, 'etag', size, async (path) => {
        drawn.push(id);
        await writeLevelFile(path, size, 'etag', Readable.from([pixelsOf(size)]));
      });
      return lease;
    };
    (await use(ID(1)))!.release();
    (await use(ID(2)))!.release();
    (await use(ID(1)))!.release();
    // 3 needs room: 2 is the least recently used.
    (await use(ID(3)))!.release();
    expect([cache.has(ID(1)), cache.has(ID(2)), cache.has(ID(3))]).toEqual([true, false, true]);
    expect((await readdir(folder)).sort()).toEqual([`${ID(1)}.level`, `${ID(3)}.level`]);
    expect(drawn).toEqual([ID(1), ID(2), ID(3)]);
    // Larger than the whole budget: not drawn, nothing evicted.
    expect(await use(ID(4), { width: 20, height: 20, channels: 3 })).toBeUndefined();
    expect(drawn).toHaveLength(3);
    expect([cache.has(ID(1)), cache.has(ID(3))]).toEqual([true, true]);
    // Both levels read by requests: no room for a third, and neither is evicted under them.
    const held = [await use(ID(1)), await use(ID(3))];
    expect(await use(ID(5))).toBeUndefined();
    expect([cache.has(ID(1)), cache.has(ID(3))]).toEqual([true, true]);
    for (const lease of held) lease!.release();
    expect((await use(ID(5)))!.drawn).toBe(true);
    expect(cache.bytes).toBeLessThanOrEqual(cache.budgetBytes);
  });

  it('a level file says its source etag, checked on every use; what an earlier process left is removed at the first use', async () => {
    const folder = freshDir('levels');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `${ID(9)}.level`), 'left by an earlier process');
    const cache = new LevelCache(folder, 10 * MiB);
    const raster: LevelRaster = { width: 4, height: 4, channels: 1 };
    const lease = await cache.acquire(ID(1), 'etag-old', raster, (path) => writeLevelFile(path, raster, 'etag-old', Readable.from([pixelsOf(raster)])));
    lease!.release();
    expect(await readdir(folder)).toEqual([`${ID(1)}.level`]);
    await expect(cache.acquire(ID(1), 'etag-new', raster, () => Promise.reject(new Error('not drawn')))).rejects.toThrow(/belongs to etag etag-old/);
  });
});

const BUCKET = 'iiif-levels-test';
const BASE = 'https://iiif.example.org';

type Image = { width: number; height: number; data: Buffer };

/** The page drawn whole by the engine at `dpi`, decoded to RGBA. */
async function wholePage(file: string, page: number, dpi: number): Promise<Image> {
  const job = await startRender(file, { ...DEFAULT_OUTPUT_OPTIONS, format: 'png', dpi, maxPagePixels: 1_000_000_000, pages: [{ from: page, to: page }] });
  const [result] = await collect(job);
  if (!result?.ok) throw new Error(`page failed: ${JSON.stringify(result)}`);
  return decodePng(result.bytes);
}

/** The page pixel output pixel (u, v) of a w x h region shows after mirroring and turning clockwise (region.test.ts's rule). */
function sourceOf(u: number, v: number, w: number, h: number, rotate: number, mirror: boolean): [number, number] {
  let a: number;
  let b: number;
  if (rotate === 0) [a, b] = [u, v];
  else if (rotate === 90) [a, b] = [v, h - 1 - u];
  else if (rotate === 180) [a, b] = [w - 1 - u, h - 1 - v];
  else [a, b] = [w - 1 - v, u];
  return [mirror ? w - 1 - a : a, b];
}

/** Largest channel difference between a tile (w x h at x, y of `page`, then turned) and the page there. */
function maxDifference(tile: Image, page: Image, at: { x: number; y: number; w: number; h: number }, rotate: number, mirror: boolean): number {
  let max = 0;
  for (let v = 0; v < tile.height; v++) {
    for (let u = 0; u < tile.width; u++) {
      const [a, b] = sourceOf(u, v, at.w, at.h, rotate, mirror);
      const t = (v * tile.width + u) * 4;
      const p = ((at.y + b) * page.width + at.x + a) * 4;
      for (let c = 0; c < 3; c++) max = Math.max(max, Math.abs(tile.data[t + c]! - page.data[p + c]!));
    }
  }
  return max;
}

describe('IIIF tiles from the level cache', () => {
  let s3: S3Client;
  const logged: Record<string, unknown>[] = [];

  beforeAll(async () => {
    s3 = testS3Client();
    await resetS3();
    await createBucket(s3, BUCKET);
    writeCroppedPdf(join(dir, 'cropped.pdf'));
    // The request log line says which path served a miss: what these tests count draws by.
    vi.spyOn(logger, 'info').mockImplementation(((message: string, attributes?: Record<string, unknown>) => {
      if (message === 'page request' && attributes) logged.push(attributes);
    }) as never);
  });
  afterAll(() => vi.restoreAllMocks());

  const handlerOf = (env: Record<string, string>, levels: LevelCache) =>
    createPageHandler(loadPageConfig({ SOURCE_BUCKET: BUCKET, S3_ENDPOINT: s3Endpoint(), IIIF_BASE_URL: BASE, ...env }), { s3, cache: new SourceCache(freshDir('sources'), 256 * MiB), levels });
  const get = async (handler: ReturnType<typeof handlerOf>, path: string): Promise<{ result: PageResult; level: unknown }> => {
    const result = await handler(functionUrlEvent('GET', path));
    expect(result.statusCode, `${path}: ${String(result.body)}`).toBe(200);
    return { result, level: logged.at(-1)?.['levelCache'] };
  };
  const png = (result: PageResult): Image => decodePng(Buffer.from(String(result.body), 'base64'));

  const CASES = [
    { name: 'tracemonkey-paper-14p.pdf p. 2 (vector)', key: 'incoming/levels/tracemonkey.pdf', file: () => corpusFile('tracemonkey-paper-14p.pdf'), page: 2, dpi: 100 },
    { name: 'nics-table-rotate90.pdf (/Rotate 90)', key: 'incoming/levels/nics.pdf', file: () => corpusFile('nics-table-rotate90.pdf'), page: 1, dpi: 60 },
    { name: 'a CropBox inside the MediaBox', key: 'incoming/levels/cropped.pdf', file: () => join(dir, 'cropped.pdf'), page: 1, dpi: 100 },
  ];
  for (const c of CASES) {
    it(`${c.name}: a level is drawn once, its other tiles draw nothing, and every tile is the whole page's pixels at that scale`, { timeout: 120_000 }, async () => {
      await putObject(s3, BUCKET, c.key, await readFile(c.file()));
      const handler = handlerOf({ IIIF_DPI: String(c.dpi) }, new LevelCache(freshDir('levels'), 256 * MiB));
      const id = `${encodeURIComponent(c.key)};${c.page}`;
      const info = JSON.parse(String((await get(handler, `/iiif/3/${id}/info.json`)).result.body)) as { width: number; height: number; tiles: { width: number; scaleFactors: number[] }[] };
      expect(info.tiles[0]!.scaleFactors).toContain(2);
      for (const factor of [2, 1]) {
        const whole = await wholePage(c.file(), c.page, c.dpi / factor);
        const span = 512 * factor;
        let first = true;
        for (let y = 0; y < info.height; y += span) {
          for (let x = 0; x < info.width; x += span) {
            const w = Math.min(span, info.width - x);
            const h = Math.min(span, info.height - y);
            const size = { w: Math.ceil(w / factor), h: Math.ceil(h / factor) };
            // Each tile turned or mirrored another way; the spec's w,h size.
            const [rotate, mirror] = ([[0, false], [90, false], [180, true], [270, false]] as const)[(x / span + y / span) % 4]!;
            const { result, level } = await get(handler, `/iiif/3/${id}/${x},${y},${w},${h}/${size.w},${size.h}/${mirror ? '!' : ''}${rotate}/default.png`);
            expect([level, result.headers!['x-page-cache']], `${x},${y} at ${factor}`).toEqual([first ? 'drawn' : 'cached', 'miss']);
            first = false;
            const tile = png(result);
            expect([tile.width, tile.height]).toEqual(rotate % 180 === 0 ? [size.w, size.h] : [size.h, size.w]);
            expect(maxDifference(tile, whole, { x: x / factor, y: y / factor, ...size }, rotate, mirror), `${x},${y} at ${factor}`).toBe(0);
          }
        }
        // Gray and another format from the same level: no draw either.
        const gray = await get(handler, `/iiif/3/${id}/0,0,${Math.min(span, info.width)},${Math.min(span, info.height)}/${Math.ceil(Math.min(span, info.width) / factor)},/0/gray.jpg`);
        expect([gray.level, gray.result.headers!['content-type']]).toEqual(['cached', 'image/jpeg']);
      }
      // Not a tile of the grid: drawn as a region, as before.
      expect((await get(handler, `/iiif/3/${id}/10,10,100,100/max/0/default.png`)).level).toBe('none');
    });
  }

  it('a level that cannot be drawn costs the tile nothing: its region is drawn; a level out of time is not tried again in that container', { timeout: 120_000 }, async () => {
    const whole = await wholePage(corpusFile('tracemonkey-paper-14p.pdf'), 1, 50);
    const tiles = [
      { path: '0,0,850,1024/425,512', y: 0, size: [425, 512] },
      { path: '0,1024,850,76/425,38', y: 512, size: [425, 38] },
    ];
    const keys = ['incoming/levels/undrawable.pdf', 'incoming/levels/late.pdf'];
    for (const key of keys) await putObject(s3, BUCKET, key, await readFile(corpusFile('tracemonkey-paper-14p.pdf')));
    // Each handler its own key: the tiles one stores are misses for the other.
    const ask = async (handler: ReturnType<typeof handlerOf>, key: string, tile: (typeof tiles)[number]): Promise<unknown> => {
      const { result, level } = await get(handler, `/iiif/3/${encodeURIComponent(key)}/${tile.path}/0/default.png`);
      const image = png(result);
      expect([image.width, image.height], tile.path).toEqual(tile.size);
      // A region drawn by MuPDF: the page's pixels within its anti-aliasing (test/engine/region.test.ts).
      expect(maxDifference(image, whole, { x: 0, y: tile.y, w: image.width, h: image.height }, 0, false), tile.path).toBeLessThanOrEqual(40);
      return level;
    };
    // The cache's folder lies under a file: every draw fails, as a passing fault would; each tile tries again.
    const blocked = freshDir('blocked');
    await writeFile(blocked, 'not a folder');
    const failing = handlerOf({ IIIF_DPI: '100' }, new LevelCache(join(blocked, 'levels'), 256 * MiB));
    expect([await ask(failing, keys[0]!, tiles[0]!), await ask(failing, keys[0]!, tiles[1]!)]).toEqual(['failed', 'failed']);
    // A level out of time (the level draw's deadline is half the time left) would be so again: remembered.
    let attempts = 0;
    class OutOfTime extends LevelCache {
      override acquire(): Promise<never> {
        attempts++;
        return Promise.reject(new HttpError(503, 'OUT_OF_TIME', 'the level was not drawn in time'));
      }
    }
    const late = handlerOf({ IIIF_DPI: '100' }, new OutOfTime(freshDir('late'), 256 * MiB));
    expect([await ask(late, keys[1]!, tiles[0]!), await ask(late, keys[1]!, tiles[1]!)]).toEqual(['failed', 'failed-before']);
    expect(attempts).toBe(1);
  });

  it('a re-upload (a new etag) draws a new level: the old one is never served', { timeout: 120_000 }, async () => {
    const key = 'incoming/levels/reuploaded.pdf';
    const handler = handlerOf({ IIIF_DPI: '100' }, new LevelCache(freshDir('levels'), 256 * MiB));
    const tiles: Image[] = [];
    for (const file of ['tracemonkey-paper-14p.pdf', 'federal-register-15p.pdf']) {
      await putObject(s3, BUCKET, key, await readFile(corpusFile(file)));
      const info = JSON.parse(String((await get(handler, `/iiif/3/${encodeURIComponent(key)}/info.json`)).result.body)) as { width: number; height: number };
      const [w, h] = [Math.min(1024, info.width), Math.min(1024, info.height)];
      // The same tile of level 2 as far as the request goes, over new bytes.
      const { result, level } = await get(handler, `/iiif/3/${encodeURIComponent(key)}/0,0,${w},${h}/${Math.ceil(w / 2)},${Math.ceil(h / 2)}/0/default.png`);
      expect(level, file).toBe('drawn');
      const tile = png(result);
      const whole = await wholePage(corpusFile(file), 1, 50);
      expect(maxDifference(tile, whole, { x: 0, y: 0, w: tile.width, h: tile.height }, 0, false), file).toBe(0);
      tiles.push(tile);
    }
    expect(tiles[0]!.data.equals(tiles[1]!.data)).toBe(false);
  });

  it('the budget: a level over it takes the region path, the least recently used level makes room; the 30000 px page\'s deepest tile is a region', { timeout: 300_000 }, async () => {
    const key = 'incoming/levels/budget.pdf';
    await putObject(s3, BUCKET, key, await readFile(corpusFile('tracemonkey-paper-14p.pdf')));
    // 850x1100 at 100 dpi: level 1 is 2.8 MB of RGB, over the budget; a level 2 is 0.7 MB, two are not.
    const levels = new LevelCache(freshDir('levels'), 900_000);
    const handler = handlerOf({ IIIF_DPI: '100' }, levels);
    const page = (n: number) => `/iiif/3/${encodeURIComponent(key)};${n}`;
    expect((await get(handler, `${page(2)}/0,0,512,512/max/0/default.png`)).level).toBe('none');
    expect((await get(handler, `${page(2)}/0,0,850,1024/425,512/0/default.png`)).level).toBe('drawn');
    expect((await get(handler, `${page(2)}/0,1024,850,76/425,38/0/default.png`)).level).toBe('cached');
    expect((await get(handler, `${page(3)}/0,0,850,1024/425,512/0/default.png`)).level).toBe('drawn');
    // Page 3's level took page 2's room: page 2's level is drawn again.
    expect((await get(handler, `${page(2)}/0,0,850,1024/425,512/0/default.jpg`)).level).toBe('drawn');
    expect(levels.bytes).toBeLessThanOrEqual(900_000);

    // The generated 14400 pt page at 150 dpi: 30000x30000, a 2.7 GB level 1, over the default budget (1 GiB).
    const giant = join(dir, 'giant-page.pdf');
    await writeGiantPagePdf(giant);
    const giantKey = 'incoming/levels/giant.pdf';
    await putObject(s3, BUCKET, giantKey, await readFile(giant));
    const big = handlerOf({ IIIF_DPI: '150', MAX_PAGE_PIXELS: '1000000000' }, new LevelCache(freshDir('levels'), 1024 * MiB));
    const deepest = await get(big, `/iiif/3/${encodeURIComponent(giantKey)}/29488,29488,512,512/max/0/default.png`);
    expect(deepest.level).toBe('none');
    expect([png(deepest.result).width, png(deepest.result).height]).toEqual([512, 512]);
  });
});
