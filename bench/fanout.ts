/**
 * npm run bench:fanout [-- file.pdf] [--fanout-pages 50] [--concurrency 2] [--dpi 150]
 *
 * Time to all pages of one long document, fanned out into ranges against one invocation, in the
 * same run. Uploads notify a local render queue (moto's SQS); the local event source mapping
 * (tools/local-queue.ts) drives warm Lambda containers of the built render function
 * (tools/lambda-container.ts), each in its own Lambda shape: the template's MemorySize and its
 * vCPU share (1 vCPU at 1,769 MB). On Lambda every range has its own container; here at most
 * `--concurrency` run at once (default: this machine's cores), so the fanned-out time is an
 * upper bound of what Lambda gives.
 */
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { everyService } from '../lib/aws/endpoint.js';
import { createS3Client } from '../lib/s3/client.js';
import { createSqsClient } from '../lib/sqs/client.js';
import { buildAll } from '../tools/build.js';
import { corpusFile } from '../tools/corpus.js';
import { LambdaContainer } from '../tools/lambda-container.js';
import { createRenderQueues, notifyQueueOnUpload, pollQueue } from '../tools/local-queue.js';
import { startMoto } from '../tools/moto.js';
import { loadTemplate, templateFunction } from '../tools/template.js';
import { stopOnSignals } from '../tools/cleanup.js';

// Ctrl-C and SIGTERM stop what it started (moto_server, containers) on the way out (tools/cleanup.ts).
stopOnSignals();

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'fanout-pages': { type: 'string', default: '50' },
    concurrency: { type: 'string', default: String(Math.max(2, cpus().length)) },
    dpi: { type: 'string', default: '150' },
  },
});
const file = positionals[0] ?? corpusFile('freeculture-book-352p.pdf');
const concurrency = Number(values.concurrency);

const moto = await startMoto();
try {
  const endpoint = moto.endpoint;
  const s3 = createS3Client({ endpoints: everyService(endpoint) });
  const sqs = createSqsClient({ endpoints: everyService(endpoint) });
  await buildAll({ only: ['RenderPdfFunction'] });
  const template = loadTemplate();
  const fn = templateFunction(template, 'RenderPdfFunction');
  const body = await readFile(file);

  /** One way of rendering the document: a fresh bucket, queue and warm containers; the time from upload to the last invocation's end. */
  async function timeRender(fanoutPages: number): Promise<{ ms: number; invocations: number; maxInFlight: number }> {
    const bucket = `bench-fanout-${fanoutPages}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const queues = await createRenderQueues(sqs, { name: `bench-${fanoutPages}` });
    await notifyQueueOnUpload(s3, bucket, 'incoming/', queues.queueArn);
    const extraEnv = { S3_ENDPOINT: endpoint, RENDER_QUEUE_URL: queues.queueUrl, SOURCE_BUCKET: bucket, FANOUT_PAGES: String(fanoutPages), DPI: values.dpi!, AWS_LAMBDA_LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true' };
    const idle: LambdaContainer[] = [];
    for (let i = 0; i < concurrency; i++) {
      const { container, initError } = await LambdaContainer.start(template, fn, { extraEnv, logs: new Writable({ write: (_chunk, _encoding, done) => done() }) });
      if (initError) throw new Error(`the container did not start: ${JSON.stringify(initError.payload)}`);
      idle.push(container);
    }
    const invoke = async (event: unknown) => {
      const container = idle.pop()!;
      try {
        const outcome = await container.invoke(event);
        if (!outcome.ok) throw new Error(JSON.stringify(outcome.payload));
        return outcome.payload as { batchItemFailures?: { itemIdentifier: string }[] };
      } finally {
        idle.push(container);
      }
    };
    try {
      // S3's test event for the new notification: not part of the render.
      await pollQueue({ sqs, queues, concurrency: 1, idleMs: 100, invoke });
      const started = performance.now();
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'incoming/doc.pdf', Body: body }));
      const run = await pollQueue({ sqs, queues, concurrency, idleMs: 200, invoke });
      if (run.failures > 0) throw new Error(`${run.failures} invocation(s) failed`);
      return { ms: performance.now() - started - 200, invocations: run.invocations, maxInFlight: run.maxInFlight };
    } finally {
      await Promise.all(idle.map((c) => c.close()));
    }
  }

  const fanout = Number(values['fanout-pages']);
  const single = await timeRender(0);
  const split = await timeRender(fanout);
  console.log(`${file}, ${values.dpi} dpi, MemorySize ${String(template.Parameters!['MemorySize']!.Default)} MB per container, ${concurrency} containers at once on ${cpus().length} cores`);
  console.log(`one invocation:              ${(single.ms / 1000).toFixed(1)} s`);
  console.log(`fan-out, ${fanout}-page ranges:    ${(split.ms / 1000).toFixed(1)} s  (${split.invocations} invocations, at most ${split.maxInFlight} at once)`);
  console.log(`ratio: ${(single.ms / split.ms).toFixed(2)}x faster to all pages`);
} finally {
  await moto.stop();
}
