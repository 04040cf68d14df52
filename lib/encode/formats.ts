/**
 * What each image format allows, in one import-free file: the engine's sizing
 * (lib/engine/options.ts pageGeometry) and the encoders read the same limits, and the reprocess
 * artifact may hold this file without any encoder (test/template.test.ts).
 */
export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'avif';

export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp', 'avif'];

/** The formats sharp (libvips) encodes (sharp-encoder.ts); PNG is ours (png-encoder.ts), faster at smaller bytes. */
export type SharpFormat = Exclude<ImageFormat, 'png'>;

/**
 * The file extension of each format's pages and variants. The clean-ups recognise a generation's
 * files by these (lib/s3/layout.ts GENERATION_FILE_PATTERN): a format missing here would leave its
 * pages behind for good, so the Record makes a new format name its extension.
 */
export const FILE_EXTENSION: Record<ImageFormat, string> = { png: 'png', jpeg: 'jpg', webp: 'webp', avif: 'avif' };

/** The longest side a JPEG can have (its header stores sides in 16 bits); PNG's is 2^31 - 1. */
export const JPEG_MAX_SIDE = 65535;

/**
 * The most pixels a JPEG page may have: 40 Mpx, the default MAX_PAGE_PIXELS. libvips' JPEG encoder
 * takes the whole page (sharp-encoder.ts gathers it, 3 bytes a pixel for RGB: 120 MB here), and
 * MAX_PAGE_PIXELS is a product limit that may be raised to 2e9 (6 GB gathered: the job is killed
 * for memory, retried, and dead-lettered). The memory guard is this one: a larger page is drawn
 * at the DPI that fits, with a warning, as WebP's is. 120 MB gathered and libjpeg-turbo's few MB
 * beside it (its standard Huffman tables: optimised ones would buffer 240 MB of coefficients) fit the 2048 MB function (MemorySize) with its worker, heap ceiling and bands
 * (README, "Memory design").
 */
export const JPEG_MAX_PIXELS = 40_000_000;

/** The longest side a WebP can have (its VP8 header stores 14 bits). */
export const WEBP_MAX_SIDE = 16383;

/** AVIF's side and pixel limits are WebP's: libheif/aom take the whole page too, and more memory a pixel. */
export const AVIF_MAX_SIDE = WEBP_MAX_SIDE;

/**
 * The most pixels a WebP page may have: 16 Mpx (4096 x 4096; Letter or A4 at 300 dpi is under
 * 9 Mpx). libwebp takes the whole page: the rows gathered (3 bytes a pixel for RGB,
 * sharp-encoder.ts) and libwebp's YUV 4:2:0 picture and working memory beside them. Chosen when
 * libwebp ran in WebAssembly (measured then: ~15.5 bytes a pixel while it encoded, ~250 MiB at
 * 16 Mpx); kept for the native one, and for AVIF, whose encoder needs more.
 */
export const WEBP_MAX_PIXELS = 16_777_216;

/**
 * The default WebP quality: the one whose mean absolute error on 8 corpus pages at 150 dpi
 * (text, scans, a photo, a chart, a poster) matched our JPEG at 85: 0.83 against 0.87 levels,
 * at 40% of JPEG's bytes and 15% of PNG's (README, "WebP").
 */
export const WEBP_DEFAULT_QUALITY = 80;

export const AVIF_MAX_PIXELS = WEBP_MAX_PIXELS;

/**
 * The default AVIF quality (sharp's scale, 1..100): at 60, effort 2, the mean absolute error on
 * 16 corpus pages at 150 dpi was 0.86 levels, between WebP 80's (0.76-0.81) and JPEG 85's (0.95),
 * at 0.73x WebP's bytes (`npx tsx bench/encoders.ts`, README "Encoders").
 */
export const AVIF_DEFAULT_QUALITY = 60;

/** How errors and warnings name a format. */
const LABELS: Record<ImageFormat, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP', avif: 'AVIF' };

export function formatLabelOf(format: ImageFormat): string {
  return LABELS[format];
}

/**
 * sharp's settings per format beside the quality, chosen by measurement on the same pixels
 * (`npx tsx bench/encoders.ts`: 16 corpus pages, 32.7 Mpx at 150 dpi, one libvips thread; a
 * quiet machine, 2026-12-05):
 * - JPEG: libjpeg-turbo's path (mozjpeg's trellis and progressive scans off: 5x slower here),
 *   chroma 4:4:4 as our own encoder wrote it (4:2:0 smears thin coloured strokes), and
 *   libjpeg's standard Huffman tables, not optimised ones: 4.1 ms/Mpx against 12.8 with
 *   optimiseCoding, for 5% more bytes (6.29 MB against 5.98, the same error, 0.95 levels).
 *   Optimised tables need a first pass over the whole page's coefficients, which libjpeg buffers
 *   (6 bytes a pixel at 4:4:4): on a 19 Mpx poster 914 ms against 165 and 117 MB more memory,
 *   which made sharp's JPEG 2-3.5x slower than our PNG on the corpus's posters and plans.
 * - WebP: effort 0 (libwebp's method 0): 24-27 ms/Mpx against 37 at effort 2 and 75 at effort
 *   4 (libwebp's default), at a lower error (0.73 levels against 0.81) for 16% more bytes
 *   (4.08 MB against 3.52). WebP is chosen for its bytes, but a page's CPU is its bill: even at
 *   effort 0 the 352 gray book pages of freeculture took 1.6x PNG's time in the 2,048 MB shape
 *   (README, "Encoders"). Effort 1: 30 ms/Mpx, the same bytes as 0.
 * - AVIF: effort 2 (aom's speed 7): 610 ms/Mpx; effort 0 was 190 ms/Mpx at 1.8x the error for
 *   the same bytes, effort 4 5.4x slower for 10% fewer.
 */
const SHARP_SETTINGS = {
  jpeg: { mozjpeg: false, chromaSubsampling: '4:4:4', optimiseCoding: false },
  webp: { effort: 0 },
  avif: { effort: 2, chromaSubsampling: '4:2:0' },
} as const;

export function encoderSettingsOf(format: SharpFormat): (typeof SHARP_SETTINGS)[SharpFormat] {
  return SHARP_SETTINGS[format];
}

/** The longest side an image of `format` can have. */
export function maxSideOf(format: ImageFormat): number {
  return format === 'jpeg' ? JPEG_MAX_SIDE : format === 'webp' ? WEBP_MAX_SIDE : format === 'avif' ? AVIF_MAX_SIDE : Infinity;
}

/** The most pixels an image of `format` may have, whatever the settings allow. */
export function maxPixelsOf(format: ImageFormat): number {
  return format === 'jpeg' ? JPEG_MAX_PIXELS : format === 'webp' ? WEBP_MAX_PIXELS : format === 'avif' ? AVIF_MAX_PIXELS : Infinity;
}
