/**
 * Breaking the function on purpose, to show the soak can fail (SOAK_BREAK=<name> npm run soak).
 * The switch patches a copy of the built bundle, never the source: nothing in lib/ reads it, so
 * no deployed artifact can carry it, and no production code path has a branch for it. Each
 * patch must match the bundle exactly once; when a refactor moves the code it aims at, the soak
 * says so instead of silently running unbroken.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type BrokenFunction = 'RenderPdfFunction' | 'PageFunction' | 'ReprocessFunction';

interface Break {
  /** The function whose bundle is patched (default: the render function). */
  fn?: BrokenFunction;
  pattern: RegExp;
  replacement: string;
}

export const BREAKS = {
  /** The clean-up after a commit deletes the committed generation's own files too. */
  'cleanup-deletes-current': {
    pattern: /generation===(\w+)\.generation\?\1\.final&&/g,
    replacement: 'generation===$1.generation?!0||$1.final&&',
  },
  /** The manifest PUT without its compare-and-swap (no If-Match, no If-None-Match). */
  'commit-without-if-match': {
    pattern: /\?\{IfNoneMatch:"\*"\}:\{IfMatch:\w+\}/g,
    replacement: '?{}:{}',
  },
  /** A won compare-and-swap never announced (the message then succeeds, so no redelivery repairs it): a final commit without its event. */
  'announce-nothing': {
    pattern: /this\.expectedEtag=(\w+),await this\.finish\((\w+),this\.announcer\?\.committed\(\2,\1\)\),"committed"/g,
    replacement: 'this.expectedEtag=$1,await this.finish($2,void 0),"committed"',
  },
  /** Every copy of an event with an id of its own (renderIdOf made random): "one renderId per commit" goes red where an event is sent twice. */
  'renderid-per-copy': {
    pattern: /return`\$\{(\w+)\.generation\}-\$\{\1\.status\}-\$\{(\w+)\((\w+)\)\}`/g,
    replacement: 'return`${$1.generation}-${$1.status}-${$2($3)}-${Math.random().toString(36).slice(2,8)}`',
  },
  /** Event keys taken without their URL decoding: keys with a space or "%" are never found by their own event (the settle pass renders them). */
  'event-key-undecoded': {
    pattern: /return decodeURIComponent\((\w)\.replace\(\/\\\+\/g," "\)\)\}/g,
    replacement: 'return $1}',
  },
  /** The page function's variants named without the source's etag: a re-uploaded key is served its old image, and old variants outlive the clean-up. */
  'variant-any-etag': {
    fn: 'PageFunction',
    pattern: /return`\$\{(\w+)\((\w+),(\w+)\((\w+)\)\)\}variant-/g,
    replacement: 'return`${$1($2,$3(""))}variant-',
  },
  /** The clean-up's pattern without page variants: an old source's variants stay behind. */
  'cleanup-keeps-variants': {
    pattern: /\|variant-\\\\d\{4,\}-\[0-9a-f\]\{16\}\\\\\.\(\?:\$\{\w+\}\)/g,
    replacement: '',
  },
  /** info.json one pixel wider than the page's full image at IIIF_DPI (a viewer's tiles then ask past the page's edge). */
  'iiif-info-off-by-one': {
    fn: 'PageFunction',
    pattern: /profile:"level2",width:(\w+)\.width,height:\1\.height,/g,
    replacement: 'profile:"level2",width:$1.width+1,height:$1.height,',
  },
  /** IIIF images stored in one folder whatever the source's etag: a re-uploaded key is served its old tiles, and they outlive the clean-up. */
  'iiif-tile-any-etag': {
    fn: 'PageFunction',
    pattern: /key:`\$\{(\w+)\}iiif-\$\{String\((\w+)\.page\)/g,
    replacement: 'key:`${$1.replace(/[0-9a-f]{16}\\/$/,"0000000000000000/")}iiif-${String($2.page)',
  },
  /** The IIIF manifest without seeAlso: the page text the eager render wrote is never linked. */
  'iiif-manifest-no-text': {
    fn: 'PageFunction',
    pattern: /\.\.\.\w+\.text\?\{seeAlso:/g,
    replacement: '...!1?{seeAlso:',
  },
  /** The schedule and the batch task classify every up-to-date render as stale: dispatched, then skipped as up to date. */
  'dispatch-up-to-date': {
    fn: 'ReprocessFunction',
    pattern: /\{class:"ok",dispatch:!1,reason:"up to date"\}/g,
    replacement: '{class:"stale",dispatch:!0,reason:"up to date"}',
  },
  /** Each batch task's result given twice in the function's answer. */
  'batch-result-twice': {
    fn: 'ReprocessFunction',
    pattern: /invocationId:(\w+)\.invocationId,results:(\w+)\}\)/g,
    replacement: 'invocationId:$1.invocationId,results:[...$2,...$2]})',
  },
} as const satisfies Record<string, Break>;

export type BreakName = keyof typeof BREAKS;

export function isBreakName(name: string): name is BreakName {
  return Object.hasOwn(BREAKS, name);
}

/** The function a break patches. */
export function breakTarget(name: BreakName): BrokenFunction {
  return (BREAKS[name] as Break).fn ?? 'RenderPdfFunction';
}

/** A copy of the artifact in `artifactDir` (the break's function's) with `name` applied to its handler, under `workDir`. */
export async function brokenArtifact(artifactDir: string, workDir: string, name: BreakName): Promise<string> {
  const target = join(workDir, `broken-${name}`);
  await cp(artifactDir, target, { recursive: true });
  const file = join(target, 'handler.mjs');
  const code = await readFile(file, 'utf8');
  const { pattern, replacement } = BREAKS[name];
  const matches = code.match(pattern)?.length ?? 0;
  if (matches !== 1) throw new Error(`SOAK_BREAK=${name}: the pattern ${pattern} matches the bundle ${matches} times, not once: update tools/soak/break.ts`);
  await writeFile(file, code.replace(pattern, replacement));
  return target;
}
