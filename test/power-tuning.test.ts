/**
 * The arithmetic of the Lambda shape and of the power tuning's cost column, and a shaped process
 * really sitting in cgroups with that quota and limit.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { costPer1000Pages, PRICES } from '../bench/power-tuning.js';
import { MB_PER_VCPU, shapeUnavailable, spawnShaped } from '../tools/lambda-shape.js';

describe('Lambda shapes', () => {
  it('prices 1,000 pages as GB-s of the memory size plus one request per document', () => {
    // 1,769 MB for 1 s a page, 10 pages a document.
    const expected = 1000 * (1769 / 1024) * 1 * PRICES.perGbSecond + 100 * PRICES.perRequest;
    expect(costPer1000Pages(1769, 1000, 10)).toBeCloseTo(expected, 12);
    expect(PRICES.perGbSecond).toBe(0.0000133334);
    expect(PRICES.perRequest * 1e6).toBeCloseTo(0.2, 12);
    // Twice the memory at half the time per page costs the same duration.
    expect(costPer1000Pages(3538, 500, 10)).toBeCloseTo(costPer1000Pages(1769, 1000, 10), 12);
  });

  it('runs a process inside a cpu cgroup of N/1769 vCPU and a memory cgroup of N MB', async () => {
    const unavailable = shapeUnavailable();
    if (unavailable) {
      console.warn(`skipped: ${unavailable}`);
      return;
    }
    const memoryMb = 884;
    // The shaped process reads its own cgroup limits before it exits.
    const script = 'for c in cpu memory; do p=$(grep -E "^[0-9]+:([^:]*,)?$c(,[^:]*)?:" /proc/self/cgroup | cut -d: -f3); echo "$c $p"; done';
    const shaped = spawnShaped(memoryMb, '/bin/sh', ['-c', `${script}; sleep 0.2`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    shaped.child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const limits = await new Promise<Record<string, string>>((resolve) => {
      shaped.child.stdout!.on('data', () => {
        const lines = Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ') as [string, string]));
        if (lines['cpu'] && lines['memory']) {
          resolve({
            quota: readFileSync(`/sys/fs/cgroup/cpu${lines['cpu']}/cpu.cfs_quota_us`, 'utf8').trim(),
            period: readFileSync(`/sys/fs/cgroup/cpu${lines['cpu']}/cpu.cfs_period_us`, 'utf8').trim(),
            memory: readFileSync(`/sys/fs/cgroup/memory${lines['memory']}/memory.limit_in_bytes`, 'utf8').trim(),
            name: lines['memory'],
          });
        }
      });
    });
    expect(Number(limits['quota']) / Number(limits['period'])).toBeCloseTo(memoryMb / MB_PER_VCPU, 3);
    expect(Number(limits['memory'])).toBe(memoryMb * 2 ** 20);
    expect(limits['name']).toMatch(/s3-pdf-render-lambda-\d+-\d+$/);
    const report = await shaped.exited;
    expect(report).toMatchObject({ enforced: true, memoryMb, oomKills: 0, code: 0 });
  });
});
