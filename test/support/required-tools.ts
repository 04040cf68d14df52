/**
 * The programs the tests run besides Node, and how to install each (README.md, "Two commands").
 * Checked once before any test (test/support/global-setup.ts): a missing one is one message that
 * says what to install, not a stack trace from deep inside a test.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const REQUIRED_TOOLS = [
  { command: 'moto_server', args: ['--help'], install: `pip install 'moto[server]'`, why: 'the local S3, SQS, EventBridge and SSM' },
  { command: 'cfn-lint', args: ['--version'], install: 'pip install cfn-lint', why: 'the template checks' },
  { command: 'mutool', args: ['-v'], install: 'apt-get install mupdf-tools', why: 'the page-size oracle and the bench reference' },
  { command: 'zip', args: ['-v'], install: 'apt-get install zip', why: "the artifact's zipped size" },
  { command: 'make', args: ['--version'], install: 'apt-get install make', why: 'the sharp layer (layers/sharp/Makefile, as sam build runs it)' },
  { command: 'aws', args: ['--version'], install: 'pip install awscli', why: "docs/deploy.md's lifecycle commands, run against moto" },
  { command: 'jq', args: ['--version'], install: 'apt-get install jq', why: "docs/deploy.md's lifecycle commands, run against moto" },
] as const;

/** The message for the tools that are missing, or undefined when every one is there. */
export function missingToolsMessage(have: (command: string, args: readonly string[]) => boolean = runs): string | undefined {
  const missing = REQUIRED_TOOLS.filter((tool) => !have(tool.command, tool.args));
  if (missing.length === 0) return undefined;
  return `the tests need ${missing.map((t) => `${t.command} (${t.why}: ${t.install})`).join(', ')}; .ci/run installs the Debian ones itself`;
}

/**
 * Found as an executable on PATH. A lookup, not a run: running `cfn-lint --version` took over 30 s
 * on a machine at load 20 and made a present tool look missing.
 */
function runs(command: string, _args: readonly string[]): boolean {
  return (process.env['PATH'] ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
