/**
 * manifest.json, schema v1 (DESIGN.md §3): the record of one render and the idempotency key
 * for the next event about the same source.
 */
import { createHash } from 'node:crypto';
import type { PageError } from '../engine/errors.js';
import type { OutputOptions } from '../engine/options.js';

export type ManifestStatus = 'complete' | 'partial' | 'failed';

/** An S3 object, or a local file for the CLI (`file` instead of bucket/key). */
export interface ManifestSource {
  bucket?: string;
  key?: string;
  file?: string;
  versionId?: string;
  etag: string;
  size: number;
}

export interface ManifestPage {
  number: number;
  key: string;
  width: number;
  height: number;
  dpi: number;
  bytes: number;
  contentType: string;
}

export interface ManifestPageFailure {
  number: number;
  error: PageError;
}

export interface Manifest {
  schemaVersion: 1;
  status: ManifestStatus;
  source: ManifestSource;
  renderer: { name: string; version: string; mupdf: string };
  options: OutputOptions;
  optionsHash: string;
  /** Pages in the document (0 when it could not be opened). */
  pageCount: number;
  /** Rendered pages, and pages that failed (with `error`), in page order. */
  pages: (ManifestPage | ManifestPageFailure)[];
  error?: { code: string; message: string };
  warnings: string[];
  /** For a `partial` render cut short by the time budget: the first page still to render. */
  nextPage?: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
}

/** A stable hash of everything that changes the images. */
export function optionsHash(options: OutputOptions): string {
  const canonical = JSON.stringify([options.format, options.dpi, options.jpegQuality, options.maxPagePixels, options.maxPages]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

export function pickOutputOptions(options: OutputOptions): OutputOptions {
  const { format, dpi, jpegQuality, maxPagePixels, maxPages } = options;
  return { format, dpi, jpegQuality, maxPagePixels, maxPages };
}

export function isPageFailure(page: ManifestPage | ManifestPageFailure): page is ManifestPageFailure {
  return 'error' in page;
}

/** Pad page numbers to 4 digits, wider past 9999 (DESIGN.md §1). */
export function pageFileName(pageNumber: number, extension: string): string {
  return `page-${String(pageNumber).padStart(4, '0')}.${extension}`;
}

/**
 * Validates a manifest read from outside (S3, disk). Returns null for anything that is not a
 * v1 manifest, so a damaged or foreign manifest.json is treated as missing, never trusted.
 */
export function parseManifest(text: string): Manifest | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(value) || value['schemaVersion'] !== 1) return null;
  const { status, source, renderer, options, pages } = value;
  if (status !== 'complete' && status !== 'partial' && status !== 'failed') return null;
  if (!isRecord(source) || typeof source['etag'] !== 'string' || typeof source['size'] !== 'number') return null;
  if (!isRecord(renderer) || typeof renderer['version'] !== 'string') return null;
  if (!isRecord(options) || typeof value['optionsHash'] !== 'string' || typeof value['pageCount'] !== 'number') return null;
  if (!Array.isArray(pages) || !pages.every((p) => isRecord(p) && typeof p['number'] === 'number')) return null;
  if (value['nextPage'] !== undefined && typeof value['nextPage'] !== 'number') return null;
  return value as unknown as Manifest;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
