// The JPEG encoder thread, bundled beside the page function's handler.mjs (the engine starts ./jpeg-worker.mjs).
import '../render-pdf/jpeg-worker.js';
