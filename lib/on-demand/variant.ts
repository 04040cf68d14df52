/**
 * Where a page variant lives and whether one exists already: the page function's cache in S3.
 * A variant is named by the source's etag and the renderer's major version (its folder,
 * variantFolderOf, under the source's output prefix) and by the page and the options hash (its
 * file), so another source, other options or another renderer never read it; and its folder is
 * removed by the eager render's clean-up when the source changes. An eager render that already
 * drew exactly this image is served instead.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DOCUMENT_ERROR_CODES } from '../engine/errors.js';
import { boxOf, extensionOf, qualityFieldOf } from '../engine/options.js';
import { isLegacy, isPageFailure, optionsHash, variantFolderOf, type StoredManifest } from '../job/manifest.js';
import type { JobOptions, RecordedOptions } from '../job/options.js';
import { majorVersion, RENDERER } from '../job/version.js';
import { isNotFound } from '../s3/errors.js';
import { generationPrefix, type OutputLocation } from '../s3/layout.js';

/** The variant's key: <output prefix><variant folder>/variant-0003-<options hash>.<ext>. */
export function variantKey(out: OutputLocation, etag: string, page: number, options: JobOptions): string {
  return `${generationPrefix(out, variantFolderOf(etag))}variant-${String(page).padStart(4, '0')}-${optionsHash(options)}.${extensionOf(options.format)}`;
}

/** Whether the object exists (a cache hit). */
export async function variantExists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** The options that decide an image's pixels and bytes (not which pages a render covers): only the format's own quality counts. */
function imageOptions(options: RecordedOptions): string {
  const { format, dpi, maxPagePixels } = options;
  const field = qualityFieldOf(format);
  const quality = field ? options[field] : undefined;
  return JSON.stringify({ format, dpi, maxPagePixels, quality, ...boxOf(options) });
}

/** What the eager render's manifest already says about a page, for these source bytes and options. */
export type EagerAnswer =
  | { kind: 'page'; key: string }
  | { kind: 'out-of-range'; pageCount: number }
  | { kind: 'document-error'; code: string; message: string }
  | { kind: 'unknown' };

/**
 * The eager render's answer for `page`, when its manifest is of these source bytes and this
 * renderer major: the page it stored with exactly these image options, the document's page
 * count (a page past it is out of range whatever the options), or a document error no option
 * changes (ENCRYPTED, CORRUPT…). Anything else is left to a render.
 */
export function eagerAnswer(manifest: StoredManifest | null, etag: string, page: number, options: JobOptions): EagerAnswer {
  if (!manifest || isLegacy(manifest) || manifest.source.etag !== etag || majorVersion(manifest.renderer.version) !== majorVersion(RENDERER.version)) return { kind: 'unknown' };
  const code = manifest.error?.code;
  // RENDERER_CRASHED may be this renderer's bad day, not the document's: rendered again.
  if (manifest.status === 'failed' && code && code !== 'RENDERER_CRASHED' && (DOCUMENT_ERROR_CODES as readonly string[]).includes(code)) {
    return { kind: 'document-error', code, message: manifest.error!.message };
  }
  if (manifest.pageCount > 0 && page > manifest.pageCount) return { kind: 'out-of-range', pageCount: manifest.pageCount };
  const entry = manifest.pages.find((p) => p.number === page);
  if (entry && !isPageFailure(entry) && imageOptions(manifest.options) === imageOptions(options)) return { kind: 'page', key: entry.key };
  return { kind: 'unknown' };
}
