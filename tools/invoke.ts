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
 * the template declares. Local endpoints (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>,
 * S3_ENDPOINT: lib/aws/endpoint.ts), AWS credentials and region, and POWERTOOLS_* variables are
 * passed through from the shell, so the function can run against any S3-compatible server.
 * With a local SQS endpoint, RENDER_QUEUE_URL is a local queue on that server, and what the function
 * sends there (reprocess requests, continuations, fan-out ranges) is then run by the render
 * function's artifact, message by message, as the SQS event source mapping would.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readEndpoints } from '../lib/aws/endpoint.js';
import { createSqsClient } from '../lib/sqs/client.js';
import { buildAll } from './build.js';
import { createRenderQueues, pollQueue } from './local-queue.js';
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
 * The render queue, locally: RENDER_QUEUE_URL points at a queue on the local server
 * (S3_ENDPOINT; moto serves SQS too), and once the invoked function has returned, whatever it
 * sent there (the reprocess function's requests, continuations, fan-out ranges) is run by the
 * render function's artifact, message by message, the way the event source mapping runs it
 * (tools/local-queue.ts).
 */
interface LocalRenderQueue {
  env: Record<string, string>;
  /** Runs every queued message through the render function until the queue stays empty. */
  drain(): Promise<void>;
}

async function startLocalRenderQueue(template: Template, envVars: EnvVarsFile, memoryMb: number | undefined): Promise<LocalRenderQueue | undefined> {
  // A local SQS endpoint (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL or S3_ENDPOINT).
  const endpoints = readEndpoints(process.env);
  const endpoint = endpoints.SQS;
  if (!endpoint) return undefined;
  const sqs = createSqsClient({ endpoints });
  let queues;
  try {
    queues = await createRenderQueues(sqs);
  } catch (err) {
    console.error(`warning: no local render queue at ${endpoint} (${(err as Error).message}): nothing sent to RENDER_QUEUE_URL will run`);
    return undefined;
  }
  const env = {
    RENDER_QUEUE_URL: queues.queueUrl,
    // The SDK signs its requests even to a local endpoint: give it something to sign with.
    ...(process.env['AWS_ACCESS_KEY_ID'] || process.env['AWS_PROFILE'] ? {} : { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' }),
  };
  const render = templateFunction(template, 'RenderPdfFunction');
  return {
    env,
    async drain() {
      await pollQueue({
        sqs,
        queues,
        concurrency: 1,
        invoke: async (event) => {
          const outcome = await invokeBuilt(template, render, event, { envVars, extraEnv: env, ...(memoryMb ? { memoryMb } : {}) });
          console.error(outcome.report);
          if (!outcome.ok) throw new Error(JSON.stringify(outcome.payload));
          return outcome.payload as { batchItemFailures?: { itemIdentifier: string }[] };
        },
      });
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
  const memoryMb = values.memory === undefined ? undefined : Number(values.memory);
  if (memoryMb !== undefined && (!Number.isInteger(memoryMb) || memoryMb < 128 || memoryMb > 10240)) throw new UsageError(`--memory ${values.memory}: expected a whole number of MB, 128..10240`);
  const queue = await startLocalRenderQueue(template, envVars, memoryMb);
  const outcome = await invokeBuilt(template, fn, event, { envVars, ...(queue ? { extraEnv: queue.env } : {}), ...(memoryMb ? { memoryMb } : {}) });
  console.error(`END RequestId: ${outcome.report.match(/RequestId: (\S+)/)?.[1] ?? ''}`);
  console.error(outcome.report);
  await queue?.drain();
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
