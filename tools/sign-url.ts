/**
 * npm run sign-url -- <key> [--page N] [--width W] [--height H] [--dpi D] [--format png|jpeg|webp]
 *                          [--quality Q] [--expires SECONDS] [--base-url URL] [--parameter NAME]
 * npm run sign-url -- <key> --iiif [--expires SECONDS] [--base-url URL] [--parameter NAME]
 *
 * With --iiif: the document's IIIF Presentation manifest URL with a document token in its path
 * (lib/iiif/token.ts), /iiif/3/~{token}/{key}/manifest: every image and tile URL a viewer
 * derives from it carries the token, until it expires.
 *
 * A signed page URL for a page function whose Function URL is public (PageUrlAuthType NONE):
 * the path and query, with `expires` (now + --expires seconds, default 3600) and `signature`
 * (lib/on-demand/signature.ts, the function's own rule). Prefixed with --base-url (the stack's
 * PageFunctionUrl output) when given. The secret comes from PAGE_SIGNING_SECRET, or else from
 * the SSM parameter --parameter (or PAGE_SIGNING_PARAMETER), read with the shell's AWS
 * credentials (AWS_ENDPOINT_URL or S3_ENDPOINT point it at a local server, as every tool here);
 * its first line is the signing secret (lib/on-demand/secret.ts).
 *
 * It refuses what the function would refuse, with the function's own checks: an expiry more
 * than SIGNED_URL_MAX_SECONDS ahead (default 7 days; set it as the stack's SignedUrlMaxSeconds),
 * a key outside INPUT_PREFIX or not ending .pdf, an invalid page or option, a secret shorter
 * than 16 characters.
 */
import { parseArgs } from 'node:util';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { readEndpoints } from '../lib/aws/endpoint.js';
import { loadConfig } from '../lib/config/env.js';
import { MAX_SIGNED_URL_MAX_SECONDS } from '../lib/config/page.js';
import { parseIntSetting } from '../lib/config/settings.js';
import { makeToken } from '../lib/iiif/token.js';
import { HttpError } from '../lib/on-demand/errors.js';
import { parseKey, parseOptions } from '../lib/on-demand/request.js';
import { parseSecrets } from '../lib/on-demand/secret.js';
import { DEFAULT_SIGNED_URL_MAX_SECONDS, expiryProblem, sign } from '../lib/on-demand/signature.js';
import { createSsmClient } from '../lib/ssm/client.js';

const USAGE =
  'usage: npm run sign-url -- <key> [--page N] [--width W] [--height H] [--dpi D] [--format png|jpeg|webp] [--quality Q] [--expires SECONDS] [--base-url URL] [--parameter NAME]\n' +
  '       npm run sign-url -- <key> --iiif [--expires SECONDS] [--base-url URL] [--parameter NAME]';

/** The signed path and query for `key` (decoded, e.g. incoming/a.pdf) with `options` (page, width…), valid until `expires` (Unix seconds). */
export function signedPath(secret: string, key: string, options: [string, string][], expires: number): string {
  const params: [string, string][] = [...options, ['expires', String(expires)]];
  const query = new URLSearchParams([...params, ['signature', sign(secret, key, params)]]);
  return `/${encodeURIComponent(key)}?${query}`;
}

/**
 * The signed path, after the checks the function makes: the key, the options, the expiry
 * (`lifetime` seconds from `nowMs`, at most SIGNED_URL_MAX_SECONDS) and the secret. Throws an
 * Error whose message says what the function would answer, and why.
 */
export function checkedSignedPath(
  secret: string,
  key: string,
  options: [string, string][],
  lifetime: number,
  env: Record<string, string | undefined> = process.env,
  nowMs: number = Date.now(),
): string {
  const [signing] = parseSecrets(secret, 'the secret');
  const maxSeconds = env['SIGNED_URL_MAX_SECONDS'] ? parseIntSetting('SIGNED_URL_MAX_SECONDS', env['SIGNED_URL_MAX_SECONDS'], 60, MAX_SIGNED_URL_MAX_SECONDS) : DEFAULT_SIGNED_URL_MAX_SECONDS;
  if (!Number.isInteger(lifetime) || lifetime < 1) throw new Error(`--expires ${lifetime}: expected a whole number of seconds`);
  const expires = Math.floor(nowMs / 1000) + lifetime;
  const problem = expiryProblem(String(expires), nowMs, maxSeconds);
  if (problem) throw new Error(`--expires ${lifetime}: the function would answer 403 ${problem.code}: ${problem.message}`);
  try {
    const config = loadConfig(env);
    parseKey(encodeURIComponent(key), config);
    parseOptions(options, config.output);
  } catch (err) {
    if (err instanceof HttpError) throw new Error(`the function would answer ${err.status} ${err.code}: ${err.message}`);
    throw err;
  }
  return signedPath(signing!, key, options, expires);
}

/**
 * A IIIF manifest URL's path with a document token (lib/iiif/token.ts) for `key`, valid for
 * `lifetime` seconds: the key and the lifetime checked as for a page URL (checkedSignedPath).
 */
export function checkedIiifManifestPath(secret: string, key: string, lifetime: number, env: Record<string, string | undefined> = process.env, nowMs: number = Date.now()): string {
  checkedSignedPath(secret, key, [], lifetime, env, nowMs);
  const [signing] = parseSecrets(secret, 'the secret');
  return `/iiif/3/~${makeToken(signing!, key, Math.floor(nowMs / 1000) + lifetime)}/${encodeURIComponent(key)}/manifest`;
}

async function secretFrom(parameter: string | undefined): Promise<string> {
  const fromEnv = process.env['PAGE_SIGNING_SECRET'];
  if (fromEnv) return fromEnv;
  if (!parameter) throw new Error('no secret: set PAGE_SIGNING_SECRET, or name the SSM parameter with --parameter (or PAGE_SIGNING_PARAMETER)');
  const ssm = createSsmClient({ endpoints: readEndpoints() });
  const response = await ssm.send(new GetParameterCommand({ Name: parameter, WithDecryption: true }));
  const value = response.Parameter?.Value;
  if (!value) throw new Error(`SSM parameter ${parameter} has no value`);
  return value;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      page: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      dpi: { type: 'string' },
      format: { type: 'string' },
      quality: { type: 'string' },
      expires: { type: 'string', default: '3600' },
      'base-url': { type: 'string' },
      parameter: { type: 'string' },
      iiif: { type: 'boolean', default: false },
    },
  });
  const [key] = positionals;
  if (!key || positionals.length > 1) throw new Error(USAGE);
  const lifetime = Number(values.expires);
  if (!Number.isInteger(lifetime) || lifetime < 1) throw new Error(`--expires ${values.expires}: expected a whole number of seconds`);
  // Any order signs the same; the values are checked as the function checks them (checkedSignedPath).
  const options = (['page', 'width', 'height', 'dpi', 'format', 'quality'] as const).flatMap((name): [string, string][] => (values[name] === undefined ? [] : [[name, values[name]!]]));
  if (values.iiif && options.length > 0) throw new Error(`--iiif signs a whole document: --${options[0]![0]} does not apply\n${USAGE}`);
  const secret = await secretFrom(values.parameter ?? process.env['PAGE_SIGNING_PARAMETER']);
  const path = values.iiif ? checkedIiifManifestPath(secret, key, lifetime) : checkedSignedPath(secret, key, options, lifetime);
  const base = values['base-url']?.replace(/\/+$/, '');
  process.stdout.write(`${base ?? ''}${path}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
