/**
 * The seeded fault soak (tools/soak/run.ts), short, for CI: two fixed seeds, each a few
 * documents through SQS, warm containers of the built artifact, kills, S3 faults, duplicate,
 * delayed and late notifications, re-uploads mid-render and a reprocess run, then the settle
 * phase and every invariant per source key. The long run is `npm run bench:soak`.
 */
import { describe, expect, it } from 'vitest';
import { runSoak } from '../tools/soak/run.js';

describe('the seeded fault soak', () => {
  for (const seed of [1, 2]) {
    it(`seed ${seed}: every source key ends as its current object says, nothing lost, nothing left`, async () => {
      const result = await runSoak({ seed, docs: 4, minutes: 0.25, concurrency: 2, drainLimitMs: 4 * 60_000 });
      // The report's lines name each violation: shown whole when this fails.
      expect(result.lines.filter((line) => line.startsWith('VIOLATION'))).toEqual([]);
      expect(result.failed).toBe(0);
      expect(result.passed).toBeGreaterThanOrEqual(4);
      expect(result.lines.at(-1)).toBe(`${result.passed} passed, 0 failed`);
    }, 8 * 60_000);
  }
});
