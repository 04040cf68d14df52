/**
 * Settings from outside (environment variables, CLI flags, later S3 metadata) parsed into the
 * engine's option types. Every error names the setting as the user wrote it, the value, and
 * what is allowed.
 */
import { DEFAULT_OUTPUT_OPTIONS, LIMITS, type ImageFormat, type OutputOptions, type PageRange } from '../engine/options.js';

/** Parses "1-3,7,10-" into ranges. Throws with a message that quotes the bad part. */
export function parsePageSelection(text: string): PageRange[] {
  const ranges: PageRange[] = [];
  for (const rawPart of text.split(',')) {
    const part = rawPart.trim();
    const match = /^(\d+)(?:\s*(-)\s*(\d*))?$/.exec(part);
    if (!match) throw new Error(`invalid page selection "${part}" in "${text}": use forms like 1-3,7,10-`);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : match[3] ? Number(match[3]) : undefined;
    if (from < 1 || (to !== undefined && to < from)) {
      throw new Error(`invalid page range "${part}" in "${text}": pages start at 1 and ranges go upwards`);
    }
    ranges.push(to === undefined ? { from } : { from, to });
  }
  return ranges;
}

/** A setting from outside (env var, CLI flag), named as the user wrote it. */
export class InvalidSettingError extends Error {
  override readonly name = 'InvalidSettingError';
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
  throw new InvalidSettingError(`${name}=${JSON.stringify(value)} is invalid: expected "png" or "jpeg"`);
}

/**
 * Output options from raw strings, each named as the user knows it (FORMAT or --format);
 * a missing value takes its default.
 */
export function parseOutputOptions(
  raw: Partial<Record<keyof OutputOptions, string>>,
  names: Record<keyof OutputOptions, string>,
): OutputOptions {
  const d = DEFAULT_OUTPUT_OPTIONS;
  const int = (field: 'dpi' | 'jpegQuality' | 'maxPagePixels' | 'maxPages') => {
    const value = raw[field];
    return value === undefined || value === '' ? d[field] : parseIntSetting(names[field], value, LIMITS[field].min, LIMITS[field].max);
  };
  return {
    format: raw.format === undefined || raw.format === '' ? d.format : parseFormatSetting(names.format, raw.format),
    dpi: int('dpi'),
    jpegQuality: int('jpegQuality'),
    maxPagePixels: int('maxPagePixels'),
    maxPages: int('maxPages'),
  };
}
