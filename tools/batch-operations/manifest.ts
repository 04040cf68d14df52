/**
 * Batch Operations manifests, locally: the CSV format S3 takes (`bucket,key[,versionId]`, one
 * object a line, keys URL-encoded), and the listing S3's manifest generator would make from a
 * prefix and key suffixes. Stands in for the service (tools/batch-operations/README.md).
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { encodeEventKey } from '../../lib/s3/layout.js';

export interface ManifestEntry {
  bucket: string;
  /** URL-encoded, as the manifest holds it and as Batch Operations passes it to the function. */
  encodedKey: string;
  versionId?: string;
}

/** A CSV manifest: 2 or 3 fields a line, no header; blank lines are skipped. */
export function parseCsvManifest(text: string): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const fields = line.split(',').map((f) => f.replace(/^"(.*)"$/, '$1'));
    if (fields.length < 2 || fields.length > 3 || !fields[0] || !fields[1]) {
      throw new Error(`manifest line ${i + 1}: expected "bucket,key[,versionId]" with the key URL-encoded; got ${JSON.stringify(line)}`);
    }
    entries.push({ bucket: fields[0], encodedKey: fields[1], ...(fields[2] ? { versionId: fields[2] } : {}) });
  }
  return entries;
}

export function writeCsvManifest(entries: readonly ManifestEntry[]): string {
  return entries.map((e) => [e.bucket, e.encodedKey, ...(e.versionId ? [e.versionId] : [])].join(',') + '\n').join('');
}

/**
 * What S3's manifest generator makes of a bucket, a key prefix and key suffixes (case-sensitive,
 * as its KeyNameConstraint is) and an optional CreatedAfter: every matching object, keys
 * URL-encoded. An empty suffix list takes every key (as an inventory report would).
 */
export async function generateManifest(
  s3: S3Client,
  bucket: string,
  options: { prefix: string; suffixes: readonly string[]; createdAfter?: Date },
): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: options.prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const object of page.Contents ?? []) {
      const key = object.Key!;
      if (options.suffixes.length > 0 && !options.suffixes.some((s) => key.endsWith(s))) continue;
      if (options.createdAfter && (object.LastModified?.getTime() ?? 0) <= options.createdAfter.getTime()) continue;
      entries.push({ bucket, encodedKey: encodeEventKey(key) });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return entries;
}
