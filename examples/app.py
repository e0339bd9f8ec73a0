"""The example app that ``cdk.json`` runs: one job seeded from a JSON-lines file in S3.

Synthesize it with ``npx cdk synth`` (or ``python examples/app.py``); deploying it needs a real AWS
account with a configured audience model (set the context value ``configuredAudienceModelArn``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, CfnOutput, CfnResource, Duration, Environment, Stack, Validations
from aws_cdk import aws_s3 as s3

from cdk_cleanrooms_ml import AudienceGenerationJob, SeedAudience
from constructs import Construct

STACK_NAME = "CleanRoomsMlExample"
DEFAULT_MODEL_ARN = "arn:aws:cleanrooms-ml:us-east-1:111122223333:configured-audience-model/example"
SEED_KEY = "seed/users.jsonl"


class LookalikeStack(Stack):
    """A seed bucket, the role Clean Rooms ML reads it with (made by the library), and one job."""

    def __init__(self, scope: Construct, id: str, *, model_arn: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        bucket = s3.Bucket(
            self,
            "SeedBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
        )
        # Server access logs need a second bucket (which would itself be unlogged): out of scope for an
        # example; turn them on (or use CloudTrail data events) for a bucket of real customer ids.
        no_access_logs = "example seed bucket: enable server access logging for real customer data"
        Validations.of(bucket).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=no_access_logs))
        bucket_resource = bucket.node.default_child
        assert isinstance(bucket_resource, CfnResource)
        bucket_resource.add_metadata("checkov", {"skip": [{"id": "CKV_AWS_18", "comment": no_access_logs}]})
        job = AudienceGenerationJob(
            self,
            "Lookalike",
            configured_audience_model_arn=model_arn,
            # The library creates the seed role: trusted by Clean Rooms ML for this account's jobs
            # only, allowed to read exactly this object.
            seed_audience=SeedAudience.from_bucket(bucket, key=SEED_KEY),
            description="Lookalike audience from the spring campaign's converters",
            tags={"team": "ads"},
            timeout=Duration.minutes(55),
        )
        CfnOutput(self, "JobArn", value=job.audience_generation_job_arn)
        CfnOutput(self, "JobStatus", value=job.status)
        CfnOutput(self, "RecallMetric", value=job.recall_metric)


def build(app: App) -> LookalikeStack:
    """Add the example's stack to ``app`` (the tests synthesize every example in one app)."""
    model_arn = app.node.try_get_context("configuredAudienceModelArn") or DEFAULT_MODEL_ARN
    return LookalikeStack(app, STACK_NAME, model_arn=model_arn, env=Environment(region="us-east-1"))


def main(outdir: str | None = None) -> None:
    """Synthesize into ``outdir``; default: ``CDK_OUTDIR`` (set by the CDK CLI), else a temporary directory."""
    app = App(outdir=outdir)
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
