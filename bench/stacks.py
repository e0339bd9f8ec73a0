"""The two stacks the synth bench compares: N jobs with this library, and N jobs written without it.

Both stacks hold one seed role (an ``iam.Role`` that Clean Rooms ML assumes) shared by every job,
and N jobs with the same request: a configured audience model, an S3 seed of its own per job, and
the shared role.

- ``ours``: ``AudienceGenerationJob`` with its defaults (generated name, shared provider).
- ``peer``: aws-cdk-lib's ``custom_resources.AwsCustomResource`` calling ``CleanRoomsML``
  ``startAudienceGenerationJob`` on create (physical id from the response's ``audienceGenerationJobArn``)
  and ``deleteAudienceGenerationJob`` on delete, with the policy derived from those calls
  (``AwsCustomResourcePolicy.from_sdk_calls(resources=ANY_RESOURCE)``), as its documentation shows.
  The API needs a name, so the peer names its jobs ``job-<i>``.
"""

from __future__ import annotations

from aws_cdk import Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr

from constructs import Construct

ACCOUNT = "111122223333"
REGION = "us-east-1"
ENV = Environment(account=ACCOUNT, region=REGION)
MODEL_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/bench-model"
SIDES = ("ours", "peer")


def seed_uri(index: int) -> str:
    return f"s3://seed-bucket/seeds/seed-{index}.jsonl"


def seed_role(stack: Stack) -> iam.Role:
    return iam.Role(stack, "SeedRole", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))


def add_ours(stack: Stack, role: iam.IRole, count: int) -> None:
    from cdk_cleanrooms_ml import AudienceGenerationJob, S3DataSource, SeedAudience

    for index in range(count):
        AudienceGenerationJob(
            stack,
            f"Job{index}",
            configured_audience_model_arn=MODEL_ARN,
            seed_audience=SeedAudience(role=role, data_source=S3DataSource(s3_uri=seed_uri(index))),
        )


def add_peer(stack: Stack, role: iam.IRole, count: int) -> None:
    for index in range(count):
        cr.AwsCustomResource(
            stack,
            f"Job{index}",
            on_create=cr.AwsSdkCall(
                service="CleanRoomsML",
                action="startAudienceGenerationJob",
                parameters={
                    "name": f"job-{index}",
                    "configuredAudienceModelArn": MODEL_ARN,
                    "seedAudience": {"roleArn": role.role_arn, "dataSource": {"s3Uri": seed_uri(index)}},
                },
                physical_resource_id=cr.PhysicalResourceId.from_response("audienceGenerationJobArn"),
            ),
            on_delete=cr.AwsSdkCall(
                service="CleanRoomsML",
                action="deleteAudienceGenerationJob",
                parameters={"audienceGenerationJobArn": cr.PhysicalResourceIdReference()},
            ),
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE),
        )


def build(scope: Construct, side: str, count: int) -> Stack:
    """A stack called ``Bench`` with the seed role and ``count`` jobs of the given side."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, not {side!r}")
    stack = Stack(scope, "Bench", env=ENV)
    role = seed_role(stack)
    (add_ours if side == "ours" else add_peer)(stack, role, count)
    return stack
