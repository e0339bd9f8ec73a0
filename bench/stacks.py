"""The three stacks the synth bench compares: N jobs with this library, and N jobs written without it, two ways.

Every stack holds one seed role (an ``iam.Role`` that Clean Rooms ML assumes) shared by every job,
and N jobs with the same request: a configured audience model, an S3 seed of its own per job, and
the shared role.

- ``ours``: ``AudienceGenerationJob`` with its defaults (generated name, shared provider).
- ``peer``: aws-cdk-lib's ``custom_resources.AwsCustomResource`` calling ``CleanRoomsML``
  ``startAudienceGenerationJob`` on create (physical id from the response's ``audienceGenerationJobArn``)
  and ``deleteAudienceGenerationJob`` on delete, with the policy derived from those calls
  (``AwsCustomResourcePolicy.from_sdk_calls(resources=ANY_RESOURCE)``), as its documentation shows:
  an ``AWS::IAM::Policy`` per job. The API needs a name, so the peer names its jobs ``job-<i>``.
- ``peer-role``: the same calls written by an engineer who has many of them: one ``iam.Role`` for all
  (``role=``, no ``policy=``), assumed by Lambda, with the AWS-managed basic execution policy for its logs
  and one policy for what the calls need (start, tag and delete jobs of the model, pass the seed role).
  The peer at its best: one resource per job.
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
SIDES = ("ours", "peer", "peer-role")
#: Where a peer-role job may be started and deleted (the careful engineer's narrowing of ``*``).
JOB_ARNS = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/*"


def seed_uri(index: int) -> str:
    return f"s3://seed-bucket/seeds/seed-{index}.jsonl"


def seed_role(stack: Stack) -> iam.Role:
    return iam.Role(stack, "SeedRole", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))


def add_ours(stack: Stack, role: iam.IRole, count: int, arn_reads: int = 0) -> None:
    from cdk_cleanrooms_ml import AudienceGenerationJob, S3DataSource, SeedAudience

    for index in range(count):
        job = AudienceGenerationJob(
            stack,
            f"Job{index}",
            configured_audience_model_arn=MODEL_ARN,
            seed_audience=SeedAudience(role=role, data_source=S3DataSource(s3_uri=seed_uri(index))),
        )
        for _ in range(arn_reads):  # as an app that grants on the job and outputs its ARN would
            job.audience_generation_job_arn  # noqa: B018


def peer_role(stack: Stack, seed: iam.IRole) -> iam.Role:
    """The one role of all ``peer-role`` jobs: what the SDK calls need, logs through the managed policy."""
    role = iam.Role(
        stack,
        "PeerRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")],
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["cleanrooms-ml:StartAudienceGenerationJob", "cleanrooms-ml:TagResource"],
            resources=[MODEL_ARN, JOB_ARNS],
        )
    )
    role.add_to_policy(iam.PolicyStatement(actions=["cleanrooms-ml:DeleteAudienceGenerationJob"], resources=[JOB_ARNS]))
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[seed.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "cleanrooms-ml.amazonaws.com"}},
        )
    )
    return role


def add_peer(stack: Stack, role: iam.IRole, count: int, shared_role: iam.IRole | None = None) -> None:
    """``count`` AwsCustomResources: each with its own policy, or all with ``shared_role``."""
    policy = None
    if shared_role is None:
        policy = cr.AwsCustomResourcePolicy.from_sdk_calls(resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE)
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
            policy=policy,
            role=shared_role,
        )


def build(scope: Construct, side: str, count: int, arn_reads: int = 0) -> Stack:
    """A stack called ``Bench`` with the seed role and ``count`` jobs of the given side (``ours`` reads each
    job's ARN ``arn_reads`` times)."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, not {side!r}")
    stack = Stack(scope, "Bench", env=ENV)
    role = seed_role(stack)
    if side == "ours":
        add_ours(stack, role, count, arn_reads)
    elif side == "peer":
        add_peer(stack, role, count)
    else:
        add_peer(stack, role, count, shared_role=peer_role(stack, role))
    return stack
