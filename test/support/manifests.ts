/** Reading what a render committed, for the tests: the v2 manifest at a key, and its rendered pages. */
import type { S3Client } from '@aws-sdk/client-s3';
import { isLegacy, isPageFailure, parseManifest, type Manifest, type ManifestPage } from '../../lib/job/manifest.js';
import { getText } from './s3.js';

/** The schema v2 manifest at `key`; throws if there is none or it is not valid v2. */
export async function readV2Manifest(s3: S3Client, bucket: string, key: string): Promise<Manifest> {
  const manifest = parseManifest(await getText(s3, bucket, key));
  if (!manifest || isLegacy(manifest)) throw new Error(`no valid v2 manifest at ${key}`);
  return manifest;
}

/** The manifest's pages that were rendered (not the failed ones). */
export function renderedPages(manifest: Manifest): ManifestPage[] {
  return manifest.pages.filter((p): p is ManifestPage => !isPageFailure(p));
}
