/**
 * Completion events (docs/contract.md, "Completion events") end to end on the local server:
 * uploads notify the render queue, the local event source mapping drives the bundled handler
 * with EVENT_BUS=default, and a rule on the default bus sends every `s3-pdf-render` event to a
 * queue this test reads, as a consumer's rule would. Faults in PutEvents come over HTTP from the
 * loopback fault proxy, in front of the same server, through the in-process handler.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DETAIL_TYPE } from '../lib/events/completion.js';
import { createEventBridgeClient, eventBridgeEvents } from '../lib/events/eventbridge.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { createS3Client } from '../lib/s3/client.js';
import { logger, METRIC, metrics } from '../lib/observability.js';
import { workMessage } from '../lib/work/messages.js';
import { buildAll } from '../tools/build.js';
import { createRenderQueues, notifyQueueOnUpload, pollQueue, type LocalQueues } from '../tools/local-queue.js';
import { loadBundledHandler, type BundledHandler } from './support/bundle.js';
import { subscribeToRenders, type ReceivedEvent } from './support/events.js';
import { startFaultProxy, type FaultProxy } from '../tools/fault-proxy.js';
import { sqsEventOf } from './support/in-process-dispatcher.js';
import { readV2Manifest, renderedPages } from './support/manifests.js';
import { CORPUS, createBucket, getText, putObject, resetS3, s3Endpoint, testConfig, testS3Client } from './support/s3.js';
import { drain, testSqsClient } from './support/sqs.js';

const BUCKET = 'announced';

let bundle: string;
let s3: S3Client;
let sqs: SQSClient;
let queues: LocalQueues;
let events: { take(): Promise<ReceivedEvent[]> };

beforeAll(async () => {
  bundle = (await buildAll({ only: ['RenderPdfFunction'] }))['RenderPdfFunction']!;
});

beforeEach(async () => {
  await resetS3();
  s3 = testS3Client();
  sqs = testSqsClient();
  await createBucket(s3, BUCKET);
  queues = await createRenderQueues(sqs, { maxReceiveCount: 2, visibilityTimeoutS: 60 });
  await notifyQueueOnUpload(s3, BUCKET, 'incoming/', queues.queueArn);
  await drain(sqs, queues.queueUrl);
  events = await subscribeToRenders(sqs);
});

const loadHandler = (env: Record<string, string> = {}): Promise<BundledHandler> =>
  loadBundledHandler(bundle, { S3_ENDPOINT: s3Endpoint(), RENDER_QUEUE_URL: queues.queueUrl, SOURCE_BUCKET: BUCKET, DPI: '40', EVENT_BUS: 'default', ...env });

/** Drains the render queue through `handler`, one invocation at a time; the events each invocation put, in order. */
async function runQueue(handler: BundledHandler, budgetMs = 900_000) {
  const perInvocation: ReceivedEvent[][] = [];
  const stats = await pollQueue({
    sqs,
    queues,
    concurrency: 1,
    invoke: async (event) => {
      const deadline = Date.now() + budgetMs;
      try {
        return await handler(event, { awsRequestId: `local-${perInvocation.length}`, getRemainingTimeInMillis: () => deadline - Date.now() });
      } finally {
        perInvocation.push(await events.take());
      }
    },
  });
  return { ...stats, perInvocation, all: perInvocation.flat() };
}

describe('completion events from the bundled handler', () => {
  it('an upload that renders puts one Render Completed (one renderId), with the manifest in its detail; a duplicate of its S3 event puts none', async () => {
    const { etag } = await putObject(s3, BUCKET, 'incoming/reports/q3.pdf', await readFile(join(CORPUS, 'arabic-rotations-4p.pdf')));
    const handler = await loadHandler();
    const run = await runQueue(handler);
    expect(run).toMatchObject({ invocations: 1, failures: 0 });
    // One commit, one renderId. A copy is allowed (at least once): a local bus slower than an
    // attempt's bound on a loaded machine is a PutEvents taken but answered too late, and retried.
    expect(new Set(run.all.map((e) => e.detail.renderId)).size).toBe(1);
    const manifest = await readV2Manifest(s3, BUCKET, 'rendered/reports/q3.pdf/manifest.json');
    expect(run.all[0]).toMatchObject({
      source: 's3-pdf-render',
      'detail-type': 'Render Completed',
      time: manifest.finishedAt.replace(/\.\d+Z$/, 'Z'),
      detail: {
        bucket: BUCKET,
        key: 'incoming/reports/q3.pdf',
        etag,
        versionId: null,
        status: 'complete',
        pageCount: 4,
        pagesRendered: 4,
        errorCode: null,
        manifestBucket: BUCKET,
        manifestKey: 'rendered/reports/q3.pdf/manifest.json',
        generation: manifest.generation,
        durationMs: manifest.durationMs,
      },
    });
    // The commit's id: its generation, status and the manifest object's etag.
    const manifestEtag = (await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'rendered/reports/q3.pdf/manifest.json' }))).ETag!.replace(/"/g, '');
    expect(run.all[0]!.detail.renderId).toBe(`${manifest.generation}-complete-${manifestEtag}`);
    // Its marker, beside the pages: the event went.
    expect(JSON.parse(await getText(s3, BUCKET, `rendered/reports/q3.pdf/${manifest.generation}/announced.json`))).toMatchObject({ renderId: run.all[0]!.detail.renderId });

    // S3 delivers at least once: the same event again is up to date, and says nothing.
    await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: JSON.stringify(workMessage({ bucket: BUCKET, key: 'incoming/reports/q3.pdf', etag })) }));
    const again = await runQueue(handler);
    expect(again).toMatchObject({ invocations: 1, failures: 0 });
    expect(again.all).toEqual([]);
  });

  it('a document that cannot be rendered puts one Render Failed with its code; a duplicate, or a forced render to the same result, puts none', async () => {
    const { etag } = await putObject(s3, BUCKET, 'incoming/notes.pdf', 'these are plain-text notes, not a PDF');
    const handler = await loadHandler();
    const run = await runQueue(handler);
    expect(run.all).toHaveLength(1);
    expect(run.all[0]).toMatchObject({ 'detail-type': 'Render Failed', detail: { key: 'incoming/notes.pdf', status: 'failed', errorCode: 'NOT_PDF', pageCount: 0, pagesRendered: 0 } });

    // This renderer release fails it again: a duplicate delivery settles it without rendering, and says nothing (its marker says the event went).
    await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: JSON.stringify(workMessage({ bucket: BUCKET, key: 'incoming/notes.pdf', etag })) }));
    const again = await runQueue(handler);
    expect(again).toMatchObject({ invocations: 1, failures: 0 });
    expect(again.all).toEqual([]);
    // A forced render commits the same result anew, and says nothing either: the earlier result's event went.
    await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: JSON.stringify(workMessage({ bucket: BUCKET, key: 'incoming/notes.pdf', etag, force: true })) }));
    const forced = await runQueue(handler);
    expect(forced).toMatchObject({ invocations: 1, failures: 0 });
    expect(forced.all).toEqual([]);
    expect((await readV2Manifest(s3, BUCKET, 'rendered/notes.pdf/manifest.json')).error?.code).toBe('NOT_PDF');
  });

  it('a document carried by continuations announces nothing until its last hop', async () => {
    await putObject(s3, BUCKET, 'incoming/long.pdf', await readFile(join(CORPUS, 'tracemonkey-paper-14p.pdf')));
    // A second of drawing per invocation past the 5 s reserve: several hops (as many as the machine needs).
    const run = await runQueue(await loadHandler({ DPI: '150', DOCUMENT_MAX_HOPS: '100' }), 5_000 + 1_000);
    expect(run.invocations).toBeGreaterThan(1);
    expect(run.failures).toBe(0);
    expect(run.perInvocation.slice(0, -1).flat()).toEqual([]);
    expect(run.perInvocation.at(-1)).toHaveLength(1);
    // Complete on a quiet machine; on a loaded one a page may not fit its hop's time and fail: the event says what the manifest says.
    const manifest = await readV2Manifest(s3, BUCKET, 'rendered/long.pdf/manifest.json');
    expect(manifest.nextPage).toBeUndefined();
    expect(run.all[0]).toMatchObject({ 'detail-type': DETAIL_TYPE[manifest.status], detail: { status: manifest.status, pageCount: 14, pagesRendered: renderedPages(manifest).length } });
  }, 600_000);

  it('a document stopped by its budget announces Render Partial once, on the hop that gives up', async () => {
    await putObject(s3, BUCKET, 'incoming/capped.pdf', await readFile(join(CORPUS, 'tracemonkey-paper-14p.pdf')));
    const run = await runQueue(await loadHandler({ DPI: '150', DOCUMENT_MAX_HOPS: '2' }), 5_000 + 500);
    expect(run).toMatchObject({ invocations: 2, failures: 0 });
    expect(run.perInvocation[0]).toEqual([]);
    expect(run.perInvocation[1]).toHaveLength(1);
    const manifest = await readV2Manifest(s3, BUCKET, 'rendered/capped.pdf/manifest.json');
    expect(run.all[0]).toMatchObject({ 'detail-type': 'Render Partial', detail: { status: 'partial', pageCount: 14, pagesRendered: manifest.pages.length } });
  });

  it('a document fanned out into ranges announces once, from the range that completes the set', async () => {
    await putObject(s3, BUCKET, 'incoming/fanned.pdf', await readFile(join(CORPUS, 'tracemonkey-paper-14p.pdf')));
    const run = await runQueue(await loadHandler({ FANOUT_PAGES: '5' }));
    // Range 1 (which sends ranges 2 and 3), then the two others: only the last one commits.
    expect(run).toMatchObject({ invocations: 3, failures: 0 });
    expect(run.perInvocation.map((events) => events.length)).toEqual([0, 0, 1]);
    expect(run.all[0]).toMatchObject({ 'detail-type': 'Render Completed', detail: { key: 'incoming/fanned.pdf', status: 'complete', pageCount: 14, pagesRendered: 14 } });
  });

  it('with EVENT_BUS empty, nothing is put', async () => {
    await putObject(s3, BUCKET, 'incoming/quiet.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    const run = await runQueue(await loadHandler({ EVENT_BUS: '' }));
    expect(run).toMatchObject({ invocations: 1, failures: 0 });
    expect(run.all).toEqual([]);
  });
});

describe('a PutEvents that fails', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3Endpoint());
  });
  afterAll(async () => {
    await proxy.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** The in-process handler, its events going through the fault proxy (only PutEvents does: S3 and SQS go straight to the server). */
  function handlerThroughProxy() {
    const config = testConfig({ SOURCE_BUCKET: BUCKET, DPI: '40', EVENT_BUS: 'default' });
    return createRenderHandler(config, s3, { events: eventBridgeEvents(createEventBridgeClient({ endpoints: { EventBridge: proxy.endpoint } }), 'default') });
  }
  const render = (key: string) => handlerThroughProxy()(sqsEventOf([JSON.stringify(workMessage({ bucket: BUCKET, key }))]));
  const serverError = { kind: 'response' as const, status: 500, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: JSON.stringify({ __type: 'InternalException', message: 'injected by the test proxy' }) };
  // PutEvents answers 200 and reports the entry it did not take.
  const entryFailed = {
    kind: 'response' as const,
    status: 200,
    headers: { 'content-type': 'application/x-amz-json-1.1' },
    body: JSON.stringify({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'injected by the test proxy' }] }),
  };

  function observe() {
    const counted = vi.spyOn(metrics, 'addMetric');
    const warned = vi.spyOn(logger, 'warn');
    const errors = vi.spyOn(logger, 'error');
    return {
      count: (name: string) => counted.mock.calls.filter(([metric]) => metric === name).length,
      warnings: () => warned.mock.calls.map(([message]) => message),
      errors: () => errors.mock.calls.map(([message]) => message),
    };
  }

  it('is retried within the invocation: the commit stands, one event arrives, each failure is logged and counted', async () => {
    await putObject(s3, BUCKET, 'incoming/a.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    proxy.setRules([
      { method: 'POST', path: /^\/$/, occurrences: [1], fault: serverError },
      // Each rule counts the requests that reach it: the first rule's fault ends the first one.
      { method: 'POST', path: /^\/$/, occurrences: [1], fault: entryFailed },
    ]);
    const seen = observe();
    const result = await render('incoming/a.pdf');
    expect(result.batchItemFailures).toEqual([]);
    expect(result.records).toMatchObject([{ outcome: 'rendered', status: 'complete' }]);
    expect(proxy.injected()).toBe(2);
    expect(proxy.log.filter((l) => l === 'POST /')).toHaveLength(3);
    expect(await events.take()).toMatchObject([{ 'detail-type': 'Render Completed', detail: { key: 'incoming/a.pdf' } }]);
    expect(seen.count(METRIC.eventPutFailures)).toBe(2);
    expect(seen.count(METRIC.eventsLost)).toBe(0);
    expect(seen.warnings().filter((m) => m === 'completion event not accepted')).toHaveLength(2);
  });

  it('announces a commit whose PUT answer was lost (the SDK retry gets 412): the stored manifest is this render\'s own', async () => {
    await putObject(s3, BUCKET, 'incoming/lost.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    proxy.setRules([{ method: 'PUT', path: /^\/announced\/rendered\/lost\.pdf\/manifest\.json$/, occurrences: [1], fault: { kind: 'lost-response' } }]);
    const config = testConfig({ SOURCE_BUCKET: BUCKET, DPI: '40', EVENT_BUS: 'default' });
    const viaProxy = createS3Client({ endpoints: { S3: proxy.endpoint } });
    const handler = createRenderHandler(config, viaProxy, { events: eventBridgeEvents(createEventBridgeClient({ endpoints: { EventBridge: proxy.endpoint } }), 'default') });
    const result = await handler(sqsEventOf([JSON.stringify(workMessage({ bucket: BUCKET, key: 'incoming/lost.pdf' }))]));
    expect(proxy.injected()).toBe(1);
    expect(result.records).toMatchObject([{ outcome: 'rendered', status: 'complete' }]);
    expect(await events.take()).toMatchObject([{ 'detail-type': 'Render Completed', detail: { key: 'incoming/lost.pdf' } }]);
  });

  it('that never succeeds leaves the message for a redelivery, after the clean-up: the commit stands, and the redelivery announces without rendering again', async () => {
    await putObject(s3, BUCKET, 'incoming/b.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    proxy.setRules([{ method: 'POST', path: /^\/$/, occurrences: [1, 2, 3, 4, 5], fault: serverError }]);
    const seen = observe();
    const result = await render('incoming/b.pdf');
    expect(result.batchItemFailures).toHaveLength(1);
    expect(result.records).toMatchObject([{ outcome: 'error', reason: expect.stringContaining('completion event is not sent yet') }]);
    expect(proxy.injected()).toBe(3);
    const manifest = await readV2Manifest(s3, BUCKET, 'rendered/b.pdf/manifest.json');
    expect(manifest.status).toBe('complete');
    expect(await events.take()).toEqual([]);
    expect(seen.count(METRIC.eventPutFailures)).toBe(3);
    expect(seen.count(METRIC.eventsLost)).toBe(1);
    expect(seen.errors()).toContain('completion event not sent: the manifest is committed; the message is retried and its redelivery announces');
    // No marker, so the redelivered message, finding the render up to date, announces it.
    const again = await render('incoming/b.pdf');
    expect(again).toMatchObject({ batchItemFailures: [], records: [{ outcome: 'up-to-date' }] });
    expect(await events.take()).toMatchObject([{ 'detail-type': 'Render Completed', detail: { key: 'incoming/b.pdf', generation: manifest.generation } }]);
    // Then the marker says it went: a third delivery is silent.
    expect((await render('incoming/b.pdf')).records).toMatchObject([{ outcome: 'up-to-date' }]);
    expect(await events.take()).toEqual([]);
  });

  it('killed between the commit and PutEvents: the redelivered message finds the render committed and no marker, and announces it once', async () => {
    await putObject(s3, BUCKET, 'incoming/k.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    // The container dies right after S3 applied the manifest PUT: no PutEvents, no clean-up.
    const dying = createS3Client({ endpoints: { S3: s3Endpoint() } });
    let died = false;
    dying.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (!died && context.commandName === 'PutObjectCommand' && (args.input as { Key?: string }).Key === 'rendered/k.pdf/manifest.json') {
          died = true;
          throw new Error('the container was killed here');
        }
        return result;
      },
      { step: 'initialize' },
    );
    const config = testConfig({ SOURCE_BUCKET: BUCKET, DPI: '40', EVENT_BUS: 'default' });
    const message = sqsEventOf([JSON.stringify(workMessage({ bucket: BUCKET, key: 'incoming/k.pdf' }))]);
    expect((await createRenderHandler(config, dying)(message)).batchItemFailures).toHaveLength(1);
    expect(await events.take()).toEqual([]);
    const redelivered = await render('incoming/k.pdf');
    expect(redelivered.records).toMatchObject([{ outcome: 'up-to-date' }]);
    const manifest = await readV2Manifest(s3, BUCKET, 'rendered/k.pdf/manifest.json');
    const manifestEtag = (await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'rendered/k.pdf/manifest.json' }))).ETag!.replace(/"/g, '');
    expect(await events.take()).toMatchObject([{ detail: { key: 'incoming/k.pdf', renderId: `${manifest.generation}-complete-${manifestEtag}` } }]);
  });

  /** An S3 client whose marker PUTs fail, as a container killed after PutEvents and before the marker would leave it. */
  function withoutMarkers(): S3Client {
    const client = createS3Client({ endpoints: { S3: s3Endpoint() } });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutObjectCommand' && /\/announced\.json$/.test((args.input as { Key?: string }).Key ?? '')) throw new Error('the container was killed here');
        return next(args);
      },
      { step: 'initialize' },
    );
    return client;
  }

  /** Renders `key` with `env`, its marker lost; then a redelivery: both announce the same commit, and the redelivery renders nothing. */
  async function redeliveredAfterLostMarker(key: string, manifestKey: string, env: Record<string, string>) {
    const config = testConfig({ SOURCE_BUCKET: BUCKET, DPI: '40', EVENT_BUS: 'default', ...env });
    const eventsViaServer = () => eventBridgeEvents(createEventBridgeClient({ endpoints: { EventBridge: s3Endpoint() } }), 'default');
    const message = () => sqsEventOf([JSON.stringify(workMessage({ bucket: BUCKET, key }))]);
    const first = await createRenderHandler(config, withoutMarkers(), { events: eventsViaServer() })(message());
    expect(first.batchItemFailures).toEqual([]);
    const sent = await events.take();
    expect(sent).toHaveLength(1);
    const committed = (await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: manifestKey }))).ETag;
    const again = await createRenderHandler(config, s3, { events: eventsViaServer() })(message());
    expect(again).toMatchObject({ batchItemFailures: [], records: [{ outcome: 'up-to-date' }] });
    // The same manifest object, announced again under the same renderId (the consumer drops the copy).
    expect((await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: manifestKey }))).ETag).toBe(committed);
    expect(await events.take()).toMatchObject([{ detail: { renderId: sent[0]!.detail.renderId } }]);
    return sent[0]!;
  }

  it('a final partial whose marker was lost: the redelivery settles it, announcing the same renderId, without rendering again', async () => {
    await putObject(s3, BUCKET, 'incoming/poster.pdf', await readFile(join(CORPUS, 'a0-poster-rotate90.pdf')));
    // An A0 page exceeds 1000 pixels even at 1 dpi: PAGE_TOO_LARGE, so a final partial.
    const sent = await redeliveredAfterLostMarker('incoming/poster.pdf', 'rendered/poster.pdf/manifest.json', { MAX_PAGE_PIXELS: '1000' });
    expect(sent).toMatchObject({ 'detail-type': 'Render Partial', detail: { status: 'partial' } });
  });

  it('an INVALID_OPTIONS failure whose marker was lost: the redelivery settles it, announcing the same renderId, without committing again', async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'incoming/bad.pdf', Body: await readFile(join(CORPUS, 'matplotlib-type3.pdf')), Metadata: { 'render-dpi': '5000' } }));
    const sent = await redeliveredAfterLostMarker('incoming/bad.pdf', 'rendered/bad.pdf/manifest.json', {});
    expect(sent).toMatchObject({ 'detail-type': 'Render Failed', detail: { status: 'failed', errorCode: 'INVALID_OPTIONS' } });
  });

  it('refused for good (a 400 AccessDeniedException): not retried, logged and counted once, and the message succeeds', async () => {
    await putObject(s3, BUCKET, 'incoming/denied.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    // EventBridge's own answer to a role without events:PutEvents.
    const accessDenied = {
      kind: 'response' as const,
      status: 400,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'b7e2c3a4-0000-4000-8000-000000000000' },
      body: JSON.stringify({
        __type: 'AccessDeniedException',
        Message: 'User: arn:aws:sts::123456789012:assumed-role/render/fn is not authorized to perform: events:PutEvents on resource: arn:aws:events:us-east-1:123456789012:event-bus/default because no identity-based policy allows the events:PutEvents action',
      }),
    };
    proxy.setRules([{ method: 'POST', path: /^\/$/, occurrences: [1, 2, 3], fault: accessDenied }]);
    const seen = observe();
    const result = await render('incoming/denied.pdf');
    expect(result).toMatchObject({ batchItemFailures: [], records: [{ outcome: 'rendered', status: 'complete' }] });
    expect(proxy.injected()).toBe(1);
    expect(await events.take()).toEqual([]);
    expect(seen.count(METRIC.eventsLost)).toBe(1);
    expect(seen.errors().filter((m) => m === 'completion event refused by the bus: not retried; the commit stands')).toHaveLength(1);
    expect((await readV2Manifest(s3, BUCKET, 'rendered/denied.pdf/manifest.json')).status).toBe('complete');
  });

  it('accepted but answered too slowly: retried, and both copies carry the same renderId', async () => {
    await putObject(s3, BUCKET, 'incoming/slow.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    // The bus takes the first PutEvents; its answer never reaches the function, which tries again.
    proxy.setRules([{ method: 'POST', path: /^\/$/, occurrences: [1], fault: { kind: 'lost-response' } }]);
    const result = await render('incoming/slow.pdf');
    expect(result).toMatchObject({ batchItemFailures: [], records: [{ outcome: 'rendered', status: 'complete' }] });
    const copies = await events.take();
    expect(copies).toHaveLength(2);
    expect(copies[0]!.detail.renderId).toMatch(/^[0-9a-f]{16}-complete-[0-9a-f]+$/);
    expect(copies[1]!.detail.renderId).toBe(copies[0]!.detail.renderId);
  });

  it('bounded by the invocation\'s time left: a bus that does not answer never holds the invocation past its deadline, and the message is retried', async () => {
    await putObject(s3, BUCKET, 'incoming/late.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    proxy.setRules([{ method: 'POST', path: /^\/$/, occurrences: [1, 2, 3], fault: { kind: 'delay', ms: 10_000 } }]);
    // Plenty of time to render; once the manifest is committed, 2.5 s are left (less than the three attempts would take).
    let deadline = Date.now() + 600_000;
    const timed = createS3Client({ endpoints: { S3: s3Endpoint() } });
    timed.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'PutObjectCommand' && (args.input as { Key?: string }).Key === 'rendered/late.pdf/manifest.json') deadline = Date.now() + 2_500;
        return result;
      },
      { step: 'initialize' },
    );
    const config = testConfig({ SOURCE_BUCKET: BUCKET, DPI: '40', EVENT_BUS: 'default' });
    const handler = createRenderHandler(config, timed, { events: eventBridgeEvents(createEventBridgeClient({ endpoints: { EventBridge: proxy.endpoint } }), 'default') });
    const result = await handler(sqsEventOf([JSON.stringify(workMessage({ bucket: BUCKET, key: 'incoming/late.pdf' }))]), { getRemainingTimeInMillis: () => deadline - Date.now() });
    // Returned with the announcement's reserve still left, the commit made, the message left for its redelivery.
    expect(deadline - Date.now()).toBeGreaterThan(500);
    expect(deadline - Date.now()).toBeLessThan(2_500);
    expect(result.batchItemFailures).toHaveLength(1);
    expect((await readV2Manifest(s3, BUCKET, 'rendered/late.pdf/manifest.json')).status).toBe('complete');
  });
});
