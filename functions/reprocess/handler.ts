/**
 * Scheduled (or manual) reprocessing, and the per-object task of S3 Batch Operations backfills:
 * brings every PDF's render up to date. The logic is in lib/reprocess/ and lib/batch/.
 */
import { loadConfig } from '../../lib/config/env.js';
import { createReprocessFunction } from '../../lib/reprocess/entry.js';

// Validated once per container: a bad setting fails the cold start with a message naming it.
export const handler = createReprocessFunction(loadConfig());
