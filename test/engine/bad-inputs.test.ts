/**
 * Inputs that are not good PDFs (generated in a temp dir; corpus files read in place), and the
 * pure option logic: page selection and the pixel budget.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { DEFAULT_JOB_OPTIONS } from '../../lib/job/options.js';
import { runRenderJob } from '../../lib/job/run-job.js';
import { DOCUMENT_ERROR_CODES, RenderError } from '../../lib/engine/errors.js';
import { parsePageSelection } from '../../lib/config/settings.js';
import { DEFAULT_OUTPUT_OPTIONS, fitPage, selectPages, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { CORPUS_DIR, REPO_ROOT, collect, decodePng, errorCodeOf, readCorpusManifest } from './helpers.js';

/** The warning of a repaired document: REPAIRED, then what MuPDF said. */
const repaired = (warnings: readonly string[]): boolean => warnings.some((w) => w.startsWith('REPAIRED: MuPDF had to repair the document ('));
const opts = (extra: Partial<RenderOptions> = {}): RenderOptions => ({ ...DEFAULT_OUTPUT_OPTIONS, dpi: 36, ...extra });

let dir: string;
const file = (name: string, data: Uint8Array | string): string => {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
};
/** The first half of a corpus file: no xref table, no trailer, half the objects. */
const truncated = (corpusFile: string): string => {
  const bytes = readFileSync(join(CORPUS_DIR, corpusFile));
  return file(`half-${corpusFile}`, bytes.subarray(0, Math.floor(bytes.length / 2)));
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'render-bad-inputs-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('bad inputs', () => {
  it('zero bytes -> EMPTY', async () => {
    let caught: unknown;
    await startRender(file('empty.pdf', new Uint8Array()), opts()).catch((err: unknown) => (caught = err));
    expect(caught).toBeInstanceOf(RenderError);
    expect((caught as RenderError).code).toBe('EMPTY');
    expect((caught as RenderError).permanent).toBe(true);
  });

  it('random bytes -> NOT_PDF', async () => {
    let bytes = randomBytes(64 * 1024);
    while (bytes.includes('%PDF')) bytes = randomBytes(64 * 1024);
    expect(await errorCodeOf(startRender(file('random.pdf', bytes), opts()))).toBe('NOT_PDF');
  });

  it('an HTML page named .pdf -> NOT_PDF (MuPDF would otherwise lay it out and render it)', async () => {
    const html = '<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1><p>The requested URL was not found.</p></body></html>\n';
    expect(await errorCodeOf(startRender(file('error-page.pdf', html), opts()))).toBe('NOT_PDF');
  });

  it('a PNG image named .pdf -> NOT_PDF', async () => {
    const png = new PNG({ width: 8, height: 8 });
    png.data.fill(200);
    expect(await errorCodeOf(startRender(file('image.pdf', PNG.sync.write(png)), opts()))).toBe('NOT_PDF');
  });

  it('a %PDF- header followed by no objects -> NOT_PDF', async () => {
    expect(await errorCodeOf(startRender(file('header-only.pdf', '%PDF-1.7\njust words, no objects\n'), opts()))).toBe('NOT_PDF');
  });

  it('a minimal valid PDF written here renders (the harness itself is sound)', async () => {
    const content = deflateSync(Buffer.from('0 0 1 rg 10 10 80 40 re f'));
    const objects = [
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 144 72] /Contents 4 0 R >>',
    ];
    let pdf = '%PDF-1.4\n';
    const offsets: number[] = [];
    objects.forEach((body, i) => {
      offsets.push(pdf.length);
      pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
    });
    offsets.push(pdf.length);
    const head = Buffer.from(`${pdf}4 0 obj\n<< /Length ${content.length} /Filter /FlateDecode >>\nstream\n`, 'latin1');
    const tail = '\nendstream\nendobj\n';
    const xrefAt = head.length + content.length + tail.length;
    const xref = `xref\n0 5\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n${xrefAt}\n%%EOF\n`;
    const path = file('minimal.pdf', Buffer.concat([head, content, Buffer.from(tail + xref, 'latin1')]));
    const job = await startRender(path, opts({ dpi: 72 }));
    expect(job.warnings).toEqual([]);
    const [page] = await collect(job);
    expect(page?.ok).toBe(true);
    if (!page?.ok) return;
    const png = decodePng(page.bytes);
    expect([png.width, png.height]).toEqual([144, 72]);
    // The blue rectangle is there: pixel (20, 72-20) is pure blue.
    const at = (x: number, y: number) => [...png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3)];
    expect(at(20, 52)).toEqual([0, 0, 255]);
    expect(at(120, 10)).toEqual([255, 255, 255]);
  });

  // What actually happens to the first half of a file depends on where its objects sit:
  // repair either finds the pages (rendered, with the repair warning) or finds no page tree.
  it.each([
    ['arabic-rotations-4p.pdf', 'repaired'],
    ['jbig2-scan-4p.pdf', 'repaired'],
    ['tracemonkey-paper-14p.pdf', 'CORRUPT'],
    ['federal-register-15p.pdf', 'CORRUPT'],
  ] as const)('the first half of %s -> %s', { timeout: 30_000 }, async (corpusFile, outcome) => {
    const path = truncated(corpusFile);
    let job;
    try {
      job = await startRender(path, opts());
    } catch (err) {
      expect(err).toBeInstanceOf(RenderError);
      const { code, message } = err as RenderError;
      expect(code).toBe('CORRUPT');
      expect(message).toMatch(/\S/);
      expect(outcome).toBe('CORRUPT');
      return;
    }
    expect(outcome).toBe('repaired');
    expect(repaired(job.warnings)).toBe(true);
    expect(job.pageCount).toBeGreaterThan(0);
    const results = await collect(job);
    expect(results.map((r) => r.pageNumber)).toEqual(job.pageNumbers);
    for (const result of results) {
      if (result.ok) expect(decodePng(result.bytes).width).toBe(result.width);
      else expect(result.error.code).toMatch(/^PAGE_/);
    }
    expect(results.filter((r) => r.ok).length).toBeGreaterThan(0);
  });

  it('every truncated corpus file ends with the repair warning or a document error code', { timeout: 60_000 }, async () => {
    // Small files only, to stay fast; each outcome must be one of the two allowed.
    const entries = readCorpusManifest().filter((e) => e.expected === 'renders' && e.bytes < 120_000 && e.pages <= 8);
    expect(entries.length).toBeGreaterThan(5);
    for (const entry of entries) {
      const path = truncated(entry.file);
      try {
        const job = await startRender(path, opts({ pages: [{ from: 1, to: 1 }] }));
        expect(repaired(job.warnings), entry.file).toBe(true);
        await collect(job);
      } catch (err) {
        expect(err, entry.file).toBeInstanceOf(RenderError);
        expect(['CORRUPT', 'NOT_PDF'], `${entry.file}: ${(err as Error).message}`).toContain((err as RenderError).code);
      }
    }
  });

  it.each(readCorpusManifest().filter((e) => e.expected === 'needs-password').map((e) => e.file))(
    'password-protected %s -> ENCRYPTED, a failed manifest',
    { timeout: 30_000 },
    async (corpusFile) => {
      const path = join(CORPUS_DIR, corpusFile);
      expect(await errorCodeOf(startRender(path, opts()))).toBe('ENCRYPTED');
      const { manifest } = await runRenderJob({
        filePath: path,
        source: { file: path, etag: 'x', size: 1 },
        options: { ...DEFAULT_JOB_OPTIONS, dpi: 36 },
        sink: { putPage: () => Promise.reject(new Error('no page expected')), putFile: () => Promise.reject(new Error('no file expected')) },
      });
      expect(manifest).toMatchObject({ status: 'failed', pageCount: 0, pages: [], error: { code: 'ENCRYPTED' } });
    },
  );

  it('every document error code is permanent, job errors are not', () => {
    for (const code of DOCUMENT_ERROR_CODES) expect(new RenderError(code, 'x').permanent).toBe(true);
    expect(new RenderError('ABORTED', 'x').permanent).toBe(false);
    expect(new RenderError('WORKER_FAILED', 'x').permanent).toBe(false);
  });

  it('the CLI exits 2 with a failed manifest for a non-PDF, 0 for a good one', { timeout: 30_000 }, () => {
    const out = join(dir, 'cli-out');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'tools/render.ts', join(CORPUS_DIR, 'not-a-pdf.pdf'), '--out', out, '--dpi', '36'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(bad.status, bad.stderr).toBe(2);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toMatchObject({ status: 'failed', error: { code: 'NOT_PDF' } });
    const good = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'tools/render.ts', join(CORPUS_DIR, 'matplotlib-type3.pdf'), '--out', out, '--dpi', '36', '--format', 'jpeg'],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    expect(good.status, good.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toMatchObject({ status: 'complete', pageCount: 1 });
    expect(readFileSync(join(out, 'page-0001.jpg')).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  });
});

describe('page selection', () => {
  it('parses single pages, ranges and open ranges', () => {
    expect(parsePageSelection('1-3,7,10-')).toEqual([{ from: 1, to: 3 }, { from: 7, to: 7 }, { from: 10 }]);
    expect(parsePageSelection(' 2 - 4 , 9 ')).toEqual([{ from: 2, to: 4 }, { from: 9, to: 9 }]);
    expect(parsePageSelection('5-5')).toEqual([{ from: 5, to: 5 }]);
  });

  it.each(['', '0', '3-1', 'a', '1-2-3', '-5', '1,,2', '1.5', '0-3'])('rejects %j with a message that quotes it', (text) => {
    expect(() => parsePageSelection(text)).toThrow(/invalid page (selection|range)/);
  });

  it('selects ascending unique pages within the document and maxPages', () => {
    expect(selectPages(10, { maxPages: 0 })).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(selectPages(10, { maxPages: 3 })).toEqual([1, 2, 3]);
    expect(selectPages(10, { maxPages: 0, pages: parsePageSelection('9-,2,1-3') })).toEqual([1, 2, 3, 9, 10]);
    expect(selectPages(10, { maxPages: 4, pages: parsePageSelection('3-8') })).toEqual([3, 4]);
    expect(selectPages(5, { maxPages: 0, pages: parsePageSelection('4-99,7') })).toEqual([4, 5]);
    expect(selectPages(5, { maxPages: 0, pages: parsePageSelection('6-') })).toEqual([]);
  });
});

describe('fitPage and the pixel budget', () => {
  const letter: [number, number, number, number] = [0, 0, 612, 792];

  it('gives points x dpi / 72 when the page fits', () => {
    expect(fitPage(letter, 72, 40_000_000)).toEqual({ dpi: 72, width: 612, height: 792 });
    expect(fitPage(letter, 150, 40_000_000)).toEqual({ dpi: 150, width: 1275, height: 1650 });
    expect(fitPage([0, 0, 792, 612], 36, 1e9)).toEqual({ dpi: 36, width: 396, height: 306 });
    // Fractional boxes round outwards like MuPDF's pixmap bounds.
    expect(fitPage([0, 0, 3294.24, 2514.6], 150, 1e9)).toEqual({ dpi: 150, width: 6863, height: 5239 });
  });

  it('lowers the dpi to the largest whole value that fits the budget', () => {
    for (const budget of [1_000_000, 200_000, 12_345, 500]) {
      const g = fitPage(letter, 150, budget)!;
      expect(g.dpi).toBeLessThan(150);
      expect(g.width * g.height).toBeLessThanOrEqual(budget);
      const above = fitPage(letter, g.dpi + 1, Number.MAX_SAFE_INTEGER)!;
      expect(above.width * above.height, `dpi ${g.dpi + 1} would fit ${budget}`).toBeGreaterThan(budget);
    }
    // The 8400 pt page at 150 dpi is 306 Mpx: the 40 Mpx default brings it to 54 dpi.
    expect(fitPage([0, 0, 8400, 8400], 150, 40_000_000)).toEqual({ dpi: 54, width: 6300, height: 6300 });
  });

  it('returns null when even 1 dpi does not fit', () => {
    expect(fitPage(letter, 150, 50)).toBeNull();
  });

  it('a page rendered with a small maxPagePixels comes back at a lower dpi within the budget', { timeout: 30_000 }, async () => {
    const maxPagePixels = 150_000;
    const job = await startRender(join(CORPUS_DIR, 'arabic-rotations-4p.pdf'), opts({ dpi: 150, maxPagePixels }));
    const results = await collect(job);
    expect(results).toHaveLength(4);
    for (const r of results) {
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect(r.dpi).toBeLessThan(150);
      expect(r.dpi).toBeGreaterThan(1);
      expect(r.width * r.height).toBeLessThanOrEqual(maxPagePixels);
      const png = decodePng(r.bytes);
      expect([png.width, png.height]).toEqual([r.width, r.height]);
      // Rotation still respected: 90/270 pages are landscape.
      expect(png.width > png.height).toBe(r.pageNumber % 2 === 1);
    }
  });

  it('a page over the budget even at 1 dpi fails alone with PAGE_TOO_LARGE', { timeout: 30_000 }, async () => {
    const job = await startRender(join(CORPUS_DIR, 'arabic-rotations-4p.pdf'), opts({ maxPagePixels: 10 }));
    const results = await collect(job);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['PAGE_TOO_LARGE', 'PAGE_TOO_LARGE', 'PAGE_TOO_LARGE', 'PAGE_TOO_LARGE']);
  });
});
