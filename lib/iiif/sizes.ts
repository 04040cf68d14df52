/**
 * What IIIF needs of a document besides its pixels: every page's box, the title and the outline
 * (the sizes file, `iiif-pages.json`, stored beside the variants once the document was opened),
 * or a page's box alone from the eager render's manifest (`pages[].box`), which opens nothing.
 * Both are read from S3, so both are validated here: a damaged file is treated as missing.
 */
import { isPageBox, type PageBox } from '../engine/options.js';
import { OUTLINE_LIMITS, type OutlineEntry } from '../engine/results.js';
import { isLegacy, isPageFailure, type StoredManifest } from '../job/manifest.js';
import { majorVersion, RENDERER } from '../job/version.js';

export const SIZES_FILE = 'iiif-pages.json';
/** 2: with the outline. A file of schema 1 (no `schema`, no outline) is read as missing and written again. */
export const SIZES_SCHEMA = 2;

/** The sizes file: what one open of the document gives IIIF. */
export interface DocumentSizes {
  schema: typeof SIZES_SCHEMA;
  pageCount: number;
  boxes: PageBox[];
  title?: string;
  /** The outline, bounded by OUTLINE_LIMITS (absent: the document has none). */
  outline?: OutlineEntry[];
  /** The outline was cut at OUTLINE_LIMITS. */
  outlineTruncated?: true;
}

/** The sizes file's content, or undefined when it is not one (damaged, foreign, or of an older shape). */
export function parseSizes(text: string): DocumentSizes | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const { schema, pageCount, boxes, title, outline } = v;
  if (schema !== SIZES_SCHEMA) return undefined;
  if (typeof pageCount !== 'number' || !Number.isInteger(pageCount) || pageCount < 1) return undefined;
  if (!Array.isArray(boxes) || boxes.length !== pageCount || !boxes.every(isPageBox)) return undefined;
  if (title !== undefined && typeof title !== 'string') return undefined;
  const budget = { left: OUTLINE_LIMITS.entries };
  if (outline !== undefined && !isOutline(outline, pageCount, 1, budget)) return undefined;
  return value as DocumentSizes;
}

function isOutline(value: unknown, pageCount: number, depth: number, budget: { left: number }): value is OutlineEntry[] {
  if (!Array.isArray(value) || (value.length > 0 && depth > OUTLINE_LIMITS.depth)) return false;
  for (const entry of value as unknown[]) {
    if (--budget.left < 0 || typeof entry !== 'object' || entry === null) return false;
    const { title, page, children } = entry as Record<string, unknown>;
    if (typeof title !== 'string' || title.length > OUTLINE_LIMITS.titleChars) return false;
    if (page !== undefined && (typeof page !== 'number' || !Number.isInteger(page) || page < 1 || page > pageCount)) return false;
    if (children !== undefined && !isOutline(children, pageCount, depth + 1, budget)) return false;
  }
  return true;
}

/** The page boxes an eager render recorded (pages[].box), when its manifest is of these source bytes. */
export interface EagerBoxes {
  pageCount: number;
  boxes: Map<number, PageBox>;
}

/**
 * Only a manifest of these source bytes and of this renderer's major (MuPDF's bounds of a page
 * may change with it, and the level cache cuts tiles at offsets computed from the box).
 */
export function eagerBoxesOf(manifest: StoredManifest | null, etag: string): EagerBoxes | undefined {
  if (!manifest || isLegacy(manifest) || manifest.source.etag !== etag || manifest.pageCount < 1) return undefined;
  if (majorVersion(manifest.renderer.version) !== majorVersion(RENDERER.version)) return undefined;
  const boxes = new Map<number, PageBox>();
  for (const page of manifest.pages) if (!isPageFailure(page) && page.box && page.number <= manifest.pageCount) boxes.set(page.number, page.box);
  return boxes.size > 0 ? { pageCount: manifest.pageCount, boxes } : undefined;
}
