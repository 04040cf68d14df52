// Ships MuPDF's WebAssembly inside the function's bundle. esbuild's file loader (template.yaml:
// Loader .wasm=file) copies the imported file into the artifact beside handler.mjs, as
// mupdf-wasm-<hash>.wasm, and turns this import into its path relative to the bundle. Bundle
// only: from source, lib/engine/wasm.ts finds the file in node_modules itself.
//
// Then, at the container's init rather than in its first invocation: MuPDF is compiled and the
// spare worker started (lib/engine/job.ts prewarm). From source, the first job's time fell from
// 1.16-1.25 s to 0.83-0.84 s (cmyk-jpeg.pdf, one page; warm jobs 0.40-0.57 s).
import { fileURLToPath } from 'node:url';
import { prewarm } from '../../lib/engine/render.js';
import { useMupdfWasmFile } from '../../lib/engine/wasm.js';
import wasmFile from '../../node_modules/mupdf/dist/mupdf-wasm.wasm';

useMupdfWasmFile(fileURLToPath(new URL(wasmFile, import.meta.url)));
await prewarm();
