import type { S3Event } from 'aws-lambda';
import { encodeEventKey } from './layout.js';

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
