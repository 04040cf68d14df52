/**
 * Both deployment modes end to end on moto (S3 + EventBridge + SQS), through the bundled render
 * handler in a warm Lambda-like container with the template's environment for that mode:
 *
 * - existing bucket + separate output bucket: the bucket's EventBridge notifications turned on the
 *   way docs/deploy.md does it (its other notifications kept), the template's own rule pattern on
 *   moto's default bus targeting the render queue. An upload arrives as an EventBridge event in an
 *   SQS body, renders (fan-out ranges through the queue too), and nothing is written to the source
 *   bucket; a reprocess run works the same way.
 * - created bucket + separate output bucket: S3 notifications (form-encoded keys).
 *
 * The same awkward keys go through both paths: spaces, "+", "%", unicode, a mixed-case ".Pdf",
 * and a ".." segment (refused: never rendered, nothing written).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  DeleteBucketLifecycleCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketNotificationConfigurationCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config/env.js';
import { QueueDispatcher } from '../lib/reprocess/dispatch.js';
import { createReprocessHandler } from '../lib/reprocess/handler.js';
import { decodeEventKey, outputLocation } from '../lib/s3/layout.js';
import { sqsWorkQueue } from '../lib/sqs/work-queue.js';
import { buildAll } from '../tools/build.js';
import { LambdaContainer } from '../tools/lambda-container.js';
import { deleteSourceRule, enableEventBridge, putSourceRule, sourceRulePattern } from '../tools/local-eventbridge.js';
import { createRenderQueues, notifyQueueOnUpload, pollQueue, type LocalQueues } from '../tools/local-queue.js';
import { loadTemplate, localContext, resolvedEnvironment, ROOT, templateFunction } from '../tools/template.js';
import { addVariantExpiry, VARIANT_EXPIRY_RULE_ID } from '../tools/variant-expiry.js';
import { VARIANT_TAG } from '../lib/on-demand/render-variant.js';
import { readV2Manifest, renderedPages } from './support/manifests.js';
import { CORPUS, createBucket, listKeys, putObject, resetS3, s3Endpoint, testS3Client } from './support/s3.js';
import { testSqsClient } from './support/sqs.js';

const template = loadTemplate();
const render = templateFunction(template, 'RenderPdfFunction');
const SOURCE = 'their-pdfs';
const OUTPUT = 'our-renders';
const IN = 'incoming/';

/** Keys a user may well have: each one renders, under the output prefix that mirrors it. */
const AWKWARD = [`${IN}q3 report+final 100% ü.Pdf`, `${IN}a%2Fb/π (draft) & notes.PDF`, `${IN}x..y/ok..pdf`];
/** Refused by the handler in both paths (DESIGN §1): a ".." segment could escape the prefix. */
const DOT_DOT = `${IN}sub/../escape.pdf`;

const quiet = () => new Writable({ write: (_chunk, _encoding, done) => done() });

interface Mode {
  parameters: Record<string, string>;
  queues: LocalQueues;
  container: LambdaContainer;
  s3: S3Client;
}

async function startMode(parameters: Record<string, string>, extraEnv: Record<string, string> = {}): Promise<Mode> {
  const s3 = testS3Client();
  const queues = await createRenderQueues(testSqsClient());
  const { container, initError } = await LambdaContainer.start(template, render, {
    parameters,
    // The SDK's own variable, not S3_ENDPOINT: one setting points S3 and SQS at moto.
    extraEnv: { AWS_ENDPOINT_URL: s3Endpoint(), RENDER_QUEUE_URL: queues.queueUrl, ...extraEnv },
    logs: quiet(),
  });
  if (initError) throw new Error(`the render container did not start: ${JSON.stringify(initError.payload)}`);
  return { parameters, queues, container, s3 };
}

/** The event source mapping: every message on the render queue through the container, until the queue stays empty. */
async function drainThroughHandler(mode: Mode): Promise<{ invocations: number; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  const run = await pollQueue({
    sqs: testSqsClient(),
    queues: mode.queues,
    concurrency: 1,
    idleMs: 300,
    invoke: async (event) => {
      for (const record of event.Records) bodies.push(JSON.parse(record.body));
      const outcome = await mode.container.invoke(event);
      if (!outcome.ok) throw new Error(JSON.stringify(outcome.payload));
      return outcome.payload as { batchItemFailures?: { itemIdentifier: string }[] };
    },
  });
  expect(run.failures).toBe(0);
  return { invocations: run.invocations, bodies };
}

const manifestKey = (key: string, config = loadConfig({})) => `${outputLocation(SOURCE, key, config).prefix}manifest.json`;

describe('existing bucket through EventBridge, outputs in a separate bucket', () => {
  let mode: Mode;
  let sourceBefore: string[];
  let theirQueueArn: string;
  const parameters = { SourceBucketMode: 'existing', ExistingBucketName: SOURCE, OutputBucketName: OUTPUT };

  beforeAll(async () => {
    await resetS3();
    await buildAll({ only: ['RenderPdfFunction'] });
    const s3 = testS3Client();
    await createBucket(s3, SOURCE);
    await createBucket(s3, OUTPUT);
    // Another team's notification on the bucket: turning EventBridge on must keep it.
    const { QueueUrl } = await testSqsClient().send(new CreateQueueCommand({ QueueName: 'their-team-queue' }));
    const { Attributes } = await testSqsClient().send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    theirQueueArn = Attributes!['QueueArn']!;
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: SOURCE,
        NotificationConfiguration: { QueueConfigurations: [{ Id: 'their-csv', QueueArn: theirQueueArn, Events: ['s3:ObjectCreated:*'], Filter: { Key: { FilterRules: [{ Name: 'suffix', Value: '.csv' }] } } }] },
      }),
    );
    await enableEventBridge(s3, SOURCE);
    // Fan-out at two pages, so ranges travel through the queue in this mode too.
    mode = await startMode(parameters, { FANOUT_PAGES: '2' });
    const pattern = sourceRulePattern(template, localContext(template, parameters, {}));
    await putSourceRule(s3Endpoint(), pattern, mode.queues.queueArn);

    const pdf = await readFile(join(CORPUS, 'arabic-rotations-4p.pdf'));
    for (const key of [...AWKWARD, DOT_DOT]) await putObject(s3, SOURCE, key, pdf);
    // Outside the rule's pattern: never sent.
    await putObject(s3, SOURCE, `${IN}notes.txt`, 'not a pdf');
    await putObject(s3, SOURCE, 'elsewhere/a.pdf', pdf);
    sourceBefore = await listKeys(s3, SOURCE);
  }, 180_000);

  afterAll(async () => {
    await mode?.container.close();
    await deleteSourceRule(s3Endpoint());
  });

  it('kept the bucket\'s other notifications when EventBridge was turned on', async () => {
    // moto 5.2 leaves EventBridgeConfiguration out of its GetBucketNotificationConfiguration
    // answer (it does forward the events: the next test). What can be checked: the other team's
    // queue notification survived the get-add-put.
    const config = await testS3Client().send(new GetBucketNotificationConfigurationCommand({ Bucket: SOURCE }));
    expect(config.QueueConfigurations?.map((q) => [q.Id, q.QueueArn])).toEqual([['their-csv', theirQueueArn]]);
  });

  it('renders each upload delivered as an EventBridge event through the queue, into the output bucket only', async () => {
    const { bodies } = await drainThroughHandler(mode);
    // What arrived: EventBridge events for the PDFs under the prefix (keys verbatim), then fan-out ranges.
    const events = bodies.filter((b): b is { source: string; 'detail-type': string; detail: { object: { key: string } } } => (b as { source?: string }).source === 'aws.s3');
    expect(events.map((e) => e['detail-type'])).toEqual(events.map(() => 'Object Created'));
    expect(events.map((e) => e.detail.object.key).sort()).toEqual([...AWKWARD, DOT_DOT].sort());
    expect(bodies.some((b) => (b as { type?: string }).type === 'render')).toBe(true);

    const s3 = testS3Client();
    // Nothing written to the source bucket: the same keys as before the renders.
    expect(await listKeys(s3, SOURCE)).toEqual(sourceBefore);
    const config = loadConfig({ OUTPUT_BUCKET: OUTPUT });
    for (const key of AWKWARD) {
      const out = outputLocation(SOURCE, key, config);
      expect(out.bucket).toBe(OUTPUT);
      const manifest = await readV2Manifest(s3, OUTPUT, `${out.prefix}manifest.json`);
      expect(manifest.status, key).toBe('complete');
      expect(manifest.source.key, key).toBe(key);
      expect(renderedPages(manifest).length, key).toBe(4);
      for (const page of renderedPages(manifest)) expect(page.key.startsWith(out.prefix), page.key).toBe(true);
    }
    // The ".." key: refused, nothing written for it anywhere.
    const outputs = await listKeys(s3, OUTPUT);
    expect(outputs.filter((k) => k.includes('escape'))).toEqual([]);
    expect(outputs.every((k) => k.startsWith('rendered/'))).toBe(true);
  });

  it('reprocesses from the output bucket\'s manifests, and renders what it sends without writing to the source bucket', async () => {
    const s3 = testS3Client();
    const env = { ...resolvedEnvironment(templateFunction(template, 'ReprocessFunction'), template, localContext(template, parameters, {})), AWS_ENDPOINT_URL: s3Endpoint() };
    const config = loadConfig(env);
    expect(config.sourceBucket).toBe(SOURCE);
    expect(config.outputBucket).toBe(OUTPUT);
    const reprocess = createReprocessHandler(config, { s3, dispatcher: new QueueDispatcher(sqsWorkQueue(testSqsClient(), mode.queues.queueUrl)), recentMs: 0 });
    // Up to date: every manifest was found in the output bucket.
    const check = await reprocess({ dryRun: true });
    expect(check.counts).toMatchObject({ ok: AWKWARD.length });
    const forced = await reprocess({ force: true });
    expect(forced.dispatched).toBe(AWKWARD.length);
    const { invocations } = await drainThroughHandler(mode);
    expect(invocations).toBeGreaterThanOrEqual(AWKWARD.length);
    expect(await listKeys(s3, SOURCE)).toEqual(sourceBefore);
  });
});

describe('created bucket through S3 notifications, outputs in a separate bucket', () => {
  // The S3 filter is case-sensitive (.pdf and .PDF only): a mixed-case key is the reprocess function's.
  const NOTIFIED = [...AWKWARD.filter((k) => !k.endsWith('.Pdf')), `${IN}q3 report+final 100% ü.pdf`];
  let mode: Mode;
  const BUCKET = 'example-bucket';

  beforeAll(async () => {
    await resetS3();
    await buildAll({ only: ['RenderPdfFunction'] });
    const s3 = testS3Client();
    await createBucket(s3, BUCKET);
    await createBucket(s3, OUTPUT);
    mode = await startMode({ OutputBucketName: OUTPUT });
    await notifyQueueOnUpload(s3, BUCKET, IN, mode.queues.queueArn);
    const pdf = await readFile(join(CORPUS, 'matplotlib-type3.pdf'));
    for (const key of [...NOTIFIED, DOT_DOT]) await putObject(s3, BUCKET, key, pdf);
  }, 180_000);

  afterAll(async () => {
    await mode?.container.close();
  });

  it('decodes the form-encoded keys of S3 notifications and renders them into the output bucket', async () => {
    const s3 = testS3Client();
    const before = await listKeys(s3, BUCKET);
    const { bodies } = await drainThroughHandler(mode);
    // S3 form-encodes keys in notifications: a space is "+", a "+" is "%2B".
    const keys = bodies.flatMap((b) => ((b as { Records?: { s3: { object: { key: string } } }[] }).Records ?? []).map((r) => r.s3.object.key));
    // (moto also encodes "/" as %2F, which S3 leaves as it is; decoding handles both.)
    expect(keys.some((k) => k.endsWith('q3+report%2Bfinal+100%25+%C3%BC.pdf')), keys.join(' ')).toBe(true);
    expect(keys.map(decodeEventKey).sort()).toEqual([...NOTIFIED, DOT_DOT].sort());
    expect(await listKeys(s3, BUCKET)).toEqual(before);
    for (const key of NOTIFIED) {
      const manifest = await readV2Manifest(s3, OUTPUT, manifestKey(key));
      expect(manifest.status, key).toBe('complete');
      expect(manifest.source.key, key).toBe(key);
    }
    expect((await listKeys(s3, OUTPUT)).filter((k) => k.includes('escape'))).toEqual([]);
  });
});

describe('variant expiry on a bucket the stack does not create', () => {
  const s3 = testS3Client();
  const THEIRS = { ID: 'their-logs', Status: 'Enabled', Filter: { Prefix: 'logs/' }, Expiration: { Days: 7 } } as const;
  const expected = (days: number) => ({
    ID: VARIANT_EXPIRY_RULE_ID,
    Status: 'Enabled' as const,
    Filter: { And: { Prefix: ctxParameters['OutputPrefix'], Tags: [{ Key: VARIANT_TAG.key, Value: VARIANT_TAG.value }] } },
    Expiration: { Days: days },
  });
  const rules = async () => (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: OUTPUT }))).Rules ?? [];
  const ctxParameters = localContext(template, {}, {}).parameters;

  beforeAll(async () => {
    await resetS3();
    await createBucket(s3, OUTPUT);
  });

  it('is the created bucket\'s rule (same ID, prefix, tag and days), merged into the bucket\'s own rules, again and again', async () => {
    const created = (template.Resources['SourceBucket']!.Properties!['LifecycleConfiguration'] as { Rules: Record<string, unknown>[] }).Rules.find((r) => r['Id'] === VARIANT_EXPIRY_RULE_ID);
    expect(created).toMatchObject({ Prefix: { Ref: 'OutputPrefix' }, TagFilters: [{ Key: VARIANT_TAG.key, Value: VARIANT_TAG.value }], ExpirationInDays: { Ref: 'PageCacheExpirationDays' } });
    const days = Number(ctxParameters['PageCacheExpirationDays']);
    // A bucket with no lifecycle configuration yet.
    await addVariantExpiry(s3, OUTPUT, ctxParameters['OutputPrefix']!, days);
    expect(await rules()).toEqual([expected(days)]);
    // A bucket with its own rule keeps it; running it again updates ours, never twice.
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: OUTPUT, LifecycleConfiguration: { Rules: [THEIRS, expected(1)] } }));
    await addVariantExpiry(s3, OUTPUT, ctxParameters['OutputPrefix']!, days);
    await addVariantExpiry(s3, OUTPUT, ctxParameters['OutputPrefix']!, days);
    expect(await rules()).toEqual([THEIRS, expected(days)]);
  });

  it('keeps the configuration\'s TransitionDefaultMinimumObjectSize (a put without it resets it to S3\'s default)', async () => {
    // moto answers all_storage_classes_128K whatever was put, and ignores the header: the test
    // reads the header the put sends, and plays a bucket set to varies_by_storage_class by
    // answering it from the read.
    const sent: (string | undefined)[] = [];
    let answer: string | undefined;
    const client = testS3Client();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (answer && context.commandName === 'GetBucketLifecycleConfigurationCommand') (result.output as { TransitionDefaultMinimumObjectSize?: string }).TransitionDefaultMinimumObjectSize = answer;
        return result;
      },
      { step: 'initialize' },
    );
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutBucketLifecycleConfigurationCommand') sent.push((args.request as { headers: Record<string, string> }).headers['x-amz-transition-default-minimum-object-size']);
        return next(args);
      },
      { step: 'finalizeRequest' },
    );
    const days = Number(ctxParameters['PageCacheExpirationDays']);
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: OUTPUT, LifecycleConfiguration: { Rules: [THEIRS] } }));
    await addVariantExpiry(client, OUTPUT, ctxParameters['OutputPrefix']!, days);
    answer = 'varies_by_storage_class';
    await addVariantExpiry(client, OUTPUT, ctxParameters['OutputPrefix']!, days);
    expect(sent).toEqual(['all_storage_classes_128K', 'varies_by_storage_class']);
    expect(await rules()).toEqual([THEIRS, expected(days)]);
  });

  it('docs/deploy.md\'s AWS CLI commands do the same against a real S3 API (moto): merged, not replaced', async () => {
    const doc = await readFile(join(ROOT, 'docs', 'deploy.md'), 'utf8');
    const block = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('put-bucket-lifecycle-configuration'));
    expect(block).toBeDefined();
    const dir = await mkdtemp(join(tmpdir(), 'deploy-doc-'));
    const env = { ...process.env, AWS_ENDPOINT_URL: s3Endpoint(), AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_DEFAULT_REGION: 'us-east-1' };
    const run = () => spawnSync('bash', ['-e', '-c', block!], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    try {
      await s3.send(new DeleteBucketLifecycleCommand({ Bucket: OUTPUT }));
      const first = run();
      expect(first.status, first.stderr).toBe(0);
      expect(await rules()).toEqual([expected(30)]);
      await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: OUTPUT, LifecycleConfiguration: { Rules: [THEIRS] } }));
      const second = run();
      expect(second.status, second.stderr).toBe(0);
      expect(await rules()).toEqual([THEIRS, expected(30)]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
