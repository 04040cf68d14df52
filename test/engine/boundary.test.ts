/**
 * The engine stands alone: lib/engine imports only Node's built-ins, mupdf, its own files and
 * the encoders (lib/encode), so the render function's job, the CLI and the benchmark can all
 * drive it, and the two can be lifted out whole. The arrow runs one way: lib/encode imports only
 * Node's built-ins, sharp and its own files, never the engine.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers.js';

const ENGINE = join(REPO_ROOT, 'lib', 'engine');
const ENCODE = join(REPO_ROOT, 'lib', 'encode');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

/** Every import of a file under `dir` that is not a node: built-in, one of `packages`, or a file under one of `inside`. */
function importsOutside(dir: string, inside: string[], packages: (string | RegExp)[]): string[] {
  const outside: string[] = [];
  for (const file of sources(dir)) {
    const text = readFileSync(file, 'utf8');
    for (const [, from, bare] of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'/g)) {
      const specifier = from ?? bare;
      if (!specifier) continue;
      if (specifier.startsWith('node:') || packages.some((p) => (typeof p === 'string' ? p === specifier : p.test(specifier)))) continue;
      const target = specifier.startsWith('.') ? resolve(dirname(file), specifier) : specifier;
      if (!specifier.startsWith('.') || inside.every((folder) => relative(folder, target).startsWith('..'))) outside.push(`${relative(REPO_ROOT, file)}: ${specifier}`);
    }
  }
  return outside;
}

describe('the engine boundary', () => {
  it('lib/engine imports nothing outside lib/engine and lib/encode but node: built-ins and mupdf', () => {
    expect(importsOutside(ENGINE, [ENGINE, ENCODE], ['mupdf'])).toEqual([]);
  });

  it('lib/encode imports nothing outside lib/encode but node: built-ins and sharp: no arrow back up to the engine', () => {
    expect(importsOutside(ENCODE, [ENCODE], [/^sharp$/])).toEqual([]);
  });
});
