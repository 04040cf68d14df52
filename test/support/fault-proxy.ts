/**
 * A loopback HTTP proxy in front of the test S3 server that injects faults into chosen
 * requests: the bytes still go over real HTTP, and the SDK sees what it would see in AWS.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { createS3Client } from '../../lib/s3/client.js';
import { s3Endpoint } from './s3.js';

export type Fault =
  /** An S3 error response with this status and code (503 SlowDown, 500 InternalError…). */
  | { kind: 'status'; status: number; code: string }
  /** The connection is destroyed before any response. */
  | { kind: 'reset' }
  /** Any other answer, byte for byte (an SQS JSON-protocol error: its status, headers and body). */
  | { kind: 'response'; status: number; headers: Record<string, string>; body: string };

export interface FaultRule {
  method: string;
  /** Matched against the decoded path (path-style: /bucket/key). */
  path: RegExp;
  /** When set, the request's X-Amz-Target must be this (JSON protocols such as SQS's post every call to "/"). */
  target?: string;
  /** Which matching requests fail, 1-based (e.g. [3] fails only the third). */
  occurrences: number[];
  fault: Fault;
}

export interface FaultProxy {
  endpoint: string;
  /** Requests seen, as "METHOD /path", in order. */
  log: string[];
  setRules(rules: FaultRule[]): void;
  /** How many requests each rule has failed. */
  injected(): number;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  let rules: { rule: FaultRule; seen: number }[] = [];
  let injected = 0;
  const log: string[] = [];

  const server: Server = createServer((req: IncomingMessage, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    log.push(`${req.method} ${path}`);
    for (const entry of rules) {
      if (entry.rule.method !== req.method || !entry.rule.path.test(path)) continue;
      if (entry.rule.target !== undefined && req.headers['x-amz-target'] !== entry.rule.target) continue;
      entry.seen++;
      if (!entry.rule.occurrences.includes(entry.seen)) continue;
      injected++;
      const { fault } = entry.rule;
      // Drain the request body first, as a real server would have read it.
      req.resume();
      req.on('end', () => {
        if (fault.kind === 'reset') {
          req.socket.destroy();
          return;
        }
        if (fault.kind === 'response') {
          res.writeHead(fault.status, { ...fault.headers, 'content-length': Buffer.byteLength(fault.body) });
          res.end(fault.body);
          return;
        }
        const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code}</Code><Message>injected by the test proxy</Message></Error>`;
        res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamResponse) => {
        res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
        upstreamResponse.pipe(res);
      },
    );
    forward.on('error', () => req.socket.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    log,
    setRules(next) {
      rules = next.map((rule) => ({ rule, seen: 0 }));
      injected = 0;
    },
    injected: () => injected,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * For a describe block: one proxy in front of the test S3 server for the block, its rules
 * cleared before each test, and an S3 client whose requests go through it.
 */
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
    s3 = createS3Client({ s3Endpoint: proxy!.endpoint });
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
