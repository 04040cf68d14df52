/**
 * vitest globalSetup: one moto_server (a real S3-compatible server) on a free loopback port for
 * the whole run, stopped at teardown. Tests get its endpoint with inject('s3Endpoint') and
 * reset it between tests (test/support/s3.ts).
 */
import type { TestProject } from 'vitest/node';
import { startMoto, type LocalS3 } from '../../tools/moto.js';
import { missingToolsMessage } from './required-tools.js';

let server: LocalS3 | undefined;

export async function setup(project: TestProject): Promise<void> {
  const missing = missingToolsMessage();
  if (missing) throw new Error(missing);
  server = await startMoto();
  project.provide('s3Endpoint', server.endpoint);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
  }
}
