/**
 * The PNG encoder on its own: bands compressed side by side as stretches of one zlib stream
 * must decode (pngjs checks every CRC, zlib the Adler-32) to exactly the pixels given.
 */
import { randomFillSync } from 'node:crypto';
import type { PassThrough } from 'node:stream';
import { deflateSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { adler32, adler32Combine, createPngEncoder, SPLIT_BYTES } from '../../lib/encode/png-encoder.js';
import { copyGrayRows, copyRows } from '../../lib/encode/rows.js';
import { decodePng, readBody } from '../engine/helpers.js';

/** RGB rows: a gradient, some noise, and flat runs, so every kind of deflate block appears. */
function image(width: number, height: number): Uint8Array {
  const pixels = new Uint8Array(width * height * 3);
  const noise = randomFillSync(new Uint8Array(width * 3));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 3;
      const flat = y % 50 < 20;
      pixels[at] = flat ? 255 : (x * 255) / width;
      pixels[at + 1] = flat ? 255 : (y * 255) / height;
      pixels[at + 2] = flat ? 255 : noise[(x * 3 + y) % noise.length]!;
    }
  }
  return pixels;
}

/** The zlib stream: the IDAT chunks' data, end to end. */
function imageData(png: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') parts.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  return Buffer.concat(parts);
}

/** Empty stored blocks (00 00 ff ff) in the image data: where one compressed stretch ends and the next begins. */
function syncFlushes(png: Buffer): number {
  const data = imageData(png);
  let count = 0;
  for (let at = data.indexOf(MARKER); at !== -1; at = data.indexOf(MARKER, at + 1)) count++;
  return count;
}
const MARKER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Encodes `pixels` handing the encoder bands of `bandRows`, all at once, then decodes the PNG. */
async function roundTrip(width: number, height: number, bandRows: number) {
  const pixels = image(width, height);
  const encoder = createPngEncoder(width, height, 3);
  const body = readBody(encoder.output);
  const writes: Promise<void>[] = [];
  for (let top = 0; top < height; top += bandRows) {
    const rows = Math.min(bandRows, height - top);
    writes.push(encoder.writeRows(copyRows(pixels.subarray(top * width * 3, (top + rows) * width * 3), width, rows, 3, 'png'), rows));
  }
  encoder.end();
  await Promise.all(writes);
  const png = await body;
  // zlib checks the stream's Adler-32 trailer (pngjs does not): it must inflate to the scanlines.
  expect(inflateSync(imageData(png)).equals(copyRows(pixels, width, height, 3, 'png'))).toBe(true);
  const decoded = decodePng(png);
  let differing = 0;
  for (let p = 0, q = 0; q < pixels.length; p += 4, q += 3) {
    if (decoded.data[p] !== pixels[q] || decoded.data[p + 1] !== pixels[q + 1] || decoded.data[p + 2] !== pixels[q + 2]) differing++;
  }
  return { width: decoded.width, height: decoded.height, differing, bytes: png.byteLength, bytesOut: encoder.bytesOut, syncFlushes: syncFlushes(png) };
}

describe('PNG encoder', () => {
  it('computes zlib\'s Adler-32, in pieces too', () => {
    const data = randomFillSync(new Uint8Array(100_003));
    const z = deflateSync(data);
    const expected = z.readUInt32BE(z.length - 4);
    expect(adler32(data)).toBe(expected);
    expect(adler32(data.subarray(70_001), adler32(data.subarray(0, 70_001)))).toBe(expected);
    expect(adler32(new Uint8Array(0))).toBe(1);
    // Combined from the Adler-32s of two stretches summed apart, as the encoder does.
    expect(adler32Combine(adler32(data.subarray(0, 70_001)), adler32(data.subarray(70_001)), 100_003 - 70_001)).toBe(expected);
    expect(adler32Combine(adler32(data), 1, 0)).toBe(expected);
  });

  for (const [label, width, height, bandRows] of [
    ['a small image in one piece', 301, 203, 203],
    ['bands of one row', 97, 61, 1],
    ['bands of 7 rows (shorter than the 32 KiB window)', 513, 300, 7],
    ['bands of 40 rows compressed side by side', 1500, 400, 40],
    [`a whole image over ${SPLIT_BYTES / 2 ** 20} MiB, cut in two halves`, 1400, 1200, 1200],
  ] as const) {
    it(`${label}: the same pixels back`, async () => {
      const r = await roundTrip(width, height, bandRows);
      expect([r.width, r.height, r.differing]).toEqual([width, height, 0]);
      expect(r.bytesOut).toBe(r.bytes);
      // Compressed in stretches: one sync flush between each two.
      if (bandRows < height || width * height * 3 >= SPLIT_BYTES) expect(r.syncFlushes).toBeGreaterThanOrEqual(1);
    });
  }

  it('gray RGB pixels become gray scanlines (one sample a pixel) and an 8-bit grayscale PNG of the same pixels; one colored pixel keeps RGB', async () => {
    const [width, height] = [333, 1000];
    const rgb = image(width, height);
    // Every pixel gray: its green and blue set to its red.
    for (let at = 0; at < rgb.length; at += 3) rgb[at + 1] = rgb[at + 2] = rgb[at]!;
    const gray = copyGrayRows(rgb, width, height, 'png')!;
    expect(gray.byteLength).toBe((width + 1) * height);
    const encoder = createPngEncoder(width, height, 1);
    const body = readBody(encoder.output);
    // Over SPLIT_BYTES? No: a gray Letter page at 150 dpi is half of it; cut in bands here to cover stretches too.
    const rowsPerBand = 300;
    const writes: Promise<void>[] = [];
    for (let top = 0; top < height; top += rowsPerBand) {
      const rows = Math.min(rowsPerBand, height - top);
      writes.push(encoder.writeRows(gray.subarray(top * (width + 1), (top + rows) * (width + 1)), rows));
    }
    encoder.end();
    await Promise.all(writes);
    const png = await body;
    expect([png[24], png[25]]).toEqual([8, 0]);
    const decoded = decodePng(png);
    let differing = 0;
    for (let p = 0, q = 0; q < rgb.length; p += 4, q += 3) if (decoded.data[p] !== rgb[q] || decoded.data[p + 1] !== rgb[q + 1] || decoded.data[p + 2] !== rgb[q + 2]) differing++;
    expect(differing).toBe(0);
    // The last pixel's blue off by one: not gray.
    rgb[rgb.length - 1] = rgb[rgb.length - 1]! ^ 1;
    expect(copyGrayRows(rgb, width, height, 'png')).toBeUndefined();
  });

  it('does not hold the writer when nobody will read: a destroyed output releases it', { timeout: 10_000 }, async () => {
    const [width, rows] = [2000, 100];
    const encoder = createPngEncoder(width, rows * 5, 3);
    // Noise barely compresses: no reader, so the output passes its 1 MiB buffer and the writes wait
    // (4 bands of 5: the image is not finished, the output not ended).
    const writes = Array.from({ length: 4 }, () => encoder.writeRows(copyRows(randomFillSync(new Uint8Array(width * rows * 3)), width, rows, 3, 'png'), rows));
    const settled = Promise.allSettled(writes);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((encoder.output as PassThrough).writableNeedDrain).toBe(true);
    encoder.output.on('error', () => undefined);
    encoder.fail(new Error('the reader went away'));
    expect((await settled).map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
  });

  it('fails the image when rows are missing at the end', async () => {
    const encoder = createPngEncoder(10, 10, 3);
    const body = readBody(encoder.output);
    await encoder.writeRows(copyRows(new Uint8Array(10 * 5 * 3), 10, 5, 3, 'png'), 5);
    encoder.end();
    await expect(body).rejects.toThrow(/ended after 5 of 10 rows/);
  });

  it('refuses rows beyond the image or of the wrong length', async () => {
    const encoder = createPngEncoder(10, 2, 3);
    await expect(encoder.writeRows(new Uint8Array(31 * 3), 3)).rejects.toThrow(/3 rows for an image of 2/);
    await expect(encoder.writeRows(new Uint8Array(30), 1)).rejects.toThrow(/30 bytes for 1 scanlines of 31/);
  });
});
