/** The bundled render handler (npm run build), loaded as a fresh Lambda container would load it. */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SQSEvent } from 'aws-lambda';
import { vi } from 'vitest';

export type BundledHandler = (
  event: SQSEvent,
  context: { awsRequestId: string; getRemainingTimeInMillis: () => number },
) => Promise<{ batchItemFailures?: { itemIdentifier: string }[]; records?: { outcome: string; status?: string }[] }>;

let loads = 0;

/** A new module instance configured from `env`: the configuration is read (and validated) when the module is evaluated. */
export async function loadBundledHandler(bundle: string, env: Record<string, string>): Promise<BundledHandler> {
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  try {
    const module = (await import(`${pathToFileURL(join(bundle, 'handler.mjs')).href}?container=${++loads}`)) as { handler: BundledHandler };
    return module.handler;
  } finally {
    vi.unstubAllEnvs();
  }
}
