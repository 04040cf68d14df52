/**
 * What S3 Batch Operations does with a LambdaInvoke job, on this machine: for every manifest
 * entry, one schema-2.0 invocation of one task, `concurrency` at once; a TemporaryFailure (or
 * an invocation that errors) is tried again, up to `maxAttempts`, after a short back-off; then a
 * completion report in Batch Operations' CSV format.
 *
 * It stands in for the AWS service so that backfills can be run and tested without AWS (on
 * moto, against the built artifact): it is not part of the deployment, and it is not the
 * service. Batch Operations also ramps its concurrency, honours the job's failure threshold,
 * tracks progress and writes its reports itself; this runner does none of that beyond what the
 * tests and the benchmark need (tools/batch-operations/README.md).
 */
import { randomUUID } from 'node:crypto';
import type { BatchResponse, ResultCode } from '../../lib/batch/event.js';
import type { ManifestEntry } from './manifest.js';

export type Invoke = (event: unknown) => Promise<unknown>;

export interface RunnerOptions {
  invoke: Invoke;
  /** Invocations at once, at most. */
  concurrency: number;
  /** `job.userArguments`. */
  userArguments?: Record<string, string>;
  /** Invocations per task at most, the first included. */
  maxAttempts?: number;
  /** Back-off before attempt n+1: n x this. */
  retryDelayMs?: number;
  jobId?: string;
  /** Called after each task's last attempt. */
  onTask?: (report: TaskReport) => void;
}

export interface TaskReport {
  entry: ManifestEntry;
  taskStatus: 'succeeded' | 'failed';
  resultCode: ResultCode | 'InvocationFailed';
  resultString: string;
  attempts: number;
}

export interface JobRun {
  jobId: string;
  reports: TaskReport[];
  /** Invocations made, retries included. */
  invocations: number;
  durationMs: number;
}

export const DEFAULT_MAX_ATTEMPTS = 4;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One task's event, as Batch Operations sends it (schema 2.0). */
export function taskEvent(entry: ManifestEntry, jobId: string, userArguments: Record<string, string>): { event: unknown; taskId: string } {
  const taskId = Buffer.from(randomUUID()).toString('base64url');
  return {
    taskId,
    event: {
      invocationSchemaVersion: '2.0',
      invocationId: Buffer.from(randomUUID()).toString('base64url'),
      job: { id: jobId, userArguments },
      tasks: [{ taskId, s3Key: entry.encodedKey, s3VersionId: entry.versionId ?? null, s3Bucket: entry.bucket }],
    },
  };
}

/** The function's answer for one task; an answer that is not one is an invocation failure. */
function resultOf(response: unknown, taskId: string): { resultCode: ResultCode; resultString: string } | string {
  const r = response as BatchResponse | undefined;
  if (!r || !Array.isArray(r.results)) return `the function answered ${JSON.stringify(response)?.slice(0, 200)}, not a Batch Operations response`;
  const result = r.results.find((x) => x.taskId === taskId);
  if (!result) return r.treatMissingKeysAs ? `no result for the task: treated as ${r.treatMissingKeysAs}` : 'no result for the task';
  return { resultCode: result.resultCode, resultString: result.resultString ?? '' };
}

export async function runBatchJob(entries: readonly ManifestEntry[], options: RunnerOptions): Promise<JobRun> {
  const started = performance.now();
  const jobId = options.jobId ?? randomUUID();
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const userArguments = options.userArguments ?? {};
  const reports: TaskReport[] = new Array(entries.length);
  let next = 0;
  let invocations = 0;

  async function runOne(entry: ManifestEntry): Promise<TaskReport> {
    let last: TaskReport = { entry, taskStatus: 'failed', resultCode: 'InvocationFailed', resultString: 'never invoked', attempts: 0 };
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (attempt > 1) await sleep((options.retryDelayMs ?? 200) * (attempt - 1));
      const { event, taskId } = taskEvent(entry, jobId, userArguments);
      invocations++;
      let result: ReturnType<typeof resultOf>;
      try {
        result = resultOf(await options.invoke(event), taskId);
      } catch (err) {
        result = `Lambda returned function error: ${err instanceof Error ? err.message : String(err)}`;
      }
      if (typeof result === 'string') {
        last = { entry, taskStatus: 'failed', resultCode: 'InvocationFailed', resultString: result, attempts: attempt };
        continue;
      }
      last = { entry, taskStatus: result.resultCode === 'Succeeded' ? 'succeeded' : 'failed', ...result, attempts: attempt };
      if (result.resultCode !== 'TemporaryFailure') break;
    }
    return last;
  }

  async function worker(): Promise<void> {
    while (next < entries.length) {
      const index = next++;
      const report = await runOne(entries[index]!);
      reports[index] = report;
      options.onTask?.(report);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, entries.length)) }, worker));
  return { jobId, reports, invocations, durationMs: performance.now() - started };
}

const csvField = (value: string): string => (/[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

/**
 * The completion report's CSV (format Report_CSV_20180820, no header), one row a task. The
 * report's ReportSchema names the columns "Bucket, Key, VersionId, TaskStatus, ErrorCode,
 * HTTPStatusCode, ResultMessage"; AWS's own example rows for LambdaInvoke put the HTTP status
 * (200: the invocation itself worked) fifth and the result code sixth, empty on success
 * (`bucket,key,,succeeded,200,,Successful`, `bucket,key,,failed,200,PermanentFailure,…`).
 * This writes rows the way those examples do.
 */
export function completionReportCsv(reports: readonly TaskReport[]): string {
  return reports
    .map((r) => {
      const httpStatus = r.resultCode === 'InvocationFailed' ? '' : '200';
      const errorCode = r.taskStatus === 'succeeded' ? '' : r.resultCode;
      return [r.entry.bucket, r.entry.encodedKey, r.entry.versionId ?? '', r.taskStatus, httpStatus, errorCode, r.resultString].map(csvField).join(',') + '\n';
    })
    .join('');
}

/** The report's top-level manifest.json, pointing at the one results file. */
export function completionReportManifest(reportBucket: string, resultsKey: string, md5: string): string {
  return `${JSON.stringify(
    {
      Format: 'Report_CSV_20180820',
      ReportCreationDate: new Date().toISOString(),
      Results: [{ TaskExecutionStatus: 'succeeded', Bucket: reportBucket, MD5Checksum: md5, Key: resultsKey }],
      ReportSchema: 'Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage',
    },
    null,
    2,
  )}\n`;
}

/** Counts by `resultCode resultString-head` (before the first ":"), for summaries. */
export function tally(reports: readonly TaskReport[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of reports) {
    const head = r.resultString.split(':')[0]!;
    const label = r.resultCode === 'Succeeded' ? head : `${r.resultCode} ${head}`;
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
}
