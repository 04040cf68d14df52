/**
 * A level of a page (RenderOptions.level, the IIIF level cache's raster, lib/iiif/levels.ts):
 * raw rows of the page's full image scaled down by a whole factor, equal to the whole page drawn
 * at the full image's DPI / factor, for a vector page, /Rotate 90 pages and a CropBox smaller
 * than the MediaBox, in one piece and in bands; gray rows when the page is gray; and a large
 * level is drawn in a band's memory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BAND_BYTES } from '../../lib/engine/job.js';
import { DEFAULT_OUTPUT_OPTIONS, fullImageOf, levelGeometry, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { corpusFile } from '../../tools/corpus.js';
import { writeGiantPagePdf } from '../fixtures/generated-pdfs.js';
import { collect, decodePng, writeCroppedPdf } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'level-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 2 ** 20;

interface Raster {
  width: number;
  height: number;
  channels: number;
  /** Packed rows. */
  rows: Buffer;
}

async function drawLevel(file: string, dpi: number, factor: number, extra: Partial<RenderOptions> = {}): Promise<Raster & { heap: number }> {
  const job = await startRender(file, { ...DEFAULT_OUTPUT_OPTIONS, dpi, maxPagePixels: 1_000_000_000, pages: [{ from: 1, to: 1 }], level: factor, ...extra });
  const [page] = await collect(job);
  if (!page?.ok) throw new Error(`level failed: ${JSON.stringify(page)}`);
  expect(page.contentType).toBe('application/octet-stream');
  const channels = page.color === 'gray' ? 1 : 3;
  expect(page.bytes.byteLength).toBe(page.width * page.height * channels);
  return { width: page.width, height: page.height, channels, rows: page.bytes, heap: job.stats.wasmHeapPeakBytes };
}

async function drawWhole(file: string, dpi: number): Promise<Raster & { box: [number, number, number, number] }> {
  const job = await startRender(file, { ...DEFAULT_OUTPUT_OPTIONS, format: 'png', dpi, maxPagePixels: 1_000_000_000, pages: [{ from: 1, to: 1 }], pageBoxes: true });
  const box = job.pageBoxes![0]!;
  const [page] = await collect(job);
  if (!page?.ok) throw new Error(`page failed: ${JSON.stringify(page)}`);
  const png = decodePng(page.bytes);
  const rows = Buffer.alloc(png.width * png.height * 3);
  for (let i = 0; i < png.width * png.height; i++) png.data.copy(rows, i * 3, i * 4, i * 4 + 3);
  return { width: png.width, height: png.height, channels: 3, rows, box };
}

/** Largest channel difference between two rasters of one size, and how many pixels differ at all. */
function difference(a: Raster, b: Raster): { max: number; differing: number } {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.width * a.height; i++) {
    let d = 0;
    for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(a.rows[i * a.channels + (a.channels === 3 ? c : 0)]! - b.rows[i * b.channels + (b.channels === 3 ? c : 0)]!));
    max = Math.max(max, d);
    if (d > 0) differing++;
  }
  return { max, differing };
}

const CASES = [
  { name: 'tracemonkey-paper-14p.pdf (vector text and figures)', file: () => corpusFile('tracemonkey-paper-14p.pdf'), dpi: 100 },
  { name: 'nics-table-rotate90.pdf (/Rotate 90)', file: () => corpusFile('nics-table-rotate90.pdf'), dpi: 60 },
  { name: 'a0-poster-rotate90.pdf (/Rotate 90)', file: () => corpusFile('a0-poster-rotate90.pdf'), dpi: 24 },
  { name: 'a CropBox inside the MediaBox', file: () => join(dir, 'cropped.pdf'), dpi: 100 },
];

beforeAll(() => writeCroppedPdf(join(dir, 'cropped.pdf')));

describe('a level of a page', () => {
  for (const c of CASES) {
    it(`${c.name}: levels 1, 2 and 4 equal the whole page drawn at the DPI / factor, in one piece and in bands`, { timeout: 120_000 }, async () => {
      const base = await drawWhole(c.file(), c.dpi);
      const full = fullImageOf(base.box, c.dpi, 1_000_000_000)!;
      for (const factor of [1, 2, 4]) {
        const level = await drawLevel(c.file(), c.dpi, factor);
        expect({ width: level.width, height: level.height }).toEqual({ width: levelGeometry(full, factor).width, height: levelGeometry(full, factor).height });
        const whole = factor === 1 ? base : await drawWhole(c.file(), c.dpi / factor);
        expect(difference(level, whole), `level ${factor}`).toEqual({ max: 0, differing: 0 });
        // In bands of 40 rows (a level over 16 MiB is drawn so): text, fills and images come out
        // as in one piece; where a sloped stroke crosses a band's edge MuPDF samples it as it does
        // a tile's edge (test/engine/region.test.ts): measured 0 pixels off but on the CropBox
        // page's diagonal rules at level 1, 373 of 446,072 (0.08%) up to 18 levels.
        const banded = await drawLevel(c.file(), c.dpi, factor, { bandBytes: level.width * 3 * 40 });
        expect(banded.channels).toBe(3);
        const diff = difference(banded, whole);
        expect(diff.max, `level ${factor} in bands`).toBeLessThanOrEqual(40);
        expect(diff.differing, `level ${factor} in bands`).toBeLessThanOrEqual(level.width * level.height * 0.001);
      }
    });
  }

  it('a gray page\'s level drawn in one piece is gray rows, 1 byte a pixel', { timeout: 60_000 }, async () => {
    const level = await drawLevel(corpusFile('tracemonkey-paper-14p.pdf'), 50, 2);
    expect(level.channels).toBe(1);
  });

  it('a level of the 30000x30000 px page (7500x7500, 169 MB of RGB) is drawn in a band\'s memory', { timeout: 300_000 }, async () => {
    const file = join(dir, 'giant-page.pdf');
    await writeGiantPagePdf(file);
    const job = await startRender(file, { ...DEFAULT_OUTPUT_OPTIONS, dpi: 150, maxPagePixels: 1_000_000_000, level: 4 });
    let bytes = 0;
    for await (const page of job) {
      if (!page.ok) throw new Error(`level failed: ${JSON.stringify(page)}`);
      expect([page.width, page.height, page.color]).toEqual([7500, 7500, 'rgb']);
      // Read and let go: the test holds no more of it than the encoder's bands.
      for await (const chunk of page.body) bytes += (chunk as Buffer).byteLength;
      await page.finished;
    }
    expect(bytes).toBe(7500 * 7500 * 3);
    expect(job.stats.wasmHeapPeakBytes).toBeLessThan(BAND_BYTES + 48 * MiB);
  });
});
