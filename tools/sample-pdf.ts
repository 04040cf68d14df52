/**
 * A small PDF made on the spot (with MuPDF), so `npm run local` has something to render on a
 * machine with no PDF at hand: three pages, one of them rotated, with text and vector art.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mupdf from 'mupdf';

export async function writeSamplePdf(): Promise<string> {
  const doc = new mupdf.PDFDocument();
  const font = doc.addSimpleFont(new mupdf.Font('Helvetica'));
  const resources = doc.addObject({ Font: { F1: font } });
  const pages: [string, 0 | 90][] = [
    ['s3-pdf-render sample, page 1', 0],
    ['page 2: rotated, so landscape', 90],
    ['page 3: the last one', 0],
  ];
  for (const [title, rotate] of pages) {
    const content = [
      '0.15 0.35 0.75 rg 72 600 468 120 re f',
      '0.9 0.5 0.1 RG 6 w 72 72 m 540 560 l S',
      `BT /F1 24 Tf 1 1 1 rg 90 650 Td (${title}) Tj ET`,
      'BT /F1 12 Tf 0 0 0 rg 72 100 Td (Rendered by MuPDF.js in a worker thread per document.) Tj ET',
    ].join('\n');
    doc.insertPage(-1, doc.addPage([0, 0, 612, 792], rotate, resources, content));
  }
  const path = join(await mkdtemp(join(tmpdir(), 'pdf-sample-')), 'sample.pdf');
  await writeFile(path, doc.saveToBuffer('compress').asUint8Array());
  doc.destroy();
  return path;
}
