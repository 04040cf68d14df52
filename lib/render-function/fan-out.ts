/**
 * Fan-out (docs/contract.md, "Work distribution"): a long document is split into page ranges,
 * each rendered by its own invocation into the same generation; each range stores a part
 * record, and the range that finds every part done merges them into the manifest.
 */
import type { OutputOptions } from '../engine/options.js';
import { buildManifest, isPageFailure, type Manifest, type ManifestSource } from '../job/manifest.js';
import type { RangePart } from '../s3/part-store.js';
import type { PageWork } from '../work/messages.js';

/** Pages the document renders: all, or the first maxPages. */
export function pagesToRender(pageCount: number, options: Pick<OutputOptions, 'maxPages'>): number {
  return options.maxPages > 0 ? Math.min(pageCount, options.maxPages) : pageCount;
}

/** The ranges of `total` pages in slices of `size`; empty when the document is not longer than one range. */
export function planRanges(total: number, size: number): NonNullable<PageWork['range']>[] {
  if (size <= 0 || total <= size) return [];
  const count = Math.ceil(total / size);
  return Array.from({ length: count }, (_, i) => ({ from: i * size + 1, to: Math.min(total, (i + 1) * size), count }));
}

/** True once every range of the set has stored a finished part. */
export function setComplete(parts: readonly RangePart[], count: number): boolean {
  const done = parts.filter((p) => p.nextPage === undefined);
  return new Set(done.map((p) => p.range.from)).size === count;
}

/** The manifest of a fanned-out render, from its parts (each range once). */
export function mergeParts(source: ManifestSource, options: OutputOptions, parts: readonly RangePart[]): Manifest {
  const pages = parts.flatMap((p) => p.pages).sort((a, b) => a.number - b.number);
  const warnings = [...new Set(parts.flatMap((p) => p.warnings))];
  const startedAt = new Date(Math.min(...parts.map((p) => Date.parse(p.startedAt))));
  const pageCount = parts[0]?.pageCount ?? 0;
  const listed = new Set(pages.map((p) => p.number));
  const missing = parts.flatMap((p) => Array.from({ length: p.range.to - p.range.from + 1 }, (_, i) => p.range.from + i)).filter((n) => !listed.has(n));
  const status = missing.length > 0 || pages.some(isPageFailure) ? 'partial' : 'complete';
  return buildManifest(source, options, startedAt, { status, pageCount, pages, warnings });
}
