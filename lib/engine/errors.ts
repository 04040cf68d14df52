/**
 * Stable error codes. They are part of the product contract (manifest `error.code`,
 * log field `code`, metric dimension), so never rename one.
 */
export const DOCUMENT_ERROR_CODES = [
  /** The file is not a PDF at all (no header, or no PDF objects in it). */
  'NOT_PDF',
  /** Zero bytes. */
  'EMPTY',
  /** A PDF damaged beyond repair, or one that uses a feature MuPDF cannot read. */
  'CORRUPT',
  /** Needs a password to open. */
  'ENCRYPTED',
  /** A readable PDF whose page tree holds no pages. */
  'NO_PAGES',
  /** The renderer crashed while opening the document (WebAssembly abort, out of memory). */
  'RENDERER_CRASHED',
] as const;
export type DocumentErrorCode = (typeof DOCUMENT_ERROR_CODES)[number];

export const PAGE_ERROR_CODES = [
  /** MuPDF threw while loading, drawing or encoding the page. */
  'PAGE_RENDER_FAILED',
  /** Even at 1 dpi the page exceeds the pixel budget. */
  'PAGE_TOO_LARGE',
  /** The renderer crashed on this page; the document went on in a fresh worker. */
  'PAGE_CRASHED',
  /** The page took longer than the per-page time limit. */
  'PAGE_TIMEOUT',
  /** The page needs more memory than the renderer's heap ceiling, even drawn in small bands. */
  'PAGE_OUT_OF_MEMORY',
] as const;
export type PageErrorCode = (typeof PAGE_ERROR_CODES)[number];

/** Failures of the job itself rather than of its input: worth a retry. */
export const JOB_ERROR_CODES = ['ABORTED', 'WORKER_FAILED'] as const;
export type JobErrorCode = (typeof JOB_ERROR_CODES)[number];

export type RenderErrorCode = DocumentErrorCode | JobErrorCode;

/** A whole-document or whole-job failure raised by the render core. */
export class RenderError extends Error {
  override readonly name = 'RenderError';
  constructor(
    readonly code: RenderErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Permanent: retrying the same input gives the same answer. */
  get permanent(): boolean {
    return (DOCUMENT_ERROR_CODES as readonly string[]).includes(this.code);
  }
}

export interface PageError {
  code: PageErrorCode;
  message: string;
}

export { errorMessage } from '../encode/error-message.js';

/**
 * The page errors the main thread decides (the worker reports its own): built here only, for a
 * page that never began streaming (a FailedPage) and one that did (its PageFailedError) alike.
 */
export const pageErrors = {
  crashed: (reason: string): PageError => ({ code: 'PAGE_CRASHED', message: `the renderer crashed on this page: ${reason}` }),
  timedOut: (limitMs: number | undefined): PageError => ({ code: 'PAGE_TIMEOUT', message: `the page took longer than ${limitMs} ms` }),
  /** Not a failure of the page: the job's deadline came while it was drawing. */
  deadline: (): PageError => ({ code: 'PAGE_TIMEOUT', message: 'cut off at the deadline' }),
  notAttempted: (restarts: number): PageError => ({ code: 'PAGE_CRASHED', message: `not attempted: the renderer failed on ${restarts} pages of this document` }),
  encodingFailed: (reason: string): PageError => ({ code: 'PAGE_RENDER_FAILED', message: `encoding failed: ${reason}` }),
} as const;

/** Why a page that had started streaming did not finish: its body and `finished` fail with it. */
export class PageFailedError extends Error {
  override readonly name = 'PageFailedError';
  constructor(
    readonly pageError: PageError,
    /** The page was cut off at the job's deadline (RenderControl.deadline): not a failure of the page. */
    readonly deadline: boolean = false,
  ) {
    super(`${pageError.code}: ${pageError.message}`);
  }
}
