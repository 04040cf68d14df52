/**
 * Where things live in S3 (docs/contract.md, "S3 layout"): the output prefix of a source key,
 * the generation folders under it, which keys are safe to render, and S3's key length limit.
 */
import type { Config } from '../config/env.js';
import { FILE_EXTENSION } from '../encode/formats.js';

/** S3 event keys are URL-encoded with "+" for spaces (form encoding). */
export function decodeEventKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

/** The inverse of decodeEventKey: how S3 writes a key into an event notification. */
export function encodeEventKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

/**
 * Why a key is not rendered, or null when it is. Keys with empty, "." or ".." segments are
 * refused: their outputs could not be mirrored to a file system without escaping the prefix
 * (incoming/../../etc/x.pdf), and no manifest can be placed for them safely.
 */
export function skipReason(key: string, config: Pick<Config, 'inputPrefix'>): string | null {
  if (!key.startsWith(config.inputPrefix)) return `outside INPUT_PREFIX "${config.inputPrefix}"`;
  if (!key.toLowerCase().endsWith('.pdf')) return 'not a .pdf key';
  const bad = key
    .slice(config.inputPrefix.length)
    .split('/')
    .find((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad !== undefined) return `the key has an ${bad === '' ? 'empty' : JSON.stringify(bad)} path segment (unsafe as an output path)`;
  return null;
}

export interface OutputLocation {
  bucket: string;
  /** Ends with "/": manifest.json and the generation folders are directly under it. */
  prefix: string;
}

/** incoming/reports/q3.pdf -> rendered/reports/q3.pdf/ (in OUTPUT_BUCKET or the source bucket). */
export function outputLocation(sourceBucket: string, sourceKey: string, config: Pick<Config, 'inputPrefix' | 'outputPrefix' | 'outputBucket'>): OutputLocation {
  return {
    bucket: config.outputBucket ?? sourceBucket,
    prefix: `${config.outputPrefix}${sourceKey.slice(config.inputPrefix.length)}/`,
  };
}

export const MANIFEST_FILE = 'manifest.json';
/**
 * Beside a final manifest's pages: written once its completion event was put (lib/s3/marker-store.ts),
 * so a redelivered message that finds the render committed and no marker sends the event again.
 * In the generation's folder, it goes with the generation.
 */
export const ANNOUNCED_FILE = 'announced.json';

/** rendered/reports/q3.pdf/3f2a9c0d41b7e655/: one render's pages, never written by another. */
export function generationPrefix(out: OutputLocation, generation: string): string {
  return `${out.prefix}${generation}/`;
}

/** Every image extension of the formats table (pages, thumbnails, variants), as a regex alternation. */
const IMAGE_EXTENSIONS = [...new Set(Object.values(FILE_EXTENSION))].map((e) => e.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');

/**
 * A file of a generation, relative to the output prefix: <16 hex>/page-0001.png, a fan-out part
 * record, the completion event's marker (ANNOUNCED_FILE) and the like, and the page function's cached variants (<16 hex>/variant-0003-<options
 * hash>.png, in a folder named by variantFolderOf; IIIF images iiif-0003-<request hash>.jpg and
 * the document's page sizes iiif-pages.json beside them), so the clean-up after a commit removes the
 * variants of an old source like its pages. The image extensions come from the formats table
 * (lib/encode/formats.ts FILE_EXTENSION): a format added there is cleaned up without a change
 * here (a pattern written out by hand once missed .webp, and every re-upload kept a generation).
 */
export const GENERATION_FILE_PATTERN = new RegExp(
  `^([0-9a-f]{16})\\/(?:(?:page|thumb)-\\d{4,}\\.(?:${IMAGE_EXTENSIONS})|text-\\d{4,}\\.json|part-\\d{4,}-\\d{4,}\\.json|announced\\.json|(?:variant|iiif)-\\d{4,}-[0-9a-f]{16}\\.(?:${IMAGE_EXTENSIONS})|iiif-pages\\.json)$`,
);
/** A page image of a schema v1 render, directly under the output prefix. */
export const LEGACY_PAGE_FILE_PATTERN = /^page-\d{4,}\.(?:png|jpg)$/;

/** rendered/reports/q3.pdf/3f2a9c0d41b7e655/announced.json */
export function announcedKey(out: OutputLocation, generation: string): string {
  return `${generationPrefix(out, generation)}${ANNOUNCED_FILE}`;
}

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** The longest file name a generation holds while documents stay under 10,000 pages (as long as ANNOUNCED_FILE). */
const LONGEST_FILE_NAME = 'text-0000.json';

/**
 * Which output keys of this source exceed S3's limit: null when all fit, 'outputs' when the
 * page keys do not but the manifest does (a failed manifest can say so), 'manifest' when not
 * even the manifest fits (nothing can be written).
 */
export function keyLengthProblem(out: OutputLocation, generation: string): 'outputs' | 'manifest' | null {
  const bytes = (key: string): number => Buffer.byteLength(key, 'utf8');
  if (bytes(out.prefix + MANIFEST_FILE) > MAX_KEY_BYTES) return 'manifest';
  if (bytes(generationPrefix(out, generation) + LONGEST_FILE_NAME) > MAX_KEY_BYTES) return 'outputs';
  return null;
}
