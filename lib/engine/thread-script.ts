/**
 * Where a worker thread's script is. Deployed, every thread's entry is bundled beside the
 * handler (render-worker.mjs, jpeg-worker.mjs: template.yaml's EntryPoints). From source (tests,
 * scripts) it is the TypeScript file, loaded through tsx's loader registered inside the thread.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ThreadScript {
  script: URL | string;
  eval: boolean;
}

/** `bundled`: the entry's file name beside the bundle; `source`: its module, relative to lib/engine/. */
export function threadScript(bundled: string, source: string): ThreadScript {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL(`./${bundled}`, import.meta.url), eval: false };
  const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxRoot, 'dist/esm/api/index.mjs')).href;
  const entry = new URL(source, import.meta.url).href;
  return { script: `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`, eval: true };
}
