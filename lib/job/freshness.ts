/**
 * Where a render stands against its source: missing, failed, partial, stale or ok. The one home
 * of "is this render up to date": the render function skips exactly what this calls ok, and
 * the reprocess function dispatches what it marks for dispatch.
 */
import type { JobOptions } from './options.js';
import { isLegacy, optionsHash, type StoredManifest } from './manifest.js';
import { majorVersion, RENDERER } from './version.js';

export const RENDER_CLASSES = ['missing', 'failed', 'partial', 'stale', 'ok'] as const;
export type RenderClass = (typeof RENDER_CLASSES)[number];

export interface Classification {
  class: RenderClass;
  /** True when a render should be dispatched. */
  dispatch: boolean;
  reason: string;
}

/**
 * `failed`, and `partial` with no page left to resume, are permanent results (docs/contract.md, "Errors"): the
 * same bytes, options and renderer give them again. They are retried once per renderer release
 * (any version change), not on every run, so they cannot crowd the per-run limit forever.
 */
export function classify(manifest: StoredManifest | null, source: { etag: string }, options: JobOptions, force: boolean): Classification {
  if (!manifest) return { class: 'missing', dispatch: true, reason: 'no manifest (or an unreadable one)' };
  if (isLegacy(manifest)) return { class: 'stale', dispatch: true, reason: 'a schema v1 manifest (pages outside a generation): re-rendered into v2' };
  if (manifest.source.etag !== source.etag) {
    return { class: 'stale', dispatch: true, reason: `the source changed (etag ${manifest.source.etag} -> ${source.etag})` };
  }
  if (manifest.optionsHash !== optionsHash(options)) return { class: 'stale', dispatch: true, reason: 'rendered with other options' };
  if (majorVersion(manifest.renderer.version) !== majorVersion(RENDERER.version)) {
    return { class: 'stale', dispatch: true, reason: `rendered by renderer ${manifest.renderer.version}, now ${RENDERER.version}` };
  }
  if (force) return { class: 'stale', dispatch: true, reason: 'force' };
  const sameRelease = manifest.renderer.version === RENDERER.version;
  if (manifest.status === 'failed') {
    const code = manifest.error?.code ?? 'unknown error';
    return sameRelease
      ? { class: 'failed', dispatch: false, reason: `${code}; this renderer release already gave that result (not retried until an upgrade, or with force)` }
      : { class: 'failed', dispatch: true, reason: `${code} with renderer ${manifest.renderer.version}: retried with ${RENDERER.version}` };
  }
  if (manifest.status === 'partial') {
    if (manifest.nextPage) return { class: 'partial', dispatch: true, reason: `stopped before page ${manifest.nextPage}: resumed` };
    return sameRelease
      ? { class: 'partial', dispatch: false, reason: 'some pages failed; this renderer release already gave that result (not retried until an upgrade, or with force)' }
      : { class: 'partial', dispatch: true, reason: `some pages failed with renderer ${manifest.renderer.version}: retried with ${RENDERER.version}` };
  }
  return { class: 'ok', dispatch: false, reason: 'up to date' };
}
