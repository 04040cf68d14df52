/**
 * manifest.json, schema v2 (docs/contract.md): the record of one render, the pointer to its
 * immutable generation of pages, and the idempotency key for the next event about the same
 * source. Also the one home of the generation's name.
 */
import { createHash } from 'node:crypto';
import type { PageError } from '../engine/errors.js';
import { isPageBox, type PageBox } from '../engine/options.js';
import { pickJobOptions, type JobOptions, type OptionsSource, type RecordedOptions } from './options.js';
import { majorVersion, RENDERER } from './version.js';

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
  /** 'gray' when every pixel has R = G = B and the PNG is stored as grayscale. */
  color?: 'rgb' | 'gray';
  /** With thumbnails on: a JPEG `thumbnailWidth` pixels wide, drawn from the same page. */
  thumbnail?: { key: string; width: number; height: number; bytes: number };
  /** With page text on: MuPDF's structured text in the page image's pixel coordinates. */
  text?: { key: string; chars: number };
  /**
   * The page's box in points, [x0, y0, x1, y1] (MuPDF's page bounds: the CropBox turned by
   * /Rotate). Optional (manifests written before it lack it): the page function's IIIF
   * info.json and tiles size the page from it without opening the document.
   */
  box?: PageBox;
}

export interface ManifestPageFailure {
  number: number;
  error: PageError;
}

export interface Manifest {
  schemaVersion: 2;
  status: ManifestStatus;
  source: ManifestSource;
  renderer: { name: string; version: string; mupdf: string };
  options: RecordedOptions;
  /**
   * Where `options` came from: the settings, or the object's render-* metadata (v4). Absent in
   * manifests written before it existed; the schedule then reads the object's metadata when
   * the hash is not the settings' (lib/job/freshness.ts).
   */
  optionsSource?: OptionsSource;
  optionsHash: string;
  /** Where this render's outputs live under the output prefix (generationOf). */
  generation: string;
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

/** A stable hash of everything that changes the outputs. */
export function optionsHash(options: RecordedOptions): string {
  const canonical = JSON.stringify(Object.values(pickJobOptions(options)));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/**
 * The name of one render's outputs: the same source bytes, options and renderer major version
 * always give the same generation (a retry or a duplicate writes the same keys with the same
 * bytes); anything else gives another one, so no render ever writes into another's keys.
 */
export function generationOf(etag: string, hash: string, rendererVersion: string = RENDERER.version): string {
  return createHash('sha256').update(`${etag}\n${hash}\n${majorVersion(rendererVersion)}`).digest('hex').slice(0, 16);
}

/**
 * The folder of the page function's cached variants of one source (lib/on-demand/variant.ts):
 * named like a generation, so the clean-up after an eager commit of another source removes it,
 * and kept by a commit of the same source bytes and renderer major (commit.ts).
 */
export function variantFolderOf(etag: string, rendererVersion: string = RENDERER.version): string {
  return createHash('sha256').update(`variants\n${etag}\n${majorVersion(rendererVersion)}`).digest('hex').slice(0, 16);
}

export const GENERATION_PATTERN = /^[0-9a-f]{16}$/;

export function isPageFailure(page: ManifestPage | ManifestPageFailure): page is ManifestPageFailure {
  return 'error' in page;
}

/** page-0001.png, thumb-0001.jpg, text-0001.json: page numbers padded to 4 digits, wider past 9999 (docs/contract.md, "S3 layout"). */
export function pageFileName(pageNumber: number, extension: string, kind: 'page' | 'thumb' | 'text' = 'page'): string {
  return `${kind}-${String(pageNumber).padStart(4, '0')}.${extension}`;
}

export type ManifestFields = Pick<Manifest, 'status' | 'pageCount' | 'pages' | 'warnings'> & Partial<Manifest>;

/** A manifest of `source` rendered with `options`, started at `startedAt` and finished now. */
export function buildManifest(source: ManifestSource, options: RecordedOptions, startedAt: Date, fields: ManifestFields): Manifest {
  const picked = pickJobOptions(options);
  const hash = optionsHash(picked);
  const finishedAt = new Date();
  return {
    schemaVersion: 2,
    source,
    renderer: { ...RENDERER },
    options: picked,
    ...(fields.optionsSource ? { optionsSource: fields.optionsSource } : {}),
    optionsHash: hash,
    // The page sink stores under the same name: generationOf is its one home.
    generation: generationOf(source.etag, hash),
    ...fields,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
  };
}

/** A document that cannot be rendered at all (a permanent error, `error.code` stable). */
export function failedManifest(
  source: ManifestSource,
  options: RecordedOptions,
  error: { code: string; message: string },
  startedAt: Date,
  optionsSource?: OptionsSource,
): Manifest {
  return buildManifest(source, options, startedAt, { status: 'failed', pageCount: 0, pages: [], warnings: [], error, ...(optionsSource ? { optionsSource } : {}) });
}

/** A manifest of schema v1 (pages directly under the prefix): known, never trusted, re-rendered. */
export interface LegacyManifest {
  schemaVersion: 1;
}

export type StoredManifest = Manifest | LegacyManifest;

export function isLegacy(manifest: StoredManifest): manifest is LegacyManifest {
  return manifest.schemaVersion === 1;
}

/**
 * Validates a manifest read from outside (S3, disk). Returns null for anything that is neither a
 * v2 manifest nor a v1 one, so a damaged or foreign manifest.json is treated as missing, never
 * trusted; a v1 manifest comes back as LegacyManifest (stale by definition).
 */
export function parseManifest(text: string): StoredManifest | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(value)) return null;
  if (value['schemaVersion'] === 1) return { schemaVersion: 1 };
  if (value['schemaVersion'] !== 2) return null;
  const { status, source, renderer, options, pages, generation } = value;
  if (status !== 'complete' && status !== 'partial' && status !== 'failed') return null;
  if (!isRecord(source) || typeof source['etag'] !== 'string' || typeof source['size'] !== 'number') return null;
  if (!isRecord(renderer) || typeof renderer['version'] !== 'string') return null;
  if (typeof generation !== 'string' || !GENERATION_PATTERN.test(generation)) return null;
  if (!isRecord(options) || typeof value['optionsHash'] !== 'string' || typeof value['pageCount'] !== 'number') return null;
  const pageOk = (p: unknown): boolean =>
    isRecord(p) &&
    typeof p['number'] === 'number' &&
    (isRecord(p['error']) || (typeof p['key'] === 'string' && typeof p['width'] === 'number' && typeof p['height'] === 'number'));
  if (!Array.isArray(pages) || !pages.every(pageOk)) return null;
  // A page's box is optional (only the IIIF routes read it): one that is not a box is dropped,
  // never the manifest, whose loss would make every redelivery and scheduled run render again.
  for (const page of pages as Record<string, unknown>[]) if (page['box'] !== undefined && !isPageBox(page['box'])) delete page['box'];
  if (value['nextPage'] !== undefined && typeof value['nextPage'] !== 'number') return null;
  if (value['optionsSource'] !== undefined && !isOptionsSource(value['optionsSource'])) return null;
  return value as unknown as Manifest;
}

function isOptionsSource(value: unknown): value is OptionsSource {
  if (!isRecord(value)) return false;
  if (value['from'] === 'settings') return true;
  const metadata = value['metadata'];
  return value['from'] === 'metadata' && isRecord(metadata) && Object.values(metadata).every((v) => typeof v === 'string');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
