/**
 * `npm run invoke` end to end: the built artifact, run in a fresh process with the template's
 * environment, against the local S3 server, with the sample events of events/.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildAll, DIST } from '../tools/build.js';
import { functionEnvironment, invokeBuilt } from '../tools/invoke.js';
import { LambdaContainer } from '../tools/lambda-container.js';
import { runtimeMajor } from '../tools/lambda-node.js';
import { shapeUnavailable } from '../tools/lambda-shape.js';
import { loadTemplate, parseTemplate, ROOT, templateFunction } from '../tools/template.js';
import { CORPUS, createBucket, getText, listKeys, putObject, resetS3, s3Endpoint, testS3Client } from './support/s3.js';

const BUCKET = 'example-bucket';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The last line of stdout: the result or Lambda's error payload. */
  payload: any;
}

function invoke(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'invoke', '--', ...args], { cwd: ROOT, env: { ...process.env, S3_ENDPOINT: s3Endpoint(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      let payload: unknown;
      try {
        payload = JSON.parse(last);
      } catch {
        payload = undefined;
      }
      resolve({ code, stdout, stderr, payload });
    });
  });
}

const manifestOf = async (s3: S3Client, key: string) => JSON.parse(await getText(s3, BUCKET, `rendered/${key}/manifest.json`));

/**
 * A one-function template whose built artifact is `source`, written to dist/<logicalId>/ as the
 * module its Handler names; dispose() removes it.
 */
async function scratchFunction(logicalId: string, properties: string, source: string) {
  const template = parseTemplate(`
Transform: AWS::Serverless-2016-10-31
Resources:
  ${logicalId}:
    Type: AWS::Serverless::Function
    Properties: ${properties}
`);
  const fn = templateFunction(template, logicalId);
  const dir = join(DIST, logicalId);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${fn.handler.split('.')[0]}.mjs`), source);
  return { template, fn, dispose: () => rm(dir, { recursive: true, force: true }) };
}

describe('npm run invoke', () => {
  let s3: S3Client;
  beforeAll(async () => {
    s3 = testS3Client();
    // The first test builds through `npm run invoke`; the others reuse this build (--skip-build).
    await buildAll({ only: ['RenderPdfFunction', 'ReprocessFunction'] });
  });
  beforeEach(async () => {
    await resetS3();
    await createBucket(s3, BUCKET);
  });

  it('renders events/s3-put.json with the built bundle: a complete manifest in S3, a REPORT line', async () => {
    await putObject(s3, BUCKET, 'incoming/sample.pdf', await readFile(join(CORPUS, 'tracemonkey-paper-14p.pdf')));
    const run = await invoke(['RenderPdfFunction', 'events/s3-put.json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.payload).toEqual({ records: [{ bucket: BUCKET, key: 'incoming/sample.pdf', outcome: 'rendered', status: 'complete' }] });
    const manifest = await manifestOf(s3, 'sample.pdf');
    expect(manifest.status).toBe('complete');
    expect(manifest.pageCount).toBe(14);
    expect(manifest.options).toMatchObject({ format: 'png', dpi: 150 });
    const pages = (await listKeys(s3, BUCKET, 'rendered/sample.pdf/')).filter((k) => k.endsWith('.png'));
    expect(pages).toHaveLength(14);
    // Lambda's log lines, with the template's MemorySize and the child's peak memory.
    expect(run.stderr).toMatch(/^START RequestId: [0-9a-f-]{36} Version: \$LATEST$/m);
    const memorySize = loadTemplate().Parameters!['MemorySize']!.Default;
    const report = run.stderr.match(
      new RegExp(`^REPORT RequestId: [0-9a-f-]{36}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: ${memorySize} MB\\tMax Memory Used: (\\d+) MB\\tInit Duration: [\\d.]+ ms$`, 'm'),
    );
    expect(report, run.stderr).not.toBeNull();
    expect(Number(report![1])).toBeGreaterThan(30);
  });

  it('decodes a URL-encoded key (spaces, "+", unicode) as S3 sends it', async () => {
    const key = 'incoming/reports 2024/Q3 report+draft résumé.pdf';
    await putObject(s3, BUCKET, key, await readFile(join(CORPUS, 'arabic-rotations-4p.pdf')));
    const run = await invoke(['RenderPdfFunction', 'events/s3-put-encoded-key.json', '--skip-build']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.payload.records).toEqual([{ bucket: BUCKET, key, outcome: 'rendered', status: 'complete' }]);
    const manifest = await manifestOf(s3, 'reports 2024/Q3 report+draft résumé.pdf');
    expect(manifest.status).toBe('complete');
    expect(manifest.pageCount).toBe(4);
  });

  it('ignores keys outside INPUT_PREFIX and keys not ending in .pdf', async () => {
    const pdf = await readFile(join(CORPUS, 'arabic-rotations-4p.pdf'));
    // The objects exist: what stops them is the handler's guard, not a missing object.
    await putObject(s3, BUCKET, 'rendered/copies/sample.pdf', pdf);
    await putObject(s3, BUCKET, 'incoming/notes.txt', pdf);
    for (const [eventFile, key] of [
      ['events/s3-put-output-key.json', 'rendered/copies/sample.pdf'],
      ['events/s3-put-not-pdf.json', 'incoming/notes.txt'],
    ] as const) {
      const run = await invoke(['RenderPdfFunction', eventFile, '--skip-build']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.payload.records, eventFile).toEqual([{ bucket: BUCKET, key, outcome: 'ignored', reason: expect.any(String) }]);
    }
    expect(await listKeys(s3, BUCKET)).toEqual(['incoming/notes.txt', 'rendered/copies/sample.pdf']);
  });

  it('takes a `sam local invoke --env-vars` file: per function, and "Parameters" for all', async () => {
    await putObject(s3, BUCKET, 'incoming/sample.pdf', await readFile(join(CORPUS, 'arabic-rotations-4p.pdf')));
    const envFile = join(tmpdir(), `env-vars-${process.pid}.json`);
    await writeFile(envFile, JSON.stringify({ Parameters: { FORMAT: 'jpeg' }, RenderPdfFunction: { DPI: '72' }, ReprocessFunction: { DPI: '300' } }));
    const run = await invoke(['RenderPdfFunction', 'events/s3-put.json', '--env-vars', envFile, '--skip-build']).finally(() => rm(envFile, { force: true }));
    expect(run.code, run.stderr).toBe(0);
    const manifest = await manifestOf(s3, 'sample.pdf');
    expect(manifest.options).toMatchObject({ format: 'jpeg', dpi: 72 });
    expect(manifest.pages[0].key).toMatch(/page-0001\.jpg$/);
  });

  it('prints the error like Lambda and exits non-zero when the handler throws', async () => {
    // Nothing listens on port 9: every S3 call fails, a transient error the handler rethrows.
    const run = await invoke(['RenderPdfFunction', 'events/s3-put.json', '--skip-build'], { S3_ENDPOINT: 'http://127.0.0.1:9' });
    expect(run.code).not.toBe(0);
    expect(run.payload).toMatchObject({ errorType: expect.any(String), errorMessage: expect.stringContaining('failed transiently'), trace: expect.any(Array) });
    expect(run.stderr).toMatch(/^REPORT RequestId: .*\tStatus: error$/m);
  });

  it('runs the reprocess function with its schedule-less dry run', async () => {
    await putObject(s3, BUCKET, 'incoming/a.pdf', await readFile(join(CORPUS, 'arabic-rotations-4p.pdf')));
    const run = await invoke(['ReprocessFunction', 'events/reprocess-dry-run.json', '--skip-build']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.payload).toMatchObject({ bucket: BUCKET, prefix: 'incoming/', dryRun: true, scanned: 1, dispatched: 0 });
    expect(await listKeys(s3, BUCKET, 'rendered/')).toEqual([]);
  });

  it('runs the scheduled reprocess, whose requests reach the render function through the local render queue; a second run finds nothing to do', async () => {
    await putObject(s3, BUCKET, 'incoming/chart.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    await putObject(s3, BUCKET, 'incoming/locked.pdf', await readFile(join(CORPUS, 'password-libreoffice.pdf')));
    // Just uploaded: a run with the template's settings leaves them to their own S3 events.
    const early = await invoke(['ReprocessFunction', 'events/schedule.json', '--skip-build']);
    expect(early.payload).toMatchObject({ counts: { missing: 2 }, recent: 2, dispatched: 0 });
    // As if they had been there for a while.
    const envFile = join(tmpdir(), `env-vars-recent-${process.pid}.json`);
    await writeFile(envFile, JSON.stringify({ ReprocessFunction: { RECENT_UPLOAD_SECONDS: '0' } }));
    const first = await invoke(['ReprocessFunction', 'events/schedule.json', '--env-vars', envFile, '--skip-build']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.payload).toMatchObject({ dispatcher: 'queue', counts: { missing: 2 }, dispatched: 2, dispatchFailures: 0 });
    expect((await manifestOf(s3, 'chart.pdf')).status).toBe('complete');
    expect((await manifestOf(s3, 'locked.pdf')).error.code).toBe('ENCRYPTED');

    const second = await invoke(['ReprocessFunction', 'events/schedule.json', '--env-vars', envFile, '--skip-build']).finally(() => rm(envFile, { force: true }));
    expect(second.payload).toMatchObject({ counts: { missing: 0, stale: 0, partial: 0, ok: 1, failed: 1 }, dispatched: 0, settled: 1 });
  });

  it('sets what Lambda sets from LoggingConfig: JSON format at the ApplicationLogLevel parameter', () => {
    const template = loadTemplate();
    for (const logicalId of ['RenderPdfFunction', 'ReprocessFunction']) {
      const env = functionEnvironment(template, templateFunction(template, logicalId), {}, {});
      expect(env, logicalId).toMatchObject({ AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'INFO' });
    }
  });

  it('runs the artifact on the Node of the template\'s runtime when LAMBDA_NODE names it (CI: .ci/run), else on this one', async () => {
    const { template, fn, dispose } = await scratchFunction(
      'VersionFunction',
      '{ Runtime: nodejs24.x, Handler: version.handler, Timeout: 10, MemorySize: 256 }',
      'export const handler = async () => ({ node: process.version, runtime: process.env.AWS_EXECUTION_ENV });',
    );
    try {
      const outcome = await invokeBuilt(template, fn, {});
      expect(outcome.ok).toBe(true);
      const { node, runtime } = outcome.payload as { node: string; runtime: string };
      expect(runtime).toBe('AWS_Lambda_nodejs24.x');
      if (process.env['LAMBDA_NODE']) {
        expect(node.startsWith(`v${runtimeMajor(templateFunction(loadTemplate(), 'RenderPdfFunction').runtime)}.`), node).toBe(true);
      } else {
        console.warn(`LAMBDA_NODE is not set: the artifact ran on this machine's Node ${process.version}, not the runtime's`);
        expect(node).toBe(process.version);
      }
    } finally {
      await dispose();
    }
  });

  it('stops a handler at its Timeout, as Lambda does', async () => {
    const { template, fn, dispose } = await scratchFunction(
      'SlowFunction',
      '{ Runtime: nodejs24.x, Handler: slow.handler, Timeout: 1, MemorySize: 256 }',
      'export const handler = async (event, context) => { console.log("remaining", context.getRemainingTimeInMillis()); await new Promise(() => setInterval(() => {}, 1000)); };',
    );
    try {
      const started = Date.now();
      const outcome = await invokeBuilt(template, fn, {});
      expect(Date.now() - started).toBeLessThan(5000);
      expect(outcome.ok).toBe(false);
      expect(outcome.payload).toEqual({ errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 1.00 seconds' });
      expect(outcome.report).toMatch(/\tMemory Size: 256 MB\t.*\tStatus: timeout$/);
    } finally {
      await dispose();
    }
  });

  it('runs under the function\'s memory: an invocation that needs more is killed as Runtime.OutOfMemory; a warm container serves the next', async () => {
    const unavailable = shapeUnavailable();
    if (unavailable) {
      console.warn(`skipped: ${unavailable}`);
      return;
    }
    const { template, fn, dispose } = await scratchFunction(
      'HungryFunction',
      '{ Runtime: nodejs24.x, Handler: hungry.handler, Timeout: 60, MemorySize: 256 }',
      // Touches every page of MB megabytes, then returns.
      'export const handler = async ({ mb }) => { const b = Buffer.alloc(mb * 1048576, 1); return { mb, sum: b[b.length - 1] }; };',
    );
    try {
      const { container } = await LambdaContainer.start(template, fn);
      const small = await container.invoke({ mb: 64 });
      expect(small.payload).toEqual({ mb: 64, sum: 1 });
      // The cgroup's peak: the 64 MB buffer and the runtime, under the limit.
      expect(small.peakBytes).toBeGreaterThan(64 * 2 ** 20);
      expect(small.peakBytes).toBeLessThan(256 * 2 ** 20);
      expect(small.report).toMatch(/\tMemory Size: 256 MB\tMax Memory Used: \d+ MB\tInit Duration/);
      // Same process, second invocation: no Init Duration.
      const again = await container.invoke({ mb: 32 });
      expect(again.ok).toBe(true);
      expect(again.report).not.toMatch(/Init Duration/);
      const big = await container.invoke({ mb: 400 });
      expect(big.ok).toBe(false);
      expect(big.outOfMemory).toBe(true);
      expect(big.payload).toMatchObject({ errorType: 'Runtime.OutOfMemory', errorMessage: expect.stringContaining('signal: killed') });
      const final = await container.close();
      expect(final).toMatchObject({ enforced: true, memoryMb: 256, oomKills: 1 });
    } finally {
      await dispose();
    }
  });
});
