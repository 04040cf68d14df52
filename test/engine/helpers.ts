/**
 * Shared helpers for the render-core tests: the corpus (read in place, never copied), an
 * independent page-size oracle (`mutool pages`, or MuPDF opened directly in this process when
 * mutool is missing), and image decoders that check what the renderer produced.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as mupdf from 'mupdf';
import { PNG } from 'pngjs';
import type { Readable } from 'node:stream';
import { PageFailedError, type FailedPage, type PageStats, type RenderedPage, type RenderJob } from '../../lib/engine/render.js';

/** The repository root (test/engine/ is two levels down). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export { CORPUS_DIR } from '../../tools/corpus.js';
import { CORPUS_DIR } from '../../tools/corpus.js';

export type Expected = 'renders' | 'needs-password' | 'broken-but-repairable' | 'unreadable';

export interface CorpusEntry {
  file: string;
  path: string;
  bytes: number;
  pages: number;
  special: string;
  expected: Expected;
  password: string;
}

export function readCorpusManifest(): CorpusEntry[] {
  const text = readFileSync(join(CORPUS_DIR, 'MANIFEST.tsv'), 'utf8');
  const [header, ...rows] = text.split('\n').filter((line) => line.trim() !== '');
  const columns = header!.split('\t');
  const col = (name: string): number => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`MANIFEST.tsv has no column ${name}`);
    return i;
  };
  return rows.map((row) => {
    const cells = row.split('\t');
    const file = cells[col('file')]!;
    return {
      file,
      path: join(CORPUS_DIR, file),
      bytes: Number(cells[col('bytes')]),
      pages: Number(cells[col('pages')]),
      special: cells[col('what_is_special')] ?? '',
      expected: cells[col('expected')] as Expected,
      password: cells[col('password')] ?? '',
    };
  });
}

export const MUTOOL = '/usr/bin/mutool';
export const HAVE_MUTOOL = existsSync(MUTOOL);

/** A page's visible size in points, rotation applied. */
export interface PageSize {
  width: number;
  height: number;
}

/**
 * Page sizes read with `mutool show` (an oracle independent of the code under test): the page
 * object's /MediaBox, /CropBox and /Rotate, inherited through /Parent when absent (`mutool
 * pages` does not show inherited attributes), CropBox clipped to MediaBox, /Rotate applied.
 */
export function pageSizesFromMutool(path: string, pageNumbers: readonly number[]): Map<number, PageSize> {
  const show = (...args: string[]): string =>
    execFileSync(MUTOOL, ['show', path, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
  const pageObjects = new Map<number, number>();
  for (const m of show('pages').matchAll(/^page (\d+) = (\d+) \d+ R/gm)) pageObjects.set(Number(m[1]), Number(m[2]));
  const objects = new Map<number, string>();
  const object = (num: number): string => {
    let text = objects.get(num);
    if (text === undefined) objects.set(num, (text = show(String(num))));
    return text;
  };
  /** A top-level entry of an object's dictionary (mutool indents those by exactly two spaces). */
  const entry = (text: string, key: string): string | undefined => {
    const value = new RegExp(`^  /${key}(?![A-Za-z]) *(.*)$`, 'm').exec(text)?.[1]?.trim();
    const ref = value && /^(\d+) \d+ R$/.exec(value);
    return ref ? object(Number(ref[1])).replace(/^\d+ \d+ obj\s*|\s*endobj\s*$/g, '').trim() : value;
  };
  const inherited = (num: number, key: string): string | undefined => {
    for (let depth = 0, current: number | undefined = num; current !== undefined && depth < 32; depth++) {
      const text = object(current);
      const value = entry(text, key);
      if (value !== undefined) return value;
      const parent = /^  \/Parent (\d+) \d+ R/m.exec(text);
      current = parent ? Number(parent[1]) : undefined;
    }
    return undefined;
  };
  const rect = (value: string | undefined): [number, number, number, number] | undefined => {
    const n = value?.match(/-?\d*\.?\d+/g)?.map(Number);
    if (!n || n.length !== 4) return undefined;
    return [Math.min(n[0]!, n[2]!), Math.min(n[1]!, n[3]!), Math.max(n[0]!, n[2]!), Math.max(n[1]!, n[3]!)];
  };
  const sizes = new Map<number, PageSize>();
  for (const pageNumber of pageNumbers) {
    const num = pageObjects.get(pageNumber);
    if (num === undefined) continue;
    // A missing or broken MediaBox defaults to US Letter in MuPDF, as in the spec's examples.
    const media = rect(inherited(num, 'MediaBox')) ?? [0, 0, 612, 792];
    const crop = rect(inherited(num, 'CropBox'));
    const visible = crop
      ? [Math.max(media[0], crop[0]), Math.max(media[1], crop[1]), Math.min(media[2], crop[2]), Math.min(media[3], crop[3])]
      : media;
    const rotate = ((Math.round(Number(inherited(num, 'Rotate') ?? 0) / 90) * 90 % 360) + 360) % 360;
    const w = visible[2]! - visible[0]!;
    const h = visible[3]! - visible[1]!;
    sizes.set(pageNumber, rotate === 90 || rotate === 270 ? { width: h, height: w } : { width: w, height: h });
  }
  return sizes;
}

/** The same from MuPDF opened in this process (used only when mutool is not installed). */
export async function pageSizesFromMupdf(path: string, pageNumbers: readonly number[]): Promise<Map<number, PageSize>> {
  const mupdf = await import('mupdf');
  const doc = mupdf.Document.openDocument(readFileSync(path), 'application/pdf');
  const sizes = new Map<number, PageSize>();
  try {
    for (const n of pageNumbers) {
      const page = doc.loadPage(n - 1);
      const [x0, y0, x1, y1] = page.getBounds();
      sizes.set(n, { width: x1 - x0, height: y1 - y0 });
      page.destroy();
    }
  } finally {
    doc.destroy();
  }
  return sizes;
}

export async function pageSizes(path: string, pageNumbers: readonly number[]): Promise<Map<number, PageSize>> {
  return HAVE_MUTOOL ? pageSizesFromMutool(path, pageNumbers) : pageSizesFromMupdf(path, pageNumbers);
}

/** Decodes a PNG fully (so a truncated or corrupt one throws) and returns its size. */
export function decodePng(bytes: Uint8Array): { width: number; height: number; data: Buffer } {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { width: png.width, height: png.height, data: png.data };
}

/**
 * Width and height from a JPEG's SOFn marker, walking the marker segments by hand.
 * Also checks that the data ends with EOI.
 */
export function jpegSize(bytes: Uint8Array): { width: number; height: number; components: number } {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new Error('not a JPEG: no SOI marker');
  if (bytes[bytes.length - 2] !== 0xff || bytes[bytes.length - 1] !== 0xd9) throw new Error('JPEG does not end with EOI');
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) throw new Error(`JPEG marker expected at offset ${i}`);
    const marker = bytes[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    }
    const length = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = (bytes[i + 5]! << 8) | bytes[i + 6]!;
      const width = (bytes[i + 7]! << 8) | bytes[i + 8]!;
      return { width, height, components: bytes[i + 9]! };
    }
    if (marker === 0xda) break;
    i += 2 + length;
  }
  throw new Error('JPEG has no SOF marker before the scan');
}

/** Expected pixel size of a page at `dpi`: points x dpi / 72. */
export function expectedPixels(size: PageSize, dpi: number): PageSize {
  return { width: (size.width * dpi) / 72, height: (size.height * dpi) / 72 };
}

export async function readBody(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A page with its encoded bytes read, or a failure (before or while it streamed). */
export type CollectedPage = FailedPage | (RenderedPage & { bytes: Buffer; stats: PageStats });

/** Reads one page's body to the end; a page that fails midway becomes a FailedPage. */
export async function readPage(page: RenderedPage): Promise<CollectedPage> {
  try {
    const bytes = await readBody(page.body);
    return { ...page, bytes, stats: await page.finished };
  } catch (err) {
    if (err instanceof PageFailedError) return { ok: false, pageNumber: page.pageNumber, error: err.pageError };
    throw err;
  }
}

/** Drains a job, reading every page as it comes (the worker waits for its reader); the job closes itself. */
export async function collect(job: RenderJob): Promise<CollectedPage[]> {
  const results: CollectedPage[] = [];
  for await (const result of job) results.push(result.ok ? await readPage(result) : result);
  return results;
}

/** A rejection's RenderError code, or a description of what happened instead. */
export async function errorCodeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved (no error)';
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? code : `non-RenderError: ${String(err)}`;
  }
}

/** A JPEG decoded by MuPDF (an independent decoder), as RGB: a gray JPEG expanded. */
export function decodeJpeg(jpeg: Uint8Array): { width: number; height: number; rgb: Uint8Array } {
  const image = new mupdf.Image(jpeg);
  const pixmap = image.toPixmap();
  const rgb = pixmap.getNumberOfComponents() === 3 ? pixmap : pixmap.convertToColorSpace(mupdf.ColorSpace.DeviceRGB);
  try {
    return { width: rgb.getWidth(), height: rgb.getHeight(), rgb: new Uint8Array(rgb.getPixels()) };
  } finally {
    if (rgb !== pixmap) rgb.destroy();
    pixmap.destroy();
    image.destroy();
  }
}

let webpDecoder: Promise<(webp: Uint8Array) => Promise<{ width: number; height: number; data: Uint8ClampedArray }>> | undefined;

/**
 * A WebP decoded by libwebp's decoder (@jsquash/webp's, compiled from node_modules: MuPDF reads
 * no WebP), as RGB; throws on a damaged file.
 */
export async function decodeWebp(webp: Uint8Array): Promise<{ width: number; height: number; rgb: Uint8Array }> {
  webpDecoder ??= (async () => {
    const { default: decode, init } = await import('@jsquash/webp/decode.js');
    const wasm = join(dirname(createRequire(import.meta.url).resolve('@jsquash/webp')), 'codec/dec/webp_dec.wasm');
    await init(await WebAssembly.compile(readFileSync(wasm)));
    return async (bytes: Uint8Array) => {
      // A copy: a Buffer's .buffer may be Node's shared pool, far larger than the file.
      const image = await decode(new Uint8Array(bytes).buffer);
      return { width: image.width, height: image.height, data: image.data as Uint8ClampedArray };
    };
  })();
  const { width, height, data } = await (await webpDecoder)(webp);
  const rgb = new Uint8Array(width * height * 3);
  for (let from = 0, to = 0; from < data.length; from += 4, to += 3) {
    rgb[to] = data[from]!;
    rgb[to + 1] = data[from + 1]!;
    rgb[to + 2] = data[from + 2]!;
  }
  return { width, height, rgb };
}

/** The mean absolute difference of two images' samples. */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/** A page with a CropBox inside its MediaBox: text, rules and colour blocks crossing the crop's edges. */
export function writeCroppedPdf(path: string): void {
  const doc = new mupdf.PDFDocument();
  const font = doc.addSimpleFont(new mupdf.Font('Helvetica'));
  const resources = doc.addObject({ Font: { F1: font } });
  let content = '0.8 0.1 0.1 rg 20 20 300 200 re f 0.1 0.3 0.8 rg 250 500 300 250 re f 0 0 0 RG 3 w\n';
  for (let at = 0; at <= 800; at += 37) content += `0 ${at} m 600 ${at + 40} l S\n`;
  content += 'BT /F1 36 Tf 0 0 0 rg 40 400 Td (CropBox is not MediaBox) Tj ET\n';
  const page = doc.addPage([0, 0, 600, 800], 0, resources, content);
  page.put('CropBox', [57, 103, 451, 689]);
  doc.insertPage(-1, page);
  writeFileSync(path, doc.saveToBuffer('').asUint8Array());
  doc.destroy();
}
