/**
 * What the local tools start (moto_server, Lambda containers) and the temporary folders they
 * make, stopped and removed however the tool ends: done, on an error, on Ctrl-C or SIGTERM.
 * The one home of that rule: every spawn point and temporary folder of tools/ and bench/
 * registers here (tools/moto.ts, tools/lambda-shape.ts, tools/sample-pdf.ts, …), and each
 * command's entry is `runTool(main)`.
 *
 * Node runs no 'exit' handler when a signal ends it, so runTool turns SIGINT and SIGTERM into
 * an ordinary exit (130, 143); what is still running then is SIGKILLed and the folders removed
 * synchronously in the 'exit' handler, which runs on every way out but a SIGKILL of this process.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../lib/engine/errors.js';
import { InvalidSettingError } from '../lib/config/settings.js';

/** Children to stop on exit, each with its signal (SIGKILL, or SIGTERM for a guard that stops its own children). */
const children = new Map<ChildProcess, NodeJS.Signals>();
const folders = new Set<string>();
let hooked = false;

function cleanUpNow(): void {
  for (const [child, signal] of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  }
  children.clear();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  folders.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', cleanUpNow);
}

/** A child process to stop (SIGKILL, or `signal`) if it still runs when this process exits. */
export function trackProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): ChildProcess {
  hook();
  children.set(child, signal);
  child.once('exit', () => children.delete(child));
  return child;
}

/** A folder to remove when this process exits; returns a function that removes it now (and forgets it). */
export function trackFolder(path: string): () => void {
  hook();
  folders.add(path);
  return () => {
    folders.delete(path);
    rmSync(path, { recursive: true, force: true });
  };
}

/** A new temporary folder (under the OS's), removed when this process exits at the latest. */
export async function tempFolder(prefix: string): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  trackFolder(path);
  return path;
}

export function tempFolderSync(prefix: string): string {
  const path = mkdtempSync(join(tmpdir(), prefix));
  trackFolder(path);
  return path;
}

/** A mistake in how the command was called: its message is the whole answer (exit 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/** Ctrl-C and SIGTERM end this process at once (130, 143), through 'exit': what it started stops. For scripts with top-level await (benches, soak); runTool does it for the others. */
export function stopOnSignals(): void {
  hook();
  for (const [signal, code] of Object.entries(SIGNAL_EXIT) as [NodeJS.Signals, number][]) {
    process.once(signal, () => {
      console.error(`${signal === 'SIGINT' ? 'interrupted' : 'terminated'}: stopping what was started`);
      process.exit(code);
    });
  }
}

/**
 * Runs a command's main: its number is the exit code; an error is one line (`error: …`, exit 2
 * for a UsageError or a bad flag value, else 1); Ctrl-C and SIGTERM end it at once (130, 143). Whatever way it
 * ends, what it started is stopped and its folders removed (process.exit, so a server or a
 * timer it leaves open cannot keep it alive).
 */
export function runTool(main: () => Promise<number>): void {
  stopOnSignals();
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`error: ${errorMessage(err)}`);
      process.exit(err instanceof UsageError || err instanceof InvalidSettingError ? 2 : 1);
    },
  );
}
