/**
 * Scheduled reprocessing (docs/reprocess.md) against a real S3 server (moto): inputs,
 * classification of PDFs in every state, in-process dispatch through the render handler,
 * dry runs that write nothing, bounded listing over 2,000 keys, the per-run limit, and
 * dispatch failures that do not stop a run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CONFIG_ENV_VARS, loadConfig, type Config } from '../lib/config/env.js';
import { optionsHash, type Manifest } from '../lib/job/manifest.js';
import { logger, metrics } from '../lib/observability.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { createDispatcher, QueueDispatcher, type Dispatcher } from '../lib/reprocess/dispatch.js';
import { parseQueueBody, type WorkRequest } from '../lib/work/messages.js';
import { createQueue, drain, testSqsClient } from './support/sqs.js';
import { InProcessDispatcher } from './support/in-process-dispatcher.js';
import { createReprocessHandler } from '../lib/reprocess/handler.js';
import { parseReprocessInput, type ReprocessInput } from '../lib/reprocess/input.js';
import { checkpointKey, s3CheckpointStore } from '../lib/reprocess/checkpoint.js';
import { useFaultProxy } from './support/fault-proxy.js';
import { reprocess, type ClassifiedPdf } from '../lib/reprocess/run.js';
import { s3PutEvent } from '../lib/s3/event.js';
import { MANIFEST_FILE, outputLocation } from '../lib/s3/layout.js';
import { RENDERER } from '../lib/job/version.js';
import { CORPUS, createBucket, putObject, resetS3, s3Endpoint, testConfig, testS3Client } from './support/s3.js';
import { readV2Manifest } from './support/manifests.js';

// A renderer release with a major version that has a predecessor (the package is still 0.x):
// the render handler records it in manifests and the classifier compares against it.
vi.mock('../lib/job/version.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../lib/job/version.js')>();
  return { ...original, RENDERER: { ...original.RENDERER, version: '2.3.0' } };
});

const SRC = 'reprocess-src';
const corpus = (file: string): Buffer => readFileSync(join(CORPUS, file));

function input(fields: Partial<ReprocessInput> = {}): ReprocessInput {
  return { prefix: '', force: false, dryRun: false, limit: 1000, scheduled: false, ...fields };
}

function manifestKey(config: Config, key: string): { bucket: string; key: string } {
  const out = outputLocation(SRC, key, config);
  return { bucket: out.bucket, key: out.prefix + MANIFEST_FILE };
}

async function readManifestOf(s3: S3Client, config: Config, key: string): Promise<Manifest> {
  const where = manifestKey(config, key);
  return readV2Manifest(s3, where.bucket, where.key);
}

async function writeManifest(s3: S3Client, config: Config, key: string, body: Manifest | string): Promise<void> {
  const where = manifestKey(config, key);
  await putObject(s3, where.bucket, where.key, typeof body === 'string' ? body : JSON.stringify(body, null, 2));
}

/** Every object of every bucket, with its ETag and last-modified time. */
async function snapshot(s3: S3Client): Promise<string[]> {
  const lines: string[] = [];
  for (const bucket of (await s3.send(new ListBucketsCommand({}))).Buckets ?? []) {
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket.Name!, ContinuationToken: token }));
      for (const o of page.Contents ?? []) lines.push(`${bucket.Name}/${o.Key} ${o.ETag} ${o.LastModified?.toISOString()}`);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
  return lines.sort();
}

/** Records what it is asked to dispatch; optionally delegates, or throws for some keys. */
class RecordingDispatcher implements Dispatcher {
  readonly kind = 'recording';
  readonly keys: string[] = [];
  readonly requests: WorkRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    readonly concurrency = 4,
    private readonly options: { inner?: Dispatcher; failFor?: (key: string) => boolean } = {},
  ) {}
  async dispatch(request: WorkRequest): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (this.options.failFor?.(request.key)) throw new Error(`simulated dispatch failure for ${request.key}`);
      this.keys.push(request.key);
      this.requests.push(request);
      await this.options.inner?.dispatch(request);
    } finally {
      this.inFlight--;
    }
  }
}

function byKey(items: ClassifiedPdf[]): Record<string, string> {
  return Object.fromEntries(items.map((i) => [i.key.replace(/^incoming\/states\//, ''), `${i.class}/${i.action}`]));
}

describe('reprocess input', () => {
  it('defaults every field', () => {
    expect(parseReprocessInput({})).toEqual({ input: input(), warnings: [] });
    expect(parseReprocessInput(undefined)).toEqual({ input: input(), warnings: [] });
    expect(parseReprocessInput(null)).toEqual({ input: input(), warnings: [] });
  });

  it('reads every field, and warns about unknown ones', () => {
    const { input: parsed, warnings } = parseReprocessInput({ bucket: 'other-bucket', prefix: 'reports/', force: true, dryRun: true, limit: 5, dryrun: false });
    expect(parsed).toEqual({ bucket: 'other-bucket', prefix: 'reports/', force: true, dryRun: true, limit: 5, scheduled: false });
    expect(warnings).toEqual([expect.stringContaining('unknown field "dryrun" ignored')]);
    expect(parseReprocessInput({ scheduled: true }).input).toEqual(input({ scheduled: true }));
    expect(parseReprocessInput({ startAfter: 'incoming/a.pdf' }).input).toEqual(input({ startAfter: 'incoming/a.pdf' }));
    expect(() => parseReprocessInput({ scheduled: 'yes' })).toThrow('"scheduled" must be true or false');
    expect(() => parseReprocessInput({ startAfter: 3 })).toThrow('"startAfter" must be a key');
    expect(() => parseReprocessInput({ scheduled: true, startAfter: 'incoming/a.pdf' })).toThrow('"startAfter" is for manual runs: a scheduled run resumes from its checkpoint');
  });

  it('takes the fields from the top level of an EventBridge ScheduledEvent, without warning about its envelope', () => {
    const event = {
      version: '0',
      id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: '2024-10-01T04:00:00Z',
      region: 'us-east-1',
      resources: ['arn:aws:events:us-east-1:123456789012:rule/reprocess'],
      detail: {},
      dryRun: true,
      limit: 10,
    };
    expect(parseReprocessInput(event)).toEqual({ input: input({ dryRun: true, limit: 10 }), warnings: [] });
    expect(parseReprocessInput({ ...event, dryRun: undefined, detail: { dryRun: true } }).warnings).toEqual([
      'detail.dryRun ignored: reprocess fields are read from the top level of the event',
    ]);
  });

  it('rejects wrong types with a message naming each field', () => {
    expect(() => parseReprocessInput({ dryRun: 'yes' })).toThrow('"dryRun" must be true or false; got the string "yes"');
    expect(() => parseReprocessInput({ force: 1 })).toThrow('"force" must be true or false; got number 1');
    expect(() => parseReprocessInput({ limit: 0 })).toThrow('"limit" must be a whole number from 1 to 100000');
    expect(() => parseReprocessInput({ limit: 2.5 })).toThrow('"limit" must be a whole number');
    expect(() => parseReprocessInput({ limit: '10' })).toThrow('"limit" must be a whole number from 1 to 100000 (dispatches per run); got the string "10"');
    expect(() => parseReprocessInput({ prefix: 7 })).toThrow('"prefix" must be a string');
    expect(() => parseReprocessInput({ prefix: '/reports' })).toThrow('"prefix" must not start with "/"');
    expect(() => parseReprocessInput({ bucket: 'Not_A_Bucket' })).toThrow('"bucket" must be an S3 bucket name');
    expect(() => parseReprocessInput({ dryRun: 'yes', limit: -1 })).toThrow(/"dryRun".*; "limit"/);
    expect(() => parseReprocessInput('dryRun')).toThrow('the reprocess input must be a JSON object such as {"dryRun": true}');
    expect(() => parseReprocessInput([{ dryRun: true }])).toThrow('got an array');
  });
});

describe('SOURCE_BUCKET', () => {
  it('is read, validated like OUTPUT_BUCKET, and listed for the template', () => {
    expect(loadConfig({ SOURCE_BUCKET: 'my-pdfs' }).sourceBucket).toBe('my-pdfs');
    expect(loadConfig({}).sourceBucket).toBeUndefined();
    expect(() => loadConfig({ SOURCE_BUCKET: 'My_Bucket' })).toThrow('SOURCE_BUCKET="My_Bucket" is invalid: expected an S3 bucket name');
    expect(CONFIG_ENV_VARS).toContain('SOURCE_BUCKET');
  });
});

describe('dispatchers', () => {
  it('send to the render queue with RENDER_QUEUE_URL, and fail each dispatch without it', async () => {
    const none = createDispatcher(testConfig());
    expect(none.kind).toBe('none');
    await expect(none.dispatch({ bucket: SRC, key: 'incoming/a.pdf', etag: 'e' })).rejects.toThrow('RENDER_QUEUE_URL is not set');
    expect(createDispatcher(testConfig({ RENDER_QUEUE_URL: 'http://127.0.0.1:1/123456789012/render' }))).toBeInstanceOf(QueueDispatcher);
  });

  it('put one render message per PDF on the queue, which the render function reads back as the same request', async () => {
    await resetS3();
    const sqs = testSqsClient();
    const queueUrl = await createQueue(sqs, 'render');
    const dispatcher = createDispatcher(testConfig({ RENDER_QUEUE_URL: queueUrl }));
    const request: WorkRequest = { bucket: SRC, key: 'incoming/a b.pdf', etag: 'abc', force: true };
    await dispatcher.dispatch(request);
    const messages = await drain(sqs, queueUrl);
    expect(messages).toHaveLength(1);
    expect(parseQueueBody(messages[0]!.Body!)).toEqual({ requests: [request], rejected: [] });
  });
});

describe('a bucket with PDFs in every state', () => {
  const config = testConfig({ SOURCE_BUCKET: SRC });
  const s3 = testS3Client(config);
  const render = createRenderHandler(config, s3);
  const K = (name: string): string => `incoming/states/${name}`;

  // What each state's PDF must be classified as, and whether a run dispatches it.
  const EXPECTED: Record<string, string> = {
    'missing.pdf': 'missing/dispatched',
    'damaged-manifest.pdf': 'missing/dispatched',
    'failed.pdf': 'failed/not-dispatched',
    'failed-older-release.pdf': 'failed/dispatched',
    'partial.pdf': 'partial/dispatched',
    'partial-pages-failed.pdf': 'partial/not-dispatched',
    'stale-etag.pdf': 'stale/dispatched',
    'stale-options.pdf': 'stale/dispatched',
    'stale-major.pdf': 'stale/dispatched',
    'stale-schema-v1.pdf': 'stale/dispatched',
    'ok.pdf': 'ok/not-dispatched',
  };

  beforeAll(async () => {
    await resetS3();
    await createBucket(s3, SRC);
    const matplotlib = corpus('matplotlib-type3.pdf');
    const cff = corpus('opentype-cff-font.pdf');
    const password = corpus('password-libreoffice.pdf');
    const upload = async (name: string, body: Buffer): Promise<void> => void (await putObject(s3, SRC, K(name), body));

    // Three real renders...
    await upload('ok.pdf', cff);
    await upload('failed.pdf', password);
    await upload('stale-options.pdf', matplotlib);
    for (const name of ['ok.pdf', 'failed.pdf', 'stale-options.pdf']) await render(s3PutEvent(SRC, K(name)));
    const complete = await readManifestOf(s3, config, K('stale-options.pdf'));
    const completeCff = await readManifestOf(s3, config, K('ok.pdf'));
    const failed = await readManifestOf(s3, config, K('failed.pdf'));
    expect([complete.status, completeCff.status, failed.status, failed.error?.code]).toEqual(['complete', 'complete', 'failed', 'ENCRYPTED']);
    expect(complete.renderer.version).toBe('2.3.0');

    // ...and every other state from their manifests, rewritten.
    const derive = async (name: string, body: Buffer, from: Manifest, edit: (m: Manifest) => void): Promise<void> => {
      await upload(name, body);
      const manifest = structuredClone(from);
      manifest.source.key = K(name);
      edit(manifest);
      await writeManifest(s3, config, K(name), manifest);
    };
    await upload('missing.pdf', matplotlib);
    await upload('damaged-manifest.pdf', matplotlib);
    await writeManifest(s3, config, K('damaged-manifest.pdf'), '{"schemaVersion": 1, "status": "comp');
    await derive('failed-older-release.pdf', password, failed, (m) => void (m.renderer.version = '2.2.9'));
    await derive('partial.pdf', matplotlib, complete, (m) => Object.assign(m, { status: 'partial', nextPage: 1, pages: [] }));
    await derive('partial-pages-failed.pdf', matplotlib, complete, (m) =>
      Object.assign(m, { status: 'partial', pages: [{ number: 1, error: { code: 'PAGE_RENDER_FAILED', message: 'broken content stream' } }] }),
    );
    await derive('stale-etag.pdf', matplotlib, complete, (m) => void (m.source.etag = '0123456789abcdef0123456789abcdef'));
    await derive('stale-major.pdf', cff, completeCff, (m) => void (m.renderer.version = '1.9.0'));
    // A schema v1 manifest (pages directly under the prefix), as the previous release wrote it.
    await upload('stale-schema-v1.pdf', matplotlib);
    const v1 = { ...complete, schemaVersion: 1, generation: undefined, source: { ...complete.source, key: K('stale-schema-v1.pdf') } };
    await writeManifest(s3, config, K('stale-schema-v1.pdf'), JSON.stringify(v1));
    const options = { ...complete.options, dpi: 72 };
    await writeManifest(s3, config, K('stale-options.pdf'), { ...complete, options, optionsHash: optionsHash(options) });
    // Never scanned: not a PDF, or outside INPUT_PREFIX.
    await putObject(s3, SRC, 'incoming/states/notes.txt', 'not a pdf');
    await putObject(s3, SRC, 'elsewhere/outside.pdf', matplotlib);
  });

  it('classifies each PDF in a dry run, and writes nothing', async () => {
    const before = await snapshot(s3);
    const items: ClassifiedPdf[] = [];
    const dispatcher = new RecordingDispatcher();
    const summary = await reprocess(SRC, input({ dryRun: true }), { s3, config, recentMs: 0, dispatcher, onClassified: (i) => items.push(i) });

    const expectedDryRun = Object.fromEntries(Object.entries(EXPECTED).map(([k, v]) => [k, v.replace('/dispatched', '/would-dispatch')]));
    expect(byKey(items)).toEqual(expectedDryRun);
    expect(dispatcher.keys).toEqual([]);
    expect(summary).toMatchObject({
      bucket: SRC,
      prefix: 'incoming/',
      dryRun: true,
      scanned: 11,
      counts: { missing: 2, failed: 2, partial: 2, stale: 4, ok: 1 },
      needsWork: 8,
      settled: 2,
      dispatched: 0,
      dispatchFailures: 0,
      readFailures: 0,
      remaining: 8,
      complete: true,
      moreRemain: true,
    });
    expect(await snapshot(s3)).toEqual(before);
  });

  it('leaves PDFs uploaded in the last few minutes to their own S3 events', async () => {
    const items: ClassifiedPdf[] = [];
    const dispatcher = new RecordingDispatcher();
    // The default window (RECENT_UPLOAD_SECONDS, 300 s): every PDF here was uploaded moments ago.
    const summary = await reprocess(SRC, input({}), { s3, config, dispatcher, onClassified: (i) => items.push(i) });
    expect(summary).toMatchObject({ needsWork: 0, recent: 8, dispatched: 0 });
    expect(dispatcher.keys).toEqual([]);
    expect(items.filter((i) => i.action === 'left-to-its-event')).toHaveLength(8);
  });

  it('with force, counts every PDF that has a manifest as stale', async () => {
    const items: ClassifiedPdf[] = [];
    const dispatcher = new RecordingDispatcher();
    const summary = await reprocess(SRC, input({ force: true, limit: 5 }), { s3, config, recentMs: 0, dispatcher, onClassified: (i) => items.push(i) });
    expect(summary.counts).toEqual({ missing: 2, failed: 0, partial: 0, stale: 9, ok: 0 });
    expect(summary).toMatchObject({ needsWork: 11, dispatched: 5, remaining: 6, moreRemain: true });
    expect(dispatcher.keys).toHaveLength(5);
    expect(items.find((i) => i.key === K('ok.pdf'))).toMatchObject({ class: 'stale', reason: 'force' });
  });

  it('with force, really re-renders an up-to-date PDF (the event carries forceRender)', async () => {
    const before = await readManifestOf(s3, config, K('ok.pdf'));
    expect(before.status).toBe('complete');
    const dispatcher = new RecordingDispatcher(1, { inner: new InProcessDispatcher(config, s3) });
    await reprocess(SRC, input({ force: true, prefix: 'states/ok.pdf' }), { s3, config, recentMs: 0, dispatcher });
    expect(dispatcher.requests.map((r) => r.force)).toEqual([true]);
    const after = await readManifestOf(s3, config, K('ok.pdf'));
    expect(after.status).toBe('complete');
    expect(after.startedAt > before.startedAt).toBe(true);
  });

  it('reads only under the input prefix', async () => {
    const dispatcher = new RecordingDispatcher();
    const summary = await reprocess(SRC, input({ prefix: 'states/stale-', dryRun: true }), { s3, config, recentMs: 0, dispatcher });
    expect(summary).toMatchObject({ prefix: 'incoming/states/stale-', scanned: 4, counts: { stale: 4 } });
  });

  it('re-renders in-process what needs it; a second run then finds nothing to do', async () => {
    const handler = createReprocessHandler(config, { s3, recentMs: 0, dispatcher: new InProcessDispatcher(config, s3) });
    const items: ClassifiedPdf[] = [];
    const first = await handler({}, undefined);
    expect(first).toMatchObject({ dispatcher: 'in-process', dispatched: 8, dispatchFailures: 0, remaining: 0, moreRemain: false });

    for (const [name, expected] of Object.entries(EXPECTED)) {
      const manifest = await readManifestOf(s3, config, K(name));
      if (expected.endsWith('/dispatched')) {
        // Rendered now, by this release, for these bytes and options.
        expect(manifest.renderer.version, name).toBe('2.3.0');
        expect(manifest.optionsHash, name).toBe(optionsHash(config.output));
        expect(manifest.status, name).toBe(name.startsWith('failed') ? 'failed' : 'complete');
      }
    }

    const second = await createReprocessHandler(config, { s3, recentMs: 0, onClassified: (i) => items.push(i) })({ dryRun: false });
    expect(second).toMatchObject({
      scanned: 11,
      counts: { missing: 0, failed: 2, partial: 1, stale: 0, ok: 8 },
      needsWork: 0,
      settled: 3,
      dispatched: 0,
      remaining: 0,
      moreRemain: false,
    });
    expect(items.filter((i) => i.class === 'ok')).toHaveLength(8);
    // What remains is permanent: the password-protected PDF, and the page that "failed".
    expect(items.filter((i) => i.class !== 'ok').map((i) => i.key).sort()).toEqual(
      [K('failed-older-release.pdf'), K('failed.pdf'), K('partial-pages-failed.pdf')].sort(),
    );
  });
});

describe('a bucket of 2,000 PDFs', () => {
  const config = testConfig({ SOURCE_BUCKET: SRC });
  const s3 = testS3Client(config);
  /** Without the counting middleware, for seeding and snapshots. */
  const plain = testS3Client(config);
  const PAGE_SIZE = 100;
  const COUNT = 2000;
  const bulkKey = (i: number): string => `incoming/bulk/${String(i).padStart(4, '0')}.pdf`;

  /** Counts ListObjectsV2 pages and manifest reads as the S3 client sends them. */
  const calls = { lists: [] as { maxKeys: number | undefined; keysListed: number; manifestReads: number }[], keysListed: 0, manifestReads: 0 };
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const command = (context as { commandName?: string }).commandName;
      const params = args.input as { Key?: string; MaxKeys?: number };
      if (command === 'ListObjectsV2Command') {
        calls.lists.push({ maxKeys: params.MaxKeys, keysListed: calls.keysListed, manifestReads: calls.manifestReads });
        const result = await next(args);
        calls.keysListed += ((result.output as { Contents?: unknown[] }).Contents ?? []).length;
        return result;
      }
      if (command === 'GetObjectCommand' && params.Key?.endsWith(MANIFEST_FILE)) calls.manifestReads++;
      return next(args);
    },
    { step: 'initialize', name: 'countingForTest' },
  );

  beforeAll(async () => {
    await resetS3();
    await createBucket(plain, SRC);
    // Tiny objects (classification does not open them), uploaded 32 at a time.
    const keys = [...Array.from({ length: COUNT }, (_, i) => bulkKey(i)), ...Array.from({ length: 10 }, (_, i) => `incoming/bulk/readme-${i}.txt`)];
    for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((key) => putObject(plain, SRC, key, `%PDF-1.4 ${key}`)));
  }, 120_000);

  beforeEach(() => {
    calls.lists = [];
    calls.keysListed = 0;
    calls.manifestReads = 0;
  });

  it('lists page by page, classifying as it goes, and writes nothing in a dry run', async () => {
    const before = await snapshot(plain);
    const dispatcher = new RecordingDispatcher();
    const summary = await reprocess(SRC, input({ dryRun: true }), { s3, config, recentMs: 0, dispatcher, pageSize: PAGE_SIZE, concurrency: 8 });
    expect(summary).toMatchObject({ scanned: COUNT, counts: { missing: COUNT }, needsWork: COUNT, dispatched: 0, remaining: COUNT, complete: true });
    expect(calls.manifestReads).toBe(COUNT);
    // 2,010 keys in pages of 100: 21 requests, each asking for one page.
    expect(calls.lists).toHaveLength(Math.ceil((COUNT + 10) / PAGE_SIZE));
    expect(calls.lists.every((l) => l.maxKeys === PAGE_SIZE)).toBe(true);
    // Streaming: a page is requested only once the PDFs listed before it are (nearly all) being
    // classified — never more than the page in hand plus the one prefetched are held.
    for (const list of calls.lists) expect(list.keysListed - list.manifestReads).toBeLessThanOrEqual(2 * PAGE_SIZE);
    expect(dispatcher.keys).toEqual([]);
    expect(await snapshot(plain)).toEqual(before);
  });

  it('stops listing and reading manifests once it has dispatched its limit, and says that more remain', async () => {
    const dispatcher = new RecordingDispatcher(4);
    const summary = await reprocess(SRC, input({ limit: 150 }), { s3, config, recentMs: 0, dispatcher, pageSize: PAGE_SIZE, concurrency: 8 });
    expect(dispatcher.keys).toHaveLength(150);
    expect(new Set(dispatcher.keys).size).toBe(150);
    expect(dispatcher.maxInFlight).toBeLessThanOrEqual(4);
    expect(summary).toMatchObject({ dispatched: 150, dispatchFailures: 0, complete: false, moreRemain: true });
    // Nothing read past the limit but the PDFs already in the workers' hands (8), and no page
    // listed past the one in hand and the one prefetched.
    expect(summary.scanned).toBeLessThanOrEqual(150 + 8);
    expect(calls.manifestReads).toBeLessThanOrEqual(150 + 8);
    expect(calls.lists.length).toBeLessThanOrEqual(3);
    const request = dispatcher.requests[0]!;
    expect(request.bucket).toBe(SRC);
    expect(request.etag).toMatch(/^[0-9a-f]{32}$/);
    expect(dispatcher.keys).toContain(request.key);
  });

  it('counts a failed dispatch and goes on with the others', async () => {
    const failing = bulkKey(42);
    const dispatcher = new RecordingDispatcher(2, { failFor: (key) => key === failing });
    const summary = await reprocess(SRC, input({ prefix: 'bulk/00' }), { s3, config, recentMs: 0, dispatcher, pageSize: PAGE_SIZE });
    expect(summary).toMatchObject({ scanned: 100, needsWork: 100, dispatched: 99, dispatchFailures: 1, remaining: 1, moreRemain: true });
    expect(dispatcher.keys).not.toContain(failing);
    expect(dispatcher.keys).toContain(bulkKey(99));
  });

  it('stops taking PDFs when the invocation runs out of time, and says the listing was not finished', async () => {
    let clock = 0;
    const dispatcher = new RecordingDispatcher();
    // 300 checks with time to spare, then under the reserve.
    const summary = await reprocess(SRC, input({ dryRun: true }), { s3, config, recentMs: 0, dispatcher, pageSize: PAGE_SIZE, timeLeftMs: () => (++clock <= 300 ? 60_000 : 1_000) });
    expect(summary.complete).toBe(false);
    expect(summary.moreRemain).toBe(true);
    expect(summary.scanned).toBeGreaterThan(250);
    expect(summary.scanned).toBeLessThan(COUNT);
  });

  it('resumes from a checkpoint where a run ran out of time, and starts over once a run reaches the end', async () => {
    const checkpoint = s3CheckpointStore(plain, config, SRC, 'incoming/');
    const seen: string[][] = [];
    const runs = [];
    // Each run has time for about 700 PDFs; the fourth finds the checkpoint cleared and starts over.
    for (let run = 0; run < 4; run++) {
      let clock = 0;
      const keys: string[] = [];
      runs.push(
        await reprocess(SRC, input({ scheduled: true }), {
          s3, config, recentMs: 0, dispatcher: new RecordingDispatcher(), pageSize: PAGE_SIZE, checkpoint,
          onClassified: (item) => keys.push(item.key),
          timeLeftMs: () => (++clock <= 700 ? 60_000 : 1_000),
        }),
      );
      seen.push(keys.sort());
    }
    expect(runs.map((r) => r.complete)).toEqual([false, false, true, false]);
    // Each run starts after the last key the one before it took: no key twice, none left out.
    expect(runs[0]!.startAfter).toBeNull();
    expect(runs[1]!.startAfter).toBe(runs[0]!.nextStartAfter);
    expect(runs[1]!.startAfter).toBe(seen[0]!.at(-1));
    expect(runs[2]!.nextStartAfter).toBeNull();
    expect(runs[3]!.startAfter).toBeNull();
    const covered = seen.slice(0, 3).flat();
    expect(covered).toHaveLength(COUNT);
    expect(new Set(covered).size).toBe(COUNT);
    expect(seen[3]![0]).toBe(bulkKey(0));
  });

  it('checkpoints at the last key it finished when it stops at its limit, so the next run dispatches the next ones and none twice', async () => {
    const checkpoint = s3CheckpointStore(plain, config, SRC, 'incoming/bulk/00');
    await checkpoint.write({ startAfter: null, retry: [] });
    const first = new RecordingDispatcher(1);
    const second = new RecordingDispatcher(1);
    const run = (dispatcher: Dispatcher) =>
      reprocess(SRC, input({ prefix: 'bulk/00', limit: 40, scheduled: true }), { s3, config, recentMs: 0, dispatcher, pageSize: PAGE_SIZE, concurrency: 1, checkpoint });
    const one = await run(first);
    const two = await run(second);
    expect(one).toMatchObject({ complete: false, scanned: 40, dispatched: 40, nextStartAfter: bulkKey(39) });
    expect(two).toMatchObject({ startAfter: bulkKey(39), scanned: 40, dispatched: 40, nextStartAfter: bulkKey(79) });
    expect(second.keys.filter((k) => first.keys.includes(k))).toEqual([]);
    expect(second.keys.sort()[0]).toBe(bulkKey(40));
  });

  it('retries a failed dispatch on the next run: held for retry while the checkpoint moves past it', async () => {
    const checkpoint = s3CheckpointStore(plain, config, SRC, 'incoming/bulk/00');
    await checkpoint.write({ startAfter: null, retry: [] });
    const failing = bulkKey(10);
    const first = new RecordingDispatcher(2, { failFor: (key) => key === failing });
    const second = new RecordingDispatcher(2);
    const run = (dispatcher: Dispatcher) =>
      reprocess(SRC, input({ prefix: 'bulk/00', limit: 60, scheduled: true }), { s3, config, recentMs: 0, dispatcher, pageSize: PAGE_SIZE, concurrency: 1, checkpoint });
    const one = await run(first);
    expect(one).toMatchObject({ dispatched: 59, dispatchFailures: 1, nextStartAfter: bulkKey(59), heldForRetry: 1 });
    expect(await checkpoint.read()).toEqual({ startAfter: bulkKey(59), retry: [{ key: failing, failures: 1, lastError: `simulated dispatch failure for ${failing}` }] });
    const two = await run(second);
    expect(two).toMatchObject({ startAfter: bulkKey(59), retried: 1, heldForRetry: 0 });
    expect(second.keys[0]).toBe(failing);
    expect(second.keys.filter((k) => first.keys.includes(k))).toEqual([]);
  });

  it('only the schedule reads and moves its checkpoint: a forced or manual run lists from the first key (or its own startAfter) and leaves it', async () => {
    const checkpoint = s3CheckpointStore(plain, config, SRC, 'incoming/bulk/00');
    await checkpoint.write({ startAfter: bulkKey(50), retry: [] });
    const handler = createReprocessHandler(config, { s3, recentMs: 0, dispatcher: new RecordingDispatcher(1), pageSize: PAGE_SIZE, concurrency: 1 });
    expect(await handler({ prefix: 'bulk/00', force: true, limit: 30 })).toMatchObject({ startAfter: null, scanned: 30, dispatched: 30, nextStartAfter: bulkKey(29) });
    expect((await checkpoint.read())?.startAfter).toBe(bulkKey(50));
    expect(await handler({ prefix: 'bulk/00', limit: 1000 })).toMatchObject({ startAfter: null, scanned: 100, nextStartAfter: null });
    expect((await checkpoint.read())?.startAfter).toBe(bulkKey(50));
    // A manual run's own cursor: the summary's nextStartAfter, passed back.
    expect(await handler({ prefix: 'bulk/00', startAfter: bulkKey(89) })).toMatchObject({ startAfter: bulkKey(89), scanned: 10 });
    await expect(handler({ prefix: 'bulk/00', startAfter: 'incoming/other/1.pdf' })).rejects.toThrow('"startAfter" "incoming/other/1.pdf" is not under the listed prefix "incoming/bulk/00"');
    expect((await checkpoint.read())?.startAfter).toBe(bulkKey(50));
    // The schedule's run resumes from it, and moves it.
    expect(await handler({ prefix: 'bulk/00', scheduled: true })).toMatchObject({ startAfter: bulkKey(50), scanned: 49, nextStartAfter: null });
    expect(await checkpoint.read()).toEqual({ startAfter: null, retry: [] });
  });

  it('holds at most 1,000 keys for retry, dropping the oldest with a warning', async () => {
    const checkpoint = s3CheckpointStore(plain, config, SRC, 'incoming/bulk/');
    await checkpoint.write({ startAfter: null, retry: [] });
    const warned = vi.spyOn(logger, 'warn');
    try {
      const summary = await reprocess(SRC, input({ prefix: 'bulk/', limit: 1100, scheduled: true }), {
        s3, config, recentMs: 0, dispatcher: new RecordingDispatcher(16, { failFor: () => true }), pageSize: PAGE_SIZE, checkpoint,
      });
      expect(summary.dispatchFailures).toBe(1100);
      expect(summary.heldForRetry).toBe(1000);
      const held = (await checkpoint.read())!.retry;
      expect(held).toHaveLength(1000);
      const dropped = warned.mock.calls.filter(([message]) => String(message).startsWith('too many keys held for retry'));
      expect(dropped).toHaveLength(1);
      expect((dropped[0]![1] as { dropped: number }).dropped).toBeGreaterThanOrEqual(100);
      expect(held.map((r) => r.key)).not.toContain((dropped[0]![1] as { firstDropped: string[] }).firstDropped[0]);
    } finally {
      warned.mockRestore();
    }
  });

  it('neither reads nor writes the checkpoint in a dry run', async () => {
    const checkpoint = s3CheckpointStore(plain, config, SRC, 'incoming/');
    await checkpoint.write({ startAfter: bulkKey(1000), retry: [] });
    const summary = await reprocess(SRC, input({ dryRun: true, scheduled: true }), { s3, config, recentMs: 0, dispatcher: new RecordingDispatcher(), pageSize: PAGE_SIZE, checkpoint });
    expect(summary).toMatchObject({ scanned: COUNT, startAfter: null, nextStartAfter: null });
    expect((await checkpoint.read())?.startAfter).toBe(bulkKey(1000));
  });
});

describe('a key whose manifest cannot be read on any run (403)', () => {
  const config = testConfig({ SOURCE_BUCKET: SRC });
  const plain = testS3Client(config);
  const faults = useFaultProxy();
  const key = (i: number): string => `incoming/stuck/k${String(i).padStart(3, '0')}.pdf`;
  const stuck = key(5);
  /** Every manifest GET of the stuck key answers 403, as S3 does when the object's KMS key is disabled. */
  const denyStuck = (): void =>
    faults.proxy.setRules([{ method: 'GET', path: /stuck\/k005\.pdf\/manifest\.json$/, occurrences: Array.from({ length: 1000 }, (_, i) => i + 1), fault: { kind: 'status', status: 403, code: 'AccessDenied' } }]);
  const checkpoint = s3CheckpointStore(plain, config, SRC, 'incoming/stuck/');

  beforeAll(async () => {
    await resetS3();
    await createBucket(plain, SRC);
    await Promise.all(Array.from({ length: 30 }, (_, i) => putObject(plain, SRC, key(i), `%PDF-1.4 ${i}`)));
  }, 60_000);

  const run = (dispatcher: RecordingDispatcher) =>
    reprocess(SRC, input({ prefix: 'stuck/', limit: 10, scheduled: true }), { s3: faults.s3, config, recentMs: 0, dispatcher, pageSize: 10, concurrency: 1, checkpoint });

  it('is held for retry while the cursor moves past it, reached again on each run, warned about after 3 failures in a row, and dispatched once the fault is gone; a run that reaches the end starts the next from the first key', async () => {
    await checkpoint.write({ startAfter: null, retry: [] });
    const warned = vi.spyOn(logger, 'warn');
    try {
      denyStuck();
      // Run 1: k000..k010 taken, k005 not classified (403), 10 dispatched: the cursor is past k005.
      const first = new RecordingDispatcher(1);
      const one = await run(first);
      expect(one).toMatchObject({ readFailures: 1, dispatched: 10, complete: false, nextStartAfter: key(10), heldForRetry: 1 });
      expect(await checkpoint.read()).toEqual({ startAfter: key(10), retry: [{ key: stuck, failures: 1, lastError: expect.any(String) }] });

      // Run 2: k005 tried first (fails again), then the keys past the first run's: k011..k020.
      const second = new RecordingDispatcher(1);
      const two = await run(second);
      expect(two).toMatchObject({ startAfter: key(10), retried: 1, readFailures: 1, dispatched: 10, nextStartAfter: key(20), heldForRetry: 1 });
      expect(second.keys).toEqual(Array.from({ length: 10 }, (_, i) => key(11 + i)));
      expect(warned.mock.calls.filter(([message]) => String(message).startsWith('key keeps failing'))).toHaveLength(0);

      // Run 3: k005 fails a third run in a row (warned), k021..k029 dispatched, the listing
      // reaches its end: the cursor goes back to the first key though k005 is still held.
      const third = new RecordingDispatcher(1);
      const three = await run(third);
      expect(three).toMatchObject({ startAfter: key(20), complete: true, dispatched: 9, nextStartAfter: null, heldForRetry: 1 });
      expect((await checkpoint.read())?.retry).toEqual([{ key: stuck, failures: 3, lastError: expect.any(String) }]);
      const keepsFailing = warned.mock.calls.filter(([message]) => String(message).startsWith('key keeps failing'));
      expect(keepsFailing).toHaveLength(1);
      expect(keepsFailing[0]![1]).toMatchObject({ bucket: SRC, key: stuck, failures: 3 });

      // Run 4, the fault gone: k005 is dispatched first (once, though the listing reaches it again), then k000.. from the start.
      faults.proxy.setRules([]);
      const fourth = new RecordingDispatcher(1);
      const four = await run(fourth);
      expect(four).toMatchObject({ startAfter: null, retried: 1, readFailures: 0, dispatched: 10, heldForRetry: 0 });
      expect(fourth.keys).toEqual([stuck, ...[0, 1, 2, 3, 4, 6, 7, 8, 9].map(key)]);
      expect(await checkpoint.read()).toEqual({ startAfter: key(9), retry: [] });
    } finally {
      warned.mockRestore();
    }
  });

  it('a malformed checkpoint is logged and treated as none', async () => {
    const where = { Bucket: config.outputBucket ?? SRC, Key: checkpointKey(config, SRC, 'incoming/stuck/') };
    const warned = vi.spyOn(logger, 'warn');
    try {
      for (const body of ['{not json', JSON.stringify({ bucket: SRC, prefix: 'incoming/stuck/', startAfter: key(3), retry: [{ key: key(5), failures: 'many' }] }), JSON.stringify({ bucket: SRC, prefix: 'incoming/stuck/', startAfter: 'elsewhere/a.pdf', retry: [] })]) {
        await plain.send(new PutObjectCommand({ ...where, Body: body }));
        expect(await checkpoint.read()).toBeUndefined();
      }
      const ignored = warned.mock.calls.filter(([message]) => String(message).startsWith('checkpoint ignored'));
      expect(ignored.map(([, fields]) => (fields as { error: string }).error)).toEqual([
        'not JSON',
        '"retry[0].failures" "many" is not a count',
        '"startAfter" "elsewhere/a.pdf" is neither null nor a key under the prefix',
      ]);
      // A checkpoint written before the retry list (no "retry") is still taken.
      await plain.send(new PutObjectCommand({ ...where, Body: JSON.stringify({ bucket: SRC, prefix: 'incoming/stuck/', startAfter: key(3), writtenAt: 'x' }) }));
      expect(await checkpoint.read()).toEqual({ startAfter: key(3), retry: [] });
    } finally {
      warned.mockRestore();
    }
  });
});

describe('objects with their own render options (render-* metadata)', () => {
  const config = testConfig({ SOURCE_BUCKET: SRC });
  const s3 = testS3Client(config);
  const render = createRenderHandler(config, s3);
  const WITH = 'incoming/own/with-dpi.pdf';
  const WITHOUT = 'incoming/own/plain.pdf';

  beforeAll(async () => {
    await resetS3();
    await createBucket(s3, SRC);
    await s3.send(new PutObjectCommand({ Bucket: SRC, Key: WITH, Body: corpus('opentype-cff-font.pdf'), Metadata: { 'render-dpi': '36', 'render-colour': 'red' } }));
    await putObject(s3, SRC, WITHOUT, corpus('opentype-cff-font.pdf'));
    for (const key of [WITH, WITHOUT]) await render(s3PutEvent(SRC, key));
  });

  it('records where the options came from in the manifest', async () => {
    expect((await readManifestOf(s3, config, WITH)).optionsSource).toEqual({ from: 'metadata', metadata: { 'render-dpi': '36' } });
    expect((await readManifestOf(s3, config, WITHOUT)).optionsSource).toEqual({ from: 'settings' });
  });

  it('classifies an object against what it asked for: two scheduled runs dispatch nothing, and HEAD only that object', async () => {
    for (let run = 0; run < 2; run++) {
      const dispatcher = new RecordingDispatcher(1, { inner: new InProcessDispatcher(config, s3) });
      const summary = await reprocess(SRC, input({ scheduled: true }), { s3, config, recentMs: 0, dispatcher });
      expect(summary, `run ${run}`).toMatchObject({ scanned: 2, counts: { ok: 2 }, needsWork: 0, dispatched: 0, metadataReads: 1 });
      expect(dispatcher.keys).toEqual([]);
    }
  });

  it('a manifest written before optionsSource is classified with the object metadata when its hash is not the settings\'', async () => {
    const where = manifestKey(config, WITH);
    const manifest = await readManifestOf(s3, config, WITH);
    delete manifest.optionsSource;
    await writeManifest(s3, config, WITH, manifest);
    const summary = await reprocess(SRC, input({ dryRun: true }), { s3, config, recentMs: 0, dispatcher: new RecordingDispatcher() });
    expect(summary).toMatchObject({ counts: { ok: 2 }, needsWork: 0, metadataReads: 1 });
    expect(where.key).toContain('with-dpi.pdf');
  });

  it('under other settings, both are stale, and the render function renders what is dispatched', async () => {
    const jpeg = testConfig({ SOURCE_BUCKET: SRC, FORMAT: 'jpeg' });
    const dispatcher = new RecordingDispatcher(1, { inner: new InProcessDispatcher(jpeg, s3) });
    const items: ClassifiedPdf[] = [];
    expect(await reprocess(SRC, input({ scheduled: true }), { s3, config: jpeg, recentMs: 0, dispatcher, onClassified: (i) => items.push(i) })).toMatchObject({ dispatched: 2, counts: { stale: 2 } });
    const manifest = await readManifestOf(s3, jpeg, WITH);
    expect(manifest.options).toMatchObject({ format: 'jpeg', dpi: 36 });
    expect(await reprocess(SRC, input({ scheduled: true }), { s3, config: jpeg, recentMs: 0, dispatcher: new RecordingDispatcher() })).toMatchObject({ dispatched: 0, counts: { ok: 2 } });
  });
});

describe('the reprocess handler', () => {
  const config = testConfig({ SOURCE_BUCKET: SRC });
  const s3 = testS3Client(config);

  beforeEach(async () => {
    await resetS3();
    await createBucket(s3, SRC);
    await createBucket(s3, 'other-bucket');
    await putObject(s3, SRC, 'incoming/a.pdf', '%PDF-1.4');
    await putObject(s3, 'other-bucket', 'incoming/b.pdf', '%PDF-1.4');
    await putObject(s3, 'other-bucket', 'incoming/c.pdf', '%PDF-1.4');
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('scans SOURCE_BUCKET and no other; without SOURCE_BUCKET (local runs) the bucket the event names; publishes the summary as metrics', async () => {
    const addMetric = vi.spyOn(metrics, 'addMetric');
    const publish = vi.spyOn(metrics, 'publishStoredMetrics');
    const handler = createReprocessHandler(config, { s3, recentMs: 0, dispatcher: new RecordingDispatcher() });
    expect(await handler({ dryRun: true })).toMatchObject({ bucket: SRC, scanned: 1, counts: { missing: 1 } });
    expect(await handler({ dryRun: true, bucket: SRC })).toMatchObject({ bucket: SRC, scanned: 1 });
    await expect(handler({ dryRun: true, bucket: 'other-bucket' })).rejects.toThrow('"bucket" "other-bucket" is not SOURCE_BUCKET "reprocess-src"');
    const unbound = createReprocessHandler(testConfig(), { s3, recentMs: 0, dispatcher: new RecordingDispatcher() });
    expect(await unbound({ dryRun: true, bucket: 'other-bucket' })).toMatchObject({ bucket: 'other-bucket', scanned: 2, counts: { missing: 2 } });
    const recorded = Object.fromEntries(addMetric.mock.calls.slice(-12).map(([name, , value]) => [name, value]));
    expect(recorded).toMatchObject({ ReprocessScanned: 2, ReprocessMissing: 2, ReprocessOk: 0, ReprocessDispatched: 0, ReprocessDispatchFailures: 0, ReprocessRemaining: 2, ReprocessHeldForRetry: 0 });
    expect(publish).toHaveBeenCalledTimes(3);
  });

  it('rejects an input of the wrong type, and a run with no bucket, with a clear message', async () => {
    const dispatcher = new RecordingDispatcher();
    await expect(createReprocessHandler(config, { s3, recentMs: 0, dispatcher })({ limit: 'all' })).rejects.toThrow('"limit" must be a whole number');
    await expect(createReprocessHandler(testConfig(), { s3, recentMs: 0, dispatcher })({ dryRun: true })).rejects.toThrow(
      'no bucket to reprocess: set SOURCE_BUCKET, or pass "bucket" in the input',
    );
  });

  it('is exported as `handler` by functions/reprocess, configured from the environment', async () => {
    vi.stubEnv('S3_ENDPOINT', s3Endpoint());
    vi.stubEnv('SOURCE_BUCKET', SRC);
    vi.stubEnv('RENDER_QUEUE_URL', '');
    vi.stubEnv('RECENT_UPLOAD_SECONDS', '0');
    const { handler } = await import('../functions/reprocess/handler.js');
    const scheduled = { version: '0', 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {}, dryRun: true };
    expect(await handler(scheduled)).toMatchObject({ bucket: SRC, dryRun: true, dispatcher: 'none', scanned: 1, remaining: 1 });
  });
});

// Keep the mocked release in view: the classifier compares against it.
it('runs against the mocked renderer release', () => {
  expect(RENDERER.version).toBe('2.3.0');
});
