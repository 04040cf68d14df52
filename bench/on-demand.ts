/**
 * npm run bench:on-demand [-- file.pdf …] [--rounds 2] [--width 800] [--format png[,webp,…]]
 *
 * The page function's latency in its Lambda shape: the built artifact in a Lambda container
 * (tools/lambda-container.ts: the template's PageMemorySize and its vCPU share, a cgroup when
 * the machine has one), handed Function URL events, against a local S3 (moto_server). For
 * each document and round:
 *   - cold: a new container, then page 1: from the container's start to the first byte of the
 *     image (the 302, then the presigned GET);
 *   - warm miss: page 2 in the same container: the source is in its /tmp, the page is drawn;
 *   - warm hit: page 2 again: the variant is in S3.
 * Medians and p95 over every document and round, and what each is made of (init, download,
 * render, store, the redirect's GET), from the function's own log line. With several formats
 * (`--format png,webp`), each round asks each format in turn (a container each), and the
 * formats' medians are compared in the same run: each one's over the first's.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { everyService } from '../lib/aws/endpoint.js';
import type { PageResult } from '../lib/on-demand/handler.js';
import { createS3Client } from '../lib/s3/client.js';
import { buildAll } from '../tools/build.js';
import { CORPUS_DIR } from '../tools/corpus.js';
import { functionUrlEvent } from '../tools/function-url.js';
import { LambdaContainer } from '../tools/lambda-container.js';
import { shapeUnavailable } from '../tools/lambda-shape.js';
import { startMoto } from '../tools/moto.js';
import { loadTemplate, localContext, templateFunction } from '../tools/template.js';
import { stopOnSignals } from '../tools/cleanup.js';

// Ctrl-C and SIGTERM stop what it started (moto_server, containers) on the way out (tools/cleanup.ts).
stopOnSignals();

const CORPUS = CORPUS_DIR;
/** Papers, a scan, a 9000 px image and a long book: each with two pages or more. */
const DEFAULT_FILES = ['tracemonkey-paper-14p.pdf', 'arabic-rotations-4p.pdf', 'federal-register-15p.pdf', 'ccitt-scan-18p-rotated.pdf', 'multipage-9000px-image.pdf', 'freeculture-book-352p.pdf'];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '2' },
    width: { type: 'string', default: '800' },
    format: { type: 'string', default: 'png' },
  },
});
const rounds = Number(values.rounds);
const FORMATS = ['png', 'jpeg', 'webp', 'avif'] as const;
const formats = values.format.split(',').map((f) => (f.trim() === 'jpg' ? 'jpeg' : f.trim()));
const unknownFormat = formats.find((f) => !(FORMATS as readonly string[]).includes(f));
if (unknownFormat !== undefined || formats.length === 0) throw new Error(`--format ${values.format}: expected one or more of ${FORMATS.join(',')}, comma-separated`);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds ${values.rounds}: expected 1 or more`);
const files = positionals.length > 0 ? positionals : DEFAULT_FILES.map((f) => join(CORPUS, f));

interface Sample {
  ms: number;
  parts: Record<string, number>;
}
type Path = 'cold' | 'miss' | 'hit';
const samplesOf = new Map<string, Record<Path, Sample[]>>(formats.map((f) => [f, { cold: [], miss: [], hit: [] }]));

const moto = await startMoto();
try {
  const template = loadTemplate();
  const fn = templateFunction(template, 'PageFunction');
  const bucket = localContext(template).parameters['BucketName']!;
  const s3 = createS3Client({ endpoints: everyService(moto.endpoint) });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await buildAll({ only: ['PageFunction'] });
  const extraEnv = { S3_ENDPOINT: moto.endpoint, POWERTOOLS_METRICS_DISABLED: 'true', POWERTOOLS_LOG_LEVEL: 'INFO' };

  for (const file of files) {
    const key = `incoming/${basename(file)}`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(file) }));
    for (let round = 0; round < rounds; round++) for (const format of formats) {
      const samples = samplesOf.get(format)!;
      // A query no round shared: every round's first requests are misses.
      const query = (page: number) => `/${encodeURIComponent(key)}?page=${page}&width=${Number(values.width) + round}&format=${format}`;
      let log = '';
      const logs = new Writable({
        write(chunk: Buffer, _encoding, done) {
          log += chunk.toString();
          done();
        },
      });
      const started = performance.now();
      const { container, initError } = await LambdaContainer.start(template, fn, { extraEnv, logs });
      if (initError) throw new Error(`PageFunction did not start: ${JSON.stringify(initError.payload)}`);
      const initMs = performance.now() - started;
      /** One request, and the first byte of the image it redirects to. */
      const request = async (path: string): Promise<Sample> => {
        const from = log.length;
        const begun = performance.now();
        const outcome = await container.invoke(functionUrlEvent('GET', path));
        const result = outcome.payload as PageResult;
        if (!outcome.ok || result.statusCode !== 302) throw new Error(`${path}: ${JSON.stringify(outcome.payload)}`);
        const answered = performance.now();
        const image = await fetch(String(result.headers!['location']));
        const firstByte = performance.now();
        await image.arrayBuffer();
        for (let i = 0; i < 50 && !log.slice(from).includes('"page request"'); i++) await new Promise((r) => setTimeout(r, 10));
        const line = log.slice(from).split('\n').find((l) => l.includes('"page request"')) ?? '{}';
        const fields = JSON.parse(line) as Record<string, number>;
        const parts: Record<string, number> = { function: answered - begun, redirectGet: firstByte - answered };
        for (const name of ['downloadMs', 'renderMs', 'storeMs']) if (typeof fields[name] === 'number') parts[name.replace(/Ms$/, '')] = fields[name]!;
        return { ms: firstByte - begun, parts };
      };
      const cold = await request(query(1));
      samples.cold.push({ ms: initMs + cold.ms, parts: { init: initMs, ...cold.parts } });
      samples.miss.push(await request(query(2)));
      samples.hit.push(await request(query(2)));
      const report = await container.close();
      if (round === 0) console.error(`${basename(file)} ${format}: cold ${Math.round(samples.cold.at(-1)!.ms)} ms, warm miss ${Math.round(samples.miss.at(-1)!.ms)} ms, hit ${Math.round(samples.hit.at(-1)!.ms)} ms (${report.enforced ? 'cgroup enforced' : 'no cgroup'})`);
    }
  }

  const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const shape = shapeUnavailable();
  const memory = String(localContext(template).parameters['PageMemorySize']);
  const median = (list: Sample[]): number => quantile(list.map((s) => s.ms).sort((a, b) => a - b), 0.5);
  console.log(`\nPageFunction at ${memory} MB (${shape ? `not shaped: ${shape}` : 'Lambda shape: cgroup memory and CPU'}), ${files.length} documents x ${rounds} rounds, width=${values.width} format=${formats.join(',')}\n`);
  console.log(`| format | path | median ms | p95 ms |${formats.length > 1 ? ` median vs ${formats[0]} |` : ''} median of its parts (ms) |`);
  console.log(`|---|---|---:|---:|${formats.length > 1 ? '---:|' : ''}---|`);
  for (const [format, samples] of samplesOf) for (const [name, list] of Object.entries(samples) as [Path, Sample[]][]) {
    const sorted = list.map((s) => s.ms).sort((a, b) => a - b);
    const ratio = formats.length > 1 ? ` ${(median(list) / median(samplesOf.get(formats[0]!)![name])).toFixed(2)} |` : '';
    const partNames = [...new Set(list.flatMap((s) => Object.keys(s.parts)))];
    const parts = partNames.map((p) => {
      const values = list.map((s) => s.parts[p]).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
      return `${p} ${Math.round(quantile(values, 0.5))}`;
    });
    const label = { cold: 'cold start to first byte', miss: 'warm miss (source in /tmp)', hit: 'warm hit' }[name];
    console.log(`| ${format} | ${label} | ${Math.round(quantile(sorted, 0.5))} | ${Math.round(quantile(sorted, 0.95))} |${ratio} ${parts.join(', ')} |`);
  }
} finally {
  await moto.stop();
}
