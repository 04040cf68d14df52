// The render worker, bundled beside the page function's handler.mjs (the engine starts ./render-worker.mjs).
import '../render-pdf/render-worker.js';
