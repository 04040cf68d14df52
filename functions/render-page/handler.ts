/** GET /<key>?page=N… -> 302 to the page image in S3 (docs/on-demand.md). The logic is in lib/on-demand/; this is the Lambda entry. */
import '../render-pdf/mupdf-wasm.js';
import { loadPageConfig } from '../../lib/config/page.js';
import { createPageHandler } from '../../lib/on-demand/handler.js';

// Validated once per container: a bad setting fails the cold start with a message naming it.
export const handler = createPageHandler(loadPageConfig());
