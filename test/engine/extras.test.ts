/**
 * Thumbnails and page text (RenderOptions.thumbnailWidth, pageText) through the whole job API:
 * the thumbnail's size and pixels against a box-downscale of our own full page, the text's
 * words against MuPDF's plain text and its boxes against the ink of the rendered page image,
 * an empty page, a failure of the extras that leaves the page rendered, and a giant page's
 * WebAssembly heap with both on.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mupdf from 'mupdf';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS, type RenderOptions } from '../../lib/engine/options.js';
import { startRender, type RenderedPage } from '../../lib/engine/render.js';
import { extractPageText, type PageTextDocument } from '../../lib/engine/worker/extras.js';
import { writeGiantPagePdf } from '../fixtures/generated-pdfs.js';
import { CORPUS_DIR, collect, decodePng, jpegSize, meanAbsDiff, type CollectedPage } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'extras-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const options = (extra: Partial<RenderOptions>): RenderOptions => ({ ...DEFAULT_OUTPUT_OPTIONS, ...extra });
const MiB = 2 ** 20;

type Rendered = Extract<CollectedPage, { ok: true }>;
type Rgb = { width: number; height: number; rgb: Uint8Array };

async function render(file: string, extra: Partial<RenderOptions>, onLog?: (message: string) => void): Promise<Rendered[]> {
  const pages = await collect(await startRender(file, options(extra), { onLog: (_, message) => onLog?.(message) }));
  return pages.map((p) => {
    if (!p.ok) throw new Error(`${file} page ${p.pageNumber}: ${p.error.code} ${p.error.message}`);
    return p;
  });
}

/** The page image's RGB pixels, PNG decoded with pngjs or JPEG with MuPDF. */
function pixelsOf(page: Pick<RenderedPage, 'contentType'> & { bytes: Uint8Array }): Rgb {
  if (page.contentType === 'image/png') {
    const png = decodePng(page.bytes);
    const rgb = new Uint8Array(png.width * png.height * 3);
    for (let i = 0, o = 0; i < png.data.length; i += 4, o += 3) rgb.set(png.data.subarray(i, i + 3), o);
    return { width: png.width, height: png.height, rgb };
  }
  return decodeJpeg(page.bytes);
}

function decodeJpeg(bytes: Uint8Array): Rgb {
  const image = new mupdf.Image(bytes);
  const pixmap = image.toPixmap();
  try {
    expect(pixmap.getNumberOfComponents()).toBe(3);
    expect(pixmap.getAlpha()).toBe(0);
    return { width: pixmap.getWidth(), height: pixmap.getHeight(), rgb: new Uint8Array(pixmap.getPixels()) };
  } finally {
    pixmap.destroy();
    image.destroy();
  }
}

/** Box filter: each output pixel the mean of the source pixels its area covers (fractional edges weighted). */
function boxDownscale(src: Rgb, width: number, height: number): Rgb {
  const rgb = new Uint8Array(width * height * 3);
  const fx = src.width / width;
  const fy = src.height / height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sum = [0, 0, 0];
      let weight = 0;
      for (let sy = Math.floor(y * fy); sy < Math.min(src.height, Math.ceil((y + 1) * fy)); sy++) {
        const wy = Math.min(sy + 1, (y + 1) * fy) - Math.max(sy, y * fy);
        for (let sx = Math.floor(x * fx); sx < Math.min(src.width, Math.ceil((x + 1) * fx)); sx++) {
          const w = wy * (Math.min(sx + 1, (x + 1) * fx) - Math.max(sx, x * fx));
          const at = (sy * src.width + sx) * 3;
          for (let c = 0; c < 3; c++) sum[c]! += w * src.rgb[at + c]!;
          weight += w;
        }
      }
      for (let c = 0; c < 3; c++) rgb[(y * width + x) * 3 + c] = Math.round(sum[c]! / weight);
    }
  }
  return { width, height, rgb };
}

const flipVertically = (img: Rgb): Uint8Array => {
  const out = new Uint8Array(img.rgb.length);
  const stride = img.width * 3;
  for (let y = 0; y < img.height; y++) out.set(img.rgb.subarray(y * stride, (y + 1) * stride), (img.height - 1 - y) * stride);
  return out;
};

/**
 * Measured (mean absolute difference per channel, 0..255, thumbnail against a box-downscale of
 * our full page): tracemonkey p1 4.0, cmyk-jpeg (a JPEG page) 3.8, nics-table-rotate90 4.1. Of
 * that, JPEG quality 75 is about 2.7 on text pages (the same thumbnail drawn lossless: 2.8, 3.2,
 * 2.7); the rest is MuPDF drawing glyphs and rules at the small scale (hairlines kept at least a
 * pixel wide) where the average of the full image thins them. Shifted by 2 full-page pixels
 * the text pages go to 6 to 9; upside down, 18 to 36.
 */
const THUMBNAIL_MAX_MEAN_DIFF = 5.5;

describe('thumbnails', () => {
  it('are exactly thumbnailWidth wide, in proportion, valid JPEG, and close to a down-scaled full page (PNG and JPEG pages, a rotated page)', { timeout: 120_000 }, async () => {
    const cases = [
      { file: 'tracemonkey-paper-14p.pdf', extra: { dpi: 100, pages: [{ from: 1, to: 1 }] }, thumbnailWidth: 200 },
      { file: 'cmyk-jpeg.pdf', extra: { dpi: 72, format: 'jpeg' as const, jpegQuality: 95 }, thumbnailWidth: 160 },
      { file: 'nics-table-rotate90.pdf', extra: { dpi: 100 }, thumbnailWidth: 256 },
    ];
    for (const { file, extra, thumbnailWidth } of cases) {
      for (const page of await render(join(CORPUS_DIR, file), { ...extra, thumbnailWidth })) {
        const label = `${file} page ${page.pageNumber}`;
        const thumbnail = page.stats.thumbnail;
        if (!thumbnail) throw new Error(`${label}: no thumbnail`);
        expect(page.stats.text, label).toBeUndefined();
        const height = Math.round((thumbnailWidth * page.height) / page.width);
        expect([thumbnail.width, thumbnail.height], label).toEqual([thumbnailWidth, height]);
        expect(jpegSize(thumbnail.jpeg), label).toMatchObject({ width: thumbnailWidth, height, components: 3 });
        const decoded = decodeJpeg(thumbnail.jpeg);
        const expected = boxDownscale(pixelsOf(page), thumbnailWidth, height);
        const diff = meanAbsDiff(decoded.rgb, expected.rgb);
        expect(diff, label).toBeLessThan(THUMBNAIL_MAX_MEAN_DIFF);
        // The comparison can tell pictures apart: upside down it is far off.
        expect(meanAbsDiff(decoded.rgb, flipVertically(expected)), label).toBeGreaterThan(2 * THUMBNAIL_MAX_MEAN_DIFF);
      }
    }
  });

  it('a page narrower than thumbnailWidth is drawn up to that width', { timeout: 60_000 }, async () => {
    // 612 pt at 36 dpi is a 306 px image; its thumbnail is still 800 px wide.
    const [page] = await render(join(CORPUS_DIR, 'tracemonkey-paper-14p.pdf'), { dpi: 36, pages: [{ from: 1, to: 1 }], thumbnailWidth: 800 });
    expect(page!.width).toBe(306);
    expect(jpegSize(page!.stats.thumbnail!.jpeg)).toMatchObject({ width: 800, height: Math.round((800 * 792) / 612) });
  });

  it('a width that is not a whole number of pixels in range is refused before any work', async () => {
    const file = join(CORPUS_DIR, 'matplotlib-type3.pdf');
    for (const thumbnailWidth of [-1, 12.5, 100_000]) await expect(startRender(file, options({ thumbnailWidth }))).rejects.toThrow(/thumbnailWidth/);
  });
});

type Box = [number, number, number, number];

/** The words MuPDF extracts itself, opened in this process: asText() split on whitespace. */
function mupdfWords(file: string, pageNumbers: number[]): Map<number, string[]> {
  const doc = mupdf.Document.openDocument(readFileSync(file), 'application/pdf');
  const words = new Map<number, string[]>();
  try {
    for (const n of pageNumbers) {
      const page = doc.loadPage(n - 1);
      const stext = page.toStructuredText('');
      words.set(n, stext.asText().split(/\s+/u).filter(Boolean));
      stext.destroy();
      page.destroy();
    }
  } finally {
    doc.destroy();
  }
  return words;
}

const wordsOf = (text: PageTextDocument): { text: string; bbox: Box }[] => text.blocks.flatMap((b) => b.lines.flatMap((l) => l.words));

/** Share of the box's pixels clearly darker than the white page (luma under 192); outside the image counts as blank. */
function ink(img: Rgb, [x0, y0, x1, y1]: Box): number {
  let dark = 0;
  let all = 0;
  for (let y = Math.floor(y0); y < Math.ceil(y1); y++) {
    for (let x = Math.floor(x0); x < Math.ceil(x1); x++) {
      all++;
      if (x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
      const at = (y * img.width + x) * 3;
      if (0.299 * img.rgb[at]! + 0.587 * img.rgb[at + 1]! + 0.114 * img.rgb[at + 2]! < 192) dark++;
    }
  }
  return all === 0 ? 0 : dark / all;
}

/** A word box "lands on its word" when at least this share of its pixels is ink. */
const MIN_INK = 0.1;

describe('page text', () => {
  const documents = [
    // Pages rotated 90, 180, 270 and 360: the boxes must come out in the rotated image's frame.
    { file: 'arabic-rotations-4p.pdf', pages: [1, 2, 3, 4] },
    { file: 'nics-table-rotate90.pdf', pages: [1] },
    { file: 'chinese-tables.pdf', pages: [1] },
    // All text in Type3 fonts. (matplotlib-type3.pdf's words are all single digits, too small for the ink check.)
    { file: 'itu-t81-jpeg-spec-186p-type3.pdf', pages: [1, 2] },
  ];
  for (const { file, pages } of documents) {
    it(`${file}: every word MuPDF extracts is in the JSON, and the boxes land on the words' ink in the page image`, { timeout: 120_000 }, async () => {
      const path = join(CORPUS_DIR, file);
      const expectedWords = mupdfWords(path, pages);
      // At 100 dpi, not 72: boxes left in points would be 28% off.
      const rendered = await render(path, { dpi: 100, pages: pages.map((n) => ({ from: n, to: n })), pageText: true });
      expect(rendered.map((p) => p.pageNumber)).toEqual(pages);
      for (const page of rendered) {
        const label = `${file} page ${page.pageNumber}`;
        const text = page.stats.text;
        if (!text) throw new Error(`${label}: no text`);
        expect(page.stats.thumbnail, label).toBeUndefined();
        const json = JSON.parse(new TextDecoder().decode(text.json)) as PageTextDocument;
        expect([json.width, json.height, json.dpi], label).toEqual([page.width, page.height, 100]);
        const expected = expectedWords.get(page.pageNumber)!;
        expect(expected.length, label).toBeGreaterThan(0);
        const words = wordsOf(json);
        expect(words.map((w) => w.text), label).toEqual(expected);
        expect(json.text.split(/\s+/u).filter(Boolean), label).toEqual(expected);
        expect(text.chars, label).toBe(expected.join('').length);

        // A sample of words across the page: their boxes cover ink (measured: 98 to 100% of the
        // sample at 10% or more). The same check on wrong coordinates (as at 72 dpi, turned 180
        // degrees, x and y swapped as a missed 90) fails: 0 to 61% of the sample.
        const img = pixelsOf(page);
        const { width: w, height: h } = img;
        // (Words of two characters or more: a lone '.' or ',' fills little of its line-high box.)
        const long = words.filter((word) => [...word.text].length >= 2);
        const sample = long.filter((_, i) => i % Math.max(1, Math.floor(long.length / 40)) === 0);
        const wrong: Record<string, (b: Box) => Box> = {
          'scale 72/dpi': (b) => b.map((v) => (v * 72) / 100) as Box,
          'turned 180': ([x0, y0, x1, y1]) => [w - x1, h - y1, w - x0, h - y0],
          'turned 90': ([x0, y0, x1, y1]) => [(y0 * w) / h, (x0 * h) / w, (y1 * w) / h, (x1 * h) / w],
        };
        const hits = (map: (b: Box) => Box): number => sample.filter((word) => ink(img, map(word.bbox)) >= MIN_INK).length / sample.length;
        expect(hits((b) => b), label).toBeGreaterThanOrEqual(0.9);
        for (const [how, map] of Object.entries(wrong)) expect(hits(map), `${label}: ${how}`).toBeLessThan(0.75);
      }
    });
  }

  it('an empty page gives empty blocks and empty text, not a missing field', { timeout: 30_000 }, async () => {
    const path = join(dir, 'empty.pdf');
    writePdf(path, [[0, 0, 300, 400]]);
    const [page] = await render(path, { dpi: 72, pageText: true, thumbnailWidth: 64 });
    expect(JSON.parse(new TextDecoder().decode(page!.stats.text!.json))).toEqual({ width: 300, height: 400, dpi: 72, text: '', blocks: [] });
    expect(page!.stats.text!.chars).toBe(0);
    expect(page!.stats.thumbnail).toMatchObject({ width: 64, height: 85 });
  });
});

/** A PDF of blank pages with these media boxes, written with MuPDF; `content` is drawn on each. */
function writePdf(path: string, boxes: Box[], content = ''): void {
  const doc = new mupdf.PDFDocument();
  try {
    const font = doc.addSimpleFont(new mupdf.Font('Helvetica'));
    for (const box of boxes) doc.insertPage(-1, doc.addPage(box, 0, { Font: { F1: font } }, content));
    writeFileSync(path, doc.saveToBuffer('').asUint8Array());
  } finally {
    doc.destroy();
  }
}

describe('when the extras cannot be made', () => {
  it('the page still renders, the field is absent and the reason is logged', { timeout: 60_000 }, async () => {
    // A 2 x 14400 pt strip: a 1024 px wide thumbnail would be 7.4 million px tall.
    const path = join(dir, 'strip.pdf');
    writePdf(path, [[0, 0, 2, 14400]], 'BT /F1 1 Tf 0 100 Td (strip) Tj ET');
    const logs: string[] = [];
    const [page] = await render(path, { dpi: 72, pageText: true, thumbnailWidth: 1024 }, (message) => logs.push(message));
    expect([page!.width, page!.height]).toEqual([2, 14400]);
    expect(page!.stats.thumbnail).toBeUndefined();
    expect(logs).toContainEqual(expect.stringMatching(/^page 1: no thumbnail: a 1024x7372800 px thumbnail exceeds \d+ pixels/));
    // The text, made after the failed thumbnail, is there.
    expect(page!.stats.text!.chars).toBe(5);
  });
});

describe('memory', () => {
  it('a 14400 pt page with thumbnail and text: the thumbnail is drawn small, and the heap is what the page alone needs', { timeout: 300_000 }, async () => {
    const giant = join(dir, 'giant.pdf');
    await writeGiantPagePdf(giant);
    const heapOf = async (extra: Partial<RenderOptions>) => {
      // The default 40 Mpx budget: drawn at 31 dpi, 6200 px square, in bands.
      const job = await startRender(giant, options(extra));
      const [page] = await collect(job);
      if (!page?.ok) throw new Error('the giant page failed');
      return { page, heap: job.stats.wasmHeapPeakBytes };
    };
    const alone = await heapOf({});
    const both = await heapOf({ thumbnailWidth: 256, pageText: true });
    expect(both.page.stats.thumbnail).toMatchObject({ width: 256, height: 256 });
    expect(JSON.parse(new TextDecoder().decode(both.page.stats.text!.json))).toMatchObject({ text: 'GIANT PAGE' });
    // The bound the band and hostile tests use, and no more than the page alone plus a few MiB.
    expect(both.heap).toBeLessThan(256 * MiB);
    expect(both.heap - alone.heap).toBeLessThanOrEqual(8 * MiB);
  });
});

describe('the structured text walk', () => {
  it("in the worker (MuPDF's exports read directly) gives the JSON that MuPDF.js's own walk gives in this process", { timeout: 60_000 }, async () => {
    const path = join(CORPUS_DIR, 'chinese-tables.pdf');
    // This process imported mupdf without the worker's module hook: extractPageText falls back to StructuredText.walk.
    expect((globalThis as Record<string, unknown>)['$libmupdf_wasm_Module']).toBeUndefined();
    const [page] = await render(path, { dpi: 100, pageText: true });
    const doc = mupdf.Document.openDocument(readFileSync(path), 'application/pdf');
    const loaded = doc.loadPage(0);
    const list = loaded.toDisplayList(true);
    try {
      const box = loaded.getBounds() as Box;
      const { document, chars } = extractPageText(list, box, { dpi: 100, width: page!.width, height: page!.height });
      expect(JSON.parse(new TextDecoder().decode(page!.stats.text!.json))).toEqual(document);
      expect(page!.stats.text!.chars).toBe(chars);
    } finally {
      list.destroy();
      loaded.destroy();
      doc.destroy();
    }
  });
});
