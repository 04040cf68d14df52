/**
 * npm run serve -- [file.pdf…] [--port 8787] [--containers 1] [--signed]
 *
 * The page function's URL on loopback: starts a local S3 and SSM (moto_server) unless
 * S3_ENDPOINT is set, creates the template's bucket, uploads each PDF under incoming/, builds
 * the PageFunction artifact, and serves http://127.0.0.1:<port>/ by turning each HTTP request
 * into the Function URL event AWS would send (tools/function-url.ts) for a warm Lambda
 * container of the built artifact (tools/lambda-container.ts: the template's environment,
 * memory and /tmp of its own), one request per container at a time as Lambda does. curl and a
 * browser follow its 302 to the presigned GET on the local S3. With --signed the URL behaves
 * as a public one (PageUrlAuthType NONE): a random secret is put in the local SSM and only
 * signed URLs are served (`npm run sign-url`, with the PAGE_SIGNING_SECRET printed). Without
 * it, requests are served as AWS_IAM would after SigV4 checked them: unsigned.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { everyService } from '../lib/aws/endpoint.js';
import type { PageResult } from '../lib/on-demand/handler.js';
import { createS3Client } from '../lib/s3/client.js';
import { createSsmClient } from '../lib/ssm/client.js';
import { buildAll } from './build.js';
import { functionUrlEvent } from './function-url.js';
import { LambdaContainer } from './lambda-container.js';
import { motoAvailable, MOTO_INSTALL_HINT, startMoto, type LocalS3 } from './moto.js';
import { localContext, loadTemplate, templateFunction } from './template.js';

const USAGE = 'usage: npm run serve -- [file.pdf…] [--port 8787] [--containers 1] [--signed]';
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

async function main(): Promise<void> {
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
    return;
  }
  const port = Number(values.port);
  const count = Number(values.containers);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port ${values.port}: expected a TCP port`);
  if (!Number.isInteger(count) || count < 1 || count > 8) throw new Error(`--containers ${values.containers}: expected 1..8`);

  let server: LocalS3 | undefined;
  if (!process.env['S3_ENDPOINT']) {
    if (!motoAvailable()) throw new Error(MOTO_INSTALL_HINT);
    server = await startMoto();
    process.env['S3_ENDPOINT'] = server.endpoint;
    console.error(`local S3 and SSM (moto_server) on ${server.endpoint}`);
  }
  const endpoint = process.env['S3_ENDPOINT']!;
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
  const extraEnv: Record<string, string> = {
    S3_ENDPOINT: endpoint,
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
  const pool = new ContainerPool(started.map((s) => s.container));

  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
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
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${port}`;
  console.error(`\nPageFunction on ${base} (${count} container${count === 1 ? '' : 's'}, ${values.signed ? 'signed URLs only' : 'unsigned, as AWS_IAM after SigV4'}); Ctrl-C stops it.`);
  if (secret) console.error(`  PAGE_SIGNING_SECRET=${secret} npm run sign-url -- <key> --page 1 --width 800 --base-url ${base}`);
  for (const key of keys) console.error(`  curl -sL -o page.png '${base}/${encodeURIComponent(key)}?page=1&width=800'`);

  const stop = async (): Promise<void> => {
    http.close();
    await Promise.all(pool.all.map((c) => c.close()));
    await server?.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
