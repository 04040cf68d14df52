// Second entry point of the render function: bundled beside handler.mjs as render-worker.mjs,
// where the render core starts it as a worker thread, one per document.
import '../../lib/engine/worker/main.js';
