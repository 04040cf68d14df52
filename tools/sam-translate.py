"""
template.yaml as CloudFormation deploys it, offline: the SAM transform done by the samtranslator
that ships with cfn-lint (the same library the AWS::Serverless transform runs), then the
template's Conditions evaluated for the given parameters, so each deployment mode can be read
as plain resources.

usage: python sam-translate.py template.yaml '{"SourceBucketMode": "existing", ...}'
Prints JSON: {"Resources": ..., "Outputs": ..., "Conditions": {name: true|false}}. Resources whose
Condition is false are dropped, Fn::If is replaced by its branch, AWS::NoValue removed. Ref,
Fn::Sub and Fn::GetAtt are left as CloudFormation would see them.
"""
import json
import os
import sys

from cfnlint.decode import decode
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

NO_VALUE = object()


def evaluate(expr, conditions, params):
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, arg), = expr.items()
        if fn == "Fn::Equals":
            a, b = (evaluate(x, conditions, params) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not evaluate(arg[0], conditions, params)
        if fn == "Fn::And":
            return all(evaluate(x, conditions, params) for x in arg)
        if fn == "Fn::Or":
            return any(evaluate(x, conditions, params) for x in arg)
        if fn == "Condition":
            return conditions[arg]
        if fn == "Ref":
            return params[arg]
    return expr


def resolve_ifs(node, conditions):
    if isinstance(node, dict):
        if len(node) == 1 and "Fn::If" in node:
            name, yes, no = node["Fn::If"]
            return resolve_ifs(yes if conditions[name] else no, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        out = {}
        for key, value in node.items():
            value = resolve_ifs(value, conditions)
            if value is not NO_VALUE:
                out[key] = value
        return out
    if isinstance(node, list):
        return [v for v in (resolve_ifs(x, conditions) for x in node) if v is not NO_VALUE]
    return node


def main():
    path, overrides = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    template, matches = decode(path)
    if matches:
        raise SystemExit(f"{path}: {[str(m) for m in matches]}")
    template = json.loads(json.dumps(template))
    # As cfn-lint does: the translator wants an S3 location, not a local folder.
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/value"
        if resource.get("Type") == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer"
    params = {name: p.get("Default") for name, p in template.get("Parameters", {}).items()}
    params.update(overrides)
    # Offline: the region set (as cfn-lint does) and the pseudo parameters given, so nothing asks AWS.
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws", "AWS::StackName": "s3-pdf-render"}
    translated = Translator(managed_policy_map={}, sam_parser=Parser()).translate(sam_template=template, parameter_values={**params, **pseudo})
    conditions = {}
    for name, expr in translated.get("Conditions", {}).items():
        conditions[name] = bool(evaluate(expr, conditions, params))
    resources = {
        name: resolve_ifs({k: v for k, v in r.items() if k != "Condition"}, conditions)
        for name, r in translated["Resources"].items()
        if "Condition" not in r or conditions[r["Condition"]]
    }
    outputs = resolve_ifs(translated.get("Outputs", {}), conditions)
    json.dump({"Resources": resources, "Outputs": outputs, "Conditions": conditions, "Parameters": params}, sys.stdout)


main()
