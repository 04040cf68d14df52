/** Scheduled (or manual) reprocessing: brings every PDF's render up to date. The logic is in lib/reprocess/. */
import { loadConfig } from '../../lib/config/env.js';
import { createReprocessHandler } from '../../lib/reprocess/handler.js';

// Validated once per container: a bad setting fails the cold start with a message naming it.
export const handler = createReprocessHandler(loadConfig());
