/**
 * A Lambda execution environment for a built function, without Docker: the artifact copied to
 * a folder of its own (Lambda's /var/task, so nothing outside it, such as the project's
 * node_modules, can stand in for a file the bundle forgot to ship), the function's environment
 * from template.yaml, and a Node process running tools/lambda-runtime.mjs that serves one
 * invocation after another like a warm container. The process runs in the function's Lambda
 * shape (tools/lambda-shape.ts): CPU MemorySize/1769 vCPU and a memory limit of MemorySize, so an
 * invocation that needs more memory is killed as Lambda would kill it. The function's layers are
 * on NODE_PATH as Lambda puts /opt/nodejs/node_modules there: dist/<LayerId>/ (tools/build.ts
 * builds them for this machine's architecture), or the folders given. Used by `npm run invoke`,
 * test/sam-build.test.ts and test/lambda-shape.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { cp, mkdir, rm } from 'node:fs/promises';
import { tempFolder } from './cleanup.js';
import { join } from 'node:path';
import { DIST } from './build.js';
import { lambdaNode } from './lambda-node.js';
import { describeReport, mb, spawnShaped, type ShapedChild, type ShapeReport } from './lambda-shape.js';
import { functionLayerIds, localContext, resolvedEnvironment, resolveIntrinsics, ROOT, type ResolveContext, type Template, type TemplateFunction } from './template.js';

const RUNTIME = join(ROOT, 'tools', 'lambda-runtime.mjs');

/** Shell variables that reach the function (everything else comes from the template). */
const PASSED_THROUGH = /^(S3_ENDPOINT|AWS_ENDPOINT_URL(_[A-Z_]+)?|AWS_IGNORE_CONFIGURED_ENDPOINT_URLS|AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE|CONFIG_FILE|SHARED_CREDENTIALS_FILE|REGION|DEFAULT_REGION)|POWERTOOLS_.*|PATH|HOME|LANG)$/;

/** A `sam local invoke --env-vars` file: {"Parameters": {VAR: value}, "<FunctionLogicalId>": {VAR: value}}. */
export type EnvVarsFile = Record<string, Record<string, unknown>>;

/** The function's environment as Lambda would set it, plus what a local run needs. */
export function functionEnvironment(template: Template, fn: TemplateFunction, envVars: EnvVarsFile = {}, shell: NodeJS.ProcessEnv = process.env, parameters: Record<string, string> = {}): Record<string, string> {
  const ctx = localContext(template, parameters, shell);
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
  /** Lambda's REPORT line. */
  report: string;
  /** Peak memory of this invocation: the cgroup's when the shape is enforced, else the process's peak RSS. */
  peakBytes?: number;
  /** The kernel killed the function for reaching MemorySize (Lambda: Runtime.OutOfMemory). */
  outOfMemory: boolean;
}

export interface ContainerOptions {
  envVars?: EnvVarsFile;
  /** Template parameter values over their defaults (a deployment mode: SourceBucketMode, ExistingBucketName, OutputBucketName …). */
  parameters?: Record<string, string>;
  /** Variables set last (a local endpoint, S3_ENDPOINT …). */
  extraEnv?: Record<string, string>;
  /** The built artifact; default dist/<LogicalId> (test/sam-build.test.ts runs the SAM-built one). */
  artifactDir?: string;
  /** Built layers by logical ID (each holding nodejs/node_modules); default dist/<LayerId>. */
  layerDirs?: Record<string, string>;
  /** Memory in MB; default the function's MemorySize in the template. */
  memoryMb?: number;
  /** Where the function's logs go; default this process's stderr. */
  logs?: NodeJS.WritableStream;
  /** The invocation budget in ms; default the function's Timeout in the template (the soak runs shortened budgets). */
  timeoutMs?: number;
}

/** A warm Lambda container of one function: start(), invoke() as often as needed, close(). */
export class LambdaContainer {
  private initMs = 0;
  private initReported = false;
  private exit: Promise<ShapeReport & { code: number | null; signal: NodeJS.Signals | null }>;
  private exited = false;

  private constructor(
    readonly fn: TemplateFunction,
    readonly memoryMb: number,
    private readonly timeoutMs: number,
    private readonly shaped: ShapedChild,
    private readonly taskRoot: string,
    /** Where the function's logs go; Lambda's own lines (START, timeouts) go there too. */
    private readonly logs: NodeJS.WritableStream,
  ) {
    this.exit = shaped.exited.finally(() => {
      this.exited = true;
    });
  }

  static async start(template: Template, fn: TemplateFunction, options: ContainerOptions = {}): Promise<{ container: LambdaContainer; initError?: InvokeOutcome }> {
    const ctx = localContext(template);
    const memoryMb = options.memoryMb ?? Number(resolveIntrinsics(fn.memorySize, template, ctx));
    const timeoutMs = options.timeoutMs ?? Number(resolveIntrinsics(fn.timeout, template, ctx)) * 1000;
    const taskRoot = await tempFolder('lambda-task-');
    await cp(options.artifactDir ?? join(DIST, fn.logicalId), taskRoot, { recursive: true });
    // Each container's own /tmp, as in Lambda: what one leaves there (the page function's warm
    // source cache) is not another's.
    const ownTmp = join(taskRoot, '.tmp');
    await mkdir(ownTmp);
    const env = {
      ...functionEnvironment(template, fn, options.envVars ?? {}, process.env, options.parameters ?? {}),
      ...(options.extraEnv ?? {}),
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
      LAMBDA_TASK_ROOT: taskRoot,
      TMPDIR: ownTmp,
      // Lambda's NODE_PATH holds /opt/nodejs/node_modules, where a layer's nodejs/node_modules
      // lands: only CommonJS require() looks there (sharp's, lib/encode/sharp-encoder.ts).
      NODE_PATH: functionLayerIds(fn)
        .map((id) => join(options.layerDirs?.[id] ?? join(DIST, id), 'nodejs', 'node_modules'))
        .join(':'),
    };
    // The runtime's Node (LAMBDA_NODE: CI runs the artifact on the template's nodejs24.x), else this one.
    const shaped = spawnShaped(memoryMb, lambdaNode(), [RUNTIME], { cwd: taskRoot, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    // The function's logs: stderr, as sam local invoke does, so stdout carries only the result.
    const logs = options.logs ?? process.stderr;
    shaped.child.stdout!.pipe(logs, { end: false });
    shaped.child.stderr!.pipe(logs, { end: false });
    const container = new LambdaContainer(fn, memoryMb, timeoutMs, shaped, taskRoot, logs);
    const first = await container.next();
    if (typeof first === 'object' && first.type === 'ready') {
      container.initMs = first.initMs;
      return { container };
    }
    const outOfMemory = (await container.exit).oomKills > 0;
    const payload = typeof first === 'object' && first.type === 'init-error' ? first.error : container.crashPayload('init', outOfMemory);
    return { container, initError: { ok: false, payload, report: container.report('init', 0, undefined, 'error'), outOfMemory } };
  }

  /** The next message from the runtime, or undefined when it exits first. */
  private next(timeoutMs?: number): Promise<RuntimeMessage | 'timeout' | undefined> {
    return new Promise((resolve) => {
      const child = this.shaped.child;
      const onMessage = (message: RuntimeMessage) => done(message);
      const onExit = () => done(undefined);
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => done('timeout'), timeoutMs);
      function done(value: RuntimeMessage | 'timeout' | undefined): void {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(value);
      }
      if (this.exited || child.exitCode !== null || child.signalCode !== null) return resolve(undefined);
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  }

  private crashPayload(requestId: string, outOfMemory: boolean): LambdaErrorPayload {
    const { exitCode, signalCode } = this.shaped.child;
    const how = signalCode ? `signal: ${signalCode === 'SIGKILL' ? 'killed' : signalCode}` : `exit status ${exitCode}`;
    return { errorType: outOfMemory ? 'Runtime.OutOfMemory' : 'Runtime.ExitError', errorMessage: `RequestId: ${requestId} Error: Runtime exited with error: ${how}` };
  }

  private report(requestId: string, durationMs: number, peakBytes: number | undefined, status?: string): string {
    const init = this.initReported ? [] : [`Init Duration: ${this.initMs.toFixed(2)} ms`];
    this.initReported = true;
    return [
      `REPORT RequestId: ${requestId}`,
      `Duration: ${durationMs.toFixed(2)} ms`,
      `Billed Duration: ${Math.ceil(durationMs + (init.length ? this.initMs : 0))} ms`,
      `Memory Size: ${this.memoryMb} MB`,
      `Max Memory Used: ${peakBytes === undefined ? '-' : Math.round(peakBytes / 2 ** 20)} MB`,
      ...init,
      ...(status ? [`Status: ${status}`] : []),
    ].join('\t');
  }

  /** One invocation; the container stays warm unless the function timed out or died. */
  async invoke(event: unknown): Promise<InvokeOutcome> {
    const requestId = randomUUID();
    if (this.exited) throw new Error(`${this.fn.logicalId}: the container has ended`);
    this.logs.write(`START RequestId: ${requestId} Version: $LATEST\n`);
    this.shaped.resetPeak();
    const startedAt = performance.now();
    this.shaped.child.send({ type: 'invoke', event, requestId, deadline: Date.now() + this.timeoutMs }, () => undefined);
    const message = await this.next(this.timeoutMs);
    const durationMs = performance.now() - startedAt;
    const enforced = this.shaped.report();
    const cgroupPeak = enforced.enforced ? enforced.peakBytes : undefined;
    if (message === 'timeout') {
      this.shaped.child.kill('SIGKILL');
      const seconds = (this.timeoutMs / 1000).toFixed(2);
      this.logs.write(`${new Date().toISOString()} ${requestId} Task timed out after ${seconds} seconds\n`);
      const payload = { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${seconds} seconds` };
      return { ok: false, payload, report: this.report(requestId, durationMs, cgroupPeak, 'timeout'), ...(cgroupPeak !== undefined ? { peakBytes: cgroupPeak } : {}), outOfMemory: false };
    }
    if (message === undefined || message.type === 'ready' || message.type === 'init-error') {
      const final = await this.exit;
      const outOfMemory = final.oomKills > 0;
      const peakBytes = final.enforced ? final.peakBytes : undefined;
      return { ok: false, payload: this.crashPayload(requestId, outOfMemory), report: this.report(requestId, durationMs, peakBytes, 'error'), ...(peakBytes !== undefined ? { peakBytes } : {}), outOfMemory };
    }
    const peakBytes = cgroupPeak ?? message.peakRssKb * 1024;
    if (!enforced.enforced && peakBytes > this.memoryMb * 2 ** 20) {
      this.logs.write(`warning: peak RSS ${mb(peakBytes)} is over MemorySize ${this.memoryMb} MB: Lambda would have stopped the function\n`);
    }
    const ok = message.type === 'result';
    return { ok, payload: ok ? message.result : message.error, report: this.report(requestId, message.durationMs, peakBytes, ok ? undefined : 'error'), peakBytes, outOfMemory: false };
  }

  /** True once the runtime process has ended (killed, timed out, out of memory). */
  get ended(): boolean {
    return this.exited || this.shaped.child.exitCode !== null || this.shaped.child.signalCode !== null;
  }

  /** SIGKILL now, mid-invocation if one is running: the host dies, as when Lambda's sandbox is lost. The invocation answers Runtime.ExitError. */
  kill(): void {
    this.shaped.child.kill('SIGKILL');
  }

  /** Ends the container (as Lambda does when it retires one); resolves with the cgroup's totals. */
  async close(): Promise<ShapeReport> {
    if (!this.exited && this.shaped.child.connected) this.shaped.child.send({ type: 'shutdown' }, () => undefined);
    const kill = setTimeout(() => this.shaped.child.kill('SIGKILL'), 5000);
    const final = await this.exit;
    clearTimeout(kill);
    await rm(this.taskRoot, { recursive: true, force: true });
    return final;
  }

  static describe(report: ShapeReport): string {
    return describeReport(report);
  }
}

/** One invocation in a fresh container (what `sam local invoke` does). */
export async function invokeBuilt(template: Template, fn: TemplateFunction, event: unknown, options: ContainerOptions = {}): Promise<InvokeOutcome> {
  const { container, initError } = await LambdaContainer.start(template, fn, options);
  if (initError) {
    await container.close();
    return initError;
  }
  try {
    return await container.invoke(event);
  } finally {
    await container.close();
  }
}
