/**
 * The source object: what is current under its key, and its bytes streamed to a local file,
 * pinned to the etag that was checked (If-Match), so a key overwritten meanwhile is never
 * rendered half old, half new.
 */
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isNotFound } from './errors.js';

/** An etag as manifests record it: S3 answers it in quotes. */
export function plainEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/"/g, '');
}

export interface SourceObject {
  /** Without quotes, as manifests record it. */
  etag: string;
  versionId?: string;
  size: number;
  /** User metadata (x-amz-meta-*), keys lowercase: per-object render options live here. */
  metadata: Record<string, string>;
  /** Epoch ms, when S3 says (the batch task leaves recent uploads to their own events). */
  lastModified?: number;
}

/** The object now under the key, or undefined when there is none. */
export async function headCurrent(s3: S3Client, bucket: string, key: string): Promise<SourceObject | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return {
      etag: plainEtag(head.ETag),
      ...(head.VersionId ? { versionId: head.VersionId } : {}),
      size: head.ContentLength ?? 0,
      metadata: head.Metadata ?? {},
      ...(head.LastModified ? { lastModified: head.LastModified.getTime() } : {}),
    };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Streams exactly `object`'s bytes to `filePath`; a 412 means the key was overwritten meanwhile. */
export async function downloadTo(s3: S3Client, bucket: string, key: string, object: SourceObject, filePath: string): Promise<void> {
  const response = await s3.send(
    new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      ...(object.versionId ? { VersionId: object.versionId } : {}),
      ...(object.etag ? { IfMatch: `"${object.etag}"` } : {}),
    }),
  );
  await pipeline(response.Body as Readable, createWriteStream(filePath, { mode: 0o600 }));
}
