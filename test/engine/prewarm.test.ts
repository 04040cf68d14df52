/**
 * prewarm(): what a first job would pay for (compiling MuPDF, starting the spare worker) done
 * ahead, at a Lambda's init. It never throws, and a failure is not kept: the next try compiles
 * again. (What it saves is measured by the benchmark, not here.)
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS } from '../../lib/engine/options.js';
import { prewarm, startRender } from '../../lib/engine/render.js';
import { mupdfWasmModule, mupdfWasmPath, useMupdfWasmFile } from '../../lib/engine/wasm.js';
import { CORPUS_DIR, collect } from './helpers.js';

describe('prewarm', () => {
  it('swallows a failed compile, which is not kept: the next compile and job succeed', { timeout: 60_000 }, async () => {
    const real = mupdfWasmPath();
    useMupdfWasmFile('/nonexistent/mupdf-wasm.wasm');
    try {
      await expect(prewarm()).resolves.toBeUndefined();
      await expect(mupdfWasmModule()).rejects.toThrow(/ENOENT/);
    } finally {
      useMupdfWasmFile(real);
    }
    await prewarm();
    await expect(mupdfWasmModule()).resolves.toMatchObject({ module: expect.any(WebAssembly.Module) });
    const pages = await collect(await startRender(join(CORPUS_DIR, 'cmyk-jpeg.pdf'), DEFAULT_OUTPUT_OPTIONS));
    expect(pages.map((p) => p.ok)).toEqual([true]);
  });
});
