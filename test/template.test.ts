/**
 * template.yaml against the code it deploys: handlers resolve to built files, environments hold
 * only settings lib/config/env.ts reads, the S3 trigger agrees with the handler's own guard, and no
 * policy reaches past the two prefixes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_ENV_VARS, loadConfig, PROCESS_ENV } from '../lib/config/env.js';
import { loadPageConfig, PAGE_CONFIG_ENV_VARS } from '../lib/config/page.js';
import { VARIANT_TAG } from '../lib/on-demand/render-variant.js';
import { functionPolicy } from './support/iam-policy.js';
import { decodeEventKey, skipReason } from '../lib/s3/layout.js';
import { artifactSize, buildAll, readMetafile } from '../tools/build.js';
import { samTranslate, type TranslatedTemplate } from '../tools/sam-translate.js';
import {
  esbuildPlan,
  loadTemplate,
  localContext,
  resolvedEnvironment,
  resolveIntrinsics,
  ROOT,
  functionLayerIds,
  templateFunction,
  templateFunctions,
  type ResolveContext,
  type Template,
} from '../tools/template.js';

const template: Template = loadTemplate();
const ctx: ResolveContext = localContext(template, {}, {});
const resolve = (value: unknown): unknown => resolveIntrinsics(value, template, ctx);
const functions = templateFunctions(template);
const event = (name: string): unknown => JSON.parse(readFileSync(join(ROOT, 'events', name), 'utf8'));

/** The config a function gets from its template environment (defaults of every parameter). */
const functionConfig = (logicalId: string) => loadConfig(resolvedEnvironment(templateFunction(template, logicalId), template, ctx));
/** The variables each function's own config reads: the page function reads its PAGE_* settings too. */
const readsEnv = (logicalId: string): readonly string[] => (logicalId === 'PageFunction' ? [...CONFIG_ENV_VARS, ...PAGE_CONFIG_ENV_VARS] : CONFIG_ENV_VARS);

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

function statements(logicalId: string): Statement[] {
  const policies = templateFunction(template, logicalId).properties['Policies'];
  expect(Array.isArray(policies), `${logicalId}: Policies must be a list of inline statements`).toBe(true);
  return (policies as unknown[]).flatMap((policy) => {
    // Managed policies and SAM policy templates (S3CrudPolicy…) grant whole buckets: inline only.
    expect(typeof policy === 'object' && policy !== null && 'Statement' in policy, `${logicalId}: ${JSON.stringify(policy)} is not an inline policy`).toBe(true);
    return resolve((policy as { Statement: unknown }).Statement) as Statement[];
  });
}

const asList = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : [String(value)]);

describe('template.yaml', () => {
  it('is a SAM template whose functions run nodejs24.x on arm64', () => {
    expect(template['Transform']).toBe('AWS::Serverless-2016-10-31');
    // `sam build` runs `npm ci` in its scratch copy: with `npm install --omit=dev` esbuild (a
    // devDependency) would be missing there (test/sam-build.test.ts builds the SAM way).
    for (const fn of functions) expect(fn.buildProperties?.['UseNpmCi'], fn.logicalId).toBe(true);
    expect(functions.map((f) => f.logicalId).sort()).toEqual(['PageFunction', 'RenderPdfFunction', 'ReprocessFunction']);
    for (const fn of functions) {
      expect(fn.runtime, fn.logicalId).toBe('nodejs24.x');
      expect(fn.properties['Architectures'], fn.logicalId).toEqual(['arm64']);
      expect(fn.properties['RecursiveLoop'], fn.logicalId).toBe('Terminate');
    }
  });

  describe('build', () => {
    let outputs: Record<string, string>;
    beforeAll(async () => {
      outputs = await buildAll();
    });

    it('every Handler resolves to a file of its built artifact', () => {
      for (const fn of functions) {
        const dir = outputs[fn.logicalId];
        expect(dir, `${fn.logicalId} was not built`).toBeDefined();
        const [file, exported] = fn.handler.split('.');
        expect(existsSync(join(dir!, `${file}.mjs`)), `${fn.logicalId}: ${fn.handler} -> ${file}.mjs`).toBe(true);
        expect(readFileSync(join(dir!, `${file}.mjs`), 'utf8'), `${fn.logicalId} exports ${exported}`).toMatch(new RegExp(`export\\s*\\{[^}]*\\bas ${exported}\\b|export\\s*\\{[^}]*\\b${exported}\\b`));
      }
    });

    it('ships the render worker and MuPDF\'s .wasm beside the render handler, far below Lambda\'s limits', async () => {
      const dir = outputs['RenderPdfFunction']!;
      const files = readdirSync(dir).sort();
      expect(files).toContain('handler.mjs');
      expect(files).toContain('render-worker.mjs');
      expect(files.filter((f) => /sharp|\.node$/.test(f)), 'sharp is in SharpLayer, never in the bundle').toEqual([]);
      expect(files.filter((f) => /^mupdf-wasm.*\.wasm$/.test(f))).toHaveLength(1);
      const size = await artifactSize(dir);
      expect(size.zipped).toBeLessThan(15 * 2 ** 20);
      expect(size.unzipped).toBeLessThan(250 * 2 ** 20);
    });

    it('keeps MuPDF and the image library out of the reprocess artifact (esbuild metafile: no mupdf, no sharp, nothing of lib/engine/ or lib/encode/ but four leaves that import only each other)', async () => {
      const inputs = async (logicalId: string) => (await readMetafile(logicalId)).inputs;
      const reprocess = await inputs('ReprocessFunction');
      expect(Object.keys(reprocess).filter((input) => input.includes('node_modules/mupdf/'))).toEqual([]);
      // The engine's option types (read by lib/config), the formats' limits they use, and
      // errorMessage (lib/reprocess/run.ts, which lib/engine/errors.ts re-exports from
      // lib/encode/) are plain TypeScript that imports nothing else: allowed, as long as they
      // import only each other. Any other file of lib/engine/ or lib/encode/ fails here.
      const leaves = ['lib/engine/errors.ts', 'lib/engine/options.ts', 'lib/encode/error-message.ts', 'lib/encode/formats.ts'];
      const engine = Object.keys(reprocess).filter((input) => input.startsWith('lib/engine/') || input.startsWith('lib/encode/'));
      expect(engine.filter((input) => !leaves.includes(input))).toEqual([]);
      for (const leaf of engine) expect(reprocess[leaf]!.imports.filter((i) => !leaves.includes(i.path)), leaf).toEqual([]);
      // The check can see MuPDF: the render artifact has it, and the worker.
      const render = Object.keys(await inputs('RenderPdfFunction'));
      expect(render.some((input) => input.includes('node_modules/mupdf/'))).toBe(true);
      expect(render).toContain('lib/engine/worker/main.ts');
      // No image library either: sharp's loader, sharp (its layer) and the WebAssembly encoders.
      expect(Object.keys(reprocess).filter((input) => /node_modules\/(sharp|@img|@jsquash)\/|lib\/encode\/sharp-encoder/.test(input))).toEqual([]);
      expect(render).toContain('lib/encode/sharp-encoder.ts');
      expect(readFileSync(join(outputs['ReprocessFunction']!, 'handler.mjs'), 'utf8')).not.toMatch(/\("sharp"\)/);
      expect(readFileSync(join(outputs['RenderPdfFunction']!, 'handler.mjs'), 'utf8')).toMatch(/\("sharp"\)/);
      expect(functionLayerIds(templateFunction(template, 'ReprocessFunction'))).toEqual([]);
    });

    it('uses esbuild settings mupdf needs: ESM, .mjs, top-level await, the .wasm as a file', () => {
      for (const fn of functions) {
        const { options } = esbuildPlan(fn);
        expect(options.format, fn.logicalId).toBe('esm');
        expect(options.outExtension, fn.logicalId).toEqual({ '.js': '.mjs' });
        expect(['es2022', 'es2023', 'es2024', 'esnext', 'node22']).toContain(options.target);
      }
      expect(esbuildPlan(templateFunction(template, 'RenderPdfFunction')).options.loader).toEqual({ '.wasm': 'file' });
    });
  });

  it('sets only environment variables lib/config/env.ts reads, with values it accepts', () => {
    for (const fn of functions) {
      for (const [name, value] of Object.entries(fn.environment)) {
        if (name in PROCESS_ENV) expect(value, `${fn.logicalId}: ${name}`).toBe(PROCESS_ENV[name as keyof typeof PROCESS_ENV]);
        else expect(readsEnv(fn.logicalId), `${fn.logicalId}: ${name}`).toContain(name);
      }
      // The process-level settings the memory tests run under are the deployed ones.
      for (const [name, value] of Object.entries(PROCESS_ENV)) expect(fn.environment[name], `${fn.logicalId}: ${name}`).toBe(value);
      expect(() => functionConfig(fn.logicalId), fn.logicalId).not.toThrow();
    }
    expect(() => loadPageConfig(resolvedEnvironment(templateFunction(template, 'PageFunction'), template, ctx))).not.toThrow();
    // Both functions must agree on the prefixes and options (reprocess compares manifests with them).
    const render = functionConfig('RenderPdfFunction');
    const reprocess = functionConfig('ReprocessFunction');
    // …all but EVENT_BUS: only the render function announces finished renders.
    const { eventBus, ...shared } = render;
    expect(eventBus).toBe('default');
    expect(reprocess).toEqual(shared);
    // Both send to the render queue the template creates.
    expect(render.renderQueueUrl).toBe(resolve({ Ref: 'RenderQueue' }));
    // It scans the bucket the template creates.
    expect(reprocess.sourceBucket).toBe(resolve(template.Resources['SourceBucket']?.Properties?.['BucketName']));
  });

  it('sends exactly the keys the handler renders (prefix INPUT_PREFIX, suffix .pdf) to the render queue', () => {
    const config = functionConfig('RenderPdfFunction');
    // The template's default is the configuration's default.
    expect(config.inputPrefix).toBe(loadConfig({}).inputPrefix);
    const notifications = (template.Resources['SourceBucket']?.Properties?.['NotificationConfiguration'] as { QueueConfigurations: Record<string, unknown>[] }).QueueConfigurations;
    expect(notifications.length).toBeGreaterThan(0);
    const filters = notifications.map((n) => {
      expect(n['Queue']).toEqual({ 'Fn::GetAtt': ['RenderQueue', 'Arn'] });
      expect(n['Event']).toBe('s3:ObjectCreated:*');
      const rules = resolve((n['Filter'] as { S3Key: { Rules: unknown } }).S3Key.Rules) as { Name: string; Value: string }[];
      const rule = (name: string) => rules.find((r) => r.Name.toLowerCase() === name)?.Value;
      return { prefix: rule('prefix')!, suffix: rule('suffix')! };
    });
    const triggers = (key: string) => filters.some((f) => key.startsWith(f.prefix) && key.endsWith(f.suffix));
    for (const { prefix, suffix } of filters) {
      expect(prefix).toBe(config.inputPrefix);
      expect(suffix.toLowerCase()).toBe('.pdf');
    }
    const keys = ['incoming/a.pdf', 'incoming/sub/dir/b.PDF', 'incoming/c.Pdf', 'incoming/notes.txt', 'incoming/pdf', 'rendered/a.pdf', 'rendered/a.pdf/page-0001.png', 'rendered/a.pdf/manifest.json', 'a.pdf', 'other/incoming/a.pdf'];
    for (const key of keys) {
      // Whatever S3 delivers, the handler renders; outputs are never delivered.
      if (triggers(key)) expect(skipReason(key, config), key).toBeNull();
      if (key.startsWith(config.outputPrefix)) expect(triggers(key), key).toBe(false);
    }
    expect(triggers('incoming/a.pdf') && triggers('incoming/b.PDF')).toBe(true);
    // The sample events: rendered, or ignored by the guard.
    const eventKey = (name: string) => decodeEventKey((event(name) as { Records: [{ s3: { object: { key: string } } }] }).Records[0].s3.object.key);
    expect(skipReason(eventKey('s3-put.json'), config)).toBeNull();
    expect(skipReason(eventKey('s3-put-encoded-key.json'), config)).toBeNull();
    expect(skipReason(eventKey('s3-put-not-pdf.json'), config)).not.toBeNull();
    expect(skipReason(eventKey('s3-put-output-key.json'), config)).not.toBeNull();
  });

  it('grants S3 access only under the two prefixes: read input, write output, nothing broader', () => {
    const bucket = ctx.parameters['BucketName']!;
    const { inputPrefix, outputPrefix } = functionConfig('RenderPdfFunction');
    const objects = { input: `arn:aws:s3:::${bucket}/${inputPrefix}*`, output: `arn:aws:s3:::${bucket}/${outputPrefix}*` };
    const writes = new Set(['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload']);
    for (const fn of functions) {
      const s3Statements = statements(fn.logicalId).filter((s) => asList(s.Action).some((a) => a === '*' || a.toLowerCase().startsWith('s3:')));
      expect(s3Statements.length, fn.logicalId).toBeGreaterThan(0);
      for (const s of s3Statements) {
        const where = `${fn.logicalId}: ${JSON.stringify(s)}`;
        // The one Deny: the page function never writes a manifest.json, whatever the folder's name (an IAM * crosses slashes).
        if (s.Effect === 'Deny') {
          expect([fn.logicalId, asList(s.Resource)], where).toEqual(['PageFunction', [`${objects.output}/manifest.json`]]);
          continue;
        }
        expect(s.Effect, where).toBe('Allow');
        for (const action of asList(s.Action)) {
          expect(action, where).not.toContain('*');
          if (action === 's3:ListBucket') {
            // The bucket, limited to the prefixes.
            expect(asList(s.Resource), where).toEqual([`arn:aws:s3:::${bucket}`]);
            const prefixes = asList(s.Condition?.['StringLike']?.['s3:prefix']);
            for (const p of prefixes) expect([`${inputPrefix}*`, `${outputPrefix}*`], where).toContain(p);
            continue;
          }
          for (const resource of asList(s.Resource)) {
            // The reprocess function's one write: its resume checkpoint (lib/reprocess/checkpoint.ts).
            if (fn.logicalId === 'ReprocessFunction' && action === 's3:PutObject') {
              expect(resource, where).toBe(`arn:aws:s3:::${bucket}/${outputPrefix}.reprocess/*`);
              continue;
            }
            // The page function writes variant files only (lib/on-demand/variant.ts; IIIF's lib/iiif/handler.ts), in a 16-character variant folder under the output prefix.
            expect([objects.input, objects.output, `${objects.output}/????????????????/variant-*`, `${objects.output}/????????????????/iiif-*`], where).toContain(resource);
            // Nothing is ever written under INPUT_PREFIX: no trigger loop, even by IAM.
            if (writes.has(action)) expect(resource.startsWith(objects.output.slice(0, -1)), where).toBe(true);
          }
        }
      }
    }
    // Reprocess reads both prefixes and writes only its checkpoint; beyond S3, both functions may only send to the render queue,
    // and the render function put its completion events on the default bus.
    const reprocess = statements('ReprocessFunction');
    expect(reprocess.flatMap((s) => asList(s.Action)).filter((a) => writes.has(a))).toEqual(['s3:PutObject']);
    const beyondS3 = { RenderPdfFunction: ['sqs:SendMessage', 'events:PutEvents'], ReprocessFunction: ['sqs:SendMessage'] } as Record<string, string[]>;
    const resourcesOf = { 'sqs:SendMessage': 'arn:aws:sqs:us-east-1:123456789012:RenderQueue', 'events:PutEvents': 'arn:aws:events:us-east-1:123456789012:event-bus/default' } as Record<string, string>;
    for (const fn of functions.filter((f) => f.logicalId !== 'PageFunction')) {
      const other = statements(fn.logicalId).filter((s) => asList(s.Action).some((a) => !a.startsWith('s3:')));
      expect(other.flatMap((s) => asList(s.Action)), fn.logicalId).toEqual(beyondS3[fn.logicalId]);
      expect(other.flatMap((s) => asList(s.Resource)), fn.logicalId).toEqual(beyondS3[fn.logicalId]!.map((a) => resourcesOf[a]));
    }
  });

  it('gives the page function a Function URL with the AuthType parameter, NONE only with a signing parameter, and its own memory, concurrency and log group', () => {
    const page = templateFunction(template, 'PageFunction');
    expect(page.properties['FunctionUrlConfig']).toMatchObject({ AuthType: { Ref: 'PageUrlAuthType' } });
    expect(template.Parameters?.['PageUrlAuthType']).toMatchObject({ Default: 'AWS_IAM', AllowedValues: ['AWS_IAM', 'NONE'] });
    expect(page.properties['MemorySize']).toEqual({ Ref: 'PageMemorySize' });
    expect(page.properties['ReservedConcurrentExecutions']).toEqual({ 'Fn::If': ['HasPageReservedConcurrency', { Ref: 'PageReservedConcurrency' }, { Ref: 'AWS::NoValue' }] });
    // The rule CloudFormation checks before creating anything, and the function's own check at start-up.
    const rule = (template['Rules'] as Record<string, { RuleCondition: unknown; Assertions: { Assert: unknown }[] }>)['PublicPageUrlIsSigned']!;
    expect(rule.RuleCondition).toEqual({ 'Fn::Equals': [{ Ref: 'PageUrlAuthType' }, 'NONE'] });
    expect(rule.Assertions[0]!.Assert).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'PageUrlSigningParameter' }, ''] }] });
    const env = resolvedEnvironment(page, template, localContext(template, { PageUrlAuthType: 'NONE' }, {}));
    expect(() => loadPageConfig(env)).toThrow(/PAGE_URL_AUTH_TYPE="NONE" requires PAGE_SIGNING_PARAMETER/);
    const signed = resolvedEnvironment(page, template, localContext(template, { PageUrlAuthType: 'NONE', PageUrlSigningParameter: '/s3-pdf-render/url-secret' }, {}));
    expect(loadPageConfig(signed).page).toMatchObject({ authType: 'NONE', signingParameter: '/s3-pdf-render/url-secret' });
    // Its one SSM permission: GetParameter of that parameter.
    const ssm = statements('PageFunction').filter((s) => asList(s.Action).some((a) => !a.startsWith('s3:')));
    expect(ssm.flatMap((s) => asList(s.Action))).toEqual(['ssm:GetParameter']);
    const withParameter = functionPolicy(template, 'PageFunction', localContext(template, { PageUrlSigningParameter: '/s3-pdf-render/url-secret' }, {})).Statement as Statement[];
    expect(withParameter.filter((s) => asList(s.Action).includes('ssm:GetParameter')).map((s) => s.Resource)).toEqual(['arn:aws:ssm:us-east-1:123456789012:parameter/s3-pdf-render/url-secret']);
  });

  it('expires the page function\'s variants by their tag under the output prefix, never the eager pages', () => {
    const rules = (template.Resources['SourceBucket']?.Properties?.['LifecycleConfiguration'] as { Rules: Record<string, unknown>[] }).Rules;
    const expiry = rules.filter((r) => r['ExpirationInDays'] !== undefined);
    expect(expiry).toEqual([
      { Id: expect.any(String), Status: 'Enabled', Prefix: { Ref: 'OutputPrefix' }, TagFilters: [{ Key: VARIANT_TAG.key, Value: VARIANT_TAG.value }], ExpirationInDays: { Ref: 'PageCacheExpirationDays' } },
    ]);
  });

  it('lets the render function list both prefixes, so a HEAD of a deleted source is a 404, not a 403', () => {
    const { inputPrefix, outputPrefix } = functionConfig('RenderPdfFunction');
    const list = statements('RenderPdfFunction').filter((s) => asList(s.Action).includes('s3:ListBucket'));
    expect(list.flatMap((s) => asList(s.Condition?.['StringLike']?.['s3:prefix'])).sort()).toEqual([`${inputPrefix}*`, `${outputPrefix}*`].sort());
  });

  it('aborts failed multipart uploads (permission on the output prefix), and S3 removes leftovers after a day', () => {
    const bucket = ctx.parameters['BucketName']!;
    const { outputPrefix } = functionConfig('RenderPdfFunction');
    const abort = statements('RenderPdfFunction').filter((s) => asList(s.Action).includes('s3:AbortMultipartUpload'));
    expect(abort.flatMap((s) => asList(s.Resource))).toEqual([`arn:aws:s3:::${bucket}/${outputPrefix}*`]);
    const rules = (template.Resources['SourceBucket']?.Properties?.['LifecycleConfiguration'] as { Rules: Record<string, unknown>[] } | undefined)?.Rules ?? [];
    const cleanup = rules.filter((r) => r['Status'] === 'Enabled' && r['AbortIncompleteMultipartUpload'] !== undefined);
    expect(cleanup).toHaveLength(1);
    // The whole bucket: no Prefix or Filter narrowing it.
    expect(cleanup[0]).toEqual({ Id: expect.any(String), Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } });
  });

  it('gives both functions SOURCE_BUCKET, the bucket the template creates', () => {
    const bucket = resolve(template.Resources['SourceBucket']?.Properties?.['BucketName']);
    for (const fn of functions) expect(functionConfig(fn.logicalId).sourceBucket, fn.logicalId).toBe(bucket);
  });

  it('logs JSON, at the ApplicationLogLevel parameter (Lambda sets AWS_LAMBDA_LOG_LEVEL, Powertools honours it)', () => {
    const parameter = template.Parameters?.['ApplicationLogLevel'];
    expect(parameter?.Default).toBe('INFO');
    expect(parameter?.['AllowedValues']).toEqual(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL']);
    for (const fn of functions) {
      const logging = fn.properties['LoggingConfig'] as Record<string, unknown>;
      expect(logging['LogFormat'], fn.logicalId).toBe('JSON');
      expect(logging['ApplicationLogLevel'], fn.logicalId).toEqual({ Ref: 'ApplicationLogLevel' });
      expect(template.Resources[(logging['LogGroup'] as { Ref: string }).Ref]?.Type, fn.logicalId).toBe('AWS::Logs::LogGroup');
    }
  });

  it('does not let Lambda retry the reprocess function (a retry would dispatch the same renders again)', () => {
    const config = templateFunction(template, 'ReprocessFunction').properties['EventInvokeConfig'] as Record<string, unknown>;
    expect(config['MaximumRetryAttempts']).toBe(0);
  });

  it('consumes the render queue one message at a time, capped, with partial batch responses and a dead-letter queue', () => {
    const events = templateFunction(template, 'RenderPdfFunction').properties['Events'] as Record<string, { Type: string; Properties: Record<string, unknown> }>;
    expect(Object.values(events).map((e) => e.Type)).toEqual(['SQS']);
    const sqs = Object.values(events)[0]!.Properties;
    expect(sqs).toMatchObject({ Queue: { 'Fn::GetAtt': ['RenderQueue', 'Arn'] }, BatchSize: 1, FunctionResponseTypes: ['ReportBatchItemFailures'], ScalingConfig: { MaximumConcurrency: { Ref: 'MaxConcurrency' } } });
    const queue = template.Resources['RenderQueue']!.Properties!;
    // AWS: the visibility timeout at least six times the function's timeout.
    expect(queue['VisibilityTimeout']).toBeGreaterThanOrEqual(6 * (templateFunction(template, 'RenderPdfFunction').properties['Timeout'] as number));
    const redrive = queue['RedrivePolicy'] as { deadLetterTargetArn: { 'Fn::GetAtt': [string, string] }; maxReceiveCount: number };
    expect(template.Resources[redrive.deadLetterTargetArn['Fn::GetAtt'][0]]?.Type).toBe('AWS::SQS::Queue');
    expect(redrive.maxReceiveCount).toBeGreaterThan(1);
    // No asynchronous invocations any more: nothing for Lambda to retry.
    expect(templateFunction(template, 'RenderPdfFunction').properties['EventInvokeConfig']).toBeUndefined();
  });

  it('lets only the bucket of the stack send to the render queue', () => {
    // Default parameters: create mode (the existing mode's statement: 'deployment modes' below).
    const policy = resolve(template.Resources['RenderQueuePolicy']!.Properties!['PolicyDocument']) as { Statement: Statement[] };
    expect(policy.Statement).toHaveLength(1);
    const statement = policy.Statement[0] as Statement & { Principal: unknown };
    expect(statement).toMatchObject({ Effect: 'Allow', Principal: { Service: 's3.amazonaws.com' }, Action: 'sqs:SendMessage' });
    expect(resolve(statement.Condition?.['ArnLike']?.['aws:SourceArn'])).toBe(`arn:aws:s3:::${ctx.parameters['BucketName']}`);
    expect(statement.Condition?.['StringEquals']?.['aws:SourceAccount']).toBeDefined();
    expect(template.Resources['SourceBucket']?.['DependsOn']).toBe('RenderQueuePolicy');
  });

  it('schedules reprocessing, disabled by default, with the payload of events/schedule.json', () => {
    const events = templateFunction(template, 'ReprocessFunction').properties['Events'] as Record<string, { Type: string; Properties: Record<string, unknown> }>;
    const schedules = Object.values(events).filter((e) => e.Type === 'ScheduleV2');
    expect(schedules).toHaveLength(1);
    expect(resolve(schedules[0]!.Properties['State'])).toBe('DISABLED');
    expect(JSON.parse(String(schedules[0]!.Properties['Input']))).toEqual(event('schedule.json'));
  });
});

/**
 * The template in both deployment modes, as CloudFormation deploys it: translated offline by the
 * samtranslator that ships with cfn-lint (tools/sam-translate.py), Conditions evaluated per mode.
 */
describe('deployment modes (SAM-translated, per mode)', () => {
  const EXISTING = { SourceBucketMode: 'existing', ExistingBucketName: 'their-pdfs' };
  const OUTPUT = 'our-renders';
  const modes = {
    create: samTranslate({}),
    existing: samTranslate(EXISTING),
    createWithOutput: samTranslate({ OutputBucketName: OUTPUT }),
    existingWithOutput: samTranslate({ ...EXISTING, OutputBucketName: OUTPUT }),
  };
  const resolveIn = (t: TranslatedTemplate, value: unknown) => resolveIntrinsics(value, t, localContext(t, t.parameterValues, {}));
  const ofType = (t: TranslatedTemplate, type: string) => Object.entries(t.Resources).filter(([, r]) => r.Type === type);
  /** An EventBridge wildcard: "*" matches any run of characters, everything else itself. */
  const wildcard = (value: string, pattern: string) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's').test(value);

  it('is clean under cfn-lint in existing mode with a separate output bucket (the default mode: npm run lint:template)', () => {
    const run = spawnSync('cfn-lint', ['template.yaml', '--parameters', 'SourceBucketMode=existing', 'ExistingBucketName=their-pdfs', `OutputBucketName=${OUTPUT}`], { cwd: ROOT, encoding: 'utf8' });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('creates the bucket and its S3 notifications only in create mode; in existing mode no bucket and one rule', () => {
    for (const t of [modes.create, modes.createWithOutput]) {
      expect(ofType(t, 'AWS::S3::Bucket').map(([id]) => id)).toEqual(['SourceBucket']);
      expect(ofType(t, 'AWS::Events::Rule')).toEqual([]);
    }
    for (const t of [modes.existing, modes.existingWithOutput]) {
      expect(ofType(t, 'AWS::S3::Bucket')).toEqual([]);
      expect(ofType(t, 'AWS::Events::Rule').map(([id]) => id)).toEqual(['SourceBucketEventsRule']);
      // Nothing refers to a bucket the stack does not have.
      expect(JSON.stringify(t)).not.toContain('"SourceBucket"');
    }
  });

  it('matches Object Created in the existing bucket under InputPrefix for .pdf in any case, and targets the render queue', () => {
    const t = modes.existing;
    const rule = t.Resources['SourceBucketEventsRule']!.Properties!;
    const pattern = resolveIn(t, rule['EventPattern']) as { source: string[]; 'detail-type': string[]; detail: { bucket: { name: string[] }; object: { key: { wildcard: string }[] } } };
    expect(pattern.source).toEqual(['aws.s3']);
    expect(pattern['detail-type']).toEqual(['Object Created']);
    expect(pattern.detail.bucket.name).toEqual(['their-pdfs']);
    expect(Object.keys(pattern.detail)).toEqual(['bucket', 'object']);
    const wildcards = pattern.detail.object.key.map((k) => {
      expect(Object.keys(k)).toEqual(['wildcard']);
      return k.wildcard;
    });
    const matches = (key: string) => wildcards.some((w) => wildcard(key, w));
    const config = loadConfig({});
    const keys = ['incoming/a.pdf', 'incoming/b.PDF', 'incoming/c.Pdf', 'incoming/d.pDf', 'incoming/e.pdF', 'incoming/f.PdF', 'incoming/g.PDf', 'incoming/h.pDF', 'incoming/sub/dir/q3 report+final 100% ü.pdf', 'incoming/x*y.pdf'];
    for (const key of keys) {
      expect(skipReason(key, config), key).toBeNull();
      expect(matches(key), key).toBe(true);
    }
    for (const key of ['incoming/notes.txt', 'incoming/a.pdf.txt', 'incoming/pdf', 'rendered/a.pdf', 'rendered/a.pdf/manifest.json', 'a.pdf', 'other/incoming/a.pdf', 'Incoming/a.pdf']) {
      expect(matches(key), key).toBe(false);
      // Whatever the rule leaves out, the handler would not render either.
      expect(skipReason(key, config), key).not.toBeNull();
    }
    expect(rule['Targets']).toEqual([{ Id: 'RenderQueue', Arn: { 'Fn::GetAtt': ['RenderQueue', 'Arn'] } }]);
    expect(rule['State']).toBe('ENABLED');
  });

  it('lets only the rule send to the queue in existing mode, and only the bucket in create mode', () => {
    const statement = (t: TranslatedTemplate) => {
      const policy = t.Resources['RenderQueuePolicy']!.Properties!['PolicyDocument'] as { Statement: (Statement & { Principal: unknown })[] };
      expect(policy.Statement).toHaveLength(1);
      return policy.Statement[0]!;
    };
    const existing = statement(modes.existing);
    expect(existing).toMatchObject({ Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' }, Action: 'sqs:SendMessage', Resource: { 'Fn::GetAtt': ['RenderQueue', 'Arn'] } });
    expect(existing.Condition).toEqual({ ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': ['SourceBucketEventsRule', 'Arn'] } } });
    const created = statement(modes.create);
    expect(created).toMatchObject({ Effect: 'Allow', Principal: { Service: 's3.amazonaws.com' }, Action: 'sqs:SendMessage' });
    expect(resolveIn(modes.create, created.Condition?.['ArnLike']?.['aws:SourceArn'])).toBe('arn:aws:s3:::example-bucket');
  });

  it('lets anyone call a public page URL (PageUrlAuthType NONE) with both lambda:InvokeFunctionUrl and lambda:InvokeFunction, and no one without it', () => {
    const publicUrl = samTranslate({ PageUrlAuthType: 'NONE', PageUrlSigningParameter: '/s3-pdf-render/url-secret' });
    const grants = (t: TranslatedTemplate) =>
      ofType(t, 'AWS::Lambda::Permission')
        .map(([, r]) => r.Properties!)
        .filter((p) => p['Principal'] === '*' && JSON.stringify(p['FunctionName']) === JSON.stringify({ Ref: 'PageFunction' }));
    // Since October 2025 a Function URL caller needs both (docs/on-demand.md); the second only through the URL.
    expect(grants(publicUrl).map(({ FunctionName, ...p }) => (void FunctionName, p)).sort((a, b) => String(a['Action']).localeCompare(String(b['Action'])))).toEqual([
      { Action: 'lambda:InvokeFunction', Principal: '*', InvokedViaFunctionUrl: true },
      { Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' },
    ]);
    for (const t of Object.values(modes)) expect(grants(t)).toEqual([]);
  });

  it('SAM (the real translator) grants both actions itself only for a literal AuthType NONE, none for !Ref: why the template adds them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sam-url-'));
    try {
      const permissions = (authType: unknown) => {
        const path = join(dir, 'template.json');
        writeFileSync(path, JSON.stringify({
          AWSTemplateFormatVersion: '2010-09-09',
          Transform: 'AWS::Serverless-2016-10-31',
          Parameters: { Auth: { Type: 'String', Default: 'NONE' } },
          Resources: { Fn: { Type: 'AWS::Serverless::Function', Properties: { Runtime: 'nodejs24.x', Handler: 'index.handler', CodeUri: '.', FunctionUrlConfig: { AuthType: authType } } } },
        }));
        return Object.values(samTranslate({}, path).Resources)
          .filter((r) => r.Type === 'AWS::Lambda::Permission')
          .map((r) => r.Properties!['Action'])
          .sort();
      };
      expect(permissions('NONE')).toEqual(['lambda:InvokeFunction', 'lambda:InvokeFunctionUrl']);
      expect(permissions({ Ref: 'Auth' })).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('expires page variants in the bucket the stack creates, in every mode that creates one (elsewhere docs/deploy.md and npm run local apply the rule)', () => {
    for (const [mode, t] of Object.entries(modes)) {
      const buckets = ofType(t, 'AWS::S3::Bucket');
      for (const [id, bucket] of buckets) {
        const rules = (bucket.Properties?.['LifecycleConfiguration'] as { Rules: Record<string, unknown>[] } | undefined)?.Rules ?? [];
        expect(rules.filter((r) => JSON.stringify(r['TagFilters']) === JSON.stringify([{ Key: VARIANT_TAG.key, Value: VARIANT_TAG.value }])), `${mode} ${id}`).toHaveLength(1);
      }
      expect(buckets.length, mode).toBe(mode.startsWith('create') ? 1 : 0);
    }
  });

  it('reads only the source bucket and writes only the output bucket, in both modes', () => {
    const writes = new Set(['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload']);
    const cases = [
      { t: modes.createWithOutput, source: 'example-bucket' },
      { t: modes.existingWithOutput, source: 'their-pdfs' },
      { t: modes.existing, source: 'their-pdfs', output: 'their-pdfs' },
    ];
    for (const { t, source, output = OUTPUT } of cases) {
      const env = resolveIn(t, (t.Resources['RenderPdfFunction']!.Properties!['Environment'] as { Variables: unknown }).Variables) as Record<string, string>;
      expect(env['SOURCE_BUCKET']).toBe(source);
      expect(env['OUTPUT_BUCKET'] || env['SOURCE_BUCKET']).toBe(output);
      for (const role of ['RenderPdfFunctionRole', 'ReprocessFunctionRole']) {
        const policies = t.Resources[role]!.Properties!['Policies'] as { PolicyDocument: { Statement: Statement[] } }[];
        const s3 = policies.flatMap((p) => resolveIn(t, p.PolicyDocument.Statement) as Statement[]).filter((s) => asList(s.Action).some((a) => a.startsWith('s3:')));
        const grants = s3.flatMap((s) => asList(s.Action).flatMap((action) => asList(s.Resource).map((resource) => ({ action, resource, prefix: asList(s.Condition?.['StringLike']?.['s3:prefix']) }))));
        for (const g of grants) {
          const where = `${role} ${JSON.stringify(g)}`;
          if (g.action === 's3:ListBucket') {
            // Source: its input prefix; output: its output prefix.
            expect([`arn:aws:s3:::${source}|incoming/*`, `arn:aws:s3:::${output}|rendered/*`], where).toContain(`${g.resource}|${g.prefix.join(',')}`);
          } else if (writes.has(g.action)) {
            // The reprocess function's one write is its resume checkpoint, in the output bucket too.
            const writable = role === 'ReprocessFunctionRole' ? [`arn:aws:s3:::${output}/rendered/.reprocess/*`] : [`arn:aws:s3:::${output}/rendered/*`];
            expect(writable, where).toContain(g.resource);
          } else {
            expect([`arn:aws:s3:::${source}/incoming/*`, `arn:aws:s3:::${output}/rendered/*`], where).toContain(g.resource);
          }
        }
        // The reprocess function reads manifests in the output bucket; the render function writes there.
        expect(grants.some((g) => g.action === 's3:GetObject' && g.resource === `arn:aws:s3:::${output}/rendered/*`), role).toBe(true);
        if (role === 'RenderPdfFunctionRole') expect(grants.filter((g) => writes.has(g.action)).length, role).toBe(3);
      }
    }
  });
});
