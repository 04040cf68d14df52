/**
 * `npm run soak -- --seed N [--docs N] [--minutes M] [--concurrency K]`: the seeded fault soak
 * (tools/soak/run.ts). Prints one line per violation, the figures, then "N passed, M failed"
 * (source keys are the unit); exits non-zero on any failure. SOAK_BREAK=<name> (or --break)
 * runs it against a deliberately broken copy of the bundle (tools/soak/break.ts); --artifact DIR
 * soaks another build of the render function (an older commit's dist/RenderPdfFunction).
 */
import { parseArgs } from 'node:util';
import { BREAKS, isBreakName } from './break.js';
import { runSoak } from './run.js';
import { stopOnSignals } from '../cleanup.js';

// Ctrl-C and SIGTERM stop what it started (moto_server, containers) on the way out (tools/cleanup.ts).
stopOnSignals();

function positive(name: string, value: string | undefined, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    console.error(`--${name} ${JSON.stringify(value)} is invalid: expected a ${integer ? 'whole ' : ''}number above 0`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    docs: { type: 'string' },
    minutes: { type: 'string' },
    concurrency: { type: 'string' },
    'budget-ms': { type: 'string' },
    'fanout-pages': { type: 'string' },
    break: { type: 'string' },
    artifact: { type: 'string' },
    keep: { type: 'boolean' },
  },
});
const breakName = values.break ?? process.env['SOAK_BREAK'];
if (breakName !== undefined && breakName !== '' && !isBreakName(breakName)) {
  console.error(`SOAK_BREAK ${JSON.stringify(breakName)} is invalid: expected one of ${Object.keys(BREAKS).join(', ')}`);
  process.exit(2);
}
const result = await runSoak({
  seed: positive('seed', values.seed, 1),
  docs: positive('docs', values.docs, 30),
  minutes: positive('minutes', values.minutes, 1, false),
  concurrency: positive('concurrency', values.concurrency, 2),
  ...(values['budget-ms'] ? { budgetMs: positive('budget-ms', values['budget-ms'], 8000) } : {}),
  ...(values['fanout-pages'] ? { fanoutPages: positive('fanout-pages', values['fanout-pages'], 6) } : {}),
  ...(breakName ? { breakName } : {}),
  ...(values.artifact ? { renderArtifact: values.artifact } : {}),
  keepWorkDir: values.keep ?? false,
  progress: (line) => console.error(line),
});
for (const line of result.lines) console.log(line);
if (result.failed > 0) console.error(`logs and the seed's choices: ${result.workDir}`);
process.exit(result.failed > 0 ? 1 : 0);
