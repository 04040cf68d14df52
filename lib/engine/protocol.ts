/** Messages between the render core (main thread) and its worker. */
import type { ThumbnailPixels } from '../encode/thumbnail-jpeg.js';
import type { DocumentErrorCode, PageError } from './errors.js';
import type { LaneShare, OutputOptions, PageBox, PageRange, PageRegion } from './options.js';
import type { OutlineEntry, PageColor, PageText } from './results.js';
import type { StackGuard } from './wasm.js';

/** What a worker starts with (its workerData), the same for every job of the process. */
export interface WorkerBoot {
  wasmModule: WebAssembly.Module;
  /** The region below MuPDF's stack that only an overflow writes to (lib/engine/wasm.ts). */
  stackGuard: StackGuard;
}

/** The document a worker renders, given in its 'open' message once MuPDF is up. */
export interface JobInput {
  /** An open read-only descriptor owned by the main thread, so a terminated worker leaks nothing. */
  fd: number;
  fileSize: number;
  /** What the images look like, passed whole. */
  output: OutputOptions;
  pages?: PageRange[];
  /** Set when a job resumes in a fresh worker: exactly these pages, selection already applied. */
  pageNumbers?: number[];
  /** Set when several workers share the document: draw only this lane's pages of the selection. */
  lane?: LaneShare;
  /** Bands (or encoded pages) the worker may send before it waits for a credit (backpressure). */
  initialCredits: number;
  /** Largest raw band, in bytes: the memory a page needs whatever its size. */
  bandBytes: number;
  /** RenderOptions.thumbnailWidth: 0 or absent, no thumbnails. */
  thumbnailWidth?: number;
  /** RenderOptions.pageText. */
  pageText?: boolean;
  /** RenderOptions.region: only this region of each page. */
  region?: PageRegion;
  /** RenderOptions.level: each page's full image at 1/level, as raw rows. */
  level?: number;
  /** RenderOptions.pageBoxes: every page's box, the title and the outline, in 'opened'. */
  pageBoxes?: boolean;
}

export type { ThumbnailPixels };

export type WorkerMessage =
  /** MuPDF is instantiated; a crash after this is the document's doing, not the worker's start-up. */
  | { type: 'ready' }
  /** pageNumbers: the whole selection (or the pageNumbers given), whatever the lane. */
  | { type: 'opened'; pageCount: number; pageNumbers: number[]; warnings: string[]; pageBoxes?: PageBox[]; title?: string; outline?: OutlineEntry[]; outlineTruncated?: true }
  /** Before the page is loaded: a crash from here on is this page's. */
  | { type: 'page-start'; pageNumber: number }
  /**
   * The page's image size and color are known; its bytes follow as bands. `box`: the page's box
   * in points, for a whole page (the eager manifest records it, so IIIF need not open the document).
   */
  | { type: 'page-begin'; pageNumber: number; width: number; height: number; dpi: number; color: PageColor; warning?: string; box?: PageBox }
  /**
   * Rows of RGB or gray samples as page-begin said, laid out for the format's encoder (rows.ts:
   * PNG scanlines, packed for JPEG), which the main thread runs. Each band costs one credit.
   */
  | { type: 'band'; pageNumber: number; rows: number; bytes: Uint8Array }
  /**
   * renderMs: time the worker spent on the page, not counting waits for the encoder. The
   * thumbnail's pixels and the text, when asked for and made, come with it (their buffers
   * transferred).
   */
  | { type: 'page-end'; pageNumber: number; renderMs: number; wasmHeapBytes: number; thumbnail?: ThumbnailPixels; text?: PageText }
  /** Before or after page-begin: the page failed, and the document goes on. */
  | { type: 'page-error'; pageNumber: number; error: PageError; wasmHeapBytes: number }
  | { type: 'done'; wasmHeapBytes: number }
  | { type: 'failed'; code: DocumentErrorCode; message: string }
  | { type: 'log'; level: 'warning' | 'error'; message: string };

export type MainMessage = { type: 'open'; input: JobInput } | { type: 'credit'; count: number };
