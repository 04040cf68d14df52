/**
 * Breaking the function on purpose, to show the soak can fail (SOAK_BREAK=<name> npm run soak).
 * The switch patches a copy of the built bundle, never the source: nothing in lib/ reads it, so
 * no deployed artifact can carry it, and no production code path has a branch for it. Each
 * patch must match the bundle exactly once; when a refactor moves the code it aims at, the soak
 * says so instead of silently running unbroken.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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
} as const;

export type BreakName = keyof typeof BREAKS;

export function isBreakName(name: string): name is BreakName {
  return Object.hasOwn(BREAKS, name);
}

/** A copy of the artifact in `artifactDir` with `name` applied to its handler, under `workDir`. */
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
