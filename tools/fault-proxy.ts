/**
 * A loopback HTTP proxy in front of an S3 server that injects faults into chosen requests: the
 * bytes still go over real HTTP, and the SDK sees what it would see in AWS. The tests set rules
 * (test/support/fault-proxy.ts); the soak (tools/soak/) decides request by request.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  /** An S3 error response with this status and code (503 SlowDown, 500 InternalError…). */
  | { kind: 'status'; status: number; code: string }
  /** The connection is destroyed before any response. */
  | { kind: 'reset' }
  /** Any other answer, byte for byte: a JSON-protocol error (SQS, EventBridge) with its headers, or a 200 that reports failed entries. */
  | { kind: 'response'; status: number; headers: Record<string, string>; body: string }
  /** The request reaches S3 and is applied, but the answer is lost (the connection is destroyed): the SDK retries it. */
  | { kind: 'lost-response' }
  /** The request waits this long before it is forwarded. */
  | { kind: 'delay'; ms: number }
  /** Forwarded; `after` runs once S3 has answered and before the answer is passed on (a crash right after S3 applied a write). */
  | { kind: 'after'; after: () => void | Promise<void> };

export interface FaultRule {
  method: string;
  /** Matched against the decoded path (path-style: /bucket/key). */
  path: RegExp;
  /** When set, the request's X-Amz-Target must be this (JSON protocols such as SQS's and EventBridge's post every call to "/"). */
  target?: string;
  /** Which matching requests fail, 1-based (e.g. [3] fails only the third). */
  occurrences: number[];
  fault: Fault;
}

/** What a request looks like to a decider. */
export interface ProxiedRequest {
  method: string;
  /** Decoded, path-style: /bucket/key. */
  path: string;
  /** The query string, without "?" (uploads, partNumber, list-type…). */
  query: string;
  headers: IncomingHttpHeaders;
}

/** Decides one request's fault (or none): the soak's seeded choices. Rules are tried first. */
export type Decider = (request: ProxiedRequest) => Fault | undefined;

export interface FaultProxy {
  endpoint: string;
  /** Requests seen, as "METHOD /path", in order. */
  log: string[];
  setRules(rules: FaultRule[]): void;
  setDecider(decider: Decider | undefined): void;
  /** How many requests each rule (or the decider) has failed. */
  injected(): number;
  close(): Promise<void>;
}

const errorBody = (code: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the fault proxy</Message></Error>`;

export async function startFaultProxy(target: string, options: { keepLog?: boolean } = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  let rules: { rule: FaultRule; seen: number }[] = [];
  let decider: Decider | undefined;
  let injected = 0;
  const log: string[] = [];
  const keepLog = options.keepLog ?? true;

  const forward = (req: IncomingMessage, res: import('node:http').ServerResponse, after?: Fault): void => {
    const upstreamRequest = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamResponse) => {
        if (after?.kind === 'lost-response') {
          upstreamResponse.resume();
          upstreamResponse.on('end', () => req.socket.destroy());
          return;
        }
        const pass = (): void => {
          res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
          upstreamResponse.pipe(res);
        };
        if (after?.kind === 'after') {
          // The answer is held (read whole, so S3 is done) while `after` runs.
          const chunks: Buffer[] = [];
          upstreamResponse.on('data', (c: Buffer) => chunks.push(c));
          upstreamResponse.on('end', () => {
            void Promise.resolve(after.after()).then(
              () => {
                if (req.socket.destroyed) return;
                res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
                res.end(Buffer.concat(chunks));
              },
              () => req.socket.destroy(),
            );
          });
          return;
        }
        pass();
      },
    );
    upstreamRequest.on('error', () => req.socket.destroy());
    req.pipe(upstreamRequest);
  };

  const server: Server = createServer((req: IncomingMessage, res) => {
    const [rawPath, query = ''] = (req.url ?? '/').split('?') as [string, string?];
    const path = decodeURIComponent(rawPath);
    if (keepLog) log.push(`${req.method} ${path}`);
    let fault: Fault | undefined;
    for (const entry of rules) {
      if (entry.rule.method !== req.method || !entry.rule.path.test(path)) continue;
      if (entry.rule.target !== undefined && req.headers['x-amz-target'] !== entry.rule.target) continue;
      entry.seen++;
      if (!entry.rule.occurrences.includes(entry.seen)) continue;
      fault = entry.rule.fault;
      break;
    }
    fault ??= decider?.({ method: req.method ?? 'GET', path, query, headers: req.headers });
    if (!fault) return forward(req, res);
    injected++;
    if (fault.kind === 'lost-response' || fault.kind === 'after') return forward(req, res, fault);
    if (fault.kind === 'delay') {
      // Paused, not drained: the body is forwarded once the delay is over.
      req.pause();
      setTimeout(() => forward(req, res), fault.ms);
      return;
    }
    const answer = fault;
    // Drain the request body first, as a real server would have read it.
    req.resume();
    req.on('end', () => {
      if (answer.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (answer.kind === 'response') {
        res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
        res.end(answer.body);
        return;
      }
      const body = errorBody(answer.code);
      res.writeHead(answer.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
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
    setDecider(next) {
      decider = next;
    },
    injected: () => injected,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
