// The encoder thread (JPEG and WebP, libwebp's .wasm with it), bundled beside the page function's
// handler.mjs (the engine starts ./encoder-worker.mjs).
import '../render-pdf/encoder-worker.js';
