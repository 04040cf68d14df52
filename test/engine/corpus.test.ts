/**
 * Every PDF of the shared corpus (read in place from test/corpus) reaches the outcome
 * MANIFEST.tsv expects, through the render core, at a low DPI so the whole corpus stays fast.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { isPageFailure, type ManifestPage } from '../../lib/job/manifest.js';
import { DEFAULT_JOB_OPTIONS } from '../../lib/job/options.js';
import { runRenderJob, type PageSink } from '../../lib/job/run-job.js';
import { RenderError } from '../../lib/engine/errors.js';
import { DEFAULT_OUTPUT_OPTIONS, type PageRange, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import {
  CORPUS_DIR,
  REPO_ROOT,
  collect,
  decodePng,
  errorCodeOf,
  expectedPixels,
  jpegSize,
  pageSizes,
  readBody,
  readCorpusManifest,
  type CorpusEntry,
} from './helpers.js';

const DPI = 36;
/** Documents longer than this render only a sample of pages: first two, middle, last. */
const SAMPLE_ABOVE = 20;
/** The warning of a repaired document: REPAIRED, then what MuPDF said. */
const repaired = (warnings: readonly string[]): boolean => warnings.some((w) => w.startsWith('REPAIRED: MuPDF had to repair the document ('));
const UNREADABLE_CODES: Record<string, string> = {
  'not-a-pdf.pdf': 'NOT_PDF',
  'zero-pages.pdf': 'NO_PAGES',
  'unreadable-brotli-filter.pdf': 'CORRUPT',
  'unreadable-page-tree.pdf': 'CORRUPT',
};

const corpus = readCorpusManifest();

function sample(entry: CorpusEntry): { ranges?: PageRange[]; numbers: number[] } {
  if (entry.pages <= SAMPLE_ABOVE) return { numbers: Array.from({ length: entry.pages }, (_, i) => i + 1) };
  const mid = Math.ceil(entry.pages / 2);
  const last = entry.pages;
  return {
    ranges: [{ from: 1, to: 2 }, { from: mid, to: mid }, { from: last, to: last }],
    numbers: [1, 2, mid, last],
  };
}

function options(extra: Partial<RenderOptions> = {}): RenderOptions {
  return { ...DEFAULT_OUTPUT_OPTIONS, dpi: DPI, ...extra };
}

/** Runs the whole job (render core + manifest) with an in-memory sink. */
async function renderToMemory(entry: CorpusEntry, opts: RenderOptions) {
  const stored = new Map<number, Buffer>();
  const sink: PageSink = {
    async putPage(page, fileName) {
      stored.set(page.pageNumber, await readBody(page.body));
      return `mem/${fileName}`;
    },
    putFile: async (_page, fileName) => `mem/${fileName}`,
  };
  const result = await runRenderJob({
    filePath: entry.path,
    source: { file: entry.path, etag: 'test', size: entry.bytes },
    options: { ...DEFAULT_JOB_OPTIONS, ...opts, pages: DEFAULT_JOB_OPTIONS.pages, ...(opts.pages ? { selection: opts.pages } : {}) },
    sink,
  });
  return { ...result, stored };
}

describe('corpus', () => {
  it('is in the repository (test/corpus) and matches MANIFEST.tsv, byte counts included', () => {
    expect(corpus.length).toBe(42);
    for (const entry of corpus) {
      expect(existsSync(entry.path), entry.path).toBe(true);
      expect(statSync(entry.path).size, entry.file).toBe(entry.bytes);
    }
    if (!process.env['CORPUS_DIR']) expect(relative(REPO_ROOT, CORPUS_DIR)).toMatch(/^test[/\\]corpus[/\\]?$/);
  });

  describe.each(corpus.filter((e) => e.expected === 'renders' || e.expected === 'broken-but-repairable').map((e) => [e.file, e] as const))(
    '%s',
    (_name, entry) => {
      it(`${entry.expected}: page count, every selected page OK, image sizes match the page boxes`, { timeout: 60_000 }, async () => {
        const { ranges, numbers } = sample(entry);
        const { manifest, stored, stats } = await renderToMemory(entry, options(ranges ? { pages: ranges } : {}));

        expect(manifest.error).toBeUndefined();
        expect(manifest.status).toBe('complete');
        expect(manifest.pageCount).toBe(entry.pages);
        if (entry.expected === 'broken-but-repairable') expect(repaired(manifest.warnings)).toBe(true);
        else expect(repaired(manifest.warnings)).toBe(false);
        expect(manifest.pages.map((p) => p.number)).toEqual(numbers);
        expect(manifest.pages.filter(isPageFailure)).toEqual([]);
        expect(stats.wasmHeapPeakBytes).toBeGreaterThan(0);

        const sizes = await pageSizes(entry.path, numbers);
        for (const p of manifest.pages as ManifestPage[]) {
          const bytes = stored.get(p.number)!;
          expect(bytes, `page ${p.number} stored`).toBeDefined();
          expect(p.contentType).toBe('image/png');
          expect(p.dpi).toBe(DPI);
          expect(p.bytes).toBe(bytes.byteLength);
          const png = decodePng(bytes);
          expect([png.width, png.height], `page ${p.number} PNG vs manifest`).toEqual([p.width, p.height]);
          const size = sizes.get(p.number);
          expect(size, `oracle size of page ${p.number}`).toBeDefined();
          const want = expectedPixels(size!, DPI);
          expect(Math.abs(png.width - want.width), `page ${p.number} width ${png.width} vs ${want.width.toFixed(1)}`).toBeLessThanOrEqual(1);
          expect(Math.abs(png.height - want.height), `page ${p.number} height ${png.height} vs ${want.height.toFixed(1)}`).toBeLessThanOrEqual(1);
        }
      });
    },
  );

  describe.each(corpus.filter((e) => e.expected === 'needs-password').map((e) => [e.file, e] as const))('%s', (_name, entry) => {
    it('needs-password: ENCRYPTED from the core and a failed manifest', { timeout: 30_000 }, async () => {
      let caught: unknown;
      await startRender(entry.path, options()).catch((err: unknown) => (caught = err));
      expect(caught).toBeInstanceOf(RenderError);
      expect((caught as RenderError).code).toBe('ENCRYPTED');
      expect((caught as RenderError).permanent).toBe(true);

      const { manifest, stored } = await renderToMemory(entry, options());
      expect(manifest.status).toBe('failed');
      expect(manifest.error?.code).toBe('ENCRYPTED');
      expect(manifest.pageCount).toBe(0);
      expect(manifest.pages).toEqual([]);
      expect(stored.size).toBe(0);
    });
  });

  describe.each(corpus.filter((e) => e.expected === 'unreadable').map((e) => [e.file, e] as const))('%s', (_name, entry) => {
    it(`unreadable: fails with ${UNREADABLE_CODES[entry.file]}`, { timeout: 30_000 }, async () => {
      const want = UNREADABLE_CODES[entry.file];
      expect(want, `expected code for ${entry.file}`).toBeDefined();
      expect(await errorCodeOf(startRender(entry.path, options()))).toBe(want);

      const { manifest, stored } = await renderToMemory(entry, options());
      expect(manifest.status).toBe('failed');
      expect(manifest.error?.code).toBe(want);
      expect(manifest.error?.message).toBeTruthy();
      expect(stored.size).toBe(0);
    });
  });

  it.each(['a0-poster-rotate90.pdf', 'arabic-rotations-4p.pdf', 'cmyk-jpeg.pdf'])(
    'JPEG output of %s: image/jpeg, SOF dimensions match the page box, gray pages with one component',
    { timeout: 30_000 },
    async (file) => {
      const entry = corpus.find((e) => e.file === file)!;
      const job = await startRender(entry.path, options({ format: 'jpeg', jpegQuality: 80 }));
      expect(job.pageCount).toBe(entry.pages);
      const sizes = await pageSizes(entry.path, job.pageNumbers);
      let seen = 0;
      for (const result of await collect(job)) {
        expect(result.ok, JSON.stringify(!result.ok && result.error)).toBe(true);
        if (!result.ok) continue;
        seen++;
        expect(result.contentType).toBe('image/jpeg');
        const sof = jpegSize(result.bytes);
        expect(sof.components).toBe(result.color === 'gray' ? 1 : 3);
        expect([sof.width, sof.height]).toEqual([result.width, result.height]);
        const want = expectedPixels(sizes.get(result.pageNumber)!, DPI);
        expect(Math.abs(sof.width - want.width)).toBeLessThanOrEqual(1);
        expect(Math.abs(sof.height - want.height)).toBeLessThanOrEqual(1);
      }
      expect(seen).toBe(entry.pages);
    },
  );
});
