/**
 * A Function URL request (payload format 2.0) parsed into a typed page request, checked at the
 * edge: `GET /<url-encoded source key>?page=N&width=…&height=…&dpi=…&format=…&quality=…`. Each
 * bad field is a 400 that names it, its value and what is allowed; the option values go through
 * the same parser as the function's settings and object metadata (lib/config/settings.ts), so a
 * request can ask for exactly what an eager render could, sized by the same rule: a box
 * (width and/or height, aspect kept) or a DPI, not both; neither = the function's own sizing.
 */
import type { LambdaFunctionURLEvent } from 'aws-lambda';
import type { Config } from '../config/env.js';
import { InvalidSettingError, parseIntSetting, parseJobOptions } from '../config/settings.js';
import { LIMITS, qualityFieldOf } from '../engine/options.js';
import type { JobOptions } from '../job/options.js';
import { skipReason } from '../s3/layout.js';
import { HttpError } from './errors.js';
import { EXPIRES_PARAM, SIGNATURE_PARAM } from './signature.js';

export interface PageRequest {
  method: 'GET' | 'HEAD';
  /** The source key, decoded. */
  key: string;
  /** 1-based. */
  page: number;
  /** The variant's render options: the function's settings with the request's over them, one page, nothing else. */
  options: JobOptions;
  /** The query as sent, in order (the signature covers it). */
  params: [string, string][];
}

/** Query parameter -> the job option it sets (the rest of a job's options are not the request's to choose). */
export const QUERY_OPTIONS = { width: 'width', height: 'height', dpi: 'dpi', format: 'format' } as const satisfies Record<string, keyof JobOptions>;
/** `quality` sets the quality of the format asked for: JPEG's, WebP's or AVIF's (PNG has none: ignored). */
const QUALITY_PARAM = 'quality';
const KNOWN_PARAMS = ['page', ...Object.keys(QUERY_OPTIONS), QUALITY_PARAM, EXPIRES_PARAM, SIGNATURE_PARAM];
/** Pages beyond this are not a document's (MuPDF's own page tree limit is far lower in practice). */
const MAX_PAGE = 1_000_000;

const invalid = (message: string): HttpError => new HttpError(400, 'INVALID_REQUEST', message);

/** The method and the raw query; the key and options come after the signature is checked (parseOptions). */
export function parseEnvelope(event: LambdaFunctionURLEvent): { method: 'GET' | 'HEAD'; rawKey: string; params: [string, string][] } {
  const method = event.requestContext?.http?.method;
  if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `method ${JSON.stringify(method ?? '')} is not allowed: use GET or HEAD`);
  const rawPath = event.rawPath ?? '/';
  const params: [string, string][] = [...new URLSearchParams(event.rawQueryString ?? '').entries()];
  return { method, rawKey: rawPath.replace(/^\/+/, ''), params };
}

/** The decoded source key, or a 400/403 that says why it is not one this function serves. */
export function parseKey(rawKey: string, config: Pick<Config, 'inputPrefix'>): string {
  if (rawKey === '') throw invalid('the path is empty: request /<url-encoded source key>, such as /incoming%2Freport.pdf?page=1');
  let key: string;
  try {
    key = decodeURIComponent(rawKey);
  } catch {
    throw invalid(`the path ${JSON.stringify(rawKey)} is not valid URL encoding`);
  }
  const skip = skipReason(key, config);
  if (skip) throw new HttpError(403, 'KEY_NOT_SERVED', `the key ${JSON.stringify(key)} is not served: ${skip}`);
  return key;
}

/** The page and the variant's options; every parameter is known and given once. */
export function parseOptions(params: readonly [string, string][], base: JobOptions): { page: number; options: JobOptions } {
  const seen = new Set<string>();
  for (const [name] of params) {
    if (!KNOWN_PARAMS.includes(name)) throw invalid(`unknown query parameter ${JSON.stringify(name)}: allowed are ${KNOWN_PARAMS.join(', ')}`);
    if (seen.has(name)) throw invalid(`query parameter ${JSON.stringify(name)} is given twice`);
    seen.add(name);
  }
  const value = (name: string): string | undefined => params.find(([n]) => n === name)?.[1];
  try {
    const rawPage = value('page');
    const page = rawPage === undefined ? 1 : parseIntSetting('page', rawPage, 1, MAX_PAGE);
    const raw: Partial<Record<keyof JobOptions, string>> = Object.fromEntries(Object.entries(QUERY_OPTIONS).map(([param, field]) => [field, value(param)]));
    const names: Partial<Record<keyof JobOptions, string>> = Object.fromEntries(Object.entries(QUERY_OPTIONS).map(([param, field]) => [field, param]));
    const single: JobOptions = { ...base, pages: '1-', maxPages: 0, thumbnailWidth: 0, pageText: false };
    const format = parseJobOptions({ format: raw.format }, names, single).format;
    // PNG has no quality: quality= is checked, then ignored for it (docs/on-demand.md).
    const quality = value(QUALITY_PARAM);
    const qualityField = qualityFieldOf(format);
    if (qualityField) {
      raw[qualityField] = quality;
      names[qualityField] = QUALITY_PARAM;
    } else if (quality !== undefined) {
      parseIntSetting(QUALITY_PARAM, quality, LIMITS.jpegQuality.min, LIMITS.jpegQuality.max);
    }
    const options = parseJobOptions(raw, names, single);
    // The other formats' qualities do not change this image: one variant whatever they are (PNG has none).
    if (format !== 'jpeg') options.jpegQuality = base.jpegQuality;
    if (format !== 'webp') options.webpQuality = base.webpQuality;
    if (format !== 'avif') options.avifQuality = base.avifQuality;
    return { page, options };
  } catch (err) {
    if (err instanceof InvalidSettingError) throw invalid(err.message);
    throw err;
  }
}
