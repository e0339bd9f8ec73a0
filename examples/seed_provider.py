"""The seed-data provider's side of a lookalike collaboration: a seed in S3, a job, two exports of its segment.

The job generates a lookalike audience from the seed with a configured audience model that another account
shared with this one (through the collaboration); the two exports write the top 10 percent and the 50,000
most relevant users to the configured audience model's destination. Exports cannot be deleted: the segments
stay where the service wrote them when the stack goes.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, CfnOutput, CfnResource, Environment, Stack, Validations
from aws_cdk import aws_s3 as s3

from cdk_cleanrooms_ml import AudienceExportJob, AudienceGenerationJob, AudienceSize, SeedAudience
from constructs import Construct

STACK_NAME = "CleanRoomsMlSeedProviderExample"
DEFAULT_MODEL_ARN = "arn:aws:cleanrooms-ml:us-east-1:444455556666:configured-audience-model/shared-lookalike"
DEFAULT_COLLABORATION_ID = "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f"
SEED_KEY = "seed/converters.jsonl"


class SeedProviderStack(Stack):
    def __init__(self, scope: Construct, id: str, *, model_arn: str, collaboration_id: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        bucket = s3.Bucket(
            self,
            "SeedBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
        )
        no_access_logs = "example seed bucket: enable server access logging for real customer data"
        Validations.of(bucket).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=no_access_logs))
        bucket_resource = bucket.node.default_child
        assert isinstance(bucket_resource, CfnResource)
        bucket_resource.add_metadata("checkov", {"skip": [{"id": "CKV_AWS_18", "comment": no_access_logs}]})
        job = AudienceGenerationJob(
            self,
            "Lookalike",
            configured_audience_model_arn=model_arn,
            collaboration_id=collaboration_id,  # the model belongs to the training-data provider's account
            seed_audience=SeedAudience.from_bucket(bucket, key=SEED_KEY),
            tags={"team": "growth"},
        )
        top = job.export("Top10Percent", audience_size=AudienceSize.percentage(10))
        fixed = AudienceExportJob(
            self, "Top50k", audience_generation_job=job, audience_size=AudienceSize.absolute(50_000)
        )
        CfnOutput(self, "JobArn", value=job.audience_generation_job_arn)
        CfnOutput(self, "Top10PercentLocation", value=top.output_location)
        CfnOutput(self, "Top50kLocation", value=fixed.output_location)


def build(app: App) -> SeedProviderStack:
    """Add the example's stack to ``app`` (the tests synthesize every example in one app)."""
    return SeedProviderStack(
        app,
        STACK_NAME,
        model_arn=app.node.try_get_context("configuredAudienceModelArn") or DEFAULT_MODEL_ARN,
        collaboration_id=app.node.try_get_context("collaborationId") or DEFAULT_COLLABORATION_ID,
        env=Environment(region="us-east-1"),
    )


def main(outdir: str | None = None) -> None:
    """Synthesize into ``outdir``; default: ``CDK_OUTDIR`` (set by the CDK CLI), else a temporary directory."""
    app = App(outdir=outdir)
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
