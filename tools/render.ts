/**
 * npm run render -- <file.pdf> --out <dir> [--dpi N | --width W --height H] [--format png|jpeg|webp|avif] [--quality Q]
 *                   [--pages 1-3,7] [--max-page-pixels N] [--max-pages N] [--thumbnail-width N] [--text]
 * Renders a local PDF into <dir>: page-0001.png … (thumb-0001.jpg, text-0001.json when asked)
 * and manifest.json (written last). The same options as the function's settings and an
 * object's render-* metadata, as flags; --quality is the quality of the format asked for (JPEG's,
 * WebP's or AVIF's; refused for PNG, which has none), as the page URL's quality= is. Warnings (pages past the end, a repaired document)
 * are printed before the summary; a selection that names no page of the document is a failed
 * INVALID_OPTIONS manifest.
 * Exit code: 0 complete, 2 permanent document failure (failed manifest written), 1 anything else.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isPageFailure, type Manifest } from '../lib/job/manifest.js';
import { runRenderJob, type PageSink } from '../lib/job/run-job.js';
import { errorMessage } from '../lib/engine/errors.js';
import { parseFormatSetting, parseJobOptions, qualitySettingField } from '../lib/config/settings.js';
import { DEFAULT_JOB_OPTIONS } from '../lib/job/options.js';

const USAGE =
  'usage: npm run render -- <file.pdf> --out <dir> [--dpi N | --width W --height H] [--format png|jpeg|webp|avif] [--quality Q] [--pages 1-3,7] [--max-page-pixels N] [--max-pages N] [--thumbnail-width N] [--text]';

async function md5File(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Writes to a temporary name and renames, so a reader never sees half a file. */
async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const partial = `${path}.partial`;
  await writeFile(partial, data);
  await rename(partial, path);
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      dpi: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      format: { type: 'string' },
      quality: { type: 'string' },
      pages: { type: 'string' },
      'max-page-pixels': { type: 'string' },
      'max-pages': { type: 'string' },
      'thumbnail-width': { type: 'string' },
      text: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0 || !values.out) throw new Error(USAGE);
  // One --quality, for the format asked for (as the page URL's quality= does).
  const format = values.format !== undefined ? parseFormatSetting('--format', values.format) : DEFAULT_JOB_OPTIONS.format;
  const qualityField = values.quality !== undefined ? qualitySettingField('--quality', values.quality, format) : 'jpegQuality';
  const options = parseJobOptions(
    {
      format: values.format,
      dpi: values.dpi,
      width: values.width,
      height: values.height,
      [qualityField]: values.quality,
      maxPagePixels: values['max-page-pixels'],
      maxPages: values['max-pages'],
      pages: values.pages,
      thumbnailWidth: values['thumbnail-width'],
      ...(values.text ? { pageText: 'true' } : {}),
    },
    {
      format: '--format',
      dpi: '--dpi',
      width: '--width',
      height: '--height',
      [qualityField]: '--quality',
      maxPagePixels: '--max-page-pixels',
      maxPages: '--max-pages',
      pages: '--pages',
      thumbnailWidth: '--thumbnail-width',
      pageText: '--text',
    },
  );
  const filePath = resolve(file);
  const outDir = resolve(values.out);
  const size = await stat(filePath).then(
    (s) => s.size,
    () => {
      throw new Error(`${file}: no such file`);
    },
  );
  await mkdir(outDir, { recursive: true });

  const sink: PageSink = {
    async putPage(page, fileName) {
      const path = join(outDir, fileName);
      const partial = `${path}.partial`;
      try {
        await pipeline(page.body, createWriteStream(partial));
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
      await rename(partial, path);
      return path;
    },
    async putFile(_pageNumber, fileName, body) {
      const path = join(outDir, fileName);
      await writeFileAtomic(path, body);
      return path;
    },
  };
  const { manifest, stats } = await runRenderJob({
    filePath,
    source: { file: filePath, etag: await md5File(filePath), size },
    options,
    sink,
    onPage: (page, timing) => {
      if (isPageFailure(page)) console.error(`page ${page.number}: FAILED ${page.error.code}: ${page.error.message}`);
      else console.error(`page ${page.number}: ${page.width}x${page.height} @ ${page.dpi} dpi, ${page.bytes} bytes, ${timing ? Math.round(timing.renderMs) : '?'} ms`);
    },
  });
  await writeFileAtomic(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  printSummary(manifest, outDir, stats.wasmHeapPeakBytes);
  return manifest.status === 'failed' ? 2 : manifest.status === 'complete' ? 0 : 1;
}

function printSummary(manifest: Manifest, outDir: string, wasmHeapPeakBytes: number): void {
  const rendered = manifest.pages.filter((p) => !isPageFailure(p)).length;
  const failed = manifest.pages.length - rendered;
  const parts = [
    `${manifest.status}:`,
    manifest.error ? `${manifest.error.code} (${manifest.error.message})` : `${rendered} of ${manifest.pageCount} pages rendered${failed ? `, ${failed} failed` : ''}`,
    `in ${manifest.durationMs} ms`,
    `-> ${join(outDir, 'manifest.json')}`,
  ];
  if (wasmHeapPeakBytes) parts.push(`(WASM heap peak ${(wasmHeapPeakBytes / 2 ** 20).toFixed(0)} MiB)`);
  for (const warning of manifest.warnings) console.error(`warning: ${warning}`);
  console.error(parts.join(' '));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`error: ${errorMessage(err)}`);
    process.exitCode = 1;
  },
);
