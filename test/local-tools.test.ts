/**
 * The local tools as a user runs them (issue 26): bad flags are refused before anything starts,
 * naming the flag as typed; results are told as they are (warnings on the console, failed
 * documents counted as failed); a busy port, a missing file and a missing endpoint are one line;
 * and however a tool ends (done, error, Ctrl-C, SIGTERM) it stops the moto_server it started and
 * removes its temporary folders.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingToolsMessage } from './support/required-tools.js';

const REPO = join(import.meta.dirname, '..');
const TSX = join(REPO, 'node_modules/tsx/dist/cli.mjs');
const work = mkdtempSync(join(tmpdir(), 'local-tools-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The environment of a user with no local endpoint set (the tools start their own moto). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(S3_ENDPOINT|AWS_ENDPOINT_URL.*)$/.test(name)));
  return { ...env, ...extra };
}

function tool(script: string, args: string[], env: NodeJS.ProcessEnv = cleanEnv()) {
  const started = performance.now();
  const result = spawnSync(process.execPath, [TSX, script, ...args], { cwd: work, env, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, ms: performance.now() - started };
}

/** Started in its own process group, as a terminal runs it, so the test can press Ctrl-C (SIGINT to the group). */
function startTool(script: string, args: string[]) {
  const child = spawn(process.execPath, [TSX, join(REPO, script), ...args], { cwd: work, env: cleanEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // 'close': the exit code once every output line is in (the tool's own process writes to the same pipes).
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => output,
    async waitFor(pattern: RegExp, timeoutMs = 90_000): Promise<RegExpMatchArray> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(output);
        if (match) return match;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${pattern} in:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

async function listening(endpoint: string): Promise<boolean> {
  return fetch(endpoint, { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );
}

describe('npm run local', { timeout: 120_000 }, () => {
  it.each([
    [['--concurrency', '0'], 'error: --concurrency="0" is invalid: expected a whole number from 1 to 64'],
    [['--sample-pages', '0'], 'error: --sample-pages="0" is invalid: expected a whole number from 1 to 5000'],
    [['missing.pdf'], 'error: missing.pdf: no such file'],
  ])('%j is refused in one line before moto starts', (args, message) => {
    const run = tool(join(REPO, 'tools/local.ts'), args);
    expect([run.status, run.stderr]).toEqual([2, `${message}\n`]);
  });

  it('tells the warnings, counts a failed document as failed, and leaves no sample folder or moto behind', async () => {
    const run = startTool('tools/local.ts', ['--meta', 'render-pages=9', '--meta', 'render-colour=red']);
    const [, sample] = await run.waitFor(/rendering a generated sample \((\S+)\/sample\.pdf\)/);
    const [, moto] = await run.waitFor(/moto_server\) on (http:\/\/\S+)/);
    expect(await run.exited).toBe(2);
    const out = run.output();
    expect(out).toContain('sample.pdf: warning: object metadata render-colour="red" ignored: not a render option');
    expect(out).toContain('sample.pdf: failed INVALID_OPTIONS (pages "9" select no page of this document: it has 3 pages)');
    expect(out).toContain('1 document(s): 0 complete, 0 partial, 1 failed');
    expect(existsSync(sample!)).toBe(false);
    expect(await listening(moto!)).toBe(false);
  });

  it('SIGTERM stops it at once: exit 143, its moto stopped, its sample folder gone', async () => {
    const run = startTool('tools/local.ts', []);
    const [, sample] = await run.waitFor(/rendering a generated sample \((\S+)\/sample\.pdf\)/);
    const [, moto] = await run.waitFor(/moto_server\) on (http:\/\/\S+)/);
    // The tool's own process (tsx's child), as `kill <pid>` would.
    const [pid] = spawnSync('pgrep', ['-P', String(run.child.pid)], { encoding: 'utf8' }).stdout.trim().split('\n');
    process.kill(Number(pid), 'SIGTERM');
    expect(await run.exited).toBe(143);
    expect(run.output()).toContain('terminated: stopping what was started');
    expect(existsSync(sample!)).toBe(false);
    expect(await listening(moto!)).toBe(false);
  });
});

describe('npm run serve', { timeout: 120_000 }, () => {
  it('a missing file is one line, exit 2', () => {
    const run = tool(join(REPO, 'tools/serve.ts'), ['missing.pdf']);
    expect([run.status, run.stderr]).toEqual([2, 'error: missing.pdf: no such file\n']);
  });

  it('a busy port is one line naming the port and --port, before moto starts', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const run = tool(join(REPO, 'tools/serve.ts'), ['--port', String(port)]);
      expect([run.status, run.stderr]).toEqual([2, `error: port ${port} is busy (127.0.0.1:${port}): choose another with --port N\n`]);
    } finally {
      busy.close();
    }
  });

  it('--signed prints a signed URL that serves the page; Ctrl-C stops it and its moto', async () => {
    const run = startTool('tools/serve.ts', [join(REPO, 'test/corpus/arabic-rotations-4p.pdf'), '--signed', '--port', '0']);
    const [, moto] = await run.waitFor(/moto_server\) on (http:\/\/\S+)/);
    const [, url] = await run.waitFor(/curl -sL -o page\.png '(\S+)'/);
    expect(url).toMatch(/&expires=\d+&signature=/);
    const signed = await fetch(url!);
    expect([signed.status, signed.headers.get('content-type')]).toEqual([200, 'image/png']);
    const unsigned = await fetch(url!.replace(/&expires=.*$/, ''));
    expect(unsigned.status).toBe(403);
    process.kill(-run.child.pid!, 'SIGINT');
    expect(await run.exited).toBe(130);
    expect(await listening(moto!)).toBe(false);
  });
});

describe('one endpoint variable', () => {
  it('backfill --local takes AWS_ENDPOINT_URL, and without one says which variable to set', () => {
    const without = tool(join(REPO, 'tools/backfill.ts'), ['--local', '--prefix', 'x/', '--skip-build']);
    expect(without.status).toBe(2);
    expect(without.stderr).toContain('set AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_SQS, or the alias S3_ENDPOINT)');
    // An endpoint with nothing listening: past the endpoint check, it fails on the connection instead.
    const withUrl = tool(join(REPO, 'tools/backfill.ts'), ['--local', '--prefix', 'x/', '--skip-build', '--bucket', 'b'], cleanEnv({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' }));
    expect(withUrl.status).not.toBe(0);
    expect(withUrl.stderr).not.toContain('AWS_ENDPOINT_URL');
    expect(withUrl.stderr).toMatch(/ECONNREFUSED|connect/);
  });
});

describe('the tests name a missing tool', () => {
  it('says which program is missing and how to install it', () => {
    expect(missingToolsMessage(() => true)).toBeUndefined();
    expect(missingToolsMessage((command) => command !== 'zip' && command !== 'mutool')).toBe(
      "the tests need mutool (the page-size oracle and the bench reference: apt-get install mupdf-tools), zip (the artifact's zipped size: apt-get install zip); .ci/run installs the Debian ones itself",
    );
  });
});

describe('npm run bench', () => {
  it('exits non-zero with the reason when the corpus is not there (no table of NaN)', () => {
    const run = tool(join(REPO, 'bench/bench.ts'), ['--quick', '--runs', '1'], cleanEnv({ CORPUS_DIR: join(work, 'no-corpus'), MUTOOL: '' }));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('corpus file tracemonkey-paper-14p.pdf not found');
    expect(run.stdout).not.toContain('NaN');
  });
});
