/**
 * The fast path (pixels copied out as PNG scanlines, pages compressed on the thread pool side
 * by side, out of order) against the plain path (MuPDF.js in-process: toPixmap, getPixels):
 * the same pixels, page for page, in valid PNGs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as mupdf from 'mupdf';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { CORPUS_DIR, collect, decodePng } from './helpers.js';

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

/** Pixels that differ between a decoded PNG (RGBA) and plain RGB. */
function differingPixels(rgba: Buffer, rgb: Uint8Array): number {
  let differing = 0;
  for (let p = 0, q = 0; q < rgb.length; p += 4, q += 3) {
    if (rgba[p] !== rgb[q] || rgba[p + 1] !== rgb[q + 1] || rgba[p + 2] !== rgb[q + 2] || rgba[p + 3] !== 255) differing++;
  }
  return differing;
}

describe('fast path against the plain path', () => {
  const cases: { file: string; pages: { from: number; to: number }; dpi: number }[] = [
    // Many pages in flight at once: text, Type3 glyphs, CFF fonts, shadings.
    { file: 'tracemonkey-paper-14p.pdf', pages: { from: 1, to: 14 }, dpi: 150 },
    { file: 'geotopo-thesis-117p-cff-mesh.pdf', pages: { from: 1, to: 12 }, dpi: 150 },
    // Photos and scans, where deflate takes longest, and an odd size.
    { file: 'cmyk-jpeg.pdf', pages: { from: 1, to: 1 }, dpi: 150 },
    { file: 'jbig2-scan-4p.pdf', pages: { from: 1, to: 4 }, dpi: 97 },
  ];
  for (const { file, pages, dpi } of cases) {
    it(`${file} pages ${pages.from}-${pages.to} at ${dpi} dpi: identical pixels, valid PNGs`, { timeout: 120_000 }, async () => {
      const path = join(CORPUS_DIR, file);
      const results = await collect(await startRender(path, { ...DEFAULT_OUTPUT_OPTIONS, dpi, pages: [pages] }));
      const numbers = Array.from({ length: pages.to - pages.from + 1 }, (_, i) => pages.from + i);
      expect(results.map((r) => r.pageNumber)).toEqual(numbers);
      const plain = plainRender(path, numbers, dpi);
      for (const result of results) {
        if (!result.ok) throw new Error(`page ${result.pageNumber}: ${result.error.code}`);
        const expected = plain.get(result.pageNumber)!;
        // pngjs checks every chunk's CRC and inflates the whole image: a valid PNG, or a throw.
        const png = decodePng(result.bytes);
        expect([png.width, png.height], `page ${result.pageNumber}`).toEqual([expected.width, expected.height]);
        expect(differingPixels(png.data, expected.rgb), `page ${result.pageNumber}`).toBe(0);
        expect(result.stats.bytes).toBe(result.bytes.byteLength);
      }
    });
  }
});
