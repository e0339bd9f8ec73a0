"""The IAM statements of the handler role: the least that starting, watching and deleting jobs needs.

Resource ARNs are collected as jobs are added (without duplicates), so one statement of each kind
serves every job of the provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import jsii
from aws_cdk import Acknowledgment, Aws, CfnResource, Fn, Validations
from aws_cdk import aws_iam as iam

from constructs import IConstruct, IValidation

from .validation import arn_parts, is_token

SERVICE_PRINCIPAL = "cleanrooms-ml.amazonaws.com"


def job_arn_pattern(partition: str = Aws.PARTITION, region: str = Aws.REGION, account: str = Aws.ACCOUNT_ID) -> str:
    """Every audience generation job of an account and region (the stack's by default)."""
    return f"arn:{partition}:cleanrooms-ml:{region}:{account}:audience-generation-job/*"


def model_home(model_arn: str) -> tuple[str, str, str]:
    """Partition, region and account of a configured audience model ARN; for a token, CloudFormation picks
    them out of the resolved ARN (``Fn::Select`` over ``Fn::Split``)."""
    parts = arn_parts(model_arn)
    if parts is not None:
        return parts["partition"], parts["region"], parts["account"]
    fields = Fn.split(":", model_arn)
    return Fn.select(1, fields), Fn.select(3, fields), Fn.select(4, fields)


class HandlerStatements:
    """The handler role's statements; ``add_job`` widens them to one more model, seed role and collaboration.

    Starting a job from a configured audience model is evaluated on three resources (the Clean Rooms ML
    user guide's IAM behaviours): the model, the caller's new job and, when the model belongs to another
    account, the model owner's copy of the job. Jobs live in the model's region, in the stack's account.
    """

    def __init__(self, stack_account: str, attach: Callable[[iam.PolicyStatement], Any]) -> None:
        """
        :param stack_account: the account of the stack (jobs are created there).
        :param attach: adds a statement to the handler role's policy; called once per statement, when the
            statement gets its first resource (a statement without resources is not a valid policy).
        """
        self._stack_account = stack_account
        self._attach = attach
        self._attached: set[int] = set()
        self.start = iam.PolicyStatement(
            sid="StartJobsFromTheseModels", actions=["cleanrooms-ml:StartAudienceGenerationJob"], resources=[]
        )
        self.manage = iam.PolicyStatement(
            sid="WatchTagAndDeleteJobs",
            actions=[
                "cleanrooms-ml:GetAudienceGenerationJob",
                "cleanrooms-ml:DeleteAudienceGenerationJob",
                "cleanrooms-ml:TagResource",
                "cleanrooms-ml:UntagResource",
                # Read only when a job's description leaves out its tags (the request digest tag).
                "cleanrooms-ml:ListTagsForResource",
            ],
            resources=[],
        )
        # ListAudienceGenerationJobs with no resource given needs *: it finds a job again by its unique name.
        self.list = iam.PolicyStatement(
            sid="FindJobsByName", actions=["cleanrooms-ml:ListAudienceGenerationJobs"], resources=["*"]
        )
        self.pass_role = iam.PolicyStatement(
            sid="PassSeedRolesToCleanRoomsMl",
            actions=["iam:PassRole"],
            resources=[],
            conditions={"StringEquals": {"iam:PassedToService": SERVICE_PRINCIPAL}},
        )
        self._collaborations: dict[str, iam.PolicyStatement] = {}
        self._added: set[tuple[str, str]] = set()

    def all(self) -> list[iam.PolicyStatement]:
        return [self.start, self.manage, self.list, self.pass_role, *self._collaborations.values()]

    def job_patterns(self) -> list[str]:
        """The job ARN patterns the statements grant (for cdk-nag's findings)."""
        return sorted({r for s in self.all() for r in s.resources if r.endswith(":audience-generation-job/*")})

    def add_job(
        self, configured_audience_model_arn: str, seed_role_arn: str, collaboration_id: str | None = None
    ) -> None:
        start = self._start_statement(collaboration_id)
        if self._once("model", f"{collaboration_id}|{configured_audience_model_arn}"):
            partition, region, owner = model_home(configured_audience_model_arn)
            caller_jobs = job_arn_pattern(partition, region, self._stack_account)
            self._add(start, configured_audience_model_arn, caller_jobs)
            if is_token(owner) or is_token(self._stack_account) or owner != self._stack_account:
                self._add(start, job_arn_pattern(partition, region, owner))
            self._add(self.manage, caller_jobs)
        self._add(self.list)
        self._add(self.pass_role, seed_role_arn)

    def _start_statement(self, collaboration_id: str | None) -> iam.PolicyStatement:
        """One start statement per collaboration, on the ``cleanrooms-ml:CollaborationId`` the request names."""
        if collaboration_id is None:
            return self.start
        statement = self._collaborations.get(collaboration_id)
        if statement is None:
            statement = self._collaborations[collaboration_id] = iam.PolicyStatement(
                sid=f"StartJobsInCollaboration{len(self._collaborations) + 1}",
                actions=["cleanrooms-ml:StartAudienceGenerationJob"],
                resources=[],
                conditions={"StringEquals": {"cleanrooms-ml:CollaborationId": collaboration_id}},
            )
        return statement

    def _once(self, kind: str, key: str) -> bool:
        if (kind, key) in self._added:
            return False
        self._added.add((kind, key))
        return True

    def _add(self, statement: iam.PolicyStatement, *resources: str) -> None:
        for resource in resources:
            if self._once(f"resource:{statement.sid}", resource):
                statement.add_resources(resource)
        if id(statement) not in self._attached:
            self._attached.add(id(statement))
            self._attach(statement)


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
