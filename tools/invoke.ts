/**
 * npm run invoke -- <FunctionLogicalId> <event.json> [--env-vars env.json] [--skip-build]
 *
 * What `sam local invoke <FunctionLogicalId> -e <event.json>` does, without Docker: builds the
 * template's functions (tools/build.ts), reads the function's handler, environment (Globals
 * merged, intrinsics resolved with parameter defaults), Timeout and MemorySize from
 * template.yaml, and runs the built handler once in a fresh Node process with a Lambda-like
 * context. The function's logs go to stderr with START/END/REPORT lines; its result (or
 * Lambda's error payload) goes to stdout as JSON. Exit status: 0 on success, 1 when the handler
 * throws, times out or cannot start, 2 on a usage error.
 *
 * --env-vars takes the `sam local invoke --env-vars` file: {"Parameters": {VAR: value} for
 * every function, "<FunctionLogicalId>": {VAR: value}}; like sam, it only overrides variables
 * the template declares. S3_ENDPOINT, AWS credentials and region, and POWERTOOLS_* variables
 * are passed through from the shell, so the function can run against any S3-compatible server.
 * A function that invokes another (the reprocess function dispatching renders) reaches a local
 * Lambda endpoint that runs the other function's artifact the same way.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildAll, DIST } from './build.js';
import { loadTemplate, localContext, resolvedEnvironment, resolveIntrinsics, ROOT, templateFunction, type ResolveContext, type Template, type TemplateFunction } from './template.js';

const USAGE = 'usage: npm run invoke -- <FunctionLogicalId> <event.json | -> [--env-vars env.json] [--skip-build]';
const RUNTIME = join(ROOT, 'tools', 'lambda-runtime.mjs');

class UsageError extends Error {}

/** Shell variables that reach the function (everything else comes from the template). */
const PASSED_THROUGH = /^(S3_ENDPOINT|AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE|CONFIG_FILE|SHARED_CREDENTIALS_FILE|REGION|DEFAULT_REGION)|POWERTOOLS_.*|PATH|HOME|LANG)$/;

type EnvVarsFile = Record<string, Record<string, unknown>>;

function readEnvVarsFile(path: string): EnvVarsFile {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`${path}: expected {"FunctionLogicalId": {"VAR": "value"}, "Parameters": {...}}`);
  return parsed as EnvVarsFile;
}

/** The function's environment as Lambda would set it, plus what a local run needs. */
export function functionEnvironment(template: Template, fn: TemplateFunction, envVars: EnvVarsFile = {}, shell: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const ctx = localContext(template, {}, shell);
  const declared = resolvedEnvironment(fn, template, ctx);
  const env: Record<string, string> = { ...declared };
  for (const [name, value] of Object.entries(shell)) if (PASSED_THROUGH.test(name) && value !== undefined) env[name] = value;
  for (const overrides of [envVars['Parameters'], envVars[fn.logicalId]]) {
    for (const [name, value] of Object.entries(overrides ?? {})) {
      if (!(name in declared)) {
        console.error(`--env-vars: ${name} is not declared in ${fn.logicalId}'s environment; ignored (as sam local invoke does)`);
        continue;
      }
      env[name] = typeof value === 'string' ? value : JSON.stringify(value);
    }
  }
  const memory = String(resolveIntrinsics(fn.memorySize, template, ctx));
  return {
    ...env,
    ...loggingEnvironment(template, fn, ctx),
    TZ: 'UTC',
    AWS_REGION: ctx.region,
    AWS_DEFAULT_REGION: ctx.region,
    AWS_LAMBDA_FUNCTION_NAME: fn.logicalId,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: memory,
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.logicalId}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `local/[$LATEST]${randomUUID().replace(/-/g, '')}`,
    AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    LAMBDA_TASK_ROOT: join(DIST, fn.logicalId),
    _HANDLER: fn.handler,
  };
}

/**
 * What Lambda sets from the function's LoggingConfig: with LogFormat JSON, AWS_LAMBDA_LOG_FORMAT
 * and AWS_LAMBDA_LOG_LEVEL (ApplicationLogLevel). The runtime then writes console output as JSON
 * and drops less severe entries (tools/lambda-runtime.mjs does the same); the Powertools logger
 * reads AWS_LAMBDA_LOG_LEVEL itself.
 */
function loggingEnvironment(template: Template, fn: TemplateFunction, ctx: ResolveContext): Record<string, string> {
  const logging = resolveIntrinsics(fn.properties['LoggingConfig'] ?? {}, template, ctx) as { LogFormat?: string; ApplicationLogLevel?: string };
  if (logging.LogFormat !== 'JSON') return {};
  return { AWS_LAMBDA_LOG_FORMAT: 'JSON', ...(logging.ApplicationLogLevel ? { AWS_LAMBDA_LOG_LEVEL: logging.ApplicationLogLevel } : {}) };
}

interface LambdaErrorPayload {
  errorType: string;
  errorMessage: string;
  trace?: string[];
}

type RuntimeMessage =
  | { type: 'ready'; initMs: number }
  | { type: 'init-error'; error: LambdaErrorPayload; peakRssKb: number }
  | { type: 'result'; result: unknown; durationMs: number; peakRssKb: number }
  | { type: 'error'; error: LambdaErrorPayload; durationMs: number; peakRssKb: number };

export interface InvokeOutcome {
  ok: boolean;
  /** The handler's result, or Lambda's error payload. */
  payload: unknown;
  report: string;
}

/**
 * Runs one invocation of a built function in a fresh Node process. The artifact is copied to a
 * folder of its own first (Lambda's /var/task): nothing outside it, such as the project's
 * node_modules, can stand in for a file the bundle forgot to ship.
 */
export async function invokeBuilt(
  template: Template,
  fn: TemplateFunction,
  event: unknown,
  envVars: EnvVarsFile = {},
  extraEnv: Record<string, string> = {},
  /** The built artifact; default dist/<LogicalId> (test/sam-build.test.ts runs the SAM-built one). */
  artifactDir: string = join(DIST, fn.logicalId),
): Promise<InvokeOutcome> {
  const taskRoot = await mkdtemp(join(tmpdir(), 'lambda-task-'));
  try {
    await cp(artifactDir, taskRoot, { recursive: true });
    return await runInChild(template, fn, event, { ...functionEnvironment(template, fn, envVars), ...extraEnv, LAMBDA_TASK_ROOT: taskRoot });
  } finally {
    await rm(taskRoot, { recursive: true, force: true });
  }
}

function runInChild(template: Template, fn: TemplateFunction, event: unknown, env: Record<string, string>): Promise<InvokeOutcome> {
  const ctx = localContext(template);
  const timeoutMs = Number(resolveIntrinsics(fn.timeout, template, ctx)) * 1000;
  const memoryMb = Number(resolveIntrinsics(fn.memorySize, template, ctx));
  const requestId = randomUUID();
  const child = spawn(process.execPath, [RUNTIME], { cwd: env['LAMBDA_TASK_ROOT'], env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  // The function's logs: stderr, as sam local invoke does, so stdout carries only the result.
  child.stdout!.pipe(process.stderr, { end: false });
  child.stderr!.pipe(process.stderr, { end: false });

  return new Promise((resolvePromise, reject) => {
    let initMs = 0;
    let startedAt = 0;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const report = (durationMs: number, peakRssKb: number | undefined, status?: string): string => {
      const used = peakRssKb === undefined ? '-' : String(Math.round(peakRssKb / 1024));
      return [
        `REPORT RequestId: ${requestId}`,
        `Duration: ${durationMs.toFixed(2)} ms`,
        `Billed Duration: ${Math.ceil(durationMs + initMs)} ms`,
        `Memory Size: ${memoryMb} MB`,
        `Max Memory Used: ${used} MB`,
        `Init Duration: ${initMs.toFixed(2)} ms`,
        ...(status ? [`Status: ${status}`] : []),
      ].join('\t');
    };
    const finish = (outcome: InvokeOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolvePromise(outcome);
    };
    child.on('error', reject);
    child.on('message', (message: RuntimeMessage) => {
      switch (message.type) {
        case 'ready':
          initMs = message.initMs;
          console.error(`START RequestId: ${requestId} Version: $LATEST`);
          startedAt = performance.now();
          timer = setTimeout(() => {
            child.kill('SIGKILL');
            const seconds = (timeoutMs / 1000).toFixed(2);
            const payload = { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${seconds} seconds` };
            console.error(`${new Date().toISOString()} ${requestId} Task timed out after ${seconds} seconds`);
            finish({ ok: false, payload, report: report(performance.now() - startedAt, undefined, 'timeout') });
          }, timeoutMs);
          child.send({ type: 'invoke', event, requestId, deadline: Date.now() + timeoutMs });
          break;
        case 'init-error':
          finish({ ok: false, payload: message.error, report: report(0, message.peakRssKb, 'error') });
          break;
        case 'result':
        case 'error': {
          if (message.peakRssKb / 1024 > memoryMb) {
            console.error(`warning: peak RSS ${Math.round(message.peakRssKb / 1024)} MB is over MemorySize ${memoryMb} MB: Lambda would have stopped the function`);
          }
          const ok = message.type === 'result';
          finish({ ok, payload: ok ? message.result : message.error, report: report(message.durationMs, message.peakRssKb, ok ? undefined : 'error') });
          break;
        }
      }
    });
    child.on('exit', (code, signal) => {
      if (settled) return;
      const payload = { errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${requestId} Error: Runtime exited ${signal ? `with signal: ${signal}` : `with error: exit status ${code}`}` };
      finish({ ok: false, payload, report: report(startedAt ? performance.now() - startedAt : 0, undefined, 'error') });
    });
  });
}

/**
 * A local Lambda Invoke API on loopback, as `sam local start-lambda` provides: a function that
 * invokes another one (the reprocess function dispatching renders) reaches it through the
 * SDK's AWS_ENDPOINT_URL_LAMBDA. Asynchronous invocations (InvocationType Event) are answered
 * 202 at once and run one after the other, each in a fresh process like any other.
 */
interface LocalLambda {
  env: Record<string, string>;
  /** Resolves when every queued asynchronous invocation has run; then stops listening. */
  drain(): Promise<void>;
}

async function startLocalLambda(template: Template, envVars: EnvVarsFile): Promise<LocalLambda> {
  let queue: Promise<void> = Promise.resolve();
  const server = createServer((req, res) => {
    const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const reply = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      let fn: TemplateFunction;
      let event: unknown;
      try {
        if (!match || req.method !== 'POST') throw new Error(`not a Lambda Invoke request: ${req.method} ${req.url}`);
        // Locally a function's name is its logical ID (what !Ref resolves to).
        fn = templateFunction(template, decodeURIComponent(match[1]!.split(':').at(-1)!));
        event = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch (err) {
        reply(404, { Type: 'User', message: (err as Error).message });
        return;
      }
      const run = async (): Promise<InvokeOutcome> => {
        const outcome = await invokeBuilt(template, fn, event, envVars, localEnv);
        console.error(outcome.report);
        return outcome;
      };
      if (req.headers['x-amz-invocation-type'] === 'Event') {
        queue = queue.then(() => run().then(() => undefined, (err: unknown) => console.error(`local Lambda: ${(err as Error).message}`)));
        reply(202, {});
      } else {
        run().then((outcome) => reply(200, outcome.payload), (err: unknown) => reply(500, { message: (err as Error).message }));
      }
    });
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const { port } = server.address() as AddressInfo;
  const localEnv: Record<string, string> = {
    AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${port}`,
    // The SDK signs its requests even to a local endpoint: give it something to sign with.
    ...(process.env['AWS_ACCESS_KEY_ID'] || process.env['AWS_PROFILE'] ? {} : { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' }),
  };
  return {
    env: localEnv,
    async drain() {
      // A queued render may itself queue more: wait until the queue stays settled.
      for (let seen: Promise<void> | undefined; seen !== queue; ) {
        seen = queue;
        await seen;
      }
      server.close();
    },
  };
}

function readEvent(path: string): unknown {
  const text = path === '-' ? readFileSync(0, 'utf8') : readFileSync(resolve(path), 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not JSON: ${(err as Error).message}`);
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'env-vars': { type: 'string', short: 'n' },
      event: { type: 'string', short: 'e' },
      'skip-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.error(USAGE);
    return 0;
  }
  const [logicalId, eventPath = values.event] = positionals;
  if (!logicalId || !eventPath) throw new UsageError(USAGE);
  const template = loadTemplate();
  let fn: TemplateFunction;
  try {
    fn = templateFunction(template, logicalId);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const event = readEvent(eventPath);
  const envVars = values['env-vars'] ? readEnvVarsFile(values['env-vars']) : {};
  // Every function: the one invoked may invoke the others.
  if (!values['skip-build']) await buildAll();
  const lambda = await startLocalLambda(template, envVars);
  const outcome = await invokeBuilt(template, fn, event, envVars, lambda.env);
  console.error(`END RequestId: ${outcome.report.match(/RequestId: (\S+)/)?.[1] ?? ''}`);
  console.error(outcome.report);
  await lambda.drain();
  process.stdout.write(`${JSON.stringify(outcome.payload)}\n`);
  return outcome.ok ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = err instanceof UsageError ? 2 : 1;
    },
  );
}
