/**
 * The Node.js that runs built artifacts, as the Lambda runtime would: LAMBDA_NODE when set (CI
 * installs the Node of the template's runtime, nodejs24.x, there: .ci/run), else this process's
 * own (.ci/run also puts it first on PATH for the tests and tools). Everything that starts
 * the bundle (tools/lambda-container.ts, so `npm run invoke`, the sam-build, invoke and shape
 * tests; `npm run shape -- node …`; the cold-start test) goes through here.
 */
import { accessSync, constants } from 'node:fs';

export function lambdaNode(env: NodeJS.ProcessEnv = process.env): string {
  const path = env['LAMBDA_NODE'];
  if (!path) return process.execPath;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`LAMBDA_NODE=${JSON.stringify(path)} is not an executable file: expected the path of a node binary (for example the one .ci/run installs)`);
  }
  return path;
}

/** The major version a Lambda runtime name stands for: nodejs24.x -> 24. */
export function runtimeMajor(runtime: string): number {
  const match = /^nodejs(\d+)\.x$/.exec(runtime);
  if (!match) throw new Error(`Runtime ${JSON.stringify(runtime)} is not a Node.js Lambda runtime (nodejsNN.x)`);
  return Number(match[1]);
}
