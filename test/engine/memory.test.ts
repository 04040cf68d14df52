/**
 * The memory model (DESIGN.md §5): a warm process returns to its baseline after a huge PDF
 * because each document's MuPDF lives and dies with its worker. RSS is measured in a child
 * process (bench/memory-probe.ts, run with --expose-gc) so the test runner's own heap does
 * not blur it. A control run renders the same documents with MuPDF in-process and must NOT
 * return its memory, which shows the check can fail.
 *
 * MEMORY_TEST_BYPASS_WORKER=1 runs the main loop in the control mode too: it must go red.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROCESS_ENV } from '../../lib/config/env.js';
import { DEFAULT_OUTPUT_OPTIONS, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { CORPUS_DIR, REPO_ROOT, collect, readPage } from './helpers.js';

const MiB = 2 ** 20;
/**
 * How far above the baseline (after job 0) a job may end. On Node 24 the worker path keeps a
 * one-time step of up to 32 MiB after the first heavy job, then stays flat (CI, .ci/run, 5
 * December 2026: 173 MiB after job 0, 199-205 for jobs 2-19), which made 30 MiB fail now and then.
 * The defect this test is for keeps far more: MuPDF in-process (MEMORY_TEST_BYPASS_WORKER=1)
 * ended every job 240 MiB above job 0 (123 → 363 MiB), so 60 MiB still fails it fourfold.
 */
const RSS_SLACK = 60 * MiB;
const HEAVY = join(CORPUS_DIR, 'go-poster-3294pt.pdf');
const LIGHT = join(CORPUS_DIR, 'tracemonkey-paper-14p.pdf');
const BOOK = join(CORPUS_DIR, 'freeculture-book-352p.pdf');
/**
 * WASM heap budgets: the 3294x2514 pt poster at 150 dpi (36 Mpx, 108 MB as one RGB pixmap; PNG
 * pages are drawn in bands, so far less), and three text pages.
 */
const HEAVY_WASM_BUDGET = 256 * MiB;
const LIGHT_WASM_BUDGET = 128 * MiB;

interface ProbeJob {
  job: number;
  kind: 'light' | 'heavy';
  ms: number;
  pages: number;
  bytes: number;
  wasmHeapPeakBytes: number;
  rss: number;
  vmHwm: number;
}
interface Probe {
  mode: 'worker' | 'direct';
  startRss: number;
  results: ProbeJob[];
}

async function probe(jobs: number, direct: boolean): Promise<Probe> {
  const args = ['--expose-gc', '--import', 'tsx', 'bench/memory-probe.ts', '--jobs', String(jobs), '--dpi', '150', '--heavy', HEAVY, '--light', LIGHT];
  if (direct) args.push('--direct');
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, ...PROCESS_ENV }, maxBuffer: 16 * MiB, timeout: 150_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Probe;
}

/** Jobs whose RSS (after GC) ended more than RSS_SLACK above the baseline taken after job 0. */
function overBaseline(p: Probe): string[] {
  const baseline = p.results[0]!.rss;
  return p.results
    .slice(1)
    .filter((r) => r.rss > baseline + RSS_SLACK)
    .map((r) => `job ${r.job} (${r.kind}): RSS ${(r.rss / MiB).toFixed(0)} MiB > baseline ${(baseline / MiB).toFixed(0)} + ${RSS_SLACK / MiB} MiB`);
}

const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;

describe('memory', () => {
  // Under the function's deployed process environment (PROCESS_ENV, set in template.yaml).
  it('20 jobs alternating a heavy and a light PDF: RSS returns to baseline after each', { timeout: 180_000 }, async () => {
    const bypass = process.env['MEMORY_TEST_BYPASS_WORKER'] === '1';
    const p = await probe(20, bypass);
    const table = p.results.map((r) => `${r.job} ${r.kind} ${r.ms}ms rss=${mib(r.rss)} hwm=${mib(r.vmHwm)} wasm=${mib(r.wasmHeapPeakBytes)}`).join('\n');
    expect(p.results).toHaveLength(20);
    expect(overBaseline(p), table).toEqual([]);
    // The heavy document really was heavy: the process went far above the baseline and came back.
    // (The peak is 180-195 MiB above it here, with the engine of fb4c6c3 and of today alike:
    // bench/memory-probe.ts, 4 jobs; 200 was too close.)
    const baseline = p.results[0]!.rss;
    expect(p.results.at(-1)!.vmHwm - baseline, table).toBeGreaterThan(150 * MiB);
    for (const r of p.results) {
      expect(r.pages).toBe(r.kind === 'heavy' ? 1 : 3);
      if (bypass) continue;
      if (r.kind === 'heavy') {
        expect(r.wasmHeapPeakBytes, table).toBeGreaterThan(2 * p.results[0]!.wasmHeapPeakBytes);
        expect(r.wasmHeapPeakBytes, table).toBeLessThan(HEAVY_WASM_BUDGET);
      } else {
        expect(r.wasmHeapPeakBytes, table).toBeGreaterThan(0);
        expect(r.wasmHeapPeakBytes, table).toBeLessThan(LIGHT_WASM_BUDGET);
      }
    }
  });

  it('CONTROL: the same rendering with MuPDF in-process, no worker, keeps its memory', { timeout: 120_000 }, async () => {
    const p = await probe(4, true);
    const [light, heavy] = p.results;
    expect(heavy!.rss - light!.rss, `light ${mib(light!.rss)} -> heavy ${mib(heavy!.rss)}`).toBeGreaterThan(150 * MiB);
    // ...so the very check the worker loop passes flags it.
    expect(overBaseline(p).length).toBeGreaterThanOrEqual(2);
  });

  describe('abort', () => {
    const opts: RenderOptions = { ...DEFAULT_OUTPUT_OPTIONS, dpi: 150 };
    const openFds = (path: string) =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === path;
        } catch {
          return false;
        }
      }).length;

    it('mid-document: the job ends with ABORTED within 1 s, releases the file, and the next job works', { timeout: 60_000 }, async () => {
      const controller = new AbortController();
      const job = await startRender(BOOK, opts, { signal: controller.signal });
      expect(job.pageCount).toBe(352);
      let pages = 0;
      let abortedAt = 0;
      let caught: unknown;
      const bodyErrors: string[] = [];
      try {
        for await (const result of job) {
          expect(result.ok).toBe(true);
          if (!result.ok) continue;
          // The page being streamed when the worker is stopped fails through its body.
          const page = await readPage(result);
          if (page.ok) pages++;
          else bodyErrors.push(page.error.code);
          // After a few pages, abort while the worker is busy drawing the next ones.
          if (pages === 3 && !abortedAt) setTimeout(() => ((abortedAt = performance.now()), controller.abort()), 30);
        }
      } catch (err) {
        caught = err;
      }
      const elapsed = performance.now() - abortedAt;
      expect(abortedAt).toBeGreaterThan(0);
      expect((caught as { code?: string }).code, String(caught)).toBe('ABORTED');
      expect(elapsed).toBeLessThan(1000);
      expect(pages).toBeLessThan(352);
      expect(bodyErrors.every((code) => code === 'PAGE_CRASHED'), bodyErrors.join()).toBe(true);
      expect(openFds(BOOK)).toBe(0);

      const next = await startRender(LIGHT, { ...opts, pages: [{ from: 1, to: 2 }] });
      const results = await collect(next);
      expect(results.map((r) => r.ok)).toEqual([true, true]);
    });

    it('in the middle of one long page (8400 pt square, ~3 s to draw): the worker is stopped at once', { timeout: 60_000 }, async () => {
      const controller = new AbortController();
      const job = await startRender(join(CORPUS_DIR, 'huge-8400pt-mono.pdf'), opts, { signal: controller.signal });
      const opened = performance.now();
      let abortedAt = 0;
      setTimeout(() => ((abortedAt = performance.now()), controller.abort()), 500);
      const codes: string[] = [];
      try {
        for await (const result of job) {
          const page = result.ok ? await readPage(result) : result;
          codes.push(page.ok ? 'ok' : page.error.code);
        }
        codes.push('ended without ABORTED');
      } catch (err) {
        codes.push((err as { code?: string }).code ?? String(err));
      }
      const elapsed = performance.now() - abortedAt;
      expect(abortedAt - opened).toBeGreaterThanOrEqual(490);
      // The page being drawn fails with the worker; the job then reports the abort.
      expect(codes.at(-1)).toBe('ABORTED');
      expect(codes.slice(0, -1).every((code) => code === 'PAGE_CRASHED'), codes.join()).toBe(true);
      expect(elapsed).toBeLessThan(1000);
    });

    it('while the document is opening: ABORTED, and nothing is left open', { timeout: 60_000 }, async () => {
      const controller = new AbortController();
      const started = startRender(BOOK, opts, { signal: controller.signal });
      controller.abort();
      let caught: unknown;
      await started.catch((err: unknown) => (caught = err));
      expect((caught as { code?: string }).code, String(caught)).toBe('ABORTED');
      expect(openFds(BOOK)).toBe(0);
    });
  });
});
