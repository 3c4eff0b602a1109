"""The template's own least-privilege rule, for checkov (make policy-check).

checkov's IAM checks read AWS::IAM::* resources; the gateway's permissions are the
inline Policies of its SAM functions and state machines, which they do not read. This
check does: no statement allows every action of a service ("s3:*", "*"), and none names
every resource ("*") unless all its actions are ones AWS cannot scope to a resource. A
SAM policy template that grants an unscoped action is refused too.
"""

from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

# Actions IAM cannot limit to a resource: for these, "*" is the narrowest there is.
UNSCOPABLE = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "cloudwatch:PutMetricData",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "dynamodb:ListStreams",
}

# SAM policy templates that grant an action on every resource.
UNSCOPED_TEMPLATES = {
    "SSMParameterReadPolicy": "ssm:DescribeParameters on *",
    "CloudWatchPutMetricPolicy": None,  # cloudwatch:PutMetricData only: unscopable
    "AWSXrayWriteOnlyAccess": None,
}


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def statement_problems(stmt):
    if not isinstance(stmt, dict) or stmt.get("Effect", "Allow") != "Allow":
        return []
    problems = []
    actions = [a for a in as_list(stmt.get("Action")) if isinstance(a, str)]
    for a in actions:
        if a == "*" or a.endswith(":*"):
            problems.append(f"action {a}")
    resources = as_list(stmt.get("Resource"))
    if "*" in resources and not all(a in UNSCOPABLE for a in actions):
        problems.append("resource * for " + ", ".join(a for a in actions if a not in UNSCOPABLE))
    return problems


class NoWildcardPermissions(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Function and state machine policies name their actions and resources (no wildcard where IAM can scope)",
            id="CKV_FG_1",
            categories=[CheckCategories.IAM],
            supported_resources=["AWS::Serverless::Function", "AWS::Serverless::StateMachine"],
        )

    def scan_resource_conf(self, conf):
        problems = []
        for policy in as_list(conf.get("Properties", {}).get("Policies")):
            if isinstance(policy, str):
                if policy.endswith("FullAccess") or policy == "AdministratorAccess":
                    problems.append(f"managed policy {policy}")
                continue
            if not isinstance(policy, dict):
                continue
            for name in policy:
                if UNSCOPED_TEMPLATES.get(name):
                    problems.append(f"policy template {name} ({UNSCOPED_TEMPLATES[name]})")
            for stmt in as_list(policy.get("Statement")):
                problems.extend(statement_problems(stmt))
        self.details = problems
        return CheckResult.FAILED if problems else CheckResult.PASSED


check = NoWildcardPermissions()
