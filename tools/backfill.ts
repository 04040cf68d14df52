/**
 * npm run backfill -- --prefix reports/ [--dry-run] [--force] [--since 2026-01-01]
 *                     [--inventory s3://bucket/inventory/…/manifest.json] [--yes]
 *                     (--outputs stack-outputs.json | --function-arn … --role-arn … --report s3://…/ --bucket …)
 * npm run backfill -- --local --prefix reports/ [--dry-run] [--force] [--concurrency 8] [--manifest m.csv]
 *
 * In AWS: creates an S3 Batch Operations job (S3 Control CreateJob, docs/reprocess.md "Backfill")
 * that invokes the task function once per PDF under INPUT_PREFIX + prefix, and prints the job id
 * and how to watch it. The stack's outputs name the function, the role and the report location:
 * pass the file `aws cloudformation describe-stacks --stack-name <stack> --query 'Stacks[0].Outputs'`
 * writes, or each value on its own (or BACKFILL_FUNCTION_ARN, BACKFILL_ROLE_ARN, BACKFILL_REPORT,
 * BACKFILL_BUCKET in the environment).
 *
 * A real (not dry) run is created with ConfirmationRequired: the job reads its manifest and waits
 * in Suspended with the number of objects it will process, until you confirm it (the command is
 * printed). A backfill can queue millions of renders: the count is worth a look before it starts.
 * A dry run dispatches nothing and starts at once; so does a real one with --yes.
 *
 * --local (with AWS_ENDPOINT_URL, or its alias S3_ENDPOINT, pointing at e.g. moto): the same job on this machine, by the stand-in for the
 * service (tools/batch-operations/runner.ts) against the built artifact, then the render
 * queue's local poller runs the renders with the render function's artifact.
 */
import { randomUUID, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateJobCommand, S3ControlClient } from '@aws-sdk/client-s3-control';
import { loadConfig } from '../lib/config/env.js';
import { readEndpoints } from '../lib/aws/endpoint.js';
import { createS3Client } from '../lib/s3/client.js';
import { createSqsClient } from '../lib/sqs/client.js';
import { artifactPool, discard } from './batch-operations/artifact.js';
import { createJobInput, parseFunctionArn, parseS3Url, PDF_SUFFIXES } from './batch-operations/create-job.js';
import { generateManifest, parseCsvManifest } from './batch-operations/manifest.js';
import { completionReportCsv, completionReportManifest, runBatchJob, tally } from './batch-operations/runner.js';
import { buildAll } from './build.js';
import { functionEnvironment, invokeBuilt } from './lambda-container.js';
import { createRenderQueues, pollQueue } from './local-queue.js';
import { loadTemplate, templateFunction } from './template.js';

class UsageError extends Error {}

const OPTIONS = {
  prefix: { type: 'string', default: '' },
  'dry-run': { type: 'boolean', default: false },
  force: { type: 'boolean', default: false },
  since: { type: 'string' },
  inventory: { type: 'string' },
  yes: { type: 'boolean', default: false },
  outputs: { type: 'string' },
  'function-arn': { type: 'string' },
  'role-arn': { type: 'string' },
  report: { type: 'string' },
  bucket: { type: 'string' },
  'input-prefix': { type: 'string' },
  local: { type: 'boolean', default: false },
  manifest: { type: 'string' },
  concurrency: { type: 'string', default: '8' },
  'recent-seconds': { type: 'string' },
  'skip-build': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h' },
} as const;

/** --since YYYY-MM-DD (or a full ISO time), validated. */
export function parseSince(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = /^\d{4}-\d{2}-\d{2}(T[\d:.]+Z)?$/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--since ${JSON.stringify(value)}: expected a date such as 2026-01-01 (UTC)`);
  return date;
}

function stackOutputs(path: string | undefined): Record<string, string> {
  if (!path) return {};
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  const list = Array.isArray(parsed) ? parsed : (parsed as { Stacks?: { Outputs?: unknown[] }[] }).Stacks?.[0]?.Outputs;
  if (!Array.isArray(list)) throw new UsageError(`${path}: expected the Outputs list of describe-stacks ([{"OutputKey": …, "OutputValue": …}])`);
  return Object.fromEntries(list.map((o: { OutputKey: string; OutputValue: string }) => [o.OutputKey, o.OutputValue]));
}

function required(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`${what} is needed (see npm run backfill -- --help)`);
  return value;
}

async function inAws(values: ReturnType<typeof parse>): Promise<void> {
  const outputs = stackOutputs(values.outputs);
  const env = process.env;
  const functionArn = required(values['function-arn'] ?? env['BACKFILL_FUNCTION_ARN'] ?? outputs['BatchTaskFunctionArn'], '--function-arn (stack output BatchTaskFunctionArn)');
  const roleArn = required(values['role-arn'] ?? env['BACKFILL_ROLE_ARN'] ?? outputs['BatchOperationsRoleArn'], '--role-arn (stack output BatchOperationsRoleArn)');
  const report = parseS3Url(required(values.report ?? env['BACKFILL_REPORT'] ?? outputs['BatchReportLocation'], '--report (stack output BatchReportLocation)'), '--report');
  const bucket = required(values.bucket ?? env['BACKFILL_BUCKET'] ?? outputs['BucketName'], '--bucket (stack output BucketName)');
  const inputPrefix = values['input-prefix'] ?? 'incoming/';
  const { region } = parseFunctionArn(functionArn);
  let inventory;
  if (values.inventory) {
    const where = parseS3Url(values.inventory, '--inventory');
    if (!where.key.endsWith('manifest.json')) throw new UsageError(`--inventory ${values.inventory}: expected the inventory report's manifest.json`);
    if (values.prefix) console.error(`warning: --prefix does not filter an inventory report: every object it lists is a task (the function answers the others "skipped")`);
    const head = await createS3Client({ endpoints: readEndpoints() }, { region }).send(new HeadObjectCommand({ Bucket: where.bucket, Key: where.key }));
    inventory = { ...where, etag: (head.ETag ?? '').replace(/"/g, '') };
  }
  const input = createJobInput({
    functionArn,
    roleArn,
    bucket,
    keyPrefix: inputPrefix + values.prefix,
    report: { bucket: report.bucket, prefix: report.key },
    dryRun: values['dry-run'],
    force: values.force,
    ...(values.since ? { since: parseSince(values.since)! } : {}),
    ...(inventory ? { inventory } : {}),
    confirmationRequired: !values['dry-run'] && !values.yes,
    clientRequestToken: randomUUID(),
  });
  const { JobId } = await new S3ControlClient({ region }).send(new CreateJobCommand(input));
  const account = input.AccountId;
  console.log(`job ${JobId} created (${input.Description})`);
  console.log(`watch it:   aws s3control describe-job --region ${region} --account-id ${account} --job-id ${JobId} --query 'Job.[Status,ProgressSummary]'`);
  if (input.ConfirmationRequired) {
    console.log(`it waits for you once its manifest is read (Status Suspended, ProgressSummary.TotalNumberOfTasks = the objects); then:`);
    console.log(`confirm:    aws s3control update-job-status --region ${region} --account-id ${account} --job-id ${JobId} --requested-job-status Ready`);
  }
  console.log(`report:     s3://${report.bucket}/${input.Report!.Prefix}/job-${JobId}/ (every task: its result code and what was found and done)`);
}

async function local(values: ReturnType<typeof parse>): Promise<void> {
  // The local server, named as every command names it (lib/aws/endpoint.ts): AWS_ENDPOINT_URL,
  // AWS_ENDPOINT_URL_<SERVICE>, or the alias S3_ENDPOINT.
  const endpoints = readEndpoints(process.env);
  if (!endpoints.S3 || !endpoints.SQS) {
    throw new UsageError('--local needs a local S3 and SQS: set AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_SQS, or the alias S3_ENDPOINT) to a server such as moto');
  }
  const template = loadTemplate();
  const taskFn = templateFunction(template, 'ReprocessFunction');
  const endpointVariables = Object.fromEntries(Object.entries(process.env).filter(([name]) => /^(S3_ENDPOINT|AWS_ENDPOINT_URL(_[A-Z_]+)?|AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)$/.test(name)));
  const settings = loadConfig({ ...functionEnvironment(template, taskFn), ...endpointVariables });
  const bucket = required(values.bucket ?? settings.sourceBucket, '--bucket');
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError(`--concurrency ${values.concurrency}: expected 1..64`);
  if (!values['skip-build']) await buildAll();
  const s3 = createS3Client({ endpoints });
  const sqs = createSqsClient({ endpoints });
  const queues = await createRenderQueues(sqs);
  const since = parseSince(values.since);
  const entries = values.manifest
    ? parseCsvManifest(readFileSync(values.manifest, 'utf8'))
    : await generateManifest(s3, bucket, { prefix: settings.inputPrefix + values.prefix, suffixes: PDF_SUFFIXES, ...(since ? { createdAfter: since } : {}) });
  const extraEnv = {
    RENDER_QUEUE_URL: queues.queueUrl,
    SOURCE_BUCKET: bucket,
    ...(values['recent-seconds'] !== undefined ? { RECENT_UPLOAD_SECONDS: values['recent-seconds'] } : {}),
    ...(process.env['AWS_ACCESS_KEY_ID'] ? {} : { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' }),
  };
  console.error(`local Batch Operations stand-in: ${entries.length} tasks, ${concurrency} at once, against dist/ReprocessFunction`);
  const pool = await artifactPool(template, taskFn, concurrency, { extraEnv, logs: discard() });
  let run;
  try {
    run = await runBatchJob(entries, { invoke: pool.invoke, concurrency, userArguments: { dryRun: String(values['dry-run']), force: String(values.force) } });
  } finally {
    await pool.close();
  }
  const csv = completionReportCsv(run.reports);
  const prefix = `batch-reports/job-${run.jobId}`;
  const resultsKey = `${prefix}/results/${createHash('sha1').update(csv).digest('hex')}.csv`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: resultsKey, Body: csv }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/manifest.json`, Body: completionReportManifest(bucket, resultsKey, createHash('md5').update(csv).digest('hex')) }));
  console.log(JSON.stringify({ jobId: run.jobId, tasks: run.reports.length, invocations: run.invocations, seconds: +(run.durationMs / 1000).toFixed(1), results: tally(run.reports), report: `s3://${bucket}/${resultsKey}` }, null, 2));
  // The renders it queued, by the render function's artifact, one at a time, as the event source mapping would.
  const render = templateFunction(template, 'RenderPdfFunction');
  const stats = await pollQueue({
    sqs,
    queues,
    concurrency: 1,
    invoke: async (event) => {
      const outcome = await invokeBuilt(template, render, event, { extraEnv, logs: discard() });
      if (!outcome.ok) throw new Error(JSON.stringify(outcome.payload));
      return outcome.payload as { batchItemFailures?: { itemIdentifier: string }[] };
    },
  });
  console.log(`renders from the queue: ${stats.invocations} invocations, ${stats.failures} failed`);
}

function parse() {
  return parseArgs({ options: OPTIONS, allowPositionals: false }).values;
}

async function main(): Promise<void> {
  let values;
  try {
    values = parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    console.log(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\*\n?| \* ?/gm, ''));
    return;
  }
  if (values.prefix.startsWith('/')) throw new UsageError(`--prefix ${JSON.stringify(values.prefix)}: a key prefix under INPUT_PREFIX, without a leading "/"`);
  parseSince(values.since);
  await (values.local ? local(values) : inAws(values));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  });
}
