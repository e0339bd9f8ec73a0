"""The whole lookalike flow, as two accounts deploy it: two stacks of one app.

``CleanRoomsMlTrainingDataProvider`` (the account that owns the training data): a training dataset on an AWS Glue
table -> an audience model trained on it (the deploy waits for the training through a WaitCondition, up to 12
hours) -> a configured audience model that writes partners' segments to a bucket of this account, shared with
the partner's account by its resource policy -> its association with the collaboration.

``CleanRoomsMlSeedDataProvider`` (the partner's account): a seed in S3 -> an audience generation job on the
configured audience model -> an export of the top 10 percent of the generated audience.

The two stacks are in two accounts, so the second cannot reference the first: deploy the first, then give its
``ConfiguredAudienceModelArn`` and ``CollaborationId`` outputs to the second as context::

    cdk deploy --app "python examples/full_pipeline.py" CleanRoomsMlTrainingDataProvider -c membershipId=<yours>
    cdk deploy --app "python examples/full_pipeline.py" CleanRoomsMlSeedDataProvider \
        -c configuredAudienceModelArn=<ConfiguredAudienceModelArn> -c collaborationId=<CollaborationId>

The accounts, ids and ARNs in this file are placeholders (the seed stack's default model ARN names no real model).
Each stack is synthesized with its own account's credentials in a real deploy (``--profile``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, CfnOutput, CfnResource, Duration, Environment, Stack, Validations
from aws_cdk import aws_s3 as s3

from cdk_cleanrooms_ml import (
    AudienceDestination,
    AudienceGenerationJob,
    AudienceModel,
    AudienceSize,
    AudienceSizeConfig,
    AudienceSizeType,
    Column,
    ColumnType,
    ConfiguredAudienceModel,
    SeedAudience,
    SharedAudienceMetrics,
    TrainingDataset,
)
from constructs import Construct

TRAINING_STACK_NAME = "CleanRoomsMlTrainingDataProvider"
SEED_STACK_NAME = "CleanRoomsMlSeedDataProvider"
#: The examples' stack names (the tests synthesize every example).
STACK_NAME = TRAINING_STACK_NAME
STACK_NAMES = (TRAINING_STACK_NAME, SEED_STACK_NAME)
TRAINING_ACCOUNT = "444455556666"
SEED_ACCOUNT = "111122223333"
REGION = "us-east-1"
DEFAULT_CONFIGURED_MODEL_ARN = (
    f"arn:aws:cleanrooms-ml:{REGION}:{TRAINING_ACCOUNT}:configured-audience-model/00000000-0000-0000-0000-000000000000"
)
DEFAULT_MEMBERSHIP_ID = "5b7d0f2a-8c1e-4c3a-9e6f-1a2b3c4d5e6f"
DEFAULT_COLLABORATION_ID = "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f"
SEED_KEY = "seed/converters.jsonl"


def _example_bucket(scope: Construct, id: str, what: str) -> s3.Bucket:
    bucket = s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
    )
    no_access_logs = f"example {what} bucket: enable server access logging for real customer data"
    Validations.of(bucket).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=no_access_logs))
    resource = bucket.node.default_child
    assert isinstance(resource, CfnResource)
    resource.add_metadata("checkov", {"skip": [{"id": "CKV_AWS_18", "comment": no_access_logs}]})
    return bucket


class TrainingDataProviderStack(Stack):
    def __init__(self, scope: Construct, id: str, *, partner: str, membership_id: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        data = _example_bucket(self, "TrainingData", "training data")
        dataset = TrainingDataset(
            self,
            "Interactions",
            database_name="ads",
            table_name="interactions",
            columns=[
                Column("user_id", ColumnType.USER_ID),
                Column("item_id", ColumnType.ITEM_ID),
                Column("ts", ColumnType.TIMESTAMP),
                Column("country", ColumnType.CATEGORICAL_FEATURE),
            ],
            data_bucket=data,
            data_prefix="interactions/",
        )
        model = AudienceModel(
            self,
            "Model",
            training_dataset=dataset,
            description="Lookalike model of the interactions table",
            wait_for_completion=True,  # a WaitCondition: the configured model is created once training is ACTIVE
            timeout=Duration.hours(12),
        )
        segments = _example_bucket(self, "Segments", "segment")  # where partners' generated segments are written
        configured = ConfiguredAudienceModel(
            self,
            "Lookalike",
            audience_model=model,
            destination=AudienceDestination.from_bucket(segments, prefix="segments/"),
            shared_audience_metrics=[SharedAudienceMetrics.ALL],
            audience_size_config=AudienceSizeConfig(type=AudienceSizeType.PERCENTAGE, bins=[5, 10, 20]),
        )
        configured.grant_start_audience_generation(partner)
        association = configured.associate("InCollaboration", membership_id=membership_id)
        CfnOutput(self, "AudienceModelArn", value=model.audience_model_arn)
        CfnOutput(self, "ConfiguredAudienceModelArn", value=configured.configured_audience_model_arn)
        CfnOutput(self, "CollaborationId", value=association.collaboration_id)


class SeedDataProviderStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, configured_model_arn: str, collaboration_id: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        seed = _example_bucket(self, "SeedBucket", "seed")
        job = AudienceGenerationJob(
            self,
            "Lookalike",
            configured_audience_model_arn=configured_model_arn,
            collaboration_id=collaboration_id,
            seed_audience=SeedAudience.from_bucket(seed, key=SEED_KEY),
        )
        export = job.export("Top10Percent", audience_size=AudienceSize.percentage(10))
        CfnOutput(self, "JobArn", value=job.audience_generation_job_arn)
        CfnOutput(self, "Top10PercentLocation", value=export.output_location)


def build(app: App) -> TrainingDataProviderStack:
    """Add both stacks to ``app``; returns the first (the tests synthesize every example in one app)."""
    training = TrainingDataProviderStack(
        app,
        TRAINING_STACK_NAME,
        partner=SEED_ACCOUNT,
        membership_id=app.node.try_get_context("membershipId") or DEFAULT_MEMBERSHIP_ID,
        env=Environment(account=TRAINING_ACCOUNT, region=REGION),
    )
    SeedDataProviderStack(
        app,
        SEED_STACK_NAME,
        configured_model_arn=app.node.try_get_context("configuredAudienceModelArn") or DEFAULT_CONFIGURED_MODEL_ARN,
        collaboration_id=app.node.try_get_context("collaborationId") or DEFAULT_COLLABORATION_ID,
        env=Environment(account=SEED_ACCOUNT, region=REGION),
    )
    return training


def main(outdir: str | None = None) -> None:
    """Synthesize into ``outdir``; default: ``CDK_OUTDIR`` (set by the CDK CLI), else a temporary directory."""
    app = App(outdir=outdir)
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
