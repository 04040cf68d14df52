/**
 * `sam build` from a fresh clone, done the way the SAM CLI's builder does it (aws-lambda-builders
 * 1.63, workflows/nodejs_npm_esbuild and nodejs_npm/actions.py), without the SAM CLI: a scratch
 * copy of the project without node_modules, .git, .aws-sam (and dist); the install SAM runs for
 * UseNpmCi (`npm ci`); the esbuild of the scratch folder's own node_modules/.bin, run with the
 * command line SAM builds from BuildProperties (tools/template.ts samEsbuildArgs). The artifacts
 * must hold the same files as `npm run build`'s, and the SAM-built render artifact must render.
 *
 * Slow-ish (an `npm ci`, from the npm cache when it has the packages): run once in the suite.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAll, buildLayer, files } from '../tools/build.js';
import { invokeBuilt } from '../tools/invoke.js';
import { functionLayerIds, loadTemplate, ROOT, samEsbuildArgs, templateFunction, templateFunctions, templateLayers } from '../tools/template.js';
import { CORPUS, createBucket, getBytes, getText, putObject, resetS3, s3Endpoint, testS3Client } from './support/s3.js';
import { decodeWebp } from './engine/helpers.js';

/**
 * aws-lambda-builders' NodejsNpmEsbuildWorkflow.EXCLUDED_FILES (ignored at every depth, as
 * shutil.ignore_patterns does), plus dist/: a fresh clone has none (.gitignore).
 */
const EXCLUDED = new Set(['.aws-sam', '.git', 'node_modules', 'dist']);

/**
 * The install SAM runs in the scratch folder (nodejs_npm workflow.get_install_action): `npm ci`
 * when UseNpmCi is true and a lockfile exists, else NodejsNpmInstallAction's production install.
 */
function samInstallArgs(buildProperties: Record<string, unknown> | undefined, hasLockfile: boolean): string[] {
  if (buildProperties?.['UseNpmCi'] === true && hasLockfile) return ['ci'];
  return ['install', '-q', '--no-audit', '--no-save', '--unsafe-perm', '--omit=dev'];
}

const template = loadTemplate();
const functions = templateFunctions(template);

/** ELF e_machine values (the ELF spec's): what each native file is built for. */
const ELF_MACHINES: Record<number, string> = { 62: 'x86_64', 183: 'arm64' };

/** The architecture an ELF file is built for, or undefined when `bytes` is not ELF. */
function elfMachine(bytes: Buffer): string | undefined {
  if (bytes.length < 20 || bytes.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const littleEndian = bytes[5] === 1;
  const machine = littleEndian ? bytes.readUInt16LE(18) : bytes.readUInt16BE(18);
  return ELF_MACHINES[machine] ?? `e_machine ${machine}`;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed with ${result.status}:\n${result.stderr}`);
  return result.stdout.trim();
}

const listing = async (dir: string) => (await files(dir)).map((file) => relative(dir, file));

describe('sam build, the way the SAM CLI does it, from a fresh copy', () => {
  let scratch: string;
  let artifacts: string;
  let s3: S3Client;
  const built: Record<string, string> = {};
  /** The layers as `sam build` makes them (for the template's architecture), and for this machine's, to run. */
  const layers: Record<string, string> = {};
  const hostLayers: Record<string, string> = {};

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'sam-build-scratch-'));
    artifacts = await mkdtemp(join(tmpdir(), 'sam-build-artifacts-'));
    await cp(ROOT, scratch, { recursive: true, filter: (source) => source === ROOT || !EXCLUDED.has(basename(source)) });
    // SAM builds each function in a scratch copy of its own; both functions' properties ask for
    // the same install, so one copy serves both.
    const installs = new Set(functions.map((fn) => JSON.stringify(samInstallArgs(fn.buildProperties, existsSync(join(ROOT, 'package-lock.json'))))));
    expect(installs.size).toBe(1);
    // The npm cache is the user's, so packages fetched once are not fetched again; the variables
    // only quiet npm and prefer the cache, they change nothing that is installed.
    run('npm', JSON.parse([...installs][0]!) as string[], scratch, { ...process.env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_loglevel: 'error' });
    // SAM looks for esbuild in `npm root`/.bin of the scratch folder first (then on PATH): use
    // that one, by its path, so no other esbuild can stand in.
    const esbuild = join(run('npm', ['root'], scratch), '.bin', 'esbuild');
    expect(esbuild.startsWith(scratch), esbuild).toBe(true);
    // What SAM reports as "Cannot find esbuild" when the install leaves it out (npm install --omit=dev).
    expect(existsSync(esbuild), `Cannot find esbuild: ${esbuild} is missing after the install SAM runs`).toBe(true);
    for (const fn of functions) {
      const outdir = join(artifacts, fn.logicalId);
      run(esbuild, [...samEsbuildArgs(fn, outdir), '--log-level=error'], scratch);
      built[fn.logicalId] = outdir;
    }
    // SAM's makefile builder: `make build-<LayerId>` with ARTIFACTS_DIR, from the scratch copy.
    for (const layer of templateLayers(template)) {
      const scratchLayer = { ...layer, contentUri: join(scratch, relative(ROOT, layer.contentUri)) };
      layers[layer.logicalId] = join(artifacts, layer.logicalId);
      await buildLayer(scratchLayer, layers[layer.logicalId]!);
      hostLayers[layer.logicalId] = join(artifacts, `${layer.logicalId}-${process.arch}`);
      await buildLayer(scratchLayer, hostLayers[layer.logicalId]!, process.arch);
    }
    s3 = testS3Client();
  }, 600_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
    await rm(artifacts, { recursive: true, force: true });
  });

  it('copied a clean tree: no node_modules, .git or dist came along, and esbuild came from package-lock.json', async () => {
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
    const installed = JSON.parse(await readFile(join(scratch, 'node_modules', 'esbuild', 'package.json'), 'utf8')) as { version: string };
    expect(installed.version).toBe(lock.packages['node_modules/esbuild']!.version);
    expect((await listing(scratch)).filter((file) => /^(\.git|dist|\.aws-sam)(\/|$)/.test(file))).toEqual([]);
  });

  it('passes BuildProperties to esbuild as SAM does (UseNpmCi and EntryPoints are SAM\'s own)', () => {
    const args = samEsbuildArgs(templateFunction(template, 'RenderPdfFunction'), '/out');
    expect(args.slice(0, 5)).toEqual(['functions/render-pdf/handler.ts', 'functions/render-pdf/render-worker.ts', '--bundle', '--platform=node', '--outdir=/out']);
    expect(args).toContain('--external:sharp');
    expect(args).toEqual(expect.arrayContaining(['--format=esm', '--out-extension:.js=.mjs', '--target=es2022', '--minify', '--loader:.wasm=file']));
    expect(args.some((a) => a.startsWith('--banner:js=import { createRequire'))).toBe(true);
    expect(args.filter((a) => /npm|entry|sourcemap/i.test(a))).toEqual([]);
  });

  it('gives the same artifact files as `npm run build`', async () => {
    const ours = await buildAll();
    for (const fn of functions) {
      const sam = await listing(built[fn.logicalId]!);
      expect(sam, fn.logicalId).toEqual(await listing(ours[fn.logicalId]!));
      // Same esbuild version, same inputs, same options: the same bytes too.
      for (const file of sam) {
        const [a, b] = await Promise.all([readFile(join(built[fn.logicalId]!, file)), readFile(join(ours[fn.logicalId]!, file))]);
        expect(a.equals(b), `${fn.logicalId}/${file}`).toBe(true);
      }
    }
  });

  it('builds the sharp layer for the template\'s arm64: every native file in it is arm64, none x86_64', async () => {
    expect((template.Globals?.Function as { Architectures?: string[] }).Architectures).toEqual(['arm64']);
    for (const layer of templateLayers(template)) {
      expect(layer.buildArchitecture, layer.logicalId).toBe('arm64');
      const all = await files(layers[layer.logicalId]!);
      const native = all.filter((file) => /\.node$|\.so(\.\d+)*$/.test(file));
      // sharp's addon and libvips at least.
      expect(native.length, layer.logicalId).toBeGreaterThanOrEqual(2);
      const machines = await Promise.all(all.map(async (file) => [relative(layers[layer.logicalId]!, file), elfMachine(await readFile(file))] as const));
      const elves = machines.filter(([, machine]) => machine !== undefined);
      expect(elves.map(([file]) => file).sort()).toEqual(native.map((file) => relative(layers[layer.logicalId]!, file)).sort());
      expect(elves.filter(([, machine]) => machine !== 'arm64')).toEqual([]);
      expect(all.some((file) => file.includes('nodejs/node_modules/sharp/package.json'))).toBe(true);
    }
  });

  it('pins the layer\'s sharp to the version the project tests with (package-lock.json), and lists it on the functions that encode', async () => {
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
    const layerLock = JSON.parse(await readFile(join(ROOT, 'layers', 'sharp', 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
    expect(layerLock.packages['node_modules/sharp']!.version).toBe(lock.packages['node_modules/sharp']!.version);
    const installed = JSON.parse(await readFile(join(layers['SharpLayer']!, 'nodejs', 'node_modules', 'sharp', 'package.json'), 'utf8')) as { version: string };
    expect(installed.version).toBe(lock.packages['node_modules/sharp']!.version);
    expect(functionLayerIds(templateFunction(template, 'RenderPdfFunction'))).toEqual(['SharpLayer']);
    expect(functionLayerIds(templateFunction(template, 'PageFunction'))).toEqual(['SharpLayer']);
    expect(functionLayerIds(templateFunction(template, 'ReprocessFunction'))).toEqual([]);
  });

  it('renders a page with the SAM-built render artifact, run as Lambda runs it, against the local S3', async () => {
    await resetS3();
    await createBucket(s3, 'example-bucket');
    await putObject(s3, 'example-bucket', 'incoming/sample.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    const event = JSON.parse(await readFile(join(ROOT, 'events', 's3-put.json'), 'utf8')) as unknown;
    const fn = templateFunction(template, 'RenderPdfFunction');
    const outcome = await invokeBuilt(template, fn, event, { extraEnv: { S3_ENDPOINT: s3Endpoint() }, artifactDir: built[fn.logicalId]!, layerDirs: hostLayers });
    expect(outcome.ok, JSON.stringify(outcome.payload)).toBe(true);
    const manifest = JSON.parse(await getText(s3, 'example-bucket', 'rendered/sample.pdf/manifest.json')) as { status: string; pages: { width: number }[] };
    expect(manifest.status).toBe('complete');
    expect(manifest.pages[0]!.width).toBeGreaterThan(0);
  });

  it('renders WebP with the SAM-built artifact: sharp from the layer (this machine\'s build of it), not bundled and not from node_modules', async () => {
    await resetS3();
    await createBucket(s3, 'example-bucket');
    await putObject(s3, 'example-bucket', 'incoming/sample.pdf', await readFile(join(CORPUS, 'matplotlib-type3.pdf')));
    expect((await readdir(built['RenderPdfFunction']!)).filter((f) => /sharp|\.node$/.test(f))).toEqual([]);
    const event = JSON.parse(await readFile(join(ROOT, 'events', 's3-put.json'), 'utf8')) as unknown;
    const fn = templateFunction(template, 'RenderPdfFunction');
    const outcome = await invokeBuilt(template, fn, event, { extraEnv: { S3_ENDPOINT: s3Endpoint(), FORMAT: 'webp' }, artifactDir: built[fn.logicalId]!, layerDirs: hostLayers });
    expect(outcome.ok, JSON.stringify(outcome.payload)).toBe(true);
    const manifest = JSON.parse(await getText(s3, 'example-bucket', 'rendered/sample.pdf/manifest.json')) as { status: string; pages: { key: string; width: number; height: number }[] };
    expect(manifest.status).toBe('complete');
    const [page] = manifest.pages;
    expect(page!.key).toMatch(/\.webp$/);
    expect(await decodeWebp(await getBytes(s3, 'example-bucket', page!.key))).toMatchObject({ width: page!.width, height: page!.height });
  });
});
