"""The IAM statements of the handler role: the least that starting, watching and deleting jobs needs.

Resource ARNs are collected as jobs are added (without duplicates), so one statement of each kind
serves every job of the provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import jsii
from aws_cdk import Acknowledgment, Aws, CfnResource, Validations
from aws_cdk import aws_iam as iam

from constructs import IConstruct, IValidation

SERVICE_PRINCIPAL = "cleanrooms-ml.amazonaws.com"


def job_arn_pattern() -> str:
    """Every audience generation job of the stack's account and region."""
    return f"arn:{Aws.PARTITION}:cleanrooms-ml:{Aws.REGION}:{Aws.ACCOUNT_ID}:audience-generation-job/*"


class HandlerStatements:
    """The handler role's statements; ``add_job`` widens them to one more model and seed role."""

    def __init__(self) -> None:
        jobs = job_arn_pattern()
        self.start = iam.PolicyStatement(
            sid="StartJobsFromTheseModels",
            actions=["cleanrooms-ml:StartAudienceGenerationJob"],
            resources=[jobs],
        )
        self.manage = iam.PolicyStatement(
            sid="WatchTagAndDeleteJobs",
            actions=[
                "cleanrooms-ml:GetAudienceGenerationJob",
                "cleanrooms-ml:DeleteAudienceGenerationJob",
                "cleanrooms-ml:TagResource",
                "cleanrooms-ml:UntagResource",
                "cleanrooms-ml:ListTagsForResource",
            ],
            resources=[jobs],
        )
        # ListAudienceGenerationJobs has no resource type: it finds a job again by its unique name.
        self.list = iam.PolicyStatement(
            sid="FindJobsByName",
            actions=["cleanrooms-ml:ListAudienceGenerationJobs"],
            resources=["*"],
        )
        self.pass_role = iam.PolicyStatement(
            sid="PassSeedRolesToCleanRoomsMl",
            actions=["iam:PassRole"],
            resources=[],
            conditions={"StringEquals": {"iam:PassedToService": SERVICE_PRINCIPAL}},
        )
        self._models: set[str] = set()
        self._roles: set[str] = set()

    def all(self) -> list[iam.PolicyStatement]:
        return [self.start, self.manage, self.list, self.pass_role]

    def add_job(self, configured_audience_model_arn: str, seed_role_arn: str) -> None:
        if configured_audience_model_arn not in self._models:
            self._models.add(configured_audience_model_arn)
            self.start.add_resources(configured_audience_model_arn)
        if seed_role_arn not in self._roles:
            self._roles.add(seed_role_arn)
            self.pass_role.add_resources(seed_role_arn)


def log_statement(log_group_arn: str) -> iam.PolicyStatement:
    """Writing to the provider's own log group (instead of the AWS-managed basic execution policy)."""
    return iam.PolicyStatement(
        sid="WriteOwnLogs",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[log_group_arn],  # a LogGroup's ARN ends in ":*", which covers its streams
    )


# --------------------------------------------------------------------------------------------------
# cdk-nag: acknowledging the wildcard findings (AwsSolutions-IAM5) that must stay


#: Finding texts (``Resource::...``), or a function that computes them once references are final.
Findings = Iterable[str] | Callable[[], Iterable[str]]


def acknowledge_wildcards(scope: IConstruct, findings: Findings, reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 findings on ``scope``; ``findings`` may be a callable (computed late)."""
    if callable(findings):
        scope.node.add_validation(_LateAcknowledgment(scope, findings, reason))
        return
    for finding in findings:
        Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason))


@jsii.implements(IValidation)
class _LateAcknowledgment:
    """Acknowledges findings whose text holds logical ids, computed once references are final.

    cdk-nag names a wildcard finding after the resolved resource (``<LogicalId.Arn>/prefix*``); the
    logical id and cross-stack references are settled only when the app is prepared, which is before
    CDK validates the tree and before cdk-nag runs. Validating reports nothing.
    """

    def __init__(self, scope: IConstruct, findings: Callable[[], Iterable[str]], reason: str) -> None:
        self._scope = scope
        self._findings = findings
        self._reason = reason

    def validate(self) -> list[str]:
        acknowledge_wildcards(self._scope, list(self._findings()), self._reason)
        return []


def skip_checkov(resource: IConstruct | None, check_id: str, reason: str) -> None:
    """Skip one checkov check on one resource (template Metadata ``checkov.skip``), with the reason."""
    if not isinstance(resource, CfnResource):
        return
    existing = resource.get_metadata("checkov") or {}
    skips = [s for s in existing.get("skip", []) if s.get("id") != check_id]
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check_id, "comment": reason}]})


def nag_text(node: Any) -> str:
    """A resolved CloudFormation value as cdk-nag spells it in finding ids (its flattenCfnReference)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(nag_text(item) for item in items)
        if "Fn::Sub" in node:
            return nag_text(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{nag_text(resource)}.{nag_text(attribute)}>"
        if "Fn::ImportValue" in node:
            return nag_text(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{nag_text(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
