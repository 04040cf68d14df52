/** What became of one request, and the signals between the render use case's parts. */
import type { Manifest } from '../job/manifest.js';
import { logger } from '../observability.js';
import type { OutputLocation } from '../s3/layout.js';
import { manifestKey } from '../s3/manifest-store.js';
import type { CommitResult } from './commit.js';

export type RenderObjectOutcome =
  | { kind: 'ignored'; reason: string }
  | { kind: 'up-to-date'; manifestKey: string; reason?: string }
  | { kind: 'superseded'; reason: string }
  /** Out of time: progress stored, a continuation message sent for the rest. */
  | { kind: 'continued'; nextPage: number }
  /** A fan-out range stored its part; another range will complete the set. */
  | { kind: 'range-stored'; range: { from: number; to: number }; ranges: { done: number; count: number } }
  | { kind: 'rendered'; manifestKey: string; manifest: Manifest };

/** Thrown after progress was stored because time ran out and no queue can carry the rest: a retry resumes. */
export class OutOfTimeError extends Error {
  override readonly name = 'OutOfTimeError';
}

/** A progress commit found the source replaced, or another delivery further along: stop rendering. */
export class StopRendering extends Error {
  constructor(readonly result: Exclude<CommitResult, 'committed'>) {
    super(result);
  }
}

export function notCommitted(result: Exclude<CommitResult, 'committed'>, out: OutputLocation): RenderObjectOutcome {
  if (result === 'superseded') {
    logger.warn('source changed during the render; its own outputs removed, the manifest left to the newer object', { prefix: out.prefix });
    return { kind: 'superseded', reason: 'the source changed during the render' };
  }
  return { kind: 'up-to-date', manifestKey: manifestKey(out), reason: 'another delivery committed the same render' };
}
