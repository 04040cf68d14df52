/**
 * The PDFs under a prefix, one ListObjectsV2 page at a time: at most the page being consumed
 * and the one being fetched are held, whatever the size of the bucket.
 */
import { ListObjectsV2Command, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/env.js';
import { skipReason } from '../s3/layout.js';
import { plainEtag } from '../s3/source.js';

export interface ListedPdf {
  key: string;
  /** Without quotes, as manifests record it. */
  etag: string;
  size: number;
  /** Epoch ms. */
  lastModified: number;
}

/** S3's largest page. */
export const MAX_PAGE_SIZE = 1000;

export async function* listPdfs(
  s3: S3Client,
  bucket: string,
  prefix: string,
  config: Pick<Config, 'inputPrefix'>,
  pageSize = MAX_PAGE_SIZE,
  /** List only keys after this one (where an earlier run stopped: checkpoint.ts). */
  startAfter?: string,
): AsyncGenerator<ListedPdf, void, undefined> {
  const fetchPage = (token: string | undefined): Promise<ListObjectsV2CommandOutput> =>
    s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: pageSize, ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}) }));
  let pending: Promise<ListObjectsV2CommandOutput> | undefined = fetchPage(undefined);
  while (pending) {
    const page: ListObjectsV2CommandOutput = await pending;
    const token = page.IsTruncated ? page.NextContinuationToken : undefined;
    // Fetch the next page while this one is consumed. If the consumer stops early, its
    // rejection (if any) is dropped rather than left unhandled.
    pending = token ? fetchPage(token) : undefined;
    pending?.catch(() => undefined);
    for (const object of page.Contents ?? []) {
      if (!object.Key || skipReason(object.Key, config)) continue;
      yield { key: object.Key, etag: plainEtag(object.ETag), size: object.Size ?? 0, lastModified: object.LastModified?.getTime() ?? 0 };
    }
  }
}
