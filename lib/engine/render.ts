/**
 * The engine's public entry: everything outside lib/engine imports the render API from here.
 * The job and its restart policy are in job.ts, one worker's streaming state machine in
 * session.ts, worker provisioning in pool.ts, the worker itself in worker/.
 */
export { prewarm, startRender, type RenderControl, type RenderJob, type RenderStats } from './job.js';
export type { FailedPage, PageColor, PageResult, PageStats, PageText, RenderedPage, Thumbnail } from './results.js';
export { PageFailedError } from './errors.js';
export { workerCount, workersInUse } from './pool.js';
