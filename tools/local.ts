/**
 * npm run local -- [file.pdf…] [--out dir] [--bucket name]
 * The main job on an embedded default: starts a local S3 (moto_server) unless S3_ENDPOINT is
 * set, uploads each PDF under incoming/, sends the bundled render handler the S3 event AWS
 * would send, and copies the pages and manifest.json to --out (default out/).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import { loadConfig } from '../lib/config/env.js';
import { isLegacy, isPageFailure, parseManifest } from '../lib/job/manifest.js';
import { createS3Client } from '../lib/s3/client.js';
import { MANIFEST_FILE, outputLocation } from '../lib/s3/layout.js';
import { buildAll } from './build.js';
import { s3PutEvent } from '../lib/s3/event.js';
import { writeSamplePdf } from './sample-pdf.js';
import { motoAvailable, MOTO_INSTALL_HINT, startMoto, type LocalS3 } from './moto.js';

const USAGE = 'usage: npm run local -- [file.pdf…] [--out dir] [--bucket name]   (no file: a generated sample PDF)';

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const name = (err as Error).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { out: { type: 'string', default: 'out' }, bucket: { type: 'string', default: 'local-pdf-render' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.error(USAGE);
    return 0;
  }
  if (positionals.length === 0) {
    positionals.push(await writeSamplePdf());
    console.error(`no PDF given: rendering a generated sample (${positionals[0]})`);
  }
  let server: LocalS3 | undefined;
  if (!process.env['S3_ENDPOINT']) {
    if (!motoAvailable()) {
      console.error(`error: ${MOTO_INSTALL_HINT}`);
      return 1;
    }
    server = await startMoto();
    process.env['S3_ENDPOINT'] = server.endpoint;
    console.error(`local S3 (moto_server) on ${server.endpoint}`);
  }
  try {
    // The same environment the function gets: defaults unless the caller set them.
    process.env['POWERTOOLS_METRICS_DISABLED'] ??= 'true';
    process.env['POWERTOOLS_LOG_LEVEL'] ??= 'WARN';
    const config = loadConfig();
    const s3 = createS3Client(config);
    const bucket = values.bucket;
    await ensureBucket(s3, bucket);
    if (config.outputBucket) await ensureBucket(s3, config.outputBucket);

    console.error('building the function bundle…');
    const { RenderPdfFunction: dir } = await buildAll({ only: ['RenderPdfFunction'] });
    const { handler } = (await import(pathToFileURL(join(dir!, 'handler.mjs')).href)) as {
      handler: (event: S3Event, context: object) => Promise<unknown>;
    };

    const outRoot = resolve(values.out);
    let failures = 0;
    for (const file of positionals) {
      const key = `${config.inputPrefix}${basename(file)}`;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(file), ContentType: 'application/pdf' }));
      console.error(`uploaded s3://${bucket}/${key}; invoking the handler…`);
      const started = Date.now();
      const deadline = started + 900_000;
      await handler(s3PutEvent(bucket, key), { awsRequestId: `local-${started}`, getRemainingTimeInMillis: () => deadline - Date.now() });

      const out = outputLocation(bucket, key, config);
      const manifestObject = await s3.send(new GetObjectCommand({ Bucket: out.bucket, Key: out.prefix + MANIFEST_FILE }));
      const manifestText = await manifestObject.Body!.transformToString();
      const manifest = parseManifest(manifestText);
      if (!manifest || isLegacy(manifest)) throw new Error(`s3://${out.bucket}/${out.prefix}${MANIFEST_FILE} is not a valid v2 manifest`);
      const target = join(outRoot, basename(file));
      await mkdir(target, { recursive: true });
      for (const page of manifest.pages) {
        if (isPageFailure(page)) continue;
        const object = await s3.send(new GetObjectCommand({ Bucket: out.bucket, Key: page.key }));
        // Flattened: the generation folder is S3's business (readers follow pages[].key).
        await writeFile(join(target, basename(page.key)), await object.Body!.transformToByteArray());
      }
      await writeFile(join(target, MANIFEST_FILE), manifestText);
      const rendered = manifest.pages.filter((p) => !isPageFailure(p)).length;
      console.log(
        `${basename(file)}: ${manifest.status}${manifest.error ? ` ${manifest.error.code} (${manifest.error.message})` : ''}, ` +
          `${rendered}/${manifest.pageCount} pages in ${Date.now() - started} ms -> ${target}/`,
      );
      if (manifest.status !== 'complete') failures++;
    }
    return failures === 0 ? 0 : 2;
  } finally {
    await server?.stop();
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
