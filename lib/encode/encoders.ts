/**
 * The encoder of each format, in one place: PNG is ours (png-encoder.ts), JPEG, WebP and AVIF
 * sharp's (sharp-encoder.ts). The engine's session streams a page's bands through it; a IIIF
 * tile cut from a level (lib/iiif/levels.ts) goes through the same one, in one piece.
 */
import type { ImageFormat } from './formats.js';
import type { ImageEncoder } from './image-encoder.js';
import { createPngEncoder } from './png-encoder.js';
import type { RowLayout } from './rows.js';
import { createSharpEncoder, type RasterImage } from './sharp-encoder.js';

export function createImageEncoder(format: ImageFormat, image: RasterImage): ImageEncoder {
  return format === 'png' ? createPngEncoder(image.width, image.height, image.channels) : createSharpEncoder(format, image);
}

/** The rows' layout each format's encoder takes (rows.ts): PNG scanlines, packed rows for sharp. */
export function layoutOf(format: ImageFormat): RowLayout {
  return format === 'png' ? 'png' : 'packed';
}

/** A whole small image (a tile) of rows in layoutOf(format), encoded into one buffer. */
export async function encodeRows(format: ImageFormat, rows: Uint8Array, image: RasterImage): Promise<Buffer> {
  const encoder = createImageEncoder(format, image);
  const chunks: Buffer[] = [];
  const read = (async () => {
    for await (const chunk of encoder.output) chunks.push(chunk as Buffer);
  })();
  try {
    await encoder.writeRows(rows, image.height);
    encoder.end();
  } catch (err) {
    encoder.fail(err as Error);
  }
  await read;
  return Buffer.concat(chunks);
}
