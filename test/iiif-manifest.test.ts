/**
 * The Presentation manifest's `structures` (lib/iiif/info.ts rangesOf) and the validation of
 * what IIIF reads back from S3 (lib/iiif/sizes.ts: the sizes file, the eager manifest's page
 * boxes), without MuPDF or S3.
 */
import { describe, expect, it } from 'vitest';
import type { PageBox } from '../lib/engine/options.js';
import { OUTLINE_LIMITS, type OutlineEntry } from '../lib/engine/results.js';
import { presentationManifest, rangesOf } from '../lib/iiif/info.js';
import { eagerBoxesOf, parseSizes, SIZES_SCHEMA } from '../lib/iiif/sizes.js';
import { parseManifest, type Manifest } from '../lib/job/manifest.js';
import { majorVersion, RENDERER } from '../lib/job/version.js';

const M = 'https://iiif.example.org/iiif/3/incoming%2Fa.pdf/manifest';
const canvas = (page: number) => ({ id: `${M}/canvas/${page}`, type: 'Canvas' });

describe('structures: the outline as Presentation 3.0 Ranges', () => {
  it('a top Range per entry, nested Ranges for children, items the Canvas of its page; entries without a page skipped unless their children have pages', () => {
    const outline: OutlineEntry[] = [
      { title: 'Chapter 1', page: 1, children: [{ title: '1.1', page: 2 }, { title: 'web link' }] },
      { title: 'Part II (no page)', children: [{ title: '2.1', page: 3 }] },
      { title: 'nowhere' },
      { title: 'past the end', page: 9 },
      { title: '', page: 4 },
    ];
    expect(rangesOf(outline, M, 4)).toEqual([
      { id: `${M}/range/1`, type: 'Range', label: { none: ['Chapter 1'] }, items: [canvas(1), { id: `${M}/range/1-1`, type: 'Range', label: { none: ['1.1'] }, items: [canvas(2)] }] },
      { id: `${M}/range/2`, type: 'Range', label: { none: ['Part II (no page)'] }, items: [{ id: `${M}/range/2-1`, type: 'Range', label: { none: ['2.1'] }, items: [canvas(3)] }] },
      { id: `${M}/range/5`, type: 'Range', label: { none: ['p. 4'] }, items: [canvas(4)] },
    ]);
  });

  it('the manifest has `structures` only when the outline gives a Range', () => {
    const pages = [1, 2].map((n) => ({ service: `https://iiif.example.org/iiif/3/incoming%2Fa.pdf;${n}`, width: 100, height: 100 }));
    const input = { id: M, label: 'a.pdf', rendering: `${M}/source.pdf`, pages };
    expect(presentationManifest(input)['structures']).toBeUndefined();
    expect(presentationManifest({ ...input, outline: [{ title: 'nowhere' }] })['structures']).toBeUndefined();
    expect(presentationManifest({ ...input, outline: [{ title: 'one', page: 2 }] })['structures']).toEqual([{ id: `${M}/range/1`, type: 'Range', label: { none: ['one'] }, items: [canvas(2)] }]);
  });
});

describe('what IIIF reads back from S3 is validated', () => {
  const good = { schema: SIZES_SCHEMA, pageCount: 2, boxes: [[0, 0, 612, 792], [0, 0, 792, 612]], title: 'T', outline: [{ title: 'a', page: 2, children: [{ title: 'b' }] }] };
  const text = (v: unknown) => JSON.stringify(v);

  it('the sizes file: its schema, a box per page, an outline within the limits and the pages; anything else is missing', () => {
    expect(parseSizes(text(good))).toEqual(good);
    const nested = (levels: number): OutlineEntry[] => (levels === 0 ? [] : [{ title: 'x', children: nested(levels - 1) }]);
    for (const bad of [
      'not json',
      text({ ...good, schema: undefined }), // the schema before the outline: opened again
      text({ ...good, pageCount: 3 }),
      text({ ...good, boxes: [[0, 0, 612, 792], [0, 0, 0, 612]] }),
      text({ ...good, boxes: [[0, 0, 612, 792], [0, 0, 'a', 612]] }),
      text({ ...good, title: 7 }),
      text({ ...good, outline: [{ title: 'a', page: 3 }] }),
      text({ ...good, outline: [{ title: 'a', page: 1.5 }] }),
      text({ ...good, outline: [{ page: 1 }] }),
      text({ ...good, outline: [{ title: 'x'.repeat(OUTLINE_LIMITS.titleChars + 1) }] }),
      text({ ...good, outline: Array.from({ length: OUTLINE_LIMITS.entries + 1 }, () => ({ title: 'a' })) }),
      text({ ...good, outline: nested(OUTLINE_LIMITS.depth + 1) }),
    ]) {
      expect(parseSizes(bad), bad.slice(0, 120)).toBeUndefined();
    }
    expect(parseSizes(text({ ...good, outline: nested(OUTLINE_LIMITS.depth) }))).toBeDefined();
  });

  it("the eager manifest's pages[].box: optional, validated with the manifest, used only for the same source bytes", () => {
    const manifest = {
      schemaVersion: 2,
      status: 'complete',
      source: { bucket: 'b', key: 'incoming/a.pdf', etag: '"e1"', size: 10 },
      renderer: { name: 's3-pdf-render', version: '1.0.0', mupdf: '1.28.1' },
      options: {},
      optionsHash: '0123456789abcdef',
      generation: '0123456789abcdef',
      pageCount: 3,
      pages: [
        { number: 1, key: 'k1', width: 10, height: 10, dpi: 150, bytes: 1, contentType: 'image/png', box: [0, 0, 612, 792] },
        { number: 2, key: 'k2', width: 10, height: 10, dpi: 150, bytes: 1, contentType: 'image/png' },
        { number: 3, error: { code: 'PAGE_RENDER_FAILED', message: 'x' } },
      ],
      warnings: [],
      startedAt: '',
      finishedAt: '',
      durationMs: 0,
    };
    const parsed = parseManifest(text(manifest)) as Manifest;
    expect(parsed).not.toBeNull();
    expect(eagerBoxesOf(parsed, '"e1"')).toEqual({ pageCount: 3, boxes: new Map([[1, [0, 0, 612, 792]]]) });
    expect(eagerBoxesOf(parsed, '"e2"')).toBeUndefined();
    // Another renderer major's bounds are not this one's.
    expect(eagerBoxesOf({ ...parsed, renderer: { ...parsed.renderer, version: `${majorVersion(RENDERER.version) + 1}.0.0` } }, '"e1"')).toBeUndefined();
    // A box that is not one is dropped, never the manifest (whose loss would re-render the
    // document on every redelivery and scheduled run); a box past 1e6 pt is one (/UserUnit).
    for (const box of [[0, 0, 612], [0, 0, 612, 'x'], [612, 0, 0, 792], null]) {
      const bad = parseManifest(text({ ...manifest, pages: [{ ...manifest.pages[0], box }] })) as Manifest | null;
      expect(bad, JSON.stringify(box)).not.toBeNull();
      expect(bad!.pages[0], JSON.stringify(box)).not.toHaveProperty('box');
      expect(eagerBoxesOf(bad!, '"e1"')?.boxes.get(1), JSON.stringify(box)).toBeUndefined();
    }
    const huge: PageBox = [0, 0, 1_440_000, 1_440_000];
    expect(eagerBoxesOf(parseManifest(text({ ...manifest, pages: [{ ...manifest.pages[0], box: huge }] }))!, '"e1"')?.boxes.get(1)).toEqual(huge);
  });
});
