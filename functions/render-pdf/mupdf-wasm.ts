// Ships MuPDF's WebAssembly inside the function's bundle. esbuild's file loader (template.yaml:
// Loader .wasm=file) copies the imported file into the artifact beside handler.mjs, as
// mupdf-wasm-<hash>.wasm, and turns this import into its path relative to the bundle. Bundle
// only: from source, lib/render/wasm.ts finds the file in node_modules itself.
import { fileURLToPath } from 'node:url';
import { useMupdfWasmFile } from '../../lib/engine/wasm.js';
import wasmFile from '../../node_modules/mupdf/dist/mupdf-wasm.wasm';

useMupdfWasmFile(fileURLToPath(new URL(wasmFile, import.meta.url)));
