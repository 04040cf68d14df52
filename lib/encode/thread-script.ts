/**
 * Where a worker thread's script is. Deployed, every thread's entry is bundled beside the
 * handler (render-worker.mjs: template.yaml's EntryPoints). From source (tests,
 * scripts) it is the TypeScript file, loaded through tsx's loader registered inside the thread.
 * Here, in lib/encode/, where the encoder threads once were; the engine starts its MuPDF workers with it.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ThreadScript {
  script: URL | string;
  eval: boolean;
}

/**
 * `bundled`: the entry's file name beside the bundle; `source`: its module, as the caller
 * resolves it (`new URL('./worker/main.ts', import.meta.url)`), used only when running from source.
 */
export function threadScript(bundled: string, source: URL): ThreadScript {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL(`./${bundled}`, import.meta.url), eval: false };
  const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxRoot, 'dist/esm/api/index.mjs')).href;
  return { script: `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(source.href)});`, eval: true };
}
