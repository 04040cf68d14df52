/**
 * The page encoders of sharp (lib/encode/sharp-encoder.ts): JPEG, WebP and AVIF rows in any
 * bands, gray or RGB, give a file that an independent decoder (MuPDF for JPEG, libwebp in
 * WebAssembly for WebP, libheif through sharp for AVIF) reads back close to the pixels given;
 * the same pixels give the same bytes whatever the bands; the formats' limits are refused
 * with the reason; and a page drawn by the engine as WebP or AVIF matches the same page as PNG.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { IMAGE_FORMATS, maxPixelsOf, maxSideOf, type SharpFormat } from '../../lib/encode/formats.js';
import { createSharpEncoder } from '../../lib/encode/sharp-encoder.js';
import { DEFAULT_OUTPUT_OPTIONS, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { collect, CORPUS_DIR, decodeJpeg, decodePng, decodeWebp, meanAbsDiff, readBody } from '../engine/helpers.js';

const SHARP_FORMATS = IMAGE_FORMATS.filter((f): f is SharpFormat => f !== 'png');

/** Gradients, a hard-edged colored square and blank margins. */
function testImage(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3).fill(255);
  for (let y = Math.floor(height / 8); y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 3;
      const inSquare = x > width / 3 && x < (2 * width) / 3 && y > height / 3 && y < (2 * height) / 3;
      rgb[at] = inSquare ? 200 : (x * 255) / width;
      rgb[at + 1] = inSquare ? 30 : (y * 255) / height;
      rgb[at + 2] = inSquare ? 40 : 128;
    }
  }
  return rgb;
}

/** Sends `rows` to an encoder in bands of `band` rows, without waiting between them (as the session does). */
async function encodeInBands(format: SharpFormat, pixels: Uint8Array, width: number, height: number, channels: 1 | 3, band: number, quality = 80): Promise<Buffer> {
  const encoder = createSharpEncoder(format, { width, height, channels, quality });
  const body = readBody(encoder.output);
  const writes: Promise<void>[] = [];
  for (let top = 0; top < height; top += band) {
    const rows = Math.min(band, height - top);
    writes.push(encoder.writeRows(pixels.slice(top * width * channels, (top + rows) * width * channels), rows));
  }
  await Promise.all(writes);
  encoder.end();
  return body;
}

/** The file decoded to RGB by a decoder other than the encoder's side of sharp where there is one. */
async function decode(format: SharpFormat, file: Uint8Array): Promise<{ width: number; height: number; rgb: Uint8Array }> {
  if (format === 'jpeg') return decodeJpeg(file);
  if (format === 'webp') return decodeWebp(file);
  const { data, info } = await sharp(file).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: new Uint8Array(data) };
}

describe.each(SHARP_FORMATS)('%s through sharp', (format) => {
  it('RGB rows in bands of any size decode to the same size, close to the pixels given; the same bytes whatever the bands; higher quality is closer', async () => {
    const [width, height] = [333, 251];
    const rgb = testImage(width, height);
    const at60 = await encodeInBands(format, rgb, width, height, 3, 17, 60);
    const decoded = await decode(format, at60);
    expect([decoded.width, decoded.height]).toEqual([width, height]);
    const error60 = meanAbsDiff(decoded.rgb, rgb);
    expect(error60).toBeLessThan(4);
    expect((await encodeInBands(format, rgb, width, height, 3, height, 60)).equals(at60)).toBe(true);
    const at95 = await encodeInBands(format, rgb, width, height, 3, 64, 95);
    expect(meanAbsDiff((await decode(format, at95)).rgb, rgb)).toBeLessThan(error60);
  });

  it('gray rows come out as the same gray', async () => {
    const [width, height] = [120, 90];
    const gray = new Uint8Array(width * height);
    for (let i = 0; i < gray.length; i++) gray[i] = (i % width) * 2;
    const decoded = await decode(format, await encodeInBands(format, gray, width, height, 1, 32));
    const expected = new Uint8Array(width * height * 3);
    for (let i = 0; i < gray.length; i++) expected.fill(gray[i]!, i * 3, i * 3 + 3);
    expect(meanAbsDiff(decoded.rgb, expected)).toBeLessThan(2);
  });

  it('refuses what the format cannot hold at the first rows, with the reason, on its output too', async () => {
    const side = maxSideOf(format) + 1;
    const tooWide = createSharpEncoder(format, { width: side, height: 1, channels: 1, quality: 80 });
    const body = readBody(tooWide.output).then(() => undefined, (err: unknown) => err);
    const failure = await tooWide.writeRows(new Uint8Array(side), 1).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(failure?.message).toMatch(new RegExp(`encoder: an? \\w+ image is 1 to ${maxSideOf(format)} pixels a side, not ${side}x1$`));
    tooWide.fail(failure!);
    expect(String(await body)).toMatch(/pixels a side/);
    if (maxPixelsOf(format) < Infinity) {
      // One column past the budget at 4096 rows (WebP, AVIF: 4097; JPEG: 9766), within the side limit.
      const width = Math.floor(maxPixelsOf(format) / 4096) + 1;
      const tooMany = createSharpEncoder(format, { width, height: 4096, channels: 1, quality: 80 });
      await expect(tooMany.writeRows(new Uint8Array(width), 1)).rejects.toThrow(`page is at most ${maxPixelsOf(format)} pixels, not ${width}x4096`);
    }
    await expect(createSharpEncoder(format, { width: 8, height: 8, channels: 1, quality: 80 }).writeRows(new Uint8Array(9), 1)).rejects.toThrow('9 bytes for 1 rows of 8');
  });

  it('an output ended short of the last row fails with the reason', async () => {
    const encoder = createSharpEncoder(format, { width: 8, height: 8, channels: 1, quality: 80 });
    const body = readBody(encoder.output).then(() => undefined, (err: unknown) => err);
    await encoder.writeRows(new Uint8Array(8 * 4), 4);
    encoder.end();
    expect(String(await body)).toMatch(/ended after 4 of 8 rows/);
  });
});

describe('WebP and AVIF pages from the engine', () => {
  const options = (fields: Partial<RenderOptions>): RenderOptions => ({ ...DEFAULT_OUTPUT_OPTIONS, dpi: 100, pages: [{ from: 1, to: 2 }], ...fields });

  it.each(['webp', 'avif'] as const)('a page as %s is the page as PNG, within lossy error; its content type', { timeout: 120_000 }, async (format) => {
    const file = join(CORPUS_DIR, 'tracemonkey-paper-14p.pdf');
    const png = await collect(await startRender(file, options({ format: 'png' })));
    const lossy = await collect(await startRender(file, options({ format })));
    expect(lossy).toHaveLength(2);
    for (const [i, page] of lossy.entries()) {
      const reference = png[i]!;
      if (!page.ok || !reference.ok) throw new Error('expected both pages rendered');
      expect(page.contentType).toBe(`image/${format}`);
      const decoded = await decode(format, page.bytes);
      const expected = decodePng(reference.bytes);
      expect([decoded.width, decoded.height]).toEqual([expected.width, expected.height]);
      // The PNG is gray (1 sample a pixel) or RGB: compared as RGB.
      const rgb = new Uint8Array(expected.width * expected.height * 3);
      for (let p = 0; p < expected.width * expected.height; p++) rgb.set(expected.data.subarray(p * 4, p * 4 + 3), p * 3);
      expect(meanAbsDiff(decoded.rgb, rgb), `page ${page.pageNumber}`).toBeLessThan(2.5);
      expect(page.bytes.byteLength).toBe(page.stats.bytes);
    }
  });
});

describe('JPEG settings', () => {
  /** The code-length counts (BITS) of each Huffman table a JPEG defines, by table class and id. */
  function huffmanBits(jpeg: Buffer): Map<string, number[]> {
    const tables = new Map<string, number[]>();
    let at = 2;
    while (at + 4 <= jpeg.length && jpeg[at] === 0xff) {
      const marker = jpeg[at + 1]!;
      const length = jpeg.readUInt16BE(at + 2);
      if (marker === 0xda) break;
      if (marker === 0xc4) {
        for (let t = at + 4; t < at + 2 + length; ) {
          const bits = [...jpeg.subarray(t + 1, t + 17)];
          tables.set(`${jpeg[t]! >> 4}/${jpeg[t]! & 15}`, bits);
          t += 17 + bits.reduce((sum, n) => sum + n, 0);
        }
      }
      at += 2 + length;
    }
    return tables;
  }

  it("a page is written with libjpeg's standard Huffman tables: optimised ones buffer the whole page's coefficients (README, Encoders)", async () => {
    const [width, height] = [320, 240];
    const jpeg = await encodeInBands('jpeg', testImage(width, height), width, height, 3, 64, 85);
    const tables = huffmanBits(jpeg);
    // ITU-T T.81 Annex K.3, tables K.3 (DC luminance) and K.5 (AC luminance).
    expect(tables.get('0/0')).toEqual([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(tables.get('1/0')).toEqual([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d]);
  });
});
