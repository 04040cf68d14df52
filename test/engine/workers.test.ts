/**
 * Several workers per job (RenderControl.workers): pages drawn side by side, each worker with
 * its own MuPDF, given out in page order, byte for byte what one worker gives; failures and the
 * deadline keep their meaning; every worker ends with the job.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS, type RenderOptions } from '../../lib/engine/options.js';
import { PageFailedError, startRender, workerCount, workersInUse, type RenderControl } from '../../lib/engine/render.js';
import { CORPUS_DIR, readBody } from './helpers.js';

const TRACEMONKEY = join(CORPUS_DIR, 'tracemonkey-paper-14p.pdf');

interface Seen {
  pageNumber: number;
  /** 'ok' with the bytes' hash, or the error code (of the result, or of the stream that failed). */
  outcome: string;
  deadline?: boolean;
}

/** Every result in the order given, each body read to its end. */
async function run(file: string, options: RenderOptions, control: RenderControl): Promise<{ seen: Seen[]; workers: number }> {
  const job = await startRender(file, options, control);
  const seen: Seen[] = [];
  for await (const page of job) {
    if (!page.ok) {
      seen.push({ pageNumber: page.pageNumber, outcome: page.error.code, ...(page.deadline ? { deadline: true } : {}) });
      continue;
    }
    try {
      const bytes = await readBody(page.body);
      await page.finished;
      seen.push({ pageNumber: page.pageNumber, outcome: `ok ${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}` });
    } catch (err) {
      if (!(err instanceof PageFailedError)) throw err;
      seen.push({ pageNumber: page.pageNumber, outcome: err.pageError.code, ...(err.deadline ? { deadline: true } : {}) });
    }
  }
  return { seen, workers: job.stats.workers };
}

describe('several workers per job', () => {
  it('two workers give the pages in order, the same bytes as one, and end with the job', { timeout: 120_000 }, async () => {
    const one = await run(TRACEMONKEY, DEFAULT_OUTPUT_OPTIONS, { workers: 1 });
    expect(workersInUse()).toBe(0);
    const two = await run(TRACEMONKEY, DEFAULT_OUTPUT_OPTIONS, { workers: 2 });
    expect(workersInUse()).toBe(0);
    expect(two.seen.map((s) => s.pageNumber)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    expect(two.seen.every((s) => s.outcome.startsWith('ok'))).toBe(true);
    expect(two.seen).toEqual(one.seen);
    expect([one.workers, two.workers]).toEqual([1, 2]);
  });

  it('a one-page selection starts one worker whatever is asked', { timeout: 60_000 }, async () => {
    const { seen, workers } = await run(TRACEMONKEY, { ...DEFAULT_OUTPUT_OPTIONS, pages: [{ from: 3, to: 3 }] }, { workers: 3 });
    expect(seen.map((s) => s.pageNumber)).toEqual([3]);
    expect(workers).toBe(1);
    expect(workersInUse()).toBe(0);
  });

  it('pages over their time limit fail one by one, in order, in fresh workers, and the job stops after a few', { timeout: 120_000 }, async () => {
    const { seen, workers } = await run(TRACEMONKEY, { ...DEFAULT_OUTPUT_OPTIONS, pageTimeoutMs: 1 }, { workers: 2 });
    expect(seen.map((s) => s.pageNumber)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    const codes = seen.map((s) => s.outcome);
    const timedOut = codes.filter((c) => c === 'PAGE_TIMEOUT').length;
    // Three restarts allowed: the fourth failure ends the document; the rest is "not attempted".
    expect(timedOut).toBe(4);
    expect(codes.slice(timedOut).every((c) => c === 'PAGE_CRASHED'), codes.join()).toBe(true);
    expect(workers).toBe(2 + 3);
    expect(workersInUse()).toBe(0);
  });

  it('the deadline stops every worker: pages before the cut are whole and in order, the last result names the earliest page cut', { timeout: 120_000 }, async () => {
    const deadline = Date.now() + 1_500;
    // At 300 dpi the 14 pages take several seconds, so the deadline falls among them.
    const { seen } = await run(TRACEMONKEY, { ...DEFAULT_OUTPUT_OPTIONS, dpi: 300 }, { workers: 2, deadline });
    expect(Date.now() - deadline).toBeLessThan(1_500);
    const last = seen.at(-1)!;
    expect(last).toMatchObject({ outcome: 'PAGE_TIMEOUT', deadline: true });
    const before = seen.filter((s) => s.pageNumber < last.pageNumber);
    expect(before.map((s) => s.pageNumber)).toEqual(Array.from({ length: last.pageNumber - 1 }, (_, i) => i + 1));
    expect(before.every((s) => s.outcome.startsWith('ok'))).toBe(true);
    // The cut page, if it had begun streaming, failed as cut off; a later page of the other lane
    // may have been whole before the deadline (the job resumes at the cut and draws it again).
    const after = seen.slice(before.length, -1);
    expect(after.every((s) => (s.pageNumber === last.pageNumber ? s.deadline === true : s.pageNumber > last.pageNumber && (s.deadline === true || s.outcome.startsWith('ok')))), JSON.stringify(after)).toBe(true);
    expect(last.pageNumber).toBeLessThan(14);
    expect(workersInUse()).toBe(0);
  });

  it('workerCount: the smallest of the CPUs, the cgroup quota and Lambda\'s vCPU per 1,769 MB, at least 1', () => {
    expect(workerCount(1769)).toBe(1);
    expect(workerCount(2048)).toBe(1);
    expect(workerCount(3538)).toBe(Math.min(2, availableParallelism()));
    expect(workerCount(128)).toBe(1);
    expect(workerCount()).toBeGreaterThanOrEqual(1);
    expect(workerCount()).toBeLessThanOrEqual(availableParallelism());
  });
});
