/**
 * Where a render stands against its source: missing, failed, partial, stale or ok. The one home
 * of "is this render up to date": the render function skips exactly what this calls ok, and
 * the reprocess function and the batch task dispatch what it marks for dispatch, classifying
 * each object under the options the render function would use (classifyObject).
 */
import { effectiveObjectOptions } from '../config/object-options.js';
import type { JobOptions, OptionsSource } from './options.js';
import { isLegacy, optionsHash, type Manifest, type StoredManifest } from './manifest.js';
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

/**
 * True when a message for this object finds its result already committed, so the render
 * function settles it (the clean-up, and the event unless its marker says it went) instead of
 * rendering: anything classify does not dispatch (`ok`, and `failed` or a final `partial` this
 * renderer release gave). A render would only commit the same result anew, as another manifest
 * object, so its event would go out under another renderId. With invalid object options
 * (`invalidOptions`: `options` are then the settings the failed manifest records), only a
 * `failed` INVALID_OPTIONS manifest for the same `optionsSource` is that result: a render with
 * the settings must not hide bad metadata.
 */
export function isSettled(manifest: StoredManifest | null, source: { etag: string }, options: JobOptions, optionsSource: OptionsSource, invalidOptions: boolean): manifest is Manifest {
  if (!manifest || isLegacy(manifest) || classify(manifest, source, options, false).dispatch) return false;
  if (!invalidOptions) return true;
  return manifest.status === 'failed' && manifest.error?.code === 'INVALID_OPTIONS' && sameOptionsSource(manifest.optionsSource, optionsSource);
}

function sameOptionsSource(recorded: OptionsSource | undefined, current: OptionsSource): boolean {
  if (!recorded || recorded.from !== current.from) return false;
  if (recorded.from === 'settings' || current.from === 'settings') return true;
  const a = Object.entries(recorded.metadata).sort(([x], [y]) => x.localeCompare(y));
  const b = Object.entries(current.metadata).sort(([x], [y]) => x.localeCompare(y));
  return JSON.stringify(a) === JSON.stringify(b);
}

/** An object's user metadata (keys lowercase), or a way to read it (a HEAD) when it is needed. */
export type ObjectMetadata = Record<string, string> | undefined;

/**
 * Whether classifying `manifest` needs the object's own metadata: only when the render is of
 * these bytes (anything else is stale whatever the options) and its manifest says its options
 * came from object metadata, or does not say (written before `optionsSource`) and its hash is
 * not the settings'. Metadata changes only with a new upload or copy, which S3 announces with
 * its own event, so an object rendered with the settings is not read again.
 */
export function needsObjectMetadata(manifest: StoredManifest | null, source: { etag: string }, settings: JobOptions): boolean {
  if (!manifest || isLegacy(manifest) || manifest.source.etag !== source.etag) return false;
  if (manifest.optionsSource) return manifest.optionsSource.from === 'metadata';
  return manifest.optionsHash !== optionsHash(settings);
}

/**
 * An object classified as the render function would see it: its render-* metadata over the
 * settings (lib/config/object-options.ts). `metadata` is the object's metadata when the caller
 * has it (the batch task HEADs every object anyway), or a reader called only when
 * needsObjectMetadata says so (the schedule lists, and HEADs only those objects).
 */
export async function classifyObject(
  manifest: StoredManifest | null,
  source: { etag: string },
  settings: JobOptions,
  force: boolean,
  metadata: ObjectMetadata | (() => Promise<ObjectMetadata>),
): Promise<Classification> {
  if (typeof metadata !== 'function') return classify(manifest, source, effectiveObjectOptions(settings, metadata), force);
  const options = needsObjectMetadata(manifest, source, settings) ? effectiveObjectOptions(settings, await metadata()) : settings;
  return classify(manifest, source, options, force);
}
