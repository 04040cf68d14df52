/**
 * Inputs that take renderers down, generated on the spot (test/fixtures/generated-pdfs.ts): each
 * renders within the WebAssembly heap ceiling, or fails its page with a clear code, and never
 * ends the job.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { mupdfWasmPath, patchMupdfWasm, STACK_BYTES, WASM_HEAP_LIMIT_BYTES } from '../../lib/engine/wasm.js';
import {
  writeDeepFormsPdf,
  writeGiantImagePdf,
  writeGiantPagePdf,
  writeImageBombPdf,
  writeLargeFilePdf,
  writeManySegmentsPdf,
} from '../fixtures/generated-pdfs.js';
import { CORPUS_DIR, collect, decodePng, decodeWebp, jpegSize } from './helpers.js';
import sharp from 'sharp';
import { formatLabelOf, IMAGE_FORMATS, maxPixelsOf, maxSideOf } from '../../lib/encode/formats.js';

const dir = mkdtempSync(join(tmpdir(), 'hostile-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const options = (extra: Partial<RenderOptions> = {}): RenderOptions => ({ ...DEFAULT_OUTPUT_OPTIONS, ...extra });
const MiB = 2 ** 20;

/** RGB at a point given as fractions of the width and height, from the top left. */
function pixelAt(png: { width: number; height: number; data: Buffer }, x: number, y: number): number[] {
  const at = (Math.floor(png.height * y) * png.width + Math.floor(png.width * x)) * 4;
  return [...png.data.subarray(at, at + 3)];
}

async function generated(name: string, write: (path: string) => Promise<void>): Promise<string> {
  const path = join(dir, name);
  await write(path);
  return path;
}

describe('the patched MuPDF build', () => {
  it('moves the stack and caps the heap in place, and refuses a build it does not know', async () => {
    const original = readFileSync(mupdfWasmPath());
    const { bytes, guard } = patchMupdfWasm(original);
    expect(bytes.byteLength).toBe(original.byteLength);
    await expect(WebAssembly.compile(bytes)).resolves.toBeInstanceOf(WebAssembly.Module);
    // The guard zone lies just below the new stack, which is STACK_BYTES deep.
    expect(guard.end - guard.start).toBeGreaterThan(0);
    expect(STACK_BYTES).toBeGreaterThanOrEqual(8 * MiB);
    let changed = 0;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== original[i]) changed++;
    // Three copies of the stack top (4 bytes each at most) and the memory maximum (3 bytes).
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThanOrEqual(3 * 4 + 3);
    // Another build (here: the stack pointer's initial value moved) is refused, not guessed at.
    const other = new Uint8Array(original);
    const at = Buffer.from(other).indexOf(Buffer.from([0x41, 0xd0, 0xb4, 0xfe, 0x02]));
    other[at + 1] = 0xd4;
    expect(() => patchMupdfWasm(other)).toThrow(/not the build/);
  });
});

describe('hostile inputs', () => {
  it('forms nested 60 deep render (the stock build overflows its stack at about 40), a cycle renders, 5000 deep fails alone', { timeout: 60_000 }, async () => {
    const job = await startRender(await generated('deep-forms.pdf', writeDeepFormsPdf), options());
    const pages = await collect(job);
    expect(pages.map((p) => (p.ok ? 'OK' : p.error.code))).toEqual(['OK', 'OK', 'PAGE_RENDER_FAILED']);
    const [deep, , hopeless] = pages;
    if (!deep!.ok || hopeless!.ok) throw new Error('unreachable');
    // The innermost form's blue square is there: all 60 levels were drawn.
    expect(pixelAt(decodePng(deep!.bytes), 0.5, 0.6)).toEqual([0, 0, 255]);
    expect(hopeless!.error.message).toMatch(/nested deeper than MuPDF allows/);
    // No crash: one worker did it all.
    expect(job.stats.workers).toBe(1);
  });

  it.each(IMAGE_FORMATS)('an image that decodes to 2.5 GB, in a file of a few KB, renders in a small heap (%s)', { timeout: 120_000 }, async (format) => {
    const path = await generated(`bomb-${format}.pdf`, (p) => writeImageBombPdf(p));
    expect(statSync(path).size).toBeLessThan(64 * 1024);
    const job = await startRender(path, options({ format }));
    const pages = await collect(job);
    expect(pages.map((p) => p.ok)).toEqual([true]);
    const [page] = pages;
    if (page?.ok) expect(await sharp(page.bytes).metadata()).toMatchObject({ width: page.width, height: page.height, format: format === 'jpeg' ? 'jpeg' : format === 'avif' ? 'heif' : format });
    expect(job.stats.wasmHeapPeakBytes).toBeLessThan(64 * MiB);
    // What the encoder gathers outside the heap (sharp's whole page) stays within the format's budget; PNG streams.
    if (format === 'png') expect(job.stats.encoderGatheredPeakBytes).toBe(0);
    else {
      expect(job.stats.encoderGatheredPeakBytes).toBeGreaterThan(0);
      expect(job.stats.encoderGatheredPeakBytes).toBeLessThanOrEqual(maxPixelsOf(format) * 3);
    }
  });

  it('a page of 2 million path segments renders: drawn whole it runs out of heap, so it is drawn again in bands', { timeout: 180_000 }, async () => {
    const job = await startRender(await generated('segments.pdf', (p) => writeManySegmentsPdf(p)), options());
    const [page] = await collect(job);
    if (!page?.ok) throw new Error(`expected the page rendered, got ${page ? page.error.code : 'nothing'}`);
    const png = decodePng(page.bytes);
    expect([png.width, png.height]).toEqual([1275, 1650]);
    // The red triangle drawn after the 2 million segments is there, so the whole content ran.
    expect(pixelAt(png, 0.5, 0.75)).toEqual([229, 76, 76]);
    expect(job.stats.wasmHeapPeakBytes).toBeLessThanOrEqual(WASM_HEAP_LIMIT_BYTES);
  });

  it('a JPEG page wider than a JPEG can be (65535 px) is drawn at the DPI that fits, and says so', { timeout: 120_000 }, async () => {
    // A 14400 x 50 pt banner: 80000 px wide at 400 dpi, 22 Mpx, within the pixel budget.
    const job = await startRender(await generated('banner.pdf', (p) => writeGiantPagePdf(p, 50)), options({ format: 'jpeg', dpi: 400 }));
    const [page] = await collect(job);
    if (!page?.ok) throw new Error(`expected the page rendered, got ${page ? page.error.code : 'nothing'}`);
    expect(page.width).toBeLessThanOrEqual(65535);
    expect(page.dpi).toBeLessThan(400);
    expect(page.warning).toBe(`page 1: JPEG rendered at ${page.dpi} dpi: a JPEG page is at most 65535 pixels a side and 40000000 pixels (the encoder holds the whole page) (PNG has no such limit)`);
    expect(jpegSize(page.bytes)).toMatchObject({ width: page.width, height: page.height });
  });

  it.each(['jpeg', 'webp', 'avif'] as const)('a poster page as %s at a raised MAX_PAGE_PIXELS is drawn in bands, at the DPI that fits the format\'s pixel budget, and says so; the heap and the gathered page stay bounded', { timeout: 180_000 }, async (format) => {
    // 64 Mpx at 200 dpi, within a raised MAX_PAGE_PIXELS (a product limit, not a memory guard):
    // over the 40 Mpx a JPEG page and the 16 Mpx a WebP or AVIF page may have (sharp gathers the whole page).
    const job = await startRender(join(CORPUS_DIR, 'go-poster-3294pt.pdf'), options({ format, dpi: 200, maxPagePixels: 500_000_000 }));
    const [page] = await collect(job);
    if (!page?.ok) throw new Error(`expected the page rendered, got ${page ? page.error.code : 'nothing'}`);
    const [name, maxSide, maxPixels] = [formatLabelOf(format), maxSideOf(format), maxPixelsOf(format)];
    expect(page.dpi).toBeLessThan(200);
    expect(page.width * page.height).toBeLessThanOrEqual(maxPixels);
    expect(page.warning).toBe(
      `page 1: ${name} rendered at ${page.dpi} dpi: a ${name} page is at most ${maxSide} pixels a side and ${maxPixels} pixels (the encoder holds the whole page) (PNG has no such limit)`,
    );
    if (format === 'webp') expect(await decodeWebp(page.bytes)).toMatchObject({ width: page.width, height: page.height });
    else if (format === 'jpeg') expect(jpegSize(page.bytes)).toEqual({ width: page.width, height: page.height, components: 3 });
    else expect(await sharp(page.bytes).metadata()).toMatchObject({ width: page.width, height: page.height });
    // MuPDF's heap holds bands and the poster's images, never the encoder's whole page (for JPEG's
    // 40 Mpx: below the page's own pixels; MuPDF's encoder needed it in one pixmap).
    expect(job.stats.wasmHeapPeakBytes).toBeLessThanOrEqual(WASM_HEAP_LIMIT_BYTES);
    if (format === 'jpeg') expect(job.stats.wasmHeapPeakBytes).toBeLessThan(page.width * page.height * 3);
    // The whole page sharp gathers is a Node Buffer outside that heap: RGB, within the format's budget.
    expect(job.stats.encoderGatheredPeakBytes).toBe(page.width * page.height * 3);
    expect(job.stats.encoderGatheredPeakBytes).toBeLessThanOrEqual(maxPixels * 3);
  });

  it.each(['webp', 'avif'] as const)('a %s page wider than the format allows (16383 px) is drawn at the DPI that fits, and says so', { timeout: 120_000 }, async (format) => {
    // A 14400 x 50 pt banner: 20000 px wide at 100 dpi, 1.4 Mpx.
    const job = await startRender(await generated(`banner-${format}.pdf`, (p) => writeGiantPagePdf(p, 50)), options({ format, dpi: 100 }));
    const [page] = await collect(job);
    if (!page?.ok) throw new Error(`expected the page rendered, got ${page ? page.error.code : 'nothing'}`);
    const [name, maxSide] = [formatLabelOf(format), maxSideOf(format)];
    expect(page.width).toBeLessThanOrEqual(maxSide);
    expect(page.dpi).toBeLessThan(100);
    expect(page.warning).toMatch(new RegExp(`^page 1: ${name} rendered at ${page.dpi} dpi: a ${name} page is at most ${maxSide} pixels a side`));
    expect(await sharp(page.bytes).metadata()).toMatchObject({ width: page.width, height: page.height });
  });

  it('a 300 MB file is read through the file, never held: the heap stays far below the file size', { timeout: 180_000 }, async () => {
    const path = await generated('large.pdf', (p) => writeLargeFilePdf(p, 300));
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(300e6);
    const job = await startRender(path, options());
    const pages = await collect(job);
    expect(pages.length).toBeGreaterThan(25);
    expect(pages.every((p) => p.ok)).toBe(true);
    expect(job.stats.wasmHeapPeakBytes).toBeLessThan(size / 3);
    rmSync(path);
  });

  it('one 30000x30000 px image (2.7 GB decoded) renders at full size in bands, in a bounded heap', { timeout: 900_000 }, async () => {
    const path = await generated('giant-image.pdf', (p) => writeGiantImagePdf(p));
    const job = await startRender(path, options({ dpi: 150, maxPagePixels: 1_000_000_000 }));
    let shape: { width: number; height: number; bytes: number } | undefined;
    for await (const page of job) {
      if (!page.ok) throw new Error(`${page.error.code}: ${page.error.message}`);
      let bytes = 0;
      for await (const chunk of page.body) bytes += (chunk as Buffer).byteLength;
      shape = { width: page.width, height: page.height, bytes };
      expect((await page.finished).bytes).toBe(bytes);
    }
    expect(shape?.width).toBe(30000);
    expect(shape?.height).toBe(30000);
    expect(job.stats.wasmHeapPeakBytes).toBeLessThan(256 * MiB);
  });
});
