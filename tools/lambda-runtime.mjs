// @ts-check
/**
 * The child side of `npm run invoke` (tools/invoke.ts): a fresh Node process that plays the
 * Lambda Node.js runtime for one invocation. Plain JavaScript, no loaders: it imports the built
 * artifact exactly as Lambda would.
 *
 * Environment: LAMBDA_TASK_ROOT (the artifact folder), _HANDLER ("file.export"), and the
 * function's own variables. Protocol (IPC with the parent, tools/lambda-container.ts): the
 * runtime sends {type: "ready", initMs} or {type: "init-error", error}; for each {type: "invoke",
 * event, requestId, deadline} the parent sends, one at a time, it answers {type: "result",
 * result, ...} or {type: "error", error, ...} with the duration and the process's peak RSS, and
 * stays warm for the next, as Lambda's runtime does; {type: "shutdown"} ends it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

/** @param {unknown} err */
function lambdaError(err) {
  const error = err instanceof Error ? err : new Error(String(err));
  return {
    errorType: error.name || 'Error',
    errorMessage: error.message,
    trace: (error.stack ?? '').split('\n'),
  };
}

/** @param {object} message */
function send(message) {
  return new Promise((resolve) => process.send?.(message, () => resolve(undefined)));
}

const peakRssKb = () => process.resourceUsage().maxRSS;

/**
 * Lambda's log formats for console output. Text: timestamp, request ID, level, message. JSON
 * (AWS_LAMBDA_LOG_FORMAT=JSON, from the template's LoggingConfig): one object per entry, and
 * entries less severe than AWS_LAMBDA_LOG_LEVEL are dropped.
 */
let requestId = 'undefined';
const json = process.env['AWS_LAMBDA_LOG_FORMAT'] === 'JSON';
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
const minimum = Math.max(0, LEVELS.indexOf(process.env['AWS_LAMBDA_LOG_LEVEL'] ?? 'INFO'));
for (const [method, level] of /** @type {const} */ ([
  ['log', 'INFO'],
  ['info', 'INFO'],
  ['warn', 'WARN'],
  ['error', 'ERROR'],
  ['debug', 'DEBUG'],
  ['trace', 'TRACE'],
])) {
  const stream = method === 'log' || method === 'info' || method === 'debug' ? process.stdout : process.stderr;
  console[method] = (...args) => {
    const timestamp = new Date().toISOString();
    if (!json) {
      stream.write(`${timestamp}\t${requestId}\t${level}\t${format(...args).replace(/\n/g, '\r')}\n`);
      return;
    }
    if (LEVELS.indexOf(level) < minimum) return;
    stream.write(`${JSON.stringify({ timestamp, level, requestId, message: format(...args) })}\n`);
  };
}

/** "dir/file.export.nested": the module beside LAMBDA_TASK_ROOT and the export in it. */
async function loadHandler() {
  const root = process.env['LAMBDA_TASK_ROOT'] ?? process.cwd();
  const spec = process.env['_HANDLER'] ?? '';
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0) throw Object.assign(new Error(`Bad handler ${spec}`), { name: 'Runtime.MalformedHandlerName' });
  const modulePath = spec.slice(0, dot);
  const exportPath = spec.slice(dot + 1).split('.');
  const file = ['.js', '.mjs', '.cjs'].map((ext) => join(root, modulePath + ext)).find((f) => existsSync(f));
  if (!file) throw Object.assign(new Error(`Cannot find module '${modulePath}'`), { name: 'Runtime.ImportModuleError' });
  /** @type {any} */
  let target = await import(pathToFileURL(file).href);
  for (const part of exportPath) target = target?.[part];
  if (typeof target !== 'function') throw Object.assign(new Error(`${spec} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  return /** @type {Function} */ (target);
}

const initStarted = performance.now();
let handler;
try {
  handler = await loadHandler();
} catch (err) {
  await send({ type: 'init-error', error: lambdaError(err), peakRssKb: peakRssKb() });
  process.exit(1);
}
await send({ type: 'ready', initMs: performance.now() - initStarted });

process.on('message', async (/** @type {any} */ message) => {
  if (message?.type === 'shutdown') process.exit(0);
  if (message?.type !== 'invoke') return;
  requestId = message.requestId;
  const name = process.env['AWS_LAMBDA_FUNCTION_NAME'] ?? 'function';
  const region = process.env['AWS_REGION'] ?? 'us-east-1';
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: process.env['AWS_LAMBDA_FUNCTION_VERSION'] ?? '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:123456789012:function:${name}`,
    memoryLimitInMB: process.env['AWS_LAMBDA_FUNCTION_MEMORY_SIZE'] ?? '128',
    awsRequestId: message.requestId,
    logGroupName: process.env['AWS_LAMBDA_LOG_GROUP_NAME'] ?? `/aws/lambda/${name}`,
    logStreamName: process.env['AWS_LAMBDA_LOG_STREAM_NAME'] ?? 'local',
    getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
  };
  const started = performance.now();
  try {
    // Callback-style handlers (three parameters) are still supported by the Node.js runtime.
    const result =
      handler.length >= 3
        ? await new Promise((resolve, reject) => {
            const maybe = handler(message.event, context, (/** @type {unknown} */ err, /** @type {unknown} */ value) => (err ? reject(err) : resolve(value)));
            if (maybe && typeof maybe.then === 'function') maybe.then(resolve, reject);
          })
        : await handler(message.event, context);
    await send({ type: 'result', result: result ?? null, durationMs: performance.now() - started, peakRssKb: peakRssKb() });
  } catch (err) {
    const error = lambdaError(err);
    console.error('Invoke Error', JSON.stringify(error));
    await send({ type: 'error', error, durationMs: performance.now() - started, peakRssKb: peakRssKb() });
  }
  // Lambda freezes the process here until the next invocation.
});
