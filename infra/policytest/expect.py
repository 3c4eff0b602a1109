"""Reads checkov's JSON report of refused.yaml on stdin and fails unless every rule the
template's policy check relies on refused what it must: a check that never fires proves
nothing, and a waiver or a broken custom check would otherwise pass unseen."""

import json
import sys

EXPECTED = {
    ("CKV_FG_1", "AWS::Serverless::Function.WildcardFunction"): "a wildcard action (dynamodb:*)",
    ("CKV_FG_1", "AWS::Serverless::Function.StarResourceFunction"): "a * resource for an action IAM can scope",
    ("CKV_FG_1", "AWS::Serverless::Function.TemplateFunction"): "SSMParameterReadPolicy (ssm:DescribeParameters on *)",
    ("CKV_AWS_28", "AWS::DynamoDB::Table.Table"): "a table without point-in-time recovery",
    ("CKV_AWS_119", "AWS::DynamoDB::Table.Table"): "a table without a customer managed key",
    ("CKV_AWS_66", "AWS::Logs::LogGroup.Logs"): "a log group without retention",
}


def main():
    raw = sys.stdin.read()
    try:
        report = json.loads(raw)
    except json.JSONDecodeError:
        sys.exit("policy check self-test: checkov gave no JSON report:\n" + raw[:2000])
    failed = {(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]}
    missed = [f"{check} on {res}: {why}" for (check, res), why in EXPECTED.items() if (check, res) not in failed]
    if missed:
        sys.exit("policy check self-test: checkov let through what it must refuse:\n  " + "\n  ".join(missed))
    print(f"policy check self-test: infra/policytest/refused.yaml refused as it must be ({len(EXPECTED)} findings)")


if __name__ == "__main__":
    main()
