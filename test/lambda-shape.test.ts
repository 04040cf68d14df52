/**
 * The corpus and the hostile inputs through the built render function, as Lambda runs it at the
 * template's default MemorySize: one warm container (tools/lambda-container.ts) in a cgroup with
 * MemorySize/1769 vCPU and a MemorySize memory limit (tools/lambda-shape.ts), events from the
 * local S3 server, the template's settings. Every file must reach the outcome MANIFEST.tsv
 * expects, with zero OOM kills; the cgroup's peak memory per file is printed.
 *
 * Left out: the 30000x30000 px giant image of test/fixtures/generated-pdfs.ts, which alone takes
 * about 200 s (test/engine/hostile.test.ts renders it, unshaped).
 *
 * Every document renders its first MAX_PAGES_HERE pages (MAX_PAGES, as a deployment may set
 * it): memory is a matter of the largest page, not of the page count (a leak from page to page
 * is test/engine/memory.test.ts's), and all pages of the long documents would take the run
 * from about 3 to over 7 minutes at 1.16 vCPU.
 *
 * Slow (minutes): runs when LAMBDA_SHAPE_TESTS=1, which .ci/run sets.
 */
import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3PutEvent } from '../lib/s3/event.js';
import { buildAll } from '../tools/build.js';
import { LambdaContainer, type InvokeOutcome } from '../tools/lambda-container.js';
import { mb, type ShapeReport } from '../tools/lambda-shape.js';
import { loadTemplate, localContext, resolveIntrinsics, templateFunction } from '../tools/template.js';
import { GENERATED_PDFS } from './fixtures/generated-pdfs.js';
import { readCorpusManifest, type CorpusEntry } from './engine/helpers.js';
import { createBucket, getText, resetS3, s3Endpoint, testS3Client } from './support/s3.js';

const ENABLED = process.env['LAMBDA_SHAPE_TESTS'] === '1';
const template = loadTemplate();
const fn = templateFunction(template, 'RenderPdfFunction');
const ctx = localContext(template, {}, {});
const BUCKET = ctx.parameters['BucketName']!;
// LAMBDA_SHAPE_MEMORY_MB tries another size (what a MemorySize change would do); default the template's.
const MEMORY_MB = Number(process.env['LAMBDA_SHAPE_MEMORY_MB'] || resolveIntrinsics(fn.memorySize, template, ctx));
const MAX_PAGES_HERE = 8;
/**
 * The template's environment with MAX_PAGES lowered, and thumbnails and page text on (their
 * display list and pixmaps must fit too): --env-vars overrides, as sam local takes.
 */
const ENV_VARS = { RenderPdfFunction: { MAX_PAGES: String(MAX_PAGES_HERE), THUMBNAIL_WIDTH: '256', PAGE_TEXT: 'true' } };

const UNREADABLE_CODES: Record<string, string> = {
  'not-a-pdf.pdf': 'NOT_PDF',
  'zero-pages.pdf': 'NO_PAGES',
  'unreadable-brotli-filter.pdf': 'CORRUPT',
  'unreadable-page-tree.pdf': 'CORRUPT',
};

interface Manifest {
  status: string;
  pageCount?: number;
  pages: { number: number; error?: { code: string }; thumbnail?: { width: number }; text?: { chars: number } }[];
  error?: { code: string };
}

/** Keeps the function's last log lines, for a failure message. */
class LogTail extends Writable {
  private lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    this.lines = this.lines.slice(-40);
    done();
  }
  text(): string {
    return this.lines.join('\n');
  }
}

describe.runIf(ENABLED)(`the built render function in its Lambda shape (${MEMORY_MB} MB, ${(MEMORY_MB / 1769).toFixed(2)} vCPU)`, () => {
  let s3: S3Client;
  let container: LambdaContainer | undefined;
  const logs = new LogTail();
  const peaks: { name: string; peakBytes: number | undefined; ms: number }[] = [];
  const finals: ShapeReport[] = [];
  let scratch: string;

  beforeAll(async () => {
    await buildAll({ only: ['RenderPdfFunction'] });
    await resetS3();
    s3 = testS3Client();
    await createBucket(s3, BUCKET);
    scratch = await mkdtemp(join(tmpdir(), 'lambda-shape-'));
  }, 120_000);

  afterAll(async () => {
    if (container) finals.push(await container.close());
    await rm(scratch, { recursive: true, force: true });
    if (peaks.length === 0) return;
    const rows = [...peaks].sort((a, b) => (b.peakBytes ?? 0) - (a.peakBytes ?? 0)).map((p) => `  ${mb(p.peakBytes).padStart(8)}  ${String(Math.round(p.ms)).padStart(7)} ms  ${p.name}`);
    console.log(`peak memory per file in the ${MEMORY_MB} MB cgroup (one warm container${finals.length > 1 ? `, restarted ${finals.length - 1} times` : ''}):\n${rows.join('\n')}`);
  });

  /** Uploads a file under InputPrefix and sends its S3 event to the warm container. */
  async function render(name: string, path: string): Promise<{ outcome: InvokeOutcome; manifest?: Manifest }> {
    const key = `${ctx.parameters['InputPrefix']}${name}`;
    // Multipart: moto takes a 50 MB single streamed PUT in about 14 s (aws-chunked), in parts in 0.8 s.
    await new Upload({ client: s3, params: { Bucket: BUCKET, Key: key, Body: createReadStream(path) }, partSize: 16 * 2 ** 20, queueSize: 2 }).done();
    if (!container) {
      const started = await LambdaContainer.start(template, fn, { memoryMb: MEMORY_MB, envVars: ENV_VARS, extraEnv: { S3_ENDPOINT: s3Endpoint() }, logs });
      if (started.initError) throw new Error(`init failed: ${JSON.stringify(started.initError.payload)}\n${logs.text()}`);
      container = started.container;
    }
    const began = performance.now();
    const outcome = await container.invoke(s3PutEvent(BUCKET, key));
    peaks.push({ name, peakBytes: outcome.peakBytes, ms: performance.now() - began });
    console.log(`${name}: ${mb(outcome.peakBytes)} peak, ${Math.round(performance.now() - began)} ms, ${outcome.ok ? 'ok' : JSON.stringify(outcome.payload)}`);
    if (!outcome.ok) {
      // A dead container is replaced, so one failure does not take the rest down with it.
      finals.push(await container.close());
      container = undefined;
      return { outcome };
    }
    const manifest = JSON.parse(await getText(s3, BUCKET, `${ctx.parameters['OutputPrefix']}${name}/manifest.json`)) as Manifest;
    return { outcome, manifest };
  }

  const expectAlive = (name: string, outcome: InvokeOutcome): void => {
    expect(outcome.outOfMemory, `${name}: killed at ${MEMORY_MB} MB\n${logs.text()}`).toBe(false);
    expect(outcome.ok, `${name}: ${JSON.stringify(outcome.payload)}\n${logs.text()}`).toBe(true);
  };

  it('runs in an enforced cgroup (cgroups writable here)', async () => {
    const started = await LambdaContainer.start(template, fn, { memoryMb: MEMORY_MB, extraEnv: { S3_ENDPOINT: s3Endpoint() }, logs });
    const report = await started.container.close();
    expect(report).toMatchObject({ enforced: true, memoryMb: MEMORY_MB, oomKills: 0 });
  });

  it.each(readCorpusManifest().map((entry) => [entry.file, entry] as const))('corpus %s: the outcome MANIFEST.tsv expects', { timeout: 300_000 }, async (name, entry: CorpusEntry) => {
    const { outcome, manifest } = await render(name, entry.path);
    expectAlive(name, outcome);
    switch (entry.expected) {
      case 'renders':
      case 'broken-but-repairable':
        expect(manifest!.status, name).toBe('complete');
        expect(manifest!.pageCount, name).toBe(entry.pages);
        expect(manifest!.pages.filter((p) => !p.error).length, name).toBe(Math.min(entry.pages, MAX_PAGES_HERE));
        // Each rendered page has its thumbnail and its text, made within the same memory.
        for (const page of manifest!.pages.filter((p) => !p.error)) expect([page.thumbnail?.width, typeof page.text?.chars], `${name} page ${page.number}`).toEqual([256, 'number']);
        break;
      case 'needs-password':
        expect(manifest!.status).toBe('failed');
        expect(manifest!.error?.code).toBe('ENCRYPTED');
        break;
      case 'unreadable':
        expect(manifest!.status).toBe('failed');
        expect(manifest!.error?.code).toBe(UNREADABLE_CODES[name]);
        break;
    }
  });

  const hostile = Object.entries(GENERATED_PDFS).filter(([name]) => name !== 'giant-image-30000px');
  it.each(hostile)('hostile %s: no OOM kill, a manifest with every page settled', { timeout: 600_000 }, async (name, write) => {
    const path = join(scratch, `${name}.pdf`);
    await write(path);
    const { outcome, manifest } = await render(`${name}.pdf`, path);
    await rm(path, { force: true });
    expectAlive(name, outcome);
    // Rendered, or failed page by page with a code: never lost.
    expect(['complete', 'partial'], JSON.stringify(manifest).slice(0, 500)).toContain(manifest!.status);
    expect(manifest!.pages.length).toBe(Math.min(manifest!.pageCount!, MAX_PAGES_HERE));
  });

  it('killed nothing: zero OOM kills over the whole run', async () => {
    if (container) finals.push(await container.close());
    container = undefined;
    expect(finals.reduce((sum, r) => sum + r.oomKills, 0)).toBe(0);
    expect(finals.every((r) => r.enforced)).toBe(true);
  });
});

// Keeps the file a test file when the slow suite is off (vitest fails a file with no tests).
describe.skipIf(ENABLED)('the built render function in its Lambda shape', () => {
  it.skip('runs with LAMBDA_SHAPE_TESTS=1 (.ci/run sets it)', () => undefined);
});

