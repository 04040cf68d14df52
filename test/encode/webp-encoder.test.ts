/**
 * The WebP encoder (lib/encode/webp-encoder.ts) on its encoder thread: rows in any bands, gray
 * or RGB, give a WebP that libwebp's own decoder reads back close to the pixels given; its
 * limits are refused with the reason; and a page drawn by the engine as WebP matches the same
 * page drawn as PNG.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createWebpEncoder } from '../../lib/encode/encoder-thread.js';
import { WEBP_MAX_PIXELS, WEBP_MAX_SIDE } from '../../lib/encode/formats.js';
import { WebpEncoder } from '../../lib/encode/webp-encoder.js';
import { DEFAULT_OUTPUT_OPTIONS, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { collect, CORPUS_DIR, decodePng, decodeWebp, meanAbsDiff, readBody } from '../engine/helpers.js';

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
async function encodeInBands(rgb: Uint8Array, width: number, height: number, channels: 1 | 3, band: number, quality = 80): Promise<Buffer> {
  const encoder = createWebpEncoder({ width, height, channels, quality });
  const body = readBody(encoder.output);
  const writes: Promise<void>[] = [];
  for (let top = 0; top < height; top += band) {
    const rows = Math.min(band, height - top);
    writes.push(encoder.writeRows(rgb.slice(top * width * channels, (top + rows) * width * channels), rows));
  }
  await Promise.all(writes);
  encoder.end();
  return body;
}

describe('WebP encoder', () => {
  it('RGB rows in bands of any size decode (libwebp) to the same size, close to the pixels given; higher quality is closer and larger', async () => {
    const [width, height] = [333, 251];
    const rgb = testImage(width, height);
    const at80 = await encodeInBands(rgb, width, height, 3, 17);
    const decoded = await decodeWebp(at80);
    expect([decoded.width, decoded.height]).toEqual([width, height]);
    const error80 = meanAbsDiff(decoded.rgb, rgb);
    expect(error80).toBeLessThan(3);
    const whole = await encodeInBands(rgb, width, height, 3, height);
    expect(whole.equals(at80)).toBe(true);
    const at95 = await encodeInBands(rgb, width, height, 3, 64, 95);
    expect(meanAbsDiff((await decodeWebp(at95)).rgb, rgb)).toBeLessThan(error80);
    expect(at95.byteLength).toBeGreaterThan(at80.byteLength);
  });

  it('gray rows come out as the same gray', async () => {
    const [width, height] = [120, 90];
    const gray = new Uint8Array(width * height);
    for (let i = 0; i < gray.length; i++) gray[i] = (i % width) * 2;
    const decoded = await decodeWebp(await encodeInBands(gray, width, height, 1, 32));
    const expected = new Uint8Array(width * height * 3);
    for (let i = 0; i < gray.length; i++) expected.fill(gray[i]!, i * 3, i * 3 + 3);
    expect(meanAbsDiff(decoded.rgb, expected)).toBeLessThan(2);
  });

  it('refuses what WebP cannot hold, with the reason, through the thread too', async () => {
    expect(() => new WebpEncoder({ width: WEBP_MAX_SIDE + 1, height: 1, channels: 3, quality: 80 })).toThrow(`a WebP image is 1 to ${WEBP_MAX_SIDE} pixels a side, not 16384x1`);
    expect(() => new WebpEncoder({ width: 4097, height: 4096, channels: 3, quality: 80 })).toThrow(`a WebP page is at most ${WEBP_MAX_PIXELS} pixels, not 4097x4096`);
    const broken = createWebpEncoder({ width: 20000, height: 1, channels: 1, quality: 80 });
    const body = readBody(broken.output).then(() => undefined, (err: unknown) => err);
    const failure = await broken.writeRows(new Uint8Array(20000), 1).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(failure?.message).toBe(`WebP encoder: a WebP image is 1 to ${WEBP_MAX_SIDE} pixels a side, not 20000x1`);
    broken.fail(failure!);
    expect(String(await body)).toMatch(/pixels a side/);
  });
});

describe('WebP pages from the engine', () => {
  const options = (fields: Partial<RenderOptions>): RenderOptions => ({ ...DEFAULT_OUTPUT_OPTIONS, dpi: 100, pages: [{ from: 1, to: 2 }], ...fields });

  it('a page as WebP is the page as PNG, within lossy error; image/webp; far fewer bytes', { timeout: 120_000 }, async () => {
    const file = join(CORPUS_DIR, 'tracemonkey-paper-14p.pdf');
    const png = await collect(await startRender(file, options({ format: 'png' })));
    const webp = await collect(await startRender(file, options({ format: 'webp' })));
    expect(webp).toHaveLength(2);
    for (const [i, page] of webp.entries()) {
      const reference = png[i]!;
      if (!page.ok || !reference.ok) throw new Error('expected both pages rendered');
      expect(page.contentType).toBe('image/webp');
      const decoded = await decodeWebp(page.bytes);
      const expected = decodePng(reference.bytes);
      expect([decoded.width, decoded.height]).toEqual([expected.width, expected.height]);
      // The PNG is gray (1 sample a pixel) or RGB: compared as RGB.
      const rgb = new Uint8Array(expected.width * expected.height * 3);
      for (let p = 0; p < expected.width * expected.height; p++) rgb.set(expected.data.subarray(p * 4, p * 4 + 3), p * 3);
      expect(meanAbsDiff(decoded.rgb, rgb), `page ${page.pageNumber}`).toBeLessThan(2);
      expect(page.bytes.byteLength).toBe(page.stats.bytes);
    }
  });
});
