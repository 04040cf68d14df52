/** What the engine can be asked for (format, resolution, pixel budget, pages) and the page geometry it derives from it. */
export type ImageFormat = 'png' | 'jpeg';

/** What the output looks like. These, and only these, feed the manifest's optionsHash. */
export interface OutputOptions {
  format: ImageFormat;
  /** Requested resolution, 1..1200. */
  dpi: number;
  /** 1..100, used for JPEG only. */
  jpegQuality: number;
  /** Largest output image in pixels; a page above it is rendered at the DPI that fits. */
  maxPagePixels: number;
  /** Render at most this many pages from the start of the document; 0 = no limit. */
  maxPages: number;
}

/** A 1-based inclusive page range; `to` undefined means "to the last page". */
export interface PageRange {
  from: number;
  to?: number;
}

export interface RenderOptions extends OutputOptions {
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
  const { format, dpi, jpegQuality, maxPagePixels, maxPages } = options;
  return { format, dpi, jpegQuality, maxPagePixels, maxPages };
}

export const DEFAULT_OUTPUT_OPTIONS: OutputOptions = {
  format: 'png',
  dpi: 150,
  jpegQuality: 85,
  maxPagePixels: 40_000_000,
  maxPages: 0,
};

export const LIMITS = {
  dpi: { min: 1, max: 1200 },
  jpegQuality: { min: 1, max: 100 },
  /** 2^31 pixels would overflow MuPDF's int pixmap sizes long before memory runs out. */
  maxPagePixels: { min: 1, max: 2_000_000_000 },
  maxPages: { min: 0, max: 1_000_000 },
  /** 0 = no thumbnails. */
  thumbnailWidth: { min: 0, max: 2048 },
} as const;

export function contentTypeOf(format: ImageFormat): string {
  return format === 'png' ? 'image/png' : 'image/jpeg';
}

export function extensionOf(format: ImageFormat): string {
  return format === 'png' ? 'png' : 'jpg';
}

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

/** The pixel rectangle MuPDF allocates for `box` at `dpi` (fz_round_rect of the scaled box). */
export function pixelRect(box: PageBox, dpi: number): PageBox {
  const s = dpi / 72;
  const x0 = Math.floor(box[0] * s + 0.001);
  const y0 = Math.floor(box[1] * s + 0.001);
  return [x0, y0, Math.max(x0 + 1, Math.ceil(box[2] * s - 0.001)), Math.max(y0 + 1, Math.ceil(box[3] * s - 0.001))];
}

/** The longest side a JPEG can have (its header stores sides in 16 bits); PNG's is 2^31 - 1. */
export const JPEG_MAX_SIDE = 65535;

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
