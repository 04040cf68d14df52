// Third entry point of the render function: bundled beside handler.mjs as encoder-worker.mjs,
// where the render core starts it as the thread that encodes JPEG and WebP pages
// (lib/encode/encoder-thread.ts). libwebp's WebAssembly ships as mupdf's does
// (mupdf-wasm.ts): esbuild's file loader copies the imported .wasm beside the bundle and gives
// its path, which the encoder compiles from; no fetch, nothing from the network.
import { fileURLToPath } from 'node:url';
import '../../lib/encode/encoder-worker.js';
import { useWebpWasmFile } from '../../lib/encode/webp-encoder.js';
import webpWasm from '../../node_modules/@jsquash/webp/codec/enc/webp_enc_simd.wasm';

// Before any page arrives: the thread compiles libwebp at its first WebP page.
useWebpWasmFile(fileURLToPath(new URL(webpWasm, import.meta.url)));
