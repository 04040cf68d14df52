/**
 * JPEG, WebP and AVIF pages through sharp (libvips, native: libjpeg-turbo's path of mozjpeg,
 * libwebp, libheif with aom), the image library of the field. Like PNG's zlib, libvips runs on
 * libuv's thread pool, so the main thread only copies each band into the page's buffer and
 * the drawing thread only draws.
 *
 * libvips' encoders take a whole image (sharp gathers even a stream's input into one buffer),
 * so a page's rows are gathered as they come, packed (1 byte a pixel for gray pages, 3 for RGB),
 * and encoded when the last rows arrive. Each band's credit comes back as soon as it is
 * copied; the last band's waits for the encoding, which bounds the pages a worker has gathered
 * behind it to its credits.
 *
 * Memory, stated and bounded: libvips' operation cache is off (sharp.cache(false): nothing is
 * kept between pages) and each page is encoded by one libvips thread (sharp.concurrency(1)):
 * pages in parallel are the pages in flight, which the workers' credits bound, each on one of
 * libuv's threads. A page holds its gathered rows (width x height x channels) and what its
 * encoder needs beside them (measured in README, "Encoders"); the side and pixel limits of
 * formats.ts keep a WebP or AVIF page within WEBP_MAX_PIXELS.
 *
 * sharp is loaded with require, not import: deployed, it lives in a Lambda layer
 * (/opt/nodejs/node_modules, built for the function's architecture: template.yaml SharpLayer),
 * which only CommonJS resolution finds (NODE_PATH); the bundles keep it external.
 */
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import type { AvifOptions, JpegOptions, Sharp, WebpOptions } from 'sharp';
import { encoderSettingsOf, formatLabelOf, maxPixelsOf, maxSideOf, type SharpFormat } from './formats.js';
import { checkRows, readerRoom, type ImageEncoder } from './image-encoder.js';

type SharpModule = typeof import('sharp').default;

let loaded: SharpModule | undefined;

/** sharp, loaded once, its cache off and one libvips thread per image. */
export function sharpModule(): SharpModule {
  if (loaded) return loaded;
  const sharp = createRequire(import.meta.url)('sharp') as SharpModule;
  sharp.cache(false);
  sharp.concurrency(1);
  loaded = sharp;
  return sharp;
}

/** A page for sharp: its size, its rows' channels, its format's quality. */
export interface RasterImage {
  width: number;
  height: number;
  /** Rows as they come: 1 (gray) or 3 (RGB) bytes a pixel, packed. */
  channels: 1 | 3;
  /** 1..100, the format's own scale. */
  quality: number;
}

/** The encoder call for `format` at `quality`, with the settings formats.ts chose by measurement. */
function encodeWith(pipeline: Sharp, format: SharpFormat, quality: number): Sharp {
  const settings = encoderSettingsOf(format);
  switch (format) {
    case 'jpeg':
      return pipeline.jpeg({ ...(settings as JpegOptions), quality });
    case 'webp':
      return pipeline.webp({ ...(settings as WebpOptions), quality });
    case 'avif':
      return pipeline.avif({ ...(settings as AvifOptions), quality });
  }
}

/** Checks a page against its format's limits: an encoder is never made for a page it cannot hold. */
function checkImage(format: SharpFormat, image: RasterImage): void {
  const { width, height, channels, quality } = image;
  const label = formatLabelOf(format);
  const maxSide = maxSideOf(format);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > maxSide || height > maxSide) {
    throw new Error(`${label} encoder: a ${label} image is 1 to ${maxSide} pixels a side, not ${width}x${height}`);
  }
  if (width * height > maxPixelsOf(format)) throw new Error(`${label} encoder: a ${label} page is at most ${maxPixelsOf(format)} pixels, not ${width}x${height}`);
  if (channels !== 1 && channels !== 3) throw new Error(`${label} encoder: rows are gray or RGB, not ${channels} channels`);
  if (!(quality >= 1 && quality <= 100)) throw new Error(`${label} encoder: quality is 1 to 100, not ${quality}`);
}

/** One whole image of packed rows as a file of `format` (thumbnails, tiles, tests). */
export async function encodeImage(format: SharpFormat, pixels: Uint8Array, image: RasterImage): Promise<Buffer> {
  checkImage(format, image);
  const { width, height, channels, quality } = image;
  if (pixels.byteLength !== width * height * channels) throw new Error(`${formatLabelOf(format)} encoder: ${pixels.byteLength} bytes for ${width}x${height}x${channels}`);
  const input = sharpModule()(pixels, { raw: { width, height, channels } });
  // A gray page stays one channel: libvips would otherwise write sRGB (a 3-component JPEG).
  return encodeWith(channels === 1 ? input.toColourspace('b-w') : input, format, quality).toBuffer();
}

/** A page's encoder for `format`: packed rows in, gathered; the file out when the last rows are in. */
export function createSharpEncoder(format: SharpFormat, image: RasterImage): ImageEncoder {
  const label = formatLabelOf(format);
  const { width, height, channels } = image;
  const rowBytes = width * channels;
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  // A page its format cannot hold fails at its first rows, as any encoder failure does (the
  // session fails the page): nothing is allocated for it.
  let refused: Error | undefined;
  try {
    checkImage(format, image);
  } catch (err) {
    refused = err as Error;
  }
  let pixels: Buffer | undefined = refused ? undefined : Buffer.allocUnsafe(rowBytes * height);
  const gatheredBytes = pixels?.byteLength ?? 0;
  let bytesOut = 0;
  let rowsIn = 0;
  return {
    output,
    get bytesOut() {
      return bytesOut;
    },
    gatheredBytes,
    async writeRows(rows, rowCount) {
      if (refused) throw refused;
      if (!pixels) throw new Error(`${label} encoder: the page is no longer open`);
      checkRows(`${label} encoder`, 'rows', { rowsIn, rowCount, byteLength: rows.byteLength }, height, rowBytes);
      pixels.set(rows, rowsIn * rowBytes);
      rowsIn += rowCount;
      if (rowsIn < height) return;
      const whole = pixels;
      let file: Buffer;
      try {
        file = await encodeImage(format, whole, image);
      } catch (err) {
        throw new Error(`${label} encoder: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        // The gathered rows go as soon as libvips is done with them.
        pixels = undefined;
      }
      if (output.destroyed) return;
      bytesOut = file.byteLength;
      output.end(file);
      await readerRoom(output);
    },
    end() {
      if (rowsIn !== height) this.fail(new Error(`${label} encoder: ended after ${rowsIn} of ${height} rows`));
    },
    fail(err) {
      pixels = undefined;
      output.destroy(err);
    },
  };
}
