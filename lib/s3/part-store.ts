/**
 * Part records of a fanned-out render: one JSON file per page range under the generation
 * (<prefix><generation>/part-0001-0200.json), written by the invocation that rendered the
 * range. The range that finds every part done merges them into the manifest.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ManifestPage, ManifestPageFailure } from '../job/manifest.js';
import { isNotFound } from './errors.js';
import { generationPrefix, type OutputLocation } from './layout.js';

export interface RangePart {
  range: { from: number; to: number };
  /** Pages of the range stored so far, and pages that failed. */
  pages: (ManifestPage | ManifestPageFailure)[];
  warnings: string[];
  /** Set while the range goes on in a continuation: the first page not yet rendered. */
  nextPage?: number;
  /** Every selected page of the range rendered (or failed); false when its budget ran out first. */
  complete: boolean;
  pageCount: number;
  startedAt: string;
}

const pad = (n: number): string => String(n).padStart(4, '0');
export const PART_FILE_PATTERN = /^part-(\d{4,})-(\d{4,})\.json$/;

function partKey(out: OutputLocation, generation: string, range: { from: number; to: number }): string {
  return `${generationPrefix(out, generation)}part-${pad(range.from)}-${pad(range.to)}.json`;
}

export async function writePart(s3: S3Client, out: OutputLocation, generation: string, part: RangePart): Promise<void> {
  await s3.send(
    new PutObjectCommand({ Bucket: out.bucket, Key: partKey(out, generation, part.range), Body: JSON.stringify(part), ContentType: 'application/json' }),
  );
}

function isPart(value: unknown): value is RangePart {
  const v = value as RangePart;
  return typeof v === 'object' && v !== null && typeof v.range?.from === 'number' && typeof v.range?.to === 'number' && Array.isArray(v.pages) && Array.isArray(v.warnings);
}

/** This range's part, if an earlier invocation stored one. */
export async function readPart(s3: S3Client, out: OutputLocation, generation: string, range: { from: number; to: number }): Promise<RangePart | undefined> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: out.bucket, Key: partKey(out, generation, range) }));
    const value: unknown = JSON.parse(await response.Body!.transformToString());
    return isPart(value) ? value : undefined;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Every part of the generation (S3 lists after a write consistently: the last range to finish sees them all). */
export async function readParts(s3: S3Client, out: OutputLocation, generation: string): Promise<RangePart[]> {
  const prefix = generationPrefix(out, generation);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: out.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    keys.push(...(listed.Contents ?? []).map((o) => o.Key!).filter((k) => PART_FILE_PATTERN.test(k.slice(prefix.length))));
    token = listed.IsTruncated ? listed.NextContinuationToken : undefined;
  } while (token);
  const parts: RangePart[] = [];
  for (const key of keys) {
    const response = await s3.send(new GetObjectCommand({ Bucket: out.bucket, Key: key }));
    const value: unknown = JSON.parse(await response.Body!.transformToString());
    if (isPart(value)) parts.push(value);
  }
  return parts.sort((a, b) => a.range.from - b.range.from);
}
