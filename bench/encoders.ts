/**
 * npx tsx bench/encoders.ts [--rounds N] [--threads N] [--only name,name] [files…]
 *
 * The encoders alone, on the same pixels, in one process: each page of a few corpus files drawn
 * once at 150 dpi (MuPDF.js toPixmap, RGB; gray pages as gray rows, as the engine sends them),
 * then encoded --rounds times (default 2, the last one timed) by each candidate:
 * - ours: JPEG (lib/encode/jpeg-encoder.ts, q85), zlib level 6 on the PNG scanlines (what the
 *   PNG encoder runs); libwebp in WebAssembly (@jsquash/webp, method 4, q80), which WebP pages
 *   used before sharp, took 288 ms/Mpx where sharp's WebP took 183 at the same effort;
 * - MuPDF's JPEG (Pixmap.asJPEG, q85: whole page, progressive, optimized Huffman);
 * - sharp (libvips, native): JPEG (libjpeg-turbo's path: mozjpeg off), PNG, WebP at several
 *   efforts, AVIF at several efforts, with libvips' threads set by --threads (default 1: time
 *   is then CPU time, comparable with ours on one core).
 * Prints, per candidate, time, bytes and the mean absolute error against the drawn pixels (in
 * levels of 255, over every channel of every pixel: the method the WebP quality was chosen by).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import * as mupdf from 'mupdf';
import sharp from 'sharp';
import { CORPUS_DIR } from '../tools/corpus.js';
import { encodeJpeg } from '../lib/encode/jpeg-encoder.js';
import { PNG_DEFLATE_LEVEL } from '../lib/encode/png-encoder.js';
import { copyGrayRows, copyRows } from '../lib/encode/rows.js';

/** Text, scans, a poster, photos: [file, pages from the start]. */
const DEFAULT_FILES: [string, number][] = [
  ['tracemonkey-paper-14p.pdf', 4],
  ['federal-register-15p.pdf', 3],
  ['geotopo-thesis-117p-cff-mesh.pdf', 3],
  ['itu-t81-jpeg-spec-186p-type3.pdf', 2],
  ['jbig2-scan-4p.pdf', 2],
  ['cmyk-jpeg.pdf', 1],
  ['multipage-9000px-image.pdf', 1],
];
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '2' }, threads: { type: 'string', default: '1' }, only: { type: 'string' } },
});
const rounds = Math.max(1, Number(values.rounds));
sharp.cache(false);
sharp.concurrency(Math.max(1, Number(values.threads)));
const files: [string, number][] = positionals.length > 0 ? positionals.map((f) => [f, 3]) : DEFAULT_FILES;

interface Page {
  width: number;
  height: number;
  channels: 1 | 3;
  /** Packed rows, as the encoders get them. */
  pixels: Uint8Array;
  /** PNG scanlines of the same. */
  scanlines: Uint8Array;
  rgb: Uint8Array;
  pixmap: mupdf.Pixmap;
}

type Encode = (page: Page) => Uint8Array | Promise<Uint8Array>;

const raw = (page: Page) => {
  const input = sharp(page.pixels, { raw: { width: page.width, height: page.height, channels: page.channels } });
  return page.channels === 1 ? input.toColourspace('b-w') : input;
};

const CANDIDATES: [string, Encode][] = [
  ['ours PNG (zlib 6)', (p) => deflateSync(p.scanlines, { level: PNG_DEFLATE_LEVEL })],
  ['sharp PNG (6)', (p) => raw(p).png({ compressionLevel: 6 }).toBuffer()],
  ['sharp PNG (6, no filter)', (p) => raw(p).png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer()],
  ['ours JPEG 85', (p) => encodeJpeg(p.pixels, { width: p.width, height: p.height, channels: p.channels, quality: 85 })],
  ['MuPDF JPEG 85', (p) => p.pixmap.asJPEG(85, false)],
  ['sharp JPEG 85 4:4:4', (p) => raw(p).jpeg({ quality: 85, chromaSubsampling: '4:4:4', mozjpeg: false }).toBuffer()],
  ['sharp JPEG 85 4:4:4 no optimised Huffman', (p) => raw(p).jpeg({ quality: 85, chromaSubsampling: '4:4:4', mozjpeg: false, optimiseCoding: false }).toBuffer()],
  ['sharp JPEG 85 4:2:0', (p) => raw(p).jpeg({ quality: 85, chromaSubsampling: '4:2:0', mozjpeg: false }).toBuffer()],
  ['sharp WebP 80 e4', (p) => raw(p).webp({ quality: 80, effort: 4 }).toBuffer()],
  ['sharp WebP 80 e2', (p) => raw(p).webp({ quality: 80, effort: 2 }).toBuffer()],
  ['sharp WebP 80 e1', (p) => raw(p).webp({ quality: 80, effort: 1 }).toBuffer()],
  ['sharp WebP 80 e0', (p) => raw(p).webp({ quality: 80, effort: 0 }).toBuffer()],
  ['sharp WebP 78 e0', (p) => raw(p).webp({ quality: 78, effort: 0 }).toBuffer()],
  ['sharp WebP 77 e0', (p) => raw(p).webp({ quality: 77, effort: 0 }).toBuffer()],
  ['sharp WebP 76 e0', (p) => raw(p).webp({ quality: 76, effort: 0 }).toBuffer()],
  ['sharp WebP 75 e0', (p) => raw(p).webp({ quality: 75, effort: 0 }).toBuffer()],
  ['sharp WebP 70 e0', (p) => raw(p).webp({ quality: 70, effort: 0 }).toBuffer()],
  ['sharp WebP 75 e1', (p) => raw(p).webp({ quality: 75, effort: 1 }).toBuffer()],
  ['sharp WebP 80 e0 text', (p) => raw(p).webp({ quality: 80, effort: 0, preset: 'text' }).toBuffer()],
  ['sharp WebP 75 e0 text', (p) => raw(p).webp({ quality: 75, effort: 0, preset: 'text' }).toBuffer()],
  ['sharp WebP 80 e2 text', (p) => raw(p).webp({ quality: 80, effort: 2, preset: 'text' }).toBuffer()],
  ['sharp WebP lossless e0', (p) => raw(p).webp({ lossless: true, effort: 0 }).toBuffer()],
  ['sharp WebP lossless e1', (p) => raw(p).webp({ lossless: true, effort: 1 }).toBuffer()],
  ['sharp WebP lossless e2', (p) => raw(p).webp({ lossless: true, effort: 2 }).toBuffer()],
  ['sharp WebP nearlossless 60 e0', (p) => raw(p).webp({ nearLossless: true, quality: 60, effort: 0 }).toBuffer()],
  ['sharp WebP 80 e0 drawing', (p) => raw(p).webp({ quality: 80, effort: 0, preset: 'drawing' }).toBuffer()],

  ['sharp AVIF 50 e0', (p) => raw(p).avif({ quality: 50, effort: 0 }).toBuffer()],
  ['sharp AVIF 50 e2', (p) => raw(p).avif({ quality: 50, effort: 2 }).toBuffer()],
  ['sharp AVIF 60 e0', (p) => raw(p).avif({ quality: 60, effort: 0 }).toBuffer()],
  ['sharp AVIF 60 e2', (p) => raw(p).avif({ quality: 60, effort: 2 }).toBuffer()],
  ['sharp AVIF 60 e4', (p) => raw(p).avif({ quality: 60, effort: 4 }).toBuffer()],
];
const only = values.only?.split(',');
const chosen = CANDIDATES.filter(([name]) => !only || only.some((o) => name.includes(o)));

/** Mean absolute error of `file` decoded against the drawn RGB pixels, in levels. */
async function meanAbsoluteError(file: Uint8Array, page: Page): Promise<number> {
  const decoded = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const { data, info } = decoded;
  if (info.width !== page.width || info.height !== page.height) return NaN;
  let sum = 0;
  if (info.channels === 1) {
    for (let i = 0; i < data.length; i++) sum += 3 * Math.abs(data[i]! - page.rgb[i * 3]!);
  } else {
    for (let i = 0; i < data.length; i++) sum += Math.abs(data[i]! - page.rgb[i]!);
  }
  return sum / (page.width * page.height * 3);
}

const results = new Map<string, { ms: number; bytes: number; errorSum: number; errorPages: number }>(chosen.map(([name]) => [name, { ms: 0, bytes: 0, errorSum: 0, errorPages: 0 }]));
let pages = 0;
let megapixels = 0;
for (const [file, count] of files) {
  const doc = mupdf.Document.openDocument(readFileSync(join(CORPUS_DIR, file)), 'application/pdf');
  for (let n = 0; n < Math.min(count, doc.countPages()); n++) {
    const docPage = doc.loadPage(n);
    const pixmap = docPage.toPixmap(mupdf.Matrix.scale(150 / 72, 150 / 72), mupdf.ColorSpace.DeviceRGB, false, true);
    const [width, height] = [pixmap.getWidth(), pixmap.getHeight()];
    const rgb = new Uint8Array(pixmap.getPixels());
    const gray = copyGrayRows(rgb, width, height, 'packed');
    const page: Page = {
      width,
      height,
      channels: gray ? 1 : 3,
      pixels: gray ?? rgb,
      scanlines: copyGrayRows(rgb, width, height, 'png') ?? copyRows(rgb, width, height, 3, 'png'),
      rgb,
      pixmap,
    };
    pages++;
    megapixels += (width * height) / 1e6;
    for (const [name, encode] of chosen) {
      let out: Uint8Array = new Uint8Array(0);
      let ms = 0;
      for (let round = 0; round < rounds; round++) {
        const started = performance.now();
        out = await encode(page);
        ms = performance.now() - started;
      }
      const r = results.get(name)!;
      r.ms += ms;
      r.bytes += out.byteLength;
      if (!name.includes('PNG')) {
        r.errorSum += await meanAbsoluteError(out, page);
        r.errorPages++;
      }
    }
    pixmap.destroy();
    docPage.destroy();
  }
  doc.destroy();
}
console.log(`${pages} pages, ${megapixels.toFixed(1)} Mpx at 150 dpi; the last of ${rounds} rounds; libvips threads ${sharp.concurrency()}`);
const header = ['encoder', 'ms', 'ms/Mpx', 'MB', 'MAE (levels)'];
const body = [...results].map(([name, r]) => [name, r.ms.toFixed(0), (r.ms / megapixels).toFixed(1), (r.bytes / 1e6).toFixed(2), r.errorPages ? (r.errorSum / r.errorPages).toFixed(2) : '0 (lossless)']);
const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
for (const row of [header, ...body]) console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
