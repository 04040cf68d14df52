/**
 * npx tsx bench/encoders.ts [--rounds N] [files…]
 *
 * The encoders alone, on the same pixels, in one process: each page of a few corpus files drawn
 * once at 150 dpi (MuPDF.js toPixmap, RGB), then encoded --rounds times (default 3, the last
 * one timed) by
 * - ours JPEG (lib/encode/jpeg-encoder.ts, quality 85; gray pages with one component),
 * - MuPDF's JPEG (Pixmap.asJPEG, quality 85: whole page, progressive, optimized Huffman),
 * - zlib level 6 on the PNG scanlines (gray pages as gray), what the PNG encoder runs.
 * Prints, per file and in total, the time and bytes of each, and the drawing time.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import * as mupdf from 'mupdf';
import { CORPUS_DIR } from '../tools/corpus.js';
import { encodeJpeg } from '../lib/encode/jpeg-encoder.js';
import { PNG_DEFLATE_LEVEL } from '../lib/encode/png-encoder.js';
import { copyGrayRows, copyRows } from '../lib/encode/rows.js';

const CORPUS = CORPUS_DIR;
/** Text, scans, a poster, photos: [file, pages from the start]. */
const DEFAULT_FILES: [string, number][] = [
  ['tracemonkey-paper-14p.pdf', 6],
  ['federal-register-15p.pdf', 4],
  ['geotopo-thesis-117p-cff-mesh.pdf', 4],
  ['itu-t81-jpeg-spec-186p-type3.pdf', 4],
  ['jbig2-scan-4p.pdf', 2],
  ['go-poster-3294pt.pdf', 1],
  ['cmyk-jpeg.pdf', 1],
  ['multipage-9000px-image.pdf', 1],
];
const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '3' } } });
const rounds = Math.max(1, Number(values.rounds));
const files: [string, number][] = positionals.length > 0 ? positionals.map((f) => [f, 4]) : DEFAULT_FILES;
const QUALITY = 85;

interface Totals {
  pages: number;
  megapixels: number;
  drawMs: number;
  ours: [number, number];
  mupdf: [number, number];
  zlib: [number, number];
}
const time = <T>(f: () => T): [T, number] => {
  const started = performance.now();
  return [f(), performance.now() - started];
};

const rows: [string, Totals][] = [];
for (const [file, count] of files) {
  const doc = mupdf.Document.openDocument(readFileSync(join(CORPUS, file)), 'application/pdf');
  const totals: Totals = { pages: 0, megapixels: 0, drawMs: 0, ours: [0, 0], mupdf: [0, 0], zlib: [0, 0] };
  for (let n = 0; n < Math.min(count, doc.countPages()); n++) {
    const page = doc.loadPage(n);
    const [pixmap, drawMs] = time(() => page.toPixmap(mupdf.Matrix.scale(150 / 72, 150 / 72), mupdf.ColorSpace.DeviceRGB, false, true));
    const [width, height] = [pixmap.getWidth(), pixmap.getHeight()];
    const rgb = new Uint8Array(pixmap.getPixels());
    const grayScanlines = copyGrayRows(rgb, width, height, 'png');
    const gray = copyGrayRows(rgb, width, height, 'packed');
    const scanlines = grayScanlines ?? copyRows(rgb, width, height, 3, 'png');
    const measures = { ours: [0, 0], mupdf: [0, 0], zlib: [0, 0] };
    for (let round = 0; round < rounds; round++) {
      const [ours, oursMs] = time(() => encodeJpeg(gray ?? rgb, { width, height, channels: gray ? 1 : 3, quality: QUALITY }));
      const [theirs, mupdfMs] = time(() => pixmap.asJPEG(QUALITY, false));
      const [zlib, zlibMs] = time(() => deflateSync(scanlines, { level: PNG_DEFLATE_LEVEL }));
      Object.assign(measures, { ours: [oursMs, ours.byteLength], mupdf: [mupdfMs, theirs.byteLength], zlib: [zlibMs, zlib.byteLength] });
    }
    pixmap.destroy();
    page.destroy();
    totals.pages++;
    totals.megapixels += (width * height) / 1e6;
    totals.drawMs += drawMs;
    for (const key of ['ours', 'mupdf', 'zlib'] as const) {
      totals[key][0] += measures[key][0]!;
      totals[key][1] += measures[key][1]!;
    }
  }
  doc.destroy();
  rows.push([file.replace(/\.pdf$/, ''), totals]);
}
const all: Totals = { pages: 0, megapixels: 0, drawMs: 0, ours: [0, 0], mupdf: [0, 0], zlib: [0, 0] };
for (const [, t] of rows) {
  all.pages += t.pages;
  all.megapixels += t.megapixels;
  all.drawMs += t.drawMs;
  for (const key of ["ours", "mupdf", "zlib"] as const) for (const i of [0, 1] as const) all[key][i] += t[key][i];
}
rows.push(['TOTAL', all]);
const header = ['file', 'pages', 'Mpx', 'draw ms', 'ours JPEG ms', 'MuPDF JPEG ms', 'zlib-6 PNG ms', 'ours JPEG MB', 'MuPDF JPEG MB', 'zlib-6 MB'];
const body = rows.map(([name, t]) => [
  name,
  String(t.pages),
  t.megapixels.toFixed(1),
  t.drawMs.toFixed(0),
  t.ours[0].toFixed(0),
  t.mupdf[0].toFixed(0),
  t.zlib[0].toFixed(0),
  (t.ours[1] / 1e6).toFixed(2),
  (t.mupdf[1] / 1e6).toFixed(2),
  (t.zlib[1] / 1e6).toFixed(2),
]);
const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
console.log(`encoders on the same pixels, 150 dpi, quality ${QUALITY}, the last of ${rounds} rounds`);
for (const row of [header, ...body]) console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
