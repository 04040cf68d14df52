/**
 * IAM checked call by call. An end-to-end run against the local S3 server records every AWS
 * call the three functions make (SDK middleware on the clients their handler factories are given:
 * test/support/iam-recorder.ts), as IAM would see it: action, resource ARN, condition keys.
 * Each is evaluated against the template's own policies, parameters resolved, with
 * @cloud-copilot/iam-simulate (test/support/iam-policy.ts): every call must be allowed. Then
 * what must never be allowed is checked to be denied.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../lib/config/env.js';
import { loadPageConfig } from '../lib/config/page.js';
import { createPageHandler } from '../lib/on-demand/handler.js';
import { ssmSecret } from '../lib/on-demand/secret.js';
import { sign } from '../lib/on-demand/signature.js';
import { makeToken } from '../lib/iiif/token.js';
import { SourceCache } from '../lib/on-demand/source-cache.js';
import { createSsmClient } from '../lib/ssm/client.js';
import { functionUrlEvent } from '../tools/function-url.js';
import { createEventBridgeClient, eventBridgeEvents } from '../lib/events/eventbridge.js';
import { createRenderHandler } from '../lib/render-function/handler.js';
import { QueueDispatcher } from '../lib/reprocess/dispatch.js';
import type { BatchResponse } from '../lib/batch/event.js';
import { createReprocessFunction } from '../lib/reprocess/entry.js';
import { createReprocessHandler } from '../lib/reprocess/handler.js';
import { encodeEventKey } from '../lib/s3/layout.js';
import { createS3Client } from '../lib/s3/client.js';
import { eventBridgeObjectCreated, s3PutEvent } from '../lib/s3/event.js';
import { createSqsClient } from '../lib/sqs/client.js';
import { sqsWorkQueue } from '../lib/sqs/work-queue.js';
import { sqsEventOf } from './support/in-process-dispatcher.js';
import { createQueue, drain, testSqsClient } from './support/sqs.js';
import { loadTemplate, localContext, resolvedEnvironment, resolveIntrinsics, templateFunction } from '../tools/template.js';
import { decide } from './support/iam-policy.js';
import { IamRecorder, s3IamRequests, type IamRequest } from './support/iam-recorder.js';
import { CORPUS, createBucket, putObject, resetS3, s3Endpoint } from './support/s3.js';

const template = loadTemplate();
/** The page function's signing secret, named as a deployment with signed URLs names it. */
const SIGNING_PARAMETER = '/s3-pdf-render/url-secret';
const ctx = localContext(template, { PageUrlSigningParameter: SIGNING_PARAMETER }, {});
const BUCKET = ctx.parameters['BucketName']!;
const REGION = ctx.region;
const { InputPrefix: IN, OutputPrefix: OUT } = ctx.parameters as { InputPrefix: string; OutputPrefix: string };

/** A function's configuration from its template environment, pointed at the local server. */
const configOf = (logicalId: string, extra: Record<string, string> = {}): Config =>
  loadConfig({ ...resolvedEnvironment(templateFunction(template, logicalId), template, ctx), S3_ENDPOINT: s3Endpoint(), ...extra });

const pdf = (name: string) => readFile(join(CORPUS, name));
const key = (request: IamRequest) => JSON.stringify([request.principal, request.action, request.resource, request.context]);
const describeRequest = (r: IamRequest) => `${r.principal} ${r.operation} -> ${r.action ?? '(unmapped)'} ${r.resource} ${JSON.stringify(r.context)}${r.note ? ` (${r.note})` : ''}`;

/** The IAM requests that are not allowed, each described. */
async function notAllowed(requests: IamRequest[]): Promise<string[]> {
  const unique = [...new Map(requests.map((r) => [key(r), r])).values()];
  const decisions = await Promise.all(unique.map(async (r) => (r.action ? await decide(template, r, ctx) : 'unmapped')));
  return unique.flatMap((r, i) => (decisions[i] === 'Allowed' ? [] : [`${decisions[i]}: ${describeRequest(r)}`]));
}

describe('IAM, call by call, against the template\'s policies', () => {
  const recorder = new IamRecorder();

  beforeAll(async () => {
    await resetS3();
    // The render queue, named as the template names it (its ARN is what the policies allow).
    const queueUrl = await createQueue(testSqsClient(), 'RenderQueue');
    // Two-page ranges: the 4-page document fans out, so the render function sends to the queue too.
    const renderConfig = configOf('RenderPdfFunction', { RENDER_QUEUE_URL: queueUrl, FANOUT_PAGES: '2' });
    const renderS3 = recorder.s3(createS3Client(renderConfig), 'RenderPdfFunction');
    const renderQueue = sqsWorkQueue(recorder.sqs(createSqsClient(renderConfig), 'RenderPdfFunction', REGION), queueUrl);
    // EVENT_BUS as the template sets it (EmitEvents true): each final commit puts one event.
    expect(renderConfig.eventBus).toBe('default');
    const renderEvents = eventBridgeEvents(recorder.events(createEventBridgeClient(renderConfig), 'RenderPdfFunction', REGION), renderConfig.eventBus!);
    const render = createRenderHandler(renderConfig, renderS3, { queue: renderQueue, events: renderEvents });
    const setup: S3Client = createS3Client(renderConfig);
    await createBucket(setup, BUCKET);

    // 1. Renders: a document, a password-protected one (failed manifest), then a shorter new
    //    version of the first (its older pages are deleted), and an event for a source deleted
    //    since (HEAD answers 404).
    await putObject(setup, BUCKET, `${IN}paper.pdf`, await pdf('arabic-rotations-4p.pdf'));
    await putObject(setup, BUCKET, `${IN}locked.pdf`, await pdf('password-libreoffice.pdf'));
    await render(s3PutEvent(BUCKET, `${IN}paper.pdf`));
    // The second range, from the queue.
    expect((await render(sqsEventOf((await drain(testSqsClient(), queueUrl)).map((m) => m.Body!)))).records[0]?.outcome).toBe('rendered');
    await render(s3PutEvent(BUCKET, `${IN}locked.pdf`));
    await putObject(setup, BUCKET, `${IN}paper.pdf`, await pdf('matplotlib-type3.pdf'));
    await render(s3PutEvent(BUCKET, `${IN}paper.pdf`));
    await putObject(setup, BUCKET, `${IN}gone.pdf`, await pdf('matplotlib-type3.pdf'));
    await setup.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${IN}gone.pdf` }));
    expect((await render(s3PutEvent(BUCKET, `${IN}gone.pdf`))).records[0]?.outcome).toBe('ignored');

    // 2. A page big enough for a multipart upload (a 3125x2344 photo: 14.7 MB of PNG, three
    //    5 MB parts) whose second part fails: the upload is aborted.
    const faulty = recorder.s3(createS3Client(renderConfig), 'RenderPdfFunction');
    let parts = 0;
    faulty.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand' && ++parts === 2) {
          throw Object.assign(new Error('injected: part upload failed'), { name: 'InternalError', $metadata: { httpStatusCode: 400 } });
        }
        return next(args);
      },
      { step: 'build', name: 'failSecondPart' },
    );
    await putObject(setup, BUCKET, `${IN}photo.pdf`, await pdf('jpx-photo.pdf'));
    await createRenderHandler(renderConfig, faulty)(s3PutEvent(BUCKET, `${IN}photo.pdf`)).catch(() => undefined);
    expect(parts).toBeGreaterThanOrEqual(2);

    // 3. A reprocess run that sends its requests to the render queue; the render function then
    //    takes them from the queue.
    await putObject(setup, BUCKET, `${IN}new.pdf`, await pdf('matplotlib-type3.pdf'));
    const reprocessConfig = configOf('ReprocessFunction', { RENDER_QUEUE_URL: queueUrl });
    const reprocess = createReprocessHandler(reprocessConfig, {
      s3: recorder.s3(createS3Client(reprocessConfig), 'ReprocessFunction'),
      dispatcher: new QueueDispatcher(sqsWorkQueue(recorder.sqs(createSqsClient(reprocessConfig), 'ReprocessFunction', REGION), queueUrl)),
      recentMs: 0,
    });
    const summary = await reprocess({ force: true });
    expect(summary.dispatched).toBeGreaterThan(0);
    // The schedule's run: the one that reads and writes its checkpoint.
    expect(await reprocess({ scheduled: true })).toMatchObject({ scheduled: true, nextStartAfter: null });
    for (const message of await drain(testSqsClient(), queueUrl)) await render(sqsEventOf([message.Body!]));

    // 4. The same function as S3 Batch Operations' task (schema 2.0): a forced object, and one deleted since.
    const task = createReprocessFunction(reprocessConfig, {
      s3: recorder.s3(createS3Client(reprocessConfig), 'ReprocessFunction'),
      dispatcher: new QueueDispatcher(sqsWorkQueue(recorder.sqs(createSqsClient(reprocessConfig), 'ReprocessFunction', REGION), queueUrl)),
      recentMs: 0,
    });
    const batchTask = (taskId: string, key: string) => ({ taskId, s3Key: encodeEventKey(key), s3VersionId: null, s3Bucket: BUCKET });
    const answer = (await task({
      invocationSchemaVersion: '2.0',
      invocationId: 'inv',
      job: { id: 'job', userArguments: { force: 'true' } },
      tasks: [batchTask('t1', `${IN}new.pdf`), batchTask('t2', `${IN}gone.pdf`)],
    })) as BatchResponse;
    expect(answer.results.map((r) => `${r.resultCode} ${r.resultString}`)).toEqual(['Succeeded dispatched:stale', 'Succeeded deleted']);
    await drain(testSqsClient(), queueUrl);

    // 5. The page function, signed URLs on: a miss (download, render, conditional PUT with its
    //    tag), a hit, the eager render's own page, a missing key and an out-of-range page. Each
    //    redirect is a presigned GET made with the function's credentials: recorded as its GetObject.
    const pageConfig = loadPageConfig({ ...resolvedEnvironment(templateFunction(template, 'PageFunction'), template, ctx), S3_ENDPOINT: s3Endpoint() });
    await createSsmClient(pageConfig).send(new PutParameterCommand({ Name: SIGNING_PARAMETER, Value: 'an-iam-test-secret-of-32-chars!!', Type: 'SecureString', Overwrite: true }));
    const page = createPageHandler(pageConfig, {
      s3: recorder.s3(createS3Client(pageConfig), 'PageFunction'),
      secret: ssmSecret(recorder.ssm(createSsmClient(pageConfig), 'PageFunction', REGION), SIGNING_PARAMETER),
      cache: new SourceCache(await mkdtemp(join(tmpdir(), 'iam-page-')), 2 ** 30),
    });
    const later = String(Math.floor(Date.now() / 1000) + 600);
    const ask = async (key: string, params: [string, string][]) => {
      const all: [string, string][] = [...params, ['expires', later]];
      const query = new URLSearchParams([...all, ['signature', sign('an-iam-test-secret-of-32-chars!!', key, all)]]);
      const result = await page(functionUrlEvent('GET', `/${encodeURIComponent(key)}?${query}`));
      if (result.statusCode === 302) {
        const location = new URL(String(result.headers!['location']));
        const [bucket, ...rest] = location.pathname.slice(1).split('/');
        for (const request of s3IamRequests('GetObject', { Bucket: bucket, Key: decodeURIComponent(rest.join('/')) })) recorder.requests.push({ principal: 'PageFunction', ...request });
      }
      return result;
    };
    const miss = await ask(`${IN}paper.pdf`, [['page', '1'], ['dpi', '30']]);
    expect(miss.headers!['x-page-cache'], String(miss.body)).toBe('miss');
    expect((await ask(`${IN}paper.pdf`, [['page', '1'], ['dpi', '30']])).headers!['x-page-cache']).toBe('hit');
    expect((await ask(`${IN}paper.pdf`, [['page', '1']])).headers!['x-page-cache']).toBe('eager');
    expect((await ask(`${IN}missing.pdf`, [])).statusCode).toBe(404);
    expect((await ask(`${IN}paper.pdf`, [['page', '99']])).statusCode).toBe(404);

    // 6. The page function's IIIF routes, with a document token: info.json (the page's box read
    //    from the eager manifest), a tile missed then hit, the manifest (the document opened once,
    //    its page sizes, title and outline stored beside the variants; the eager manifest read for
    //    page text), the PDF and a missing key.
    const token = makeToken('an-iam-test-secret-of-32-chars!!', `${IN}paper.pdf`, Number(later));
    const iiif = async (path: string) => {
      const result = await page(functionUrlEvent('GET', `/iiif/3/~${token}/${path}`));
      if (result.statusCode === 302) {
        const location = new URL(String(result.headers!['location']));
        const [bucket, ...rest] = location.pathname.slice(1).split('/');
        for (const request of s3IamRequests('GetObject', { Bucket: bucket, Key: decodeURIComponent(rest.join('/')) })) recorder.requests.push({ principal: 'PageFunction', ...request });
      }
      return result;
    };
    const id = `${encodeURIComponent(`${IN}paper.pdf`)};1`;
    expect((await iiif(`${id}/info.json`)).statusCode).toBe(200);
    expect((await iiif(`${id}/0,0,200,200/100,/0/default.jpg`)).headers!['x-page-cache']).toBe('miss');
    expect((await iiif(`${id}/0,0,200,200/100,/0/default.jpg`)).headers!['x-page-cache']).toBe('hit');
    expect((await iiif(`${encodeURIComponent(`${IN}paper.pdf`)}/manifest`)).statusCode).toBe(200);
    expect((await iiif(`${encodeURIComponent(`${IN}paper.pdf`)}/source.pdf`)).statusCode).toBe(302);
    expect((await page(functionUrlEvent('GET', `/iiif/3/~${makeToken('an-iam-test-secret-of-32-chars!!', `${IN}missing.pdf`, Number(later))}/${encodeURIComponent(`${IN}missing.pdf`)}/info.json`))).statusCode).toBe(404);
  }, 300_000);

  it('the page function reads and writes nothing but its sources and their output prefixes', () => {
    const outside = recorder.requests
      .filter((r) => r.principal === 'PageFunction' && r.action?.startsWith('s3:'))
      .map((r) => r.context['s3:prefix'] !== undefined ? `${r.resource}/${r.context['s3:prefix']}` : r.resource)
      .filter((resource) => !resource.startsWith(`arn:aws:s3:::${BUCKET}/${IN}`) && !resource.startsWith(`arn:aws:s3:::${BUCKET}/${OUT}`));
    expect(outside).toEqual([]);
    const iiifWrites = recorder.requests.filter((r) => r.principal === 'PageFunction' && r.action === 's3:PutObject' && /\/iiif-/.test(r.resource));
    expect(iiifWrites.map((r) => r.resource.replace(/.*\//, '').replace(/-[0-9a-f]{16}\./, '-<hash>.'))).toEqual(expect.arrayContaining(['iiif-pages.json', 'iiif-0001-<hash>.jpg']));
  });

  it('recorded the calls that matter, from both functions', () => {
    const seen = (principal: string) => new Set(recorder.requests.filter((r) => r.principal === principal).map((r) => r.action));
    const render = seen('RenderPdfFunction');
    for (const action of ['s3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:DeleteObject', 's3:AbortMultipartUpload', 'sqs:SendMessage', 'events:PutEvents']) expect(render, action).toContain(action);
    const reprocess = seen('ReprocessFunction');
    for (const action of ['s3:ListBucket', 's3:GetObject', 'sqs:SendMessage']) expect(reprocess, action).toContain(action);
    const page = seen('PageFunction');
    for (const action of ['s3:GetObject', 's3:ListBucket', 's3:PutObject', 's3:PutObjectTagging', 'ssm:GetParameter']) expect(page, action).toContain(action);
    // The operations behind them, including the multipart ones.
    const operations = new Set(recorder.requests.map((r) => r.operation));
    for (const operation of ['HeadObject', 'GetObject', 'PutObject', 'CreateMultipartUpload', 'UploadPart', 'AbortMultipartUpload', 'ListObjectsV2', 'DeleteObjects', 'SendMessageBatch']) expect(operations, operation).toContain(operation);
  });

  it('allows every call the functions made', async () => {
    expect(await notAllowed(recorder.requests)).toEqual([]);
  });

  it('allows the calls of the generation layout (docs/contract.md), declared as well as recorded', async () => {
    // HEAD of the source without a VersionId, manifest read and compare-and-swap write (If-Match
    // and If-None-Match are headers of s3:PutObject), pages under <prefix><generation>/,
    // multipart with abort, listing and deleting other generations under the prefix, the completion marker.
    const prefix = `${OUT}reports/q3.pdf/`;
    const object = (k: string) => `arn:aws:s3:::${BUCKET}/${k}`;
    const r = (operation: string, action: string, resource: string, context: Record<string, string> = {}): IamRequest => ({ principal: 'RenderPdfFunction', operation, action, resource, context });
    const declared = [
      r('HeadObject', 's3:GetObject', object(`${IN}reports/q3.pdf`)),
      r('HeadObject', 's3:ListBucket', `arn:aws:s3:::${BUCKET}`, { 's3:prefix': `${IN}reports/q3.pdf` }),
      r('GetObject', 's3:GetObject', object(`${prefix}manifest.json`)),
      r('GetObject', 's3:ListBucket', `arn:aws:s3:::${BUCKET}`, { 's3:prefix': `${prefix}manifest.json` }),
      r('PutObject', 's3:PutObject', object(`${prefix}manifest.json`)),
      r('PutObject', 's3:PutObject', object(`${prefix}3f2a9c0d41b7e655/page-0001.png`)),
      r('CreateMultipartUpload', 's3:PutObject', object(`${prefix}3f2a9c0d41b7e655/page-0002.png`)),
      r('AbortMultipartUpload', 's3:AbortMultipartUpload', object(`${prefix}3f2a9c0d41b7e655/page-0002.png`)),
      r('ListObjectsV2', 's3:ListBucket', `arn:aws:s3:::${BUCKET}`, { 's3:prefix': prefix }),
      r('DeleteObjects', 's3:DeleteObject', object(`${prefix}0123456789abcdef/page-0001.png`)),
      // The completion event's marker: read by a redelivery, written after PutEvents, deleted when written too late.
      r('GetObject', 's3:GetObject', object(`${prefix}3f2a9c0d41b7e655/announced.json`)),
      r('PutObject', 's3:PutObject', object(`${prefix}3f2a9c0d41b7e655/announced.json`)),
      r('DeleteObject', 's3:DeleteObject', object(`${prefix}0123456789abcdef/announced.json`)),
    ];
    expect(await notAllowed(declared)).toEqual([]);
  });

  it('allows PutEvents on the default bus only while EmitEvents is true', async () => {
    const put: IamRequest = { principal: 'RenderPdfFunction', operation: 'PutEvents', action: 'events:PutEvents', resource: `arn:aws:events:${REGION}:123456789012:event-bus/default`, context: {} };
    expect(await decide(template, put)).toBe('Allowed');
    expect(await decide(template, put, localContext(template, { EmitEvents: 'false' }, {}))).not.toBe('Allowed');
  });

  it('denies what must never happen: writes under InputPrefix, other buckets, other functions, whole-bucket listings', async () => {
    const other = 'someone-elses-bucket';
    const cases: IamRequest[] = [];
    for (const principal of ['RenderPdfFunction', 'ReprocessFunction']) {
      const r = (operation: string, action: string, resource: string, context: Record<string, string> = {}) => cases.push({ principal, operation, action, resource, context });
      r('PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${IN}sample.pdf`);
      r('DeleteObject', 's3:DeleteObject', `arn:aws:s3:::${BUCKET}/${IN}sample.pdf`);
      r('AbortMultipartUpload', 's3:AbortMultipartUpload', `arn:aws:s3:::${BUCKET}/${IN}sample.pdf`);
      r('GetObject', 's3:GetObject', `arn:aws:s3:::${other}/${IN}sample.pdf`);
      r('GetObject', 's3:GetObject', `arn:aws:s3:::${BUCKET}/private/secrets.pdf`);
      r('PutObject', 's3:PutObject', `arn:aws:s3:::${other}/${OUT}sample.pdf/page-0001.png`);
      r('ListObjectsV2', 's3:ListBucket', `arn:aws:s3:::${BUCKET}`, { 's3:prefix': '' });
      r('ListObjectsV2', 's3:ListBucket', `arn:aws:s3:::${other}`, { 's3:prefix': IN });
      r('Invoke', 'lambda:InvokeFunction', `arn:aws:lambda:${REGION}:123456789012:function:SomeOtherFunction`);
      r('SendMessage', 'sqs:SendMessage', `arn:aws:sqs:${REGION}:123456789012:SomeOtherQueue`);
      r('PutEvents', 'events:PutEvents', `arn:aws:events:${REGION}:123456789012:event-bus/someone-elses-bus`);
      r('PutRule', 'events:PutRule', `arn:aws:events:${REGION}:123456789012:rule/catch-everything`);
      r('PutTargets', 'events:PutTargets', `arn:aws:events:${REGION}:123456789012:rule/catch-everything`);
    }
    // The page function reads the source and the outputs, and writes variant files only: no
    // manifest, no page of a generation, no delete, no queue, no other parameter.
    const pageCase = (operation: string, action: string, resource: string, context: Record<string, string> = {}) => cases.push({ principal: 'PageFunction', operation, action, resource, context });
    pageCase('PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${IN}sample.pdf`);
    pageCase('PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${OUT}sample.pdf/manifest.json`);
    // An IAM * crosses slashes: a source folder named like a variant file must not open its manifests or pages to the page function.
    for (const folder of ['iiif-x', 'variant-x', '0123456789abcdef/iiif-x', '0123456789abcdef/variant-x']) {
      pageCase('PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${OUT}books/${folder}/a.pdf/manifest.json`);
      pageCase('PutObjectTagging', 's3:PutObjectTagging', `arn:aws:s3:::${BUCKET}/${OUT}books/${folder}/a.pdf/manifest.json`);
    }
    pageCase('PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${OUT}books/iiif-x/a.pdf/3f2a9c0d41b7e655/page-0001.png`);
    pageCase('PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${OUT}sample.pdf/3f2a9c0d41b7e655/page-0001.png`);
    pageCase('DeleteObject', 's3:DeleteObject', `arn:aws:s3:::${BUCKET}/${OUT}sample.pdf/3f2a9c0d41b7e655/variant-0001-0123456789abcdef.png`);
    pageCase('GetObject', 's3:GetObject', `arn:aws:s3:::${BUCKET}/private/secrets.pdf`);
    pageCase('GetObject', 's3:GetObject', `arn:aws:s3:::${other}/${IN}sample.pdf`);
    pageCase('PutObject', 's3:PutObject', `arn:aws:s3:::${other}/${OUT}sample.pdf/3f2a9c0d41b7e655/variant-0001-0123456789abcdef.png`);
    pageCase('ListObjectsV2', 's3:ListBucket', `arn:aws:s3:::${BUCKET}`, { 's3:prefix': '' });
    pageCase('SendMessage', 'sqs:SendMessage', `arn:aws:sqs:${REGION}:123456789012:RenderQueue`);
    pageCase('GetParameter', 'ssm:GetParameter', `arn:aws:ssm:${REGION}:123456789012:parameter/s3-pdf-render/another-secret`);
    pageCase('Invoke', 'lambda:InvokeFunction', `arn:aws:lambda:${REGION}:123456789012:function:RenderPdfFunction`);
    // Only the render function announces renders; reprocess puts no events.
    cases.push({ principal: 'ReprocessFunction', operation: 'PutEvents', action: 'events:PutEvents', resource: `arn:aws:events:${REGION}:123456789012:event-bus/default`, context: {} });
    // Reprocess reads; it never writes outputs. Neither invokes a function: work goes through the queue.
    cases.push({ principal: 'ReprocessFunction', operation: 'PutObject', action: 's3:PutObject', resource: `arn:aws:s3:::${BUCKET}/${OUT}sample.pdf/manifest.json`, context: {} });
    cases.push({ principal: 'ReprocessFunction', operation: 'Invoke', action: 'lambda:InvokeFunction', resource: `arn:aws:lambda:${REGION}:123456789012:function:RenderPdfFunction`, context: {} });
    cases.push({ principal: 'RenderPdfFunction', operation: 'Invoke', action: 'lambda:InvokeFunction', resource: `arn:aws:lambda:${REGION}:123456789012:function:RenderPdfFunction`, context: {} });
    const allowed: string[] = [];
    for (const request of cases) if ((await decide(template, request, ctx)) === 'Allowed') allowed.push(describeRequest(request));
    expect(allowed).toEqual([]);
  });
});

/**
 * The same check for the other layouts (DESIGN §10): an existing bucket (its uploads arrive as
 * EventBridge events on the render queue), with outputs in it or in a separate bucket, and a
 * created bucket with a separate output bucket. Each runs renders (fan-out through the queue,
 * a re-upload whose older generation is deleted, a deleted source) and a reprocess run, with the
 * mode's own environment and policies; every call must be allowed, and with an output bucket
 * no write to the source bucket may be.
 */
describe.each<{ name: string; parameters: Record<string, string>; source: string; output: string }>([
  { name: 'existing bucket, outputs in it', parameters: { SourceBucketMode: 'existing', ExistingBucketName: 'their-pdfs' }, source: 'their-pdfs', output: 'their-pdfs' },
  { name: 'existing bucket, separate output bucket', parameters: { SourceBucketMode: 'existing', ExistingBucketName: 'their-pdfs', OutputBucketName: 'our-renders' }, source: 'their-pdfs', output: 'our-renders' },
  { name: 'created bucket, separate output bucket', parameters: { OutputBucketName: 'our-renders' }, source: BUCKET, output: 'our-renders' },
])('IAM, call by call: $name', ({ parameters, source, output }) => {
  const recorder = new IamRecorder();
  const modeCtx = localContext(template, parameters, {});
  const existing = parameters['SourceBucketMode'] === 'existing';
  const modeConfig = (logicalId: string, extra: Record<string, string>): Config =>
    loadConfig({ ...resolvedEnvironment(templateFunction(template, logicalId), template, modeCtx), S3_ENDPOINT: s3Endpoint(), ...extra });
  /** An upload as this mode delivers it: an EventBridge event, or an S3 notification, in an SQS body. */
  const upload = (key: string) => sqsEventOf([JSON.stringify(existing ? eventBridgeObjectCreated(source, key) : s3PutEvent(source, key))]);
  const denied = async (requests: IamRequest[]) => {
    const allowed: string[] = [];
    for (const request of requests) if ((await decide(template, request, modeCtx)) === 'Allowed') allowed.push(describeRequest(request));
    return allowed;
  };

  beforeAll(async () => {
    await resetS3();
    const queueUrl = await createQueue(testSqsClient(), 'RenderQueue');
    const renderConfig = modeConfig('RenderPdfFunction', { RENDER_QUEUE_URL: queueUrl, FANOUT_PAGES: '2' });
    expect(renderConfig.sourceBucket).toBe(source);
    expect(renderConfig.outputBucket ?? source).toBe(output);
    const render = createRenderHandler(renderConfig, recorder.s3(createS3Client(renderConfig), 'RenderPdfFunction'), {
      queue: sqsWorkQueue(recorder.sqs(createSqsClient(renderConfig), 'RenderPdfFunction', REGION), queueUrl),
    });
    const setup = createS3Client(renderConfig);
    await createBucket(setup, source);
    if (output !== source) await createBucket(setup, output);
    const drainAll = async () => {
      for (let messages = await drain(testSqsClient(), queueUrl); messages.length > 0; messages = await drain(testSqsClient(), queueUrl)) {
        for (const message of messages) await render(sqsEventOf([message.Body!]));
      }
    };
    await putObject(setup, source, `${IN}paper.pdf`, await pdf('arabic-rotations-4p.pdf'));
    expect((await render(upload(`${IN}paper.pdf`))).records[0]?.outcome).toBe('range-stored');
    await drainAll();
    await putObject(setup, source, `${IN}paper.pdf`, await pdf('matplotlib-type3.pdf'));
    expect((await render(upload(`${IN}paper.pdf`))).records[0]?.outcome).toBe('rendered');
    await putObject(setup, source, `${IN}gone.pdf`, await pdf('matplotlib-type3.pdf'));
    await setup.send(new DeleteObjectCommand({ Bucket: source, Key: `${IN}gone.pdf` }));
    expect((await render(upload(`${IN}gone.pdf`))).records[0]?.outcome).toBe('ignored');

    await putObject(setup, source, `${IN}new.pdf`, await pdf('matplotlib-type3.pdf'));
    const reprocessConfig = modeConfig('ReprocessFunction', { RENDER_QUEUE_URL: queueUrl });
    const reprocess = createReprocessHandler(reprocessConfig, {
      s3: recorder.s3(createS3Client(reprocessConfig), 'ReprocessFunction'),
      dispatcher: new QueueDispatcher(sqsWorkQueue(recorder.sqs(createSqsClient(reprocessConfig), 'ReprocessFunction', REGION), queueUrl)),
      recentMs: 0,
    });
    expect((await reprocess({ force: true })).dispatched).toBeGreaterThan(0);
    expect(await reprocess({ scheduled: true })).toMatchObject({ scheduled: true });
    await drainAll();
  }, 300_000);

  it('recorded reads of the source bucket and writes to the output bucket, from both functions', () => {
    const touched = (principal: string, action: string, bucket: string) =>
      recorder.requests.some((r) => r.principal === principal && r.action === action && r.resource.startsWith(`arn:aws:s3:::${bucket}`));
    for (const action of ['s3:GetObject', 's3:ListBucket']) expect(touched('RenderPdfFunction', action, source), action).toBe(true);
    for (const action of ['s3:PutObject', 's3:DeleteObject', 's3:ListBucket']) expect(touched('RenderPdfFunction', action, output), action).toBe(true);
    expect(touched('ReprocessFunction', 's3:ListBucket', source)).toBe(true);
    expect(touched('ReprocessFunction', 's3:GetObject', output)).toBe(true);
  });

  it('allows every call the functions made', async () => {
    const unique = [...new Map(recorder.requests.map((r) => [key(r), r])).values()];
    const decisions = await Promise.all(unique.map(async (r) => (r.action ? await decide(template, r, modeCtx) : 'unmapped')));
    expect(unique.flatMap((r, i) => (decisions[i] === 'Allowed' ? [] : [`${decisions[i]}: ${describeRequest(r)}`]))).toEqual([]);
  });

  it('denies writes to the source bucket when outputs go elsewhere, and writes under InputPrefix always', async () => {
    const cases: IamRequest[] = [];
    for (const principal of ['RenderPdfFunction', 'ReprocessFunction']) {
      const r = (operation: string, action: string, resource: string, context: Record<string, string> = {}) => cases.push({ principal, operation, action, resource, context });
      const writeTo = (bucket: string, prefix: string) => {
        r('PutObject', 's3:PutObject', `arn:aws:s3:::${bucket}/${prefix}sample.pdf/manifest.json`);
        r('DeleteObject', 's3:DeleteObject', `arn:aws:s3:::${bucket}/${prefix}sample.pdf/0123456789abcdef/page-0001.png`);
        r('AbortMultipartUpload', 's3:AbortMultipartUpload', `arn:aws:s3:::${bucket}/${prefix}sample.pdf/0123456789abcdef/page-0001.png`);
      };
      writeTo(source, IN);
      writeTo(output, IN);
      if (output !== source) {
        for (const prefix of [OUT, '', 'other/']) writeTo(source, prefix);
        // Nothing but the input prefix is read in the source bucket, nothing but the output prefix in the other.
        r('GetObject', 's3:GetObject', `arn:aws:s3:::${source}/${OUT}sample.pdf/manifest.json`);
        r('GetObject', 's3:GetObject', `arn:aws:s3:::${output}/${IN}sample.pdf`);
        r('ListObjectsV2', 's3:ListBucket', `arn:aws:s3:::${source}`, { 's3:prefix': OUT });
      }
      r('ListObjectsV2', 's3:ListBucket', `arn:aws:s3:::${source}`, { 's3:prefix': '' });
      r('GetObject', 's3:GetObject', `arn:aws:s3:::${BUCKET === source ? 'someone-elses-bucket' : BUCKET}/${IN}sample.pdf`);
    }
    expect(await denied(cases)).toEqual([]);
  });
});

describe('IAM of a backfill on S3 Batch Operations: the role the service assumes, and the operator who creates the job', () => {
  const ROLE = 'BatchOperationsRole';
  const roleArn = `arn:aws:iam::123456789012:role/${ROLE}`;
  const taskFunctionArn = `arn:aws:lambda:${REGION}:123456789012:function:ReprocessFunction`;
  const REPORTS = ctx.parameters['BatchReportPrefix']!;
  const INVENTORY = ctx.parameters['InventoryPrefix']!;
  /** docs/backfill-operator-policy.json, its placeholders filled in as for this stack. */
  const operatorPolicy = async () => {
    const text = await readFile(new URL('../docs/backfill-operator-policy.json', import.meta.url), 'utf8');
    const values: Record<string, string> = { Region: REGION, AccountId: '123456789012', BatchOperationsRoleArn: roleArn, BucketName: BUCKET, InventoryPrefix: INVENTORY };
    return JSON.parse(text.replace(/\$\{(\w+)\}/g, (_, name: string) => values[name]!)) as { Version: string; Statement: unknown[] };
  };
  const r = (principal: string, operation: string, action: string, resource: string, context: Record<string, string> = {}): IamRequest => ({ principal, operation, action, resource, context });

  it('lets the role do exactly what a job does: invoke the task function, read the source list and objects and the inventory, write reports', async () => {
    const calls = [
      r(ROLE, 'Invoke', 'lambda:InvokeFunction', taskFunctionArn),
      r(ROLE, 'ListObjectsV2', 's3:ListBucket', `arn:aws:s3:::${BUCKET}`, { 's3:prefix': `${IN}reports/` }),
      r(ROLE, 'GetObject', 's3:GetObject', `arn:aws:s3:::${BUCKET}/${IN}reports/q3.pdf`),
      r(ROLE, 'GetObject', 's3:GetObjectVersion', `arn:aws:s3:::${BUCKET}/${IN}reports/q3.pdf`),
      r(ROLE, 'GetObject', 's3:GetObject', `arn:aws:s3:::${BUCKET}/${INVENTORY}${BUCKET}/all/2026-01-01T01-00Z/manifest.json`),
      r(ROLE, 'PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${REPORTS}job-0f1e/results/6217b0fa.csv`),
    ];
    expect(await notAllowed(calls)).toEqual([]);
  });

  it('denies the role anything else: other functions, writes outside the report prefix, outputs, deletes, the queue, other buckets', async () => {
    const other = 'someone-elses-bucket';
    const cases = [
      r(ROLE, 'Invoke', 'lambda:InvokeFunction', `arn:aws:lambda:${REGION}:123456789012:function:RenderPdfFunction`),
      r(ROLE, 'Invoke', 'lambda:InvokeFunction', `arn:aws:lambda:${REGION}:123456789012:function:SomeOtherFunction`),
      r(ROLE, 'PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${IN}evil.pdf`),
      r(ROLE, 'PutObject', 's3:PutObject', `arn:aws:s3:::${BUCKET}/${OUT}reports/q3.pdf/manifest.json`),
      r(ROLE, 'PutObject', 's3:PutObject', `arn:aws:s3:::${other}/${REPORTS}x.csv`),
      r(ROLE, 'GetObject', 's3:GetObject', `arn:aws:s3:::${BUCKET}/${OUT}reports/q3.pdf/manifest.json`),
      r(ROLE, 'GetObject', 's3:GetObject', `arn:aws:s3:::${other}/${IN}a.pdf`),
      r(ROLE, 'ListObjectsV2', 's3:ListBucket', `arn:aws:s3:::${other}`),
      r(ROLE, 'DeleteObject', 's3:DeleteObject', `arn:aws:s3:::${BUCKET}/${IN}a.pdf`),
      r(ROLE, 'SendMessage', 'sqs:SendMessage', `arn:aws:sqs:${REGION}:123456789012:RenderQueue`),
      r(ROLE, 'CreateJob', 's3:CreateJob', '*'),
      r(ROLE, 'PassRole', 'iam:PassRole', roleArn),
    ];
    const allowed: string[] = [];
    for (const request of cases) if ((await decide(template, request)) === 'Allowed') allowed.push(describeRequest(request));
    expect(allowed).toEqual([]);
  });

  it('is assumable by S3 Batch Operations of this account only', () => {
    const trust = resolveIntrinsics(template.Resources[ROLE]!.Properties!['AssumeRolePolicyDocument'] as never, template, ctx) as { Statement: Record<string, unknown>[] };
    expect(trust.Statement).toEqual([
      { Effect: 'Allow', Principal: { Service: 'batchoperations.s3.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } } },
    ]);
  });

  it('gives the operator of docs/backfill-operator-policy.json CreateJob and PassRole of that role to Batch Operations, and nothing else', async () => {
    const policy = await operatorPolicy();
    const operator = (action: string, resource: string, context: Record<string, string> = {}) => r('BackfillOperator', action, action, resource, context);
    const decideAll = async (requests: IamRequest[]) => Promise.all(requests.map(async (q) => `${await decide(template, q, ctx, policy)} ${q.action} ${q.resource} ${JSON.stringify(q.context)}`));
    const allowed = [
      operator('s3:CreateJob', '*'),
      operator('iam:PassRole', roleArn, { 'iam:PassedToService': 'batchoperations.s3.amazonaws.com' }),
      operator('s3:DescribeJob', `arn:aws:s3:${REGION}:123456789012:job/0f1e`),
      operator('s3:UpdateJobStatus', `arn:aws:s3:${REGION}:123456789012:job/0f1e`),
      operator('s3:GetObject', `arn:aws:s3:::${BUCKET}/${INVENTORY}${BUCKET}/all/2026-01-01T01-00Z/manifest.json`),
    ];
    expect((await decideAll(allowed)).filter((d) => !d.startsWith('Allowed'))).toEqual([]);
    const denied = [
      operator('iam:PassRole', roleArn, { 'iam:PassedToService': 'lambda.amazonaws.com' }),
      operator('iam:PassRole', `arn:aws:iam::123456789012:role/AdminRole`, { 'iam:PassedToService': 'batchoperations.s3.amazonaws.com' }),
      operator('lambda:InvokeFunction', taskFunctionArn),
      operator('s3:PutObject', `arn:aws:s3:::${BUCKET}/${IN}a.pdf`),
      operator('s3:GetObject', `arn:aws:s3:::${BUCKET}/${IN}a.pdf`),
      operator('sqs:SendMessage', `arn:aws:sqs:${REGION}:123456789012:RenderQueue`),
    ];
    expect((await decideAll(denied)).filter((d) => d.startsWith('Allowed'))).toEqual([]);
  });
});

describe('IAM of a caller of the page function URL (AuthType AWS_IAM)', () => {
  const pageArn = `arn:aws:lambda:${REGION}:123456789012:function:PageFunction`;
  /** docs/page-caller-policy.json, its placeholder filled in as for this stack. */
  const callerPolicy = async () => {
    const text = await readFile(new URL('../docs/page-caller-policy.json', import.meta.url), 'utf8');
    return JSON.parse(text.replace(/\$\{PageFunctionArn\}/g, pageArn)) as { Version: string; Statement: unknown[] };
  };
  const caller = (action: string, resource: string, context: Record<string, string> = {}): IamRequest => ({ principal: 'PageCaller', operation: action, action, resource, context });

  it('grants both lambda:InvokeFunctionUrl and lambda:InvokeFunction (required since October 2025), through the URL only, on the page function only', async () => {
    const policy = await callerPolicy();
    const decideAll = async (requests: IamRequest[]) => Promise.all(requests.map(async (q) => `${await decide(template, q, ctx, policy)} ${q.action} ${q.resource} ${JSON.stringify(q.context)}`));
    // What a SigV4-signed GET of the URL is authorized as: both actions.
    const allowed = [
      caller('lambda:InvokeFunctionUrl', pageArn, { 'lambda:FunctionUrlAuthType': 'AWS_IAM' }),
      caller('lambda:InvokeFunction', pageArn, { 'lambda:InvokedViaFunctionUrl': 'true' }),
    ];
    expect((await decideAll(allowed)).filter((d) => !d.startsWith('Allowed'))).toEqual([]);
    const denied = [
      // A direct Invoke, not through the URL.
      caller('lambda:InvokeFunction', pageArn),
      caller('lambda:InvokeFunction', pageArn, { 'lambda:InvokedViaFunctionUrl': 'false' }),
      caller('lambda:InvokeFunctionUrl', `arn:aws:lambda:${REGION}:123456789012:function:RenderPdfFunction`, { 'lambda:FunctionUrlAuthType': 'AWS_IAM' }),
      caller('lambda:InvokeFunction', `arn:aws:lambda:${REGION}:123456789012:function:RenderPdfFunction`, { 'lambda:InvokedViaFunctionUrl': 'true' }),
      caller('s3:GetObject', `arn:aws:s3:::${BUCKET}/${IN}a.pdf`),
    ];
    expect((await decideAll(denied)).filter((d) => d.startsWith('Allowed'))).toEqual([]);
  });
});
