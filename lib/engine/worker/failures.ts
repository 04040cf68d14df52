/**
 * How a page's failure is told apart inside the worker: a fatal one (a WebAssembly trap, a
 * stack overflow) ends the worker, an out-of-memory one may be retried smaller, the rest fail
 * the page with a code. Pure functions of the error: no MuPDF state is touched here.
 */
import { errorMessage, type PageError } from '../errors.js';
import { WASM_HEAP_LIMIT_BYTES } from '../wasm.js';

/** The renderer's state is broken: the worker must end (the main thread treats it as a crash). */
export class RendererPoisoned extends Error {
  override readonly name = 'RendererPoisoned';
}

/** A page that cannot be drawn as asked, with the code it fails with (PAGE_TOO_LARGE, say). */
export class PageFailure extends Error {
  override readonly name = 'PageFailure';
  constructor(readonly error: PageError) {
    super(error.message);
  }
}

/** A WebAssembly trap (out-of-bounds access, unreachable) or a stack overflow caught by the guard. */
export function isFatal(err: unknown): boolean {
  return (err instanceof Error && err.name === 'RuntimeError') || err instanceof RendererPoisoned;
}

/** MuPDF's (and its JPEG encoder's) allocation failures, once the heap reached WASM_HEAP_LIMIT_BYTES and the caches were evicted. */
export function isOutOfMemory(err: unknown): boolean {
  return /\b(malloc|calloc|realloc)\b.*\bfailed\b|out of memory|insufficient memory/i.test(errorMessage(err));
}

/** The page error for a non-fatal failure; `tried` says what was already done to fit memory. */
export function pageErrorOf(err: unknown, tried: string): PageError {
  if (err instanceof PageFailure) return err.error;
  if (isOutOfMemory(err)) {
    return { code: 'PAGE_OUT_OF_MEMORY', message: `the page needs more than the renderer's ${WASM_HEAP_LIMIT_BYTES / 2 ** 20} MiB, ${tried}: ${errorMessage(err)}` };
  }
  if (/exception stack overflow/i.test(errorMessage(err))) {
    return { code: 'PAGE_RENDER_FAILED', message: `the page's content is nested deeper than MuPDF allows (forms, patterns or groups): ${errorMessage(err)}` };
  }
  return { code: 'PAGE_RENDER_FAILED', message: errorMessage(err) };
}
