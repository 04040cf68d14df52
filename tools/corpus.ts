/**
 * Where the test corpus lives: test/corpus/ in this repository (real-world PDFs, MANIFEST.tsv
 * says what each is and what it should do; README.md there gives their sources and licences).
 * The one home of that path for tests, benches, the soak and the local tools.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The corpus folder (absolute). CORPUS_DIR overrides it, e.g. for a scratch copy of the files. */
export const CORPUS_DIR = process.env['CORPUS_DIR'] ?? fileURLToPath(new URL('../test/corpus/', import.meta.url));

/** The path of one corpus file; throws a message that says what is wrong when it is missing. */
export function corpusFile(name: string): string {
  const path = join(CORPUS_DIR, name);
  if (!existsSync(path)) {
    throw new Error(`corpus file ${name} not found in ${CORPUS_DIR} (the corpus is test/corpus/ in the repository; CORPUS_DIR overrides it)`);
  }
  return path;
}
