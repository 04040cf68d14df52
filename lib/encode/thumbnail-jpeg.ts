/**
 * A page's thumbnail as JPEG, encoded on the main thread when its pixels arrive from the worker
 * (a 256 px thumbnail takes a millisecond or two), so the drawing thread only draws. MuPDF.js's
 * only JPEG writer (Pixmap.asJPEG), in the worker, took 7 to 27 ms for one, more than drawing
 * it.
 */
import { errorMessage } from './error-message.js';
import { encodeJpeg } from './jpeg-encoder.js';

/** A thumbnail as drawn: packed RGB rows, which the main thread encodes as JPEG (the worker sends them: lib/engine/protocol.ts). */
export interface ThumbnailPixels {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** A page's thumbnail: a JPEG exactly as wide as RenderOptions.thumbnailWidth, drawn by MuPDF at that scale. */
export interface Thumbnail {
  jpeg: Uint8Array;
  width: number;
  height: number;
}

/** JPEG quality of thumbnails: at 256 px wide, text stays legible and a page is 10 to 20 KB. */
export const THUMBNAIL_JPEG_QUALITY = 75;

/**
 * A page's thumbnail pixels from the worker as the JPEG of PageStats.thumbnail; undefined (and
 * a warning logged) if they cannot be encoded, the page itself standing.
 */
export function encodeThumbnail(
  pixels: ThumbnailPixels,
  pageNumber: number,
  onLog: ((level: 'warning' | 'error', message: string) => void) | undefined,
): Thumbnail | undefined {
  try {
    const { rgb, width, height } = pixels;
    return { jpeg: encodeJpeg(rgb, { width, height, channels: 3, quality: THUMBNAIL_JPEG_QUALITY }), width, height };
  } catch (err) {
    onLog?.('warning', `page ${pageNumber}: no thumbnail: ${errorMessage(err)}`);
    return undefined;
  }
}
