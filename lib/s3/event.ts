/** S3 event notifications: parsed and checked at the edge, and built for local runs. */
import { randomUUID } from 'node:crypto';
import type { S3Event } from 'aws-lambda';
import { decodeEventKey, encodeEventKey } from './layout.js';

/**
 * An ObjectCreated:Put notification shaped as S3 sends it (key URL-encoded, "+" for spaces),
 * for local runs, tests and the reprocess dispatcher: one code path for every render.
 */
export function s3PutEvent(bucket: string, key: string, object: { versionId?: string; size?: number; eTag?: string } = {}): S3Event {
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: process.env['AWS_REGION'] ?? 'us-east-1',
        eventTime: new Date().toISOString(),
        eventName: 'ObjectCreated:Put',
        userIdentity: { principalId: 'local' },
        requestParameters: { sourceIPAddress: '127.0.0.1' },
        responseElements: { 'x-amz-request-id': 'local', 'x-amz-id-2': 'local' },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'local',
          bucket: { name: bucket, ownerIdentity: { principalId: 'local' }, arn: `arn:aws:s3:::${bucket}` },
          object: {
            key: encodeEventKey(key),
            size: object.size ?? 0,
            eTag: object.eTag ?? '',
            ...(object.versionId ? { versionId: object.versionId } : {}),
            sequencer: Date.now().toString(16).toUpperCase(),
          },
        },
      },
    ],
  };
}

/**
 * S3's "Object Created" event as EventBridge delivers it (an existing bucket's uploads, through
 * the stack's rule): the key as it is, not URL-encoded. For tests and local runs.
 */
export function eventBridgeObjectCreated(bucket: string, key: string, object: { versionId?: string; size?: number; etag?: string } = {}): Record<string, unknown> {
  const region = process.env['AWS_REGION'] ?? 'us-east-1';
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '123456789012',
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    region,
    resources: [`arn:aws:s3:::${bucket}`],
    detail: {
      version: '0',
      bucket: { name: bucket },
      object: {
        key,
        size: object.size ?? 0,
        ...(object.etag ? { etag: object.etag } : {}),
        ...(object.versionId ? { 'version-id': object.versionId } : {}),
        sequencer: Date.now().toString(16).toUpperCase(),
      },
      'request-id': 'local',
      requester: '123456789012',
      'source-ip-address': '127.0.0.1',
      reason: 'PutObject',
    },
  };
}

export interface ParsedRecord {
  bucket: string;
  key: string;
  versionId?: string;
  /** The object's etag as the event reports it: a later object under the key supersedes this one. */
  etag?: string;
}

/** The S3 event, checked at the edge: a malformed record is reported, not crashed on. */
export function parseRecords(event: unknown): { records: ParsedRecord[]; rejected: string[] } {
  const records: ParsedRecord[] = [];
  const rejected: string[] = [];
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    rejected.push(`the event is ${event === null ? 'null' : Array.isArray(event) ? 'an array' : typeof event}, not an S3 event notification`);
    return { records, rejected };
  }
  const list = (event as { Records?: unknown }).Records;
  if (!Array.isArray(list)) {
    rejected.push('the event has no Records array (not an S3 event notification)');
    return { records, rejected };
  }
  list.forEach((record: unknown, index) => {
    const r = record as { eventName?: unknown; s3?: { bucket?: { name?: unknown }; object?: { key?: unknown; versionId?: unknown; eTag?: unknown } } };
    if (typeof r?.eventName === 'string' && !r.eventName.startsWith('ObjectCreated')) {
      rejected.push(`record ${index}: ${r.eventName} is not an ObjectCreated event`);
      return;
    }
    const bucket = r?.s3?.bucket?.name;
    const key = r?.s3?.object?.key;
    const versionId = r?.s3?.object?.versionId;
    const etag = r?.s3?.object?.eTag;
    if (typeof bucket !== 'string' || typeof key !== 'string' || bucket === '' || key === '') {
      rejected.push(`record ${index}: missing s3.bucket.name or s3.object.key`);
      return;
    }
    let decoded: string;
    try {
      decoded = decodeEventKey(key);
    } catch {
      rejected.push(`record ${index}: key ${JSON.stringify(key)} is not valid URL encoding`);
      return;
    }
    records.push({
      bucket,
      key: decoded,
      ...(typeof versionId === 'string' && versionId !== '' ? { versionId } : {}),
      ...(typeof etag === 'string' && etag !== '' ? { etag } : {}),
    });
  });
  return { records, rejected };
}
