/**
 * What each image format allows, in one import-free file: the engine's sizing
 * (lib/engine/options.ts pageGeometry) and the encoders read the same limits, and the reprocess
 * artifact may hold this file without any encoder (test/template.test.ts).
 */
export type ImageFormat = 'png' | 'jpeg' | 'webp';

export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];

/**
 * The file extension of each format's pages and variants. The clean-ups recognise a generation's
 * files by these (lib/s3/layout.ts GENERATION_FILE_PATTERN): a format missing here would leave its
 * pages behind for good, so the Record makes a new format name its extension.
 */
export const FILE_EXTENSION: Record<ImageFormat, string> = { png: 'png', jpeg: 'jpg', webp: 'webp' };

/** The longest side a JPEG can have (its header stores sides in 16 bits); PNG's is 2^31 - 1. */
export const JPEG_MAX_SIDE = 65535;

/** The longest side a WebP can have (its VP8 header stores 14 bits). */
export const WEBP_MAX_SIDE = 16383;

/**
 * The most pixels a WebP page may have: 16 Mpx (4096 x 4096; Letter or A4 at 300 dpi is under
 * 9 Mpx). libwebp takes the whole page: measured, ~15.5 bytes a pixel while it encodes
 * (webp-encoder.ts), so ~250 MiB for the page being encoded and 64 MiB for each page gathered
 * behind it; two encoder threads and a worker's pages in flight stay well inside the template's
 * 2,048 MB. At the 40 Mpx of MAX_PAGE_PIXELS one page alone would take ~620 MiB.
 */
export const WEBP_MAX_PIXELS = 16_777_216;

/**
 * The default WebP quality: the one whose mean absolute error on 8 corpus pages at 150 dpi
 * (text, scans, a photo, a chart, a poster) matched our JPEG at 85: 0.83 against 0.87 levels,
 * at 40% of JPEG's bytes and 15% of PNG's (README, "WebP").
 */
export const WEBP_DEFAULT_QUALITY = 80;

/** The longest side an image of `format` can have. */
export function maxSideOf(format: ImageFormat): number {
  return format === 'jpeg' ? JPEG_MAX_SIDE : format === 'webp' ? WEBP_MAX_SIDE : Infinity;
}

/** The most pixels an image of `format` may have, whatever the settings allow. */
export function maxPixelsOf(format: ImageFormat): number {
  return format === 'webp' ? WEBP_MAX_PIXELS : Infinity;
}
