/**
 * The loopback fault proxy (tools/fault-proxy.ts) for a describe block: one proxy in front of
 * the test S3 server for the block, its rules cleared before each test, and an S3 client whose
 * requests go through it.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { everyService } from '../../lib/aws/endpoint.js';
import { createS3Client } from '../../lib/s3/client.js';
import { startFaultProxy, type FaultProxy } from '../../tools/fault-proxy.js';
import { s3Endpoint } from './s3.js';

export type { Fault, FaultProxy, FaultRule } from '../../tools/fault-proxy.js';

export function useFaultProxy(): { readonly proxy: FaultProxy; readonly s3: S3Client } {
  let proxy: FaultProxy | undefined;
  let s3: S3Client | undefined;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3Endpoint());
  });
  afterAll(async () => {
    await proxy?.close();
  });
  beforeEach(() => {
    proxy!.setRules([]);
    proxy!.setDecider(undefined);
    s3 = createS3Client({ endpoints: everyService(proxy!.endpoint) });
  });
  return {
    get proxy() {
      return proxy!;
    },
    get s3() {
      return s3!;
    },
  };
}
