/**
 * What the soak uploads: the corpus (test/corpus, read in place; MANIFEST.tsv says which
 * files render and which are hopeless) and PDFs made on the spot (tiny, long, broken,
 * encrypted), each with the outcome its manifest must end in.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as mupdf from 'mupdf';
import type { PageBox } from '../../lib/engine/options.js';
import { ROOT } from '../template.js';

export { CORPUS_DIR } from '../corpus.js';
import { CORPUS_DIR } from '../corpus.js';

export type Expected = { status: 'complete' } | { status: 'failed'; code: string };

export interface SoakDoc {
  name: string;
  expected: Expected;
  /** Slow at the soak's budget (many pages or heavy images): only in long soaks. */
  heavy: boolean;
  body(): Promise<Uint8Array>;
}

/**
 * The codes of the corpus's hopeless files, as test/engine/corpus.test.ts pins them (the
 * MANIFEST.tsv says "unreadable" or "needs-password", not which code).
 */
const HOPELESS: Record<string, string> = {
  'not-a-pdf.pdf': 'NOT_PDF',
  'zero-pages.pdf': 'NO_PAGES',
  'unreadable-brotli-filter.pdf': 'CORRUPT',
  'unreadable-page-tree.pdf': 'CORRUPT',
};

/** Documents that take more than a few short invocations at the soak's DPI, or a lot of memory. */
const HEAVY_PAGES = 30;
const HEAVY_BYTES = 2_000_000;
/** Small files with huge images: one page takes several seconds to decode, longer than a short budget's drawing time on a loaded machine. */
const HEAVY_IMAGES = new Set(['multipage-9000px-image.pdf', 'huge-8400pt-mono.pdf']);

export function corpusDocs(): SoakDoc[] {
  const lines = readFileSync(join(CORPUS_DIR, 'MANIFEST.tsv'), 'utf8').trim().split('\n');
  const header = lines[0]!.split('\t');
  const col = (name: string): number => {
    const at = header.indexOf(name);
    if (at < 0) throw new Error(`MANIFEST.tsv has no "${name}" column`);
    return at;
  };
  const [file, bytes, pages, expected] = [col('file'), col('bytes'), col('pages'), col('expected')];
  return lines.slice(1).map((line) => {
    const cells = line.split('\t');
    const name = cells[file]!;
    const outcome = cells[expected]!;
    let want: Expected;
    if (outcome === 'renders' || outcome === 'broken-but-repairable') want = { status: 'complete' };
    else if (outcome === 'needs-password') want = { status: 'failed', code: 'ENCRYPTED' };
    else if (outcome === 'unreadable' && HOPELESS[name]) want = { status: 'failed', code: HOPELESS[name] };
    else throw new Error(`MANIFEST.tsv: ${name} expects "${outcome}", which the soak does not know how to check`);
    return {
      name,
      expected: want,
      heavy: Number(cells[pages]) > HEAVY_PAGES || Number(cells[bytes]) > HEAVY_BYTES || HEAVY_IMAGES.has(name),
      body: () => readFile(join(CORPUS_DIR, name)),
    };
  });
}

function pdfOf(pages: number, save = 'compress'): Uint8Array {
  const doc = new mupdf.PDFDocument();
  const font = doc.addSimpleFont(new mupdf.Font('Helvetica'));
  const resources = doc.addObject({ Font: { F1: font } });
  for (let i = 1; i <= pages; i++) {
    const content = [`0.${i % 10} 0.3 0.6 rg 40 ${300 + (i % 7) * 20} 300 80 re f`, `BT /F1 18 Tf 0 0 0 rg 50 200 Td (soak page ${i} of ${pages}) Tj ET`].join('\n');
    doc.insertPage(-1, doc.addPage([0, 0, 420, 595], i % 5 === 0 ? 90 : 0, resources, content));
  }
  const bytes = doc.saveToBuffer(save).asUint8Array().slice();
  doc.destroy();
  return bytes;
}

/** PDFs made on the spot (the same bytes each time: a re-upload picks another document, so its etag differs). */
export function generatedDocs(): SoakDoc[] {
  return [
    { name: 'tiny.pdf', expected: { status: 'complete' }, heavy: false, body: async () => pdfOf(1) },
    { name: 'long-40p.pdf', expected: { status: 'complete' }, heavy: false, body: async () => pdfOf(40) },
    { name: 'encrypted.pdf', expected: { status: 'failed', code: 'ENCRYPTED' }, heavy: false, body: async () => pdfOf(2, 'encrypt=aes-256,user-password=soak,owner-password=owner') },
    { name: 'garbage.pdf', expected: { status: 'failed', code: 'NOT_PDF' }, heavy: false, body: async () => new TextEncoder().encode('this is no PDF at all, only text with a .pdf name\n'.repeat(20)) },
    { name: 'empty.pdf', expected: { status: 'failed', code: 'EMPTY' }, heavy: false, body: async () => new Uint8Array(0) },
  ];
}

/**
 * Every page's box as MuPDF gives it (its bounds: the page's crop box, turned by /Rotate), as the
 * page function's worker reports it for IIIF; undefined when the bytes do not open or need a
 * password. The soak's IIIF checks derive each page's full image from it (tools/soak/iiif.ts).
 */
export function pageBoxesOf(bytes: Uint8Array): PageBox[] | undefined {
  if (bytes.byteLength === 0) return undefined;
  let doc: mupdf.Document | undefined;
  try {
    doc = mupdf.Document.openDocument(bytes, 'application/pdf');
    if (doc.needsPassword()) return undefined;
    const boxes: PageBox[] = [];
    for (let i = 0; i < doc.countPages(); i++) {
      const page = doc.loadPage(i);
      boxes.push(page.getBounds() as PageBox);
      page.destroy();
    }
    return boxes.length > 0 ? boxes : undefined;
  } catch {
    return undefined;
  } finally {
    doc?.destroy();
  }
}
