/**
 * npm run build: bundles each function into dist/<function>/ the way `sam build` does
 * (esbuild, ESM, .mjs), ships mupdf's .wasm beside the render function, and prints sizes.
 */
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { mupdfWasmPath } from '../lib/render/wasm.js';

const ROOT = resolve(import.meta.dirname, '..');
export const DIST = join(ROOT, 'dist');

export const FUNCTIONS = {
  'render-pdf': ['functions/render-pdf/handler.ts', 'functions/render-pdf/render-worker.ts'],
} as const;

/** The esbuild options template.yaml gives SAM; keep the two in step. */
export const ESBUILD_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  outExtension: { '.js': '.mjs' },
  // ESM output still meets CommonJS inside the AWS SDK: give it a require().
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
} as const;

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await dirSize(path) : (await stat(path)).size;
  }
  return total;
}

export async function buildAll(): Promise<Record<string, string>> {
  const outputs: Record<string, string> = {};
  for (const [name, entryPoints] of Object.entries(FUNCTIONS)) {
    const outdir = join(DIST, name);
    await rm(outdir, { recursive: true, force: true });
    await mkdir(outdir, { recursive: true });
    await build({ ...ESBUILD_OPTIONS, entryPoints: entryPoints.map((e) => join(ROOT, e)), outdir, logLevel: 'warning' });
    if (name === 'render-pdf') await copyFile(mupdfWasmPath(), join(outdir, 'mupdf-wasm.wasm'));
    outputs[name] = outdir;
  }
  return outputs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const outputs = await buildAll();
  for (const [name, dir] of Object.entries(outputs)) {
    console.log(`${name}: ${dir} (${((await dirSize(dir)) / 2 ** 20).toFixed(1)} MiB unzipped)`);
  }
}
