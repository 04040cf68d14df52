/**
 * Pages larger than one band, and pages that hang: memory bounded by the band, not the page;
 * a page over its time limit fails alone and the document goes on in a fresh worker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInflate } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { writeGiantPagePdf } from '../fixtures/generated-pdfs.js';
import { CORPUS_DIR, collect, decodePng } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bands-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const options = (extra: Partial<RenderOptions>): RenderOptions => ({ ...DEFAULT_OUTPUT_OPTIONS, ...extra });

/** Reads a PNG stream: its IHDR size, and how many bytes its image data inflates to. */
async function pngShape(body: NodeJS.ReadableStream): Promise<{ width: number; height: number; rawBytes: number }> {
  const inflate = createInflate();
  let rawBytes = 0;
  inflate.on('data', (chunk: Buffer) => (rawBytes += chunk.byteLength));
  const inflated = new Promise<void>((resolve, reject) => inflate.on('end', resolve).on('error', reject));
  let pending = Buffer.alloc(0);
  let width = 0;
  let height = 0;
  for await (const chunk of body) {
    pending = Buffer.concat([pending, chunk as Buffer]);
    let at = width === 0 ? 8 : 0; // skip the signature once
    while (pending.length >= at + 12) {
      const length = pending.readUInt32BE(at);
      if (pending.length < at + 12 + length) break;
      const type = pending.toString('latin1', at + 4, at + 8);
      const data = pending.subarray(at + 8, at + 8 + length);
      if (type === 'IHDR') [width, height] = [data.readUInt32BE(0), data.readUInt32BE(4)];
      if (type === 'IDAT' && !inflate.write(Buffer.from(data))) await new Promise((r) => inflate.once('drain', r));
      if (type === 'IEND') inflate.end();
      at += 12 + length;
    }
    pending = pending.subarray(at);
  }
  await inflated;
  return { width, height, rawBytes };
}

describe('band rendering', () => {
  it('renders a 14400 pt page at 150 dpi at full size, 30000x30000 px, in bounded WebAssembly memory', { timeout: 180_000 }, async () => {
    const giant = join(dir, 'giant.pdf');
    await writeGiantPagePdf(giant);
    const job = await startRender(giant, options({ dpi: 150, maxPagePixels: 1_000_000_000 }));
    const shapes = [];
    for await (const page of job) {
      if (!page.ok) throw new Error(`${page.error.code}: ${page.error.message}`);
      expect([page.width, page.height, page.dpi]).toEqual([30000, 30000, 150]);
      shapes.push(await pngShape(page.body));
      expect((await page.finished).bytes).toBeGreaterThan(0);
    }
    expect(shapes).toEqual([{ width: 30000, height: 30000, rawBytes: 30000 * (30000 * 3 + 1) }]);
    // A whole-page pixmap would be 2.7 GB; the worker never held more than a few bands.
    expect(job.stats.wasmHeapPeakBytes).toBeLessThan(256 * 2 ** 20);
  });

  const renderBoth = async (file: string) => {
    const render = async (bandBytes?: number) =>
      collect(await startRender(join(CORPUS_DIR, file), options({ dpi: 72, pages: [{ from: 1, to: 2 }], ...(bandBytes ? { bandBytes } : {}) })));
    const whole = await render();
    const banded = await render(50_000); // a few dozen rows per band
    expect(banded.length, file).toBe(whole.length);
    return whole.map((page, i) => {
      const other = banded[i]!;
      if (!page.ok || !other.ok) throw new Error(`${file}: page failed`);
      const a = decodePng(page.bytes);
      const b = decodePng(other.bytes);
      expect([b.width, b.height], file).toEqual([a.width, a.height]);
      let differing = 0;
      for (let p = 0; p < a.data.length; p += 4) if (a.data.readUInt32BE(p) !== b.data.readUInt32BE(p)) differing++;
      return { page: page.pageNumber, differing, pixels: a.width * a.height };
    });
  };

  // Each band is drawn with 32 rows of margin above and below (thrown away), so a path or
  // glyph crossing a band edge is rasterized as on a whole page: text and line art come out
  // identical, and so does this corpus's tensor-patch shading.
  it('gives the same pixels in bands as in one piece on text, line art, Type3 and shading pages', { timeout: 120_000 }, async () => {
    for (const file of ['federal-register-15p.pdf', 'arabic-rotations-4p.pdf', 'tracemonkey-paper-14p.pdf', 'matplotlib-type3.pdf', 'geotopo-thesis-117p-cff-mesh.pdf', 'tensor-shading-illustrator.pdf']) {
      const results = await renderBoth(file);
      expect(results.map((r) => r.differing), file).toEqual(results.map(() => 0));
    }
  });

  // Where MuPDF decodes only the part of an image a band shows, or lays a lattice shading's mesh
  // over the band, the resampling differs by a phase: measured under 1% of the pixels.
  it('differs in bands only by resampling on pages with subsampled images and lattice shadings', { timeout: 120_000 }, async () => {
    for (const file of ['tam-review-23p-type1-cff.pdf', 'lattice-shading-type5.pdf', 'blend-modes-all-16.pdf']) {
      for (const r of await renderBoth(file)) expect(r.differing / r.pixels, `${file} page ${r.page}`).toBeLessThan(0.01);
    }
  });
});

describe('page time limit', () => {
  it('fails the pages over the limit one by one, in fresh workers, and stops after a few', { timeout: 60_000 }, async () => {
    // No real page renders within 1 ms: each one times out, and the worker is replaced.
    const job = await startRender(join(CORPUS_DIR, 'tracemonkey-paper-14p.pdf'), options({ dpi: 150, pageTimeoutMs: 1 }));
    const results = await collect(job);
    expect(results.map((r) => r.pageNumber)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    const codes = results.map((r) => (r.ok ? 'OK' : r.error.code));
    const timedOut = codes.filter((c) => c === 'PAGE_TIMEOUT').length;
    expect(codes.slice(0, timedOut).every((c) => c === 'PAGE_TIMEOUT'), codes.join()).toBe(true);
    expect(timedOut).toBe(4);
    // After that many, the rest is not attempted rather than ground through worker after worker.
    expect(codes.slice(timedOut).every((c) => c === 'PAGE_CRASHED'), codes.join()).toBe(true);
    expect(job.stats.workers).toBe(4);
  });
});
