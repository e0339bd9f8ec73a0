"""The IAM statements of the handler role: the least that starting, watching and deleting jobs needs.

Resource ARNs are collected as jobs are added (without duplicates), so one statement of each kind
serves every job of the provider.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

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
