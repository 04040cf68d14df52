/** Where things live in S3 (DESIGN.md §1). */
import type { Config } from '../config/env.js';

/** S3 event keys are URL-encoded with "+" for spaces (form encoding). */
export function decodeEventKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

/** The inverse of decodeEventKey: how S3 writes a key into an event notification. */
export function encodeEventKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

/** Why a key is not rendered, or null when it is. */
export function skipReason(key: string, config: Pick<Config, 'inputPrefix'>): string | null {
  if (!key.startsWith(config.inputPrefix)) return `outside INPUT_PREFIX "${config.inputPrefix}"`;
  if (!key.toLowerCase().endsWith('.pdf')) return 'not a .pdf key';
  return null;
}

export interface OutputLocation {
  bucket: string;
  /** Ends with "/": pages and manifest.json are directly under it. */
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

/** page-0001.png and the like: a page image in an output prefix (not the manifest). */
export const PAGE_FILE_PATTERN = /^page-(\d{4,})\.(png|jpg)$/;
