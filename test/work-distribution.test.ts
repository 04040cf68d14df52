/**
 * Work distribution end to end (docs/contract.md, "Work distribution"): uploads notify the
 * render queue on the local server (moto serves S3 and SQS), and the local event source mapping
 * (tools/local-queue.ts) drives the bundled render handler, as Lambda would: bursts under a
 * concurrency cap, continuations of long documents, fan-out into ranges, poison messages.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { PNG } from 'pngjs';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseManifest, type Manifest } from '../lib/job/manifest.js';
import { buildAll } from '../tools/build.js';
import { loadBundledHandler } from './support/bundle.js';
import { createRenderQueues, notifyQueueOnUpload, pollQueue, type LocalQueues } from '../tools/local-queue.js';
import { drain, testSqsClient } from './support/sqs.js';
import { CORPUS, createBucket, getBytes, getText, listKeys, putObject, resetS3, s3Endpoint, testS3Client } from './support/s3.js';
import { readV2Manifest, renderedPages } from './support/manifests.js';

const BUCKET = 'queued';
type Handler = (event: SQSEvent, context: { awsRequestId: string; getRemainingTimeInMillis: () => number }) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] }>;

let bundle: string;
let s3: S3Client;
let sqs: SQSClient;
let queues: LocalQueues;
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
  // S3 announces a new notification with a test event: the handler ignores it.
  await drain(sqs, queues.queueUrl);
});

/** The bundled handler as a fresh container loads it, configured from `env` (validated at load, as at a cold start). */
function loadHandler(env: Record<string, string>): Promise<Handler> {
  return loadBundledHandler(bundle, { S3_ENDPOINT: s3Endpoint(), RENDER_QUEUE_URL: queues.queueUrl, SOURCE_BUCKET: BUCKET, DPI: '40', ...env }) as Promise<Handler>;
}

/** Runs the queue through `handler` until it stays empty; each invocation gets `budgetMs` of Lambda time. */
async function runQueue(handler: Handler, options: { concurrency: number; budgetMs?: number }) {
  let running = 0;
  let maxRunning = 0;
  let invocations = 0;
  const stats = await pollQueue({
    sqs,
    queues,
    concurrency: options.concurrency,
    invoke: async (event) => {
      running++;
      invocations++;
      maxRunning = Math.max(maxRunning, running);
      const deadline = Date.now() + (options.budgetMs ?? 900_000);
      try {
        return await handler(event, { awsRequestId: `local-${invocations}`, getRemainingTimeInMillis: () => deadline - Date.now() });
      } finally {
        running--;
      }
    },
  });
  return { ...stats, maxRunning, deadLetters: (await drain(sqs, queues.deadLetterUrl)).length };
}

const manifestOf = (name: string): Promise<Manifest> => readV2Manifest(s3, BUCKET, `rendered/${name}/manifest.json`);

describe('the render queue, drained by the local event source mapping', () => {
  it('a burst of 200 uploads with maximum concurrency 4: every manifest complete, never more than 4 renders at once, nothing dead-lettered', async () => {
    const handler = await loadHandler({});
    const body = await readFile(join(CORPUS, 'matplotlib-type3.pdf'));
    for (let i = 0; i < 200; i++) await putObject(s3, BUCKET, `incoming/burst/${String(i).padStart(3, '0')}.pdf`, body);
    const run = await runQueue(handler, { concurrency: 4 });
    expect(run).toMatchObject({ invocations: 200, failures: 0, deadLetters: 0 });
    expect(run.maxRunning).toBeLessThanOrEqual(4);
    expect(run.maxRunning).toBeGreaterThan(1);
    const manifests = (await listKeys(s3, BUCKET, 'rendered/burst/')).filter((k) => k.endsWith('/manifest.json'));
    expect(manifests).toHaveLength(200);
    for (const key of manifests.slice(0, 20)) expect(parseManifest(await getText(s3, BUCKET, key))).toMatchObject({ status: 'complete' });
  });

  it('a long document with little time per invocation: continuation messages carry it to complete; with too small a budget it ends partial, with a warning and no more messages', async () => {
    await putObject(s3, BUCKET, 'incoming/long.pdf', await readFile(join(CORPUS, 'tracemonkey-paper-14p.pdf')));
    // 150 dpi, and half a second of drawing per invocation past the 5 s reserve: several hops
    // (as many as a loaded machine needs: the budget is not what this part is about).
    const handler = await loadHandler({ DPI: '150', DOCUMENT_MAX_HOPS: '100' });
    const run = await runQueue(handler, { concurrency: 1, budgetMs: 5_000 + 500 });
    expect(run.invocations).toBeGreaterThan(2);
    expect(run).toMatchObject({ failures: 0, deadLetters: 0 });
    const manifest = await manifestOf('long.pdf');
    expect(manifest).toMatchObject({ status: 'complete', pageCount: 14 });
    expect(renderedPages(manifest).map((p) => p.number)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));

    await putObject(s3, BUCKET, 'incoming/capped.pdf', await readFile(join(CORPUS, 'tracemonkey-paper-14p.pdf')));
    const capped = await loadHandler({ DPI: '150', DOCUMENT_MAX_HOPS: '2' });
    const cappedRun = await runQueue(capped, { concurrency: 1, budgetMs: 5_000 + 500 });
    expect(cappedRun).toMatchObject({ invocations: 2, failures: 0, deadLetters: 0 });
    const partial = await manifestOf('capped.pdf');
    expect(partial.status).toBe('partial');
    expect(partial.nextPage).toBeUndefined();
    expect(partial.warnings.join('\n')).toMatch(/budget is spent \(2 invocations/);
  });

  it('a 352-page document with FANOUT_PAGES 50: 8 ranges, one complete manifest, the same pages and pixels as one invocation renders', async () => {
    await putObject(s3, BUCKET, 'incoming/book.pdf', await readFile(join(CORPUS, 'freeculture-book-352p.pdf')));
    const run = await runQueue(await loadHandler({ FANOUT_PAGES: '50', DPI: '20' }), { concurrency: 4 });
    // The first invocation renders range 1 and sends the other 7.
    expect(run).toMatchObject({ invocations: 8, failures: 0, deadLetters: 0 });
    const fanned = await manifestOf('book.pdf');
    expect(fanned).toMatchObject({ status: 'complete', pageCount: 352 });
    expect(renderedPages(fanned).map((p) => p.number)).toEqual(Array.from({ length: 352 }, (_, i) => i + 1));
    // Nothing but the pages and the manifest: the part records are gone.
    expect(await listKeys(s3, BUCKET, 'rendered/book.pdf/')).toEqual([...renderedPages(fanned).map((p) => p.key), 'rendered/book.pdf/manifest.json'].sort());

    // One invocation, the same bytes and options (under another key): the same generation, page for page the same pixels.
    const fannedPixels = await Promise.all(renderedPages(fanned).map(async (p) => PNG.sync.read(Buffer.from(await getBytes(s3, BUCKET, p.key))).data));
    await putObject(s3, BUCKET, 'incoming/book-single.pdf', await readFile(join(CORPUS, 'freeculture-book-352p.pdf')));
    const whole = await runQueue(await loadHandler({ FANOUT_PAGES: '0', DPI: '20' }), { concurrency: 1 });
    expect(whole.invocations).toBe(1);
    const single = await manifestOf('book-single.pdf');
    expect(single.generation).toBe(fanned.generation);
    const singlePages = renderedPages(single);
    const rel = (key: string) => key.replace(/^rendered\/book(-single)?\.pdf\//, '');
    expect(singlePages.map((p) => [rel(p.key), p.width, p.height])).toEqual(renderedPages(fanned).map((p) => [rel(p.key), p.width, p.height]));
    for (const [i, page] of singlePages.entries()) {
      expect(Buffer.compare(PNG.sync.read(Buffer.from(await getBytes(s3, BUCKET, page.key))).data, fannedPixels[i]!), page.key).toBe(0);
    }
  });

  it('a poison message is dropped with a log, a message for a missing object is ignored: no retries, nothing dead-lettered', async () => {
    const handler = await loadHandler({});
    await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: 'this is not JSON' }));
    await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: JSON.stringify({ type: 'render', bucket: BUCKET, key: 'incoming/never-uploaded.pdf' }) }));
    await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: JSON.stringify({ type: 'render', bucket: BUCKET }) }));
    const run = await runQueue(handler, { concurrency: 2 });
    expect(run).toMatchObject({ invocations: 3, failures: 0, deadLetters: 0 });
    expect(await listKeys(s3, BUCKET, 'rendered/')).toEqual([]);
  });

  it('a transient failure leaves the message for its next receive, and after maxReceiveCount it is dead-lettered', async () => {
    // Every S3 call fails: port 9 has no server.
    const handler = (await loadBundledHandler(bundle, { S3_ENDPOINT: 'http://127.0.0.1:9' })) as Handler;
    await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: JSON.stringify({ type: 'render', bucket: BUCKET, key: 'incoming/a.pdf' }) }));
    const run = await runQueue(handler, { concurrency: 1 });
    expect(run).toMatchObject({ invocations: 2, failures: 2, deadLetters: 1 });
  });
});
