/**
 * npm run invoke -- <FunctionLogicalId> <event.json> [--env-vars env.json] [--skip-build]
 *
 * What `sam local invoke <FunctionLogicalId> -e <event.json>` does, without Docker: builds the
 * template's functions (tools/build.ts), reads the function's handler, environment (Globals
 * merged, intrinsics resolved with parameter defaults), Timeout and MemorySize from
 * template.yaml, and runs the built handler once in a fresh Node process with a Lambda-like
 * context, under the function's Lambda shape: CPU MemorySize/1769 vCPU and a memory limit of
 * MemorySize (tools/lambda-shape.ts; --memory N for another size). The function's logs go to stderr with START/END/REPORT lines; its result (or
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
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildAll } from './build.js';
import { invokeBuilt, LambdaContainer, type EnvVarsFile, type InvokeOutcome } from './lambda-container.js';
import { loadTemplate, templateFunction, type Template, type TemplateFunction } from './template.js';

export { functionEnvironment, invokeBuilt, type InvokeOutcome } from './lambda-container.js';

const USAGE = 'usage: npm run invoke -- <FunctionLogicalId> <event.json | -> [--env-vars env.json] [--memory MB] [--skip-build]';

class UsageError extends Error {}

function readEnvVarsFile(path: string): EnvVarsFile {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`${path}: expected {"FunctionLogicalId": {"VAR": "value"}, "Parameters": {...}}`);
  return parsed as EnvVarsFile;
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
        const outcome = await invokeBuilt(template, fn, event, { envVars, extraEnv: localEnv });
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
      memory: { type: 'string' },
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
  const memoryMb = values.memory === undefined ? undefined : Number(values.memory);
  if (memoryMb !== undefined && (!Number.isInteger(memoryMb) || memoryMb < 128 || memoryMb > 10240)) throw new UsageError(`--memory ${values.memory}: expected a whole number of MB, 128..10240`);
  const outcome = await invokeBuilt(template, fn, event, { envVars, extraEnv: lambda.env, ...(memoryMb ? { memoryMb } : {}) });
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
