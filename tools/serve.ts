/**
 * npm run serve -- [file.pdf…] [--port 8787] [--containers 1] [--signed]
 *
 * The page function's URL on loopback: starts a local S3 and SSM (moto_server) unless
 * AWS_ENDPOINT_URL (or its alias S3_ENDPOINT) is set, creates the template's bucket, uploads each PDF under incoming/, builds
 * the PageFunction artifact, and serves http://127.0.0.1:<port>/ by turning each HTTP request
 * into the Function URL event AWS would send (tools/function-url.ts) for a warm Lambda
 * container of the built artifact (tools/lambda-container.ts: the template's environment,
 * memory and /tmp of its own), one request per container at a time as Lambda does. curl and a
 * browser follow its 302 to the presigned GET on the local S3. With --signed the URL behaves
 * as a public one (PageUrlAuthType NONE): a random secret is put in the local SSM and only
 * signed URLs are served (the printed curl lines are signed; `npm run sign-url`, with the
 * PAGE_SIGNING_SECRET printed, signs others). Flags, files and the port are checked before
 * anything starts; whatever way it ends, what it started stops (tools/cleanup.ts). Without
 * it, requests are served as AWS_IAM would after SigV4 checked them: unsigned.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { everyService, readEndpoints } from '../lib/aws/endpoint.js';
import { parseIntSetting } from '../lib/config/settings.js';
import type { PageResult } from '../lib/on-demand/handler.js';
import { createS3Client } from '../lib/s3/client.js';
import { createSsmClient } from '../lib/ssm/client.js';
import { buildAll } from './build.js';
import { functionUrlEvent } from './function-url.js';
import { LambdaContainer } from './lambda-container.js';
import { runTool, UsageError } from './cleanup.js';
import { motoAvailable, MOTO_INSTALL_HINT, startMoto } from './moto.js';
import { makeToken } from '../lib/iiif/token.js';
import { signedPath } from './sign-url.js';
import { localContext, loadTemplate, templateFunction } from './template.js';

const USAGE = 'usage: npm run serve -- [file.pdf…] [--port 8787 (0: any free port)] [--containers 1] [--signed]';
const SIGNING_PARAMETER = '/s3-pdf-render/local-url-secret';

/** Warm containers, each taking one request at a time; requests wait for a free one. */
class ContainerPool {
  private readonly idle: LambdaContainer[];
  private readonly waiting: ((container: LambdaContainer) => void)[] = [];
  constructor(readonly all: LambdaContainer[]) {
    this.idle = [...all];
  }
  async invoke(event: unknown): Promise<Awaited<ReturnType<LambdaContainer['invoke']>>> {
    const container = this.idle.pop() ?? (await new Promise<LambdaContainer>((resolve) => this.waiting.push(resolve)));
    try {
      return await container.invoke(event);
    } finally {
      const next = this.waiting.shift();
      if (next) next(container);
      else this.idle.push(container);
    }
  }
}

/** Listens on `port` at once (before anything starts), so a busy port is one line that says what to do. */
async function listen(port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const http = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    http.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new UsageError(`port ${port} is busy (127.0.0.1:${port}): choose another with --port N`) : err),
    );
    http.listen(port, '127.0.0.1', resolve);
  });
  return http;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: 'string', default: '8787' },
      containers: { type: 'string', default: '1' },
      signed: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.error(USAGE);
    return 0;
  }
  // Every flag and file checked, and the port taken, before moto starts or the bundle is built.
  const port = parseIntSetting('--port', values.port, 0, 65535);
  const count = parseIntSetting('--containers', values.containers, 1, 8);
  for (const file of positionals) {
    const found = await stat(file).catch(() => undefined);
    if (!found?.isFile()) throw new UsageError(`${file}: no such file`);
  }
  let pool: ContainerPool | undefined;
  const http = await listen(port, (req, res) => {
    if (!pool) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('starting: the PageFunction bundle is being built\n');
      return;
    }
    const headers = Object.fromEntries(Object.entries(req.headers).flatMap(([k, v]) => (v === undefined ? [] : [[k, Array.isArray(v) ? v.join(',') : v]])));
    pool
      .invoke(functionUrlEvent(req.method ?? 'GET', req.url ?? '/', headers, req.socket.remoteAddress ?? '127.0.0.1'))
      .then((outcome) => {
        if (!outcome.ok) {
          // What a Function URL answers when the function itself fails.
          res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ Message: 'Internal Server Error', error: outcome.payload }));
          return;
        }
        const result = outcome.payload as PageResult;
        const body = result.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
        res.writeHead(result.statusCode ?? 200, result.headers as Record<string, string>).end(body);
      })
      .catch((err: unknown) => res.writeHead(502).end(String(err)));
  });

  // AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3, or the alias S3_ENDPOINT): another local server; else moto.
  let endpoint = readEndpoints(process.env).S3;
  if (!endpoint) {
    if (!motoAvailable()) throw new Error(MOTO_INSTALL_HINT);
    endpoint = (await startMoto()).endpoint;
    console.error(`local S3 and SSM (moto_server) on ${endpoint}`);
  }
  const template = loadTemplate();
  const fn = templateFunction(template, 'PageFunction');
  const { BucketName: bucket, InputPrefix: inputPrefix } = localContext(template).parameters as { BucketName: string; InputPrefix: string };
  const s3 = createS3Client({ endpoints: everyService(endpoint) });
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((err: Error) => {
    if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
  });
  const keys: string[] = [];
  for (const file of positionals) {
    const key = `${inputPrefix}${basename(file)}`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(file), ContentType: 'application/pdf' }));
    keys.push(key);
    console.error(`uploaded s3://${bucket}/${key}`);
  }
  // --port 0: a free port, as the system chose it.
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const extraEnv: Record<string, string> = {
    AWS_ENDPOINT_URL: endpoint,
    // IIIF ids name this server, not a Function URL's https domain (docs/iiif.md); IIIF_DPI and
    // MAX_PAGE_PIXELS pass through (a 30000 px page's full image needs the latter raised).
    IIIF_BASE_URL: base,
    ...Object.fromEntries(['IIIF_DPI', 'MAX_PAGE_PIXELS'].flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : []))),
    // The SDK signs even local requests: give it something to sign with.
    ...(process.env['AWS_ACCESS_KEY_ID'] || process.env['AWS_PROFILE'] ? {} : { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' }),
  };
  let secret: string | undefined;
  if (values.signed) {
    secret = randomBytes(32).toString('base64url');
    await createSsmClient({ endpoints: everyService(endpoint) }).send(new PutParameterCommand({ Name: SIGNING_PARAMETER, Value: secret, Type: 'SecureString', Overwrite: true }));
    Object.assign(extraEnv, { PAGE_URL_AUTH_TYPE: 'NONE', PAGE_SIGNING_PARAMETER: SIGNING_PARAMETER });
  }

  console.error('building the PageFunction bundle…');
  await buildAll({ only: ['PageFunction'] });
  const started = await Promise.all(Array.from({ length: count }, () => LambdaContainer.start(template, fn, { extraEnv })));
  const failed = started.find((s) => s.initError);
  if (failed) throw new Error(`PageFunction did not start: ${JSON.stringify(failed.initError!.payload)}`);
  pool = new ContainerPool(started.map((s) => s.container));

  console.error(`\nPageFunction on ${base} (${count} container${count === 1 ? '' : 's'}, ${values.signed ? 'signed URLs only' : 'unsigned, as AWS_IAM after SigV4'}); Ctrl-C stops it.`);
  const example: [string, string][] = [
    ['page', '1'],
    ['width', '800'],
  ];
  for (const key of keys) {
    // With --signed, a URL signed with the secret just made (an hour), as `npm run sign-url` signs it.
    const path = secret ? signedPath(secret, key, example, Math.floor(Date.now() / 1000) + 3600) : `/${encodeURIComponent(key)}?${new URLSearchParams(example)}`;
    console.error(`  curl -sL -o page.png '${base}${path}'`);
    // IIIF: the manifest (Mirador, Universal Viewer) and page 1's info.json (OpenSeadragon).
    const token = secret ? `~${makeToken(secret, key, Math.floor(Date.now() / 1000) + 3600)}/` : '';
    console.error(`  IIIF manifest:  ${base}/iiif/3/${token}${encodeURIComponent(key)}/manifest`);
    console.error(`  IIIF info.json: ${base}/iiif/3/${token}${encodeURIComponent(key)};1/info.json`);
  }
  if (secret) console.error(`  more: PAGE_SIGNING_SECRET=${secret} npm run sign-url -- <key> --page 1 --width 800 --base-url ${base}`);
  // Until Ctrl-C or SIGTERM: runTool stops the containers and moto then.
  await new Promise<void>((resolve) => http.once('close', resolve));
  return 0;
}

runTool(main);
