/**
 * What a render job gives its consumer, page by page: the engine's public result types. The
 * session (session.ts) makes them, the job (job.ts) yields them; nothing here runs.
 */
import type { Readable } from 'node:stream';
import type { Thumbnail } from '../encode/thumbnail-jpeg.js';
import type { PageError } from './errors.js';
import type { PageBox } from './options.js';

export type { Thumbnail };

export type PageColor = 'rgb' | 'gray';

/** A page's structured text: UTF-8 JSON in the page image's pixel coordinates (worker/extras.ts PageTextDocument). */
export interface PageText {
  json: Uint8Array;
  /** Non-whitespace characters. */
  chars: number;
}

export interface PageStats {
  /** Bytes of the encoded image. */
  bytes: number;
  /** From loading the page to its last band drawn (thumbnail and text included). */
  renderMs: number;
  /** Present when RenderOptions.thumbnailWidth asked for one and it could be made. */
  thumbnail?: Thumbnail;
  /** Present when RenderOptions.pageText asked for it and it could be made. */
  text?: PageText;
}

export interface RenderedPage {
  ok: true;
  pageNumber: number;
  width: number;
  height: number;
  /** The DPI actually used: lower than requested when the page exceeded the pixel budget. */
  dpi: number;
  contentType: string;
  /**
   * 'gray': every pixel has R = G = B, and the PNG is 8-bit grayscale (the same pixels, a third
   * of the bytes to compress). 'rgb' otherwise, for JPEG, and for PNG pages drawn in bands.
   */
  color: PageColor;
  /** The encoded image as it is produced. Read it: the worker waits for its reader. */
  body: Readable;
  /** Resolves when the whole image was produced; rejects with PageFailedError if the page failed midway. */
  finished: Promise<PageStats>;
  /** Set when the page was rendered below the requested DPI for a reason worth recording. */
  warning?: string;
  /** The page's box in points (MuPDF's page bounds: the CropBox, turned by /Rotate), for a whole page. */
  box?: PageBox;
}

export interface FailedPage {
  ok: false;
  pageNumber: number;
  error: PageError;
  /**
   * The job's deadline cut this page off (RenderControl.deadline): the page did not fail, it is
   * where a later attempt resumes. Always the job's last result.
   */
  deadline?: true;
}

export type PageResult = RenderedPage | FailedPage;

/**
 * One entry of a document's outline (its bookmarks), as RenderOptions.pageBoxes reads it:
 * the title, the 1-based page it links to (absent when it links nowhere in the document: an
 * external URI, a broken destination, none), its children.
 */
export interface OutlineEntry {
  title: string;
  page?: number;
  children?: OutlineEntry[];
}

/**
 * What of an outline is read (worker/outline.ts). A hostile outline can hold millions of
 * entries or loop; past these the rest is dropped (and `outlineTruncated` says so). 2,000
 * entries: the corpus's largest outline has 58 (freeculture-book-352p, `mutool show … outline`),
 * and a Range costs the manifest ~400 bytes with a Function URL's ids (geotopo-thesis-117p: 35
 * Ranges in 13,957 bytes, by lib/iiif/info.ts rangesOf), so 2,000 are ~800 KB, a fifth of the
 * manifest's 4 MiB body. 10 levels: books nest 3 or 4 (geotopo-thesis-117p: 3), and each level
 * is one frame of recursion. A title is cut at 300 characters (a label, not a paragraph).
 */
export const OUTLINE_LIMITS = { entries: 2_000, depth: 10, titleChars: 300 } as const;
