/** Reading what S3 holds about a render, shared by the render and reprocess functions. */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parseManifest, type Manifest } from '../job/manifest.js';
import { MANIFEST_FILE, type OutputLocation } from './layout.js';

/** S3's "no such object" in its several spellings (GET, HEAD, a missing version). */
export function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchVersion' || status === 404;
}

/** The manifest under an output prefix, or null when there is none or it is not a valid v1 manifest. */
export async function readManifest(s3: S3Client, out: OutputLocation): Promise<Manifest | null> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: out.bucket, Key: out.prefix + MANIFEST_FILE }));
    return parseManifest(await response.Body!.transformToString());
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}
