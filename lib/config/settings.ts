/**
 * Settings from outside (environment variables, CLI flags, S3 object metadata) parsed into the
 * job's options. Every error names the setting as the user wrote it, the value, and what is
 * allowed.
 */
import { boxOf, LIMITS, MAX_DPI, qualityFieldOf, type ImageFormat } from '../engine/options.js';
import { DEFAULT_JOB_OPTIONS, formatPageSelection, MAX_THUMBNAIL_WIDTH, parsePageSelection, type JobOptions } from '../job/options.js';

export { parsePageSelection };

/** A setting from outside (env var, CLI flag), named as the user wrote it. */
export class InvalidSettingError extends Error {
  override readonly name = 'InvalidSettingError';
}

/**
 * The field the one `quality` setting (`--quality`, `render-quality`) sets for `format`: the
 * format asked for's own (DESIGN §2). PNG has none, and a quality asked of it is refused: it
 * would change nothing in the pages, and would be recorded as if it had.
 */
export function qualitySettingField(name: string, value: string, format: ImageFormat): 'jpegQuality' | 'webpQuality' | 'avifQuality' {
  const field = qualityFieldOf(format);
  if (!field) throw new InvalidSettingError(`${name}=${JSON.stringify(value)} is invalid: a PNG page has no quality (it sets the quality of jpeg, webp or avif)`);
  return field;
}

/** Parses a whole number in [min, max]; the error names the setting, the value and what is allowed. */
export function parseIntSetting(name: string, value: string, min: number, max: number): number {
  const trimmed = value.trim();
  const n = /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidSettingError(`${name}=${JSON.stringify(value)} is invalid: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

export function parseFormatSetting(name: string, value: string): ImageFormat {
  const v = value.trim().toLowerCase();
  if (v === 'png') return 'png';
  if (v === 'jpeg' || v === 'jpg') return 'jpeg';
  if (v === 'webp') return 'webp';
  if (v === 'avif') return 'avif';
  throw new InvalidSettingError(`${name}=${JSON.stringify(value)} is invalid: expected "png", "jpeg", "webp" or "avif"`);
}

export function parseBooleanSetting(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw new InvalidSettingError(`${name}=${JSON.stringify(value)} is invalid: expected "true" or "false"`);
}

export function parsePagesSetting(name: string, value: string): string {
  try {
    return formatPageSelection(parsePageSelection(value));
  } catch (err) {
    throw new InvalidSettingError(`${name}=${JSON.stringify(value)} is invalid: expected pages such as "1-3,7,10-" (${(err as Error).message})`);
  }
}

export type JobOptionsInput = Partial<Record<keyof JobOptions, string>>;

/**
 * What a DPI given beside a box (width, height) means: 'invalid' (an object's metadata, CLI
 * flags: one source asked for both, so it is an error), or 'ignored' (the function's settings:
 * the template always sets DPI, and a box is the more specific choice).
 */
export type DpiWithBox = 'invalid' | 'ignored';

/**
 * Job options from raw strings, each named as the user knows it (FORMAT, --format or
 * render-format); a missing value takes its value in `base` (the defaults, or the function's
 * settings under an object's metadata).
 *
 * Sizing is one choice, a DPI or a box: given a box (either side or both), the pages fit inside
 * it and `dpi` becomes MAX_DPI, the most a page is drawn at (so the hash does not depend on a
 * DPI that is not used); given a DPI, there is no box. Either replaces `base`'s sizing whole
 * (an object's render-width under a function's HEIGHT is a box of that width alone).
 */
export function parseJobOptions(
  raw: JobOptionsInput,
  names: Partial<Record<keyof JobOptions, string>>,
  base: JobOptions = DEFAULT_JOB_OPTIONS,
  dpiWithBox: DpiWithBox = 'invalid',
): JobOptions {
  const given = (field: keyof JobOptions): string | undefined => {
    const value = raw[field];
    return value === undefined || value === '' ? undefined : value;
  };
  const name = (field: keyof JobOptions): string => names[field] ?? field;
  const int = (field: 'dpi' | 'jpegQuality' | 'webpQuality' | 'avifQuality' | 'maxPagePixels' | 'maxPages') => {
    const value = given(field);
    return value === undefined ? base[field] : parseIntSetting(name(field), value, LIMITS[field].min, LIMITS[field].max);
  };
  const box = (field: 'width' | 'height'): number | undefined => {
    const value = given(field);
    return value === undefined ? undefined : parseIntSetting(name(field), value, LIMITS[field].min, LIMITS[field].max);
  };
  const format = given('format');
  const pages = given('pages');
  const thumbnailWidth = given('thumbnailWidth');
  const pageText = given('pageText');
  const dpi = int('dpi');
  const width = box('width');
  const height = box('height');
  let sizing: Pick<JobOptions, 'dpi' | 'width' | 'height'>;
  if (width !== undefined || height !== undefined) {
    if (given('dpi') !== undefined && dpiWithBox === 'invalid') {
      const boxNames = [width !== undefined ? `${name('width')}=${raw.width}` : '', height !== undefined ? `${name('height')}=${raw.height}` : ''].filter(Boolean).join(' and ');
      throw new InvalidSettingError(
        `${name('dpi')}=${JSON.stringify(raw.dpi)} with ${boxNames} is invalid: size pages by a DPI or by a box (width and/or height, in pixels), not both`,
      );
    }
    sizing = { dpi: MAX_DPI, ...boxOf({ width, height }) };
  } else if (given('dpi') !== undefined) {
    sizing = { dpi };
  } else {
    sizing = { dpi: base.dpi, ...boxOf(base) };
  }
  return {
    format: format === undefined ? base.format : parseFormatSetting(name('format'), format),
    ...sizing,
    jpegQuality: int('jpegQuality'),
    webpQuality: int('webpQuality'),
    avifQuality: int('avifQuality'),
    maxPagePixels: int('maxPagePixels'),
    maxPages: int('maxPages'),
    pages: pages === undefined ? base.pages : parsePagesSetting(name('pages'), pages),
    thumbnailWidth: thumbnailWidth === undefined ? base.thumbnailWidth : parseIntSetting(name('thumbnailWidth'), thumbnailWidth, 0, MAX_THUMBNAIL_WIDTH),
    pageText: pageText === undefined ? base.pageText : parseBooleanSetting(name('pageText'), pageText),
  };
}
