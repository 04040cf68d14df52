/**
 * Backfills on S3 Batch Operations (docs/reprocess.md, "Backfill"), on moto: the schema-2.0 task
 * handler (the reprocess function's second event shape) driven by the local stand-in for the
 * service (tools/batch-operations/runner.ts) over 300 PDFs in every state, the renders it asks
 * for run from the render queue, a second run that finds nothing to do, throttled SendMessage
 * and HEAD calls answered TemporaryFailure and retried, and the event checked at the edge.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateJobCommand, S3ControlClient } from '@aws-sdk/client-s3-control';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseBatchArguments, parseBatchEvent, type BatchResponse } from '../lib/batch/event.js';
import { isTemporary } from '../lib/batch/task.js';
import type { Config } from '../lib/config/env.js';
import { buildManifest, failedManifest, optionsHash, type Manifest } from '../lib/job/manifest.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { QueueDispatcher } from '../lib/reprocess/dispatch.js';
import { createReprocessFunction } from '../lib/reprocess/entry.js';
import { everyService } from '../lib/aws/endpoint.js';
import { createS3Client } from '../lib/s3/client.js';
import { encodeEventKey, MANIFEST_FILE, outputLocation } from '../lib/s3/layout.js';
import { createSqsClient } from '../lib/sqs/client.js';
import { sqsWorkQueue } from '../lib/sqs/work-queue.js';
import { parseQueueBody } from '../lib/work/messages.js';
import { parseSince } from '../tools/backfill.js';
import { createJobInput, parseFunctionArn, parseS3Url, type BackfillJob } from '../tools/batch-operations/create-job.js';
import { generateManifest, parseCsvManifest, writeCsvManifest, type ManifestEntry } from '../tools/batch-operations/manifest.js';
import { completionReportCsv, runBatchJob, type TaskReport } from '../tools/batch-operations/runner.js';
import { createRenderQueues, pollQueue, type LocalQueues } from '../tools/local-queue.js';
import { tinyPdf } from './fixtures/generated-pdfs.js';
import { SQS_THROTTLED, useFaultProxy } from './support/fault-proxy.js';
import { readV2Manifest } from './support/manifests.js';
import { createBucket, putObject, resetS3, testConfig } from './support/s3.js';
import { drain } from './support/sqs.js';

const SRC = 'backfill-src';
const K = (name: string): string => `incoming/bulk/${name}`;

/** The classes of the 300 PDFs, and what the completion report must say of each. Few need a render: renders are what takes time here. */
const CLASSES = {
  missing: { count: 10, result: 'Succeeded dispatched:missing' },
  stale: { count: 6, result: 'Succeeded dispatched:stale' },
  resumable: { count: 4, result: 'Succeeded dispatched:partial' },
  ok: { count: 220, result: 'Succeeded ok' },
  failed: { count: 60, result: 'Succeeded failed-settled:ENCRYPTED' },
} as const;
type Class = keyof typeof CLASSES;
const NEEDS_WORK: Class[] = ['missing', 'stale', 'resumable'];

function keysOf(cls: Class): string[] {
  return Array.from({ length: CLASSES[cls].count }, (_, i) => K(`${cls}/${String(i).padStart(3, '0')} doc+${cls}.pdf`));
}

async function writeManifestFor(s3: S3Client, config: Config, key: string, manifest: Manifest): Promise<void> {
  const out = outputLocation(SRC, key, config);
  await putObject(s3, out.bucket, out.prefix + MANIFEST_FILE, JSON.stringify(manifest));
}

const byResult = (reports: readonly TaskReport[]): Record<string, string> =>
  Object.fromEntries(reports.map((r) => [decodeURIComponent(r.entry.encodedKey.replace(/\+/g, ' ')), `${r.resultCode} ${r.resultString}`]));

describe('a backfill of 300 PDFs through the local Batch Operations runner', () => {
  const faults = useFaultProxy();
  let config: Config;
  let sqs: SQSClient;
  let queues: LocalQueues;
  let entries: ManifestEntry[];
  const expected: Record<string, string> = {};

  /** The reprocess function as Batch Operations invokes it, its S3 and SQS calls through the fault proxy, no SDK retries (so one fault is one TemporaryFailure). */
  function taskFunction() {
    const s3 = createS3Client({ endpoints: everyService(faults.proxy.endpoint) }, { maxAttempts: 1 });
    const dispatcher = new QueueDispatcher(sqsWorkQueue(createSqsClient({ endpoints: everyService(faults.proxy.endpoint) }, { maxAttempts: 1 }), queues.queueUrl));
    return createReprocessFunction(config, { s3, dispatcher, recentMs: 0 });
  }

  beforeAll(async () => {
    await resetS3();
    sqs = createSqsClient({ endpoints: testConfig().endpoints });
    queues = await createRenderQueues(sqs, { name: 'BackfillRenderQueue' });
    config = testConfig({ SOURCE_BUCKET: SRC, DPI: '10', RENDER_QUEUE_URL: queues.queueUrl });
    const s3 = createS3Client(config);
    await createBucket(s3, SRC);
    const other = { ...config.output, dpi: 72 };
    const uploads: (() => Promise<void>)[] = [];
    for (const cls of Object.keys(CLASSES) as Class[]) {
      for (const key of keysOf(cls)) {
        expected[key] = CLASSES[cls].result;
        uploads.push(async () => {
          const { etag } = await putObject(s3, SRC, key, tinyPdf(key));
          const source = { bucket: SRC, key, etag, size: 0 };
          const page = { number: 1, key: 'x/page-0001.png', width: 20, height: 10, dpi: 10, bytes: 100, contentType: 'image/png', color: 'gray' as const };
          const complete = (options = config.output) => buildManifest(source, options, new Date(), { status: 'complete', pageCount: 1, pages: [page], warnings: [] });
          if (cls === 'ok') await writeManifestFor(s3, config, key, complete());
          if (cls === 'stale') await writeManifestFor(s3, config, key, complete(other));
          if (cls === 'resumable') await writeManifestFor(s3, config, key, { ...complete(), status: 'partial', nextPage: 1, pages: [] });
          if (cls === 'failed') await writeManifestFor(s3, config, key, failedManifest(source, config.output, { code: 'ENCRYPTED', message: 'needs a password' }, new Date()));
        });
      }
    }
    for (let i = 0; i < uploads.length; i += 25) await Promise.all(uploads.slice(i, i + 25).map((u) => u()));
    expect(optionsHash(other)).not.toBe(optionsHash(config.output));
    // Not ours: a key that is not a PDF, one outside INPUT_PREFIX; and one deleted since the manifest was made.
    await putObject(s3, SRC, K('readme.txt'), 'not a pdf');
    await putObject(s3, SRC, 'elsewhere/outside.pdf', tinyPdf('outside'));
    await putObject(s3, SRC, K('gone.pdf'), tinyPdf('gone'));
    expected[K('readme.txt')] = 'Succeeded not-a-pdf-key';
    expected['elsewhere/outside.pdf'] = 'Succeeded skipped:outside INPUT_PREFIX "incoming/"';
    expected[K('gone.pdf')] = 'Succeeded deleted';
    // The manifest an inventory report would give: every object, keys URL-encoded, written and read back as CSV.
    const listed = [...(await generateManifest(s3, SRC, { prefix: 'incoming/', suffixes: [] })), ...(await generateManifest(s3, SRC, { prefix: 'elsewhere/', suffixes: [] }))];
    entries = parseCsvManifest(writeCsvManifest(listed));
    await s3.send(new DeleteObjectCommand({ Bucket: SRC, Key: K('gone.pdf') }));
  }, 120_000);

  it('writes manifests with URL-encoded keys, and the generator keeps only the suffixes asked for', async () => {
    expect(entries).toHaveLength(303);
    const spaced = entries.find((e) => e.encodedKey.includes('doc'))!;
    expect(spaced.encodedKey).toMatch(/^incoming\/bulk\/\w+\/\d{3}\+doc%2B\w+\.pdf$/);
    const pdfs = await generateManifest(createS3Client(config), SRC, { prefix: 'incoming/', suffixes: ['.pdf', '.PDF'] });
    expect(pdfs).toHaveLength(300);
    expect(() => parseCsvManifest('bucket-only\n')).toThrow('manifest line 1: expected "bucket,key[,versionId]"');
  });

  it('reports each object by its class, dispatches exactly those that need work, renders them, and a second run dispatches nothing', async () => {
    const fn = taskFunction();
    const run = await runBatchJob(entries, { invoke: (event) => fn(event), concurrency: 16 });
    expect(byResult(run.reports)).toEqual(expected);
    expect(run.reports.every((r) => r.taskStatus === 'succeeded' && r.attempts === 1)).toBe(true);
    // The completion report, in Batch Operations' row format.
    const csv = completionReportCsv(run.reports).split('\n');
    expect(csv).toContain(`${SRC},${encodeEventKey(K('readme.txt'))},,succeeded,200,,not-a-pdf-key`);
    expect(csv).toContain(`${SRC},${encodeEventKey(K('gone.pdf'))},,succeeded,200,,deleted`);

    // Exactly one render request per object that needs work, none for the others.
    const messages = await drain(sqs, queues.queueUrl);
    const requested = messages.map((m) => parseQueueBody(m.Body!).requests[0]!.key).sort();
    expect(requested).toEqual(NEEDS_WORK.flatMap(keysOf).sort());
    // Put back, and rendered by the render handler the way the event source mapping runs it.
    const queue = sqsWorkQueue(sqs, queues.queueUrl);
    await queue.send(messages.map((m) => parseQueueBody(m.Body!).requests[0]!));
    const render = createRenderHandler(config, createS3Client(config));
    const stats = await pollQueue({ sqs, queues, concurrency: 2, invoke: (event) => render(event) });
    expect(stats).toMatchObject({ invocations: requested.length, failures: 0 });
    const s3 = createS3Client(config);
    for (const key of requested.slice(0, 5)) {
      const out = outputLocation(SRC, key, config);
      expect((await readV2Manifest(s3, out.bucket, out.prefix + MANIFEST_FILE)).status).toBe('complete');
    }

    const second = await runBatchJob(entries, { invoke: (event) => fn(event), concurrency: 16 });
    const results = byResult(second.reports);
    for (const key of requested) expect(results[key]).toBe('Succeeded ok');
    expect(second.reports.filter((r) => r.resultString.startsWith('dispatched'))).toEqual([]);
    expect(await drain(sqs, queues.queueUrl)).toEqual([]);
  }, 120_000);

  it('answers a dry run with would-dispatch, sending nothing', async () => {
    const fn = taskFunction();
    const stale = entries.filter((e) => e.encodedKey.includes('/ok/')).slice(0, 3);
    const run = await runBatchJob(stale, { invoke: (event) => fn(event), concurrency: 2, userArguments: { dryRun: 'true', force: 'true' } });
    expect(run.reports.map((r) => r.resultString)).toEqual(['would-dispatch:stale', 'would-dispatch:stale', 'would-dispatch:stale']);
    expect(await drain(sqs, queues.queueUrl)).toEqual([]);
  });

  it('answers throttled SendMessage and HEAD calls with TemporaryFailure; the retries succeed, and each object is dispatched once', async () => {
    const fn = taskFunction();
    const forced = entries.filter((e) => e.encodedKey.includes('/ok/')).slice(0, 20);
    // SendMessageBatch throttled as SQS throttles (400 RequestThrottled), for some tasks; one HEAD answered 503 SlowDown.
    faults.proxy.setRules([
      { method: 'POST', path: /^\/$/, target: 'AmazonSQS.SendMessageBatch', occurrences: [1, 2, 4, 7, 11], fault: SQS_THROTTLED },
      { method: 'HEAD', path: /\/ok\/010 /, occurrences: [1], fault: { kind: 'status', status: 503, code: 'SlowDown' } },
    ]);
    const run = await runBatchJob(forced, { invoke: (event) => fn(event), concurrency: 4, userArguments: { force: 'true' }, retryDelayMs: 10 });
    expect(faults.proxy.injected()).toBe(6);
    expect(run.reports.every((r) => r.resultCode === 'Succeeded' && r.resultString === 'dispatched:stale')).toBe(true);
    // Six tasks were answered TemporaryFailure once (or twice) and tried again.
    expect(run.invocations).toBe(forced.length + 6);
    expect(run.reports.filter((r) => r.attempts > 1).length).toBeGreaterThanOrEqual(4);
    // A throttled SendMessageBatch never reached the queue: each object is on it exactly once.
    const keys = (await drain(sqs, queues.queueUrl)).map((m) => parseQueueBody(m.Body!).requests[0]!);
    expect(keys.map((r) => r.key).sort()).toEqual(forced.map((e) => decodeURIComponent(e.encodedKey.replace(/\+/g, ' '))).sort());
    expect(keys.every((r) => r.force === true)).toBe(true);
  });

  it('gives up after maxAttempts with the last TemporaryFailure in the report', async () => {
    const fn = taskFunction();
    const one = entries.filter((e) => e.encodedKey.includes('/failed/')).slice(0, 1);
    faults.proxy.setRules([{ method: 'POST', path: /^\/$/, target: 'AmazonSQS.SendMessageBatch', occurrences: [1, 2, 3], fault: SQS_THROTTLED }]);
    const run = await runBatchJob(one, { invoke: (event) => fn(event), concurrency: 1, maxAttempts: 3, retryDelayMs: 1, userArguments: { force: 'true' } });
    expect(run.reports[0]).toMatchObject({ taskStatus: 'failed', resultCode: 'TemporaryFailure', attempts: 3 });
    expect(run.reports[0]!.resultString).toMatch(/^temporary:RequestThrottled: /);
    expect(completionReportCsv(run.reports)).toMatch(/,failed,200,TemporaryFailure,temporary:RequestThrottled: /);
    expect(await drain(sqs, queues.queueUrl)).toEqual([]);
  });
});

describe('the S3 Batch Operations event, at the edge', () => {
  const task = { taskId: 't1', s3Key: 'incoming/a+b%2Bc.pdf', s3VersionId: null, s3Bucket: 'my-bucket' };
  const event = (fields: Record<string, unknown> = {}) => ({ invocationSchemaVersion: '2.0', invocationId: 'inv', job: { id: 'job', userArguments: {} }, tasks: [task], ...fields });

  it('reads schema 2.0, and answers each malformed task PermanentFailure rather than throwing', () => {
    expect(parseBatchEvent(event()).event.tasks).toEqual([task]);
    expect(parseBatchEvent(event({ tasks: [{ taskId: 't2', s3Key: 'k.pdf', s3BucketArn: 'arn:aws:s3:::b' }] })).badTasks).toEqual([
      { taskId: 't2', problem: expect.stringContaining('"s3Bucket" must be a bucket name (schema 2.0; schema 1.0 sent "s3BucketArn")') },
    ]);
    expect(() => parseBatchEvent(event({ invocationId: '' }))).toThrow('"invocationId" must be a non-empty string');
    expect(() => parseBatchEvent(event({ tasks: 'x' }))).toThrow('"tasks" must be an array');
    expect(() => parseBatchEvent(event({ tasks: [{}] }))).toThrow('"tasks[0]" must be an object with a "taskId" string');
  });

  it('takes dryRun and force as "true" or "false", and names anything else', () => {
    expect(parseBatchArguments({ dryRun: 'true' })).toEqual({ dryRun: true, force: false });
    expect(() => parseBatchArguments({ dryRun: 'yes' })).toThrow('user argument "dryRun" must be "true" or "false"; got "yes"');
    expect(() => parseBatchArguments({ dryrun: 'true' })).toThrow('unknown user argument "dryrun" (known: dryRun, force)');
  });

  it('answers another schema version, bad user arguments and an undecodable key PermanentFailure, naming the problem', async () => {
    const fn = createReprocessFunction(testConfig({ SOURCE_BUCKET: 'my-bucket' }), { recentMs: 0 });
    const v1 = (await fn(event({ invocationSchemaVersion: '1.0' }))) as BatchResponse;
    expect(v1).toMatchObject({ invocationSchemaVersion: '1.0', treatMissingKeysAs: 'PermanentFailure', invocationId: 'inv' });
    expect(v1.results).toEqual([{ taskId: 't1', resultCode: 'PermanentFailure', resultString: expect.stringContaining('invalid:invocationSchemaVersion "1.0": this function takes 2.0') }]);
    const badArgs = (await fn(event({ job: { id: 'job', userArguments: { force: 'yes' } } }))) as BatchResponse;
    expect(badArgs.results[0]).toMatchObject({ resultCode: 'PermanentFailure', resultString: 'invalid:user argument "force" must be "true" or "false"; got "yes"' });
    const badKey = (await fn(event({ tasks: [{ ...task, s3Key: 'incoming/100%.pdf' }] }))) as BatchResponse;
    expect(badKey.results[0]).toMatchObject({ resultCode: 'PermanentFailure', resultString: expect.stringContaining('is not URL-encoded') });
  });

  it('answers a task for another bucket than SOURCE_BUCKET PermanentFailure, naming both, so a misdirected job trips its failure threshold', async () => {
    const fn = createReprocessFunction(testConfig({ SOURCE_BUCKET: 'my-bucket' }), { recentMs: 0 });
    const otherBucket = (await fn(event({ tasks: [{ ...task, s3Bucket: 'someone-else' }] }))) as BatchResponse;
    expect(otherBucket.results).toEqual([
      { taskId: 't1', resultCode: 'PermanentFailure', resultString: 'invalid:bucket someone-else is not SOURCE_BUCKET my-bucket: this function renders only that bucket (create the job on its objects)' },
    ]);
  });

  it('calls throttling, 5xx and resets temporary, and a 4xx that retrying cannot change permanent', () => {
    const err = (name: string, status?: number) => Object.assign(new Error(name), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}) });
    expect(isTemporary(err('RequestThrottled', 400))).toBe(true);
    expect(isTemporary(err('SlowDown', 503))).toBe(true);
    expect(isTemporary(err('InternalError', 500))).toBe(true);
    expect(isTemporary(err('ECONNRESET'))).toBe(true);
    expect(isTemporary(err('QueueDoesNotExist', 400))).toBe(false);
    expect(isTemporary(err('KeyTooLongError', 400))).toBe(false);
  });
});

describe('npm run backfill: the CreateJob request', () => {
  const job: BackfillJob = {
    functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:stack-ReprocessFunction-AbC',
    roleArn: 'arn:aws:iam::123456789012:role/stack-BatchOperationsRole-XyZ',
    bucket: 'my-pdfs',
    keyPrefix: 'incoming/reports/',
    report: { bucket: 'my-pdfs', prefix: 'batch-reports/' },
    dryRun: false,
    force: true,
    since: new Date('2026-01-01T00:00:00Z'),
    confirmationRequired: true,
    clientRequestToken: 'token-1',
  };

  it('invokes the task function with schema 2.0 and the user arguments, on a manifest S3 generates from the prefix and .pdf suffixes', () => {
    expect(createJobInput(job)).toEqual({
      AccountId: '123456789012',
      ConfirmationRequired: true,
      Operation: { LambdaInvoke: { FunctionArn: job.functionArn, InvocationSchemaVersion: '2.0', UserArguments: { dryRun: 'false', force: 'true' } } },
      Report: { Enabled: true, Bucket: 'arn:aws:s3:::my-pdfs', Prefix: 'batch-reports', Format: 'Report_CSV_20180820', ReportScope: 'AllTasks' },
      ClientRequestToken: 'token-1',
      Priority: 10,
      RoleArn: job.roleArn,
      Description: 's3-pdf-render backfill of s3://my-pdfs/incoming/reports/ (forced)',
      ManifestGenerator: {
        S3JobManifestGenerator: {
          ExpectedBucketOwner: '123456789012',
          SourceBucket: 'arn:aws:s3:::my-pdfs',
          EnableManifestOutput: false,
          Filter: { KeyNameConstraint: { MatchAnyPrefix: ['incoming/reports/'], MatchAnySuffix: ['.pdf', '.PDF'] }, CreatedAfter: new Date('2026-01-01T00:00:00Z') },
        },
      },
    });
  });

  it('reads an inventory report instead, by its manifest.json and ETag', () => {
    const input = createJobInput({ ...job, inventory: { bucket: 'my-pdfs', key: 'inventory/my-pdfs/all/2026-01-01T01-00Z/manifest.json', etag: 'abc' }, dryRun: true, confirmationRequired: false });
    expect(input.ManifestGenerator).toBeUndefined();
    expect(input.Manifest).toEqual({ Spec: { Format: 'S3InventoryReport_CSV_20161130' }, Location: { ObjectArn: 'arn:aws:s3:::my-pdfs/inventory/my-pdfs/all/2026-01-01T01-00Z/manifest.json', ETag: 'abc' } });
    expect(input.Operation?.LambdaInvoke?.UserArguments).toEqual({ dryRun: 'true', force: 'true' });
  });

  it('names a malformed function ARN, report URL or --since', () => {
    expect(() => parseFunctionArn('ReprocessFunction')).toThrow('is not a Lambda function ARN');
    expect(() => parseS3Url('my-pdfs/batch-reports/', '--report')).toThrow('--report "my-pdfs/batch-reports/" is not an s3://bucket/key URL');
    expect(() => parseSince('01/01/2026')).toThrow('--since "01/01/2026": expected a date such as 2026-01-01');
    expect(parseSince('2026-01-01')).toEqual(new Date('2026-01-01T00:00:00Z'));
  });

  it('goes over HTTP as S3 Control takes it: POST /v20180820/jobs, the account in its header, the request in XML', async () => {
    // moto 5.2 does not serve S3 Control's jobs API: a loopback server takes the bytes the SDK sends and answers as S3 Control does.
    let seen: { method?: string; url?: string; account?: string; body: string } = { body: '' };
    let seenHost = '';
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen = { method: req.method, url: req.url, account: req.headers['x-amz-account-id'] as string, body };
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><CreateJobResult><JobId>0f1e2d3c-job</JobId></CreateJobResult>');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      // The SDK puts the account in the host name (123456789012.s3-control.<region>.amazonaws.com): the request is sent to loopback, its Host header kept.
      const client = new S3ControlClient({ region: 'eu-west-1', endpoint: `http://s3-control.test:${port}`, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
      client.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { hostname: string; headers: Record<string, string> };
          seenHost = request.hostname;
          request.hostname = '127.0.0.1';
          return next(args);
        },
        { step: 'finalizeRequest', name: 'toLoopback' },
      );
      const { JobId } = await client.send(new CreateJobCommand(createJobInput(job)));
      expect(JobId).toBe('0f1e2d3c-job');
      expect(seenHost).toBe('123456789012.s3-control.test');
      expect(seen).toMatchObject({ method: 'POST', url: '/v20180820/jobs', account: '123456789012' });
      for (const fragment of [
        '<InvocationSchemaVersion>2.0</InvocationSchemaVersion>',
        '<key>force</key><value>true</value>',
        '<MatchAnySuffix><member>.pdf</member><member>.PDF</member></MatchAnySuffix>',
        '<ClientRequestToken>token-1</ClientRequestToken>',
        '<ConfirmationRequired>true</ConfirmationRequired>',
        '<RoleArn>arn:aws:iam::123456789012:role/stack-BatchOperationsRole-XyZ</RoleArn>',
      ]) expect(seen.body).toContain(fragment);
    } finally {
      server.close();
    }
  });
});
