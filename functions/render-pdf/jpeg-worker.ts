// Third entry point of the render function: bundled beside handler.mjs as jpeg-worker.mjs,
// where the render core starts it as the thread that encodes JPEG pages (lib/encode/jpeg-thread.ts).
import '../../lib/encode/jpeg-worker.js';
