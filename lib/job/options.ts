/**
 * What a render is asked for (docs/contract.md, "The manifest"): the engine's output options,
 * plus the page selection, thumbnails and page text. The manifest records them as `options`,
 * and all of them feed the options hash. One type, passed whole from the edge to the engine.
 */
import { boxOf, DEFAULT_OUTPUT_OPTIONS, LIMITS, type OutputOptions, type PageRange } from '../engine/options.js';

export interface JobOptions extends OutputOptions {
  /** Which pages, canonical as formatPageSelection writes it: "1-" is every page. */
  pages: string;
  /** Also a JPEG thumbnail of each page this many pixels wide; 0 = none. */
  thumbnailWidth: number;
  /** Also each page's text, as text-NNNN.json. */
  pageText: boolean;
}

export const DEFAULT_JOB_OPTIONS: JobOptions = { ...DEFAULT_OUTPUT_OPTIONS, pages: '1-', thumbnailWidth: 0, pageText: false };

/** Widest thumbnail: a preview, never a second full-size image (the engine's limit). */
export const MAX_THUMBNAIL_WIDTH = LIMITS.thumbnailWidth.max;

/**
 * Where a render's options came from (the manifest's `optionsSource`, docs/contract.md): the
 * function's settings, or the object's `render-*` metadata over them, with the values read
 * (keys lowercase, as S3 returns them). The schedule reads it to classify an object against
 * what the object itself asked for (lib/job/freshness.ts).
 */
export type OptionsSource = { from: 'settings' } | { from: 'metadata'; metadata: Record<string, string> };

/** The options as the manifest records them and the hash sees them: WebP's quality only for WebP, AVIF's only for AVIF. */
export type RecordedOptions = Omit<JobOptions, 'webpQuality' | 'avifQuality'> & Partial<Pick<JobOptions, 'webpQuality' | 'avifQuality'>>;

/**
 * The options, fields in their canonical order (what the hash and the manifest see). A box
 * (`width`, `height`) and WebP's quality (for a WebP render) come last and only when they
 * apply, so every PNG or JPEG render without a box keeps the hash it had before either existed
 * (no stale renders from an upgrade), and WEBP_QUALITY or AVIF_QUALITY never makes a PNG render stale.
 */
export function pickJobOptions(options: RecordedOptions): RecordedOptions {
  const { format, dpi, jpegQuality, maxPagePixels, maxPages, pages, thumbnailWidth, pageText, webpQuality, avifQuality } = options;
  return {
    format,
    dpi,
    jpegQuality,
    maxPagePixels,
    maxPages,
    pages,
    thumbnailWidth,
    pageText,
    ...boxOf(options),
    ...(format === 'webp' && webpQuality !== undefined ? { webpQuality } : {}),
    ...(format === 'avif' && avifQuality !== undefined ? { avifQuality } : {}),
  };
}

/** Parses "1-3,7,10-" into ranges. Throws with a message that quotes the bad part. */
export function parsePageSelection(text: string): PageRange[] {
  const ranges: PageRange[] = [];
  for (const rawPart of text.split(',')) {
    const part = rawPart.trim();
    const match = /^(\d+)(?:\s*(-)\s*(\d*))?$/.exec(part);
    if (!match) throw new Error(`invalid page selection "${part}" in "${text}": use forms like 1-3,7,10-`);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : match[3] ? Number(match[3]) : undefined;
    if (from < 1 || (to !== undefined && to < from)) {
      throw new Error(`invalid page range "${part}" in "${text}": pages start at 1 and ranges go upwards`);
    }
    ranges.push(to === undefined ? { from } : { from, to });
  }
  return ranges;
}

/** Ranges sorted and merged, written back as text: "7, 1-3" and "1,2,3,7" are both "1-3,7". */
export function formatPageSelection(ranges: readonly PageRange[]): string {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  const merged: PageRange[] = [];
  for (const r of sorted) {
    const last = merged.at(-1);
    if (last && (last.to === undefined || r.from <= last.to + 1)) {
      if (last.to !== undefined) last.to = r.to === undefined ? undefined : Math.max(last.to, r.to);
      if (last.to === undefined) delete last.to;
    } else {
      merged.push({ ...r });
    }
  }
  return merged.map((r) => (r.to === undefined ? `${r.from}-` : r.to === r.from ? `${r.from}` : `${r.from}-${r.to}`)).join(',');
}

/** The selected pages from `from` to `to` (inclusive; undefined: the end): what one invocation renders. */
export function selectionWithin(pages: string, from: number, to?: number): PageRange[] {
  return parsePageSelection(pages).flatMap((r) => {
    const start = Math.max(r.from, from);
    const end = r.to === undefined ? to : to === undefined ? r.to : Math.min(r.to, to);
    if (end !== undefined && end < start) return [];
    return [end === undefined ? { from: start } : { from: start, to: end }];
  });
}

/** The first `count` pages of the selection, whatever the document's length. */
export function selectionHead(pages: string, count: number): PageRange[] {
  const head: PageRange[] = [];
  let left = count;
  for (const r of parsePageSelection(pages)) {
    if (left <= 0) break;
    const size = r.to === undefined ? Number.POSITIVE_INFINITY : r.to - r.from + 1;
    const take = Math.min(size, left);
    head.push({ from: r.from, to: r.from + take - 1 });
    left -= take;
  }
  return head;
}
