/**
 * A region of a page (IIIF tiles and sizes, RenderOptions.region) drawn through a clip at the
 * scale asked for: its pixels equal the same pixels of the whole page drawn at that scale
 * (within ±2 levels), for /Rotate 90 pages and a CropBox smaller than the MediaBox, turned and
 * mirrored; gray and bitonal are 8-bit gray; and the deepest tile of a 30000 px page costs a
 * tile's memory, not the page's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS, fullImageOf, type PageBox, type PageRegion, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { writeGiantPagePdf } from '../fixtures/generated-pdfs.js';
import { corpusFile } from '../../tools/corpus.js';
import { collect, decodePng, writeCroppedPdf } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'region-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 2 ** 20;

type Image = { width: number; height: number; data: Buffer };

async function renderPng(file: string, extra: Partial<RenderOptions>): Promise<{ image: Image; boxes: readonly PageBox[] | undefined }> {
  const job = await startRender(file, { ...DEFAULT_OUTPUT_OPTIONS, format: 'png', maxPagePixels: 1_000_000_000, pages: [{ from: 1, to: 1 }], ...extra });
  const boxes = job.pageBoxes;
  const [page] = await collect(job);
  if (!page?.ok) throw new Error(`page failed: ${JSON.stringify(page)}`);
  return { image: decodePng(page.bytes), boxes };
}

/** RGB of the pixel (x, y); pngjs decodes to RGBA whatever the PNG's color type. */
const rgb = (image: Image, x: number, y: number): number[] => {
  const at = (y * image.width + x) * 4;
  return [image.data[at]!, image.data[at + 1]!, image.data[at + 2]!];
};

/** The pixel of the unturned region (size w x h) that output pixel (u, v) shows, after mirroring and turning clockwise. */
function sourceOf(u: number, v: number, w: number, h: number, rotate: PageRegion['rotate'], mirror: boolean): [number, number] {
  let a: number;
  let b: number;
  if (rotate === 0) [a, b] = [u, v];
  else if (rotate === 90) [a, b] = [v, h - 1 - u];
  else if (rotate === 180) [a, b] = [w - 1 - u, h - 1 - v];
  else [a, b] = [w - 1 - v, u];
  return [mirror ? w - 1 - a : a, b];
}

/** Largest difference of any channel between the tile and the page's pixels it shows, and how many pixels differ by more than 2. */
function compare(tile: Image, page: Image, at: { x: number; y: number; w: number; h: number }, rotate: PageRegion['rotate'], mirror: boolean): { max: number; over2: number } {
  let max = 0;
  let over2 = 0;
  for (let v = 0; v < tile.height; v++) {
    for (let u = 0; u < tile.width; u++) {
      const [a, b] = sourceOf(u, v, at.w, at.h, rotate, mirror);
      const t = rgb(tile, u, v);
      const p = rgb(page, at.x + a, at.y + b);
      const d = Math.max(...t.map((c, i) => Math.abs(c - p[i]!)));
      max = Math.max(max, d);
      if (d > 2) over2++;
    }
  }
  return { max, over2 };
}

/**
 * The tile shows the page's pixels: at most 3% of them differ by more than 2 levels, and none
 * by more than 40. Where a sloped stroke's anti-aliased edge crosses the tile, MuPDF samples it
 * on a grid one sub-sample apart from the whole page's (17x15 samples a pixel: up to ~25
 * levels; measured 2.2% of a 150x110 tile of the CropBox page's diagonal rules, 0 on the A0
 * poster); text, fills and images come out the same. Moved by one pixel either way, the
 * tile matches no better (off by a pixel, the 1.5% of the rotated table's tile is ~25%).
 */
function expectSamePixels(tile: Image, page: Image, at: { x: number; y: number; w: number; h: number }, rotate: PageRegion['rotate'], mirror: boolean, what: string): void {
  const diff = compare(tile, page, at, rotate, mirror);
  const pixels = tile.width * tile.height;
  expect(diff.max, what).toBeLessThanOrEqual(40);
  expect(diff.over2, what).toBeLessThanOrEqual(pixels * 0.03);
  for (const [dx, dy] of [[1, 0], [0, 1]] as const) {
    const moved = { ...at, x: Math.max(0, at.x - dx), y: Math.max(0, at.y - dy) };
    if (moved.x === at.x && moved.y === at.y) continue;
    expect(compare(tile, page, moved, rotate, mirror).over2, `${what} moved by ${dx},${dy}`).toBeGreaterThanOrEqual(diff.over2);
  }
}

const CASES = [
  { name: 'a0-poster-rotate90.pdf (/Rotate 90)', file: () => corpusFile('a0-poster-rotate90.pdf'), dpi: 24 },
  { name: 'nics-table-rotate90.pdf (/Rotate 90)', file: () => corpusFile('nics-table-rotate90.pdf'), dpi: 60 },
  { name: 'a CropBox inside the MediaBox', file: () => join(dir, 'cropped.pdf'), dpi: 100 },
];

beforeAll(() => writeCroppedPdf(join(dir, 'cropped.pdf')));

describe('a region drawn through a clip', () => {
  for (const c of CASES) {
    it(`${c.name}: tiles at full scale, turned and mirrored, and at half scale, equal the page's pixels`, { timeout: 120_000 }, async () => {
      const { image: page, boxes } = await renderPng(c.file(), { dpi: c.dpi, pageBoxes: true });
      const box = boxes![0]!;
      const full = fullImageOf(box, c.dpi, 1_000_000_000)!;
      expect({ width: page.width, height: page.height }).toEqual({ width: full.width, height: full.height });
      // A tile in the middle, and the last (partial) tile at the bottom-right corner.
      const tiles = [
        { x: Math.floor(full.width / 3), y: Math.floor(full.height / 4), w: 150, h: 110 },
        { x: full.width - 70, y: full.height - 50, w: 70, h: 50 },
      ];
      for (const t of tiles) {
        for (const [rotate, mirror] of [[0, false], [90, false], [180, true], [270, false], [90, true]] as const) {
          const region: PageRegion = { ...t, width: t.w, height: t.h, rotate, mirror, quality: 'color' };
          const { image: tile } = await renderPng(c.file(), { dpi: c.dpi, region });
          expect({ width: tile.width, height: tile.height }).toEqual(rotate % 180 === 0 ? { width: t.w, height: t.h } : { width: t.h, height: t.w });
          expectSamePixels(tile, page, t, rotate, mirror, JSON.stringify(region));
        }
      }
      // Half scale: a region drawn at half its size equals the page drawn at half the DPI.
      const { image: half } = await renderPng(c.file(), { dpi: c.dpi / 2 });
      const t = { x: 2 * Math.floor(full.width / 6), y: 2 * Math.floor(full.height / 8), w: 200, h: 160 };
      const { image: tile } = await renderPng(c.file(), { dpi: c.dpi, region: { ...t, width: 100, height: 80, rotate: 0, mirror: false, quality: 'color' } });
      expectSamePixels(tile, half, { x: t.x / 2, y: t.y / 2, w: 100, h: 80 }, 0, false, 'half scale');
    });
  }

  it('gray and bitonal come out as 8-bit gray: gray is the luma of the colour pixels, bitonal only black and white', { timeout: 60_000 }, async () => {
    const file = join(dir, 'cropped.pdf');
    const t = { x: 0, y: 0, w: 300, h: 300 };
    const { image: color } = await renderPng(file, { dpi: 100, region: { ...t, width: 300, height: 300, rotate: 0, mirror: false, quality: 'color' } });
    const { image: gray } = await renderPng(file, { dpi: 100, region: { ...t, width: 300, height: 300, rotate: 0, mirror: false, quality: 'gray' } });
    const { image: bitonal } = await renderPng(file, { dpi: 100, region: { ...t, width: 300, height: 300, rotate: 0, mirror: false, quality: 'bitonal' } });
    let colorful = 0;
    let lumaOff = 0;
    let notGray = 0;
    let notBitonal = 0;
    for (let i = 0; i < 300 * 300; i++) {
      const [r, g, b] = [color.data[4 * i]!, color.data[4 * i + 1]!, color.data[4 * i + 2]!];
      if (Math.abs(r - g) > 30) colorful++;
      const y = gray.data[4 * i]!;
      if (gray.data[4 * i + 1] !== y || gray.data[4 * i + 2] !== y) notGray++;
      if (Math.abs(y - (0.299 * r + 0.587 * g + 0.114 * b)) > 1) lumaOff++;
      if (bitonal.data[4 * i] !== 0 && bitonal.data[4 * i] !== 255) notBitonal++;
    }
    expect(colorful).toBeGreaterThan(1000);
    expect({ lumaOff, notGray, notBitonal }).toEqual({ lumaOff: 0, notGray: 0, notBitonal: 0 });
  });
});

describe('a tile of a giant page', () => {
  it('the deepest 512 px tile of a 30000x30000 px page is drawn in a tile\'s memory, not the page\'s', { timeout: 120_000 }, async () => {
    const file = join(dir, 'giant-page.pdf');
    await writeGiantPagePdf(file);
    const region: PageRegion = { x: 30000 - 512, y: 30000 - 512, w: 512, h: 512, width: 512, height: 512, rotate: 0, mirror: false, quality: 'color' };
    const job = await startRender(file, { ...DEFAULT_OUTPUT_OPTIONS, format: 'png', dpi: 150, maxPagePixels: 1_000_000_000, region });
    const [page] = await collect(job);
    if (!page?.ok) throw new Error(`page failed: ${JSON.stringify(page)}`);
    const tile = decodePng(page.bytes);
    expect({ width: tile.width, height: tile.height }).toEqual({ width: 512, height: 512 });
    // The page's grid (blue lines every 600 pt = 1250 px) crosses the tile: it is the page's content, not blank.
    let blue = 0;
    for (let i = 0; i < 512 * 512; i++) if (tile.data[4 * i + 2]! > 200 && tile.data[4 * i]! < 100) blue++;
    expect(blue).toBeGreaterThan(512);
    // The whole page would be 2.7 GB of RGB; one tile is 786 KB. MuPDF's own baseline is a few tens of MiB.
    expect(job.stats.wasmHeapPeakBytes).toBeLessThan(64 * MiB);
  });
});
