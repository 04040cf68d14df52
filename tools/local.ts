/**
 * npm run local -- [file.pdf…] [--out dir] [--bucket name] [--concurrency N] [--meta render-pages=1 …]
 *                  [--existing-bucket] [--output-bucket name] [--sample-pages N]
 * The main job on an embedded default: starts a local S3 and SQS (moto_server) unless a local
 * endpoint is set (AWS_ENDPOINT_URL, or S3_ENDPOINT), wires the bucket's uploads to a local
 * render queue as the template does (--existing-bucket: as SourceBucketMode=existing does, the
 * bucket's EventBridge notifications and the template's rule; moto forwards S3 events to
 * EventBridge and the rule's target is the queue; --output-bucket: outputs in another bucket),
 * uploads each PDF under incoming/, and drives the bundled render handler from the queue the way
 * the SQS event source mapping does (tools/local-queue.ts): fan-out ranges and continuations go
 * through the queue too, and each invocation's outcome is printed. Then it copies the pages and
 * manifest.json to --out (default out/). --meta key=value (repeatable) uploads with that S3 user
 * metadata: the per-object options render-dpi, render-format, render-quality, render-pages,
 * render-thumbnail-width, render-text.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { loadConfig } from '../lib/config/env.js';
import { parseIntSetting } from '../lib/config/settings.js';
import { isLegacy, isPageFailure } from '../lib/job/manifest.js';
import type { RecordResult, RenderHandlerResult } from '../lib/render-function/handler.js';
import { createS3Client } from '../lib/s3/client.js';
import { MANIFEST_FILE, outputLocation } from '../lib/s3/layout.js';
import { readManifest } from '../lib/s3/manifest-store.js';
import { createSqsClient } from '../lib/sqs/client.js';
import { readEndpoints } from '../lib/aws/endpoint.js';
import { buildAll } from './build.js';
import { enableEventBridge, putSourceRule, SOURCE_RULE, sourceRulePattern } from './local-eventbridge.js';
import { createRenderQueues, notifyQueueOnUpload, pollQueue } from './local-queue.js';
import { runTool, UsageError } from './cleanup.js';
import { MAX_SAMPLE_PAGES, writeSamplePdf } from './sample-pdf.js';
import { motoAvailable, MOTO_INSTALL_HINT, startMoto, type LocalS3 } from './moto.js';
import { loadTemplate, localContext } from './template.js';
import { addVariantExpiry, VARIANT_EXPIRY_RULE_ID } from './variant-expiry.js';

const USAGE =
  'usage: npm run local -- [file.pdf…] [--out dir] [--bucket name] [--concurrency N] [--meta render-pages=1 …] [--existing-bucket] [--output-bucket name] [--sample-pages N]   (no file: a generated sample PDF, 3 pages or N)';

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const name = (err as Error).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
  }
}

/** The flags and files, all checked before anything starts (moto, the bundle). */
async function readArgs() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string', default: 'out' },
      bucket: { type: 'string', default: 'local-pdf-render' },
      concurrency: { type: 'string', default: '4' },
      meta: { type: 'string', multiple: true, default: [] },
      'existing-bucket': { type: 'boolean', default: false },
      'output-bucket': { type: 'string' },
      'sample-pages': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const concurrency = parseIntSetting('--concurrency', values.concurrency, 1, 64);
  const samplePages = values['sample-pages'] === undefined ? undefined : parseIntSetting('--sample-pages', values['sample-pages'], 1, MAX_SAMPLE_PAGES);
  if (samplePages !== undefined && positionals.length > 0) throw new UsageError('--sample-pages is for the generated sample: give it without files');
  for (const [flag, name] of [['--bucket', values.bucket], ['--output-bucket', values['output-bucket']]] as const) {
    if (name !== undefined && !BUCKET_NAME.test(name)) throw new UsageError(`${flag}=${JSON.stringify(name)} is invalid: expected an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)`);
  }
  const metadata = Object.fromEntries(
    values.meta.map((pair) => {
      const at = pair.indexOf('=');
      if (at <= 0) throw new UsageError(`--meta ${pair}: expected key=value, such as render-pages=1-3`);
      return [pair.slice(0, at).toLowerCase(), pair.slice(at + 1)];
    }),
  );
  for (const file of positionals) {
    const found = await stat(file).catch(() => undefined);
    if (!found?.isFile()) throw new UsageError(`${file}: no such file`);
  }
  return { values, positionals, concurrency, samplePages, metadata };
}

/** S3's rule for bucket names, enough to refuse a typo before moto does. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

async function main(): Promise<number> {
  const { values, positionals, concurrency, samplePages, metadata } = await readArgs();
  if (values.help) {
    console.error(USAGE);
    return 0;
  }
  if (!readEndpoints(process.env).S3 && !motoAvailable()) {
    console.error(`error: ${MOTO_INSTALL_HINT}`);
    return 1;
  }
  if (positionals.length === 0) {
    positionals.push(await writeSamplePdf(samplePages !== undefined ? { pages: samplePages } : {}));
    console.error(`no PDF given: rendering a generated sample (${positionals[0]})`);
  }
  let server: LocalS3 | undefined;
  if (!readEndpoints(process.env).S3) {
    server = await startMoto();
    // The SDK's own variable: every client (S3, SQS) goes to moto.
    process.env['AWS_ENDPOINT_URL'] = server.endpoint;
    console.error(`local S3, SQS and EventBridge (moto_server) on ${server.endpoint}`);
  }
  try {
    // The same environment the function gets: defaults unless the caller set them.
    process.env['POWERTOOLS_METRICS_DISABLED'] ??= 'true';
    process.env['POWERTOOLS_LOG_LEVEL'] ??= 'WARN';
    const bucket = values.bucket;
    process.env['SOURCE_BUCKET'] ??= bucket;
    if (values['output-bucket']) process.env['OUTPUT_BUCKET'] = values['output-bucket'];
    const endpoints = readEndpoints(process.env);
    const sqs = createSqsClient({ endpoints });
    const queues = await createRenderQueues(sqs);
    process.env['RENDER_QUEUE_URL'] = queues.queueUrl;
    const config = loadConfig();
    const s3 = createS3Client(config);
    await ensureBucket(s3, bucket);
    if (config.outputBucket) await ensureBucket(s3, config.outputBucket);
    if (values['existing-bucket']) {
      // As SourceBucketMode=existing wires it: the bucket's EventBridge notifications on (its
      // other notification settings kept), and the template's rule, its pattern resolved for
      // this bucket and prefix, on the default bus with the render queue as its target.
      const template = loadTemplate();
      const ctx = localContext(template, { SourceBucketMode: 'existing', ExistingBucketName: bucket, InputPrefix: config.inputPrefix }, {});
      const eventsEndpoint = endpoints.EventBridge;
      if (!eventsEndpoint) throw new Error('--existing-bucket needs a local EventBridge: AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_EVENTBRIDGE) pointing at moto');
      await enableEventBridge(s3, bucket);
      await putSourceRule(eventsEndpoint, sourceRulePattern(template, ctx), queues.queueArn, ctx.region);
      console.error(`existing bucket: s3://${bucket} -> EventBridge (rule ${SOURCE_RULE}, the template's pattern) -> render queue`);
      // The stack creates no bucket here, so no variant expiry either: the rule docs/deploy.md gives, merged in.
      const expiryBucket = config.outputBucket ?? bucket;
      await addVariantExpiry(s3, expiryBucket, config.outputPrefix, Number(ctx.parameters['PageCacheExpirationDays']));
      console.error(`variant expiry: lifecycle rule ${VARIANT_EXPIRY_RULE_ID} merged into s3://${expiryBucket}'s configuration`);
    } else {
      // As the template wires it: uploads under INPUT_PREFIX notify the render queue.
      await notifyQueueOnUpload(s3, bucket, config.inputPrefix, queues.queueArn);
    }
    if (config.outputBucket) console.error(`outputs go to s3://${config.outputBucket}; s3://${bucket} is only read`);

    console.error('building the function bundle…');
    const { RenderPdfFunction: dir } = await buildAll({ only: ['RenderPdfFunction'] });
    const { handler } = (await import(pathToFileURL(join(dir!, 'handler.mjs')).href)) as { handler: (event: SQSEvent, context: object) => Promise<RenderHandlerResult> };

    const started = Date.now();
    for (const file of positionals) {
      const key = `${config.inputPrefix}${basename(file)}`;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(file), ContentType: 'application/pdf', Metadata: metadata }));
      console.error(`uploaded s3://${bucket}/${key}`);
    }
    // The event source mapping: each message a Lambda invocation of the bundled handler, at most `concurrency` at once.
    let invocation = 0;
    const run = await pollQueue({
      sqs,
      queues,
      concurrency,
      invoke: async (event) => {
        const id = ++invocation;
        const deadline = Date.now() + 900_000;
        const result = await handler(event, { awsRequestId: `local-${id}`, getRemainingTimeInMillis: () => deadline - Date.now() });
        for (const record of result.records) console.error(`  invocation ${id}: ${describeRecord(record)}`);
        return result;
      },
    });
    console.error(`${run.invocations} invocation(s), at most ${run.maxInFlight} at once, ${run.failures} invocation(s) failed, in ${Date.now() - started} ms`);

    const outRoot = resolve(values.out);
    const tally = { complete: 0, partial: 0, failed: 0 };
    for (const file of positionals) {
      const key = `${config.inputPrefix}${basename(file)}`;
      const out = outputLocation(bucket, key, config);
      const { manifest } = await readManifest(s3, out);
      if (!manifest || isLegacy(manifest)) {
        console.log(`${basename(file)}: no manifest: ${run.failures ? 'its invocations failed (their errors are above)' : 'no invocation committed one'}`);
        tally.failed++;
        continue;
      }
      const target = join(outRoot, basename(file));
      await mkdir(target, { recursive: true });
      for (const page of manifest.pages) {
        if (isPageFailure(page)) continue;
        const object = await s3.send(new GetObjectCommand({ Bucket: out.bucket, Key: page.key }));
        // Flattened: the generation folder is S3's business (readers follow pages[].key).
        await writeFile(join(target, basename(page.key)), await object.Body!.transformToByteArray());
      }
      await writeFile(join(target, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
      const rendered = manifest.pages.filter((p) => !isPageFailure(p)).length;
      for (const warning of manifest.warnings) console.log(`${basename(file)}: warning: ${warning}`);
      console.log(`${basename(file)}: ${manifest.status}${manifest.error ? ` ${manifest.error.code} (${manifest.error.message})` : ''}, ${rendered}/${manifest.pageCount} pages -> ${target}/`);
      tally[manifest.status]++;
    }
    console.log(`${positionals.length} document(s): ${tally.complete} complete, ${tally.partial} partial, ${tally.failed} failed`);
    return tally.partial + tally.failed === 0 ? 0 : 2;
  } finally {
    await server?.stop();
  }
}

function describeRecord(record: RecordResult): string {
  const what = `${record.key}`;
  switch (record.outcome) {
    case 'rendered':
      return `${what}: manifest committed (${record.status})`;
    case 'range-stored':
    case 'continued':
      return `${what}: ${record.reason ?? record.outcome}`;
    default:
      return `${what}: ${record.outcome}${record.reason ? ` (${record.reason})` : ''}`;
  }
}

runTool(main);
