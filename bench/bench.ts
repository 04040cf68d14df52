/**
 * npm run bench [-- files…] [--quick] [--json] [--dpi N] [--runs N] [--format png|jpeg|webp|avif] [--no-mt] [--generated]
 *   [--memory MB,MB… [--extras jpeg,webp,avif,draw|none]]
 *
 * Our renderer against native MuPDF (`mutool draw`) on the same files and settings, in the same
 * run (DESIGN.md §6). Default inputs: every 'renders' and 'broken-but-repairable' file of
 * test/corpus (--quick: a handful).
 * - Ours: one child process per file (bench/render-child.ts, the bundled artifact), run like a
 *   Lambda container: a cold job (fresh process, WebAssembly compiled on first use), then --runs
 *   warm jobs (default 3), each in a fresh worker with a fresh MuPDF, as deployed. Speed is the
 *   median warm job; the cold start (process start to the first page written) and the warm
 *   per-job overhead (start of the job to the document open in its fresh worker) are reported
 *   apart. Peak RSS is the child's VmHWM over all its jobs.
 * - mutool: one process per run (that is how it runs), a warm-up run, then the median of --runs;
 *   peak RSS from /usr/bin/time.
 * --generated adds the hostile inputs of test/fixtures/generated-pdfs.ts (a 14400 pt page, a 30000 px
 *   image, a decompression bomb, 2 million path segments, deep forms, a 300 MB file) at full
 *   size, one cold job each, in a table of their own; the corpus totals do not include them.
 * --memory 1024,1769,2048,3008,3538: power tuning instead (bench/power-tuning.ts): ours and mutool
 *   on the same files under each Lambda shape (a cgroup of that many MB and MB/1769 vCPU), with
 *   pages/s, the ratio, p95 page time, peak memory and the cost of 1,000 pages on Lambda arm64.
 *   A PNG run also renders the same files as JPEG, WebP and AVIF and draws them alone (the floor);
 *   --extras jpeg,webp,avif,draw (or none) picks which: AVIF costs 10x PNG's CPU a page.
 * MUTOOL=path chooses the mutool binary (MUTOOL= with no value: ours only).
 * Pages ours rendered below the requested dpi (pixel budget) are given to mutool at that dpi too.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { build } from 'esbuild';
import { GENERATED_PDFS } from '../test/fixtures/generated-pdfs.js';
import { layersNodePath } from '../tools/build.js';
import { CORPUS_DIR, corpusFile } from '../tools/corpus.js';
import { stopOnSignals, tempFolderSync } from '../tools/cleanup.js';
import { esbuildPlan, loadTemplate, templateFunction } from '../tools/template.js';
import { EXTRAS, powerTuning, powerTuningTable, PRICES, type Extra } from './power-tuning.js';
import { availableParallelism } from 'node:os';
import type { ChildResult } from './render-child.js';

stopOnSignals();
const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../', import.meta.url));
const CORPUS = CORPUS_DIR;
// MUTOOL=/path/to/mutool picks one; MUTOOL= (empty) runs without the comparison.
const MUTOOL = process.env['MUTOOL'] !== undefined ? process.env['MUTOOL'] || undefined : ['/usr/bin/mutool', '/usr/local/bin/mutool'].find(existsSync);
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const QUICK = ['tracemonkey-paper-14p.pdf', 'federal-register-15p.pdf', 'jbig2-scan-4p.pdf', 'go-poster-3294pt.pdf', 'broken-header-8p.pdf', 'cmyk-jpeg.pdf'];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    dpi: { type: 'string', default: '150' },
    runs: { type: 'string', default: '3' },
    format: { type: 'string', default: 'png' },
    'no-mt': { type: 'boolean', default: false },
    generated: { type: 'boolean', default: false },
    memory: { type: 'string' },
    extras: { type: 'string' },
  },
});
const dpi = Number(values.dpi);
const runs = Number(values.runs);
const format = values.format === 'jpeg' || values.format === 'jpg' ? 'jpeg' : values.format === 'webp' || values.format === 'avif' ? values.format : 'png';
if (!Number.isInteger(dpi) || dpi < 1 || dpi > 1200) throw new Error(`--dpi ${values.dpi}: expected 1..1200`);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs ${values.runs}: expected 1 or more`);

function corpusFiles(): string[] {
  const lines = readFileSync(join(CORPUS, 'MANIFEST.tsv'), 'utf8').trim().split('\n').slice(1);
  return lines
    .map((line) => line.split('\t'))
    .filter((cells) => cells[6] === 'renders' || cells[6] === 'broken-but-repairable')
    .map((cells) => cells[0]!);
}

/** A path as given (relative to where npm was run), or a corpus file name. */
function inputPath(name: string): string {
  const given = resolve(process.env['INIT_CWD'] ?? process.cwd(), name);
  if (existsSync(given)) return given;
  const inCorpus = join(CORPUS, name);
  if (existsSync(inCorpus)) return inCorpus;
  throw new Error(`no such file: ${name}`);
}

const files = positionals.length > 0 ? positionals.map(inputPath) : (values.quick ? QUICK : corpusFiles()).map(corpusFile);

if (values.memory !== undefined) {
  const sizes = values.memory.split(',').map((s) => Number(s.trim()));
  const bad = sizes.find((n) => !Number.isInteger(n) || n < 128 || n > 10240);
  if (bad !== undefined) throw new Error(`--memory ${values.memory}: expected MB sizes 128..10240, comma-separated`);
  const log = (line: string): void => void (values.json ? undefined : process.stderr.write(`${line}\n`));
  const cpus = availableParallelism();
  const over = sizes.filter((n) => n / 1769 > cpus);
  if (over.length) log(`note: ${over.join(', ')} MB would have more than the ${cpus} CPUs of this machine: measured with ${cpus}`);
  const mutool = format === 'png' ? MUTOOL : undefined;
  log(`power tuning: ${files.length} files at ${sizes.join(', ')} MB${mutool ? ', with mutool' : ''}`);
  const extras = values.extras === undefined ? EXTRAS : values.extras === 'none' ? [] : values.extras.split(',').map((e) => e.trim());
  const unknown = extras.find((e) => !(EXTRAS as readonly string[]).includes(e));
  if (unknown !== undefined) throw new Error(`--extras ${values.extras}: expected none or some of ${EXTRAS.join(',')}`);
  const rows = await powerTuning({ files, memorySizes: sizes, dpi, format, runs, extras: extras as Extra[], ...(mutool ? { mutool } : {}), repo: REPO, log });
  const text = values.json ? JSON.stringify({ dpi, format, runs, prices: PRICES, rows }, null, 2) : powerTuningTable(rows, { dpi, format, runs, files }, cpus);
  await new Promise((done) => process.stdout.write(`${text}\n`, done));
  process.exit(0);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Pages written (an empty file is a page a crashed tool did not write) and their bytes. */
function outputBytes(dir: string): { files: number; bytes: number } {
  let bytes = 0;
  let files = 0;
  for (const name of readdirSync(dir)) {
    const size = statSync(join(dir, name)).size;
    bytes += size;
    if (size > 0) files++;
  }
  return { files, bytes };
}

/** A scratch folder, removed with the process at the latest (tools/cleanup.ts). */
function scratch(): string {
  return tempFolderSync('render-bench-');
}

/** The benchmark child, bundled as the render function is deployed, so what runs is the artifact's code. */
async function buildChild(): Promise<string> {
  const outdir = scratch();
  const { options, entryPoints } = esbuildPlan(templateFunction(loadTemplate(), 'RenderPdfFunction'));
  await build({
    ...options,
    // The child in the handler's place, beside the function's thread entries (render and JPEG workers).
    entryPoints: [join(REPO, 'bench/render-child.ts'), ...entryPoints.slice(1)],
    entryNames: '[name]',
    outdir,
    logLevel: 'error',
  });
  // sharp from the function's layer, as Lambda finds it (NODE_PATH), for the children spawned.
  process.env['NODE_PATH'] = await layersNodePath('RenderPdfFunction');
  return join(outdir, 'render-child.mjs');
}
const CHILD = await buildChild();

async function ours(file: string, plan: BenchPlan): Promise<ChildResult> {
  const out = scratch();
  const args = [CHILD, file, '--out', out, '--dpi', String(dpi), '--format', format, '--runs', String(plan.oursWarmRuns)];
  if (plan.maxPagePixels) args.push('--max-page-pixels', String(plan.maxPagePixels));
  try {
    const { stdout } = await run(process.execPath, args, {
      cwd: REPO,
      maxBuffer: 16 << 20,
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

interface MutoolRun {
  ms: number;
  pages: number;
  bytes: number;
  peakRssBytes: number;
  /** How mutool ended when it did not exit 0: 'exit 1' (a page failed), 'SIGSEGV' (/usr/bin/time's 'terminated by signal'). */
  failure?: string;
}

/** One mutool draw per dpi group (usually one: the whole file at --dpi). */
async function mutoolOnce(file: string, groups: { dpi: number; pages?: string }[], threads: boolean): Promise<MutoolRun> {
  const out = scratch();
  const result: MutoolRun = { ms: 0, pages: 0, bytes: 0, peakRssBytes: 0 };
  try {
    for (const group of groups) {
      const timeFile = join(out, '.time');
      const args = ['draw', '-q', '-r', String(group.dpi), ...(threads ? ['-T', '2', '-B', '256'] : []), '-F', 'png'];
      args.push('-o', join(out, 'p%d.png'), file, ...(group.pages ? [group.pages] : []));
      const started = performance.now();
      await (TIME ? run(TIME, ['-f', '%M', '-o', timeFile, MUTOOL!, ...args], { maxBuffer: 16 << 20 }) : run(MUTOOL!, args, { maxBuffer: 16 << 20 })).catch(
        (err: { code?: number; stderr?: string }) => {
          // mutool exits 1 after printing errors for a page but still writes the rest.
          if (typeof err.code !== 'number') throw err;
          result.failure = `exit ${err.code}`;
        },
      );
      result.ms += performance.now() - started;
      if (TIME && existsSync(timeFile)) {
        const timeOutput = readFileSync(timeFile, 'utf8');
        result.peakRssBytes = Math.max(result.peakRssBytes, Number(timeOutput.trim().split('\n').pop()) * 1024);
        const signal = /terminated by signal (\d+)/.exec(timeOutput);
        if (signal) result.failure = signal[1] === '11' ? 'SIGSEGV' : `signal ${signal[1]}`;
        rmSync(timeFile);
      }
    }
    const { files: pages, bytes } = outputBytes(out);
    result.pages = pages;
    result.bytes = bytes;
    return result;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** "1,3-5,9" from sorted page numbers. */
function pageList(numbers: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < numbers.length; ) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j]! + 1) j++;
    parts.push(i === j ? `${numbers[i]}` : `${numbers[i]}-${numbers[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

interface Row {
  file: string;
  pages: number;
  ours: {
    /** Median warm job. */
    ms: number;
    pagesPerSec: number;
    /** The first job of a fresh process: from process start to its first page written, and the whole job. */
    coldStartMs: number;
    coldMs: number;
    /** Median warm job's start to its document open in a fresh worker. */
    warmOverheadMs: number;
    bytes: number;
    peakRssBytes: number;
    wasmHeapPeakBytes: number;
    failedPages: number;
    error?: string;
  };
  mutool?: { ms: number; pagesPerSec: number; bytes: number; peakRssBytes: number; pages: number; failure?: string };
  mutoolT2?: { ms: number; pagesPerSec: number };
  speedRatio?: number;
  bytesRatio?: number;
  /** Pages rendered below --dpi because of the pixel budget, by dpi. */
  clamped?: Record<string, number>;
}

const log = (line: string): void => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

if (!MUTOOL) log('mutool not found: printing our figures only (install mupdf-tools for the comparison)');
// mutool draw writes no JPEG (its -F list has png, pnm, pam, … but no jpeg): nothing to compare.
const COMPARE = MUTOOL !== undefined && format === 'png';
if (MUTOOL && !COMPARE) log('mutool draw cannot write JPEG: printing our figures only');
log(`bench: ${files.length} files, ${format} at ${dpi} dpi, warm-up + median of ${runs} run(s)${COMPARE && !values['no-mt'] ? ', mutool also with -T 2' : ''}`);

interface BenchPlan {
  /** Warm jobs after the cold one (0: the cold job is the measure). */
  oursWarmRuns: number;
  mutoolRuns: number;
  mutoolWarmUp: boolean;
  mutoolThreads: boolean;
  maxPagePixels?: number;
}

async function benchFile(file: string, plan: BenchPlan): Promise<Row> {
  const name = basename(file);
  const child = await ours(file, plan);
  const oursMs = child.warm.length > 0 ? median(child.warm.map((r) => r.ms)) : child.cold.ms;
  const row: Row = {
    file: name,
    pages: child.pages,
    ours: {
      ms: oursMs,
      pagesPerSec: child.pages / (oursMs / 1000),
      coldStartMs: child.coldStartMs,
      coldMs: child.cold.ms,
      warmOverheadMs: child.warm.length > 0 ? median(child.warm.map((r) => r.startupMs)) : child.cold.startupMs,
      bytes: child.bytes,
      peakRssBytes: child.peakRssBytes,
      wasmHeapPeakBytes: child.wasmHeapPeakBytes,
      failedPages: child.failedPages,
      ...(child.error ? { error: child.error } : {}),
    },
  };
  const groups = Object.entries(child.dpiGroups).map(([d, pages]) => ({ dpi: Number(d), pages }));
  const clamped = groups.filter((g) => g.dpi !== dpi);
  if (clamped.length > 0) row.clamped = Object.fromEntries(clamped.map((g) => [g.dpi, g.pages.length]));
  if (COMPARE && child.pages > 0) {
    const mutoolGroups = groups.length === 1 && !child.failedPages ? [{ dpi: groups[0]!.dpi }] : groups.map((g) => ({ dpi: g.dpi, pages: pageList(g.pages.sort((a, b) => a - b)) }));
    if (plan.mutoolWarmUp) await mutoolOnce(file, mutoolGroups, false);
    const m: MutoolRun[] = [];
    for (let i = 0; i < plan.mutoolRuns; i++) m.push(await mutoolOnce(file, mutoolGroups, false));
    const mMs = median(m.map((r) => r.ms));
    const mLast = m.at(-1)!;
    row.mutool = {
      ms: mMs,
      pagesPerSec: mLast.pages / (mMs / 1000),
      bytes: mLast.bytes,
      peakRssBytes: Math.max(...m.map((r) => r.peakRssBytes)),
      pages: mLast.pages,
      ...(mLast.failure ? { failure: mLast.failure } : {}),
    };
    // Compared only when mutool rendered the same pages.
    if (row.mutool.pages === child.pages) {
      row.speedRatio = row.ours.pagesPerSec / row.mutool.pagesPerSec;
      row.bytesRatio = row.ours.bytes / row.mutool.bytes;
    }
    if (plan.mutoolThreads) {
      const t: number[] = [];
      for (let i = 0; i < plan.mutoolRuns; i++) t.push((await mutoolOnce(file, mutoolGroups, true)).ms);
      row.mutoolT2 = { ms: median(t), pagesPerSec: mLast.pages / (median(t) / 1000) };
    }
  }
  log(`  ${name}: ${row.pages} pages, ours ${row.ours.pagesPerSec.toFixed(1)} p/s${row.mutool ? `, mutool ${row.mutool.pagesPerSec.toFixed(1)} p/s` : ''}${row.ours.error ? `, ERROR ${row.ours.error}` : ''}`);
  return row;
}

const rows: Row[] = [];
for (const file of files) rows.push(await benchFile(file, { oursWarmRuns: runs, mutoolRuns: runs, mutoolWarmUp: true, mutoolThreads: !values['no-mt'] }));

/**
 * --generated: the inputs of test/fixtures/generated-pdfs.ts (kept between runs in the temporary
 * directory), one cold job each (some take minutes), at full size (the pixel cap raised).
 */
const generatedRows: Row[] = [];
if (values.generated) {
  const inputs = join(tmpdir(), 's3-pdf-render-generated-pdfs');
  mkdirSync(inputs, { recursive: true });
  for (const [name, write] of Object.entries(GENERATED_PDFS)) {
    const path = join(inputs, `${name}.pdf`);
    if (!existsSync(path)) {
      log(`  generating ${name}.pdf`);
      await write(`${path}.partial`);
      renameSync(`${path}.partial`, path);
    }
    generatedRows.push(await benchFile(path, { oursWarmRuns: 0, mutoolRuns: 1, mutoolWarmUp: false, mutoolThreads: false, maxPagePixels: 1_000_000_000 }));
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
// The files both tools rendered in full.
const compared = rows.filter((r) => r.mutool && r.speedRatio !== undefined);
const totals = {
  files: rows.length,
  pages: sum(rows.map((r) => r.pages)),
  ours: {
    ms: sum(rows.map((r) => r.ours.ms)),
    pagesPerSec: sum(rows.map((r) => r.pages)) / (sum(rows.map((r) => r.ours.ms)) / 1000),
    bytes: sum(rows.map((r) => r.ours.bytes)),
    peakRssBytes: Math.max(...rows.map((r) => r.ours.peakRssBytes)),
    wasmHeapPeakBytes: Math.max(...rows.map((r) => r.ours.wasmHeapPeakBytes)),
    failedPages: sum(rows.map((r) => r.ours.failedPages)),
    /** Over the files: the cold start (fresh process to first page written) and the warm per-job overhead. */
    coldStartMs: { median: median(rows.map((r) => r.ours.coldStartMs)), max: Math.max(...rows.map((r) => r.ours.coldStartMs)) },
    warmOverheadMs: { median: median(rows.map((r) => r.ours.warmOverheadMs)), max: Math.max(...rows.map((r) => r.ours.warmOverheadMs)) },
  },
  ...(compared.length > 0
    ? {
        mutool: {
          ms: sum(compared.map((r) => r.mutool!.ms)),
          pagesPerSec: sum(compared.map((r) => r.mutool!.pages)) / (sum(compared.map((r) => r.mutool!.ms)) / 1000),
          bytes: sum(compared.map((r) => r.mutool!.bytes)),
          peakRssBytes: Math.max(...compared.map((r) => r.mutool!.peakRssBytes)),
        },
        // Over the files both tools rendered: total time ratio and total bytes ratio.
        speedRatio: sum(compared.map((r) => r.mutool!.ms)) / sum(compared.map((r) => r.ours.ms)),
        bytesRatio: sum(compared.map((r) => r.ours.bytes)) / sum(compared.map((r) => r.mutool!.bytes)),
        ...(compared.every((r) => r.mutoolT2) ? { mutoolT2PagesPerSec: sum(compared.map((r) => r.mutool!.pages)) / (sum(compared.map((r) => r.mutoolT2!.ms)) / 1000) } : {}),
      }
    : {}),
};

if (values.json) {
  console.log(JSON.stringify({ dpi, format, runs, mutool: MUTOOL ?? null, rows, totals, ...(values.generated ? { generated: generatedRows } : {}) }, null, 2));
} else {
  const MB = (n: number) => (n / 1e6).toFixed(1);
  const MiB = (n: number) => (n / 2 ** 20).toFixed(0);
  const header = ['file', 'pages', 'ours p/s', 'mutool p/s', 'ratio', 'mutool-T2 p/s', 'cold ms', 'warm +ms', 'ours MB', 'mutool MB', 'bytes ratio', 'ours RSS MiB', 'mutool RSS MiB', 'WASM MiB', 'note'];
  const cells = (r: Row): string[] => [
    r.file.replace(/\.pdf$/, ''),
    String(r.pages),
    r.ours.pagesPerSec.toFixed(1),
    r.mutool ? r.mutool.pagesPerSec.toFixed(1) : '-',
    r.speedRatio !== undefined ? r.speedRatio.toFixed(2) : '-',
    r.mutoolT2 ? r.mutoolT2.pagesPerSec.toFixed(1) : '-',
    r.ours.coldStartMs.toFixed(0),
    r.ours.warmOverheadMs.toFixed(0),
    MB(r.ours.bytes),
    r.mutool ? MB(r.mutool.bytes) : '-',
    r.bytesRatio !== undefined ? r.bytesRatio.toFixed(2) : '-',
    MiB(r.ours.peakRssBytes),
    r.mutool ? MiB(r.mutool.peakRssBytes) : '-',
    MiB(r.ours.wasmHeapPeakBytes),
    [
      r.clamped ? `clamped: ${Object.entries(r.clamped).map(([d, n]) => `${n}p@${d}dpi`).join(' ')}` : '',
      r.ours.failedPages ? `${r.ours.failedPages} failed` : '',
      r.ours.error ?? '',
      r.mutool && r.mutool.pages !== r.pages ? `mutool wrote ${r.mutool.pages}` : '',
      r.mutool?.failure ? `mutool ${r.mutool.failure}` : '',
    ]
      .filter(Boolean)
      .join('; '),
  ];
  const t = totals;
  const totalRow = [
    'TOTAL',
    String(t.pages),
    t.ours.pagesPerSec.toFixed(1),
    t.mutool ? t.mutool.pagesPerSec.toFixed(1) : '-',
    t.speedRatio !== undefined ? t.speedRatio.toFixed(2) : '-',
    t.mutoolT2PagesPerSec !== undefined ? t.mutoolT2PagesPerSec.toFixed(1) : '-',
    `med ${t.ours.coldStartMs.median.toFixed(0)}`,
    `med ${t.ours.warmOverheadMs.median.toFixed(0)}`,
    MB(t.ours.bytes),
    t.mutool ? MB(t.mutool.bytes) : '-',
    t.bytesRatio !== undefined ? t.bytesRatio.toFixed(2) : '-',
    `max ${MiB(t.ours.peakRssBytes)}`,
    t.mutool ? `max ${MiB(t.mutool.peakRssBytes)}` : '-',
    `max ${MiB(t.ours.wasmHeapPeakBytes)}`,
    `${t.files} files; ours ${(t.ours.ms / 1000).toFixed(1)} s${t.mutool ? `, mutool ${(t.mutool.ms / 1000).toFixed(1)} s` : ''}`,
  ];
  const printTable = (body: string[][], footer?: string[]): void => {
    const all = footer ? [...body, footer] : body;
    const widths = header.map((h, i) => Math.max(h.length, ...all.map((row) => row[i]!.length)));
    const line = (row: string[]) => row.map((c, i) => (i === 0 || i === row.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
    const rule = widths.map((w) => '-'.repeat(w)).join('  ');
    console.log(line(header));
    console.log(rule);
    for (const row of body) console.log(line(row));
    if (footer) console.log(`${rule}\n${line(footer)}`);
  };
  console.log(`${format} at ${dpi} dpi; median of ${runs} run(s) after a warm-up (ours: warm jobs, each in a fresh worker and MuPDF); ratio = ours pages/s / mutool pages/s`);
  console.log("cold ms = fresh process to first page written (includes that page); warm +ms = a warm job's start to its document open in a fresh worker");
  printTable(rows.map(cells), totalRow);
  if (values.generated) {
    console.log('\ngenerated inputs (test/fixtures/generated-pdfs.ts), pixel cap raised to 1e9: one cold job each (ours: a fresh process), one mutool run');
    printTable(generatedRows.map(cells));
  }
}

// A bench that could not measure says so and fails: a table of NaN is not a result.
const broken = [...rows, ...generatedRows].filter((r) => r.ours.error || r.pages === 0 || !Number.isFinite(r.ours.pagesPerSec));
if (broken.length > 0) {
  console.error(`error: ${broken.length} of ${rows.length + generatedRows.length} file(s) not measured: ${broken.map((r) => `${r.file} (${r.ours.error ?? `${r.pages} pages`})`).join('; ')}`);
  process.exitCode = 1;
}
