/**
 * npm run bench:fanout [-- file.pdf] [--fanout-pages 50] [--concurrency 2] [--dpi 150]
 *
 * Time to all pages of one long document, fanned out into ranges against one invocation, in the
 * same run. The bundled render handler is driven from a local render queue (moto's SQS) by the
 * local event source mapping (tools/local-queue.ts); "parallel invocations" are concurrent
 * handler runs in this one process, on this machine's cores: on Lambda each range would have
 * its own vCPU(s), so the fanned-out time here is an upper bound of what Lambda gives.
 */
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { createS3Client } from '../lib/s3/client.js';
import { createSqsClient } from '../lib/sqs/client.js';
import { buildAll } from '../tools/build.js';
import { createRenderQueues, notifyQueueOnUpload, pollQueue } from '../tools/local-queue.js';
import { startMoto } from '../tools/moto.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'fanout-pages': { type: 'string', default: '50' },
    concurrency: { type: 'string', default: String(Math.max(2, cpus().length)) },
    dpi: { type: 'string', default: '150' },
  },
});
const file = positionals[0] ?? join(import.meta.dirname, '../../shared/corpus/freeculture-book-352p.pdf');
const concurrency = Number(values.concurrency);

const moto = await startMoto();
try {
  const endpoint = moto.endpoint;
  const s3 = createS3Client({ s3Endpoint: endpoint });
  const sqs = createSqsClient({ s3Endpoint: endpoint });
  const dir = (await buildAll({ only: ['RenderPdfFunction'] }))['RenderPdfFunction']!;
  const body = await readFile(file);
  let container = 0;

  /** One way of rendering the document: a fresh bucket, queue and handler; the time from upload to the last invocation's end. */
  async function timeRender(fanoutPages: number): Promise<{ ms: number; invocations: number; maxInFlight: number }> {
    const bucket = `bench-fanout-${fanoutPages}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const queues = await createRenderQueues(sqs, { name: `bench-${fanoutPages}` });
    await notifyQueueOnUpload(s3, bucket, 'incoming/', queues.queueArn);
    Object.assign(process.env, {
      S3_ENDPOINT: endpoint,
      RENDER_QUEUE_URL: queues.queueUrl,
      SOURCE_BUCKET: bucket,
      FANOUT_PAGES: String(fanoutPages),
      DPI: values.dpi,
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    const { handler } = (await import(`${pathToFileURL(join(dir, 'handler.mjs')).href}?container=${++container}`)) as {
      handler: (event: SQSEvent, context: object) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] }>;
    };
    // S3's test event for the new notification: not part of the render.
    await pollQueue({ sqs, queues, concurrency: 1, idleMs: 100, invoke: (event) => handler(event, {}) });
    const started = performance.now();
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'incoming/doc.pdf', Body: body }));
    const deadline = Date.now() + 900_000;
    const run = await pollQueue({ sqs, queues, concurrency, idleMs: 200, invoke: (event) => handler(event, { getRemainingTimeInMillis: () => deadline - Date.now() }) });
    if (run.failures > 0) throw new Error(`${run.failures} invocation(s) failed`);
    return { ms: performance.now() - started - 200, invocations: run.invocations, maxInFlight: run.maxInFlight };
  }

  const fanout = Number(values['fanout-pages']);
  const single = await timeRender(0);
  const split = await timeRender(fanout);
  console.log(`${file}, ${values.dpi} dpi, ${concurrency} concurrent invocations on ${cpus().length} cores (one process)`);
  console.log(`one invocation:              ${(single.ms / 1000).toFixed(1)} s`);
  console.log(`fan-out, ${fanout}-page ranges:    ${(split.ms / 1000).toFixed(1)} s  (${split.invocations} invocations, at most ${split.maxInFlight} at once)`);
  console.log(`ratio: ${(single.ms / split.ms).toFixed(2)}x faster to all pages`);
} finally {
  await moto.stop();
}
