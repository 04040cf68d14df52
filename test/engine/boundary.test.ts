/**
 * The engine stands alone: lib/engine imports only Node's built-ins, mupdf and its own files,
 * so the render function's job, the CLI and the benchmark can all drive it, and it can be
 * lifted out whole.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers.js';

const ENGINE = join(REPO_ROOT, 'lib', 'engine');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('the engine boundary', () => {
  it('lib/engine imports nothing outside lib/engine but node: built-ins and mupdf', () => {
    const outside: string[] = [];
    for (const file of sources(ENGINE)) {
      const text = readFileSync(file, 'utf8');
      for (const [, specifier] of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'/g)) {
        if (!specifier) continue;
        if (specifier.startsWith('node:') || specifier === 'mupdf') continue;
        const target = specifier.startsWith('.') ? resolve(dirname(file), specifier) : specifier;
        if (!specifier.startsWith('.') || relative(ENGINE, target).startsWith('..')) outside.push(`${relative(REPO_ROOT, file)}: ${specifier}`);
      }
    }
    expect(outside).toEqual([]);
  });
});
