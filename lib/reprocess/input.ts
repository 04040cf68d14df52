/**
 * The reprocess function's input, checked at the edge (docs/reprocess.md). All fields are optional:
 * `{ "bucket", "prefix", "force", "dryRun", "limit", "scheduled", "startAfter" }`, from a schedule's Input, a manual
 * invoke, or an EventBridge ScheduledEvent (fields read from its top level). Unknown fields
 * are ignored with a warning; a field of the wrong type is an error naming it.
 */
import { isBucketName } from '../config/env.js';

export interface ReprocessInput {
  /** Overrides SOURCE_BUCKET. */
  bucket?: string;
  /** Relative to INPUT_PREFIX. */
  prefix: string;
  /** Re-render every PDF that has a manifest, as if it were stale. */
  force: boolean;
  /** Classify and report; dispatch nothing. */
  dryRun: boolean;
  /** Dispatches per run, at most. */
  limit: number;
  /**
   * The schedule's own run (its Input in template.yaml says so): the only kind that reads and
   * moves the schedule's checkpoint (checkpoint.ts). A manual or forced run never does.
   */
  scheduled: boolean;
  /** A manual run's own cursor: list the keys after this one (a summary's `nextStartAfter`). */
  startAfter?: string;
}

export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 100_000;

export const INPUT_FIELDS = ['bucket', 'prefix', 'force', 'dryRun', 'limit', 'scheduled', 'startAfter'] as const;

/** The envelope of an EventBridge ScheduledEvent: accepted, and not ours to read. */
const SCHEDULED_EVENT_FIELDS = new Set(['version', 'id', 'detail-type', 'source', 'account', 'time', 'region', 'resources', 'detail']);

export class InvalidReprocessInputError extends Error {
  override readonly name = 'InvalidReprocessInputError';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

export function parseReprocessInput(event: unknown): { input: ReprocessInput; warnings: string[] } {
  const input: ReprocessInput = { prefix: '', force: false, dryRun: false, limit: DEFAULT_LIMIT, scheduled: false };
  const warnings: string[] = [];
  if (event === undefined || event === null) return { input, warnings };
  if (typeof event !== 'object' || Array.isArray(event)) {
    throw new InvalidReprocessInputError(
      `the reprocess input must be a JSON object such as {"dryRun": true} (fields, all optional: ${INPUT_FIELDS.join(', ')}); got ${describe(event)}`,
    );
  }
  const fields = event as Record<string, unknown>;
  const problems: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    switch (name) {
      case 'bucket':
        if (typeof value !== 'string' || !isBucketName(value)) {
          problems.push(`"bucket" must be an S3 bucket name (3-63 characters: a-z, 0-9, "." and "-"); got ${describe(value)}`);
        } else input.bucket = value;
        break;
      case 'prefix':
        if (typeof value !== 'string') problems.push(`"prefix" must be a string (a key prefix under INPUT_PREFIX, such as "reports/2024/"); got ${describe(value)}`);
        else if (value.startsWith('/')) problems.push(`"prefix" must not start with "/" (it is a key prefix under INPUT_PREFIX); got ${JSON.stringify(value)}`);
        else input.prefix = value;
        break;
      case 'force':
      case 'dryRun':
      case 'scheduled':
        if (typeof value !== 'boolean') problems.push(`"${name}" must be true or false; got ${describe(value)}`);
        else input[name] = value;
        break;
      case 'limit':
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
          problems.push(`"limit" must be a whole number from 1 to ${MAX_LIMIT} (dispatches per run); got ${describe(value)}`);
        } else input.limit = value;
        break;
      case 'startAfter':
        if (typeof value !== 'string' || value === '') problems.push(`"startAfter" must be a key (a summary's "nextStartAfter"); got ${describe(value)}`);
        else input.startAfter = value;
        break;
      default:
        if (SCHEDULED_EVENT_FIELDS.has(name)) break;
        warnings.push(`unknown field ${JSON.stringify(name)} ignored (known fields: ${INPUT_FIELDS.join(', ')})`);
    }
  }
  // A ScheduledEvent's detail is not read: say so if it looks like it was meant to be.
  const detail = fields['detail'];
  if (detail && typeof detail === 'object' && !Array.isArray(detail)) {
    const misplaced = Object.keys(detail).filter((k) => (INPUT_FIELDS as readonly string[]).includes(k));
    if (misplaced.length > 0) warnings.push(`detail.${misplaced.join(', detail.')} ignored: reprocess fields are read from the top level of the event`);
  }
  if (input.scheduled && input.startAfter !== undefined) problems.push('"startAfter" is for manual runs: a scheduled run resumes from its checkpoint');
  if (problems.length > 0) throw new InvalidReprocessInputError(`invalid reprocess input: ${problems.join('; ')}`);
  return { input, warnings };
}
