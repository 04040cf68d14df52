/**
 * The one schema for everything that asks the render function for work (docs/contract.md,
 * "Work distribution"), checked at the edge: an S3 notification (as S3 sends it, or unwrapped
 * from an SQS message body), an S3 "Object Created" event as EventBridge delivers it (an
 * existing bucket: the stack's rule targets the render queue, or the event is invoked directly),
 * and the messages this project sends to the render queue itself:
 * a render request (the reprocess function), a continuation (a document or range out of time),
 * a fan-out range. Anything else is reported, never crashed on.
 */
import type { SQSRecord } from 'aws-lambda';
import { parseRecords } from '../s3/event.js';

/** Pages one invocation renders, for continuations and fan-out ranges. */
export interface PageWork {
  /** A fan-out range: pages from..to of a document split into `count` ranges. Absent: the whole document. */
  range?: { from: number; to: number; count: number };
  /** Invocations this document (or range) has taken so far, and their render time: the budget. */
  hop: number;
  spentMs: number;
}

export interface WorkRequest {
  bucket: string;
  /** Decoded key. */
  key: string;
  versionId?: string;
  /** The object this work is for: a later object under the key supersedes it. */
  etag?: string;
  /** Render even what is up to date (a forced reprocess). */
  force?: boolean;
  pages?: PageWork;
  /**
   * Only from an EventBridge event whose key holds `%XX`: the key percent-decoded, tried when the
   * key as given is not found (whether EventBridge encodes keys is undocumented: see
   * parseEventBridgeEvent). Never sent on the queue: the render function settles on one key.
   */
  decodedKey?: string;
}

/** What goes on the render queue (JSON), for the requests this project sends itself. */
export interface WorkMessage extends WorkRequest {
  type: 'render';
}

export function workMessage(request: WorkRequest): WorkMessage {
  return { type: 'render', ...request };
}

export interface ParsedWork {
  requests: WorkRequest[];
  /** Why parts of the input were not taken, for the log. */
  rejected: string[];
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown, min: number): value is number => typeof value === 'number' && Number.isInteger(value) && value >= min;

function parsePageWork(value: unknown): PageWork | string {
  if (!isRecord(value)) return '"pages" must be an object';
  const { range, hop, spentMs } = value;
  if (!isCount(hop, 0) || !isCount(spentMs, 0)) return '"pages.hop" and "pages.spentMs" must be whole numbers >= 0';
  if (range === undefined) return { hop, spentMs };
  if (!isRecord(range) || !isCount(range['from'], 1) || !isCount(range['to'], range['from'] as number) || !isCount(range['count'], 1)) {
    return '"pages.range" must be {from, to, count} with 1 <= from <= to and count >= 1';
  }
  return { range: { from: range['from'], to: range['to'] as number, count: range['count'] as number }, hop, spentMs };
}

/** One message of ours ({"type": "render", …}). */
function parseWorkMessage(value: Record<string, unknown>): WorkRequest | string {
  const { bucket, key, versionId, etag, force, pages } = value;
  if (typeof bucket !== 'string' || bucket === '' || typeof key !== 'string' || key === '') return 'a render message needs "bucket" and "key" strings';
  if (versionId !== undefined && typeof versionId !== 'string') return '"versionId" must be a string';
  if (etag !== undefined && typeof etag !== 'string') return '"etag" must be a string';
  if (force !== undefined && typeof force !== 'boolean') return '"force" must be true or false';
  const pageWork = pages === undefined ? undefined : parsePageWork(pages);
  if (typeof pageWork === 'string') return pageWork;
  return {
    bucket,
    key,
    ...(versionId ? { versionId } : {}),
    ...(etag ? { etag } : {}),
    ...(force ? { force } : {}),
    ...(pageWork ? { pages: pageWork } : {}),
  };
}

/** An EventBridge event of S3's (source aws.s3), told apart from S3 notifications and our messages. */
function isEventBridgeS3Event(value: Record<string, unknown>): boolean {
  return value['source'] === 'aws.s3' && 'detail-type' in value;
}

/**
 * S3's "Object Created" event as EventBridge delivers it. Unlike an S3 notification, whose key
 * is form-encoded ("+" for a space, %XX for the rest: "The object key name value is URL encoded",
 * AWS S3 User Guide, notification-content-structure), EventBridge's event structure (ev-events)
 * documents no encoding. Some real events show ":" and "=" unescaped where a notification would
 * have %3A and %3D; field reports, and Powertools' parser (which decodes the key), point to
 * percent-encoding (a space as %20). moto 5.2 sends it verbatim. So both are accepted: the key is
 * tried as given, and when it holds %XX, its percent-decoded form (decodeURIComponent: a "+"
 * stays a "+", unlike form decoding) is tried on a 404 (lib/render-function/render-object.ts,
 * which logs and counts which form matched).
 */
export function parseEventBridgeEvent(value: Record<string, unknown>): ParsedWork {
  const detailType = value['detail-type'];
  if (detailType !== 'Object Created') return { requests: [], rejected: [`EventBridge event detail-type ${JSON.stringify(detailType)} is not "Object Created"`] };
  const detail = value['detail'];
  const bucket = isRecord(detail) && isRecord(detail['bucket']) ? detail['bucket']['name'] : undefined;
  const object = isRecord(detail) ? detail['object'] : undefined;
  if (typeof bucket !== 'string' || bucket === '' || !isRecord(object) || typeof object['key'] !== 'string' || object['key'] === '') {
    return { requests: [], rejected: ['EventBridge "Object Created" event without detail.bucket.name and detail.object.key strings'] };
  }
  // AWS spells it "etag"; moto 5.2 "eTag".
  const etag = object['etag'] ?? object['eTag'];
  const versionId = object['version-id'];
  const { size, sequencer } = object;
  if (etag !== undefined && etag !== null && typeof etag !== 'string') return { requests: [], rejected: [`detail.object.etag ${JSON.stringify(etag)} is not a string`] };
  // null: an unversioned bucket (moto sends null; AWS leaves the field out).
  if (versionId !== undefined && versionId !== null && typeof versionId !== 'string') return { requests: [], rejected: [`detail.object.version-id ${JSON.stringify(versionId)} is not a string`] };
  if (size !== undefined && !isCount(size, 0)) return { requests: [], rejected: [`detail.object.size ${JSON.stringify(size)} is not a whole number >= 0`] };
  if (sequencer !== undefined && typeof sequencer !== 'string') return { requests: [], rejected: [`detail.object.sequencer ${JSON.stringify(sequencer)} is not a string`] };
  const key = object['key'];
  const decodedKey = percentDecoded(key);
  return {
    requests: [
      {
        bucket,
        key,
        ...(typeof versionId === 'string' && versionId !== '' ? { versionId } : {}),
        ...(typeof etag === 'string' && etag !== '' ? { etag } : {}),
        ...(decodedKey !== undefined ? { decodedKey } : {}),
      },
    ],
    rejected: [],
  };
}

/** The key percent-decoded, when it holds %XX and decodes to another key; undefined otherwise. */
export function percentDecoded(key: string): string | undefined {
  if (!/%[0-9A-Fa-f]{2}/.test(key)) return undefined;
  try {
    const decoded = decodeURIComponent(key);
    return decoded !== key ? decoded : undefined;
  } catch {
    // "%E9" alone is not UTF-8: only the key as given can be meant.
    return undefined;
  }
}

/** A direct S3 event (sam local invoke, or S3 wired to the function), possibly marked forceRender by hand. */
export function parseS3Event(event: unknown): ParsedWork {
  const { records, rejected } = parseRecords(event);
  const force = isRecord(event) && event['forceRender'] === true;
  return { requests: records.map((r) => ({ ...r, ...(force ? { force } : {}) })), rejected };
}

/** One SQS message body: an S3 notification, S3's test event, or one of our render messages. */
export function parseQueueBody(body: string): ParsedWork {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { requests: [], rejected: [`the message body is not JSON (${JSON.stringify(body.slice(0, 80))})`] };
  }
  if (!isRecord(value)) return { requests: [], rejected: ['the message body is not a JSON object'] };
  // Sent once when the notification is configured: nothing to render.
  if (value['Event'] === 's3:TestEvent') return { requests: [], rejected: [] };
  if (value['type'] === 'render') {
    const request = parseWorkMessage(value);
    return typeof request === 'string' ? { requests: [], rejected: [request] } : { requests: [request], rejected: [] };
  }
  if (isEventBridgeS3Event(value)) return parseEventBridgeEvent(value);
  if ('Records' in value) return parseS3Event(value);
  return { requests: [], rejected: ['the message is neither an S3 notification, an EventBridge S3 event nor a render message'] };
}

/** A direct invocation that is not an SQS batch: an EventBridge S3 event, or an S3 event notification. */
export function parseDirectEvent(event: unknown): ParsedWork {
  if (isRecord(event) && isEventBridgeS3Event(event)) return parseEventBridgeEvent(event);
  return parseS3Event(event);
}

export function isSqsEvent(event: unknown): event is { Records: SQSRecord[] } {
  if (!isRecord(event) || !Array.isArray(event['Records']) || event['Records'].length === 0) return false;
  return event['Records'].every((r: unknown) => isRecord(r) && r['eventSource'] === 'aws:sqs' && typeof r['body'] === 'string');
}
