/**
 * template.yaml as the local tools see it: the one source of truth for how each function is
 * built (esbuild BuildProperties) and run (handler, environment, timeout, memory). Used by
 * tools/build.ts, tools/invoke.ts and the template tests.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BuildOptions } from 'esbuild';
import { parse, type Tags } from 'yaml';

export const ROOT = resolve(import.meta.dirname, '..');
export const TEMPLATE_PATH = join(ROOT, 'template.yaml');

type Json = unknown;
type JsonObject = Record<string, Json>;

export interface Template {
  Parameters?: Record<string, { Type: string; Default?: string | number; [key: string]: Json }>;
  Globals?: { Function?: JsonObject; [section: string]: JsonObject | undefined };
  Resources: Record<string, { Type: string; Properties?: JsonObject; Metadata?: JsonObject; [key: string]: Json }>;
  Outputs?: JsonObject;
  [section: string]: Json;
}

// The intrinsic functions template.yaml uses, short forms (!Ref X, !GetAtt A.B, !Sub …) as their
// long forms ({"Ref": "X"} …). Any other is a parse error here: add it when the template needs it.
const INTRINSICS = ['Ref', 'GetAtt', 'Sub', 'If', 'Equals', 'Not'];
const CFN_TAGS: Tags = INTRINSICS.flatMap((short) => {
  const key = short === 'Ref' ? short : `Fn::${short}`;
  const scalar = (value: string): Json => (short === 'GetAtt' ? { [key]: splitGetAtt(value) } : { [key]: value });
  const collection = (node: { toJSON(): Json }): Json => ({ [key]: node.toJSON() });
  return [
    { tag: `!${short}`, resolve: scalar },
    { tag: `!${short}`, collection: 'seq' as const, resolve: collection },
    { tag: `!${short}`, collection: 'map' as const, resolve: collection },
  ] as Tags;
});

function splitGetAtt(value: string): [string, string] {
  const dot = value.indexOf('.');
  if (dot < 0) throw new Error(`!GetAtt ${value}: expected LogicalId.Attribute`);
  return [value.slice(0, dot), value.slice(dot + 1)];
}

export function parseTemplate(text: string): Template {
  const template = parse(text, { customTags: CFN_TAGS, maxAliasCount: -1 }) as Template;
  if (!template || typeof template !== 'object' || !template.Resources) throw new Error('template.yaml has no Resources');
  return template;
}

export function loadTemplate(path = TEMPLATE_PATH): Template {
  return parseTemplate(readFileSync(path, 'utf8'));
}

function isObject(value: Json): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** SAM's Globals rule: maps merge (the function wins), lists append, anything else is replaced. */
function mergeGlobals(globals: Json, own: Json): Json {
  if (own === undefined) return globals;
  if (globals === undefined) return own;
  if (isObject(globals) && isObject(own)) {
    const merged: JsonObject = { ...globals };
    for (const [key, value] of Object.entries(own)) merged[key] = mergeGlobals(globals[key], value);
    return merged;
  }
  if (Array.isArray(globals) && Array.isArray(own)) return [...globals, ...own];
  return own;
}

export interface TemplateFunction {
  logicalId: string;
  /** Properties with Globals.Function merged in, intrinsics unresolved. */
  properties: JsonObject;
  /** "handler.handler": file handler.(m)js in the artifact, export handler. */
  handler: string;
  codeUri: string;
  runtime: string;
  /** Unresolved intrinsics (resolve with resolveIntrinsics). */
  timeout: Json;
  memorySize: Json;
  environment: JsonObject;
  buildMethod?: string;
  buildProperties?: JsonObject;
}

export function templateFunctions(template: Template): TemplateFunction[] {
  const globals = template.Globals?.Function ?? {};
  return Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::Serverless::Function')
    .map(([logicalId, resource]) => {
      const properties = mergeGlobals(globals, resource.Properties ?? {}) as JsonObject;
      const environment = (properties['Environment'] as { Variables?: JsonObject } | undefined)?.Variables ?? {};
      const metadata = resource.Metadata ?? {};
      return {
        logicalId,
        properties,
        handler: String(properties['Handler']),
        codeUri: typeof properties['CodeUri'] === 'string' ? properties['CodeUri'] : '.',
        runtime: String(properties['Runtime']),
        timeout: properties['Timeout'] ?? 3,
        memorySize: properties['MemorySize'] ?? 128,
        environment,
        ...(typeof metadata['BuildMethod'] === 'string' ? { buildMethod: metadata['BuildMethod'] } : {}),
        ...(isObject(metadata['BuildProperties']) ? { buildProperties: metadata['BuildProperties'] } : {}),
      };
    });
}

/** A layer `sam build` builds with its makefile builder (`make build-<LogicalId>` in ContentUri, ARTIFACTS_DIR set). */
export interface TemplateLayer {
  logicalId: string;
  /** Absolute folder holding its Makefile. */
  contentUri: string;
  /** Metadata.BuildArchitecture: the architecture its binaries are for (Lambda's name: arm64, x86_64). */
  buildArchitecture: string;
}

export function templateLayers(template: Template): TemplateLayer[] {
  return Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::Serverless::LayerVersion')
    .map(([logicalId, resource]) => {
      const metadata = resource.Metadata ?? {};
      if (metadata['BuildMethod'] !== 'makefile') throw new Error(`${logicalId}: only layers with Metadata.BuildMethod makefile are supported by tools/template.ts`);
      return { logicalId, contentUri: resolve(ROOT, String(resource.Properties?.['ContentUri'])), buildArchitecture: String(metadata['BuildArchitecture'] ?? 'x86_64') };
    });
}

/** The logical IDs of the template's layers a function lists (Layers: [!Ref X]). */
export function functionLayerIds(fn: TemplateFunction): string[] {
  const layers = fn.properties['Layers'];
  if (layers === undefined) return [];
  if (!Array.isArray(layers)) throw new Error(`${fn.logicalId}: Layers must be a list`);
  return layers.map((layer) => {
    if (!isObject(layer) || typeof layer['Ref'] !== 'string') throw new Error(`${fn.logicalId}: Layers are !Ref to the template's own layers here`);
    return layer['Ref'];
  });
}

/** npm's --cpu for a Lambda architecture, or for this machine's (process.arch). */
export function npmCpuOf(architecture: string): string {
  if (architecture === 'arm64') return 'arm64';
  if (architecture === 'x86_64' || architecture === 'x64') return 'x64';
  throw new Error(`no npm cpu for the architecture ${JSON.stringify(architecture)}`);
}

export function templateFunction(template: Template, logicalId: string): TemplateFunction {
  const fn = templateFunctions(template).find((f) => f.logicalId === logicalId);
  if (!fn) {
    const known = templateFunctions(template).map((f) => f.logicalId);
    throw new Error(`no function ${JSON.stringify(logicalId)} in template.yaml (functions: ${known.join(', ')})`);
  }
  return fn;
}

// --- esbuild, the way `sam build` (aws-lambda-builders' NodejsNpmEsbuildBuilder) runs it ---------

/** The esbuild build of one function: its entry points (absolute) and options. */
export interface EsbuildPlan {
  entryPoints: string[];
  options: BuildOptions;
}

function list(name: string, value: Json): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new Error(`BuildProperties.${name} must be a list of strings`);
  return value;
}

/** "a=b" items (Loader, OutExtension, Banner) as esbuild's map form. */
function pairs(name: string, value: Json): Record<string, string> {
  return Object.fromEntries(
    list(name, value).map((item) => {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new Error(`BuildProperties.${name}: ${JSON.stringify(item)} is not of the form key=value`);
      return [item.slice(0, eq), item.slice(eq + 1)];
    }),
  );
}

/**
 * BuildProperties SAM consumes itself and never passes to esbuild (aws-lambda-builders:
 * ESBUILD_IGNORE_VALUES), in the template's PascalCase.
 */
const SAM_ONLY_PROPERTIES = new Set(['EntryPoints', 'UseNpmCi']);

/**
 * SAM's esbuild command for a function: `esbuild --bundle --platform=node --outdir=<artifact>`
 * plus its BuildProperties, with SAM's defaults (target es2020, format cjs, minify) where a
 * property is absent. A property this does not know is an error, so the local build can never
 * silently differ from `sam build` (test/sam-build.test.ts runs SAM's command line itself).
 */
export function esbuildPlan(fn: TemplateFunction): EsbuildPlan {
  if (fn.buildMethod !== 'esbuild' || !fn.buildProperties) throw new Error(`${fn.logicalId}: Metadata.BuildMethod is not esbuild`);
  const props = fn.buildProperties;
  const options: BuildOptions = { bundle: true, platform: 'node', target: 'es2020', format: 'cjs', minify: true };
  for (const [name, value] of Object.entries(props)) {
    switch (name) {
      case 'EntryPoints':
        list(name, value);
        break;
      case 'UseNpmCi':
        if (typeof value !== 'boolean') throw new Error(`${fn.logicalId}: BuildProperties.UseNpmCi must be true or false`);
        break;
      case 'Format':
        options.format = value as BuildOptions['format'];
        break;
      case 'Target':
        options.target = String(value);
        break;
      case 'Minify':
        options.minify = value === true;
        break;
      case 'Sourcemap':
        options.sourcemap = value === true;
        break;
      case 'External':
        options.external = list(name, value);
        break;
      case 'Loader':
        options.loader = pairs(name, value) as BuildOptions['loader'];
        break;
      case 'OutExtension':
        options.outExtension = pairs(name, value);
        break;
      case 'Banner':
        options.banner = pairs(name, value);
        break;
      default:
        throw new Error(`${fn.logicalId}: BuildProperties.${name} is not supported by tools/template.ts (add it to esbuildPlan when the template needs it)`);
    }
  }
  const entryPoints = list('EntryPoints', props['EntryPoints']);
  if (entryPoints.length === 0) throw new Error(`${fn.logicalId}: BuildProperties.EntryPoints is empty`);
  const codeUri = resolve(ROOT, fn.codeUri);
  return { entryPoints: entryPoints.map((entry) => join(codeUri, entry)), options: { ...options, absWorkingDir: codeUri } };
}

/**
 * The esbuild command line `sam build` runs for a function, argument for argument as
 * aws-lambda-builders 1.63 builds it (workflows/nodejs_npm_esbuild/esbuild.py,
 * EsbuildCommandBuilder): entry points, then `--bundle --platform=node --outdir=<outdir>` and
 * the defaults for absent Target/Format/Minify, then each property with its PascalCase name
 * turned into kebab-case: true -> `--name`, false -> nothing, a string -> `--name=value`, a list
 * -> `--name:item` per item. EntryPoints and UseNpmCi are SAM's own.
 */
export function samEsbuildArgs(fn: TemplateFunction, outdir: string): string[] {
  if (fn.buildMethod !== 'esbuild' || !fn.buildProperties) throw new Error(`${fn.logicalId}: Metadata.BuildMethod is not esbuild`);
  const props = fn.buildProperties;
  // SAM CLI: PascalCase -> snake_case (BUILD_PROPERTIES_PASCAL_TO_SNAKE_CASE_PATTERN); the builder: _ -> -.
  const flag = (name: string): string => name.replace(/(?<!^)(?=[A-Z])/g, '-').toLowerCase();
  const args = [...list('EntryPoints', props['EntryPoints']), '--bundle', '--platform=node', `--outdir=${outdir}`];
  if (!('Target' in props)) args.push('--target=es2020');
  if (!('Format' in props)) args.push('--format=cjs');
  if (!('Minify' in props)) args.push('--minify');
  for (const [name, value] of Object.entries(props)) {
    if (SAM_ONLY_PROPERTIES.has(name)) continue;
    if (typeof value === 'boolean') args.push(...(value ? [`--${flag(name)}`] : []));
    else if (typeof value === 'string' || typeof value === 'number') args.push(`--${flag(name)}=${value}`);
    else args.push(...list(name, value).map((item) => `--${flag(name)}:${item}`));
  }
  return args;
}

// --- intrinsic functions, resolved the way `sam local` does -------------------------------------

export interface ResolveContext {
  /** Parameter values (defaults, then overrides). */
  parameters: Record<string, string>;
  region: string;
  accountId: string;
}

export function localContext(template: Template, overrides: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env): ResolveContext {
  const parameters: Record<string, string> = {};
  for (const [name, parameter] of Object.entries(template.Parameters ?? {})) {
    if (parameter.Default !== undefined) parameters[name] = String(parameter.Default);
  }
  return {
    parameters: { ...parameters, ...overrides },
    region: env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
    accountId: '123456789012',
  };
}

/** The pseudo parameters the template uses. */
function pseudoParameter(name: string, ctx: ResolveContext): string | undefined {
  switch (name) {
    case 'AWS::Partition':
      return 'aws';
    case 'AWS::Region':
      return ctx.region;
    case 'AWS::AccountId':
      return ctx.accountId;
    default:
      return undefined;
  }
}

function ref(name: string, template: Template, ctx: ResolveContext): string {
  const pseudo = pseudoParameter(name, ctx);
  if (pseudo !== undefined) return pseudo;
  if (name in ctx.parameters) return ctx.parameters[name]!;
  if (template.Parameters && name in template.Parameters) throw new Error(`parameter ${name} has no Default: give it a value`);
  // A queue's Ref is its URL (local tools give RENDER_QUEUE_URL their own, via --env-vars or the shell).
  if (template.Resources[name]?.Type === 'AWS::SQS::Queue') return `https://sqs.${ctx.region}.amazonaws.com/${ctx.accountId}/${name}`;
  // Any other resource: locally its name is its logical ID (what `sam local` uses as the function name).
  if (name in template.Resources) return name;
  throw new Error(`!Ref ${name}: no such parameter or resource`);
}

function getAtt(logicalId: string, attribute: string, template: Template, ctx: ResolveContext): string {
  const type = template.Resources[logicalId]?.Type;
  if (!type) throw new Error(`!GetAtt ${logicalId}.${attribute}: no such resource`);
  if (attribute === 'Arn') {
    if (type === 'AWS::Serverless::Function') return `arn:aws:lambda:${ctx.region}:${ctx.accountId}:function:${logicalId}`;
    if (type === 'AWS::SQS::Queue') return `arn:aws:sqs:${ctx.region}:${ctx.accountId}:${logicalId}`;
    // Locally a role's name is its logical ID, like a function's.
    if (type === 'AWS::IAM::Role') return `arn:aws:iam::${ctx.accountId}:role/${logicalId}`;
  }
  throw new Error(`!GetAtt ${logicalId}.${attribute} is not supported locally`);
}

/** AWS::NoValue: the property (or list item) it stands for is removed. */
const NO_VALUE = Symbol('AWS::NoValue');

/** A condition of the template's Conditions section, for the context's parameters. */
export function conditionHolds(name: string, template: Template, ctx: ResolveContext): boolean {
  const expression = (template['Conditions'] as JsonObject | undefined)?.[name];
  if (expression === undefined) throw new Error(`condition ${name}: not in the template's Conditions`);
  const holds = resolveIntrinsics(expression, template, ctx);
  if (typeof holds !== 'boolean') throw new Error(`condition ${name} is not a Fn::Equals/Fn::Not expression`);
  return holds;
}

/** Resolves Ref, Fn::Sub (both forms), Fn::GetAtt, Fn::If (the template's Conditions), Fn::Equals and Fn::Not in a template value. */
export function resolveIntrinsics(value: Json, template: Template, ctx: ResolveContext): Json {
  const resolved = resolveValue(value, template, ctx);
  return resolved === NO_VALUE ? undefined : resolved;
}

function resolveValue(value: Json, template: Template, ctx: ResolveContext): Json | typeof NO_VALUE {
  if (Array.isArray(value)) return value.map((v) => resolveValue(v, template, ctx)).filter((v) => v !== NO_VALUE);
  if (!isObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'))) {
    const fn = keys[0]!;
    const arg = value[fn];
    switch (fn) {
      case 'Ref':
        if (arg === 'AWS::NoValue') return NO_VALUE;
        return ref(String(arg), template, ctx);
      case 'Fn::If': {
        const [condition, whenTrue, whenFalse] = arg as [string, Json, Json];
        return resolveValue(conditionHolds(condition, template, ctx) ? whenTrue : whenFalse, template, ctx);
      }
      case 'Fn::Equals': {
        const [a, b] = (arg as Json[]).map((v) => resolveIntrinsics(v, template, ctx));
        return String(a) === String(b);
      }
      case 'Fn::Not':
        return !(resolveIntrinsics((arg as Json[])[0], template, ctx) as boolean);
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = Array.isArray(arg) ? (arg as string[]) : splitGetAtt(String(arg));
        return getAtt(String(logicalId), String(attribute), template, ctx);
      }
      case 'Fn::Sub': {
        // !Sub 'string', or !Sub ['string', {Variable: value}].
        const [text, variables] = typeof arg === 'string' ? [arg, {}] : (arg as [string, JsonObject]);
        if (typeof text !== 'string' || !isObject(variables)) throw new Error(`!Sub ${JSON.stringify(arg)}: expected a string or [string, {variables}]`);
        return text.replace(/\$\{(!?)([^}]+)\}/g, (_whole, literal: string, name: string) => {
          if (literal) return `\${${name}}`;
          if (name in variables) return String(resolveIntrinsics(variables[name], template, ctx));
          if (name.includes('.') && !name.startsWith('AWS::')) return getAtt(...splitGetAtt(name), template, ctx);
          return ref(name, template, ctx);
        });
      }
      default:
        throw new Error(`${fn} is not supported locally`);
    }
  }
  const resolved: JsonObject = {};
  for (const [key, v] of Object.entries(value)) {
    const r = resolveValue(v, template, ctx);
    if (r !== NO_VALUE) resolved[key] = r;
  }
  return resolved;
}

/** A function's environment variables with intrinsics resolved, as strings (what Lambda sets). */
export function resolvedEnvironment(fn: TemplateFunction, template: Template, ctx: ResolveContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(fn.environment)) {
    const resolved = resolveIntrinsics(value, template, ctx);
    env[name] = typeof resolved === 'string' ? resolved : typeof resolved === 'number' || typeof resolved === 'boolean' ? String(resolved) : JSON.stringify(resolved);
  }
  return env;
}
