/**
 * A local S3-compatible server (moto_server) on a free loopback port, for `npm run local` and
 * the tests. Started and stopped by its user; never left running.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { trackProcess } from './cleanup.js';
import { createServer } from 'node:net';

export interface LocalS3 {
  endpoint: string;
  /** Drops every bucket and object (moto's reset API). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export const MOTO_INSTALL_HINT = 'moto_server was not found: install it with `pip install "moto[server]"` (Python 3), or set AWS_ENDPOINT_URL (or S3_ENDPOINT) to any S3-compatible server';

export function motoAvailable(): boolean {
  return spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitUntilUp(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with code ${child.exitCode} during start-up`);
    try {
      const response = await fetch(`${endpoint}/moto-api/data.json`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms`);
}

/**
 * moto_server under a guard shell: the shell ends with moto (its exit code is moto's), SIGTERM
 * to it stops moto, and a reader of its stdin (a pipe from this process) stops moto when that
 * pipe closes, which the kernel does when this process ends in any way, SIGKILL included.
 */
const MOTO_GUARD = [
  'exec 3<&0',
  'moto_server -H 127.0.0.1 -p "$1" & moto=$!',
  "trap 'kill $moto 2>/dev/null' TERM INT",
  '{ read _ <&3; kill $moto 2>/dev/null; } &',
  'wait $moto; status=$?; wait $moto 2>/dev/null; exit $status',
].join('\n');

export async function startMoto(): Promise<LocalS3> {
  if (!motoAvailable()) throw new Error(MOTO_INSTALL_HINT);
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  // Stopped with this process however it ends: SIGTERM from tools/cleanup.ts on exit, and
  // MOTO_GUARD when this process is SIGKILLed (tsx kills its child so when the child is slow to
  // answer a relayed signal): never an orphaned moto_server.
  const child = trackProcess(spawn('sh', ['-c', MOTO_GUARD, 'moto-guard', String(port)], { stdio: ['pipe', 'ignore', 'pipe'] }), 'SIGTERM');
  // The guard's stdin only has to close when this process ends: it must not keep it alive.
  (child.stdin as Socket | null)?.unref();
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  try {
    await waitUntilUp(endpoint, child, 20_000);
  } catch (err) {
    child.kill('SIGTERM');
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  return {
    endpoint,
    async reset() {
      const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset failed: HTTP ${response.status}`);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
