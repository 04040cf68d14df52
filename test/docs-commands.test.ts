/**
 * The shell commands of README.md and docs/*.md (every ```sh block) work as written from a
 * fresh clone (issue 26). Each command is in COMMANDS below, first match wins: `run` ones are
 * run (cheap, no AWS account: about 15 s together), `check` ones are checked without running
 * (their npm script exists, every --flag is one the tool reads, every repository file they
 * name exists), `skip` ones say why not. A command in the docs that matches none fails the test:
 * a new command gets its line here. Every block is also checked by `bash -n`, and no command
 * may hold a literal "…".
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..');
const DOCS = ['README.md', ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

type How = { how: 'run' } | { how: 'check' } | { how: 'skip'; why: string };
const AWS = 'needs an AWS account (a deployed stack, its bucket or queues)';
const SAM = 'needs the SAM CLI (and Docker for sam local)';

/** Every documented command, by a pattern of its text. */
const COMMANDS: [RegExp, How][] = [
  [/^npm ci && npm (run local|test)\b/, { how: 'skip', why: 'the acceptance commands themselves: minutes each; CI (.ci/run) and test/local-tools.test.ts run them' }],
  [/^npx tsx tools\/sample-pdf\.ts sample\.pdf && npm run render -- sample\.pdf/, { how: 'run' }],
  [/^npm run render -- (some|q3)\.pdf /, { how: 'run' }],
  [/^npm run (local|serve|invoke|shape|bench|backfill|sign-url|screenshots:iiif) -- /, { how: 'check' }],
  [/^aws |^STACK=|^out\(\) |^QUEUE=|^DLQ_(URL|ARN)=|^(P|OLD|NEW)=/, { how: 'skip', why: AWS }],
  [/^sam /, { how: 'skip', why: SAM }],
  [/^echo '\{"Parameters"/, { how: 'skip', why: 'writes env.json for the sam local invoke after it' }],
  [/^moto_server -p 5000 &$|^export AWS_/, { how: 'skip', why: 'the moto recipe: a server on a fixed port and the AWS CLI (test/invoke.test.ts runs `npm run invoke` on moto)' }],
  // One script over several lines (an if/elif/else and a multi-line jq program): matched by its lines.
  [/^(BUCKET|PREFIX|DAYS)=|^(if|elif) .*; then|^else cat lifecycle-error|^jq --arg prefix|^\+ \[\{ID: "ExpirePageVariants"|^Filter: \{And: |^aws s3api put-bucket-lifecycle/, { how: 'skip', why: 'the variant-expiry recipe (AWS CLI and jq): test/your-bucket.test.ts runs it against moto' }],
  [/^curl /, { how: 'skip', why: 'needs the `npm run serve` above running (test/local-tools.test.ts fetches a page from it)' }],
];

interface DocCommand {
  file: string;
  text: string;
}

function blocks(): { file: string; body: string }[] {
  return DOCS.flatMap((file) => [...readFileSync(join(REPO, file), 'utf8').matchAll(/^```(?:sh|bash)\n([\s\S]*?)^```/gm)].map((m) => ({ file, body: m[1]! })));
}

/** The commands of a block: continuation lines joined, comment lines and blank lines left out. */
function commands(): DocCommand[] {
  return blocks().flatMap(({ file, body }) =>
    body
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((text) => ({ file, text })),
  );
}

function howOf(text: string): How | undefined {
  return COMMANDS.find(([pattern]) => pattern.test(text))?.[1];
}

/** The words of a command, quotes removed, trailing comment dropped (enough for the flags and paths). */
function words(text: string): string[] {
  // A command substitution ("$(aws …)") is one word here: its own flags are not the tool's.
  const withoutComment = text.replace(/\s+#.*$/, '').replace(/"\$\((?:[^()]|\([^()]*\))*\)"/g, 'SUBSTITUTION');
  return [...withoutComment.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

const PACKAGE = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

/** What is wrong with an `npm run <script> -- args` command, without running it. */
function checkCommand(text: string): string[] {
  const [, , script, ...rest] = words(text);
  const definition = PACKAGE.scripts[script!];
  if (!definition) return [`npm script ${script} does not exist`];
  const entry = /^tsx (\S+\.ts)/.exec(definition)?.[1];
  if (!entry) return [`npm script ${script} is not a tsx tool: ${definition}`];
  const source = readFileSync(join(REPO, entry), 'utf8');
  const problems: string[] = [];
  for (const word of rest) {
    const flag = /^--([a-z][\w-]*)/.exec(word)?.[1];
    if (flag && !source.includes(`'${flag}'`) && !new RegExp(`\\b${flag}: \\{`).test(source)) problems.push(`${entry} has no --${flag}`);
    if (/^(events|test|docs|tools|bench)\/\S+\.\w+$/.test(word) && !existsSync(join(REPO, word))) problems.push(`${word} does not exist`);
  }
  return problems;
}

describe('the commands of README.md and docs/', () => {
  const all = commands();

  it('every command is in the list (run, checked, or skipped with a reason)', () => {
    expect(all.length).toBeGreaterThan(30);
    expect(all.filter((c) => !howOf(c.text)).map((c) => `${c.file}: ${c.text}`)).toEqual([]);
  });

  it('no command holds a literal …', () => {
    expect(all.filter((c) => c.text.replace(/\s+#.*$/, '').includes('…')).map((c) => `${c.file}: ${c.text}`)).toEqual([]);
  });

  it('every block is valid bash', () => {
    for (const { file, body } of blocks()) {
      const result = spawnSync('bash', ['-n'], { input: body, encoding: 'utf8' });
      expect(result.stderr, `${file}:\n${body}`).toBe('');
    }
  });

  it('the commands checked without running name scripts, flags and files that exist', () => {
    const checked = all.filter((c) => howOf(c.text)?.how === 'check');
    expect(checked.length).toBeGreaterThan(10);
    expect(checked.flatMap((c) => checkCommand(c.text).map((p) => `${c.file}: ${c.text}: ${p}`))).toEqual([]);
  });

  describe('the commands that run as written', () => {
    // A scratch clone: the repository's files linked in, so what the commands write stays out of it.
    const clone = mkdtempSync(join(tmpdir(), 'docs-commands-'));
    afterAll(() => rmSync(clone, { recursive: true, force: true }));
    for (const name of ['package.json', 'node_modules', 'lib', 'tools', 'test', 'tsconfig.json', 'template.yaml']) symlinkSync(join(REPO, name), join(clone, name));
    let prepared = false;
    /** The PDFs the examples name: the generated sample under their names. */
    function prepare(): void {
      if (prepared) return;
      execFileSync(process.execPath, [join(REPO, 'node_modules/tsx/dist/cli.mjs'), 'tools/sample-pdf.ts', 'fixture.pdf'], { cwd: clone });
      for (const name of ['some.pdf', 'q3.pdf']) copyFileSync(join(clone, 'fixture.pdf'), join(clone, name));
      mkdirSync(join(clone, 'out'), { recursive: true });
      prepared = true;
    }
    const runnable = commands().filter((c) => howOf(c.text)?.how === 'run');
    it.each(runnable.map((c) => [c.text, c] as const))('%s', { timeout: 60_000 }, (_text, command) => {
      prepare();
      const result = spawnSync('bash', ['-c', command.text], { cwd: clone, encoding: 'utf8', timeout: 60_000 });
      expect(result.status, `${command.file}: ${command.text}\n${result.stderr}`).toBe(0);
      expect(result.stderr).toMatch(/^complete: /m);
    });
  });
});
