"""What `sam package` then `sam deploy` do to deploy/template.yaml, without an AWS account.

  python sam_transform.py TEMPLATE KEY=VALUE...   -> the transformed template, JSON, on stdout

`sam package` replaces each function's local CodeUri with the S3 URI it uploaded the built
code to; it resolves no intrinsic function there (aws-sam-cli #5249), so a CodeUri that is
not a literal path is an error here, as it would be there. Then the SAM transform runs with
the aws-sam-translator package that CloudFormation's transform and the SAM CLI use, with the
given parameter values. Exit 1, with the translator's message, when the transform refuses
the template.
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicyNames:
    """The template names no managed policy by name, so nothing has to be looked up in IAM."""

    def load(self):
        return {}


def package(template):
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code = resource.get("Properties", {}).get("CodeUri")
        if not isinstance(code, str) or code.startswith("s3://"):
            sys.exit(f"{name}: CodeUri {code!r} is not a local path sam package can upload")
        resource["Properties"]["CodeUri"] = f"s3://sam-artifacts/{name}.zip"


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        template = yaml_parse(f.read())
    params = dict(arg.split("=", 1) for arg in sys.argv[2:])
    package(template)
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    try:
        out = transform(template, params, NoManagedPolicyNames())
    except Exception as e:  # the translator's own exceptions carry the reasons
        sys.exit(f"the SAM transform refused the template: {e}")
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


main()
