/**
 * npm run bench:iiif [-- --rounds 3] [--containers 4]
 *
 * IIIF latency of the page function in its Lambda shape: the built artifact in Lambda containers
 * (tools/lambda-container.ts: the template's PageMemorySize and vCPU share, a cgroup when the
 * machine has one), handed Function URL events, against a local S3 (moto_server). On page 2 of
 * multipage-9000px-image.pdf (a 9000 px scan; 9000x9000 at IIIF_DPI 300), per round (a new
 * source key, so nothing is cached):
 *   - info.json warm: the page sizes already known (a second request);
 *   - a 512 px tile of scale factor 1: the first of its level (the source in /tmp; the level,
 *     9000x9000 px, drawn into the level cache, lib/iiif/levels.ts, and the tile cut from it),
 *     a warm miss (the tile next to it: cut from the level already in /tmp) and a hit (from S3);
 *   - a viewer's first screen: info.json, then the tiles of the level that fits 1024 px, asked
 *     at once across --containers containers (Lambda runs them side by side), cold (new
 *     containers, nothing cached: each container draws the level once) and warm (the same
 *     containers, another viewer: hits);
 *   - the deepest 512 px tile (scale 1) of the generated 14400 pt page (30000 px at 150 dpi; at
 *     IIIF_DPI 300 with MAX_PAGE_PIXELS raised to 1e9 its full image is 31600 px, at 158 dpi), warm
 *     miss: its level would be 3.0 GB, over the level cache's budget, so it is drawn as a region.
 * Medians and p95 over the rounds.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { everyService } from '../lib/aws/endpoint.js';
import type { PageResult } from '../lib/on-demand/handler.js';
import { createS3Client } from '../lib/s3/client.js';
import { writeGiantPagePdf } from '../test/fixtures/generated-pdfs.js';
import { buildAll } from '../tools/build.js';
import { corpusFile } from '../tools/corpus.js';
import { functionUrlEvent } from '../tools/function-url.js';
import { LambdaContainer } from '../tools/lambda-container.js';
import { shapeUnavailable } from '../tools/lambda-shape.js';
import { startMoto } from '../tools/moto.js';
import { loadTemplate, localContext, templateFunction } from '../tools/template.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, containers: { type: 'string', default: '4' } } });
const rounds = Number(values.rounds);
const containerCount = Number(values.containers);
const samples: Record<string, number[]> = {
  'info.json, warm': [],
  '512 px tile, first of its level (draws the 9000 px level)': [],
  '512 px tile, warm miss (its level in /tmp)': [],
  '512 px tile, warm hit': [],
  'first screen, cold': [],
  'first screen, warm': [],
  'deepest tile of a 30000 px page, warm miss': [],
};

const moto = await startMoto();
const scratch = await mkdtemp(join(tmpdir(), 'bench-iiif-'));
const containers: LambdaContainer[] = [];
try {
  const template = loadTemplate();
  const fn = templateFunction(template, 'PageFunction');
  const bucket = localContext(template).parameters['BucketName']!;
  const s3 = createS3Client({ endpoints: everyService(moto.endpoint) });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await buildAll({ only: ['PageFunction'] });
  const extraEnv = { S3_ENDPOINT: moto.endpoint, POWERTOOLS_METRICS_DISABLED: 'true', MAX_PAGE_PIXELS: '1000000000', IIIF_BASE_URL: 'https://bench.invalid' };
  const scan = await readFile(corpusFile('multipage-9000px-image.pdf'));
  const giant = join(scratch, 'giant-page.pdf');
  await writeGiantPagePdf(giant);
  const start = async (): Promise<LambdaContainer> => {
    const { container, initError } = await LambdaContainer.start(template, fn, { extraEnv });
    if (initError) throw new Error(`PageFunction did not start: ${JSON.stringify(initError.payload)}`);
    containers.push(container);
    return container;
  };
  const get = async (container: LambdaContainer, path: string): Promise<{ ms: number; result: PageResult }> => {
    const begun = performance.now();
    const outcome = await container.invoke(functionUrlEvent('GET', path));
    const result = outcome.payload as PageResult;
    if (!outcome.ok || (result.statusCode !== 200 && result.statusCode !== 302)) throw new Error(`${path}: ${JSON.stringify(outcome.payload).slice(0, 300)}`);
    return { ms: performance.now() - begun, result };
  };
  /** info.json, then every tile of the level whose image fits 1024 px, spread over the containers at once. */
  const firstScreen = async (pool: LambdaContainer[], id: string): Promise<number> => {
    const begun = performance.now();
    const info = JSON.parse(String((await get(pool[0]!, `/iiif/3/${id}/info.json`)).result.body)) as { width: number; height: number; tiles: { width: number; scaleFactors: number[] }[] };
    const tile = info.tiles[0]!.width;
    const factor = info.tiles[0]!.scaleFactors.find((f) => Math.max(info.width, info.height) / f <= 1024) ?? info.tiles[0]!.scaleFactors.at(-1)!;
    const paths: string[] = [];
    for (let y = 0; y < info.height; y += tile * factor) {
      for (let x = 0; x < info.width; x += tile * factor) {
        const w = Math.min(tile * factor, info.width - x);
        const h = Math.min(tile * factor, info.height - y);
        // As OpenSeadragon asks for IIIF 3 tiles: w,h, each side ceil(region / factor).
        paths.push(`/iiif/3/${id}/${x},${y},${w},${h}/${Math.ceil(w / factor)},${Math.ceil(h / factor)}/0/default.jpg`);
      }
    }
    await Promise.all(pool.map(async (container, lane) => {
      for (let i = lane; i < paths.length; i += pool.length) await get(container, paths[i]!);
    }));
    return performance.now() - begun;
  };

  for (let round = 0; round < rounds; round++) {
    const key = `incoming/scan-${round}.pdf`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: scan }));
    const giantKey = `incoming/giant-${round}.pdf`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: giantKey, Body: await readFile(giant) }));
    const id = `${encodeURIComponent(key)};2`;
    // Cold: new containers, nothing cached.
    const pool = await Promise.all(Array.from({ length: containerCount }, start));
    samples['first screen, cold']!.push(await firstScreen(pool, id));
    samples['first screen, warm']!.push(await firstScreen(pool, id));
    const one = pool[0]!;
    samples['info.json, warm']!.push((await get(one, `/iiif/3/${id}/info.json`)).ms);
    samples['512 px tile, first of its level (draws the 9000 px level)']!.push((await get(one, `/iiif/3/${id}/4096,4096,512,512/max/0/default.jpg`)).ms);
    const tile = `/iiif/3/${id}/4608,4096,512,512/max/0/default.jpg`;
    samples['512 px tile, warm miss (its level in /tmp)']!.push((await get(one, tile)).ms);
    samples['512 px tile, warm hit']!.push((await get(one, tile)).ms);
    const giantId = encodeURIComponent(giantKey);
    await get(one, `/iiif/3/${giantId}/info.json`);
    await get(one, `/iiif/3/${giantId}/0,0,512,512/max/0/default.jpg`);
    samples['deepest tile of a 30000 px page, warm miss']!.push((await get(one, `/iiif/3/${giantId}/29488,29488,512,512/max/0/default.jpg`)).ms);
    for (const container of pool) await container.close();
    containers.length = 0;
    console.error(`round ${round + 1}: ${Object.entries(samples).map(([name, list]) => `${name} ${Math.round(list.at(-1)!)} ms`).join('; ')}`);
  }

  const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const shape = shapeUnavailable();
  const memory = String(localContext(template).parameters['PageMemorySize']);
  console.log(`\nPageFunction at ${memory} MB (${shape ? `not shaped: ${shape}` : 'Lambda shape: cgroup memory and CPU'}), ${rounds} rounds, first screen over ${containerCount} containers\n`);
  console.log('| request | median ms | p95 ms |');
  console.log('|---|---:|---:|');
  for (const [name, list] of Object.entries(samples)) {
    const sorted = [...list].sort((a, b) => a - b);
    console.log(`| ${name} | ${Math.round(quantile(sorted, 0.5))} | ${Math.round(quantile(sorted, 0.95))} |`);
  }
} finally {
  for (const container of containers) await container.close().catch(() => undefined);
  await moto.stop();
  await rm(scratch, { recursive: true, force: true });
}
