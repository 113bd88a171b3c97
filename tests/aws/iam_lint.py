"""parliament over every IAM policy document of a CloudFormation template.

  python iam_lint.py TEMPLATE.json KEY=VALUE...   -> a line per finding; exit 1 on any

TEMPLATE.json is the template as JSON (cfn-lint's decoder writes it: tests/aws/deploy_template.rs).
Every policy document in it (role policies, bucket and queue policies, managed policies) is
linted by parliament (duo-labs/parliament) with its community auditors (trust policies,
which name no resource, are not its subject), after the template's
intrinsic functions are resolved to example values: parameters to the values given, their
defaults, or an example, the stack's pseudo parameters to one account and region,
`Fn::GetAtt ... Arn` to an ARN of the resource's type, and `Fn::If` to the branch that holds a
statement (the one a stack with every option on would have).
"""

import json
import re
import sys

import parliament

ACCOUNT, REGION, PARTITION = "123456789012", "eu-west-1", "aws"
EXAMPLES = {"BucketName": "media-example", "TitleEventBus": "default"}


def arn_of(template, name):
    kind = template["Resources"][name]["Type"]
    return {
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
        "AWS::S3::Bucket": f"arn:aws:s3:::{EXAMPLES['BucketName']}",
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "AWS::ECS::Cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}",
    }.get(kind, f"arn:aws:cloudfront::{ACCOUNT}:distribution/EXAMPLE")


def ref(template, name):
    pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
              "AWS::StackName": "hlspipe"}
    if name in pseudo:
        return pseudo[name]
    if name in EXAMPLES:
        return EXAMPLES[name]
    param = template.get("Parameters", {}).get(name)
    if param is not None:
        return str(param.get("Default") or "example")
    return "EXAMPLE"


def resolve(template, value):
    if isinstance(value, list):
        out = [resolve(template, v) for v in value]
        return [v for v in out if v is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else ref(template, arg)
        if key == "Fn::GetAtt":
            name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return arn_of(template, name) if attr == "Arn" else name
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

            def sub(m):
                var = m.group(1)
                if var in extra:
                    return str(resolve(template, extra[var]))
                if "." in var:
                    name, attr = var.split(".", 1)
                    return arn_of(template, name) if attr == "Arn" else name
                return ref(template, var)

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        if key == "Fn::If":
            on, off = resolve(template, arg[1]), resolve(template, arg[2])
            return on if on is not NO_VALUE else off
        if key == "Fn::Join":
            return arg[0].join(str(resolve(template, v)) for v in arg[1])
    return {k: v for k, v in ((k, resolve(template, v)) for k, v in value.items()) if v is not NO_VALUE}


NO_VALUE = object()


def documents(node, path):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "PolicyDocument" and isinstance(value, dict):
                yield path + [key], value
            else:
                yield from documents(value, path + [key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from documents(value, path + [str(i)])


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        template = json.load(f)
    EXAMPLES.update(arg.split("=", 1) for arg in sys.argv[2:])
    findings, count = [], 0
    for path, doc in documents(template["Resources"], []):
        count += 1
        policy = resolve(template, doc)
        where = "/".join(path)
        analyzed = parliament.analyze_policy_string(json.dumps(policy), filepath=where,
                                                    include_community_auditors=True)
        for finding in analyzed.findings:
            findings.append(f"{where}: {finding.issue} {finding.detail} {finding.location}")
    print(f"{count} policy documents linted")
    for line in findings:
        print(line)
    sys.exit(1 if findings or count == 0 else 0)


main()
