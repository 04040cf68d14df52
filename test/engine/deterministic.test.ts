/**
 * The same input and options give the same bytes, every run: a retried or duplicated render
 * writes what the first one wrote (same etags). The PNG encoder cuts a page's zlib stream where
 * the page's size and bands say, never where timing would; the JPEG encoder codes rows the same
 * whatever bands they come in.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS, type RenderOptions } from '../../lib/engine/options.js';
import { startRender } from '../../lib/engine/render.js';
import { CORPUS_DIR, readBody } from './helpers.js';

/** Each page's SHA-256, the job read either as fast as it goes or slowly (the thread pool then idles between pages). */
async function hashes(file: string, options: RenderOptions, slowReader: boolean): Promise<string[]> {
  const job = await startRender(join(CORPUS_DIR, file), options);
  const result: string[] = [];
  const reads: Promise<void>[] = [];
  for await (const page of job) {
    if (!page.ok) throw new Error(`page ${page.pageNumber}: ${page.error.code}`);
    if (slowReader) await sleep(150);
    const index = result.push('') - 1;
    const read = readBody(page.body).then((bytes) => void (result[index] = createHash('sha256').update(bytes).digest('hex')));
    // Fast: every page read side by side with the next ones. Slow: one page at a time.
    if (slowReader) await read;
    else reads.push(read);
  }
  await Promise.all(reads);
  return result;
}

describe('deterministic output', () => {
  it('a multi-page document rendered twice, read fast then slowly: the same PNG bytes page for page', { timeout: 120_000 }, async () => {
    const options = { ...DEFAULT_OUTPUT_OPTIONS, pages: [{ from: 1, to: 8 }] };
    const fast = await hashes('tracemonkey-paper-14p.pdf', options, false);
    const slow = await hashes('tracemonkey-paper-14p.pdf', options, true);
    expect(fast.length).toBe(8);
    expect(slow).toEqual(fast);
  });

  it('a banded poster page rendered twice: the same PNG bytes', { timeout: 120_000 }, async () => {
    const first = await hashes('go-poster-3294pt.pdf', DEFAULT_OUTPUT_OPTIONS, false);
    const second = await hashes('go-poster-3294pt.pdf', DEFAULT_OUTPUT_OPTIONS, true);
    expect(first.length).toBe(1);
    expect(second).toEqual(first);
  });

  it('JPEG pages rendered twice, read fast then slowly, the poster in bands: the same bytes', { timeout: 120_000 }, async () => {
    const options = { ...DEFAULT_OUTPUT_OPTIONS, format: 'jpeg' as const, pages: [{ from: 4, to: 8 }] };
    const fast = await hashes('tracemonkey-paper-14p.pdf', options, false);
    expect(await hashes('tracemonkey-paper-14p.pdf', options, true)).toEqual(fast);
    const poster = { ...DEFAULT_OUTPUT_OPTIONS, format: 'jpeg' as const, bandBytes: 2 ** 20 };
    expect(await hashes('go-poster-3294pt.pdf', poster, true)).toEqual(await hashes('go-poster-3294pt.pdf', poster, false));
  });
});
