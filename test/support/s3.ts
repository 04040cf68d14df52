/** Helpers for tests against the real local S3 server started by global-setup.ts. */
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../lib/config/env.js';
import { createS3Client } from '../../lib/s3/client.js';

import { CORPUS_DIR } from '../../tools/corpus.js';

/** The corpus folder, with a trailing slash (tests join file names onto it). */
export const CORPUS = CORPUS_DIR.endsWith('/') ? CORPUS_DIR : `${CORPUS_DIR}/`;

export function s3Endpoint(): string {
  return inject('s3Endpoint');
}

/** Empties the server: every test starts from no buckets. */
export async function resetS3(): Promise<void> {
  const response = await fetch(`${s3Endpoint()}/moto-api/reset`, { method: 'POST' });
  if (!response.ok) throw new Error(`moto reset failed: HTTP ${response.status}`);
}

/** A configuration as the function would load it, pointed at the local server. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ S3_ENDPOINT: s3Endpoint(), ...env });
}

export function testS3Client(config: Config = testConfig()): S3Client {
  return createS3Client(config);
}

export async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

export async function putObject(s3: S3Client, bucket: string, key: string, body: Uint8Array | string): Promise<{ etag: string; versionId?: string }> {
  const result = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  return { etag: (result.ETag ?? '').replace(/"/g, ''), ...(result.VersionId ? { versionId: result.VersionId } : {}) };
}

export async function getText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return result.Body!.transformToString();
}

export async function getBytes(s3: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return result.Body!.transformToByteArray();
}

export async function listKeys(s3: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}
