/**
 * The job's deadline (RenderControl.deadline): the page drawing when it comes is cut off, not
 * failed; the job's last result says so, for that page, and nothing after it is rendered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS } from '../../lib/engine/options.js';
import { PageFailedError, prewarm, startRender, type PageResult } from '../../lib/engine/render.js';
import { writeManySegmentsPdf } from '../fixtures/generated-pdfs.js';
import { CORPUS_DIR, readBody } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'deadline-test-'));
/** One page of 1,000,000 path segments: about 3.5 s to draw here, longer than the deadlines below. */
const slowPdf = join(dir, 'segments.pdf');
/**
 * One page of 300,000 path segments: drawn whole (the million above runs out of memory drawn
 * whole, and is drawn in bands), it tells its size only once drawn, about 1 s here.
 */
const slowWholePdf = join(dir, 'segments-whole.pdf');
beforeAll(() => Promise.all([writeManySegmentsPdf(slowPdf, 1_000_000), writeManySegmentsPdf(slowWholePdf, 300_000), prewarm()]), 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/**
 * Drawn in bands of 1 MiB from the start, the page begins streaming (its size is told) before
 * its first band is drawn: the cut comes while its body is open.
 */
const BANDED = { ...DEFAULT_OUTPUT_OPTIONS, bandBytes: 2 ** 20 };

/** Every result, each begun page's body read and its `finished` awaited (its outcome kept). */
async function drain(results: AsyncIterable<PageResult>): Promise<{ result: PageResult; outcome?: unknown }[]> {
  const seen: { result: PageResult; outcome?: unknown }[] = [];
  for await (const result of results) {
    if (!result.ok) {
      seen.push({ result });
      continue;
    }
    const outcome = await readBody(result.body).then(
      () => result.finished,
      (err: unknown) => err,
    );
    seen.push({ result, outcome });
  }
  return seen;
}

describe('a deadline', () => {
  it('cuts a slow page off at the deadline: its stream fails as "deadline", the last result names the page, the job ends promptly', { timeout: 60_000 }, async () => {
    // Time enough for the worker to start and the page to begin streaming even on a loaded
    // machine, not to draw it (its 7 bands each draw the million segments: 8 s and more).
    const deadline = Date.now() + 3_000;
    // The page limit is far away: the deadline is what fires.
    const job = await startRender(slowPdf, { ...BANDED, pageTimeoutMs: 60_000 }, { deadline });
    const seen = await drain(job);
    const endedAfterDeadlineMs = Date.now() - deadline;
    expect(endedAfterDeadlineMs).toBeLessThan(1_500);
    const last = seen.at(-1)!.result;
    expect(last).toEqual({ ok: false, pageNumber: 1, error: { code: 'PAGE_TIMEOUT', message: 'cut off at the deadline' }, deadline: true });
    // The page had begun streaming: that stream failed, marked as the deadline's doing.
    const begun = seen.filter((s) => s.result.ok);
    expect(begun.map((s) => s.result.pageNumber)).toEqual([1]);
    const failure = begun[0]!.outcome;
    expect(failure).toBeInstanceOf(PageFailedError);
    expect((failure as PageFailedError).deadline).toBe(true);
    expect((failure as PageFailedError).pageError.code).toBe('PAGE_TIMEOUT');
    // No worker started again for the rest.
    expect(job.stats.workers).toBe(1);
  });

  it('a page cut off before it began streaming: no body, only the last result', { timeout: 60_000 }, async () => {
    const deadline = Date.now() + 300;
    const job = await startRender(slowWholePdf, DEFAULT_OUTPUT_OPTIONS, { deadline });
    const seen = await drain(job);
    expect(Date.now() - deadline).toBeLessThan(1_500);
    expect(seen.map((s) => s.result)).toEqual([{ ok: false, pageNumber: 1, error: { code: 'PAGE_TIMEOUT', message: 'cut off at the deadline' }, deadline: true }]);
  });

  it('a deadline already past cuts the first page, and no later page is rendered', { timeout: 60_000 }, async () => {
    const job = await startRender(join(CORPUS_DIR, 'tracemonkey-paper-14p.pdf'), DEFAULT_OUTPUT_OPTIONS, { deadline: Date.now() - 1 });
    const seen = await drain(job);
    expect(seen.every((s) => s.result.pageNumber === 1)).toBe(true);
    expect(seen.at(-1)!.result).toMatchObject({ ok: false, pageNumber: 1, deadline: true });
    expect(job.stats.workers).toBe(1);
  });

  it('a page limit shorter than the time left fails the page as before, not as a deadline', { timeout: 60_000 }, async () => {
    const job = await startRender(slowPdf, { ...BANDED, pageTimeoutMs: 1_000 }, { deadline: Date.now() + 60_000 });
    const seen = await drain(job);
    // The page had begun streaming: it fails through its stream, and no other result follows.
    expect(seen.map((s) => s.result.ok)).toEqual([true]);
    const failure = seen[0]!.outcome;
    expect(failure).toBeInstanceOf(PageFailedError);
    expect((failure as PageFailedError).pageError.code).toBe('PAGE_TIMEOUT');
    expect((failure as PageFailedError).deadline).toBe(false);
  });
});
