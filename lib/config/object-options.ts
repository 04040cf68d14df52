/**
 * Per-object options (docs/contract.md, "Per-object options"): S3 user metadata on an upload
 * overrides the function's settings for that object. A bad value is the object's permanent
 * problem (INVALID_OPTIONS, naming the key, the value and what is allowed); an unknown
 * render-* key is a warning, never silently dropped.
 */
import type { JobOptions, OptionsSource } from '../job/options.js';
import { InvalidSettingError, parseFormatSetting, parseJobOptions, qualitySettingField, type JobOptionsInput } from './settings.js';

/**
 * The metadata keys (as S3 returns them: lowercase, without x-amz-meta-) and the option each sets;
 * `render-quality` sets the quality of the format asked for (JPEG's, WebP's or AVIF's; refused
 * for PNG, which has none).
 */
export const OBJECT_OPTION_KEYS = {
  'render-dpi': 'dpi',
  'render-width': 'width',
  'render-height': 'height',
  'render-format': 'format',
  'render-quality': 'quality',
  'render-webp-quality': 'webpQuality',
  'render-pages': 'pages',
  'render-thumbnail-width': 'thumbnailWidth',
  'render-text': 'pageText',
} as const satisfies Record<string, keyof JobOptions | 'quality'>;

export type ObjectOptions = { ok: true; options: JobOptions; warnings: string[] } | { ok: false; message: string };

export function objectOptions(base: JobOptions, metadata: Record<string, string> | undefined): ObjectOptions {
  const raw: JobOptionsInput = {};
  const names: Partial<Record<keyof JobOptions, string>> = {};
  const warnings: string[] = [];
  let quality: { key: string; value: string } | undefined;
  for (const [rawKey, value] of Object.entries(metadata ?? {})) {
    const key = rawKey.toLowerCase();
    if (!key.startsWith('render-')) continue;
    const field = (OBJECT_OPTION_KEYS as Record<string, keyof JobOptions | 'quality'>)[key];
    if (!field) {
      warnings.push(`object metadata ${key}=${JSON.stringify(value)} ignored: not a render option (known: ${Object.keys(OBJECT_OPTION_KEYS).join(', ')})`);
      continue;
    }
    if (field === 'quality') {
      quality = { key, value };
      continue;
    }
    raw[field] = value;
    names[field] = key;
  }
  try {
    if (quality) {
      const format = raw.format === undefined || raw.format === '' ? base.format : parseFormatSetting(names.format ?? 'format', raw.format);
      const field = qualitySettingField(quality.key, quality.value, format);
      if (raw[field] !== undefined) {
        throw new InvalidSettingError(`${quality.key}=${JSON.stringify(quality.value)} with ${names[field]}=${JSON.stringify(raw[field])} is invalid: both set the ${format} quality, give one`);
      }
      raw[field] = quality.value;
      names[field] = quality.key;
    }
    return { ok: true, options: parseJobOptions(raw, names, base), warnings };
  } catch (err) {
    if (err instanceof InvalidSettingError) return { ok: false, message: `object metadata ${err.message}` };
    throw err;
  }
}

/**
 * The options a render of this object uses: its render-* metadata over `base`, or `base` when the
 * metadata is invalid (the render then commits a failed INVALID_OPTIONS manifest with `base`'s
 * options hash). The render function and the batch task both classify with this.
 */
export function effectiveObjectOptions(base: JobOptions, metadata: Record<string, string> | undefined): JobOptions {
  const chosen = objectOptions(base, metadata);
  return chosen.ok ? chosen.options : base;
}

/**
 * Where the options of an object with this metadata come from, as its manifest records it: its
 * `render-*` option keys and their values (unknown `render-*` keys change nothing and are not
 * recorded), or the settings when it has none. Invalid values are recorded too: they are what
 * the object asked for, and its failed INVALID_OPTIONS manifest names them.
 */
export function optionsSourceOf(metadata: Record<string, string> | undefined): OptionsSource {
  const read: Record<string, string> = {};
  for (const [rawKey, value] of Object.entries(metadata ?? {})) {
    const key = rawKey.toLowerCase();
    if (key in OBJECT_OPTION_KEYS) read[key] = value;
  }
  return Object.keys(read).length > 0 ? { from: 'metadata', metadata: Object.fromEntries(Object.entries(read).sort(([a], [b]) => a.localeCompare(b))) } : { from: 'settings' };
}
