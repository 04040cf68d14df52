/**
 * template.yaml as CloudFormation deploys it, for one set of parameter values (a deployment
 * mode): the SAM transform run offline by the samtranslator that ships with cfn-lint
 * (tools/sam-translate.py), Conditions evaluated, resources of false conditions dropped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT, TEMPLATE_PATH, type Template } from './template.js';

/** The Python that runs cfn-lint: the one whose site-packages hold samtranslator. */
export function cfnLintPython(): string {
  // pyenv's cfn-lint is a bash shim; `pyenv which` names the real script, beside its python.
  const pyenv = spawnSync('pyenv', ['which', 'cfn-lint'], { encoding: 'utf8' });
  if (pyenv.status === 0 && pyenv.stdout.trim()) {
    const python = join(dirname(pyenv.stdout.trim()), 'python');
    if (existsSync(python)) return python;
  }
  // A pip-installed console script starts with its interpreter: #!/path/to/python.
  const which = spawnSync('sh', ['-c', 'command -v cfn-lint'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) {
    const shebang = readFileSync(which.stdout.trim(), 'utf8').split('\n', 1)[0] ?? '';
    const match = /^#!\s*(\S*python\S*)/.exec(shebang);
    if (match) return match[1]!;
  }
  return 'python3';
}

export interface TranslatedTemplate extends Template {
  Conditions: Record<string, boolean>;
  /** Every parameter's value: defaults, then the overrides given. */
  Parameters: Record<string, { Type: string; Default?: string | number }>;
  parameterValues: Record<string, string>;
}

/** The plain CloudFormation of template.yaml for these parameter values. */
export function samTranslate(parameters: Record<string, string> = {}, path = TEMPLATE_PATH): TranslatedTemplate {
  const run = spawnSync(cfnLintPython(), [join(ROOT, 'tools', 'sam-translate.py'), path, JSON.stringify(parameters)], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (run.status !== 0) throw new Error(`sam-translate.py failed (${run.status}): ${run.stderr || run.error?.message}`);
  const out = JSON.parse(run.stdout) as { Resources: Template['Resources']; Outputs: Record<string, unknown>; Conditions: Record<string, boolean>; Parameters: Record<string, unknown> };
  const parameterValues = Object.fromEntries(Object.entries(out.Parameters).map(([k, v]) => [k, String(v)]));
  return {
    Resources: out.Resources,
    Outputs: out.Outputs,
    Conditions: out.Conditions,
    Parameters: Object.fromEntries(Object.entries(parameterValues).map(([k, v]) => [k, { Type: 'String', Default: v }])),
    parameterValues,
  };
}
