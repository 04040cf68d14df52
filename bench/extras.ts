/**
 * The cost of thumbnails and page text (issue 16) as a ratio to the pages alone, measured in
 * one run: each document is rendered three ways (pages only; + thumbnails; + thumbnails and
 * text), the three interleaved round after round so machine noise falls on all of them alike.
 *   npx tsx bench/extras.ts [--rounds N] [--dpi N] [--thumbnail-width N]
 * Wall time is startRender to the last page's body read (PNG compressed on the main thread);
 * worker time is the sum of the pages' renderMs (drawing, plus thumbnail and text when on).
 * Prints a table and, last, one JSON line. Bodies are read and counted, not written.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_OUTPUT_OPTIONS, type PageRange, type RenderOptions } from '../lib/engine/options.js';
import { startRender } from '../lib/engine/render.js';

import { CORPUS_DIR } from '../tools/corpus.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    dpi: { type: 'string', default: '150' },
    'thumbnail-width': { type: 'string', default: '256' },
  },
});
const rounds = Number(values.rounds);
const dpi = Number(values.dpi);
const thumbnailWidth = Number(values['thumbnail-width']);

const DOCUMENTS: { file: string; pages?: PageRange[] }[] = [
  { file: 'tracemonkey-paper-14p.pdf' },
  { file: 'federal-register-15p.pdf' },
  { file: 'itu-t81-jpeg-spec-186p-type3.pdf', pages: [{ from: 1, to: 40 }] },
];
const MODES = {
  pages: {},
  thumbnails: { thumbnailWidth },
  'thumbnails+text': { thumbnailWidth, pageText: true },
} satisfies Record<string, Partial<RenderOptions>>;
type Mode = keyof typeof MODES;

interface Run {
  wallMs: number;
  workerMs: number;
  pages: number;
  thumbnailBytes: number;
  textBytes: number;
  chars: number;
}

async function renderOnce(file: string, pages: PageRange[] | undefined, extra: Partial<RenderOptions>): Promise<Run> {
  const started = performance.now();
  const job = await startRender(join(CORPUS_DIR, file), { ...DEFAULT_OUTPUT_OPTIONS, dpi, ...(pages ? { pages } : {}), ...extra });
  const run: Run = { wallMs: 0, workerMs: 0, pages: 0, thumbnailBytes: 0, textBytes: 0, chars: 0 };
  for await (const page of job) {
    if (!page.ok) throw new Error(`${file} page ${page.pageNumber}: ${page.error.code}`);
    for await (const chunk of page.body) void chunk;
    const stats = await page.finished;
    run.pages++;
    run.workerMs += stats.renderMs;
    run.thumbnailBytes += stats.thumbnail?.jpeg.byteLength ?? 0;
    run.textBytes += stats.text?.json.byteLength ?? 0;
    run.chars += stats.text?.chars ?? 0;
  }
  run.wallMs = performance.now() - started;
  return run;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// One warm-up job: WebAssembly compiled and the spare worker up, as in a warm Lambda.
await renderOnce(DOCUMENTS[0]!.file, [{ from: 1, to: 1 }], {});
const runs = new Map<string, Run[]>();
for (let round = 0; round < rounds; round++) {
  for (const { file, pages } of DOCUMENTS) {
    // The order of the modes rotates each round, so none always runs first.
    const modes = Object.keys(MODES) as Mode[];
    for (let i = 0; i < modes.length; i++) {
      const mode = modes[(i + round) % modes.length]!;
      const key = `${file}\t${mode}`;
      runs.set(key, [...(runs.get(key) ?? []), await renderOnce(file, pages, MODES[mode])]);
    }
  }
}

const rows: Record<string, unknown>[] = [];
const totals: Record<Mode, { wallMs: number; workerMs: number }> = { pages: { wallMs: 0, workerMs: 0 }, thumbnails: { wallMs: 0, workerMs: 0 }, 'thumbnails+text': { wallMs: 0, workerMs: 0 } };
for (const { file } of DOCUMENTS) {
  const base = runs.get(`${file}\tpages`)!;
  for (const mode of Object.keys(MODES) as Mode[]) {
    const these = runs.get(`${file}\t${mode}`)!;
    const wallMs = median(these.map((r) => r.wallMs));
    const workerMs = median(these.map((r) => r.workerMs));
    totals[mode].wallMs += wallMs;
    totals[mode].workerMs += workerMs;
    const last = these.at(-1)!;
    rows.push({
      file,
      mode,
      pages: last.pages,
      wallMs: Math.round(wallMs),
      wallRatio: +(wallMs / median(base.map((r) => r.wallMs))).toFixed(3),
      workerMs: Math.round(workerMs),
      workerRatio: +(workerMs / median(base.map((r) => r.workerMs))).toFixed(3),
      thumbnailKB: +(last.thumbnailBytes / 1024).toFixed(1),
      textKB: +(last.textBytes / 1024).toFixed(1),
      chars: last.chars,
    });
  }
}
for (const mode of Object.keys(MODES) as Mode[]) {
  rows.push({
    file: 'TOTAL',
    mode,
    wallMs: Math.round(totals[mode].wallMs),
    wallRatio: +(totals[mode].wallMs / totals.pages.wallMs).toFixed(3),
    workerMs: Math.round(totals[mode].workerMs),
    workerRatio: +(totals[mode].workerMs / totals.pages.workerMs).toFixed(3),
  });
}
console.table(rows);
console.log(JSON.stringify({ dpi, thumbnailWidth, rounds, rows }));
