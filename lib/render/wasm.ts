import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let compiled: Promise<WebAssembly.Module> | undefined;

/**
 * MuPDF's WebAssembly module, compiled once per process (per Lambda container) and handed to
 * every render worker, which only instantiates it.
 */
export function mupdfWasmModule(): Promise<WebAssembly.Module> {
  compiled ??= readFile(mupdfWasmPath()).then((bytes) => WebAssembly.compile(bytes));
  return compiled;
}

/** Beside this module in the deployed bundle; in node_modules when running from source. */
export function mupdfWasmPath(): string {
  const beside = fileURLToPath(new URL('./mupdf-wasm.wasm', import.meta.url));
  if (existsSync(beside)) return beside;
  const mupdfEntry = createRequire(import.meta.url).resolve('mupdf');
  return join(dirname(mupdfEntry), 'mupdf-wasm.wasm');
}
