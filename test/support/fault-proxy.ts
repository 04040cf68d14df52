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

import type { Fault } from '../../tools/fault-proxy.js';
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

/**
 * SQS's answer to a throttled call in its JSON protocol (the SDK's default for SQS): 400 with
 * the error's shape in __type, and the query-compatible code in x-amzn-query-error.
 */
export const SQS_THROTTLED: Fault = {
  kind: 'response',
  status: 400,
  headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': 'RequestThrottled;Sender', 'x-amzn-requestid': '00000000-0000-0000-0000-000000000000' },
  body: JSON.stringify({ __type: 'com.amazonaws.sqs#RequestThrottled', message: 'Request is throttled.' }),
};
