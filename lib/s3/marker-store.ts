/**
 * The completion event's marker (docs/contract.md, "Completion events"): <generation>/announced.json,
 * written after PutEvents took the event, holding the event's renderId. A message that finds a
 * final render committed reads it: the same renderId means the event went; anything else (no
 * marker, another commit's id) means it is sent again. It lives in the generation's folder, so
 * the clean-up and a superseded render's discard remove it with the generation.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isLegacy } from '../job/manifest.js';
import { isNotFound } from './errors.js';
import { announcedKey, type OutputLocation } from './layout.js';
import { readManifest } from './manifest-store.js';

/** The renderId the marker holds, or undefined when there is none (or it is not ours). */
export async function readMarker(s3: S3Client, out: OutputLocation, generation: string): Promise<string | undefined> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: out.bucket, Key: announcedKey(out, generation) }));
    const value = JSON.parse(await response.Body!.transformToString()) as { renderId?: unknown };
    return typeof value?.renderId === 'string' ? value.renderId : undefined;
  } catch (err) {
    if (isNotFound(err) || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/**
 * Writes the marker, then makes sure it was not written into a generation that is no longer the
 * committed one: a newer render whose clean-up listed the prefix before the marker existed had
 * committed its manifest before that listing, so this read sees it, and the marker goes (it
 * would otherwise stay for good, as an output of no current render).
 */
export async function writeMarker(s3: S3Client, out: OutputLocation, generation: string, renderId: string): Promise<void> {
  const key = announcedKey(out, generation);
  await s3.send(new PutObjectCommand({ Bucket: out.bucket, Key: key, Body: JSON.stringify({ renderId, at: new Date().toISOString() }), ContentType: 'application/json' }));
  const { manifest } = await readManifest(s3, out);
  if (!manifest || isLegacy(manifest) || manifest.generation !== generation) await s3.send(new DeleteObjectCommand({ Bucket: out.bucket, Key: key }));
}
