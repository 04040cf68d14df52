/**
 * The document outline read with the page boxes (RenderOptions.pageBoxes; worker/outline.ts):
 * titles, 1-based pages and nesting from corpus documents, and the bounds that hold against a
 * hostile outline (millions of entries, nesting, /Next and /First loops) built here with MuPDF.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mupdf from 'mupdf';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { OUTLINE_LIMITS, type OutlineEntry } from '../../lib/engine/results.js';
import { corpusFile } from '../../tools/corpus.js';

const dir = mkdtempSync(join(tmpdir(), 'outline-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function outlineOf(file: string): Promise<{ outline?: readonly OutlineEntry[]; truncated?: true; pageCount: number }> {
  const job = await startRender(file, { ...DEFAULT_OUTPUT_OPTIONS, pages: [], pageBoxes: true });
  await job.close();
  return { pageCount: job.pageCount, ...(job.outline ? { outline: job.outline } : {}), ...(job.outlineTruncated ? { truncated: job.outlineTruncated } : {}) };
}

/**
 * A two-page PDF whose outline `link` wires: `items` outline dictionaries (titles "entry N",
 * each going to page 1 or 2), linked by the caller into any shape, loops included.
 */
function writeOutlinePdf(name: string, count: number, link: (doc: mupdf.PDFDocument, root: mupdf.PDFObject, items: mupdf.PDFObject[]) => void): string {
  const doc = new mupdf.PDFDocument();
  for (let i = 0; i < 2; i++) doc.insertPage(-1, doc.addPage([0, 0, 200, 200], 0, doc.addObject({}), ''));
  const root = doc.addObject(doc.newDictionary());
  root.put('Type', doc.newName('Outlines'));
  const items: mupdf.PDFObject[] = [];
  for (let i = 0; i < count; i++) {
    const item = doc.addObject(doc.newDictionary());
    item.put('Title', doc.newString(`entry ${i + 1}`));
    const dest = doc.newArray();
    dest.push(doc.findPage(i % 2));
    dest.push(doc.newName('Fit'));
    item.put('Dest', dest);
    items.push(item);
  }
  link(doc, root, items);
  doc.getTrailer().get('Root').put('Outlines', root);
  const path = join(dir, name);
  writeFileSync(path, doc.saveToBuffer('').asUint8Array());
  doc.destroy();
  return path;
}

/** items[from..to) as siblings under `parent`. */
function siblings(parent: mupdf.PDFObject, items: mupdf.PDFObject[]): void {
  items.forEach((item, i) => {
    item.put('Parent', parent);
    if (i > 0) item.put('Prev', items[i - 1]);
    if (i < items.length - 1) item.put('Next', items[i + 1]);
  });
  parent.put('First', items[0]);
  parent.put('Last', items[items.length - 1]);
  parent.put('Count', items.length);
}

const count = (entries: readonly OutlineEntry[] = []): number => entries.reduce((n, e) => n + 1 + count(e.children), 0);
const depth = (entries: readonly OutlineEntry[] = []): number => (entries.length === 0 ? 0 : 1 + Math.max(...entries.map((e) => depth(e.children))));

describe('the outline, read with the page boxes', () => {
  it('titles, 1-based pages and nesting, as `mutool show … outline` lists them; none without an outline', { timeout: 60_000 }, async () => {
    expect((await outlineOf(corpusFile('multipage-9000px-image.pdf'))).outline).toEqual([
      { title: 'Chapter II', page: 1 },
      { title: 'Huge Page', page: 2 },
      { title: 'Wikipedia image', page: 3, children: [{ title: 'Indented image', page: 4 }] },
    ]);
    const thesis = await outlineOf(corpusFile('geotopo-thesis-117p-cff-mesh.pdf'));
    expect([count(thesis.outline), depth(thesis.outline)]).toEqual([35, 3]);
    expect(thesis.outline![0]).toMatchObject({ title: '1 Topologische Grundbegriffe', page: 6 });
    expect(thesis.outline![0]!.children![1]).toEqual({ title: '1.2 Metrische Räume', page: 10 });
    expect(thesis.truncated).toBeUndefined();
    // Entries that link nowhere (`(null)` in mutool's listing) have no page.
    const guide = await outlineOf(corpusFile('transparency-guide-indesign.pdf'));
    expect(guide.outline![0]).toEqual({ title: "Designer's Guide to Transparency", page: 1 });
    expect(guide.outline![1]).toEqual({ title: 'About This Guide' });
    expect((await outlineOf(corpusFile('tracemonkey-paper-14p.pdf'))).outline).toBeUndefined();
  });

  it(`a hostile outline is cut at ${OUTLINE_LIMITS.entries} entries and ${OUTLINE_LIMITS.depth} levels; one that loops is left out`, { timeout: 120_000 }, async () => {
    // 100,000 siblings.
    const flat = await outlineOf(writeOutlinePdf('flat.pdf', 100_000, (_doc, root, items) => siblings(root, items)));
    expect([flat.outline!.length, flat.truncated]).toEqual([OUTLINE_LIMITS.entries, true]);
    expect(flat.outline![1]).toEqual({ title: 'entry 2', page: 2 });

    // 500 levels, one entry each.
    const deep = await outlineOf(
      writeOutlinePdf('deep.pdf', 500, (_doc, root, items) => {
        siblings(root, [items[0]!]);
        for (let i = 1; i < items.length; i++) siblings(items[i - 1]!, [items[i]!]);
      }),
    );
    expect([depth(deep.outline), count(deep.outline), deep.truncated]).toEqual([OUTLINE_LIMITS.depth, OUTLINE_LIMITS.depth, true]);

    // 100,000 levels: MuPDF's own first walk of the outline (recursive, in C) overflows the
    // stack, which V8 reports as a RangeError: the outline is left out, the document opens.
    const deeper = await outlineOf(
      writeOutlinePdf('deeper.pdf', 100_000, (_doc, root, items) => {
        siblings(root, [items[0]!]);
        for (let i = 1; i < items.length; i++) siblings(items[i - 1]!, [items[i]!]);
      }),
    );
    expect(deeper.pageCount).toBe(2);
    expect(depth(deeper.outline)).toBeLessThanOrEqual(OUTLINE_LIMITS.depth);

    // /Next back to the first entry; a child whose /First is its parent. MuPDF refuses an outline
    // that loops ("Cycle detected in outlines"): no outline, and the document opens as ever.
    for (const [name, link] of [
      ['next-loop.pdf', (items: mupdf.PDFObject[]) => items[1]!.put('Next', items[0])],
      ['first-loop.pdf', (items: mupdf.PDFObject[]) => items[2]!.put('First', items[0])],
    ] as const) {
      const loops = await outlineOf(
        writeOutlinePdf(name, 3, (_doc, root, items) => {
          siblings(root, [items[0]!, items[1]!]);
          siblings(items[0]!, [items[2]!]);
          link(items);
        }),
      );
      expect(loops, name).toEqual({ pageCount: 2 });
    }
  });

  it(`a title is cut at ${OUTLINE_LIMITS.titleChars} characters`, { timeout: 60_000 }, async () => {
    const long = await outlineOf(
      writeOutlinePdf('long.pdf', 1, (_doc, root, items) => {
        items[0]!.put('Title', _doc.newString('x'.repeat(100_000)));
        siblings(root, items);
      }),
    );
    expect(long.outline![0]!.title).toBe('x'.repeat(OUTLINE_LIMITS.titleChars));
  });
});
