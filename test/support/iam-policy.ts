/**
 * The template's IAM policies as AWS would evaluate them: each function's inline policy
 * statements, parameters resolved (tools/template.ts resolveIntrinsics), run through
 * @cloud-copilot/iam-simulate for one request at a time.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { localContext, resolveIntrinsics, templateFunction, type ResolveContext, type Template } from '../../tools/template.js';
import type { IamRequest } from './iam-recorder.js';

const ACCOUNT = '123456789012';

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

/** One function's identity policy, resolved, as IAM receives it. */
export function functionPolicy(template: Template, logicalId: string, ctx: ResolveContext = localContext(template, {}, {})): { Version: string; Statement: unknown[] } {
  const policies = templateFunction(template, logicalId).properties['Policies'];
  if (!Array.isArray(policies)) throw new Error(`${logicalId}: Policies is not a list of inline policies`);
  const statements = policies.flatMap((policy: unknown) => {
    if (typeof policy !== 'object' || policy === null || !('Statement' in policy)) throw new Error(`${logicalId}: ${JSON.stringify(policy)} is not an inline policy`);
    return resolveIntrinsics((policy as { Statement: unknown }).Statement, template, ctx) as unknown[];
  });
  return { Version: '2012-10-17', Statement: statements };
}

/** An AWS::IAM::Role's inline policies (its Policies[].PolicyDocument), resolved, as one policy. */
export function rolePolicy(template: Template, logicalId: string, ctx: ResolveContext = localContext(template, {}, {})): { Version: string; Statement: unknown[] } {
  const role = template.Resources[logicalId];
  if (role?.Type !== 'AWS::IAM::Role') throw new Error(`${logicalId} is not an AWS::IAM::Role`);
  const policies = (role.Properties as { Policies?: { PolicyDocument: { Statement: unknown } }[] } | undefined)?.Policies ?? [];
  return { Version: '2012-10-17', Statement: policies.flatMap((p) => resolveIntrinsics(p.PolicyDocument.Statement as never, template, ctx) as unknown[]) };
}

/** The identity policy of a principal: a role of the template, or a function's role. */
function principalPolicy(template: Template, principal: string, ctx?: ResolveContext): { Version: string; Statement: unknown[] } {
  return template.Resources[principal]?.Type === 'AWS::IAM::Role' ? rolePolicy(template, principal, ctx) : functionPolicy(template, principal, ctx);
}

/**
 * The decision for one request by the role of `request.principal` (or by `policy`, an identity
 * policy given outright, such as the one a backfill operator needs); throws on a simulation error.
 */
export async function decide(template: Template, request: IamRequest, ctx?: ResolveContext, policy?: { Version: string; Statement: unknown[] }): Promise<Decision> {
  if (!request.action) throw new Error(`${request.operation} has no IAM action mapped (test/support/iam-recorder.ts)`);
  const result = await runSimulation(
    {
      identityPolicies: [{ name: `${request.principal}Policy`, policy: policy ?? principalPolicy(template, request.principal, ctx) }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: request.action,
        principal: `arn:aws:iam::${ACCOUNT}:role/${request.principal}Role`,
        resource: { accountId: ACCOUNT, resource: request.resource },
        contextVariables: request.context,
      },
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(`iam-simulate: ${JSON.stringify(result.errors)} for ${JSON.stringify(request)}`);
  if (result.resultType !== 'single') throw new Error(`iam-simulate: unexpected ${result.resultType} result for ${JSON.stringify(request)}`);
  return result.overallResult as Decision;
}
