/**
 * The programs the tests run besides Node, and how to install each (README.md, "Two commands").
 * Checked once before any test (test/support/global-setup.ts): a missing one is one message that
 * says what to install, not a stack trace from deep inside a test.
 */
import { spawnSync } from 'node:child_process';

export const REQUIRED_TOOLS = [
  { command: 'moto_server', args: ['--help'], install: `pip install 'moto[server]'`, why: 'the local S3, SQS, EventBridge and SSM' },
  { command: 'cfn-lint', args: ['--version'], install: 'pip install cfn-lint', why: 'the template checks' },
  { command: 'mutool', args: ['-v'], install: 'apt-get install mupdf-tools', why: 'the page-size oracle and the bench reference' },
  { command: 'zip', args: ['-v'], install: 'apt-get install zip', why: "the artifact's zipped size" },
] as const;

/** The message for the tools that are missing, or undefined when every one is there. */
export function missingToolsMessage(have: (command: string, args: readonly string[]) => boolean = runs): string | undefined {
  const missing = REQUIRED_TOOLS.filter((tool) => !have(tool.command, tool.args));
  if (missing.length === 0) return undefined;
  return `the tests need ${missing.map((t) => `${t.command} (${t.why}: ${t.install})`).join(', ')}; .ci/run installs the Debian ones itself`;
}

function runs(command: string, args: readonly string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 30_000 });
  return result.error === undefined;
}
