/**
 * Power tuning: `npm run bench -- --memory 1024,1769,2048,3008,3538 [--quick] [--runs N] [files…]`.
 * For each memory size, ours (bench/shape-child.ts, bundled like the deployed function) and
 * `mutool draw` run on the same files, one after the other, each in a Lambda-shaped cgroup of
 * that size (tools/lambda-shape.ts: CPU size/1769 vCPU, memory limit size MB), in the same run.
 * Per size: pages/s, ours/mutool ratio, p95 page time, the cgroup's peak memory, OOM kills, and
 * what 1,000 pages cost on Lambda arm64 at that size. For PNG, in the same shape and run: our
 * JPEG pages/s (and its ratio to our PNG), and the floors under both renderers, drawing alone:
 * ours (shape-child --draw-only: the render worker's drawing, nothing encoded) and mutool's
 * (`-F pam` to /dev/null: drawn, written raw).
 *
 * - Ours: per file a fresh process (a container): a cold job, then --runs warm jobs; speed is
 *   the median warm job (as the main bench), p95 over the warm jobs' page drawing times.
 * - mutool: per file a warm-up run, then the median of --runs; p95 over its `-s t` page times.
 * - Cost per 1,000 pages = 1,000 × (size GB × seconds per page × price per GB-s) + requests
 *   (one per document: 1,000 / pages per document × price per request). Only duration and
 *   requests: the ephemeral storage above 512 MB is billed too, but is orders of magnitude
 *   smaller, and data transfer within a region is free.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { DEFAULT_OUTPUT_OPTIONS } from '../lib/engine/options.js';
import { layersNodePath } from '../tools/build.js';
import { MB_PER_VCPU, spawnShaped, type ShapeReport } from '../tools/lambda-shape.js';
import { esbuildPlan, loadTemplate, templateFunction } from '../tools/template.js';
import type { ShapeChildResult } from './shape-child.js';

const run = promisify(execFile);

/**
 * AWS Lambda prices, arm64, US East (N. Virginia), first pricing tier (7.5 billion GB-s a month):
 * from https://aws.amazon.com/lambda/pricing/ as quoted on 2026-11-25 (the figures unchanged
 * since arm64 launched in September 2021).
 */
export const PRICES = {
  asOf: '2026-11-25',
  region: 'us-east-1',
  perGbSecond: 0.0000133334,
  perRequest: 0.2 / 1e6,
} as const;

export interface ShapeRow {
  memoryMb: number;
  vcpus: number;
  files: number;
  pages: number;
  ours: Measure;
  mutool?: Measure;
  /** ours pages/s over mutool pages/s, on the files both rendered in full. */
  ratio?: number;
  /** PNG runs only: our JPEG pages, and its pages/s over our PNG pages/s. */
  oursJpeg?: Measure;
  jpegRatio?: number;
  /** PNG runs only: our WebP pages, and its pages/s over our PNG pages/s. */
  oursWebp?: Measure;
  webpRatio?: number;
  /** PNG runs only: our AVIF pages, and its pages/s over our PNG pages/s. */
  oursAvif?: Measure;
  avifRatio?: number;
  /** PNG runs only: the drawing alone, ours and mutool's. */
  oursDraw?: Measure;
  mutoolDraw?: Measure;
}

interface Measure {
  ms: number;
  /** CPU time per page (cpuacct), which the neighbours on a shared machine do not inflate. */
  cpuMsPerPage: number;
  /** Share of the wall time the CPU quota held the process back: near 0, the quota was not what limited it. */
  throttledShare: number;
  pagesPerSec: number;
  p95PageMs: number;
  peakBytes: number;
  oomKills: number;
  costPer1000Pages: number;
  failures: string[];
  /** Bytes of the pages written by the last job, over all files. */
  outputBytes: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? 0 : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

export function costPer1000Pages(memoryMb: number, msPerPage: number, pagesPerDocument: number): number {
  const gbSeconds = (memoryMb / 1024) * (msPerPage / 1000);
  return 1000 * gbSeconds * PRICES.perGbSecond + (1000 / pagesPerDocument) * PRICES.perRequest;
}

/** Runs a command in the shape; resolves with its stdout and the cgroup's report. */
function shaped(memoryMb: number, command: string, args: string[]): Promise<{ stdout: string; stderr: string; report: ShapeReport & { code: number | null; signal: NodeJS.Signals | null } }> {
  const child = spawnShaped(memoryMb, command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
  return child.exited.then((report) => ({ stdout, stderr, report }));
}

/** Bundles bench/shape-child.ts the way the render function is built; returns its path. */
export async function buildShapeChild(repo: string): Promise<string> {
  const outdir = mkdtempSync(join(tmpdir(), 'power-tuning-'));
  const { options, entryPoints } = esbuildPlan(templateFunction(loadTemplate(), 'RenderPdfFunction'));
  // The child in the handler's place, beside the function's thread entries (render and JPEG
  // workers) and the drawing-only worker of --draw-only.
  const children = [join(repo, 'bench/shape-child.ts'), join(repo, 'bench/draw-worker.ts')];
  await build({ ...options, entryPoints: [...children, ...entryPoints.slice(1)], entryNames: '[name]', outdir, logLevel: 'error' });
  // sharp from the function's layer, as Lambda finds it (NODE_PATH), for the children spawned.
  process.env['NODE_PATH'] = await layersNodePath('RenderPdfFunction');
  return join(outdir, 'shape-child.mjs');
}

interface FileResult {
  pages: number;
  ms: number;
  /** CPU time per page rendered, over every job the process ran (ours: the cold one included). */
  cpuMs: number;
  cpuPages: number;
  wallMs: number;
  throttledMs: number;
  pageMs: number[];
  peakBytes: number;
  oomKills: number;
  /** Bytes of the page images the last job wrote (manifest aside). */
  outputBytes: number;
  failure?: string;
}

async function oursOnFile(child: string, file: string, memoryMb: number, dpi: number, format: string, runs: number, drawOnly = false): Promise<FileResult> {
  const out = mkdtempSync(join(tmpdir(), 'power-tuning-out-'));
  try {
    const started = performance.now();
    const args = [child, file, '--out', out, '--memory-mb', String(memoryMb), '--dpi', String(dpi), '--format', format, '--runs', String(runs), ...(drawOnly ? ['--draw-only'] : [])];
    const { stdout, stderr, report } = await shaped(memoryMb, process.execPath, args);
    const wallMs = performance.now() - started;
    const last = stdout.trim().split('\n').pop() ?? '';
    const result = report.code === 0 && last.startsWith('{') ? (JSON.parse(last) as ShapeChildResult) : undefined;
    const failure = report.oomKills > 0 ? 'OOM killed' : !result ? `exit ${report.code ?? report.signal}: ${stderr.trim().split('\n').pop() ?? ''}` : result.error ?? (result.failedPages ? `${result.failedPages} pages failed` : undefined);
    const warm = result && result.jobMs.length > 1 ? result.jobMs.slice(1) : (result?.jobMs ?? []);
    const pages = result?.pages ?? 0;
    const outputBytes = readdirSync(out)
      .filter((name) => name.startsWith('page-'))
      .reduce((sum, name) => sum + statSync(join(out, name)).size, 0);
    return {
      pages,
      outputBytes,
      ms: median(warm),
      cpuMs: report.cpuMs ?? 0,
      cpuPages: pages * (result?.jobMs.length ?? 0),
      wallMs,
      throttledMs: report.throttledMs ?? 0,
      pageMs: result?.pageMs ?? [],
      peakBytes: report.peakBytes ?? 0,
      oomKills: report.oomKills,
      ...(failure ? { failure } : {}),
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** mutool draw on one file: PNG pages written, or (`drawOnly`) PAM to /dev/null: every page drawn, written raw, kept nowhere. */
async function mutoolOnFile(mutool: string, file: string, memoryMb: number, dpi: number, runs: number, drawOnly = false): Promise<FileResult> {
  const once = async () => {
    const out = mkdtempSync(join(tmpdir(), 'power-tuning-mutool-'));
    try {
      const started = performance.now();
      const target = drawOnly ? ['-F', 'pam', '-o', '/dev/null'] : ['-F', 'png', '-o', join(out, 'p%d.png')];
      const { stderr, report } = await shaped(memoryMb, mutool, ['draw', '-q', '-s', 't', '-r', String(dpi), ...target, file]);
      const ms = performance.now() - started;
      // "page <file> <n> <ms>ms" per page with -s t.
      const pageMs = [...stderr.matchAll(/^page .* \d+ (\d+)ms$/gm)].map((m) => Number(m[1]));
      const pages = drawOnly ? pageMs.length : readdirSync(out).filter((name) => statSync(join(out, name)).size > 0).length;
      return { ms, pageMs, pages, report };
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  };
  await once();
  const results = [];
  for (let i = 0; i < runs; i++) results.push(await once());
  const last = results.at(-1)!;
  const oomKills = results.reduce((sum, r) => sum + r.report.oomKills, 0);
  return {
    pages: last.pages,
    // Not kept: mutool's PNG bytes are not ours to compare here.
    outputBytes: 0,
    ms: median(results.map((r) => r.ms)),
    cpuMs: results.reduce((sum, r) => sum + (r.report.cpuMs ?? 0), 0),
    cpuPages: results.reduce((sum, r) => sum + r.pages, 0),
    wallMs: results.reduce((sum, r) => sum + r.ms, 0),
    throttledMs: results.reduce((sum, r) => sum + (r.report.throttledMs ?? 0), 0),
    pageMs: results.flatMap((r) => r.pageMs),
    peakBytes: Math.max(...results.map((r) => r.report.peakBytes ?? 0)),
    oomKills,
    ...(oomKills > 0 ? { failure: 'OOM killed' } : last.report.code !== 0 ? { failure: `mutool exit ${last.report.code ?? last.report.signal}` } : {}),
  };
}

function measure(memoryMb: number, results: FileResult[], names: string[], files: number): Measure {
  const pages = results.reduce((sum, r) => sum + r.pages, 0);
  const ms = results.reduce((sum, r) => sum + r.ms, 0);
  const sum = (f: (r: FileResult) => number) => results.reduce((total, r) => total + f(r), 0);
  return {
    ms,
    cpuMsPerPage: sum((r) => r.cpuMs) / Math.max(1, sum((r) => r.cpuPages)),
    throttledShare: sum((r) => r.throttledMs) / Math.max(1, sum((r) => r.wallMs)),
    pagesPerSec: pages / (ms / 1000),
    p95PageMs: percentile(results.flatMap((r) => r.pageMs), 95),
    peakBytes: Math.max(...results.map((r) => r.peakBytes)),
    oomKills: results.reduce((sum, r) => sum + r.oomKills, 0),
    costPer1000Pages: costPer1000Pages(memoryMb, ms / pages, pages / files),
    failures: results.flatMap((r, i) => (r.failure ? [`${names[i]}: ${r.failure}`] : [])),
    outputBytes: sum((r) => r.outputBytes),
  };
}

export interface PowerTuningOptions {
  files: string[];
  memorySizes: number[];
  dpi: number;
  format: string;
  runs: number;
  mutool?: string;
  /** In a PNG run, what else each shape measures on the same files (default: all of them). */
  extras?: readonly Extra[];
  repo: string;
  log: (line: string) => void;
}

/** The qualities the shapes render at: the defaults. */
const DEFAULT_QUALITY = { jpeg: DEFAULT_OUTPUT_OPTIONS.jpegQuality, webp: DEFAULT_OUTPUT_OPTIONS.webpQuality, avif: DEFAULT_OUTPUT_OPTIONS.avifQuality };

/** The other formats and the drawing floor a PNG run can measure beside PNG. */
export const EXTRAS = ['jpeg', 'webp', 'avif', 'draw'] as const;
export type Extra = (typeof EXTRAS)[number];

export async function powerTuning(opts: PowerTuningOptions): Promise<ShapeRow[]> {
  const child = await buildShapeChild(opts.repo);
  const rows: ShapeRow[] = [];
  const names = opts.files.map((f) => basename(f));
  const extras = opts.format === 'png';
  const wanted = new Set<Extra>(extras ? (opts.extras ?? EXTRAS) : []);
  for (const memoryMb of opts.memorySizes) {
    const ours: FileResult[] = [];
    const mutool: FileResult[] = [];
    const oursJpeg: FileResult[] = [];
    const oursWebp: FileResult[] = [];
    const oursAvif: FileResult[] = [];
    const oursDraw: FileResult[] = [];
    const mutoolDraw: FileResult[] = [];
    for (const [i, file] of opts.files.entries()) {
      ours.push(await oursOnFile(child, file, memoryMb, opts.dpi, opts.format, opts.runs));
      if (opts.mutool) mutool.push(await mutoolOnFile(opts.mutool, file, memoryMb, opts.dpi, opts.runs));
      if (wanted.has('jpeg')) oursJpeg.push(await oursOnFile(child, file, memoryMb, opts.dpi, 'jpeg', opts.runs));
      if (wanted.has('webp')) oursWebp.push(await oursOnFile(child, file, memoryMb, opts.dpi, 'webp', opts.runs));
      if (wanted.has('avif')) oursAvif.push(await oursOnFile(child, file, memoryMb, opts.dpi, 'avif', opts.runs));
      if (wanted.has('draw')) {
        oursDraw.push(await oursOnFile(child, file, memoryMb, opts.dpi, 'png', opts.runs, true));
        if (opts.mutool) mutoolDraw.push(await mutoolOnFile(opts.mutool, file, memoryMb, opts.dpi, opts.runs, true));
      }
      const ms = (r: FileResult[]): string => `${r.at(-1)!.pages} pages in ${Math.round(r.at(-1)!.ms)} ms`;
      const extra = (label: string, r: FileResult[]): string => (r.length ? `, ${label} ${ms(r)}` : '');
      opts.log(
        `  ${memoryMb} MB ${names[i]}: ours ${ms(ours)}${opts.mutool ? `, mutool ${ms(mutool)}` : ''}${extra('ours JPEG', oursJpeg)}${extra('WebP', oursWebp)}${extra('AVIF', oursAvif)}${extra('drawing only: ours', oursDraw)}${extra('mutool', mutoolDraw)}`,
      );
    }
    const row: ShapeRow = {
      memoryMb,
      vcpus: memoryMb / MB_PER_VCPU,
      files: opts.files.length,
      pages: ours.reduce((sum, r) => sum + r.pages, 0),
      ours: measure(memoryMb, ours, names, opts.files.length),
    };
    if (opts.mutool) {
      row.mutool = measure(memoryMb, mutool, names, opts.files.length);
      // The ratio on the files both rendered in full.
      const both = ours.map((r, i) => [r, mutool[i]!] as const).filter(([o, m]) => !o.failure && o.pages > 0 && o.pages === m.pages);
      const oursMs = both.reduce((sum, [o]) => sum + o.ms, 0);
      const mutoolMs = both.reduce((sum, [, m]) => sum + m.ms, 0);
      if (both.length > 0) row.ratio = mutoolMs / oursMs;
    }
    if (wanted.has('jpeg')) {
      row.oursJpeg = measure(memoryMb, oursJpeg, names, opts.files.length);
      row.jpegRatio = row.oursJpeg.pagesPerSec / row.ours.pagesPerSec;
    }
    if (wanted.has('webp')) {
      row.oursWebp = measure(memoryMb, oursWebp, names, opts.files.length);
      row.webpRatio = row.oursWebp.pagesPerSec / row.ours.pagesPerSec;
    }
    if (wanted.has('avif')) {
      row.oursAvif = measure(memoryMb, oursAvif, names, opts.files.length);
      row.avifRatio = row.oursAvif.pagesPerSec / row.ours.pagesPerSec;
    }
    if (wanted.has('draw')) {
      row.oursDraw = measure(memoryMb, oursDraw, names, opts.files.length);
      if (opts.mutool) row.mutoolDraw = measure(memoryMb, mutoolDraw, names, opts.files.length);
    }
    rows.push(row);
  }
  rmSync(join(child, '..'), { recursive: true, force: true });
  return rows;
}

/** PNG runs: each format in each shape, side by side: pages/s, against PNG, CPU per page, bytes, peak memory. */
function formatsTable(rows: ShapeRow[]): string[] {
  if (!rows.some((r) => r.oursJpeg || r.oursWebp || r.oursAvif || r.oursDraw)) return [];
  const out = ['', '| MemorySize | format | pages/s | vs PNG | CPU ms/page | MB | peak MiB |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const formats: [string, Measure | undefined][] = [
      ['PNG (ours)', r.ours],
      [`JPEG ${DEFAULT_QUALITY.jpeg} (sharp)`, r.oursJpeg],
      [`WebP ${DEFAULT_QUALITY.webp} (sharp)`, r.oursWebp],
      [`AVIF ${DEFAULT_QUALITY.avif} (sharp)`, r.oursAvif],
      ['drawing only', r.oursDraw],
    ];
    for (const [name, m] of formats) {
      if (!m) continue;
      const bytes = name === 'drawing only' ? '-' : (m.outputBytes / 1e6).toFixed(1);
      out.push(`| ${r.memoryMb} MB | ${name} | ${m.pagesPerSec.toFixed(2)} | ${(m.pagesPerSec / r.ours.pagesPerSec).toFixed(2)} | ${m.cpuMsPerPage.toFixed(0)} | ${bytes} | ${Math.round(m.peakBytes / 2 ** 20)} |`);
    }
  }
  return out;
}

export function powerTuningTable(rows: ShapeRow[], opts: Pick<PowerTuningOptions, 'dpi' | 'format' | 'runs' | 'files'>, cpus: number): string {
  const MiB = (n: number) => `${Math.round(n / 2 ** 20)}`;
  const header = ['MemorySize', 'vCPU', 'ours p/s', 'mutool p/s', 'ratio', 'ours JPEG p/s', 'JPEG/PNG', 'ours WebP p/s', 'WebP/PNG', 'MB PNG/JPEG/WebP', 'ours draw p/s', 'mutool PAM p/s', 'ours p95 ms', 'mutool p95 ms', 'ours peak MiB', 'mutool peak MiB', 'OOM', 'ours $/1000 p', 'mutool $/1000 p', 'ours CPU ms/p', 'mutool CPU ms/p', 'throttled'];
  const body = rows.map((r) => [
    `${r.memoryMb} MB`,
    `${r.vcpus.toFixed(2)}${r.vcpus > cpus ? ` (>${cpus} here)` : ''}`,
    r.ours.pagesPerSec.toFixed(2),
    r.mutool ? r.mutool.pagesPerSec.toFixed(2) : '-',
    r.ratio !== undefined ? r.ratio.toFixed(2) : '-',
    r.oursJpeg ? r.oursJpeg.pagesPerSec.toFixed(2) : '-',
    r.jpegRatio !== undefined ? r.jpegRatio.toFixed(2) : '-',
    r.oursWebp ? r.oursWebp.pagesPerSec.toFixed(2) : '-',
    r.webpRatio !== undefined ? r.webpRatio.toFixed(2) : '-',
    [r.ours, r.oursJpeg, r.oursWebp].map((m) => (m ? (m.outputBytes / 1e6).toFixed(1) : '-')).join('/'),
    r.oursDraw ? r.oursDraw.pagesPerSec.toFixed(2) : '-',
    r.mutoolDraw ? r.mutoolDraw.pagesPerSec.toFixed(2) : '-',
    r.ours.p95PageMs.toFixed(0),
    r.mutool ? r.mutool.p95PageMs.toFixed(0) : '-',
    MiB(r.ours.peakBytes),
    r.mutool ? MiB(r.mutool.peakBytes) : '-',
    `${r.ours.oomKills}${r.mutool ? `/${r.mutool.oomKills}` : ''}`,
    `$${r.ours.costPer1000Pages.toFixed(5)}`,
    r.mutool ? `$${r.mutool.costPer1000Pages.toFixed(5)}` : '-',
    r.ours.cpuMsPerPage.toFixed(0),
    r.mutool ? r.mutool.cpuMsPerPage.toFixed(0) : '-',
    `${Math.round(r.ours.throttledShare * 100)}%${r.mutool ? `/${Math.round(r.mutool.throttledShare * 100)}%` : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const failures = rows.flatMap((r) =>
    (
      [
        ['ours', r.ours],
        ['mutool', r.mutool],
        ['ours JPEG', r.oursJpeg],
        ['ours WebP', r.oursWebp],
        ['ours AVIF', r.oursAvif],
        ['ours draw', r.oursDraw],
        ['mutool PAM', r.mutoolDraw],
      ] as const
    ).flatMap(([who, m]) => (m?.failures ?? []).map((f) => `${r.memoryMb} MB ${who} ${f}`)),
  );
  return [
    `power tuning: ${opts.files.length} files, ${rows[0]?.pages ?? 0} pages, ${opts.format} at ${opts.dpi} dpi; ours: median of ${opts.runs} warm job(s) after a cold one, mutool: median of ${opts.runs} after a warm-up; each in a cgroup of MemorySize MB and MemorySize/${MB_PER_VCPU} vCPU`,
    `cost: Lambda arm64 ${PRICES.region}, $${PRICES.perGbSecond} per GB-s + $${(PRICES.perRequest * 1e6).toFixed(2)} per 1M requests (one per document), prices as of ${PRICES.asOf}; ratio = ours p/s / mutool p/s; p95 = 95th percentile page drawing time`,
    `CPU ms/p = CPU time per page (cpuacct; ours: over its cold and warm jobs); throttled = share of the wall time the quota held the process back (ours/mutool): near 0%, the machine's other load, not the shape, set the pace`,
    `PNG runs also measure, in the same shapes: ours JPEG (quality ${DEFAULT_QUALITY.jpeg}; JPEG/PNG = its p/s over ours PNG p/s), ours WebP (quality ${DEFAULT_QUALITY.webp}; WebP/PNG likewise), ours AVIF (quality ${DEFAULT_QUALITY.avif}), the bytes of each format's pages, and drawing alone, the floor: ours draw (the render worker's drawing, nothing encoded or written) and mutool PAM (mutool draw -F pam -o /dev/null)`,
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...body.map(line),
    ...formatsTable(rows),
    ...(failures.length ? ['', `failures: ${failures.join('; ')}`] : []),
  ].join('\n');
}
