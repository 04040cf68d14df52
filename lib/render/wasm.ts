import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let compiled: Promise<WebAssembly.Module> | undefined;

/**
 * MuPDF's WebAssembly module, compiled once per process (per Lambda container) and handed to
 * every render worker, which only instantiates it.
 */
export function mupdfWasmModule(): Promise<WebAssembly.Module> {
  compiled ??= readFile(mupdfWasmPath()).then((bytes) => WebAssembly.compile(bytes));
  return compiled;
}

let bundledWasm: string | undefined;

/** Set by the bundle's entry (functions/render-pdf/mupdf-wasm.ts): where esbuild shipped the .wasm. */
export function useMupdfWasmFile(path: string): void {
  bundledWasm = path;
}

/** Where the bundle put it; in node_modules when running from source. */
export function mupdfWasmPath(): string {
  if (bundledWasm) return bundledWasm;
  const mupdfEntry = createRequire(import.meta.url).resolve('mupdf');
  return join(dirname(mupdfEntry), 'mupdf-wasm.wasm');
}
