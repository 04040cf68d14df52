/**
 * A seeded fault soak of the built render function, driven as AWS drives it (issue 20):
 * moto S3 + SQS, the render queue and its dead-letter queue with the template's redrive, and
 * the local event source mapping (tools/local-queue.ts) running K warm Lambda containers
 * (tools/lambda-container.ts) of the built artifact, one message per invocation, with partial
 * batch responses. Each container reaches S3 through its own fault proxy (tools/fault-proxy.ts),
 * so a fault or a kill is aimed at the invocation that made the request.
 *
 * One seed drives every choice, in named streams (tools/soak/prng.ts): the plan of uploads,
 * duplicates, delayed and late notifications and re-uploads is the same for a seed whatever the
 * timing; faults and kills are drawn request by request, so they repeat as far as timing allows.
 * Every choice is logged (choices.log in the run's folder).
 *
 * When the queue drains, a settle phase does what the scheduled reprocess would do, once; then
 * tools/soak/check.ts checks the invariants for every source key.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, PurgeQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { everyService } from '../../lib/aws/endpoint.js';
import { loadPageConfig } from '../../lib/config/page.js';
import { variantFolderOf } from '../../lib/job/manifest.js';
import { EVENT_SOURCE, type CompletionDetail } from '../../lib/events/completion.js';
import { createEventBridgeClient } from '../../lib/events/eventbridge.js';
import { createS3Client } from '../../lib/s3/client.js';
import { eventBridgeObjectCreated, s3PutEvent } from '../../lib/s3/event.js';
import { decodeEventKey, outputLocation } from '../../lib/s3/layout.js';
import { plainEtag } from '../../lib/s3/source.js';
import { createSqsClient } from '../../lib/sqs/client.js';
import { createSsmClient } from '../../lib/ssm/client.js';
import { buildAll, DIST } from '../build.js';
import { startFaultProxy, type Fault, type FaultProxy, type ProxiedRequest } from '../fault-proxy.js';
import { functionEnvironment, LambdaContainer } from '../lambda-container.js';
import { artifactPool, discard } from '../batch-operations/artifact.js';
import { generateManifest, type ManifestEntry } from '../batch-operations/manifest.js';
import { runBatchJob, tally, type TaskReport } from '../batch-operations/runner.js';
import { createRenderQueues, pollQueue } from '../local-queue.js';
import { startMoto, type LocalS3 } from '../moto.js';
import { loadTemplate, localContext, resolveIntrinsics, templateFunction, type Template } from '../template.js';
import { breakTarget, brokenArtifact, type BreakName } from './break.js';
import { checkInvariants, type EventsSource, type FinalEvent, type Invariant, INVARIANTS, type Violation } from './check.js';
import { chooseKey, functionFormat, percentEncodeKey, type Intake, type KeyChoice } from './keys.js';
import { startPageRequester, type PageRequester, type UploadRecord } from './pages.js';
import { corpusDocs, generatedDocs, pageBoxesOf, type Expected, type SoakDoc } from './docs.js';
import { Prng } from './prng.js';

export interface SoakOptions {
  seed: number;
  /** Source keys uploaded (each once, some again with new content). */
  docs: number;
  /** How long uploads go on; the drain and the settle phase come after. */
  minutes: number;
  /** Warm containers, and invocations at once (the mapping's MaximumConcurrency). */
  concurrency: number;
  /** Each invocation's budget (the function's Timeout, shortened). Default 8 s: 3 s of drawing past the 5 s reserve. */
  budgetMs?: number;
  /** FANOUT_PAGES: small, so fan-out ranges and continuations interleave. */
  fanoutPages?: number;
  dpi?: number;
  /** Documents that take many invocations (the corpus's books): default in soaks of 5 minutes or more. */
  heavy?: boolean;
  /** Another build of the render function (default: dist/RenderPdfFunction, built first). */
  renderArtifact?: string;
  /** Break the function on purpose (tools/soak/break.ts). */
  breakName?: BreakName;
  /** Give up waiting for the queue to drain after this long past the upload phase (a violation). */
  drainLimitMs?: number;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
  /** More invariants (the integrator's "one final event per final commit"), and where their events come from. */
  invariants?: readonly Invariant[];
  events?: EventsSource;
  /** Keep the run's folder (logs, choices) instead of removing it after a passing run. */
  keepWorkDir?: boolean;
  /** The page function in signed mode (PAGE_URL_AUTH_TYPE NONE, a secret in SSM): every page URL signed, every IIIF URL with a document token. Default: even seeds. */
  signed?: boolean;
}

export interface SoakResult {
  violations: Violation[];
  passed: number;
  failed: number;
  figures: [string, string][];
  /** How much of each path of issue 27 the run drove (CI holds its seeds to all of them). */
  coverage: { formats: number; intakes: number; pageRequests: number; pageImages: number; iiifRequests: number; iiifImages: number; batchTasks: number; putEvents: number; eventFaults: number };
  /** The report: one line per violation, the figures, then "N passed, M failed". */
  lines: string[];
  workDir: string;
}

const BUCKET = 'soak';
const INPUT_PREFIX = 'incoming/';
const OUTPUT_PREFIX = 'rendered/';

/** How often each fault is drawn per S3 request of an invocation that may still fail. */
const FAULT_RATES: [number, Fault['kind'] | 'slowdown' | 'internal', string][] = [
  [0.02, 'slowdown', '503 SlowDown'],
  [0.015, 'internal', '500 InternalError'],
  [0.01, 'reset', 'connection reset'],
  [0.008, 'lost-response', 'lost response'],
  [0.06, 'delay', 'latency'],
];
/**
 * How often each fault is drawn per PutEvents of an invocation that may still fail: PutEvents
 * is one request per final commit, so its rates are far above S3's. A slow answer arrives after
 * the client's 2 s timeout (lib/events/eventbridge.ts), so the bus took the event and the sender
 * does not know; a lost answer likewise.
 */
const EVENT_FAULT_RATES: [number, 'internal' | 'throttled' | 'entry-throttled' | 'slow' | 'lost-response', string][] = [
  [0.08, 'internal', '500 InternalException'],
  [0.08, 'throttled', '400 ThrottlingException'],
  [0.06, 'entry-throttled', '200 with a throttled entry'],
  [0.08, 'slow', 'answer after the client timeout'],
  [0.08, 'lost-response', 'lost answer'],
];
/** The answer of a slow PutEvents: past the client's 2 s request timeout. */
const SLOW_EVENT_ANSWER_MS = 2_600;
/** Kill chance per PutEvents the bus accepted, before its answer: the event is out, the sender never knew. */
const KILL_AFTER_EVENT = 0.05;
/** Kill chances: per invocation (at a random moment), per manifest PUT before it reaches S3, per manifest PUT after S3 applied it. */
const KILL_MID_INVOCATION = 0.06;
const KILL_BEFORE_COMMIT = 0.05;
const KILL_AFTER_COMMIT = 0.06;
/**
 * IIIF_DPI of the soak's page function: a Letter page is 850x1100, three levels of 512 px tiles
 * (scale factors 1, 2, 4), each tile a few milliseconds of drawing.
 */
const SOAK_IIIF_DPI = 100;
const IIIF_BASE_URL = 'https://iiif.soak.example';
const SIGNING_PARAMETER = '/s3-pdf-render/soak-url-secret';
const SIGNING_SECRET = 'the-soak-signing-secret-32-chars';
/** The page function's S3 writes: its variants and IIIF files only, in a variant folder of its source's output prefix (as the IAM policy allows). */
const PAGE_WRITE = /^[0-9a-f]{16}\/(?:(?:variant|iiif)-\d{4,}-[0-9a-f]{16}\.\w+|iiif-pages\.json|iiif-manifest-[0-9a-f]{16}\.json)$/;

/** The share of uploads that are heavy documents, where they are in the pool. */
const HEAVY_SHARE = 0.05;

interface Slot {
  index: number;
  proxy: FaultProxy;
  container?: LambdaContainer;
  /** The invocation running in this container. */
  invocation?: { receiveCount: number; key: string; multipartKeys: Set<string>; killed: boolean };
}

class Counter {
  readonly counts = new Map<string, number>();
  add(name: string, n = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + n);
  }
  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }
  total(prefix: string): number {
    return [...this.counts].filter(([k]) => k.startsWith(prefix)).reduce((s, [, v]) => s + v, 0);
  }
  describe(prefix: string): string {
    const parts = [...this.counts].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => `${k.slice(prefix.length)} ${v}`);
    return parts.length ? ` (${parts.join(', ')})` : '';
  }
}

function queueSettings(template: Template): { maxReceiveCount: number; visibilityS: number; timeoutS: number } {
  const ctx = localContext(template);
  const queue = template.Resources['RenderQueue']?.Properties as { VisibilityTimeout?: number; RedrivePolicy?: { maxReceiveCount?: number } } | undefined;
  const maxReceiveCount = Number(queue?.RedrivePolicy?.maxReceiveCount);
  const visibilityS = Number(queue?.VisibilityTimeout);
  const timeoutS = Number(resolveIntrinsics(templateFunction(template, 'RenderPdfFunction').timeout, template, ctx));
  if (!(maxReceiveCount > 0) || !(visibilityS > 0) || !(timeoutS > 0)) throw new Error('template.yaml: RenderQueue needs VisibilityTimeout and RedrivePolicy.maxReceiveCount, RenderPdfFunction a Timeout');
  return { maxReceiveCount, visibilityS, timeoutS };
}

/**
 * Which service a proxied request is for: moto serves SQS and EventBridge on the S3 port, and the
 * function's clients follow S3_ENDPOINT. JSON protocols name their operation in X-Amz-Target
 * (AmazonSQS.SendMessage, AWSEvents.PutEvents); SQS's query protocol posts to "/" or a queue's
 * path. SQS is never faulted (the mapping's own traffic is not the function's to survive);
 * EventBridge is (issue 27: before, every JSON request counted as SQS, so PutEvents never was).
 */
export function serviceOf(req: Pick<ProxiedRequest, 'headers' | 'path'>): 's3' | 'sqs' | 'eventbridge' {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target.startsWith('AWSEvents.') ? 'eventbridge' : 'sqs';
  return req.path === '/' || /^\/\d{12}\//.test(req.path) ? 'sqs' : 's3';
}

const jsonError = (status: number, type: string): Fault => ({
  kind: 'response',
  status,
  headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'soak' },
  body: JSON.stringify({ __type: type, message: 'injected by the soak' }),
});

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const started = Date.now();
  const budgetMs = options.budgetMs ?? 8_000;
  const heavy = options.heavy ?? options.minutes >= 5;
  const workDir = await mkdtemp(join(tmpdir(), `soak-${options.seed}-`));
  const choices = createWriteStream(join(workDir, 'choices.log'));
  const functionLogs = createWriteStream(join(workDir, 'function.log'));
  const elapsed = (): string => ((Date.now() - started) / 1000).toFixed(2).padStart(7);
  const choose = (line: string): void => void choices.write(`${elapsed()} ${line}\n`);
  const progress = options.progress ?? (() => undefined);
  const counts = new Counter();

  const plan = new Prng(options.seed, 'plan');
  const faults = new Prng(options.seed, 'faults');
  const kills = new Prng(options.seed, 'kills');
  const eventFaults = new Prng(options.seed, 'event-faults');
  const pageRng = new Prng(options.seed, 'pages');
  const pageFaults = new Prng(options.seed, 'page-faults');

  progress(`soak seed ${options.seed}: building the artifacts`);
  await buildAll();
  const built = options.renderArtifact ?? join(DIST, 'RenderPdfFunction');
  const breakFn = options.breakName ? breakTarget(options.breakName) : undefined;
  const renderArtifact = options.breakName && breakFn === 'RenderPdfFunction' ? await brokenArtifact(built, workDir, options.breakName) : built;
  const artifactOf = async (fn: 'PageFunction' | 'ReprocessFunction'): Promise<string> =>
    options.breakName && breakFn === fn ? brokenArtifact(join(DIST, fn), workDir, options.breakName) : join(DIST, fn);
  const pageArtifact = await artifactOf('PageFunction');
  const reprocessArtifact = await artifactOf('ReprocessFunction');
  if (options.breakName) progress(`soak: the function is broken on purpose (${options.breakName})`);

  const template = loadTemplate();
  const renderFn = templateFunction(template, 'RenderPdfFunction');
  const reprocessFn = templateFunction(template, 'ReprocessFunction');
  const pageFn = templateFunction(template, 'PageFunction');
  const { maxReceiveCount, visibilityS, timeoutS } = queueSettings(template);
  // The template's visibility timeout in proportion to the function's Timeout, at the soak's budget.
  const visibilityTimeoutS = Math.ceil((budgetMs / 1000) * (visibilityS / timeoutS));

  let moto: LocalS3 | undefined;
  const slots: Slot[] = [];
  const pending = new Set<Promise<unknown>>();
  let lines: string[] = [];
  let violations: Violation[] = [];
  let passed = 0;
  let failed = 0;
  let figures: [string, string][] = [];
  let coverage: SoakResult['coverage'] = { formats: 0, intakes: 0, pageRequests: 0, pageImages: 0, iiifRequests: 0, iiifImages: 0, batchTasks: 0, putEvents: 0, eventFaults: 0 };
  const signed = options.signed ?? options.seed % 2 === 0;
  let pageProxy: FaultProxy | undefined;
  let pages: PageRequester | undefined;
  try {
    // moto takes a while to start on a loaded machine: a slow start is not what the soak is about.
    for (let attempt = 1; !moto; attempt++) {
      try {
        moto = await startMoto();
      } catch (err) {
        if (attempt >= 3) throw err;
        progress(`soak: moto did not start (${(err as Error).message.split('\n')[0]}); again`);
      }
    }
    const s3 = createS3Client({ endpoints: everyService(moto.endpoint) });
    const sqs = createSqsClient({ endpoints: everyService(moto.endpoint) });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    // Versioned, so an old version's late notification names a version that is not current.
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
    const queues = await createRenderQueues(sqs, { name: 'SoakRenderQueue', maxReceiveCount, visibilityTimeoutS });
    // No bucket notification: the soak sends each upload's event itself, in the encoding of the
    // key's intake (an S3 notification form-encodes the key, an EventBridge event percent-encodes it).
    // Completion events (EVENT_BUS=default, as the template sets it): the sample rule of
    // docs/contract.md sends every s3-pdf-render event to a queue read after the run.
    const eventsQueueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'SoakRenderEvents' }))).QueueUrl!;
    const eventsQueueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: eventsQueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!['QueueArn']!;
    const eventBridge = createEventBridgeClient(
      { endpoints: everyService(moto.endpoint) },
      { maxAttempts: 3 },
    );
    await eventBridge.send(new PutRuleCommand({ Name: 'soak-render-events', EventBusName: 'default', EventPattern: JSON.stringify({ source: [EVENT_SOURCE] }) }));
    await eventBridge.send(new PutTargetsCommand({ Rule: 'soak-render-events', EventBusName: 'default', Targets: [{ Id: 'queue', Arn: eventsQueueArn }] }));
    await sqs.send(new PurgeQueueCommand({ QueueUrl: queues.queueUrl }));
    choose(`seed ${options.seed}, ${options.docs} documents over ${options.minutes} min, ${options.concurrency} containers, budget ${budgetMs} ms, visibility ${visibilityTimeoutS} s, maxReceiveCount ${maxReceiveCount}`);

    // --- The documents and what each etag must end as.
    const pool = [...corpusDocs(), ...generatedDocs()].filter((d) => heavy || !d.heavy);
    const light = pool.filter((d) => !d.heavy);
    const weighty = pool.filter((d) => d.heavy);
    // Heavy documents (books of hundreds of pages: tens of fan-out ranges each) are one upload in twenty.
    const pickDoc = (): SoakDoc => (weighty.length > 0 && plan.chance(HEAVY_SHARE) ? plan.pick(weighty) : plan.pick(light));
    const expected = new Map<string, Expected>();
    /** The document each etag is (its pages' boxes, for the IIIF checks). */
    const docOfEtag = new Map<string, SoakDoc>();
    const bodies = new Map<string, Uint8Array>();
    const bodyOf = async (doc: SoakDoc): Promise<Uint8Array> => {
      let body = bodies.get(doc.name);
      if (!body) bodies.set(doc.name, (body = await doc.body()));
      return body;
    };
    /** What each key is besides its document: name, metadata, intake (keys.ts). */
    const choiceOf = new Map<string, KeyChoice>();
    /** Every upload of each key, in order (the page requests are judged against them). */
    const uploadsOf = new Map<string, UploadRecord[]>();
    const upload = async (key: string, doc: SoakDoc): Promise<{ etag: string; versionId?: string; size: number }> => {
      const body = await bodyOf(doc);
      const startedAt = Date.now();
      const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: choiceOf.get(key)?.metadata ?? {} }));
      const etag = plainEtag(put.ETag);
      expected.set(etag, doc.expected);
      docOfEtag.set(etag, doc);
      uploadsOf.set(key, [...(uploadsOf.get(key) ?? []), { etag, startedAt, doneAt: Date.now() }]);
      counts.add('uploads');
      choose(`upload ${key} <- ${doc.name} etag ${etag}`);
      const object = { etag, ...(put.VersionId ? { versionId: put.VersionId } : {}), size: body.byteLength };
      // The upload's own event, as S3 (or EventBridge) sends it.
      await notify(key, object, 0, 'event of the upload');
      return object;
    };
    const notify = async (key: string, object: { etag: string; versionId?: string; size: number }, delayS: number, why: string): Promise<void> => {
      const intake = choiceOf.get(key)?.intake ?? 's3';
      const event =
        intake === 'eventbridge'
          ? eventBridgeObjectCreated(BUCKET, percentEncodeKey(key), { etag: object.etag, size: object.size, ...(object.versionId ? { versionId: object.versionId } : {}) })
          : s3PutEvent(BUCKET, key, { eTag: object.etag, size: object.size, ...(object.versionId ? { versionId: object.versionId } : {}) });
      await sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: JSON.stringify(event), DelaySeconds: delayS }));
      counts.add(`intake:${intake}`);
      choose(`${why} ${key} etag ${object.etag} delay ${delayS} s via ${intake}`);
    };
    const track = <T>(work: Promise<T>): void => {
      const tracked: Promise<unknown> = work.catch((err: unknown) => choose(`background work failed: ${(err as Error).message}`)).finally(() => pending.delete(tracked));
      pending.add(tracked);
    };

    /** Keys whose re-upload waits for their render's first page (a re-upload while a render is in flight). */
    const reuploadOnFirstPage = new Map<string, () => Promise<void>>();
    const killedMultipartKeys = new Set<string>();
    /** Source keys one of whose invocations was killed or timed out (its completion event may be lost). */
    const interrupted = new Set<string>();
    let chaos = true;

    const reupload = async (key: string, first: { etag: string; versionId?: string; size: number }, doc: SoakDoc, late: boolean): Promise<void> => {
      await upload(key, doc);
      counts.add('re-uploads');
      // What was last asked of the key, asked again: the old source's variant must not answer.
      pages?.repeat(key);
      // The old version's notification after the new one's (S3 does not promise order).
      if (late) {
        counts.add('late events');
        await notify(key, first, 0, 'late notification of the old version');
      }
    };

    // --- The plan: the same for a seed whatever the timing.
    const uploadMs = options.minutes * 60_000;
    const times = Array.from({ length: options.docs }, () => plan.next() * uploadMs).sort((a, b) => a - b);
    // The function's FORMAT for this run, and whether keys arrive by S3 notifications, EventBridge, or each its own way.
    const runFormat = functionFormat(plan);
    const intakes: Intake[] = plan.pick([['s3'], ['eventbridge'], ['s3', 'eventbridge']]);
    choose(`FORMAT ${runFormat}, intakes ${intakes.join(' and ')}`);
    const schedule: { at: number; run: () => Promise<void> }[] = times.map((at, i) => {
      const doc = pickDoc();
      const choice = chooseKey(plan, runFormat, intakes);
      const key = `${INPUT_PREFIX}soak/${String(i).padStart(3, '0')}-${choice.decoration}${doc.name}`;
      choiceOf.set(key, choice);
      counts.add(`format:${choice.format}`);
      counts.add(`key intake:${choice.intake}`);
      if (choice.metadata['render-thumbnail-width']) counts.add('keys with thumbnails');
      if (choice.metadata['render-text']) counts.add('keys with text');
      if (choice.decoration) counts.add('keys with a hard name');
      choose(`key ${key}: ${choice.intake}, ${choice.format}, metadata ${JSON.stringify(choice.metadata)}`);
      const duplicate = plan.chance(0.3) ? plan.int(0, 8) : undefined;
      const again = plan.chance(0.2) ? plan.pick(pool.filter((d) => d.name !== doc.name)) : undefined;
      const midRender = plan.chance(0.6);
      const againAfterMs = plan.int(200, 4_000);
      const late = plan.chance(0.5);
      return {
        at,
        run: async () => {
          const first = await upload(key, doc);
          if (duplicate !== undefined) {
            counts.add('duplicates');
            track(notify(key, first, duplicate, duplicate > 0 ? 'delayed duplicate notification' : 'duplicate notification'));
          }
          if (again) {
            const go = () => reupload(key, first, again, late);
            if (midRender && !doc.expected.status.startsWith('failed')) {
              reuploadOnFirstPage.set(key, go);
              // If no page is ever written in time (a kill first), the re-upload still comes.
              track(
                new Promise((r) => setTimeout(r, 30_000)).then(async () => {
                  if (reuploadOnFirstPage.get(key) !== go) return;
                  reuploadOnFirstPage.delete(key);
                  await go();
                }),
              );
            } else track(new Promise((r) => setTimeout(r, againAfterMs)).then(go));
          }
        },
      };
    });
    // A reprocess run in the middle of the uploads, as the schedule could fire any time.
    const reprocessAt = uploadMs / 2;
    const batchAt = uploadMs * 0.7;

    // --- Containers, each behind its own proxy.
    const killSlot = (slot: Slot, where: string): void => {
      const inv = slot.invocation;
      if (!inv || inv.killed || !slot.container) return;
      inv.killed = true;
      interrupted.add(inv.key);
      counts.add(`kill:${where}`);
      for (const k of inv.multipartKeys) killedMultipartKeys.add(k);
      choose(`kill container ${slot.index} ${where} (${inv.key}, receive ${inv.receiveCount})`);
      slot.container.kill();
    };
    const decideEvent = (slot: Slot): Fault | undefined => {
      const inv = slot.invocation;
      counts.add('PutEvents requests');
      if (!chaos || !inv || inv.killed || inv.receiveCount >= maxReceiveCount - 1) return undefined;
      if (inv.receiveCount <= maxReceiveCount - 2 && eventFaults.chance(KILL_AFTER_EVENT)) return { kind: 'after', after: () => killSlot(slot, 'after-event') };
      let r = eventFaults.next();
      for (const [rate, kind, name] of EVENT_FAULT_RATES) {
        if (r >= rate) {
          r -= rate;
          continue;
        }
        counts.add(`event fault:${name}`);
        choose(`event fault ${name} on PutEvents (${inv.key}, container ${slot.index})`);
        if (kind === 'internal') return jsonError(500, 'InternalException');
        if (kind === 'throttled') return jsonError(400, 'ThrottlingException');
        if (kind === 'slow') return { kind: 'after', after: () => new Promise((resolve) => setTimeout(resolve, SLOW_EVENT_ANSWER_MS)) };
        if (kind === 'lost-response') return { kind: 'lost-response' };
        return {
          kind: 'response',
          status: 200,
          headers: { 'content-type': 'application/x-amz-json-1.1' },
          body: JSON.stringify({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded (injected by the soak)' }] }),
        };
      }
      return undefined;
    };
    const decide = (slot: Slot, req: ProxiedRequest): Fault | undefined => {
      const service = serviceOf(req);
      if (service === 'sqs') return undefined;
      if (service === 'eventbridge') return req.headers['x-amz-target'] === 'AWSEvents.PutEvents' ? decideEvent(slot) : undefined;
      const inv = slot.invocation;
      const objectKey = req.path.slice(`/${BUCKET}/`.length);
      if (inv && req.method === 'POST' && /(^|&)uploads(=|&|$)/.test(req.query)) inv.multipartKeys.add(objectKey);
      if (req.method === 'PUT' && /\/page-\d+\.(png|jpg|webp)$/.test(objectKey)) {
        for (const [key, go] of reuploadOnFirstPage) {
          if (!objectKey.startsWith(`${OUTPUT_PREFIX}${key.slice(INPUT_PREFIX.length)}/`)) continue;
          reuploadOnFirstPage.delete(key);
          choose(`re-upload ${key} while its render writes ${objectKey}`);
          track(go());
        }
      }
      // The last receives run without chaos: a message failed maxReceiveCount times by injected faults alone is dead-lettered by design.
      if (!chaos || !inv || inv.killed || inv.receiveCount >= maxReceiveCount - 1) return undefined;
      if (req.method === 'PUT' && objectKey.startsWith(OUTPUT_PREFIX) && objectKey.endsWith('/manifest.json') && inv.receiveCount <= maxReceiveCount - 2) {
        const r = kills.next();
        if (r < KILL_BEFORE_COMMIT) {
          // Every page written, the commit not yet at S3.
          killSlot(slot, 'before-commit');
          return { kind: 'reset' };
        }
        if (r < KILL_BEFORE_COMMIT + KILL_AFTER_COMMIT) return { kind: 'after', after: () => killSlot(slot, 'after-commit') };
      }
      let r = faults.next();
      for (const [rate, kind, name] of FAULT_RATES) {
        if (r >= rate) {
          r -= rate;
          continue;
        }
        // A CreateMultipartUpload whose answer is lost leaves an upload no one knows of: the lifecycle rule's, not the function's.
        if (kind === 'lost-response' && req.method === 'POST' && /(^|&)uploads/.test(req.query)) return undefined;
        const conditional = req.headers['if-match'] !== undefined || req.headers['if-none-match'] !== undefined;
        const deletion = req.method === 'DELETE' || (req.method === 'POST' && /(^|&)delete(=|&|$)/.test(req.query));
        counts.add(`fault:${name}`);
        if (conditional) counts.add('faulted conditional writes');
        if (deletion) counts.add('faulted deletes');
        choose(`fault ${name} on ${req.method} ${objectKey}${req.query ? `?${req.query.slice(0, 40)}` : ''} (container ${slot.index})`);
        if (kind === 'slowdown') return { kind: 'status', status: 503, code: 'SlowDown' };
        if (kind === 'internal') return { kind: 'status', status: 500, code: 'InternalError' };
        if (kind === 'delay') return { kind: 'delay', ms: faults.int(20, 400) };
        return { kind } as Fault;
      }
      return undefined;
    };
    const functionEnv = (endpoint: string): Record<string, string> => ({
      S3_ENDPOINT: endpoint,
      RENDER_QUEUE_URL: queues.queueUrl,
      SOURCE_BUCKET: BUCKET,
      INPUT_PREFIX,
      OUTPUT_PREFIX,
      DPI: String(options.dpi ?? 36),
      // The run's format: keys without render-format metadata end in it (the page function's too).
      FORMAT: runFormat,
      FANOUT_PAGES: String(options.fanoutPages ?? 6),
      // Budgets far above what the soak's documents need: "complete" is the expected end.
      DOCUMENT_MAX_HOPS: '1000',
      DOCUMENT_MAX_RENDER_SECONDS: '86400',
    });
    for (let index = 0; index < options.concurrency; index++) {
      const slot: Slot = { index, proxy: await startFaultProxy(moto.endpoint, { keepLog: false }) };
      slot.proxy.setDecider((req) => decide(slot, req));
      slots.push(slot);
    }
    const startContainer = async (slot: Slot): Promise<LambdaContainer> => {
      // Each sandbox its own /tmp, as in Lambda: a killed render's job folder dies with its sandbox, not in the machine's /tmp.
      const sandboxTmp = await mkdtemp(join(workDir, `tmp-${slot.index}-`));
      const { container, initError } = await LambdaContainer.start(template, renderFn, {
        artifactDir: renderArtifact,
        extraEnv: { ...functionEnv(slot.proxy.endpoint), TMPDIR: sandboxTmp },
        timeoutMs: budgetMs,
        logs: functionLogs,
      });
      if (initError) throw new Error(`the render function did not start: ${JSON.stringify(initError.payload)}`);
      counts.add('cold starts');
      return container;
    };
    const runReprocess = async (recentSeconds: number, why: string): Promise<void> => {
      const { container, initError } = await LambdaContainer.start(template, reprocessFn, {
        artifactDir: reprocessArtifact,
        extraEnv: { ...functionEnv(moto!.endpoint), RECENT_UPLOAD_SECONDS: String(recentSeconds) },
        logs: functionLogs,
      });
      try {
        if (initError) throw new Error(`the reprocess function did not start: ${JSON.stringify(initError.payload)}`);
        const outcome = await container.invoke({});
        counts.add('reprocess runs');
        choose(`reprocess (${why}): ${JSON.stringify(outcome.payload).slice(0, 300)}`);
        if (!outcome.ok) throw new Error(`the reprocess run failed: ${JSON.stringify(outcome.payload)}`);
      } finally {
        await container.close();
      }
    };

    /**
     * A Batch Operations job over every PDF under the input prefix (tools/batch-operations: the
     * manifest S3's generator would make, one schema-2.0 task each), plus one task for a bucket
     * that is not the function's. Each task's answer must hold exactly one result for it; ours
     * succeed, the foreign one is a PermanentFailure (issue 27: a misdirected job must fail).
     */
    const FOREIGN_BUCKET = 'soak-foreign';
    const runBatch = async (recentSeconds: number, why: string): Promise<void> => {
      const entries: ManifestEntry[] = [...(await generateManifest(s3, BUCKET, { prefix: INPUT_PREFIX, suffixes: ['.pdf', '.PDF'] })), { bucket: FOREIGN_BUCKET, encodedKey: 'incoming/soak/elsewhere.pdf' }];
      const pool = await artifactPool(template, reprocessFn, 1, { artifactDir: reprocessArtifact, extraEnv: { ...functionEnv(moto!.endpoint), RECENT_UPLOAD_SECONDS: String(recentSeconds) }, logs: discard() });
      const keyOfEntry = (entry: ManifestEntry): string => (entry.bucket === BUCKET ? decodeEventKey(entry.encodedKey) : `(batch task for s3://${entry.bucket})`);
      try {
        const run = await runBatchJob(entries, {
          concurrency: 1,
          retryDelayMs: 50,
          invoke: async (event) => {
            const answer = await pool.invoke(event);
            const task = (event as { tasks: { taskId: string; s3Bucket: string; s3Key: string }[] }).tasks[0]!;
            const results = ((answer as { results?: { taskId?: string }[] })?.results ?? []).filter((r) => r.taskId === task.taskId);
            counts.add('batch task invocations');
            if (results.length !== 1) note(batchProblems, keyOfEntry({ bucket: task.s3Bucket, encodedKey: task.s3Key }), `${why}: ${results.length} results for one task: ${JSON.stringify(answer).slice(0, 200)}`);
            return answer;
          },
        });
        for (const report of run.reports) checkTask(report, why, keyOfEntry(report.entry));
        counts.add('batch tasks', run.reports.length);
        for (const [label, n] of Object.entries(tally(run.reports))) counts.add(`batch:${label}`, n);
        choose(`batch job (${why}): ${entries.length} tasks, ${JSON.stringify(tally(run.reports))}`);
      } finally {
        await pool.close();
      }
    };
    const checkTask = (report: TaskReport, why: string, key: string): void => {
      if (report.entry.bucket !== BUCKET) {
        if (report.resultCode !== 'PermanentFailure') note(batchProblems, key, `${why}: a task for another bucket ended ${report.resultCode} ${report.resultString}, not PermanentFailure`);
        return;
      }
      if (report.resultCode !== 'Succeeded') note(batchProblems, key, `${why}: the task ended ${report.resultCode} ${report.resultString}`);
    };
    // Any violation outside the per-key checks (a batch task for a foreign bucket) is its own failure.
    const batchViolations = (): Violation[] =>
      [...batchProblems].filter(([key]) => key.startsWith('(')).map(([key, details]) => ({ key, invariant: 'every batch task gets exactly one right result', detail: details.join('; ') }));

    const free: Slot[] = [...slots];
    const seenMessages = new Set<string>();
    /** Where the soak is: dispatches in 'settle' and 'after settle' find every key rendered, so none may be skipped as up to date. */
    let phase: 'run' | 'settle' | 'after settle' = 'run';
    const upToDateDispatches = new Map<string, string[]>();
    const renderedBySettle = new Map<string, string[]>();
    const batchProblems = new Map<string, string[]>();
    const note = (map: Map<string, string[]>, key: string, text: string): void => void map.set(key, [...(map.get(key) ?? []), text]);
    const invoke = async (event: SQSEvent) => {
      const slot = free.pop();
      if (!slot) throw new Error('the poller ran more invocations than containers');
      const record = event.Records[0]!;
      const receiveCount = Number(record.attributes.ApproximateReceiveCount);
      let key = '?';
      let dispatched = false;
      try {
        const body = JSON.parse(record.body) as { type?: string; key?: string; pages?: { range?: unknown; hop?: number }; Records?: { s3: { object: { key: string } } }[]; detail?: { object?: { key?: string } } };
        key = body.key ?? (body.Records?.[0] ? decodeEventKey(body.Records[0].s3.object.key) : body.detail?.object?.key ? decodeURIComponent(body.detail.object.key) : '?');
        dispatched = body.type === 'render' && !body.pages;
        if (!seenMessages.has(record.messageId)) {
          seenMessages.add(record.messageId);
          if (body.type === 'render' && body.pages?.range && body.pages.hop === 0) counts.add('fan-out ranges');
          else if (body.type === 'render' && body.pages) counts.add('continuations');
          else if (body.type === 'render') counts.add('reprocess requests');
          else counts.add('events');
        }
      } catch {
        // A body the function will reject: its own business.
      }
      if (receiveCount > 1) counts.add('redeliveries');
      try {
        if (!slot.container || slot.container.ended) slot.container = await startContainer(slot);
        slot.invocation = { receiveCount, key, multipartKeys: new Set(), killed: false };
        counts.add('invocations');
        let timer: NodeJS.Timeout | undefined;
        if (chaos && receiveCount <= maxReceiveCount - 2 && kills.chance(KILL_MID_INVOCATION)) {
          const at = kills.int(0, budgetMs);
          timer = setTimeout(() => killSlot(slot, 'mid-invocation'), at);
        }
        try {
          const outcome = await slot.container.invoke(event);
          if (!outcome.ok) {
            if ((outcome.payload as { errorType?: string }).errorType === 'Sandbox.Timedout') {
              counts.add('timeouts');
              interrupted.add(slot.invocation.key);
              for (const k of slot.invocation.multipartKeys) killedMultipartKeys.add(k);
            }
            throw new Error(JSON.stringify(outcome.payload).slice(0, 200));
          }
          const result = outcome.payload as { batchItemFailures?: { itemIdentifier: string }[]; records?: { key: string; outcome: string; status?: string; reason?: string }[] };
          if (dispatched) {
            counts.add(`dispatches ${phase}`);
            for (const r of result.records ?? []) {
              counts.add(`dispatch outcome:${r.outcome}`);
              // During the run a dispatch can race the upload's own event; after the drain nothing can.
              if (r.outcome === 'up-to-date') {
                counts.add(`dispatches up to date ${phase}`);
                if (phase !== 'run') note(upToDateDispatches, r.key, `dispatched in the ${phase} phase, skipped as up to date${r.reason ? ` (${r.reason})` : ''}`);
              } else if (phase !== 'run' && ['rendered', 'continued', 'range-stored'].includes(r.outcome)) {
                note(renderedBySettle, r.key, `the ${phase} pass dispatched it and the render function ${r.outcome} it${r.status ? ` (${r.status})` : ''}: its own events had not, or the pass asked again for a result already there`);
              }
            }
          }
          return result;
        } finally {
          clearTimeout(timer);
        }
      } finally {
        slot.invocation = undefined;
        free.push(slot);
      }
    };

    let uploadsDone = false;
    let lastCheck = 0;
    let lastAnswer = false;
    const drained = async (): Promise<boolean> => {
      if (!uploadsDone || pending.size > 0) return false;
      if (Date.now() - lastCheck < 500) return lastAnswer;
      lastCheck = Date.now();
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queues.queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
        }),
      );
      lastAnswer = [Attributes.ApproximateNumberOfMessages, Attributes.ApproximateNumberOfMessagesNotVisible, Attributes.ApproximateNumberOfMessagesDelayed].every((n) => Number(n ?? 0) === 0);
      return lastAnswer;
    };

    const poll = (): Promise<unknown> =>
      pollQueue({ sqs, queues, invoke, concurrency: options.concurrency, retry: 'visibility-timeout', drained, idleMs: 300 });

    // --- Run: uploads on their schedule while the mapping drains the queue.
    progress(`soak seed ${options.seed}: ${options.docs} documents over ${options.minutes} min, ${options.concurrency} containers (log: ${workDir})`);
    // Pages on demand from the start until the drain, one container asking one page at a time.
    // Its S3 requests go through a proxy of their own: latency like the render's (never an error: a
    // page request has no redelivery, and an S3 500 it passes on is a 500, which the checks forbid),
    // and every write recorded for "nothing written outside the source's cache prefix".
    const pageWrites: { method: string; key: string; at: number }[] = [];
    pageProxy = await startFaultProxy(moto.endpoint, { keepLog: false });
    pageProxy.setDecider((req) => {
      if (serviceOf(req) !== 's3') return undefined;
      if (req.method !== 'GET' && req.method !== 'HEAD') pageWrites.push({ method: req.method, key: req.path.slice(`/${BUCKET}/`.length), at: Date.now() });
      if (chaos && pageFaults.chance(0.06)) {
        counts.add('page function latency');
        return { kind: 'delay', ms: pageFaults.int(20, 400) };
      }
      return undefined;
    });
    const pageEnv: Record<string, string> = {
      S3_ENDPOINT: pageProxy.endpoint,
      SOURCE_BUCKET: BUCKET,
      INPUT_PREFIX,
      OUTPUT_PREFIX,
      DPI: String(options.dpi ?? 36),
      FORMAT: runFormat,
      IIIF_DPI: String(SOAK_IIIF_DPI),
      IIIF_BASE_URL,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      ...(signed ? { PAGE_URL_AUTH_TYPE: 'NONE', PAGE_SIGNING_PARAMETER: SIGNING_PARAMETER } : {}),
    };
    if (signed) {
      const ssm = createSsmClient({ endpoints: everyService(moto.endpoint) });
      await ssm.send(new PutParameterCommand({ Name: SIGNING_PARAMETER, Value: SIGNING_SECRET, Type: 'SecureString', Overwrite: true }));
    }
    // IIIF_DPI and MAX_PAGE_PIXELS as the function loads them, from the template's environment and ours.
    const pageConfig = loadPageConfig({ ...functionEnvironment(template, pageFn, {}, {}), ...pageEnv });
    const boxes = new Map<string, ReturnType<typeof pageBoxesOf>>();
    choose(`page function: ${signed ? 'signed URLs and IIIF document tokens' : 'unsigned (AWS_IAM)'}, IIIF_DPI ${pageConfig.page.iiifDpi}, MAX_PAGE_PIXELS ${pageConfig.output.maxPagePixels}`);
    pages = await startPageRequester({
      template,
      fn: pageFn,
      artifactDir: pageArtifact,
      env: pageEnv,
      logs: functionLogs,
      rng: pageRng,
      keys: () => [...uploadsOf.keys()],
      choose,
      // Six a document: most during the uploads and the first renders, where re-uploads and commits race them.
      maxRequests: options.docs * 6,
      iiif: {
        baseUrl: IIIF_BASE_URL,
        dpi: pageConfig.page.iiifDpi,
        maxPagePixels: pageConfig.output.maxPagePixels,
        ...(signed ? { secret: SIGNING_SECRET } : {}),
        boxesOf: (etag) => {
          if (!boxes.has(etag)) {
            const doc = docOfEtag.get(etag);
            const body = doc ? bodies.get(doc.name) : undefined;
            boxes.set(etag, body ? pageBoxesOf(body) : undefined);
          }
          return boxes.get(etag);
        },
      },
    });
    const pagesRunning = pages.run();
    const uploads = (async () => {
      const t0 = Date.now();
      let reprocessed = false;
      let batched = false;
      for (const step of schedule) {
        if (!reprocessed && step.at >= reprocessAt) {
          reprocessed = true;
          track(runReprocess(2, 'during the soak'));
        }
        // A Batch Operations job beside the uploads, as a backfill may run any time.
        if (!batched && step.at >= batchAt) {
          batched = true;
          track(runBatch(2, 'during the soak'));
        }
        const wait = step.at - (Date.now() - t0);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        await step.run();
      }
      if (!reprocessed) track(runReprocess(2, 'during the soak'));
      if (!batched) track(runBatch(2, 'during the soak'));
      uploadsDone = true;
    })();
    const drainLimitMs = options.drainLimitMs ?? 10 * 60_000;
    const withLimit = async (work: Promise<unknown>, what: string): Promise<boolean> => {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), uploadMs + drainLimitMs)));
      const done = await Promise.race([work.then(() => true), limit]);
      clearTimeout(timer);
      if (!done) violations.push({ key: '(queue)', invariant: 'the queue drains', detail: `${what} not done ${Math.round((uploadMs + drainLimitMs) / 1000)} s after the start` });
      return done;
    };
    const drainedInTime = await withLimit(Promise.all([uploads, poll()]), 'the render queue');
    progress(`soak seed ${options.seed}: queue drained after ${elapsed().trim()} s; settling`);
    await pages.stop();
    await pagesRunning;

    // --- Settle: what the scheduled reprocess does, once (every upload is old enough by then). No kills: the end state is being made.
    chaos = false;
    if (drainedInTime) {
      phase = 'settle';
      await runReprocess(0, 'settle');
      await withLimit(poll(), 'the settle phase');
      // Then a second scheduled pass and a batch job over the settled bucket: neither may dispatch anything.
      phase = 'after settle';
      await runReprocess(0, 'after settle');
      await runBatch(0, 'after settle');
      await withLimit(poll(), 'the pass after settle');
    }
    for (const slot of slots) await slot.container?.close().catch(() => undefined);

    // --- The dead-letter queue, then the invariants.
    const deadLetters: string[] = [];
    for (;;) {
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queues.deadLetterUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }));
      if (!Messages?.length) break;
      for (const m of Messages) {
        deadLetters.push(m.Body ?? '');
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queues.deadLetterUrl, ReceiptHandle: m.ReceiptHandle! }));
      }
    }
    // --- The completion events, every one the rule delivered.
    const finalEvents = new Map<string, FinalEvent[]>();
    let eventsReceived = 0;
    for (;;) {
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: eventsQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }));
      if (!Messages?.length) break;
      for (const m of Messages) {
        const { detail } = JSON.parse(m.Body ?? '{}') as { detail: CompletionDetail };
        eventsReceived++;
        // An event without a renderId is reported by the invariant, not crashed on.
        const renderId: unknown = detail.renderId;
        finalEvents.set(detail.key, [
          ...(finalEvents.get(detail.key) ?? []),
          { key: detail.key, etag: detail.etag, status: detail.status, generation: detail.generation, ...(typeof renderId === 'string' ? { renderId } : {}) },
        ]);
        await sqs.send(new DeleteMessageCommand({ QueueUrl: eventsQueueUrl, ReceiptHandle: m.ReceiptHandle! }));
      }
    }
    counts.add('completion events', eventsReceived);
    const soakEvents: EventsSource = { finalEvents: async (key) => finalEvents.get(key) ?? [], interrupted: (key) => interrupted.has(key) };
    const pageProblems = pages.problems(uploadsOf, () => runFormat);
    const iiifProblems = pages.iiifProblems(uploadsOf);
    const pageFigures = pages.figures();
    // Every S3 write of the page function: a variant or IIIF file in a variant folder of one of its key's uploads.
    const outsideWrites = new Map<string, string[]>();
    for (const write of pageWrites) {
      const owner = [...uploadsOf.keys()].find((k) => {
        const prefix = outputLocation(BUCKET, k, { inputPrefix: INPUT_PREFIX, outputPrefix: OUTPUT_PREFIX, outputBucket: undefined }).prefix;
        if (!write.key.startsWith(prefix)) return false;
        const rest = write.key.slice(prefix.length);
        return PAGE_WRITE.test(rest) && (uploadsOf.get(k) ?? []).some((u) => rest.startsWith(`${variantFolderOf(u.etag)}/`));
      });
      if (owner) continue;
      const near = [...uploadsOf.keys()].find((k) => write.key.startsWith(outputLocation(BUCKET, k, { inputPrefix: INPUT_PREFIX, outputPrefix: OUTPUT_PREFIX, outputBucket: undefined }).prefix)) ?? '(page function)';
      outsideWrites.set(near, [...(outsideWrites.get(near) ?? []), `${write.method} ${write.key}`]);
    }
    const keys = await listSourceKeys(s3);
    progress(`soak seed ${options.seed}: checking ${keys.length} source keys`);
    const result = await checkInvariants(
      {
        s3,
        bucket: BUCKET,
        prefixes: { inputPrefix: INPUT_PREFIX, outputPrefix: OUTPUT_PREFIX },
        expectedFor: (etag) => expected.get(etag),
        killedMultipartKeys,
        deadLetters,
        events: options.events ?? soakEvents,
        paths: { pageProblems, iiifProblems, outsideWrites, upToDateDispatches, renderedBySettle, batchProblems },
        iiif: { manifest: (key) => pages!.iiifManifest(key) },
      },
      keys,
      [...INVARIANTS, ...(options.invariants ?? [])],
    );
    await pages.close();
    const outside = [
      ...batchViolations(),
      ...[...outsideWrites].filter(([key]) => key.startsWith('(')).map(([key, details]) => ({ key, invariant: 'the page function writes only in its source\'s cache prefix', detail: details.slice(0, 4).join('; ') })),
    ];
    violations = [...violations, ...result.violations, ...outside];
    passed = result.passed;
    failed = result.failed + outside.length;

    const faultsInjected = counts.total('fault:');
    const killsTotal = counts.total('kill:');
    figures = [
      ['documents', String(keys.length)],
      ['uploads', `${counts.get('uploads')} (re-uploads ${counts.get('re-uploads')})`],
      ['keys', `formats${counts.describe('format:')} (FORMAT ${runFormat}); thumbnails on ${counts.get('keys with thumbnails')}, text on ${counts.get('keys with text')}; ${counts.get('keys with a hard name')} with a space, "+", "%", ".." or unicode in the name`],
      ['intakes', `keys${counts.describe('key intake:')}; events sent${counts.describe('intake:')}`],
      ['events', `${counts.get('events')} notifications delivered`],
      ['duplicates', String(counts.get('duplicates'))],
      ['late events', String(counts.get('late events'))],
      ['invocations', `${counts.get('invocations')} (redeliveries ${counts.get('redeliveries')}, cold starts ${counts.get('cold starts')}, timeouts ${counts.get('timeouts')})`],
      ['kills', `${killsTotal}${counts.describe('kill:')}`],
      ['faults injected', `${faultsInjected}${counts.describe('fault:')}; on conditional writes ${counts.get('faulted conditional writes')}, on deletes ${counts.get('faulted deletes')}`],
      ['continuations', String(counts.get('continuations'))],
      ['fan-out ranges', String(counts.get('fan-out ranges'))],
      ['reprocess', `${counts.get('reprocess runs')} runs, ${counts.get('reprocess requests')} render requests`],
      ['batch tasks', `${counts.get('batch tasks')} in 2 jobs (${counts.get('batch task invocations')} invocations)${counts.describe('batch:')}`],
      ['dispatches', `during the run ${counts.get('dispatches run')} (skipped as up to date ${counts.get('dispatches up to date run')}), settle ${counts.get('dispatches settle')}, after settle ${counts.get('dispatches after settle')}${counts.describe('dispatch outcome:')}`],
      ['page requests', `${pageFigures.requests} (${Object.entries(pageFigures.byStatus).map(([k, v]) => `${k}: ${v}`).join(', ')}; ${Object.entries(pageFigures.byCache).map(([k, v]) => `${k} ${v}`).join(', ')}; formats ${Object.entries(pageFigures.formats).map(([k, v]) => `${k} ${v}`).join(', ')})${signed ? ', signed' : ''}`],
      ['IIIF requests', `${pageFigures.iiif.requests} (${Object.entries(pageFigures.iiif.byKind).map(([k, v]) => `${k} ${v}`).join(', ')}; ${Object.entries(pageFigures.iiif.byStatus).map(([k, v]) => `${k}: ${v}`).join(', ')})${signed ? ', with document tokens' : ''}; page function S3 writes ${pageWrites.length}, latency injected ${counts.get('page function latency')}`],
      ['event faults', `${counts.total('event fault:')} on ${counts.get('PutEvents requests')} PutEvents${counts.describe('event fault:')}`],
      ['completion events', `${counts.get('completion events')} (keys with a kill or timeout: ${interrupted.size})`],
      ['dead letters', String(deadLetters.length)],
      ...[...result.leftovers].map(([why, { count, bytes }]): [string, string] => [`allowed leftovers`, `${count} ${why} (${bytes} bytes)`]),
      ['wall time', `${((Date.now() - started) / 1000).toFixed(1)} s`],
    ];
    lines = [
      ...violations.map((v) => `VIOLATION ${v.key}: ${v.invariant}: ${v.detail}`),
      ...figures.map(([name, value]) => `${name}: ${value}`),
      `${passed} passed, ${failed} failed`,
    ];
    if (violations.some((v) => v.key === '(queue)') && failed === 0) {
      // The run did not finish: never a green line.
      failed = 1;
      lines[lines.length - 1] = `${passed} passed, ${failed} failed`;
    }
    coverage = {
      formats: [...counts.counts.keys()].filter((k) => k.startsWith('format:')).length,
      intakes: [...counts.counts.keys()].filter((k) => k.startsWith('key intake:')).length,
      pageRequests: pageFigures.requests,
      pageImages: pageFigures.byStatus['302'] ?? 0,
      iiifRequests: pageFigures.iiif.requests,
      iiifImages: pageFigures.iiif.byKind['tile'] ?? 0,
      batchTasks: counts.get('batch tasks'),
      putEvents: counts.get('PutEvents requests'),
      eventFaults: counts.total('event fault:'),
    };
    choose(`result: ${passed} passed, ${failed} failed`);
    return { violations, passed, failed, figures, coverage, lines, workDir };
  } finally {
    await pages?.close().catch(() => undefined);
    await pageProxy?.close();
    for (const slot of slots) {
      if (slot.container && !slot.container.ended) slot.container.kill();
      await slot.proxy.close();
    }
    await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, 2000))]);
    await moto?.stop();
    await new Promise<void>((r) => choices.end(() => r()));
    await new Promise<void>((r) => (functionLogs as WriteStream).end(() => r()));
    if (!options.keepWorkDir && failed === 0 && violations.length === 0 && lines.length > 0) await rm(workDir, { recursive: true, force: true });
  }
}

/** Every PDF under the input prefix: the soak's source keys. */
async function listSourceKeys(s3: S3Client): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: INPUT_PREFIX, ...(token ? { ContinuationToken: token } : {}) }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}
