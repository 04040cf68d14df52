/**
 * npm run bench:backfill [-- --objects 20000] [--concurrency 8] [--latency-ms 20] [--skip-build]
 *
 * What a backfill costs per object, and what that means at millions of objects. On a fresh moto:
 * `--objects` PDFs (tiny: classification never opens them) with no render yet, uploaded in
 * parallel batches, behind a loopback proxy that holds every S3 and SQS request `--latency-ms`
 * before passing it on (S3's first-byte latency for small objects is of that order; moto alone
 * answers faster than S3 on an idle machine and slower on a loaded one, so both are reported).
 *
 * 1. The scheduled reprocess (in this process, 16 manifest reads at once, dry run): keys
 *    classified per second, hence keys one 300 s run (280 s after its reserve) classifies.
 * 2. The backfill: the local Batch Operations stand-in (tools/batch-operations/runner.ts)
 *    invoking `--concurrency` warm containers of the built task function (the reprocess
 *    artifact, in its Lambda shape) with one schema-2.0 task each; every object is missing,
 *    so each task is a HEAD, a manifest GET and a SendMessage. Tasks per second, and the
 *    classification cost per object (the mean invocation time).
 *
 * From the cost per object c: Batch Operations at a Lambda concurrency of P runs about P / c tasks
 * a second, up to what S3 serves a prefix (5,500 GET/HEAD per second per partitioned prefix: the
 * HEAD is on the input prefix, the GET on the output prefix) and what SQS takes (a standard
 * queue: nearly unlimited SendMessage). The time for 1 and 10 million objects is printed with
 * those assumptions.
 */
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../lib/config/env.js';
import { logger } from '../lib/observability.js';
import { reprocess } from '../lib/reprocess/run.js';
import { everyService } from '../lib/aws/endpoint.js';
import { createS3Client } from '../lib/s3/client.js';
import { createSqsClient } from '../lib/sqs/client.js';
import { artifactPool, discard } from '../tools/batch-operations/artifact.js';
import { generateManifest } from '../tools/batch-operations/manifest.js';
import { runBatchJob, tally } from '../tools/batch-operations/runner.js';
import { buildAll } from '../tools/build.js';
import { functionEnvironment } from '../tools/lambda-container.js';
import { createRenderQueues } from '../tools/local-queue.js';
import { startMoto } from '../tools/moto.js';
import { loadTemplate, templateFunction } from '../tools/template.js';
import { stopOnSignals } from '../tools/cleanup.js';

// Ctrl-C and SIGTERM stop what it started (moto_server, containers) on the way out (tools/cleanup.ts).
stopOnSignals();

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '8' },
    'latency-ms': { type: 'string', default: '20' },
    'skip-build': { type: 'boolean', default: false },
  },
});
const OBJECTS = Number(values.objects);
const CONCURRENCY = Number(values.concurrency);
const LATENCY = Number(values['latency-ms']);
const BUCKET = 'backfill-bench';
/** Batch Operations' parallelism is Lambda's: an account's default concurrency limit. */
const LAMBDA_CONCURRENCY = 1000;
/** S3's documented rate per partitioned prefix for GET/HEAD. */
const S3_GET_PER_PREFIX = 5500;

/** A loopback proxy that holds each request `latencyMs` before forwarding it. */
async function latencyProxy(target: string, latencyMs: number): Promise<{ endpoint: string; close(): void }> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    setTimeout(() => {
      const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      forward.on('error', () => req.socket.destroy());
      req.pipe(forward);
    }, latencyMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

const hours = (seconds: number) => (seconds / 3600).toFixed(1);

async function main(): Promise<void> {
  // The in-process scheduled run's logs (one line a PDF) would bury the result.
  logger.setLogLevel('SILENT');
  if (!values['skip-build']) await buildAll();
  const moto = await startMoto();
  const proxy = await latencyProxy(moto.endpoint, LATENCY);
  try {
    const s3 = createS3Client({ endpoints: everyService(moto.endpoint) });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const seeding = performance.now();
    const keys = Array.from({ length: OBJECTS }, (_, i) => `incoming/bench/${String(i).padStart(7, '0')}.pdf`);
    for (let i = 0; i < keys.length; i += 64) await Promise.all(keys.slice(i, i + 64).map((Key) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: `%PDF-1.4 ${Key}` }))));
    console.error(`seeded ${OBJECTS} objects in ${((performance.now() - seeding) / 1000).toFixed(1)} s`);

    const template = loadTemplate();
    const taskFn = templateFunction(template, 'ReprocessFunction');
    const config = loadConfig({ ...functionEnvironment(template, taskFn, {}, {}), S3_ENDPOINT: proxy.endpoint, SOURCE_BUCKET: BUCKET });

    // 1. One scheduled run's classification rate (dry run: no dispatch, no checkpoint).
    const viaProxy = createS3Client({ endpoints: everyService(proxy.endpoint) });
    const scheduled = await reprocess(BUCKET, { prefix: '', force: false, dryRun: true, limit: 100_000, scheduled: false }, { s3: viaProxy, config, recentMs: 0, dispatcher: { kind: 'none', concurrency: 1, dispatch: async () => undefined } });
    const scheduledRate = scheduled.scanned / (scheduled.durationMs / 1000);

    // 2. The backfill through the stand-in runner and the built artifact.
    const sqs = createSqsClient({ endpoints: everyService(moto.endpoint) });
    const queues = await createRenderQueues(sqs, { name: 'BenchRenderQueue' });
    const entries = await generateManifest(s3, BUCKET, { prefix: 'incoming/', suffixes: ['.pdf'] });
    const extraEnv = { S3_ENDPOINT: proxy.endpoint, RENDER_QUEUE_URL: queues.queueUrl.replace(moto.endpoint, proxy.endpoint), SOURCE_BUCKET: BUCKET, RECENT_UPLOAD_SECONDS: '0', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' };
    const pool = await artifactPool(template, taskFn, CONCURRENCY, { extraEnv, logs: discard() });
    let invocationMs = 0;
    let run;
    try {
      const timed = async (event: unknown) => {
        const t = performance.now();
        try {
          return await pool.invoke(event);
        } finally {
          invocationMs += performance.now() - t;
        }
      };
      run = await runBatchJob(entries, { invoke: timed, concurrency: CONCURRENCY });
    } finally {
      await pool.close();
    }
    const tasksPerSecond = run.reports.length / (run.durationMs / 1000);
    const costMs = invocationMs / run.invocations;
    const atScale = Math.min(LAMBDA_CONCURRENCY / (costMs / 1000), S3_GET_PER_PREFIX);
    const result = {
      command: `npm run bench:backfill -- --objects ${OBJECTS} --concurrency ${CONCURRENCY} --latency-ms ${LATENCY}`,
      objects: OBJECTS,
      injectedLatencyMs: LATENCY,
      scheduled: {
        keysPerSecond: +scheduledRate.toFixed(0),
        keysPerRun300s: Math.round(scheduledRate * 280),
        note: 'one run: 16 manifest reads at once, 280 s after the 20 s reserve',
      },
      backfill: {
        concurrency: CONCURRENCY,
        tasksPerSecond: +tasksPerSecond.toFixed(1),
        costPerObjectMs: +costMs.toFixed(1),
        results: tally(run.reports),
        invocations: run.invocations,
      },
      projection: {
        assumptions: `Lambda concurrency ${LAMBDA_CONCURRENCY}, each task costing ${costMs.toFixed(0)} ms as measured here; at most ${S3_GET_PER_PREFIX} tasks/s (S3 GET/HEAD per prefix); SQS standard queue not limiting`,
        tasksPerSecond: Math.round(atScale),
        hours1M: hours(1e6 / atScale),
        hours10M: hours(1e7 / atScale),
        scheduledRunsFor1M: Math.ceil(1e6 / (scheduledRate * 280)),
      },
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    proxy.close();
    await moto.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
