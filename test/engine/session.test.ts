/**
 * One worker's session (lib/engine/session.ts) against a scripted worker: what it does when a
 * page's encoder fails in the middle of the page.
 */
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS } from '../../lib/engine/options.js';
import type { JobInput, MainMessage, WorkerMessage } from '../../lib/engine/protocol.js';
import { WorkerSession } from '../../lib/engine/session.js';
import type { RenderedPage } from '../../lib/engine/results.js';
import { readBody } from './helpers.js';

/** A worker that sends what the test says and records what it is sent. */
class ScriptedWorker extends EventEmitter {
  readonly received: MainMessage[] = [];
  postMessage(message: MainMessage): void {
    this.received.push(message);
  }
  async terminate(): Promise<number> {
    return 0;
  }
  send(message: WorkerMessage): void {
    this.emit('message', message);
  }
  credits(): number {
    return this.received.filter((m) => m.type === 'credit').length;
  }
}

const INPUT: JobInput = { fd: -1, fileSize: 0, output: { ...DEFAULT_OUTPUT_OPTIONS, format: 'jpeg' }, initialCredits: 3, bandBytes: 2 ** 20 };

describe('a page whose encoder fails', () => {
  it('fails with the reason, every band it took gives its credit back, and the next page streams', async () => {
    const worker = new ScriptedWorker();
    const session = new WorkerSession(worker as unknown as Worker, INPUT, { format: 'jpeg', jpegQuality: 85, webpQuality: 80, avifQuality: 60, pageTimeoutMs: undefined, deadline: undefined, onLog: undefined });
    // 70000 px wide: past what a JPEG can hold, so the encoder refuses the page.
    worker.send({ type: 'page-start', pageNumber: 1 });
    worker.send({ type: 'page-begin', pageNumber: 1, width: 70000, height: 24, dpi: 150, color: 'gray' });
    const failed = (await session.next()) as { type: 'page'; page: RenderedPage };
    // Two bands in flight before the failure is known.
    worker.send({ type: 'band', pageNumber: 1, rows: 8, bytes: new Uint8Array(70000 * 8) });
    worker.send({ type: 'band', pageNumber: 1, rows: 8, bytes: new Uint8Array(70000 * 8) });
    const failure = await readBody(failed.page.body).then(() => undefined, (err: Error) => err);
    expect(failure?.message).toMatch(/encoding failed: .*a JPEG image is 1 to 65535 pixels a side, not 70000x24/);
    // A third band comes after the failure: dropped, its credit given back too.
    worker.send({ type: 'band', pageNumber: 1, rows: 8, bytes: new Uint8Array(70000 * 8) });
    await expect.poll(() => worker.credits()).toBe(3);
    worker.send({ type: 'page-end', pageNumber: 1, renderMs: 1, wasmHeapBytes: 0 });

    worker.send({ type: 'page-start', pageNumber: 2 });
    worker.send({ type: 'page-begin', pageNumber: 2, width: 8, height: 8, dpi: 150, color: 'gray' });
    const next = (await session.next()) as { type: 'page'; page: RenderedPage };
    worker.send({ type: 'band', pageNumber: 2, rows: 8, bytes: new Uint8Array(64).fill(200) });
    worker.send({ type: 'page-end', pageNumber: 2, renderMs: 1, wasmHeapBytes: 0 });
    expect((await readBody(next.page.body)).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    await expect(next.page.finished).resolves.toMatchObject({ bytes: expect.any(Number) });
    await session.terminate();
  });
});
