/**
 * The seeded fault soak (tools/soak/run.ts), short, for CI: two fixed seeds, each a few
 * documents through SQS, warm containers of the built artifact, kills, S3 and PutEvents faults,
 * duplicate, delayed and late notifications, re-uploads mid-render, keys with hard names in
 * every format, S3 notifications and EventBridge events, pages on demand and IIIF (seed 2
 * signed), a scheduled pass and a Batch Operations job beside the uploads, then the settle
 * phase and every invariant per source key. Then one break switch, to show the IIIF invariant
 * can fail. The long run is `npm run bench:soak`.
 */
import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { runSoak } from '../tools/soak/run.js';

/** A seed whose short run draws no kill (a kill costs a 48 s visibility timeout) and asks info.json of a document that renders. */
const BREAK_SEED = 4;

describe('the seeded fault soak', () => {
  for (const seed of [1, 2]) {
    it(`seed ${seed}: every source key ends as its current object says, nothing lost, nothing left, on every path`, async () => {
      const result = await runSoak({ seed, docs: 4, minutes: 0.25, concurrency: 2, drainLimitMs: 4 * 60_000 });
      // The report's lines name each violation: shown whole when this fails.
      expect(result.lines.filter((line) => line.startsWith('VIOLATION'))).toEqual([]);
      expect(result.failed).toBe(0);
      expect(result.passed).toBeGreaterThanOrEqual(4);
      expect(result.lines.at(-1)).toBe(`${result.passed} passed, 0 failed`);
      // The paths beside the first were driven, not only declared (issue 27).
      expect(result.coverage.pageImages).toBeGreaterThan(0);
      expect(result.coverage.batchTasks).toBeGreaterThan(4);
      expect(result.coverage.putEvents).toBeGreaterThan(0);
      // IIIF from the same page function (tools/soak/iiif.ts); seed 2 runs it signed (document tokens).
      expect(result.coverage.iiifRequests).toBeGreaterThan(0);
    }, 8 * 60_000);
  }

  it('--break iiif-info-off-by-one: info.json a pixel wider than the page turns the IIIF invariant red', async () => {
    // Two light documents, seconds of uploads: enough for a viewer's first info.json.
    const result = await runSoak({ seed: BREAK_SEED, docs: 2, minutes: 0.1, concurrency: 2, drainLimitMs: 2 * 60_000, breakName: 'iiif-info-off-by-one' });
    const iiif = result.violations.filter((v) => v.invariant.startsWith('every IIIF answer'));
    expect(iiif.length, result.lines.join('\n')).toBeGreaterThan(0);
    expect(iiif.map((v) => v.detail).join('\n')).toMatch(/info\.json says (\d+)x\d+; the page's full image at IIIF_DPI 100 is (?!\1x)\d+x\d+/);
    expect(result.failed).toBeGreaterThan(0);
    // A failed run keeps its folder (logs, choices) for whoever reads the report: this one was meant to fail.
    await rm(result.workDir, { recursive: true, force: true });
  }, 4 * 60_000);
});
