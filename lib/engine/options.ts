/** What the engine can be asked for (format, resolution, pixel budget, pages) and the page geometry it derives from it. */
import { AVIF_DEFAULT_QUALITY, FILE_EXTENSION, maxPixelsOf, maxSideOf, WEBP_DEFAULT_QUALITY, type ImageFormat } from '../encode/formats.js';

export { JPEG_MAX_SIDE, WEBP_MAX_PIXELS, WEBP_MAX_SIDE } from '../encode/formats.js';
export type { ImageFormat };

/** What the output looks like. These, and only these, feed the manifest's optionsHash. */
export interface OutputOptions {
  format: ImageFormat;
  /**
   * Requested resolution, 1..1200. With a box (`width`, `height`) it is the most a page is drawn
   * at instead: the box decides, and a small page is never upscaled past it.
   */
  dpi: number;
  /** 1..100, used for JPEG only. */
  jpegQuality: number;
  /** 1..100, used for WebP only (libwebp's lossy quality). */
  webpQuality: number;
  /** 1..100, used for AVIF only (sharp's scale for libheif/aom). */
  avifQuality: number;
  /** Largest output image in pixels; a page above it is rendered at the DPI that fits. */
  maxPagePixels: number;
  /** Render at most this many pages from the start of the document; 0 = no limit. */
  maxPages: number;
  /**
   * Fit-to-box sizing, instead of a DPI: each page is drawn at the DPI that makes it this many
   * pixels wide (`width`), tall (`height`), or fit inside both, aspect kept (pageGeometry).
   * Absent: `dpi` decides. Only present when set, so renders without a box hash as before.
   */
  width?: number;
  height?: number;
}

/** A 1-based inclusive page range; `to` undefined means "to the last page". */
export interface PageRange {
  from: number;
  to?: number;
}

/**
 * A region of a page's full image (the page at `dpi`, capped by `maxPagePixels`: fitPage, the
 * same whatever the format) to draw instead of the page: IIIF's tiles and sizes. x, y, w, h in
 * the full image's pixels; width x height the size it is scaled to; then mirrored (left-right)
 * and turned clockwise by `rotate`; `quality` gray or bitonal turns it into 8-bit gray.
 */
export interface PageRegion {
  x: number;
  y: number;
  w: number;
  h: number;
  width: number;
  height: number;
  rotate: 0 | 90 | 180 | 270;
  mirror: boolean;
  quality: 'color' | 'gray' | 'bitonal';
}

/** The full image a region is cut from: the page at `dpi`, lowered to fit `maxPixels` (no format's limits: a IIIF image's size is the same in every format). */
export function fullImageOf(box: PageBox, dpi: number, maxPixels: number): PageGeometry | null {
  return fitPage(box, dpi, maxPixels);
}

/**
 * A level of a full image (IIIF's scale factor `factor`): its pixel grid is the full image's
 * scaled by 1/factor from the same origin, so full-image pixel x*factor is level pixel x, and a
 * partial pixel at the right and bottom edges is kept (IIIF's edge tiles: ceil(w / factor)).
 */
export function levelGeometry(full: PageGeometry, factor: number): PageGeometry {
  return { dpi: full.dpi / factor, width: Math.ceil(full.width / factor), height: Math.ceil(full.height / factor) };
}

export interface RenderOptions extends OutputOptions {
  /** Draw only this region of each selected page (RenderOptions.pages: one page, in practice). */
  region?: PageRegion;
  /**
   * Draw each selected page's full image (fullImageOf, as for `region`) scaled down by this whole
   * factor, whole and band by band (levelGeometry), as raw packed rows instead of an image file:
   * the page's body is its rows, 1 byte a pixel when RenderedPage.color is 'gray', else 3 (RGB);
   * `format` is not used. The IIIF level cache's raster (lib/iiif/levels.ts).
   */
  level?: number;
  /** Report every page's box (RenderJob.pageBoxes) and the document's title when it opens. */
  pageBoxes?: boolean;
  /** Which pages to render; undefined = all. */
  pages?: PageRange[];
  /** A page that takes longer than this is failed with PAGE_TIMEOUT; 0 = no limit. */
  pageTimeoutMs?: number;
  /** Largest raw band of a page in bytes (memory per page); a page larger than one band is drawn in bands. */
  bandBytes?: number;
  /** Width in pixels of a JPEG thumbnail of each rendered page (PageStats.thumbnail); 0 or undefined: none. */
  thumbnailWidth?: number;
  /** The page's structured text as JSON (PageStats.text). */
  pageText?: boolean;
}

/** The output options alone (a RenderOptions carries more): what travels to the worker. */
export function outputOptionsOf(options: OutputOptions): OutputOptions {
  const { format, dpi, jpegQuality, webpQuality, avifQuality, maxPagePixels, maxPages } = options;
  return { format, dpi, jpegQuality, webpQuality, avifQuality, maxPagePixels, maxPages, ...boxOf(options) };
}

/**
 * The quality field of `format`: the one `quality` of the CLI, the page URL and `render-quality`
 * sets (DESIGN §2: it applies to the format asked for). PNG has none.
 */
export function qualityFieldOf(format: ImageFormat): 'jpegQuality' | 'webpQuality' | 'avifQuality' | undefined {
  return format === 'jpeg' ? 'jpegQuality' : format === 'webp' ? 'webpQuality' : format === 'avif' ? 'avifQuality' : undefined;
}

/** The options' box (`width`, `height`), only the sides that are set: {} without one. */
export function boxOf(options: Pick<OutputOptions, 'width' | 'height'>): Pick<OutputOptions, 'width' | 'height'> {
  return { ...(options.width !== undefined ? { width: options.width } : {}), ...(options.height !== undefined ? { height: options.height } : {}) };
}

export const DEFAULT_OUTPUT_OPTIONS: OutputOptions = {
  format: 'png',
  dpi: 150,
  jpegQuality: 85,
  webpQuality: WEBP_DEFAULT_QUALITY,
  avifQuality: AVIF_DEFAULT_QUALITY,
  maxPagePixels: 40_000_000,
  maxPages: 0,
};

export const LIMITS = {
  dpi: { min: 1, max: 1200 },
  jpegQuality: { min: 1, max: 100 },
  webpQuality: { min: 1, max: 100 },
  avifQuality: { min: 1, max: 100 },
  /** 2^31 pixels would overflow MuPDF's int pixmap sizes long before memory runs out. */
  maxPagePixels: { min: 1, max: 2_000_000_000 },
  maxPages: { min: 0, max: 1_000_000 },
  /** 0 = no thumbnails. */
  thumbnailWidth: { min: 0, max: 2048 },
  /** A box side: up to JPEG's side limit (PNG has none, WebP's is lower: pageGeometry fits the page to the format's). */
  width: { min: 1, max: 65535 },
  height: { min: 1, max: 65535 },
} as const;

/** The most a page is drawn at with a box: the DPI limit, so a box alone decides and only a tiny page would be held back. */
export const MAX_DPI = LIMITS.dpi.max;

export function contentTypeOf(format: ImageFormat): string {
  return format === 'png' ? 'image/png' : format === 'jpeg' ? 'image/jpeg' : format === 'webp' ? 'image/webp' : 'image/avif';
}

export function extensionOf(format: ImageFormat): string {
  return FILE_EXTENSION[format];
}

const FORMAT_NAMES: Record<ImageFormat, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP', avif: 'AVIF' };

/** One of a job's workers drawing side by side: the index-th of count. */
export interface LaneShare {
  index: number;
  count: number;
}

/** A lane's pages: every count-th page of the selection, from the index-th (the one rule of the job and its workers). */
export function pagesOfLane(pageNumbers: readonly number[], lane: LaneShare): number[] {
  return pageNumbers.filter((_, position) => position % lane.count === lane.index);
}

/**
 * The page numbers (1-based, ascending, unique) to render in a document of `pageCount` pages,
 * honouring the selection and maxPages.
 */
export function selectPages(pageCount: number, options: Pick<RenderOptions, 'pages' | 'maxPages'>): number[] {
  const last = options.maxPages > 0 ? Math.min(pageCount, options.maxPages) : pageCount;
  const ranges = options.pages ?? [{ from: 1 }];
  const chosen = new Set<number>();
  for (const range of ranges) {
    const to = Math.min(range.to ?? last, last);
    for (let n = range.from; n <= to; n++) chosen.add(n);
  }
  return [...chosen].sort((a, b) => a - b);
}

export interface PageGeometry {
  /** Effective DPI: the requested one, or lower when the page would exceed the pixel budget. */
  dpi: number;
  width: number;
  height: number;
}

/** A page box in points: [x0, y0, x1, y1], as MuPDF's Page.getBounds() returns it (rotation applied). */
export type PageBox = [number, number, number, number];

/**
 * A page box read from outside (a manifest, a stored sizes file): four finite numbers, x0 < x1
 * and y0 < y1. No bound on their size: MuPDF's bounds of a page with a /UserUnit or a huge
 * MediaBox pass 1e6 pt (a 14,400 pt page at /UserUnit 100 is 1,440,000 pt a side), and the
 * render function commits them; fullImageOf draws any box within MAX_PAGE_PIXELS.
 */
export function isPageBox(value: unknown): value is PageBox {
  if (!Array.isArray(value) || value.length !== 4 || !value.every((n) => typeof n === 'number' && Number.isFinite(n))) return false;
  const [x0, y0, x1, y1] = value as PageBox;
  return x0 < x1 && y0 < y1;
}

/** The pixel rectangle MuPDF allocates for `box` at `dpi` (fz_round_rect of the scaled box). */
export function pixelRect(box: PageBox, dpi: number): PageBox {
  const s = dpi / 72;
  const x0 = Math.floor(box[0] * s + 0.001);
  const y0 = Math.floor(box[1] * s + 0.001);
  return [x0, y0, Math.max(x0 + 1, Math.ceil(box[2] * s - 0.001)), Math.max(y0 + 1, Math.ceil(box[3] * s - 0.001))];
}


/**
 * Decimals of a box's DPI. A DPI rounded down to a thousandth still gives the box's side exactly
 * (the side is short of it by under pageSide/72 * 0.001 px, which pixelRect's tolerance absorbs,
 * for any page under 1,000 inches), and reads well in the manifest and S3 metadata.
 */
const BOX_DPI_SCALE = 1000;

/**
 * The DPI that fits `box` inside `width` x `height` pixels (either may be absent: that side is
 * free), aspect kept, at most `maxDpi`. Rounded down to a thousandth; where rounding at an odd
 * page origin would still overshoot the box by a pixel, a pixel less is aimed at.
 */
export function boxDpi(box: PageBox, fit: Pick<OutputOptions, 'width' | 'height'>, maxDpi: number): number {
  const pageWidth = box[2] - box[0];
  const pageHeight = box[3] - box[1];
  const dpiFor = (width: number | undefined, height: number | undefined): number => {
    const exact = Math.min(maxDpi, width !== undefined ? (72 * width) / pageWidth : Infinity, height !== undefined ? (72 * height) / pageHeight : Infinity);
    return Math.max(1 / BOX_DPI_SCALE, Math.floor(exact * BOX_DPI_SCALE) / BOX_DPI_SCALE);
  };
  const inside = (dpi: number): boolean => {
    const r = pixelRect(box, dpi);
    return (fit.width === undefined || r[2] - r[0] <= fit.width) && (fit.height === undefined || r[3] - r[1] <= fit.height);
  };
  const dpi = dpiFor(fit.width, fit.height);
  if (inside(dpi)) return dpi;
  return dpiFor(fit.width === undefined ? undefined : fit.width - 1, fit.height === undefined ? undefined : fit.height - 1);
}

/**
 * A page's image size, the one sizing rule of every render (eager or one page on demand): the
 * requested DPI, or with a box the DPI that fits the page inside it (boxDpi, at most `dpi`);
 * then lowered to the largest whole DPI that fits the pixel budget and the format's limits
 * (fitPage: a side, and WebP's pixels). The manifest records the DPI used. Only the format's
 * limits warn (`warning`, without the page number), being the format's and not the settings'.
 * `geometry` is null when even 1 dpi does not fit the pixel budget.
 */
export function pageGeometry(
  box: PageBox,
  output: Pick<OutputOptions, 'format' | 'dpi' | 'maxPagePixels' | 'width' | 'height'>,
): { geometry: PageGeometry | null; warning?: string } {
  const { format, maxPagePixels } = output;
  const dpi = output.width !== undefined || output.height !== undefined ? boxDpi(box, output, output.dpi) : output.dpi;
  const geometry = fitPage(box, dpi, maxPagePixels);
  const maxSide = maxSideOf(format);
  const maxPixels = maxPixelsOf(format);
  if (!geometry || (Math.max(geometry.width, geometry.height) <= maxSide && geometry.width * geometry.height <= maxPixels)) return { geometry };
  const fitted = fitPage(box, geometry.dpi, Math.min(maxPagePixels, maxPixels), maxSide);
  if (!fitted) return { geometry: null };
  const name = FORMAT_NAMES[format];
  const limit = maxPixels < Infinity ? `${maxSide} pixels a side and ${maxPixels} pixels (the encoder holds the whole page)` : `${maxSide} pixels`;
  return { geometry: fitted, warning: `${name} rendered at ${fitted.dpi} dpi: a ${name} ${maxPixels < Infinity ? 'page' : 'side'} is at most ${limit} (PNG has no such limit)` };
}

/**
 * Pixel size of `box` at `dpi`, lowered to the largest whole DPI whose image fits `maxPixels`
 * (and `maxSide` each way). Returns null when even 1 dpi does not fit.
 */
export function fitPage(box: PageBox, dpi: number, maxPixels: number, maxSide = Infinity): PageGeometry | null {
  const size = (d: number): PageGeometry => {
    const r = pixelRect(box, d);
    return { dpi: d, width: r[2] - r[0], height: r[3] - r[1] };
  };
  const fits = (g: PageGeometry): boolean => g.width * g.height <= maxPixels && Math.max(g.width, g.height) <= maxSide;
  let geometry = size(dpi);
  if (fits(geometry)) return geometry;
  // Pixel count scales with dpi squared, sides with dpi: start from the analytic answer and step down past rounding.
  const scale = Math.min(Math.sqrt(maxPixels / (geometry.width * geometry.height)), maxSide / Math.max(geometry.width, geometry.height));
  for (let d = Math.min(dpi - 1, Math.floor(dpi * scale)); d >= 1; d--) {
    geometry = size(d);
    if (fits(geometry)) return geometry;
  }
  return null;
}
