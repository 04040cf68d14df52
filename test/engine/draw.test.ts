/**
 * The worker's drawing, in-process (MuPDF imported here, no Worker): banding, the out-of-memory
 * fallbacks and JPEG down-scaling, driven through a fake output port and an allocation hook.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as mupdf from 'mupdf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitPage, type PageBox, type PageGeometry } from '../../lib/engine/options.js';
import type { PageColor } from '../../lib/engine/results.js';
import { drawJpeg } from '../../lib/engine/worker/draw-jpeg.js';
import { drawPng, OUT_OF_MEMORY_BANDS } from '../../lib/engine/worker/draw-png.js';
import { pageErrorOf, PageFailure } from '../../lib/engine/worker/failures.js';
import type { BeforeDraw, PageOutput } from '../../lib/engine/worker/page-output.js';
import { CORPUS_DIR, jpegSize } from './helpers.js';

/** What a page sent through the port, and the credits it used. */
interface Recorded {
  begun: { geometry: PageGeometry; color: PageColor; warning?: string }[];
  bands: { rows: number; bytes: Uint8Array; encoded: boolean }[];
  creditsTaken: number;
  creditsReturned: number;
}

function fakeOutput(): PageOutput & { recorded: Recorded } {
  const recorded: Recorded = { begun: [], bands: [], creditsTaken: 0, creditsReturned: 0 };
  return {
    recorded,
    begin: (geometry, color, warning) => void recorded.begun.push({ geometry, color, ...(warning ? { warning } : {}) }),
    takeCredit: async () => void recorded.creditsTaken++,
    returnCredit: () => void recorded.creditsReturned++,
    band: (rows, bytes, encoded) => void recorded.bands.push({ rows, bytes, encoded }),
  };
}

/** The RGB pixels of PNG scanlines, gray ones expanded (each row's filter byte dropped, and checked to be 0). */
function pixelsOf(bands: Recorded['bands'], width: number, color: PageColor = 'rgb'): Uint8Array {
  const rows = bands.reduce((n, b) => n + b.rows, 0);
  const channels = color === 'gray' ? 1 : 3;
  const pixels = new Uint8Array(rows * width * 3);
  let at = 0;
  for (const band of bands) {
    expect(band.bytes.byteLength).toBe(band.rows * (width * channels + 1));
    for (let y = 0; y < band.rows; y++) {
      const row = band.bytes.subarray(y * (width * channels + 1), (y + 1) * (width * channels + 1));
      expect(row[0]).toBe(0);
      if (channels === 3) pixels.set(row.subarray(1), at);
      else for (let x = 0; x < width; x++) pixels.fill(row[1 + x]!, at + x * 3, at + x * 3 + 3);
      at += width * 3;
    }
  }
  return pixels;
}

function allGray(rgb: Uint8Array): boolean {
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i] !== rgb[i + 1] || rgb[i] !== rgb[i + 2]) return false;
  return true;
}

const outOfMemory = (): Error => new Error('malloc (123456789 bytes) failed');

let doc: mupdf.Document;
let page: mupdf.Page;
let box: PageBox;
let geometry: PageGeometry;
/** Page 1 of the tracemonkey paper (text and line art: banded pixels equal whole-page ones) as toPixmap draws it. */
let expected: Uint8Array;

beforeAll(() => {
  doc = mupdf.Document.openDocument(readFileSync(join(CORPUS_DIR, 'tracemonkey-paper-14p.pdf')), 'application/pdf');
  page = doc.loadPage(0);
  box = page.getBounds() as PageBox;
  geometry = fitPage(box, 100, 40_000_000)!;
  const pixmap = page.toPixmap(mupdf.Matrix.scale(100 / 72, 100 / 72), mupdf.ColorSpace.DeviceRGB, false, true);
  expected = new Uint8Array(pixmap.getPixels());
  pixmap.destroy();
});
afterAll(() => {
  page.destroy();
  doc.destroy();
});

describe('drawing a PNG page', () => {
  it('a gray page within one band is drawn whole: one band of gray scanlines, the pixels of toPixmap', async () => {
    // The oracle: every pixel of this page, drawn by toPixmap in RGB, has R = G = B.
    expect(allGray(expected)).toBe(true);
    const out = fakeOutput();
    await drawPng(page, box, geometry, out, { bandBytes: 16 * 2 ** 20 });
    const { begun, bands, creditsTaken, creditsReturned } = out.recorded;
    expect(begun).toEqual([{ geometry, color: 'gray' }]);
    expect(bands.map((b) => [b.rows, b.encoded])).toEqual([[geometry.height, false]]);
    expect(creditsTaken - creditsReturned).toBe(1);
    expect(Buffer.from(pixelsOf(bands, geometry.width, 'gray')).equals(expected)).toBe(true);
  });

  it('a page with color stays RGB: the pixels of toPixmap', async () => {
    const colorDoc = mupdf.Document.openDocument(readFileSync(join(CORPUS_DIR, 'cmyk-jpeg.pdf')), 'application/pdf');
    const colorPage = colorDoc.loadPage(0);
    try {
      const colorBox = colorPage.getBounds() as PageBox;
      const colorGeometry = fitPage(colorBox, 36, 40_000_000)!;
      const pixmap = colorPage.toPixmap(mupdf.Matrix.scale(36 / 72, 36 / 72), mupdf.ColorSpace.DeviceRGB, false, true);
      const colorExpected = new Uint8Array(pixmap.getPixels());
      pixmap.destroy();
      expect(allGray(colorExpected)).toBe(false);
      const out = fakeOutput();
      await drawPng(colorPage, colorBox, colorGeometry, out, { bandBytes: 16 * 2 ** 20 });
      expect(out.recorded.begun).toEqual([{ geometry: colorGeometry, color: 'rgb' }]);
      expect(Buffer.from(pixelsOf(out.recorded.bands, colorGeometry.width)).equals(colorExpected)).toBe(true);
    } finally {
      colorPage.destroy();
      colorDoc.destroy();
    }
  });

  it('a page larger than one band is drawn in bands of the budget, rows in order, the same pixels', async () => {
    const out = fakeOutput();
    const rowsPerBand = 100;
    await drawPng(page, box, geometry, out, { bandBytes: geometry.width * 3 * rowsPerBand });
    const { begun, bands, creditsTaken } = out.recorded;
    // The color of a banded page is told before its first band, when only the whole page could prove it gray.
    expect(begun).toEqual([{ geometry, color: 'rgb' }]);
    expect(bands.length).toBe(Math.ceil(geometry.height / rowsPerBand));
    expect(bands.slice(0, -1).every((b) => b.rows === rowsPerBand)).toBe(true);
    expect(creditsTaken).toBe(bands.length);
    expect(Buffer.from(pixelsOf(bands, geometry.width)).equals(expected)).toBe(true);
  });

  it('out of memory drawn whole: nothing sent, the credit given back, drawn again in small bands with the same pixels', async () => {
    const out = fakeOutput();
    const tried: string[] = [];
    const beforeDraw: BeforeDraw = (what) => {
      tried.push(what);
      if (what === 'page') throw outOfMemory();
    };
    await drawPng(page, box, geometry, out, { bandBytes: 16 * 2 ** 20, beforeDraw });
    const { bands, creditsTaken, creditsReturned } = out.recorded;
    expect(tried[0]).toBe('page');
    expect(bands.length).toBe(OUT_OF_MEMORY_BANDS);
    expect(creditsReturned).toBe(1);
    expect(creditsTaken - creditsReturned).toBe(bands.length);
    expect(Buffer.from(pixelsOf(bands, geometry.width)).equals(expected)).toBe(true);
  });

  it('out of memory even in bands: the error is PAGE_OUT_OF_MEMORY; any other error is not retried', async () => {
    const failing = drawPng(page, box, geometry, fakeOutput(), { bandBytes: 16 * 2 ** 20, beforeDraw: () => { throw outOfMemory(); } });
    const err = await failing.then(() => undefined, (e: unknown) => e);
    expect(pageErrorOf(err, 'even drawn in bands')).toMatchObject({ code: 'PAGE_OUT_OF_MEMORY', message: expect.stringMatching(/even drawn in bands/) });

    const tried: string[] = [];
    const broken = drawPng(page, box, geometry, fakeOutput(), {
      bandBytes: 16 * 2 ** 20,
      beforeDraw: (what) => {
        tried.push(what);
        throw new Error('syntax error in content stream');
      },
    });
    const other = await broken.then(() => undefined, (e: unknown) => e);
    expect(tried).toEqual(['page']);
    expect(pageErrorOf(other, 'even drawn in bands')).toEqual({ code: 'PAGE_RENDER_FAILED', message: 'syntax error in content stream' });
  });
});

describe('drawing a JPEG page', () => {
  it('within the budget: the requested geometry, one encoded band, no warning', async () => {
    const out = fakeOutput();
    await drawJpeg(page, box, geometry, 1, out, { quality: 80, pixmapBytes: 96 * 2 ** 20 });
    const { begun, bands } = out.recorded;
    expect(begun).toEqual([{ geometry, color: 'rgb' }]);
    expect(bands.length).toBe(1);
    expect(bands[0]!.encoded).toBe(true);
    expect(jpegSize(bands[0]!.bytes)).toMatchObject({ width: geometry.width, height: geometry.height, components: 3 });
  });

  it('past the pixmap budget: a lower DPI that fits, said in the warning', async () => {
    const out = fakeOutput();
    const pixmapBytes = 1_000_000;
    await drawJpeg(page, box, geometry, 7, out, { quality: 80, pixmapBytes });
    const [{ geometry: drawn, warning }] = out.recorded.begun as [Recorded['begun'][number]];
    expect(drawn.dpi).toBeLessThan(100);
    expect(drawn.width * drawn.height * 3).toBeLessThanOrEqual(pixmapBytes);
    expect(warning).toBe(`page 7: JPEG rendered at ${drawn.dpi} dpi instead of 100 dpi to fit the memory budget (PNG has no such limit)`);
    expect(jpegSize(out.recorded.bands[0]!.bytes)).toMatchObject({ width: drawn.width, height: drawn.height });
  });

  it('out of memory drawing and encoding: half the pixels, said in the warning; a budget too small for 1 dpi is PAGE_TOO_LARGE', async () => {
    const out = fakeOutput();
    const attempts: number[] = [];
    const beforeDraw: BeforeDraw = (_, pixels) => {
      attempts.push(pixels);
      if (attempts.length === 1) throw outOfMemory();
    };
    await drawJpeg(page, box, geometry, 3, out, { quality: 80, pixmapBytes: 96 * 2 ** 20, beforeDraw });
    expect(attempts.length).toBe(2);
    expect(attempts[1]!).toBeLessThanOrEqual(attempts[0]! / 2);
    const [{ geometry: drawn, warning }] = out.recorded.begun as [Recorded['begun'][number]];
    expect(drawn.width * drawn.height).toBe(attempts[1]);
    expect(warning).toMatch(new RegExp(`^page 3: JPEG rendered at ${drawn.dpi} dpi instead of 100 dpi: at more it needed over the renderer's \\d+ MiB`));

    const tooSmall = await drawJpeg(page, box, geometry, 3, fakeOutput(), { quality: 80, pixmapBytes: 2 }).then(() => undefined, (e: unknown) => e);
    expect(tooSmall).toBeInstanceOf(PageFailure);
    expect(pageErrorOf(tooSmall, 'even at a lower DPI').code).toBe('PAGE_TOO_LARGE');
  });
});
