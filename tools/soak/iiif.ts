/**
 * IIIF during the soak (issue 29, DESIGN §14): the page requester (pages.ts) asks the same warm
 * page function for info.json, tiles at every level of a page's pyramid (turned, mirrored, gray,
 * bitonal; jpg, png, webp), a base URI's 303 and a document's Presentation manifest, as a viewer
 * does: info.json first, then tiles from what it said. After a re-upload the last tile asked is
 * asked again with If-None-Match of its ETag. Every answer is judged once the run's uploads
 * are known, against every source that was current at some moment of the request:
 *
 * - a status the spec allows (200, 303, 304, a 302 to a large answer; an error of the document
 *   or the moment: 404 PAGE_OUT_OF_RANGE, 409 SOURCE_CHANGED, 422 with the document's code, 503
 *   OUT_OF_TIME), errors with the JSON body `{error: {status, code, message}}`, CORS on each;
 * - info.json's width and height are the page's full image at IIIF_DPI, from the page's box as
 *   MuPDF gives it (fullImageOf: the handler's own rule), and its id the identifier's;
 * - a tile decodes whole, in the format asked, to the size its request resolves to
 *   (resolveImage: the handler's own rule) on that full image;
 * - a tile is of a current source: a cache hit needs an earlier answer of the same request
 *   while the same source was current (this requester is the only one drawing IIIF images),
 *   and a 304 or an unchanged ETag across a re-upload is a stale answer;
 * - a manifest has a canvas per page of a current source, each sized as the page's full image.
 */
import type { PageBox } from '../../lib/engine/options.js';
import { fullImageOf } from '../../lib/engine/options.js';
import { DOCUMENT_ERROR_CODES } from '../../lib/engine/errors.js';
import { parseImageRequest, resolveImage, rotatedSize, sizeLimitsOf } from '../../lib/iiif/image-request.js';
import { identifierOf } from '../../lib/iiif/route.js';
import { makeToken } from '../../lib/iiif/token.js';
import type { PageResult } from '../../lib/on-demand/handler.js';
import { imageSize, notWhole } from './check.js';
import type { Prng } from './prng.js';

/** One upload of a key, as the soak made it: its etag is current from (about) `startedAt` until the next upload's `doneAt`. */
export interface UploadRecord {
  etag: string;
  startedAt: number;
  doneAt: number;
}

/** The etags of `key` that were current at some moment between `startedAt` and `endedAt`. */
export function currentDuring(list: readonly UploadRecord[], startedAt: number, endedAt: number): string[] {
  return list.filter((u, i) => u.startedAt <= endedAt && (i === list.length - 1 || list[i + 1]!.doneAt >= startedAt)).map((u) => u.etag);
}

export type IiifAsk =
  | { kind: 'info' | 'base'; key: string; page: number }
  | { kind: 'manifest'; key: string }
  | { kind: 'image'; key: string; page: number; segments: [string, string, string, string]; ifNoneMatch?: { etag: string; answer: number } };

export interface IiifAnswer {
  ask: IiifAsk;
  path: string;
  startedAt: number;
  endedAt: number;
  status: number;
  headers: Record<string, string>;
  /** The body's bytes (base64 bodies decoded). */
  body: Buffer;
}

/** What the soak's IIIF checks need of the page function's settings and of the run's documents. */
export interface IiifSetting {
  /** IIIF_BASE_URL as the function is given it. */
  baseUrl: string;
  /** IIIF_DPI and MAX_PAGE_PIXELS as the function loads them (lib/config). */
  dpi: number;
  maxPagePixels: number;
  /** In signed mode: the secret that makes document tokens. */
  secret?: string;
  /** Every page's box (MuPDF's bounds) of the bytes the soak uploaded with this etag; undefined when MuPDF does not open them. */
  boxesOf(etag: string): PageBox[] | undefined;
}

/** Statuses that are answers about the document or the moment (the page URL's, and IIIF's own). */
const ERROR_CODES: Record<number, readonly string[]> = {
  404: ['PAGE_OUT_OF_RANGE'],
  409: ['SOURCE_CHANGED'],
  422: [...DOCUMENT_ERROR_CODES, 'TOO_LARGE', 'PAGE_TOO_LARGE'],
  503: ['OUT_OF_TIME'],
};
const TYPE_OF: Record<string, string> = { jpg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };

/** The requests a viewer makes, drawn from the seed, and the answers kept for the checks. */
export class IiifRequests {
  readonly answers: IiifAnswer[] = [];
  /** What info.json last said of a page (`key;page`): a viewer's tiles come from it. */
  private readonly infos = new Map<string, { width: number; height: number; scaleFactors: number[]; sizes: { width: number; height: number }[] }>();
  private readonly tokens = new Map<string, string>();
  private readonly lastImage = new Map<string, number>();

  constructor(
    private readonly setting: IiifSetting,
    private readonly rng: Prng,
  ) {}

  /** The path prefix of `key`'s IIIF URLs: a document token in signed mode (valid for the run). */
  prefix(key: string): string {
    if (this.setting.secret === undefined) return '/iiif/3/';
    let token = this.tokens.get(key);
    if (!token) this.tokens.set(key, (token = makeToken(this.setting.secret, key, Math.floor(Date.now() / 1000) + 6 * 3600)));
    return `/iiif/3/~${token}/`;
  }

  path(ask: IiifAsk): string {
    const id = ask.kind === 'manifest' ? encodeURIComponent(ask.key) : identifierOf(ask.key, ask.page);
    const tail = ask.kind === 'image' ? `/${ask.segments.join('/')}` : ask.kind === 'info' ? '/info.json' : ask.kind === 'base' ? '' : '/manifest';
    return `${this.prefix(ask.key)}${id}${tail}`;
  }

  /** A viewer's next request of `key`: info.json until it knows the page, then mostly tiles. */
  draw(key: string): IiifAsk {
    const rng = this.rng;
    // Mostly a page whose info.json came back (a viewer zooms into what it has), else any of the first three.
    const known = [...this.infos.keys()].filter((k) => k.startsWith(`${key};`)).map((k) => Number(k.slice(key.length + 1)));
    const page = known.length > 0 && rng.chance(0.75) ? rng.pick(known) : rng.chance(0.6) ? 1 : rng.int(2, 3);
    const info = this.infos.get(`${key};${page}`);
    if (!info) return rng.chance(0.15) ? { kind: 'manifest', key } : { kind: 'info', key, page };
    const r = rng.next();
    if (r < 0.1) return { kind: 'info', key, page };
    if (r < 0.17) return { kind: 'base', key, page };
    if (r < 0.3) return { kind: 'manifest', key };
    const rotation = rng.pick(['0', '0', '90', '180', '270', '!0', '!90', '!270']);
    const quality = rng.pick(['default', 'default', 'color', 'gray', 'bitonal']);
    const format = rng.pick(['jpg', 'png', 'webp']);
    if (rng.chance(0.2) || info.sizes.length === 0) {
      // A whole-page size from info.json's sizes (a thumbnail, the first zoom level).
      const size = info.sizes.length > 0 ? rng.pick(info.sizes) : undefined;
      return { kind: 'image', key, page, segments: ['full', size ? `${size.width},${size.height}` : 'max', rotation, `${quality}.${format}`] };
    }
    // A 512 px tile of a level, as OpenSeadragon asks it: the region in full-image pixels, the size its width at that level.
    const scale = rng.pick(info.scaleFactors);
    const span = 512 * scale;
    const x = rng.int(0, Math.ceil(info.width / span) - 1) * span;
    const y = rng.int(0, Math.ceil(info.height / span) - 1) * span;
    const w = Math.min(span, info.width - x);
    const h = Math.min(span, info.height - y);
    return { kind: 'image', key, page, segments: [`${x},${y},${w},${h}`, `${Math.ceil(w / scale)},`, rotation, `${quality}.${format}`] };
  }

  /** After a re-upload: the last image asked of `key`, again, with If-None-Match of the ETag it was answered with. */
  repeatOf(key: string): IiifAsk | undefined {
    const at = this.lastImage.get(key);
    if (at === undefined) return undefined;
    const before = this.answers[at]!;
    if (before.ask.kind !== 'image') return undefined;
    const etag = before.headers['etag'];
    return { ...before.ask, ...(before.status === 200 && etag ? { ifNoneMatch: { etag, answer: at } } : {}) };
  }

  record(answer: IiifAnswer): void {
    const { ask } = answer;
    if (ask.kind === 'image') this.lastImage.set(ask.key, this.answers.length);
    if (ask.kind === 'info' && answer.status === 200) {
      try {
        const info = JSON.parse(answer.body.toString('utf8')) as { width: number; height: number; tiles?: { scaleFactors?: number[] }[]; sizes?: { width: number; height: number }[] };
        this.infos.set(`${ask.key};${ask.page}`, { width: info.width, height: info.height, scaleFactors: info.tiles?.[0]?.scaleFactors ?? [1], sizes: info.sizes ?? [] });
      } catch {
        // Judged by problems().
      }
    }
    this.answers.push(answer);
  }

  /** The full image of `page` of the bytes with this etag: undefined when they do not open, null past the last page, or too large to draw. */
  private fullOf(etag: string, page: number): { width: number; height: number } | undefined | null {
    const boxes = this.setting.boxesOf(etag);
    if (!boxes) return undefined;
    const box = boxes[page - 1];
    if (!box) return null;
    return fullImageOf(box, this.setting.dpi, this.setting.maxPagePixels);
  }

  problems(uploads: ReadonlyMap<string, readonly UploadRecord[]>): Map<string, string[]> {
    const found = new Map<string, string[]>();
    const candidatesOf = (a: IiifAnswer): string[] => currentDuring(uploads.get(a.ask.key) ?? [], a.startedAt, a.endedAt);
    this.answers.forEach((a, index) => {
      const problem = (text: string): void => void found.set(a.ask.key, [...(found.get(a.ask.key) ?? []), `GET ${a.path}: ${text}`]);
      const candidates = candidatesOf(a);
      if (a.headers['access-control-allow-origin'] !== '*') problem(`answered ${a.status} without Access-Control-Allow-Origin`);
      if (a.status >= 400) {
        let error: { status?: unknown; code?: unknown; message?: unknown } | undefined;
        try {
          error = (JSON.parse(a.body.toString('utf8')) as { error?: typeof error }).error;
        } catch {
          // Reported below.
        }
        if (!error || error.status !== a.status || typeof error.code !== 'string' || typeof error.message !== 'string' || a.headers['content-type'] !== 'application/json') {
          problem(`answered ${a.status} without the JSON error body: ${a.headers['content-type']} ${a.body.toString('utf8').slice(0, 120)}`);
          return;
        }
        if (!(ERROR_CODES[a.status] ?? []).includes(error.code)) {
          problem(`answered ${a.status} ${error.code}: ${String(error.message).slice(0, 160)}`);
          return;
        }
        if (a.ask.kind !== 'manifest' && error.code === 'PAGE_OUT_OF_RANGE' && !candidates.some((e) => this.fullOf(e, (a.ask as { page: number }).page) === null)) {
          problem(`answered 404 PAGE_OUT_OF_RANGE, yet page ${(a.ask as { page: number }).page} exists in every source current then`);
        }
        return;
      }
      const identifier = a.ask.kind === 'manifest' ? '' : identifierOf(a.ask.key, a.ask.page);
      const id = `${this.setting.baseUrl}${this.prefix(a.ask.key)}${identifier}`;
      switch (a.ask.kind) {
        case 'base':
          if (a.status !== 303 || a.headers['location'] !== `${id}/info.json`) problem(`answered ${a.status} to ${a.headers['location']}, expected a 303 to ${id}/info.json`);
          return;
        case 'info': {
          if (a.status !== 200) return problem(`answered ${a.status}`);
          const info = jsonOf(a.body) as { id?: string; width?: number; height?: number } | undefined;
          if (!info) return problem(`answered 200 with no JSON: ${a.body.toString('utf8').slice(0, 120)}`);
          if (info.id !== id) problem(`info.json's id is ${info.id}, expected ${id}`);
          const fulls = candidates.map((e) => this.fullOf(e, a.ask.kind === 'info' ? a.ask.page : 1));
          if (!fulls.some((f) => f && f.width === info.width && f.height === info.height)) {
            problem(`info.json says ${info.width}x${info.height}; the page's full image at IIIF_DPI ${this.setting.dpi} is ${fulls.map((f) => (f ? `${f.width}x${f.height}` : String(f))).join(' or ')} (source ${candidates.join(' or ')})`);
          }
          return;
        }
        case 'manifest': {
          if (a.status === 302) return;
          if (a.status !== 200) return problem(`answered ${a.status}`);
          const manifest = jsonOf(a.body) as { items?: { width?: number; height?: number }[] } | undefined;
          if (!manifest) return problem(`answered 200 with no JSON: ${a.body.toString('utf8').slice(0, 120)}`);
          const canvases = manifest.items ?? [];
          const right = candidates.some((e) => {
            const boxes = this.setting.boxesOf(e);
            return boxes !== undefined && boxes.length === canvases.length && canvases.every((c, i) => {
              const full = this.fullOf(e, i + 1);
              return full && full.width === c.width && full.height === c.height;
            });
          });
          if (!right) problem(`the manifest's ${canvases.length} canvases are not the pages of source ${candidates.join(' or ')} (${candidates.map((e) => this.setting.boxesOf(e)?.length ?? 'unopened').join(' or ')} pages)`);
          return;
        }
        case 'image':
          return this.imageProblems(a, index, candidates, candidatesOf, problem);
      }
    });
    return found;
  }

  private imageProblems(a: IiifAnswer, index: number, candidates: string[], candidatesOf: (a: IiifAnswer) => string[], problem: (text: string) => void): void {
    const ask = a.ask as Extract<IiifAsk, { kind: 'image' }>;
    const sharesSource = (b: IiifAnswer): boolean => candidatesOf(b).some((e) => candidates.includes(e));
    if (a.status === 304) {
      const before = ask.ifNoneMatch ? this.answers[ask.ifNoneMatch.answer]! : undefined;
      if (!before) problem('answered 304 to a request without If-None-Match');
      else if (!sharesSource(before)) problem(`answered 304 to the ETag of the image of source ${candidatesOf(before).join(' or ')}, while only ${candidates.join(' or ')} was current: a stale image`);
      return;
    }
    if (a.status === 302) return;
    if (a.status !== 200) return problem(`answered ${a.status}`);
    if (ask.ifNoneMatch && a.headers['etag'] === ask.ifNoneMatch.etag && !sharesSource(this.answers[ask.ifNoneMatch.answer]!)) {
      problem(`the ETag ${a.headers['etag']} did not change after the re-upload (${candidatesOf(this.answers[ask.ifNoneMatch.answer]!).join(' or ')} then, ${candidates.join(' or ')} now)`);
    }
    if (a.headers['x-page-cache'] === 'hit') {
      // Any earlier answer: one that crashed after storing its image may have left it.
      const same = this.answers.slice(0, index).filter((b) => b.ask.kind === 'image' && b.ask.key === ask.key && b.ask.page === ask.page && b.ask.segments.join('/') === ask.segments.join('/'));
      if (!same.some(sharesSource)) problem(`a cache hit, yet no earlier request of this image ran while its source (${candidates.join(' or ')}) was current: the image of a replaced source`);
    }
    const torn = notWhole(a.body);
    if (torn) return problem(`not one whole image: ${torn}`);
    const size = imageSize(a.body)!;
    const format = ask.segments[3].split('.').pop()!;
    if (size.type !== TYPE_OF[format] || a.headers['content-type'] !== TYPE_OF[format]) problem(`asked ${format}, got ${size.type} as ${a.headers['content-type']}`);
    const expected = candidates.flatMap((e) => {
      const full = this.fullOf(e, ask.page);
      if (!full) return [];
      try {
        return [rotatedSize(resolveImage(parseImageRequest(...ask.segments), full, sizeLimitsOf(full, this.setting.maxPagePixels)))];
      } catch {
        return [];
      }
    });
    if (!expected.some((s) => s.width === size.width && s.height === size.height)) {
      problem(`the image is ${size.width}x${size.height}; the request resolves to ${expected.map((s) => `${s.width}x${s.height}`).join(' or ') || 'nothing'} on source ${candidates.join(' or ')}`);
    }
  }

  figures(): { requests: number; byKind: Record<string, number>; byStatus: Record<string, number> } {
    const byKind: Record<string, number> = {};
    const byStatus: Record<string, number> = {};
    for (const a of this.answers) {
      const kind = a.ask.kind === 'image' ? (a.ask.ifNoneMatch ? 'image again' : a.ask.segments[0] === 'full' ? 'size' : 'tile') : a.ask.kind;
      byKind[kind] = (byKind[kind] ?? 0) + 1;
      byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    }
    return { requests: this.answers.length, byKind, byStatus };
  }
}

function jsonOf(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** A Function URL answer as the checks read it. */
export function iiifAnswerOf(ask: IiifAsk, path: string, startedAt: number, result: PageResult | undefined, crash?: string): IiifAnswer {
  const headers = Object.fromEntries(Object.entries(result?.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const body = result ? (result.isBase64Encoded ? Buffer.from(String(result.body ?? ''), 'base64') : Buffer.from(String(result.body ?? ''))) : Buffer.from(JSON.stringify({ crash }));
  return { ask, path, startedAt, endedAt: Date.now(), status: result ? (result.statusCode ?? 200) : 502, headers, body };
}
