/**
 * Lambda-shaped processes: a command run with the CPU and memory Lambda gives a function of N MB.
 * (A third cgroup, cpuacct, only counts the CPU time used.)
 * Lambda allots CPU in proportion to memory, one vCPU per 1,769 MB, and stops the function when
 * its memory reaches N MB. Here that is a cgroup v1 pair: cpu (cpu.cfs_quota_us / cpu.cfs_period_us
 * = N / 1769) and memory (memory.limit_in_bytes = N MB, and memory.memsw.limit_in_bytes too where
 * swap accounting exists, so the limit cannot be dodged by swapping). Each cgroup is created under
 * this process's own cgroup of that hierarchy (read from /proc/self/cgroup), so any limit already
 * placed on us still holds, and removed when the command has ended.
 *
 * Where cgroups are not writable (not root, cgroup v2 only, a read-only /sys/fs/cgroup) the
 * command runs unconstrained, with a warning saying so; the report then has `enforced: false`.
 *
 * CLI: `npm run shape -- --memory 2048 [--] <command> [args…]` runs one command and prints the
 * report (peak memory, OOM kills, CPU throttling) on stderr; exit status is the command's.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { trackProcess } from './cleanup.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { lambdaNode } from './lambda-node.js';

/** Lambda: "at 1,769 MB, a function has the equivalent of one vCPU". */
export const MB_PER_VCPU = 1769;
const CGROUP_ROOT = '/sys/fs/cgroup';
const CPU_PERIOD_US = 100_000;
const MiB = 2 ** 20;

export interface LambdaShape {
  memoryMb: number;
  /** memoryMb / 1769, capped at this machine's CPUs when enforced. */
  vcpus: number;
}

export interface ShapeReport extends LambdaShape {
  /** False when the cgroups could not be made: the run had this machine's CPU and memory. */
  enforced: boolean;
  /** The cgroup's peak memory (memory.max_usage_in_bytes, page cache included, as Lambda counts it). */
  peakBytes?: number;
  /** Processes the kernel killed for reaching the memory limit (memory.oom_control oom_kill). */
  oomKills: number;
  /** Times an allocation hit the limit and memory had to be reclaimed first (memory.failcnt). */
  limitHits: number;
  /** Time the CPU quota held the processes back (cpu.stat throttled_time). */
  throttledMs?: number;
  /**
   * CPU time the processes used (cpuacct.usage). On a busy machine the wall time says more about
   * the neighbours than about the shape; this does not.
   */
  cpuMs?: number;
}

/** Why a shape could not be enforced, or undefined where it can. */
function unavailable(): string | undefined {
  if (process.platform !== 'linux') return `cgroups are Linux only (this is ${process.platform})`;
  for (const controller of ['cpu', 'cpuacct', 'memory']) {
    if (!existsSync(join(CGROUP_ROOT, controller, 'cgroup.procs'))) return `${CGROUP_ROOT}/${controller} is not a cgroup v1 hierarchy`;
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'creating cgroups needs root';
  return undefined;
}

/** This process's cgroup folder in a v1 hierarchy (e.g. /sys/fs/cgroup/memory/some/group). */
function ownCgroup(controller: string): string {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes(controller));
  return join(CGROUP_ROOT, controller, line?.split(':')[2] ?? '/');
}

let counter = 0;
const NAME_PREFIX = 's3-pdf-render-lambda-';

/**
 * Removes our cgroups left behind by a process that was killed before it could remove them
 * (named after its PID): only empty ones whose creator is gone.
 */
function sweepStale(parent: string): void {
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(NAME_PREFIX)) continue;
    const pid = Number(name.slice(NAME_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(pid) || existsSync(`/proc/${pid}`)) continue;
    try {
      if (readFileSync(join(parent, name, 'cgroup.procs'), 'utf8').trim() === '') rmdirSync(join(parent, name));
    } catch {
      // another process swept it first
    }
  }
}

/** A cpu + memory cgroup pair shaped like a Lambda function of `memoryMb`. */
export class LambdaCgroup {
  private constructor(
    readonly shape: LambdaShape,
    private readonly cpuDir: string,
    private readonly memoryDir: string,
    private readonly cpuacctDir: string,
  ) {}

  /** Creates the cgroups, or returns undefined (with the reason) where they cannot be made. */
  static create(memoryMb: number): LambdaCgroup | { warning: string } {
    const reason = unavailable();
    if (reason) return { warning: reason };
    const name = `${NAME_PREFIX}${process.pid}-${++counter}`;
    const cpuDir = join(ownCgroup('cpu'), name);
    const memoryDir = join(ownCgroup('memory'), name);
    const cpuacctDir = join(ownCgroup('cpuacct'), name);
    try {
      for (const controller of ['cpu', 'memory', 'cpuacct']) sweepStale(ownCgroup(controller));
      mkdirSync(cpuDir);
      mkdirSync(memoryDir);
      mkdirSync(cpuacctDir);
      const vcpus = memoryMb / MB_PER_VCPU;
      writeFileSync(join(cpuDir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      writeFileSync(join(cpuDir, 'cpu.cfs_quota_us'), String(Math.round(CPU_PERIOD_US * vcpus)));
      // memsw (memory + swap) must stay >= the memory limit: set the memory limit first.
      writeFileSync(join(memoryDir, 'memory.limit_in_bytes'), String(memoryMb * MiB));
      if (existsSync(join(memoryDir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(memoryDir, 'memory.memsw.limit_in_bytes'), String(memoryMb * MiB));
      return new LambdaCgroup({ memoryMb, vcpus }, cpuDir, memoryDir, cpuacctDir);
    } catch (err) {
      for (const dir of [cpuDir, memoryDir, cpuacctDir]) if (existsSync(dir)) rmdirSync(dir);
      return { warning: `cannot create cgroups under ${CGROUP_ROOT}: ${(err as Error).message}` };
    }
  }

  /**
   * The command, wrapped so that it enters both cgroups before it starts: a shell writes its
   * own PID to cgroup.procs, then execs the command (every thread and child stays inside).
   */
  wrap(command: string, args: string[]): { command: string; args: string[] } {
    const script = `echo $$ > '${this.cpuDir}/cgroup.procs' && echo $$ > '${this.memoryDir}/cgroup.procs' && echo $$ > '${this.cpuacctDir}/cgroup.procs' && exec "$@"`;
    return { command: '/bin/sh', args: ['-c', script, 'sh', command, ...args] };
  }

  private read(file: string, dir = this.memoryDir): string {
    return readFileSync(join(dir, file), 'utf8');
  }

  /** Starts a new peak: memory.max_usage_in_bytes back to the current usage. */
  resetPeak(): void {
    writeFileSync(join(this.memoryDir, 'memory.max_usage_in_bytes'), '0');
  }

  report(): ShapeReport {
    const oom = /^oom_kill (\d+)$/m.exec(this.read('memory.oom_control'));
    const throttled = /^throttled_time (\d+)$/m.exec(this.read('cpu.stat', this.cpuDir));
    return {
      ...this.shape,
      enforced: true,
      peakBytes: Number(this.read('memory.max_usage_in_bytes')),
      oomKills: oom ? Number(oom[1]) : 0,
      limitHits: Number(this.read('memory.failcnt')),
      ...(throttled ? { throttledMs: Number(throttled[1]) / 1e6 } : {}),
      cpuMs: Number(this.read('cpuacct.usage', this.cpuacctDir)) / 1e6,
    };
  }

  /** Removes both cgroups; their processes must have ended. */
  dispose(): void {
    for (const dir of [this.cpuDir, this.memoryDir, this.cpuacctDir]) {
      try {
        rmdirSync(dir);
      } catch (err) {
        console.error(`warning: could not remove ${dir}: ${(err as Error).message}`);
      }
    }
  }
}

/** Why Lambda-shaped cgroups cannot be made here (a probe pair is made and removed), or undefined when they can. */
export function shapeUnavailable(): string | undefined {
  const probe = LambdaCgroup.create(128);
  if (!(probe instanceof LambdaCgroup)) return probe.warning;
  probe.dispose();
  return undefined;
}

export interface ShapedChild {
  child: ChildProcess;
  /** The cgroup's figures so far (the limits alone when not enforced). */
  report(): ShapeReport;
  /** Starts a new peak (between invocations of a warm process). */
  resetPeak(): void;
  /** Resolves with the final report once the process has exited; removes the cgroups. */
  exited: Promise<ShapeReport & { code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `command` in a Lambda shape of `memoryMb`; unconstrained, with a warning, where cgroups are unavailable. */
export function spawnShaped(memoryMb: number, command: string, args: string[], options: SpawnOptions = {}): ShapedChild {
  const cgroup = LambdaCgroup.create(memoryMb);
  const loose: ShapeReport = { memoryMb, vcpus: memoryMb / MB_PER_VCPU, enforced: false, oomKills: 0, limitHits: 0 };
  if (!(cgroup instanceof LambdaCgroup)) console.error(`warning: running WITHOUT the Lambda shape (${memoryMb} MB, ${loose.vcpus.toFixed(2)} vCPU): ${cgroup.warning}`);
  const shaped = cgroup instanceof LambdaCgroup ? cgroup : undefined;
  const run = shaped ? shaped.wrap(command, args) : { command, args };
  const child = trackProcess(spawn(run.command, run.args, options));
  // Once the process has ended the cgroups are gone: their last figures are kept here.
  let final: ShapeReport | undefined;
  const exited = new Promise<ShapeReport & { code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', (err) => {
      // A failed spawn; other errors (an IPC message the ended process can no longer take) are
      // its user's to handle, and the 'exit' below still comes.
      if (child.pid !== undefined) return;
      shaped?.dispose();
      reject(err);
    });
    child.once('exit', (code, signal) => {
      final = shaped ? shaped.report() : loose;
      shaped?.dispose();
      resolve({ ...final, code, signal });
    });
  });
  return {
    child,
    report: () => final ?? (shaped ? shaped.report() : loose),
    resetPeak: () => {
      if (!final) shaped?.resetPeak();
    },
    exited,
  };
}

export const mb = (bytes: number | undefined): string => (bytes === undefined ? '-' : `${Math.round(bytes / MiB)} MB`);

export function describeReport(report: ShapeReport): string {
  const shape = `${report.memoryMb} MB, ${report.vcpus.toFixed(2)} vCPU`;
  if (!report.enforced) return `${shape} NOT enforced (no cgroups): peak memory unknown`;
  const throttled = report.throttledMs === undefined ? '' : `, CPU throttled ${Math.round(report.throttledMs)} ms`;
  const cpu = report.cpuMs === undefined ? '' : `, CPU time ${Math.round(report.cpuMs)} ms`;
  return `${shape}: peak memory ${mb(report.peakBytes)}, OOM kills ${report.oomKills}, limit hits ${report.limitHits}${cpu}${throttled}`;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { memory: { type: 'string' } } });
  const memoryMb = Number(values.memory);
  if (!Number.isInteger(memoryMb) || memoryMb < 128 || memoryMb > 10240 || positionals.length === 0) {
    console.error('usage: npm run shape -- --memory <128..10240 MB> [--] <command> [args…]');
    return 2;
  }
  const [command, ...args] = positionals as [string, ...string[]];
  // `node` is the runtime's Node when LAMBDA_NODE says where it is.
  const shaped = spawnShaped(memoryMb, command === 'node' ? lambdaNode() : command, args, { stdio: 'inherit' });
  const result = await shaped.exited;
  console.error(`lambda shape ${describeReport(result)}${result.signal ? `; ended by ${result.signal}` : ''}`);
  return result.code ?? 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((code) => (process.exitCode = code));
}
