/**
 * manifest.json in S3: read with its etag, and replaced only by compare-and-swap (If-Match on
 * the etag read, or If-None-Match: * where there was none). Shared by the render and reprocess
 * functions.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parseManifest, type Manifest, type StoredManifest } from '../job/manifest.js';
import { isNotFound, isPreconditionFailed } from './errors.js';
import { MANIFEST_FILE, type OutputLocation } from './layout.js';

export interface ManifestRead {
  /** Null when there is none, or it is not a manifest this code recognises. */
  manifest: StoredManifest | null;
  /** The object's etag, for the compare-and-swap; undefined when there is no object at all. */
  etag: string | undefined;
}

export function manifestKey(out: OutputLocation): string {
  return out.prefix + MANIFEST_FILE;
}

export async function readManifest(s3: S3Client, out: OutputLocation): Promise<ManifestRead> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: out.bucket, Key: manifestKey(out) }));
    return { manifest: parseManifest(await response.Body!.transformToString()), etag: response.ETag };
  } catch (err) {
    if (isNotFound(err)) return { manifest: null, etag: undefined };
    throw err;
  }
}

/**
 * Writes `manifest` if the stored one is still the one read (`expectedEtag`; undefined: there
 * was none), and resolves to the new etag; null when another writer got there first: re-read
 * and decide. The race is lost in three spellings: 412 (the etag changed), 409 (a concurrent
 * conditional write), and 404 on an If-Match, when the manifest read was deleted meanwhile (S3
 * answers NoSuchKey; so does moto 5.2). Thrown, the 404 would be a transient error, and the
 * message would wait out the queue's visibility timeout (90 minutes) for a redelivery.
 */
export async function commitManifest(s3: S3Client, out: OutputLocation, manifest: Manifest, expectedEtag: string | undefined): Promise<string | null> {
  try {
    const response = await s3.send(
      new PutObjectCommand({
        Bucket: out.bucket,
        Key: manifestKey(out),
        Body: `${JSON.stringify(manifest, null, 2)}\n`,
        ContentType: 'application/json',
        CacheControl: 'no-cache',
        Metadata: { 'source-etag': manifest.source.etag, generation: manifest.generation, status: manifest.status },
        ...(expectedEtag === undefined ? { IfNoneMatch: '*' } : { IfMatch: expectedEtag }),
      }),
    );
    return response.ETag ?? '';
  } catch (err) {
    if (isPreconditionFailed(err) || (expectedEtag !== undefined && isNotFound(err))) return null;
    throw err;
  }
}
