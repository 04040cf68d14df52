/**
 * The worker's drawing, in-process (MuPDF imported here, no Worker): banding, gray detection,
 * the out-of-memory fallbacks and the rows' layouts (PNG scanlines, packed rows for JPEG),
 * driven through a fake output port and an allocation hook.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as mupdf from 'mupdf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitPage, JPEG_MAX_SIDE, type PageBox, type PageGeometry } from '../../lib/engine/options.js';
import type { PageColor } from '../../lib/engine/results.js';
import type { RowLayout } from '../../lib/encode/rows.js';
import { drawPage, OUT_OF_MEMORY_BANDS } from '../../lib/engine/worker/draw-page.js';
import { pageErrorOf } from '../../lib/engine/worker/failures.js';
import type { BeforeDraw, PageOutput } from '../../lib/engine/worker/page-output.js';
import { CORPUS_DIR } from './helpers.js';

/** What a page sent through the port, and the credits it used. */
interface Recorded {
  begun: { geometry: PageGeometry; color: PageColor }[];
  bands: { rows: number; bytes: Uint8Array }[];
  creditsTaken: number;
  creditsReturned: number;
}

function fakeOutput(): PageOutput & { recorded: Recorded } {
  const recorded: Recorded = { begun: [], bands: [], creditsTaken: 0, creditsReturned: 0 };
  return {
    recorded,
    begin: (geometry, color) => void recorded.begun.push({ geometry, color }),
    takeCredit: async () => void recorded.creditsTaken++,
    returnCredit: () => void recorded.creditsReturned++,
    band: (rows, bytes) => void recorded.bands.push({ rows, bytes }),
  };
}

/**
 * The RGB pixels of the bands' rows, gray ones expanded: PNG scanlines (each row's filter byte
 * dropped, and checked to be 0) or packed rows.
 */
function pixelsOf(bands: Recorded['bands'], width: number, color: PageColor = 'rgb', layout: RowLayout = 'png'): Uint8Array {
  const rows = bands.reduce((n, b) => n + b.rows, 0);
  const channels = color === 'gray' ? 1 : 3;
  const prefix = layout === 'png' ? 1 : 0;
  const rowBytes = width * channels + prefix;
  const pixels = new Uint8Array(rows * width * 3);
  let at = 0;
  for (const band of bands) {
    expect(band.bytes.byteLength).toBe(band.rows * rowBytes);
    for (let y = 0; y < band.rows; y++) {
      const row = band.bytes.subarray(y * rowBytes, (y + 1) * rowBytes);
      if (prefix) expect(row[0]).toBe(0);
      if (channels === 3) pixels.set(row.subarray(prefix), at);
      else for (let x = 0; x < width; x++) pixels.fill(row[prefix + x]!, at + x * 3, at + x * 3 + 3);
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
    await drawPage(page, box, geometry, out, { bandBytes: 16 * 2 ** 20, layout: 'png' });
    const { begun, bands, creditsTaken, creditsReturned } = out.recorded;
    expect(begun).toEqual([{ geometry, color: 'gray' }]);
    expect(bands.map((b) => b.rows)).toEqual([geometry.height]);
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
      await drawPage(colorPage, colorBox, colorGeometry, out, { bandBytes: 16 * 2 ** 20, layout: 'png' });
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
    await drawPage(page, box, geometry, out, { bandBytes: geometry.width * 3 * rowsPerBand, layout: 'png' });
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
    await drawPage(page, box, geometry, out, { bandBytes: 16 * 2 ** 20, layout: 'png', beforeDraw });
    const { bands, creditsTaken, creditsReturned } = out.recorded;
    expect(tried[0]).toBe('page');
    expect(bands.length).toBe(OUT_OF_MEMORY_BANDS);
    expect(creditsReturned).toBe(1);
    expect(creditsTaken - creditsReturned).toBe(bands.length);
    expect(Buffer.from(pixelsOf(bands, geometry.width)).equals(expected)).toBe(true);
  });

  it('out of memory even in bands: the error is PAGE_OUT_OF_MEMORY; any other error is not retried', async () => {
    const failing = drawPage(page, box, geometry, fakeOutput(), { bandBytes: 16 * 2 ** 20, layout: 'png', beforeDraw: () => { throw outOfMemory(); } });
    const err = await failing.then(() => undefined, (e: unknown) => e);
    expect(pageErrorOf(err, 'even drawn in bands')).toMatchObject({ code: 'PAGE_OUT_OF_MEMORY', message: expect.stringMatching(/even drawn in bands/) });

    const tried: string[] = [];
    const broken = drawPage(page, box, geometry, fakeOutput(), {
      bandBytes: 16 * 2 ** 20,
      layout: 'png',
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

describe('drawing a page for JPEG (packed rows)', () => {
  it('a gray page within one band: one band of packed gray rows, the pixels of toPixmap', async () => {
    const out = fakeOutput();
    await drawPage(page, box, geometry, out, { bandBytes: 16 * 2 ** 20, layout: 'packed' });
    const { begun, bands } = out.recorded;
    expect(begun).toEqual([{ geometry, color: 'gray' }]);
    expect(bands.map((b) => b.rows)).toEqual([geometry.height]);
    expect(Buffer.from(pixelsOf(bands, geometry.width, 'gray', 'packed')).equals(expected)).toBe(true);
  });

  it('in bands: every band but the last a multiple of the 8 rows JPEG codes at once, the same pixels', async () => {
    const out = fakeOutput();
    // 100 rows' worth of budget: bands of 96 rows, so no rows wait in the encoder for the next band.
    await drawPage(page, box, geometry, out, { bandBytes: geometry.width * 3 * 100, layout: 'packed' });
    const { begun, bands } = out.recorded;
    expect(begun).toEqual([{ geometry, color: 'rgb' }]);
    expect(bands.slice(0, -1).every((b) => b.rows === 96)).toBe(true);
    expect(bands.length).toBe(Math.ceil(geometry.height / 96));
    expect(Buffer.from(pixelsOf(bands, geometry.width, 'rgb', 'packed')).equals(expected)).toBe(true);
  });

  it('a JPEG side is at most 65535 pixels: fitPage lowers the DPI to fit it, and the pixel budget as before', () => {
    // A 14400 x 50 pt banner at 400 dpi is 80000 px wide: 22 Mpx, within the pixel budget.
    const banner: PageBox = [0, 0, 14400, 50];
    expect(fitPage(banner, 400, 40_000_000)).toMatchObject({ dpi: 400, width: 80000 });
    const jpeg = fitPage(banner, 400, 40_000_000, JPEG_MAX_SIDE)!;
    expect(jpeg.width).toBeLessThanOrEqual(JPEG_MAX_SIDE);
    expect(fitPage(banner, jpeg.dpi + 1, 40_000_000)!.width).toBeGreaterThan(JPEG_MAX_SIDE);
    expect(fitPage(banner, 400, 1_000_000, JPEG_MAX_SIDE)!.width * fitPage(banner, 400, 1_000_000, JPEG_MAX_SIDE)!.height).toBeLessThanOrEqual(1_000_000);
  });
});
