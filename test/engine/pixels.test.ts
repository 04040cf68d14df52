/**
 * The fast path (pixels copied out as PNG scanlines, gray ones as 8-bit grayscale, pages
 * compressed on the thread pool side by side, out of order) against the plain path (MuPDF.js
 * in-process: toPixmap in RGB, getPixels): the same pixels, page for page, in valid PNGs. And
 * JPEG pages (encoded on the JPEG thread) against the same plain pixels: no further from them
 * than MuPDF's own encoder gets.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as mupdf from 'mupdf';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { CORPUS_DIR, collect, decodeJpeg, decodePng, jpegSize, meanAbsDiff } from './helpers.js';

/** RGB pixels of each page, drawn the plain way. */
function plainRender(file: string, pageNumbers: number[], dpi: number): Map<number, { width: number; height: number; rgb: Uint8Array }> {
  const doc = mupdf.Document.openDocument(readFileSync(file), 'application/pdf');
  const pages = new Map<number, { width: number; height: number; rgb: Uint8Array }>();
  try {
    for (const n of pageNumbers) {
      const page = doc.loadPage(n - 1);
      const pixmap = page.toPixmap(mupdf.Matrix.scale(dpi / 72, dpi / 72), mupdf.ColorSpace.DeviceRGB, false, true);
      pages.set(n, { width: pixmap.getWidth(), height: pixmap.getHeight(), rgb: new Uint8Array(pixmap.getPixels()) });
      pixmap.destroy();
      page.destroy();
    }
  } finally {
    doc.destroy();
  }
  return pages;
}

/** True when every pixel has R = G = B: the page must then come out as a grayscale PNG. */
function allGray(rgb: Uint8Array): boolean {
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i] !== rgb[i + 1] || rgb[i] !== rgb[i + 2]) return false;
  return true;
}

/** IHDR's bit depth and colour type (0 grayscale, 2 truecolour): the first chunk, right after the signature. */
function pngColorType(png: Buffer): { bitDepth: number; colorType: number } {
  expect(png.toString('latin1', 12, 16)).toBe('IHDR');
  return { bitDepth: png[24]!, colorType: png[25]! };
}

/** Pixels that differ between a decoded PNG (RGBA; pngjs expands gray to R = G = B) and plain RGB. */
function differingPixels(rgba: Buffer, rgb: Uint8Array): number {
  let differing = 0;
  for (let p = 0, q = 0; q < rgb.length; p += 4, q += 3) {
    if (rgba[p] !== rgb[q] || rgba[p + 1] !== rgb[q + 1] || rgba[p + 2] !== rgb[q + 2] || rgba[p + 3] !== 255) differing++;
  }
  return differing;
}

describe('fast path against the plain path', () => {
  const cases: { file: string; pages: { from: number; to: number }; dpi: number; expectedColors: string[] }[] = [
    // Many pages in flight at once: text, Type3 glyphs, CFF fonts, shadings; gray and color pages mixed.
    { file: 'tracemonkey-paper-14p.pdf', pages: { from: 1, to: 14 }, dpi: 150, expectedColors: ['gray', 'rgb'] },
    { file: 'geotopo-thesis-117p-cff-mesh.pdf', pages: { from: 1, to: 12 }, dpi: 150, expectedColors: ['gray', 'rgb'] },
    // Photos and scans, where deflate takes longest, and an odd size.
    { file: 'cmyk-jpeg.pdf', pages: { from: 1, to: 1 }, dpi: 150, expectedColors: ['rgb'] },
    { file: 'jbig2-scan-4p.pdf', pages: { from: 1, to: 4 }, dpi: 97, expectedColors: ['gray'] },
  ];
  for (const { file, pages, dpi, expectedColors } of cases) {
    it(`${file} pages ${pages.from}-${pages.to} at ${dpi} dpi: identical pixels, valid PNGs`, { timeout: 120_000 }, async () => {
      const path = join(CORPUS_DIR, file);
      const results = await collect(await startRender(path, { ...DEFAULT_OUTPUT_OPTIONS, dpi, pages: [pages] }));
      const numbers = Array.from({ length: pages.to - pages.from + 1 }, (_, i) => pages.from + i);
      expect(results.map((r) => r.pageNumber)).toEqual(numbers);
      const plain = plainRender(path, numbers, dpi);
      const colors = new Set<string>();
      for (const result of results) {
        if (!result.ok) throw new Error(`page ${result.pageNumber}: ${result.error.code}`);
        const expected = plain.get(result.pageNumber)!;
        // pngjs checks every chunk's CRC and inflates the whole image: a valid PNG, or a throw.
        const png = decodePng(result.bytes);
        expect([png.width, png.height], `page ${result.pageNumber}`).toEqual([expected.width, expected.height]);
        expect(differingPixels(png.data, expected.rgb), `page ${result.pageNumber}`).toBe(0);
        // Gray exactly when every pixel of the plain render has R = G = B, and the PNG says so.
        const color = allGray(expected.rgb) ? 'gray' : 'rgb';
        expect(result.color, `page ${result.pageNumber}`).toBe(color);
        expect(pngColorType(result.bytes), `page ${result.pageNumber}`).toEqual({ bitDepth: 8, colorType: color === 'gray' ? 0 : 2 });
        colors.add(color);
        expect(result.stats.bytes).toBe(result.bytes.byteLength);
      }
      expect([...colors].sort(), 'the colors this case is chosen for').toEqual(expectedColors);
    });
  }
});

describe('JPEG pages against the plain path', () => {
  const QUALITY = 85;
  const cases = [
    { file: 'tracemonkey-paper-14p.pdf', pages: { from: 5, to: 7 }, dpi: 150 },
    { file: 'cmyk-jpeg.pdf', pages: { from: 1, to: 1 }, dpi: 150 },
    // A size that is no multiple of 8 either way.
    { file: 'jbig2-scan-4p.pdf', pages: { from: 1, to: 2 }, dpi: 97 },
  ];
  for (const { file, pages, dpi } of cases) {
    it(`${file} pages ${pages.from}-${pages.to} at ${dpi} dpi: one component exactly for gray pages, as close to the pixels as MuPDF's encoder`, { timeout: 120_000 }, async () => {
      const path = join(CORPUS_DIR, file);
      const results = await collect(await startRender(path, { ...DEFAULT_OUTPUT_OPTIONS, format: 'jpeg', jpegQuality: QUALITY, dpi, pages: [pages] }));
      const plain = plainRender(path, results.map((r) => r.pageNumber), dpi);
      for (const result of results) {
        if (!result.ok) throw new Error(`page ${result.pageNumber}: ${result.error.code}`);
        const expected = plain.get(result.pageNumber)!;
        const color = allGray(expected.rgb) ? 'gray' : 'rgb';
        expect(result.color, `page ${result.pageNumber}`).toBe(color);
        expect(jpegSize(result.bytes), `page ${result.pageNumber}`).toEqual({ width: expected.width, height: expected.height, components: color === 'gray' ? 1 : 3 });
        const decoded = decodeJpeg(result.bytes);
        const pixmap = new mupdf.Pixmap(mupdf.ColorSpace.DeviceRGB, [0, 0, expected.width, expected.height], false);
        pixmap.getPixels().set(expected.rgb);
        const mupdfError = meanAbsDiff(decodeJpeg(pixmap.asJPEG(QUALITY, false)).rgb, expected.rgb);
        pixmap.destroy();
        expect(meanAbsDiff(decoded.rgb, expected.rgb), `page ${result.pageNumber}`).toBeLessThanOrEqual(mupdfError * 1.05);
        expect(result.stats.bytes).toBe(result.bytes.byteLength);
      }
    });
  }
});
