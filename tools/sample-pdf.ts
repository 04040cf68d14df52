/**
 * A small PDF made on the spot (with MuPDF), so `npm run local` has something to render on a
 * machine with no PDF at hand: three pages, one of them rotated, with text and vector art. Ask
 * for more pages to see fan-out at work (`npm run local -- --sample-pages 450`).
 *
 * Also a command: `npx tsx tools/sample-pdf.ts [file.pdf] [--pages N]` writes one (default ./sample.pdf) and prints its path.
 */
import { writeFile } from 'node:fs/promises';
import { tempFolder } from './cleanup.js';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realpathSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as mupdf from 'mupdf';
import { parseIntSetting } from '../lib/config/settings.js';

/** The largest sample: plenty for a fan-out demo, still a few seconds to make. */
export const MAX_SAMPLE_PAGES = 5000;

export async function writeSamplePdf(options: { pages?: number; path?: string } = {}): Promise<string> {
  const count = options.pages ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > MAX_SAMPLE_PAGES) throw new Error(`a sample of ${count} pages: expected a whole number of pages from 1 to ${MAX_SAMPLE_PAGES}`);
  const doc = new mupdf.PDFDocument();
  const font = doc.addSimpleFont(new mupdf.Font('Helvetica'));
  const resources = doc.addObject({ Font: { F1: font } });
  const titles: [string, 0 | 90][] =
    count === 3
      ? [
          ['s3-pdf-render sample, page 1', 0],
          ['page 2: rotated, so landscape', 90],
          ['page 3: the last one', 0],
        ]
      : Array.from({ length: count }, (_, i) => [`s3-pdf-render sample, page ${i + 1} of ${count}`, i % 7 === 1 ? 90 : 0]);
  for (const [title, rotate] of titles) {
    const content = [
      '0.15 0.35 0.75 rg 72 600 468 120 re f',
      '0.9 0.5 0.1 RG 6 w 72 72 m 540 560 l S',
      `BT /F1 24 Tf 1 1 1 rg 90 650 Td (${title}) Tj ET`,
      'BT /F1 12 Tf 0 0 0 rg 72 100 Td (Rendered by MuPDF.js in a worker thread per document.) Tj ET',
    ].join('\n');
    doc.insertPage(-1, doc.addPage([0, 0, 612, 792], rotate, resources, content));
  }
  // A temporary sample goes when the process ends (tools/cleanup.ts): the tool that asked for it is done with it.
  const path = options.path ?? join(await tempFolder('pdf-sample-'), 'sample.pdf');
  await writeFile(path, doc.saveToBuffer('compress').asUint8Array());
  doc.destroy();
  return path;
}

// Real paths: run through a symlink (a linked checkout), the script is still this module.
if (process.argv[1] && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(resolve(process.argv[1]))) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { pages: { type: 'string', default: '3' } } });
  Promise.resolve()
    .then(() => writeSamplePdf({ pages: parseIntSetting('--pages', values.pages, 1, MAX_SAMPLE_PAGES), path: resolve(positionals[0] ?? 'sample.pdf') }))
    .then(
      (path) => console.log(path),
      (err: unknown) => {
        console.error(`error: ${(err as Error).message}`);
        process.exitCode = 2;
      },
    );
}
