/**
 * npm run build: bundles every function of template.yaml into dist/<LogicalId>/ exactly as
 * `sam build` would (the esbuild BuildProperties are read from the template's Metadata: one
 * source of truth; test/sam-build.test.ts checks the two builds give the same files), writes
 * esbuild's metafile beside each artifact (dist/<LogicalId>.meta.json: which inputs went into
 * it), and prints every artifact's zipped and unzipped size. The layers the functions list are
 * built as `sam build` builds them (their Makefile), but for this machine's architecture, into
 * dist/<LayerId>/: the local Lambda container (tools/lambda-container.ts) puts their
 * nodejs/node_modules on NODE_PATH as Lambda puts /opt/nodejs/node_modules, so the bundles run
 * here on the same code with this machine's binaries.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';
import { esbuildPlan, functionLayerIds, loadTemplate, npmCpuOf, ROOT, templateFunctions, templateLayers, type TemplateLayer } from './template.js';

export const DIST = join(ROOT, 'dist');

/** Lambda's limits for a .zip deployment package, and this project's own budget. */
const LAMBDA_ZIPPED_LIMIT = 50 * 2 ** 20;
const LAMBDA_UNZIPPED_LIMIT = 250 * 2 ** 20;
const ZIPPED_BUDGET = 15 * 2 ** 20;

export interface BuildAllOptions {
  /** Logical IDs to build; default: every function of the template. */
  only?: string[];
}

/** Builds the template's functions; resolves to their output folders by logical ID. */
export async function buildAll(options: BuildAllOptions = {}): Promise<Record<string, string>> {
  const outputs: Record<string, string> = {};
  const functions = templateFunctions(loadTemplate()).filter((fn) => !options.only || options.only.includes(fn.logicalId));
  for (const fn of functions) {
    const plan = esbuildPlan(fn);
    const missing = plan.entryPoints.filter((entry) => !existsSync(entry));
    if (missing.length > 0) throw new Error(`${fn.logicalId}: ${missing.map((m) => relative(ROOT, m)).join(', ')} does not exist`);
    const outdir = join(DIST, fn.logicalId);
    await rm(outdir, { recursive: true, force: true });
    await mkdir(outdir, { recursive: true });
    const { metafile } = await build({ ...plan.options, entryPoints: plan.entryPoints, outdir, logLevel: 'error', metafile: true });
    await writeFile(metafilePath(fn.logicalId), JSON.stringify(metafile));
    outputs[fn.logicalId] = outdir;
  }
  const needed = new Set(functions.flatMap((fn) => functionLayerIds(fn)));
  for (const layer of templateLayers(loadTemplate()).filter((l) => needed.has(l.logicalId))) await buildLayer(layer, join(DIST, layer.logicalId), process.arch);
  return outputs;
}

/**
 * NODE_PATH for running `logicalId`'s bundle outside the local container (benches): its layers,
 * built for this machine into dist/<LayerId>/ if they are not yet, as Lambda puts them on it.
 */
export async function layersNodePath(logicalId: string): Promise<string> {
  const template = loadTemplate();
  const ids = functionLayerIds(templateFunctions(template).find((fn) => fn.logicalId === logicalId)!);
  const dirs: string[] = [];
  for (const layer of templateLayers(template).filter((l) => ids.includes(l.logicalId))) {
    await buildLayer(layer, join(DIST, layer.logicalId), process.arch);
    dirs.push(join(DIST, layer.logicalId, 'nodejs', 'node_modules'));
  }
  return dirs.join(':');
}

/**
 * Builds `layer` into `outdir` with its Makefile, as SAM's makefile builder runs it
 * (`make build-<LogicalId>` with ARTIFACTS_DIR), for npm's `cpu` (NPM_CPU; default the
 * template's BuildArchitecture). Skipped when `outdir` already holds a build of the same
 * Makefile and lockfile for the same cpu.
 */
export async function buildLayer(layer: TemplateLayer, outdir: string, cpu = npmCpuOf(layer.buildArchitecture)): Promise<void> {
  const stamp = join(outdir, '.build-stamp');
  const inputs = await Promise.all(['Makefile', 'package-lock.json'].map((f) => readFile(join(layer.contentUri, f), 'utf8').catch(() => '')));
  const wanted = JSON.stringify({ cpu: npmCpuOf(cpu), inputs });
  if ((await readFile(stamp, 'utf8').catch(() => '')) === wanted) return;
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const make = spawnSync('make', ['--no-print-directory', '-f', join(layer.contentUri, 'Makefile'), `build-${layer.logicalId}`, `ARTIFACTS_DIR=${outdir}`, `NPM_CPU=${npmCpuOf(cpu)}`], {
    cwd: layer.contentUri,
    encoding: 'utf8',
    env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_loglevel: 'error' },
  });
  if (make.status !== 0) throw new Error(`${layer.logicalId}: make build-${layer.logicalId} failed (${make.error?.message ?? `status ${make.status}`}):\n${make.stderr}`);
  await writeFile(stamp, wanted);
}

const metafilePath = (logicalId: string): string => join(DIST, `${logicalId}.meta.json`);

/** esbuild's metafile of the last build of a function: every input file bundled, per output. */
export async function readMetafile(logicalId: string): Promise<Metafile> {
  return JSON.parse(await readFile(metafilePath(logicalId), 'utf8')) as Metafile;
}

export async function files(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await files(path)));
    else found.push(path);
  }
  return found.sort();
}

export interface ArtifactSize {
  unzipped: number;
  zipped: number;
  /** 'zip' when measured with the zip CLI; 'deflate' when estimated with zlib. */
  method: 'zip' | 'deflate';
}

/** The artifact's size unzipped and as a .zip (the zip CLI, or a zlib deflate estimate without it). */
export async function artifactSize(dir: string): Promise<ArtifactSize> {
  const all = await files(dir);
  let unzipped = 0;
  for (const file of all) unzipped += (await stat(file)).size;
  const zipFile = `${dir}.zip`;
  await rm(zipFile, { force: true });
  const zip = spawnSync('zip', ['-q', '-r', '-X', zipFile, '.'], { cwd: dir, stdio: 'ignore' });
  if (zip.status === 0) {
    const zipped = (await stat(zipFile)).size;
    await rm(zipFile, { force: true });
    return { unzipped, zipped, method: 'zip' };
  }
  let zipped = 22; // end of central directory
  for (const file of all) {
    const name = Buffer.byteLength(relative(dir, file));
    zipped += 30 + 46 + 2 * name + deflateRawSync(await readFile(file), { level: 6 }).length;
  }
  return { unzipped, zipped, method: 'deflate' };
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const outputs = await buildAll();
  let overBudget = false;
  const template = loadTemplate();
  // Lambda's 250 MB unzipped counts the function and its layers together; a layer's zip has its own 50 MB.
  const layerSizes = new Map<string, ArtifactSize>();
  for (const layer of templateLayers(template)) {
    const dir = join(DIST, layer.logicalId);
    if (!existsSync(dir)) continue;
    const size = await artifactSize(dir);
    layerSizes.set(layer.logicalId, size);
    console.log(`${layer.logicalId} (layer, built for this machine: ${process.arch}): ${mib(size.zipped)} zipped, ${mib(size.unzipped)} unzipped`);
  }
  for (const [name, dir] of Object.entries(outputs)) {
    const size = await artifactSize(dir);
    const note = size.method === 'zip' ? 'zipped' : 'zipped, estimated: zip CLI not found';
    const layers = functionLayerIds(templateFunctions(template).find((fn) => fn.logicalId === name)!);
    const withLayers = size.unzipped + layers.reduce((sum, id) => sum + (layerSizes.get(id)?.unzipped ?? 0), 0);
    console.log(`${name}: ${relative(ROOT, dir)}/ ${mib(size.zipped)} ${note}, ${mib(size.unzipped)} unzipped${layers.length ? `, ${mib(withLayers)} with ${layers.join(', ')}` : ''}`);
    for (const file of await files(dir)) console.log(`  ${relative(dir, file)} ${mib((await stat(file)).size)}`);
    if (size.zipped > ZIPPED_BUDGET || size.zipped > LAMBDA_ZIPPED_LIMIT || withLayers > LAMBDA_UNZIPPED_LIMIT) {
      console.error(`${name}: over budget (${mib(ZIPPED_BUDGET)} zipped; Lambda allows ${mib(LAMBDA_ZIPPED_LIMIT)} zipped, ${mib(LAMBDA_UNZIPPED_LIMIT)} unzipped with its layers)`);
      overBudget = true;
    }
  }
  if (overBudget) process.exitCode = 1;
}
