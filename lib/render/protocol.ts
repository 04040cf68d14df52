/** Messages between the render core (main thread) and its worker. */
import type { DocumentErrorCode, PageError } from './errors.js';
import type { ImageFormat, PageRange } from './options.js';

export interface WorkerInput {
  wasmModule: WebAssembly.Module;
  /** An open read-only descriptor owned by the main thread, so a terminated worker leaks nothing. */
  fd: number;
  fileSize: number;
  format: ImageFormat;
  dpi: number;
  jpegQuality: number;
  maxPagePixels: number;
  maxPages: number;
  pages?: PageRange[];
  /** Set when a job resumes in a fresh worker: exactly these pages, selection already applied. */
  pageNumbers?: number[];
  /** Pages the worker may send before it waits for a credit (backpressure). */
  initialCredits: number;
}

export type WorkerMessage =
  /** MuPDF is instantiated; a crash after this is the document's doing, not the worker's start-up. */
  | { type: 'ready' }
  | { type: 'opened'; pageCount: number; pageNumbers: number[]; warnings: string[] }
  | { type: 'page-start'; pageNumber: number }
  | {
      type: 'page';
      pageNumber: number;
      width: number;
      height: number;
      dpi: number;
      bytes: Uint8Array;
      renderMs: number;
      encodeMs: number;
      wasmHeapBytes: number;
    }
  | { type: 'page-error'; pageNumber: number; error: PageError; wasmHeapBytes: number }
  | { type: 'done'; wasmHeapBytes: number }
  | { type: 'failed'; code: DocumentErrorCode; message: string }
  | { type: 'log'; level: 'warning' | 'error'; message: string };

export type MainMessage = { type: 'credit'; count: number };
