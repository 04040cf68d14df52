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
 * credentials (AWS_ENDPOINT_URL or S3_ENDPOINT point it at a local server, as every tool here).
 */
import { parseArgs } from 'node:util';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { readEndpoints } from '../lib/aws/endpoint.js';
import { makeToken } from '../lib/iiif/token.js';
import { sign } from '../lib/on-demand/signature.js';
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
  // The function validates the values; here only their order is ours (any order signs the same).
  const options = (['page', 'width', 'height', 'dpi', 'format', 'quality'] as const).flatMap((name): [string, string][] => (values[name] === undefined ? [] : [[name, values[name]!]]));
  if (values.iiif && options.length > 0) throw new Error(`--iiif signs a whole document: --${options[0]![0]} does not apply\n${USAGE}`);
  const secret = await secretFrom(values.parameter ?? process.env['PAGE_SIGNING_PARAMETER']);
  const expires = Math.floor(Date.now() / 1000) + lifetime;
  const path = values.iiif ? `/iiif/3/~${makeToken(secret, key, expires)}/${encodeURIComponent(key)}/manifest` : signedPath(secret, key, options, expires);
  const base = values['base-url']?.replace(/\/+$/, '');
  process.stdout.write(`${base ?? ''}${path}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
