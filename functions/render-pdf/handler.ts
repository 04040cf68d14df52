/** S3 ObjectCreated -> page images + manifest.json. The logic is in lib/; this is the Lambda entry. */
import './mupdf-wasm.js';
import { loadConfig } from '../../lib/config/env.js';
import { createRenderHandler } from '../../lib/render-function/handler.js';

// Validated once per container: a bad setting fails the cold start with a message naming it.
export const handler = createRenderHandler(loadConfig());
