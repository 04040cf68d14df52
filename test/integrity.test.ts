/**
 * Outputs that are never wrong (docs/contract.md): immutable generations, the manifest
 * committed by compare-and-swap, deadline-aware pages, and hopeless inputs settled without a
 * retry, against the local S3 (moto), with AWS's answers played by a loopback proxy.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as mupdf from 'mupdf';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Config } from '../lib/config/env.js';
import { isPageFailure, type Manifest } from '../lib/job/manifest.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { createS3Client } from '../lib/s3/client.js';
import { s3PutEvent } from '../lib/s3/event.js';
import { writeManySegmentsPdf } from './fixtures/generated-pdfs.js';
import { useFaultProxy } from './support/fault-proxy.js';
import { sqsEventOf } from './support/in-process-dispatcher.js';
import type { WorkQueue } from '../lib/sqs/work-queue.js';
import { workMessage, type WorkRequest } from '../lib/work/messages.js';
import { CORPUS, createBucket, getBytes, listKeys, putObject, resetS3, testConfig, testS3Client } from './support/s3.js';
import { readV2Manifest, renderedPages } from './support/manifests.js';

const BUCKET = 'uploads';
const ENV = { DPI: '40', SOURCE_BUCKET: BUCKET };
const TRACEMONKEY = `${CORPUS}tracemonkey-paper-14p.pdf`;
const ARABIC = `${CORPUS}arabic-rotations-4p.pdf`;
const MATPLOTLIB = `${CORPUS}matplotlib-type3.pdf`;

let s3: S3Client;
let config: Config;

beforeEach(async () => {
  await resetS3();
  config = testConfig(ENV);
  s3 = testS3Client(config);
  await createBucket(s3, BUCKET);
});

async function upload(key: string, file: string): Promise<{ etag: string; versionId?: string }> {
  return putObject(s3, BUCKET, key, await readFile(file));
}

const manifestAt = (key: string): Promise<Manifest> => readV2Manifest(s3, BUCKET, key);

/**
 * The final state a reader may rely on: the manifest describes the object now under the key;
 * every page it lists exists, decodes to the listed size and carries the current etag and
 * generation; nothing of another generation is left under the prefix.
 */
async function expectConsistent(sourceKey: string, prefix: string): Promise<Manifest> {
  const manifest = await manifestAt(`${prefix}manifest.json`);
  const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: sourceKey }));
  expect(manifest.source.etag).toBe(head.ETag!.replace(/"/g, ''));
  expect(manifest.status).toBe('complete');
  for (const page of renderedPages(manifest)) {
    const png = PNG.sync.read(Buffer.from(await getBytes(s3, BUCKET, page.key)));
    expect([png.width, png.height]).toEqual([page.width, page.height]);
    const meta = (await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: page.key }))).Metadata;
    expect(meta).toMatchObject({ 'source-etag': manifest.source.etag, generation: manifest.generation });
  }
  expect(await listKeys(s3, BUCKET, prefix)).toEqual([...renderedPages(manifest).map((p) => p.key), `${prefix}manifest.json`].sort());
  return manifest;
}

/** Resolves once `prefix` holds at least one key (a render is under way). */
async function firstOutput(prefix: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if ((await listKeys(s3, BUCKET, prefix)).length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`nothing appeared under ${prefix}`);
}

describe('generations and the compare-and-swap commit', () => {
  it('a late event for an old version (versioned bucket) changes nothing: the manifest and pages stay the current ones', async () => {
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
    const v1 = await upload('incoming/v.pdf', TRACEMONKEY);
    const v2 = await upload('incoming/v.pdf', ARABIC);
    const handler = createRenderHandler(config, s3);
    await handler(s3PutEvent(BUCKET, 'incoming/v.pdf', { versionId: v2.versionId!, eTag: v2.etag }));
    const before = await expectConsistent('incoming/v.pdf', 'rendered/v.pdf/');
    // S3 delivers at least once and out of order: v1's event, with and without its etag.
    for (const late of [s3PutEvent(BUCKET, 'incoming/v.pdf', { versionId: v1.versionId!, eTag: v1.etag }), s3PutEvent(BUCKET, 'incoming/v.pdf', { versionId: v1.versionId! })]) {
      expect((await handler(late)).records[0]).toMatchObject({ outcome: 'superseded' });
    }
    const after = await expectConsistent('incoming/v.pdf', 'rendered/v.pdf/');
    expect(after).toEqual(before);
    expect(after.pageCount).toBe(4);
  });

  it('a new upload while the old one renders: the old render stops as superseded, removes its own pages, and the new one commits', async () => {
    const slow = testConfig({ ...ENV, DPI: '150' });
    await upload('incoming/u.pdf', TRACEMONKEY);
    const oldRender = createRenderHandler(slow, s3)(s3PutEvent(BUCKET, 'incoming/u.pdf'));
    await firstOutput('rendered/u.pdf/');
    await upload('incoming/u.pdf', ARABIC);
    expect((await oldRender).records[0]).toMatchObject({ outcome: 'superseded' });
    expect(await listKeys(s3, BUCKET, 'rendered/u.pdf/')).toEqual([]);
    await createRenderHandler(slow, s3)(s3PutEvent(BUCKET, 'incoming/u.pdf'));
    expect((await expectConsistent('incoming/u.pdf', 'rendered/u.pdf/')).pageCount).toBe(4);
  });

  it('a new upload rendered and committed first: the old render, finishing later, leaves the manifest and removes only its own pages', async () => {
    await upload('incoming/w.pdf', TRACEMONKEY);
    const oldRender = createRenderHandler(testConfig({ ...ENV, DPI: '150' }), s3)(s3PutEvent(BUCKET, 'incoming/w.pdf'));
    await firstOutput('rendered/w.pdf/');
    await upload('incoming/w.pdf', MATPLOTLIB);
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/w.pdf'));
    expect((await oldRender).records[0]!.outcome).toBe('superseded');
    expect((await expectConsistent('incoming/w.pdf', 'rendered/w.pdf/')).pageCount).toBe(1);
  });

  it('a newer render that commits between our source check and our manifest write wins: the compare-and-swap refuses ours', async () => {
    await upload('incoming/r.pdf', ARABIC);
    let interleaved = false;
    const racing = createS3Client(config);
    racing.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: string; Body?: unknown };
        if (!interleaved && input.Key === 'rendered/r.pdf/manifest.json' && typeof input.Body === 'string') {
          // Right after our HEAD found the source current: a new upload, rendered and committed.
          interleaved = true;
          await upload('incoming/r.pdf', MATPLOTLIB);
          await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/r.pdf'));
        }
        return next(args);
      },
      { step: 'initialize' },
    );
    const result = await createRenderHandler(config, racing)(s3PutEvent(BUCKET, 'incoming/r.pdf'));
    expect(interleaved).toBe(true);
    expect(result.records[0]!.outcome).toBe('superseded');
    expect((await expectConsistent('incoming/r.pdf', 'rendered/r.pdf/')).pageCount).toBe(1);
  });

  it('the manifest deleted between our read and our conditional write (S3 answers 404): a lost race, re-read and committed in the same invocation', async () => {
    await upload('incoming/gone.pdf', ARABIC);
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/gone.pdf'));
    await upload('incoming/gone.pdf', MATPLOTLIB);
    let deleted = false;
    const racing = createS3Client(config);
    racing.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: string; Body?: unknown; IfMatch?: string };
        if (!deleted && input.Key === 'rendered/gone.pdf/manifest.json' && input.IfMatch !== undefined) {
          // Someone (an operator, a lifecycle rule) deletes the manifest this render read.
          deleted = true;
          await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'rendered/gone.pdf/manifest.json' }));
        }
        return next(args);
      },
      { step: 'initialize' },
    );
    const result = await createRenderHandler(config, racing)(s3PutEvent(BUCKET, 'incoming/gone.pdf'));
    expect(deleted).toBe(true);
    // Not an error left to a redelivery 90 minutes later: the render commits now.
    expect(result.records[0]).toMatchObject({ outcome: 'rendered', status: 'complete' });
    expect((await expectConsistent('incoming/gone.pdf', 'rendered/gone.pdf/')).pageCount).toBe(1);
  });

  it('three concurrent deliveries of one event: one consistent result, nothing of other generations', async () => {
    await upload('incoming/c.pdf', ARABIC);
    const results = await Promise.all([1, 2, 3].map(() => createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/c.pdf'))));
    const outcomes = results.map((r) => r.records[0]!.outcome);
    expect(outcomes).toContain('rendered');
    for (const outcome of outcomes) expect(['rendered', 'up-to-date']).toContain(outcome);
    expect((await expectConsistent('incoming/c.pdf', 'rendered/c.pdf/')).pageCount).toBe(4);
  });

  it('replaces a schema v1 render: its pages outside any generation are removed after the commit', async () => {
    await upload('incoming/old.pdf', MATPLOTLIB);
    await putObject(s3, BUCKET, 'rendered/old.pdf/manifest.json', JSON.stringify({ schemaVersion: 1, status: 'complete' }));
    await putObject(s3, BUCKET, 'rendered/old.pdf/page-0001.png', 'old');
    await putObject(s3, BUCKET, 'rendered/old.pdf/page-0002.png', 'old');
    // A source nested under this one's output prefix keeps its outputs.
    await putObject(s3, BUCKET, 'rendered/old.pdf/nested.pdf/manifest.json', '{}');
    expect((await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/old.pdf'))).records[0]!.outcome).toBe('rendered');
    const manifest = await manifestAt('rendered/old.pdf/manifest.json');
    expect(await listKeys(s3, BUCKET, 'rendered/old.pdf/')).toEqual(
      [...renderedPages(manifest).map((p) => p.key), 'rendered/old.pdf/manifest.json', 'rendered/old.pdf/nested.pdf/manifest.json'].sort(),
    );
  });
});

describe('the deadline', () => {
  let slowPdf: string;
  beforeAll(async () => {
    // Page 1 quick, page 2 a content stream of 800,000 path segments: several seconds to draw.
    const segments = join(tmpdir(), `segments-${process.pid}.pdf`);
    await writeManySegmentsPdf(segments, 800_000);
    const target = new mupdf.PDFDocument();
    for (const [file, page] of [[MATPLOTLIB, 0], [segments, 0]] as const) {
      const src = mupdf.Document.openDocument(await readFile(file), 'application/pdf') as mupdf.PDFDocument;
      target.graftPage(-1, src, page);
      src.destroy();
    }
    slowPdf = join(tmpdir(), `quick-then-slow-${process.pid}.pdf`);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(slowPdf, target.saveToBuffer('compress').asUint8Array());
    target.destroy();
    rmSync(segments, { force: true });
  });
  afterAll(() => rmSync(slowPdf, { force: true }));

  it('a slow page with little time left: the handler returns before the deadline with a committed partial manifest, and the retry completes', async () => {
    await upload('incoming/slow.pdf', slowPdf);
    // 1.5 s to draw in, then 3 s kept back to store what is done and commit it.
    const reserveMs = 3_000;
    const handler = createRenderHandler(config, s3, { reserveMs });
    const started = Date.now();
    const end = started + reserveMs + 1_500;
    await expect(handler(s3PutEvent(BUCKET, 'incoming/slow.pdf'), { getRemainingTimeInMillis: () => end - Date.now() })).rejects.toThrow(/out of time/);
    // Back with time to spare: the slow page was cut at the deadline, not left to run on.
    expect(Date.now()).toBeLessThan(end);
    const partial = await manifestAt('rendered/slow.pdf/manifest.json');
    // Page 2 is cut (and page 1 too, on a machine too loaded to draw it in time): never a failed page.
    expect(partial.status).toBe('partial');
    expect([1, 2]).toContain(partial.nextPage);
    expect(renderedPages(partial).map((p) => p.number)).toEqual(partial.nextPage === 2 ? [1] : []);
    expect(partial.pages.filter(isPageFailure)).toEqual([]);

    await handler(s3PutEvent(BUCKET, 'incoming/slow.pdf'), { getRemainingTimeInMillis: () => 600_000 });
    const complete = await expectConsistent('incoming/slow.pdf', 'rendered/slow.pdf/');
    expect(renderedPages(complete).map((p) => p.number)).toEqual([1, 2]);
  });

  it('commits progress on a long render, so a killed invocation loses at most the last stretch', async () => {
    await upload('incoming/long.pdf', TRACEMONKEY);
    const commits: string[] = [];
    // A checkpoint after every page: each commit is a partial manifest whose listed pages exist.
    const recording = createS3Client(config);
    recording.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: string; Body?: unknown };
        if (input.Key === 'rendered/long.pdf/manifest.json' && typeof input.Body === 'string') commits.push(input.Body);
        return next(args);
      },
      { step: 'initialize' },
    );
    await createRenderHandler(config, recording, { checkpointMs: 0 })(s3PutEvent(BUCKET, 'incoming/long.pdf'));
    const partials = commits.map((c) => JSON.parse(c) as Manifest).filter((m) => m.status === 'partial');
    expect(partials.length).toBeGreaterThanOrEqual(10);
    for (const m of partials) expect(renderedPages(m).map((p) => p.number)).toEqual(Array.from({ length: m.nextPage! - 1 }, (_, i) => i + 1));
    expect((await expectConsistent('incoming/long.pdf', 'rendered/long.pdf/')).pageCount).toBe(14);
  });
});

describe('hopeless inputs are settled, not retried', () => {
  it('a source larger than the free space of /tmp: a failed TOO_LARGE manifest, decided before downloading', async () => {
    const mount = join(tmpdir(), `small-tmp-${process.pid}`);
    mkdirSync(mount, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
    try {
      vi.stubEnv('TMPDIR', mount);
      await upload('incoming/big.pdf', `${CORPUS}epson-scan-cjk-6p.pdf`);
      const result = await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/big.pdf'));
      expect(result.records[0]).toMatchObject({ outcome: 'rendered', status: 'failed' });
      expect((await manifestAt('rendered/big.pdf/manifest.json')).error).toMatchObject({ code: 'TOO_LARGE' });
    } finally {
      vi.unstubAllEnvs();
      execFileSync('umount', [mount]);
      rmSync(mount, { recursive: true, force: true });
    }
  });

  it('output keys over 1,024 bytes: a failed KEY_TOO_LONG manifest where the manifest fits, nothing where it does not', async () => {
    // rendered/<name>/manifest.json fits; rendered/<name>/<16 hex>/text-0000.json does not.
    const fits = `incoming/${'a'.repeat(1024 - 'rendered/'.length - '/manifest.json'.length - 4)}.pdf`;
    await upload(fits, MATPLOTLIB);
    const result = await createRenderHandler(config, s3)(s3PutEvent(BUCKET, fits));
    expect(result.records[0]).toMatchObject({ outcome: 'rendered', status: 'failed' });
    const outPrefix = `rendered/${fits.slice('incoming/'.length)}/`;
    expect((await manifestAt(`${outPrefix}manifest.json`)).error).toMatchObject({ code: 'KEY_TOO_LONG' });
    expect(await listKeys(s3, BUCKET, outPrefix)).toEqual([`${outPrefix}manifest.json`]);

    const tooLong = `incoming/${'b'.repeat(1024 - 'incoming/'.length - 4)}.pdf`;
    await upload(tooLong, MATPLOTLIB);
    expect((await createRenderHandler(config, s3)(s3PutEvent(BUCKET, tooLong))).records[0]).toMatchObject({ outcome: 'ignored' });
    expect(await listKeys(s3, BUCKET, 'rendered/b')).toEqual([]);
  });

  it('keys with empty, "." or ".." segments are refused and nothing is written', async () => {
    const handler = createRenderHandler(config, s3);
    for (const key of ['incoming/../../etc/x.pdf', 'incoming/a/./x.pdf', 'incoming//x.pdf']) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(MATPLOTLIB) }));
      expect((await handler(s3PutEvent(BUCKET, key))).records[0]).toMatchObject({ outcome: 'ignored' });
    }
    expect(await listKeys(s3, BUCKET, 'rendered')).toEqual([]);
  });

  it('events for another bucket than SOURCE_BUCKET are ignored', async () => {
    await createBucket(s3, 'elsewhere');
    await putObject(s3, 'elsewhere', 'incoming/a.pdf', await readFile(MATPLOTLIB));
    expect((await createRenderHandler(config, s3)(s3PutEvent('elsewhere', 'incoming/a.pdf'))).records[0]).toMatchObject({ outcome: 'ignored' });
    expect(await listKeys(s3, 'elsewhere', 'rendered/')).toEqual([]);
  });

  it('OUTPUT_BUCKET naming the source bucket still refuses overlapping prefixes', () => {
    expect(() => testConfig({ SOURCE_BUCKET: BUCKET, OUTPUT_BUCKET: BUCKET, OUTPUT_PREFIX: 'incoming/out/' })).toThrow(/overlaps INPUT_PREFIX/);
  });
});

describe('AWS answers over HTTP', () => {
  const via = useFaultProxy();

  it('a 400 KeyTooLongError on a page upload is permanent: logged, the invocation succeeds, no retry', async () => {
    await upload('incoming/k.pdf', MATPLOTLIB);
    via.proxy.setRules([{ method: 'PUT', path: /\/page-0001\.png$/, occurrences: [1, 2, 3], fault: { kind: 'status', status: 400, code: 'KeyTooLongError' } }]);
    const result = await createRenderHandler(config, via.s3)(s3PutEvent(BUCKET, 'incoming/k.pdf'));
    expect(result.records[0]).toMatchObject({ outcome: 'failed' });
    expect(result.records[0]!.reason).toMatch(/KeyTooLongError/);
    // One attempt: a 4xx is not retried by the SDK either.
    expect(via.proxy.injected()).toBe(1);
  });

  it('a 403 is transient: the invocation throws so the event is retried', async () => {
    await upload('incoming/d.pdf', MATPLOTLIB);
    via.proxy.setRules([{ method: 'HEAD', path: /^\/uploads\/incoming\/d\.pdf$/, occurrences: [1, 2, 3], fault: { kind: 'status', status: 403, code: 'AccessDenied' } }]);
    await expect(createRenderHandler(config, via.s3)(s3PutEvent(BUCKET, 'incoming/d.pdf'))).rejects.toThrow(/failed transiently/);
  });

  it('a failing multipart part: the upload is aborted and no incomplete multipart upload remains', async () => {
    // A JPEG 2000 photo at 150 dpi: a PNG of about 12 MB, three parts of 5 MB.
    await upload('incoming/scan.pdf', `${CORPUS}jpx-photo.pdf`);
    via.proxy.setRules([{ method: 'PUT', path: /\/page-0001\.png$/, occurrences: [2, 3, 4, 5, 6, 7, 8, 9], fault: { kind: 'status', status: 500, code: 'InternalError' } }]);
    const handler = createRenderHandler(testConfig({ ...ENV, DPI: '150' }), via.s3);
    await expect(handler(s3PutEvent(BUCKET, 'incoming/scan.pdf'))).rejects.toThrow(/failed transiently/);
    expect(via.proxy.log.some((line) => line.startsWith('POST') && line.includes('page-0001.png'))).toBe(true);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });
});

describe('the clean-up after a commit is reached by every path that finds the render committed', () => {
  const via = useFaultProxy();
  const FANOUT = { ...ENV, FANOUT_PAGES: '5' };

  /** An S3 client that dies (throws, as a killed container stops) right after S3 applied the first request `when` picks. */
  function dyingAfter(when: (input: { Key?: string; Body?: unknown }, command: string) => boolean): S3Client {
    const client = createS3Client(config);
    let died = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (!died && when(args.input as { Key?: string; Body?: unknown }, context.commandName ?? '')) {
          died = true;
          throw new Error('the container was killed here');
        }
        return result;
      },
      { step: 'initialize' },
    );
    return client;
  }
  const isManifestPut = (prefix: string) => (input: { Key?: string; Body?: unknown }, command: string) => command === 'PutObjectCommand' && input.Key === `${prefix}manifest.json`;

  /** A render queue in memory: what the function sends, delivered by hand. */
  function memoryQueue(): WorkQueue & { sent: WorkRequest[] } {
    const sent: WorkRequest[] = [];
    return { sent, send: async (requests) => void sent.push(...requests) };
  }
  const asMessage = (request: WorkRequest) => sqsEventOf([JSON.stringify(workMessage(request))]);

  it('killed after the manifest PUT, before the clean-up: the old generation goes when the redelivered message finds the render up to date', async () => {
    await upload('incoming/k.pdf', ARABIC);
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/k.pdf'));
    await upload('incoming/k.pdf', MATPLOTLIB);
    const event = s3PutEvent(BUCKET, 'incoming/k.pdf');
    await expect(createRenderHandler(config, dyingAfter(isManifestPut('rendered/k.pdf/')))(event)).rejects.toThrow(/killed/);
    // The old generation's four pages are still there.
    expect((await listKeys(s3, BUCKET, 'rendered/k.pdf/')).length).toBe(1 + 1 + 4);
    expect((await createRenderHandler(config, s3)(event)).records[0]!.outcome).toBe('up-to-date');
    expect((await expectConsistent('incoming/k.pdf', 'rendered/k.pdf/')).pageCount).toBe(1);
  });

  it('the range that completes a fan-out set killed after the manifest PUT: its retry finds the render up to date and removes the part records', async () => {
    await upload('incoming/f.pdf', TRACEMONKEY);
    const fanout = testConfig(FANOUT);
    const queue = memoryQueue();
    await createRenderHandler(fanout, s3, { queue })(s3PutEvent(BUCKET, 'incoming/f.pdf'));
    expect(queue.sent.map((r) => r.pages?.range)).toEqual([{ from: 6, to: 10, count: 3 }, { from: 11, to: 14, count: 3 }]);
    await createRenderHandler(fanout, s3, { queue })(asMessage(queue.sent[0]!));
    const last = asMessage(queue.sent[1]!);
    const killed = await createRenderHandler(fanout, dyingAfter(isManifestPut('rendered/f.pdf/')), { queue })(last);
    expect(killed.batchItemFailures).toHaveLength(1);
    expect((await listKeys(s3, BUCKET, 'rendered/f.pdf/')).filter((k) => k.includes('/part-'))).toHaveLength(3);
    expect((await createRenderHandler(fanout, s3, { queue })(last)).records[0]!.outcome).toBe('up-to-date');
    expect((await expectConsistent('incoming/f.pdf', 'rendered/f.pdf/')).pageCount).toBe(14);
  });

  it('the answer to the manifest PUT lost: the SDK retry gets 412, the render knows the stored manifest for its own and still removes the old generation', async () => {
    await upload('incoming/l.pdf', ARABIC);
    await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/l.pdf'));
    await upload('incoming/l.pdf', MATPLOTLIB);
    via.proxy.setRules([{ method: 'PUT', path: /^\/uploads\/rendered\/l\.pdf\/manifest\.json$/, occurrences: [1], fault: { kind: 'lost-response' } }]);
    const result = await createRenderHandler(config, via.s3)(s3PutEvent(BUCKET, 'incoming/l.pdf'));
    expect(via.proxy.injected()).toBe(1);
    // The retried PUT lost its compare-and-swap to the first one, which was this render's own:
    // the stored manifest is ours to the millisecond, so the render reports (and announces) its commit.
    expect(result.records[0]).toMatchObject({ outcome: 'rendered', status: 'complete' });
    expect((await expectConsistent('incoming/l.pdf', 'rendered/l.pdf/')).pageCount).toBe(1);
  });

  it('a duplicate range message that rewrites its part after the set was merged: its part is removed again', async () => {
    await upload('incoming/d.pdf', TRACEMONKEY);
    const fanout = testConfig(FANOUT);
    const queue = memoryQueue();
    await createRenderHandler(fanout, s3, { queue })(s3PutEvent(BUCKET, 'incoming/d.pdf'));
    // The duplicate of range 2 has passed its up-to-date check; while it draws, ranges 2 and 3 run and merge the set.
    const racing = createS3Client(fanout);
    let merged = false;
    racing.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: string };
        if (!merged && input.Key?.endsWith('/page-0006.png')) {
          merged = true;
          for (const request of queue.sent.slice(0, 2)) await createRenderHandler(fanout, s3, { queue })(asMessage(request));
          expect((await manifestAt('rendered/d.pdf/manifest.json')).status).toBe('complete');
        }
        return next(args);
      },
      { step: 'initialize' },
    );
    const duplicate = await createRenderHandler(fanout, racing, { queue })(asMessage(queue.sent[0]!));
    expect(merged).toBe(true);
    expect(duplicate.records[0]!.outcome).toBe('range-stored');
    expect((await expectConsistent('incoming/d.pdf', 'rendered/d.pdf/')).pageCount).toBe(14);
  });

  it("an old version's render killed after the new version's clean-up: the old message's redelivery removes its generation", async () => {
    const first = await upload('incoming/o.pdf', ARABIC);
    const old = s3PutEvent(BUCKET, 'incoming/o.pdf', { eTag: first.etag });
    // While the old render writes its first page, the new version is uploaded, rendered and committed; then the old render dies.
    let died = false;
    const dying = createS3Client(config);
    dying.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: string };
        if (died || !input.Key?.endsWith('/page-0001.png')) return next(args);
        died = true;
        await upload('incoming/o.pdf', MATPLOTLIB);
        await createRenderHandler(config, s3)(s3PutEvent(BUCKET, 'incoming/o.pdf'));
        await next(args);
        throw new Error('the container was killed here');
      },
      { step: 'initialize' },
    );
    await expect(createRenderHandler(config, dying)(old)).rejects.toThrow(/killed/);
    expect((await listKeys(s3, BUCKET, 'rendered/o.pdf/')).length).toBeGreaterThan(2);
    expect((await createRenderHandler(config, s3)(old)).records[0]!.outcome).toBe('superseded');
    expect((await expectConsistent('incoming/o.pdf', 'rendered/o.pdf/')).pageCount).toBe(1);
  });
});

describe('a fan-out range outlived by a newer version', () => {
  it('a range still drawing when a new version is rendered and committed: once its part is stored it finds itself superseded and removes its generation', async () => {
    await upload('incoming/s.pdf', TRACEMONKEY);
    const fanout = testConfig({ ...ENV, FANOUT_PAGES: '5' });
    const sent: WorkRequest[] = [];
    const queue: WorkQueue = { send: async (requests) => void sent.push(...requests) };
    await createRenderHandler(fanout, s3, { queue })(s3PutEvent(BUCKET, 'incoming/s.pdf'));
    // Range 2 writes its first page; meanwhile the new version is uploaded, rendered and committed (its clean-up runs now).
    let replaced = false;
    const racing = createS3Client(fanout);
    racing.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: string };
        if (!replaced && input.Key?.endsWith('/page-0006.png')) {
          replaced = true;
          await upload('incoming/s.pdf', MATPLOTLIB);
          await createRenderHandler(fanout, s3, { queue })(s3PutEvent(BUCKET, 'incoming/s.pdf'));
        }
        return next(args);
      },
      { step: 'initialize' },
    );
    const range = await createRenderHandler(fanout, racing, { queue })(sqsEventOf([JSON.stringify(workMessage(sent[0]!))]));
    expect(replaced).toBe(true);
    expect(range.records[0]!.outcome).toBe('superseded');
    expect((await expectConsistent('incoming/s.pdf', 'rendered/s.pdf/')).pageCount).toBe(1);
  });
});
