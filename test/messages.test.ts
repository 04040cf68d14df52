/**
 * The one message schema (lib/work/messages.ts) for S3's EventBridge events beside S3
 * notifications: the same object named by both, whatever its key holds; the edge checks; and
 * a direct invocation with an EventBridge event rendering on moto.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { readEndpoints } from '../lib/aws/endpoint.js';
import { loadConfig } from '../lib/config/env.js';
import { logger } from '../lib/observability.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { eventBridgeObjectCreated, s3PutEvent } from '../lib/s3/event.js';
import { outputLocation, skipReason } from '../lib/s3/layout.js';
import { parseDirectEvent, parseQueueBody } from '../lib/work/messages.js';
import { ROOT } from '../tools/template.js';
import { readV2Manifest } from './support/manifests.js';
import { CORPUS, createBucket, putObject, resetS3, testConfig, testS3Client } from './support/s3.js';

const KEYS = ['incoming/q3 report+final.pdf', 'incoming/100% done.pdf', 'incoming/%41%2B already-encoded.pdf', 'incoming/résumé/日本語 ü.PDF', 'incoming/a+b+c.pdf', 'incoming/sub/../escape.pdf', 'incoming/x..y/ok..pdf'];

describe('EventBridge "Object Created" events in the message schema', () => {
  it('names the same object as the S3 notification for every key: as given in one (with its decoded form where it holds %XX), form-encoded in the other', () => {
    for (const key of KEYS) {
      const viaEventBridge = parseQueueBody(JSON.stringify(eventBridgeObjectCreated('b-1', key, { etag: 'abc', versionId: 'v1', size: 10 })));
      const viaNotification = parseQueueBody(JSON.stringify(s3PutEvent('b-1', key, { eTag: 'abc', versionId: 'v1', size: 10 })));
      const decodedKey = key === 'incoming/%41%2B already-encoded.pdf' ? 'incoming/A+ already-encoded.pdf' : undefined;
      expect(viaEventBridge, key).toEqual({ requests: [{ bucket: 'b-1', key, etag: 'abc', versionId: 'v1', ...(decodedKey ? { decodedKey } : {}) }], rejected: [] });
      expect(viaNotification, key).toEqual({ requests: [{ bucket: 'b-1', key, etag: 'abc', versionId: 'v1' }], rejected: [] });
      // Directly invoked, too.
      expect(parseDirectEvent(eventBridgeObjectCreated('b-1', key, { etag: 'abc', versionId: 'v1' })), key).toEqual(viaEventBridge);
    }
    // The handler's guard then refuses the ".." segment, whichever way it came.
    expect(skipReason('incoming/sub/../escape.pdf', loadConfig({}))).toMatch(/"\.\."/);
    expect(skipReason('incoming/x..y/ok..pdf', loadConfig({}))).toBeNull();
  });

  it('takes moto\'s spelling too ("eTag", "version-id": null), and checks every field it reads', () => {
    const moto = eventBridgeObjectCreated('b-1', 'incoming/a.pdf') as { detail: { object: Record<string, unknown> } };
    Object.assign(moto.detail.object, { eTag: 'e1', 'version-id': null });
    expect(parseQueueBody(JSON.stringify(moto))).toEqual({ requests: [{ bucket: 'b-1', key: 'incoming/a.pdf', etag: 'e1' }], rejected: [] });

    const variant = (change: (event: { 'detail-type'?: unknown; detail: { bucket: Record<string, unknown>; object: Record<string, unknown> } }) => void) => {
      const event = eventBridgeObjectCreated('b-1', 'incoming/a.pdf') as Parameters<typeof change>[0];
      change(event);
      return parseQueueBody(JSON.stringify(event));
    };
    expect(variant((e) => (e['detail-type'] = 'Object Deleted'))).toEqual({ requests: [], rejected: ['EventBridge event detail-type "Object Deleted" is not "Object Created"'] });
    expect(variant((e) => delete e.detail.object['key']).rejected[0]).toMatch(/detail\.bucket\.name and detail\.object\.key/);
    expect(variant((e) => (e.detail.bucket['name'] = 7)).rejected[0]).toMatch(/detail\.bucket\.name/);
    expect(variant((e) => (e.detail.object['etag'] = 12)).rejected).toEqual(['detail.object.etag 12 is not a string']);
    expect(variant((e) => (e.detail.object['version-id'] = {})).rejected).toEqual(['detail.object.version-id {} is not a string']);
    expect(variant((e) => (e.detail.object['size'] = -1)).rejected).toEqual(['detail.object.size -1 is not a whole number >= 0']);
    expect(variant((e) => (e.detail.object['sequencer'] = 5)).rejected).toEqual(['detail.object.sequencer 5 is not a string']);
    // Not an S3 event of EventBridge's: as before.
    expect(parseQueueBody(JSON.stringify({ source: 'aws.s3' })).rejected).toEqual(['the message is neither an S3 notification, an EventBridge S3 event nor a render message']);
  });

  it('reads the sample event (events/eventbridge-object-created.json) as the same object as events/s3-put.json', () => {
    const sample = (name: string): unknown => JSON.parse(readFileSync(join(ROOT, 'events', name), 'utf8'));
    expect(parseDirectEvent(sample('eventbridge-object-created.json'))).toEqual(parseDirectEvent(sample('s3-put.json')));
    expect(parseDirectEvent(sample('eventbridge-object-created.json')).requests).toEqual([{ bucket: 'example-bucket', key: 'incoming/sample.pdf' }]);
  });
});

describe('an EventBridge event invoked directly', () => {
  beforeAll(resetS3);

  it('renders the object it names, key verbatim ("+" and "%" included)', async () => {
    const s3 = testS3Client();
    await createBucket(s3, 'direct-b');
    const key = 'incoming/a+b 100%.pdf';
    await putObject(s3, 'direct-b', key, await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    const config = testConfig();
    const result = await createRenderHandler(config, s3)(eventBridgeObjectCreated('direct-b', key));
    expect(result.records).toMatchObject([{ bucket: 'direct-b', key, outcome: 'rendered', status: 'complete' }]);
    const manifest = await readV2Manifest(s3, 'direct-b', `${outputLocation('direct-b', key, config).prefix}manifest.json`);
    expect(manifest.source.key).toBe(key);
  });
});

describe('EventBridge keys in both encodings, on moto', () => {
  beforeAll(resetS3);
  /** Percent-encoding as Powertools and field reports describe EventBridge's: each segment encoded, "/" kept. */
  const percentEncoded = (key: string): string => key.split('/').map(encodeURIComponent).join('/');
  const ODD_KEYS = ['incoming/Q3 report.pdf', 'incoming/a+b+c.pdf', 'incoming/100% done.pdf', 'incoming/résumé/日本語 ü.pdf', 'incoming/%41%2B already-encoded.pdf'];

  it('renders the object whether the key comes percent-encoded or as it is ("+" stays "+"), and logs and counts which form matched', async () => {
    const s3 = testS3Client();
    await createBucket(s3, 'keys-b');
    const config = testConfig();
    const render = createRenderHandler(config, s3);
    const pdf = await readFile(join(CORPUS, 'matplotlib-type3.pdf'));
    const forms = vi.spyOn(logger, 'info');
    try {
      for (const key of ODD_KEYS) {
        await putObject(s3, 'keys-b', key, pdf);
        const encoded = percentEncoded(key);
        forms.mockClear();
        // Encoded: the key as given is not found; its decoded form is, and renders.
        expect((await render(eventBridgeObjectCreated('keys-b', encoded))).records, key).toMatchObject([{ outcome: 'rendered', status: 'complete' }]);
        expect(forms).toHaveBeenCalledWith('EventBridge key holding %XX', expect.objectContaining({ key: encoded, decodedKey: key, form: 'decoded' }));
        const manifest = await readV2Manifest(s3, 'keys-b', `${outputLocation('keys-b', key, config).prefix}manifest.json`);
        expect(manifest.source.key).toBe(key);
        // As it is: the same object, now up to date (a key that itself holds %XX matched as given).
        forms.mockClear();
        expect((await render(eventBridgeObjectCreated('keys-b', key))).records, key).toMatchObject([{ outcome: 'up-to-date' }]);
        const asGiven = forms.mock.calls.filter(([message]) => message === 'EventBridge key holding %XX');
        expect(asGiven.map(([, fields]) => (fields as { form: string }).form), key).toEqual(key.includes('%41') ? ['as-given'] : []);
      }
      // Neither form names an object: ignored, and counted as such.
      forms.mockClear();
      expect((await render(eventBridgeObjectCreated('keys-b', 'incoming/no%20such.pdf'))).records).toMatchObject([{ outcome: 'ignored' }]);
      expect(forms).toHaveBeenCalledWith('EventBridge key holding %XX', expect.objectContaining({ form: 'neither' }));
      // A decoded form with a ".." segment meets the same guard.
      expect((await render(eventBridgeObjectCreated('keys-b', 'incoming/a/%2E%2E/b.pdf'))).records).toMatchObject([{ outcome: 'ignored' }]);
    } finally {
      forms.mockRestore();
    }
  });
});

describe('local endpoints (lib/aws/endpoint.ts)', () => {
  it('follows the SDK: AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL, then the alias S3_ENDPOINT', () => {
    expect(readEndpoints({})).toEqual({});
    expect(readEndpoints({ S3_ENDPOINT: 'http://127.0.0.1:1' })).toEqual({ S3: 'http://127.0.0.1:1', SQS: 'http://127.0.0.1:1', EventBridge: 'http://127.0.0.1:1', CloudWatch: 'http://127.0.0.1:1', SSM: 'http://127.0.0.1:1' });
    expect(readEndpoints({ AWS_ENDPOINT_URL: 'http://127.0.0.1:2', S3_ENDPOINT: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:3', AWS_ENDPOINT_URL_EVENTBRIDGE: 'http://127.0.0.1:4' })).toEqual({
      S3: 'http://127.0.0.1:2',
      SQS: 'http://127.0.0.1:3',
      EventBridge: 'http://127.0.0.1:4',
      CloudWatch: 'http://127.0.0.1:2',
      SSM: 'http://127.0.0.1:2',
    });
    // As the SDK: AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops its own variables (not this project's alias).
    expect(readEndpoints({ AWS_ENDPOINT_URL: 'http://127.0.0.1:2', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' })).toEqual({});
    // Empty is unset (the template declares S3_ENDPOINT empty for sam local --env-vars).
    expect(readEndpoints({ S3_ENDPOINT: '', AWS_ENDPOINT_URL: '' })).toEqual({});
    expect(() => readEndpoints({ AWS_ENDPOINT_URL_S3: 'localhost:9000' })).toThrow(/^AWS_ENDPOINT_URL_S3="localhost:9000" is invalid: expected a URL/);
    expect(() => loadConfig({ AWS_ENDPOINT_URL: 'nope' })).toThrow(/^AWS_ENDPOINT_URL="nope" is invalid/);
  });
});
