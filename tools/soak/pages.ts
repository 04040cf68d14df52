/**
 * Pages on demand during the soak (issue 27): the built PageFunction in a warm Lambda container
 * (tools/lambda-container.ts), handed Function URL events (tools/function-url.ts) as
 * `npm run serve` and bench/on-demand.ts hand them, while the render function commits and keys
 * are uploaded again. Every 302 is followed to its presigned GET, and what it serves is checked
 * once the run's uploads are known: a whole image, of the page and size asked, in the format
 * asked, of a source that was current at some moment between the request's start and its end.
 * Half the requests are IIIF's, on the same container (tools/soak/iiif.ts). In signed mode
 * every page URL is signed and every IIIF URL carries a document token.
 */
import type { Writable } from 'node:stream';
import type { PageResult } from '../../lib/on-demand/handler.js';
import type { ImageFormat } from '../../lib/encode/formats.js';
import { IMAGE_FORMATS } from '../../lib/encode/formats.js';
import { functionUrlEvent } from '../function-url.js';
import { LambdaContainer } from '../lambda-container.js';
import { signedPath } from '../sign-url.js';
import type { Template, TemplateFunction } from '../template.js';
import { imageSize, notWhole } from './check.js';
import { currentDuring, iiifAnswerOf, IiifRequests, type IiifAsk, type IiifSetting, type UploadRecord } from './iiif.js';
import type { Prng } from './prng.js';

export type { UploadRecord } from './iiif.js';

interface PageQuery {
  page: number;
  width?: number;
  format?: ImageFormat;
}

interface Answer {
  key: string;
  query: PageQuery;
  path: string;
  startedAt: number;
  endedAt: number;
  status: number;
  code?: string;
  cache?: string;
  image?: { status: number; body: Buffer; contentType?: string; sourceEtag?: string; page?: string };
}

/** Statuses that are answers about the document or the moment, not faults of the function. */
const EXPECTED_ERRORS: Record<number, string[]> = {
  404: ['PAGE_OUT_OF_RANGE'],
  409: ['SOURCE_CHANGED'],
  422: ['ENCRYPTED', 'CORRUPT', 'NOT_PDF', 'NO_PAGES', 'EMPTY', 'TOO_LARGE'],
  503: ['OUT_OF_TIME'],
};

export interface PageRequester {
  /** Requests pages of uploaded keys until stop() (one at a time, as one warm container serves them). */
  run(): Promise<void>;
  /** Asks again what was last asked of `key` (after its re-upload: a hit of the old source must not be served). */
  repeat(key: string): void;
  /** Stops asking (the container stays up for iiifManifest until close()). */
  stop(): Promise<void>;
  close(): Promise<void>;
  /** The problems per key, judged against every upload the soak made. */
  problems(uploads: ReadonlyMap<string, readonly UploadRecord[]>, formatOf: (key: string) => ImageFormat): Map<string, string[]>;
  /** The IIIF answers' problems per key (tools/soak/iiif.ts). */
  iiifProblems(uploads: ReadonlyMap<string, readonly UploadRecord[]>): Map<string, string[]>;
  /** A document's IIIF Presentation manifest, asked now (after settle: the check of its canvases against the committed manifest). */
  iiifManifest(key: string): Promise<{ status: number; headers: Record<string, string>; body: string }>;
  /** Figures: requests by status and by how they were served; IIIF requests by kind and status. */
  figures(): {
    requests: number;
    byStatus: Record<string, number>;
    byCache: Record<string, number>;
    formats: Record<string, number>;
    iiif: { requests: number; byKind: Record<string, number>; byStatus: Record<string, number> };
  };
}

export async function startPageRequester(options: {
  template: Template;
  fn: TemplateFunction;
  artifactDir: string;
  env: Record<string, string>;
  logs: Writable;
  rng: Prng;
  /** Keys uploaded so far. */
  keys: () => readonly string[];
  choose: (line: string) => void;
  /** Requests at most (the drain after the uploads can be long: a page request there adds CPU, not cover). */
  maxRequests: number;
  /** IIIF's settings and the run's documents (tools/soak/iiif.ts); `secret` signs page URLs too. */
  iiif: IiifSetting;
}): Promise<PageRequester> {
  const { container, initError } = await LambdaContainer.start(options.template, options.fn, { artifactDir: options.artifactDir, extraEnv: options.env, logs: options.logs });
  if (initError) throw new Error(`the page function did not start: ${JSON.stringify(initError.payload)}`);
  const answers: Answer[] = [];
  const last = new Map<string, PageQuery>();
  const repeats: string[] = [];
  const iiif = new IiifRequests(options.iiif, options.rng.fork('iiif'));
  const secret = options.iiif.secret;
  let stopped = false;
  let running: Promise<void> | undefined;

  const ask = async (key: string, query: PageQuery): Promise<void> => {
    const params: [string, string][] = [['page', String(query.page)], ...(query.width ? [['width', String(query.width)] as [string, string]] : []), ...(query.format ? [['format', query.format] as [string, string]] : [])];
    const path = secret !== undefined ? signedPath(secret, key, params, Math.floor(Date.now() / 1000) + 3600) : `/${encodeURIComponent(key)}?${new URLSearchParams(params)}`;
    last.set(key, query);
    const startedAt = Date.now();
    const outcome = await container.invoke(functionUrlEvent('GET', path));
    const answer: Answer = { key, query, path, startedAt, endedAt: 0, status: 502 };
    if (outcome.ok) {
      const result = outcome.payload as PageResult;
      answer.status = result.statusCode ?? 200;
      const headers = (result.headers ?? {}) as Record<string, string>;
      answer.cache = headers['x-page-cache'];
      if (answer.status === 302) {
        const response = await fetch(headers['location']!);
        answer.image = {
          status: response.status,
          body: Buffer.from(await response.arrayBuffer()),
          ...(response.headers.get('content-type') ? { contentType: response.headers.get('content-type')! } : {}),
          ...(response.headers.get('x-amz-meta-source-etag') ? { sourceEtag: response.headers.get('x-amz-meta-source-etag')! } : {}),
          ...(response.headers.get('x-amz-meta-page') ? { page: response.headers.get('x-amz-meta-page')! } : {}),
        };
      } else {
        try {
          answer.code = (JSON.parse(String(result.body)) as { error?: { code?: string } }).error?.code;
        } catch {
          answer.code = 'UNPARSEABLE';
        }
      }
    } else answer.code = JSON.stringify(outcome.payload).slice(0, 160);
    answer.endedAt = Date.now();
    answers.push(answer);
    options.choose(`page request ${path}: ${answer.status}${answer.code ? ` ${answer.code}` : ''}${answer.cache ? ` (${answer.cache})` : ''}`);
  };

  const invokeIiif = async (path: string, headers: Record<string, string> = {}): Promise<{ result?: PageResult; crash?: string }> => {
    const outcome = await container.invoke(functionUrlEvent('GET', path, headers));
    return outcome.ok ? { result: outcome.payload as PageResult } : { crash: JSON.stringify(outcome.payload).slice(0, 160) };
  };
  const askIiif = async (request: IiifAsk): Promise<void> => {
    const path = iiif.path(request);
    const startedAt = Date.now();
    const { result, crash } = await invokeIiif(path, request.kind === 'image' && request.ifNoneMatch ? { 'if-none-match': request.ifNoneMatch.etag } : {});
    const answer = iiifAnswerOf(request, path, startedAt, result, crash);
    iiif.record(answer);
    options.choose(`iiif request ${path}${request.kind === 'image' && request.ifNoneMatch ? ` (If-None-Match ${request.ifNoneMatch.etag})` : ''}: ${answer.status}${answer.headers['x-page-cache'] ? ` (${answer.headers['x-page-cache']})` : ''}`);
  };

  const draw = (): PageQuery => {
    const rng = options.rng;
    // A third ask for nothing but the page: the function's own sizing, so the eager render's page can answer.
    // Page 1 half the time: most of the soak's documents are short.
    const page = rng.chance(0.5) ? 1 : rng.int(2, 3);
    if (rng.chance(1 / 3)) return { page };
    return { page, width: rng.pick([40, 64, 90]), ...(rng.chance(0.7) ? { format: rng.pick(IMAGE_FORMATS) } : {}) };
  };

  return {
    run() {
      running = (async () => {
        while (!stopped && answers.length + iiif.answers.length < options.maxRequests) {
          const again = repeats.shift();
          const keys = options.keys();
          if (again !== undefined) {
            if (last.has(again)) await ask(again, last.get(again)!);
            const image = iiif.repeatOf(again);
            if (image) await askIiif(image);
          } else if (keys.length > 0) {
            // Half IIIF: the viewer's requests, from the same container (tools/soak/iiif.ts).
            const key = options.rng.pick(keys);
            if (options.rng.chance(0.5)) await askIiif(iiif.draw(key));
            else await ask(key, draw());
          }
          await new Promise((r) => setTimeout(r, options.rng.int(200, 1200)));
        }
      })();
      return running;
    },
    repeat(key) {
      repeats.push(key);
    },
    async stop() {
      stopped = true;
      await running;
    },
    async close() {
      stopped = true;
      await running;
      await container.close();
    },
    iiifProblems(uploads) {
      return iiif.problems(uploads);
    },
    async iiifManifest(key) {
      const path = iiif.path({ kind: 'manifest', key });
      const { result, crash } = await invokeIiif(path);
      const answer = iiifAnswerOf({ kind: 'manifest', key }, path, Date.now(), result, crash);
      options.choose(`iiif request ${path} (after settle): ${answer.status}`);
      return { status: answer.status, headers: answer.headers, body: answer.body.toString('utf8') };
    },
    problems(uploads, formatOf) {
      const found = new Map<string, string[]>();
      const problem = (a: Answer, text: string): void => void found.set(a.key, [...(found.get(a.key) ?? []), `GET ${a.path}: ${text}`]);
      for (const a of answers) {
        if (a.status !== 302) {
          if (!(EXPECTED_ERRORS[a.status] ?? []).includes(a.code ?? '')) problem(a, `answered ${a.status} ${a.code ?? ''}`);
          continue;
        }
        const image = a.image!;
        if (image.status !== 200) {
          problem(a, `the 302's presigned GET answered ${image.status}`);
          continue;
        }
        const torn = notWhole(image.body);
        if (torn) problem(a, `the 302 leads to no whole image: ${torn}`);
        const size = imageSize(image.body);
        const format = a.query.format ?? formatOf(a.key);
        const type = format === 'jpeg' ? 'image/jpeg' : `image/${format}`;
        if (size && size.type !== type) problem(a, `asked ${format}, got ${size.type}`);
        if (image.contentType !== type) problem(a, `stored as ${image.contentType}, asked ${format}`);
        if (size && a.query.width !== undefined && size.width !== a.query.width) problem(a, `asked width ${a.query.width}, got ${size.width}x${size.height}`);
        if (image.page !== String(a.query.page)) problem(a, `asked page ${a.query.page}, the image is of page ${image.page}`);
        // Current at some moment of the request: uploaded (started) before it ended, not replaced before it began.
        const current = currentDuring(uploads.get(a.key) ?? [], a.startedAt, a.endedAt);
        if (!image.sourceEtag || !current.includes(image.sourceEtag)) {
          problem(a, `the image is of source etag ${image.sourceEtag}, the request (${a.cache}) ran while ${current.join(' or ')} was current`);
        }
      }
      return found;
    },
    figures() {
      const byStatus: Record<string, number> = {};
      const byCache: Record<string, number> = {};
      const formats: Record<string, number> = {};
      for (const a of answers) {
        byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
        if (a.cache) byCache[a.cache] = (byCache[a.cache] ?? 0) + 1;
        if (a.status === 302) formats[a.query.format ?? 'default'] = (formats[a.query.format ?? 'default'] ?? 0) + 1;
      }
      return { requests: answers.length, byStatus, byCache, formats, iiif: iiif.figures() };
    },
  };
}
