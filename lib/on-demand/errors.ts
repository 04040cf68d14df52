/**
 * What the page function answers when it does not redirect: an HTTP status and a stable code,
 * with a message that names the field, the value and what is allowed. The codes of documents
 * that cannot be rendered are the manifest's own (lib/engine/errors.ts): ENCRYPTED, CORRUPT…
 */
export const REQUEST_ERROR_CODES = [
  /** A query parameter, the path or the method is not what the URL scheme allows. */
  'INVALID_REQUEST',
  'METHOD_NOT_ALLOWED',
  /** The key is outside INPUT_PREFIX, not a .pdf, or has empty, "." or ".." segments. */
  'KEY_NOT_SERVED',
  /** No object under the key. */
  'NOT_FOUND',
  /** The document has fewer pages (or the eager render's MAX_PAGES stopped before it). */
  'PAGE_OUT_OF_RANGE',
  'SIGNATURE_MISSING',
  'SIGNATURE_INVALID',
  'SIGNATURE_EXPIRED',
] as const;
export type RequestErrorCode = (typeof REQUEST_ERROR_CODES)[number];

/** An answer other than the redirect: thrown anywhere in a request, turned into JSON by the handler. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    /** A RequestErrorCode, or a document or page error code as the manifest records it. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
