/**
 * Fan-out (docs/contract.md, "Work distribution"): a long document is split into page ranges,
 * each rendered by its own invocation into the same generation; each range stores a part
 * record, and the range that finds every part done merges them into the manifest.
 */
import { selectPages } from '../engine/options.js';
import { buildManifest, isPageFailure, type Manifest, type ManifestSource } from '../job/manifest.js';
import { parsePageSelection, type JobOptions, type OptionsSource } from '../job/options.js';
import type { RangePart } from '../s3/part-store.js';
import type { PageWork } from '../work/messages.js';

/** The pages the document renders: the selection, within MAX_PAGES. */
export function selectedPages(pageCount: number, options: Pick<JobOptions, 'pages' | 'maxPages'>): number[] {
  return selectPages(pageCount, { pages: parsePageSelection(options.pages), maxPages: options.maxPages });
}

/** Ranges of `size` selected pages each (from the first to the last of them); empty when they fit one range. */
export function planRanges(selected: readonly number[], size: number): NonNullable<PageWork['range']>[] {
  if (size <= 0 || selected.length <= size) return [];
  const count = Math.ceil(selected.length / size);
  return Array.from({ length: count }, (_, i) => ({ from: selected[i * size]!, to: selected[Math.min(selected.length, (i + 1) * size) - 1]!, count }));
}

/** True once every range of the set has stored a finished part. */
export function setComplete(parts: readonly RangePart[], count: number): boolean {
  const done = parts.filter((p) => p.nextPage === undefined);
  return new Set(done.map((p) => p.range.from)).size === count;
}

/** The manifest of a fanned-out render, from its parts (each range once). */
export function mergeParts(source: ManifestSource, options: JobOptions, parts: readonly RangePart[], optionsSource?: OptionsSource): Manifest {
  const pages = parts.flatMap((p) => p.pages).sort((a, b) => a.number - b.number);
  const warnings = [...new Set(parts.flatMap((p) => p.warnings))];
  const startedAt = new Date(Math.min(...parts.map((p) => Date.parse(p.startedAt))));
  const pageCount = parts[0]?.pageCount ?? 0;
  // A range cut short by its budget says so in its warnings and is not complete.
  const status = parts.some((p) => !p.complete) || pages.some(isPageFailure) ? 'partial' : 'complete';
  return buildManifest(source, options, startedAt, { status, pageCount, pages, warnings, ...(optionsSource ? { optionsSource } : {}) });
}
