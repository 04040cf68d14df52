/**
 * The IIIF routes of the page function, parsed from the Function URL's raw path:
 *
 *   /iiif/3/{identifier}                                   -> 303 to its info.json
 *   /iiif/3/{identifier}/info.json
 *   /iiif/3/{identifier}/{region}/{size}/{rotation}/{quality}.{format}
 *   /iiif/3/{url-encoded key}/manifest                     (Presentation 3.0)
 *   /iiif/3/{url-encoded key}/source.pdf                   -> 302 to the PDF (the manifest's rendering)
 *   /iiif/3/{identifier}/text.json                         -> 302 to the page's text, where the eager render wrote it
 *
 * each optionally with a document token first: /iiif/3/~{token}/… (signed mode). The identifier
 * is the URL-encoded source key with the page as Cantaloupe writes it, `incoming%2Fq3.pdf;3`
 * (page 1 when no `;N`). Any other shape is a 404: a slash left unescaped in an identifier
 * makes one (the IIIF validator's id_error_escapedslash).
 */
import { HttpError } from '../on-demand/errors.js';

export const IIIF_PREFIX = '/iiif/3/';
const MAX_PAGE = 1_000_000;

export type IiifRoute =
  | { kind: 'base'; key: string; page: number; identifier: string; token?: string }
  | { kind: 'info'; key: string; page: number; identifier: string; token?: string }
  | { kind: 'image'; key: string; page: number; identifier: string; token?: string; segments: [string, string, string, string] }
  | { kind: 'text'; key: string; page: number; identifier: string; token?: string }
  | { kind: 'manifest'; key: string; identifier: string; token?: string }
  | { kind: 'source'; key: string; identifier: string; token?: string };

export function isIiifPath(rawPath: string): boolean {
  return rawPath.startsWith(IIIF_PREFIX) || rawPath === IIIF_PREFIX.slice(0, -1);
}

const notFound = (message: string): HttpError => new HttpError(404, 'NOT_FOUND', message);

function decode(segment: string, what: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'INVALID_REQUEST', `the ${what} ${JSON.stringify(segment)} is not valid URL encoding`);
  }
}

/** The source key and page of an identifier (decoded first, so `%3B` splits as `;` does). */
export function parseIdentifier(raw: string): { key: string; page: number } {
  const decoded = decode(raw, 'identifier');
  const m = /^(.*);(\d{1,9})$/.exec(decoded);
  if (!m) return { key: decoded, page: 1 };
  const page = Number(m[2]);
  if (page < 1 || page > MAX_PAGE) throw notFound(`page ${m[2]} of identifier ${JSON.stringify(decoded)} does not exist: pages are numbered from 1`);
  return { key: m[1]!, page };
}

/** The identifier of a page, as info.json's id and the manifest write it: the key encoded whole, `;N` after it. */
export function identifierOf(key: string, page: number): string {
  return `${encodeURIComponent(key)};${page}`;
}

export function parseIiifRoute(rawPath: string): IiifRoute {
  if (!rawPath.startsWith(IIIF_PREFIX)) throw notFound(`no IIIF resource at ${JSON.stringify(rawPath)}: use ${IIIF_PREFIX}{identifier}/info.json`);
  const segments = rawPath.slice(IIIF_PREFIX.length).split('/');
  let token: string | undefined;
  if (segments[0]?.startsWith('~')) token = segments.shift()!.slice(1);
  const identifier = segments.shift() ?? '';
  if (identifier === '') throw notFound(`no identifier in ${JSON.stringify(rawPath)}: use ${IIIF_PREFIX}{identifier}/info.json`);
  const withToken = token !== undefined ? { token } : {};
  // A trailing slash after the identifier is the base URI too.
  if (segments.length === 0 || (segments.length === 1 && segments[0] === '')) return { kind: 'base', identifier, ...parseIdentifier(identifier), ...withToken };
  if (segments.length === 1 && segments[0] === 'info.json') return { kind: 'info', identifier, ...parseIdentifier(identifier), ...withToken };
  if (segments.length === 1 && segments[0] === 'manifest') return { kind: 'manifest', identifier, key: decode(identifier, 'identifier'), ...withToken };
  if (segments.length === 1 && segments[0] === 'source.pdf') return { kind: 'source', identifier, key: decode(identifier, 'identifier'), ...withToken };
  if (segments.length === 1 && segments[0] === 'text.json') return { kind: 'text', identifier, ...parseIdentifier(identifier), ...withToken };
  if (segments.length === 4) {
    return { kind: 'image', identifier, ...parseIdentifier(identifier), ...withToken, segments: segments.map((s) => decode(s, 'parameter')) as [string, string, string, string] };
  }
  throw notFound(`no IIIF resource at ${JSON.stringify(rawPath)}: an identifier has no unescaped "/"; expected {identifier}/info.json, {identifier}/{region}/{size}/{rotation}/{quality}.{format} or {key}/manifest`);
}
