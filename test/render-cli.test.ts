/**
 * `npm run render` says what happened (issue 26): a selection of no page is an error, pages past
 * the end and a repaired document are warnings in the manifest and on the console before the
 * summary, --quality is the quality of the format asked for, and bad input is one line.
 * Each case spawns the CLI as a user runs it (about 2 s each).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../lib/job/manifest.js';
import { corpusFile } from '../tools/corpus.js';
import { truncatedPdf } from './fixtures/generated-pdfs.js';

const REPO = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'render-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let runs = 0;
function render(...args: string[]): { status: number | null; stderr: string; out: string; manifest: () => Manifest } {
  const out = join(work, `out-${++runs}`);
  const result = spawnSync(process.execPath, [join(REPO, 'node_modules/tsx/dist/cli.mjs'), 'tools/render.ts', ...args, '--out', out], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stderr: result.stderr, out, manifest: () => JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest };
}

const FOUR_PAGES = corpusFile('arabic-rotations-4p.pdf');

describe('npm run render', { timeout: 60_000 }, () => {
  it('a selection of no page is a failed INVALID_OPTIONS manifest naming the page count, exit 2', () => {
    const run = render(FOUR_PAGES, '--pages', '9', '--dpi', '20');
    expect(run.status).toBe(2);
    const manifest = run.manifest();
    expect(manifest.status).toBe('failed');
    expect(manifest.error).toEqual({ code: 'INVALID_OPTIONS', message: 'pages "9" select no page of this document: it has 4 pages' });
    expect(run.stderr).toContain('failed: INVALID_OPTIONS (pages "9" select no page of this document: it has 4 pages)');
  });

  it('pages past the end are a manifest warning, printed before the summary', () => {
    const run = render(FOUR_PAGES, '--pages', '1-2,7', '--dpi', '20');
    expect(run.status).toBe(0);
    const warning = 'pages 7 not rendered: the document has 4 pages';
    expect(run.manifest().warnings).toContain(warning);
    const lines = run.stderr.trim().split('\n');
    expect(lines.at(-2)).toBe(`warning: ${warning}`);
    expect(lines.at(-1)).toMatch(/^complete: 2 of 4 pages rendered/);
  });

  it('a truncated document: REPAIRED with MuPDF message before the summary, its lost pages failed, partial', () => {
    const file = join(work, 'truncated.pdf');
    writeFileSync(file, truncatedPdf());
    const run = render(file, '--dpi', '20');
    expect(run.status).toBe(1);
    const manifest = run.manifest();
    expect(manifest.status).toBe('partial');
    expect(manifest.pageCount).toBe(5);
    expect(manifest.pages.map((p) => ('error' in p ? `${p.number}:${p.error.code}` : `${p.number}`))).toEqual([
      '1',
      '2',
      '3:PAGE_RENDER_FAILED',
      '4:PAGE_RENDER_FAILED',
      '5:PAGE_RENDER_FAILED',
    ]);
    const repaired = manifest.warnings.find((w) => w.startsWith('REPAIRED: '));
    expect(repaired).toMatch(/^REPAIRED: MuPDF had to repair the document \(.*repair.*\)$/);
    const lines = run.stderr.trim().split('\n');
    expect(lines.at(-2)).toBe(`warning: ${repaired}`);
    expect(lines.at(-1)).toMatch(/^partial: 2 of 5 pages rendered, 3 failed/);
  });

  it('--quality is the quality of the format asked for: WebP 20 is applied and recorded', () => {
    const low = render(FOUR_PAGES, '--pages', '1', '--dpi', '40', '--format', 'webp', '--quality', '20');
    const high = render(FOUR_PAGES, '--pages', '1', '--dpi', '40', '--format', 'webp', '--quality', '95');
    expect([low.status, high.status]).toEqual([0, 0]);
    expect(low.manifest().options).toMatchObject({ format: 'webp', webpQuality: 20 });
    const bytes = (run: typeof low) => (run.manifest().pages[0] as { bytes: number }).bytes;
    expect(bytes(low)).toBeLessThan(bytes(high));
  });

  it('--quality with --format avif is AVIF\'s: applied and recorded as avifQuality, not as JPEG\'s; PNG has none and refuses it', () => {
    const low = render(FOUR_PAGES, '--pages', '1', '--dpi', '40', '--format', 'avif', '--quality', '20');
    const high = render(FOUR_PAGES, '--pages', '1', '--dpi', '40', '--format', 'avif', '--quality', '90');
    expect([low.status, high.status]).toEqual([0, 0]);
    expect(low.manifest().options).toMatchObject({ format: 'avif', avifQuality: 20, jpegQuality: 85 });
    const bytes = (run: typeof low) => (run.manifest().pages[0] as { bytes: number }).bytes;
    expect(bytes(low)).toBeLessThan(bytes(high));
    const png = render(FOUR_PAGES, '--quality', '50');
    expect([png.status, png.stderr]).toEqual([1, 'error: --quality="50" is invalid: a PNG page has no quality (it sets the quality of jpeg, webp or avif)\n']);
  });

  it('a missing file, an unknown flag and a bad value are one line each, exit 1', () => {
    const missing = render('missing.pdf');
    expect([missing.status, missing.stderr]).toEqual([1, 'error: missing.pdf: no such file\n']);
    const unknown = render(FOUR_PAGES, '--webp-quality', '20');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/^error: Unknown option '--webp-quality'.*\n$/);
    const bad = render(FOUR_PAGES, '--format', 'jpeg', '--quality', '0');
    expect([bad.status, bad.stderr]).toEqual([1, 'error: --quality="0" is invalid: expected a whole number from 1 to 100\n']);
  });
});
