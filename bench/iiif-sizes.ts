/**
 * POWERTOOLS_LOG_LEVEL=SILENT POWERTOOLS_METRICS_DISABLED=true npx tsx bench/iiif-sizes.ts
 *
 * Where a first info.json finds its page's size (lib/iiif/handler.ts pageBox): the eager
 * manifest (pages[].box, one GetObject) against the document opened (the source leased, a fresh
 * MuPDF loading every page's box and the outline). In process, not in the Lambda shape: a fresh
 * page handler per request (a cold container's memory), one warm process (MuPDF compiled, the
 * source in /tmp after the first round), moto on loopback; tracemonkey-paper-14p and
 * freeculture-book-352p, 5 rounds each, medians.
 */
import { readFile } from 'node:fs/promises';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startMoto } from '../tools/moto.js';
import { loadConfig } from '../lib/config/env.js';
import { loadPageConfig } from '../lib/config/page.js';
import { createS3Client } from '../lib/s3/client.js';
import { createPageHandler } from '../lib/on-demand/handler.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { s3PutEvent } from '../lib/s3/event.js';
import { corpusFile } from '../tools/corpus.js';
import { stopOnSignals } from '../tools/cleanup.js';
import { functionUrlEvent } from '../tools/function-url.js';
stopOnSignals();
const moto = await startMoto();
const B = 'bench-bucket';
const config = loadConfig({ S3_ENDPOINT: moto.endpoint, SOURCE_BUCKET: B, DPI: '20' });
const s3 = createS3Client(config);
await s3.send(new CreateBucketCommand({ Bucket: B }));
const rows: string[] = [];
for (const file of ['tracemonkey-paper-14p.pdf', 'freeculture-book-352p.pdf']) {
  const bytes = await readFile(corpusFile(file));
  const samples: Record<string, number[]> = { eager: [], opened: [] };
  for (let round = 0; round < 5; round++) {
    const eagerKey = `incoming/e${round}/${file}`, openedKey = `incoming/o${round}/${file}`;
    for (const key of [eagerKey, openedKey]) await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: bytes }));
    await createRenderHandler(config, s3)(s3PutEvent(B, eagerKey));
    // A fresh handler each time: a cold container's memo, the source not in /tmp.
    for (const [kind, key] of [['eager', eagerKey], ['opened', openedKey]] as const) {
      const handler = createPageHandler(loadPageConfig({ S3_ENDPOINT: moto.endpoint, SOURCE_BUCKET: B, IIIF_BASE_URL: 'https://x' }), { s3 });
      const t = performance.now();
      const r = await handler(functionUrlEvent('GET', `/iiif/3/${encodeURIComponent(key)};2/info.json`));
      if (r.statusCode !== 200) throw new Error(String(r.body));
      samples[kind]!.push(performance.now() - t);
    }
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!.toFixed(0);
  rows.push(`${file}: first info.json, median of 5: eager manifest ${med(samples['eager']!)} ms, document opened ${med(samples['opened']!)} ms`);
}
console.log(rows.join('\n'));
await moto.stop();
process.exit(0);
