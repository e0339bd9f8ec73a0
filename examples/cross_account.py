"""A configured audience model owned by another account, used through a shared collaboration.

The model provider (account 444455556666 here) associated its configured audience model with a
collaboration; this stack belongs to another member, which seeds the model with its own users and
passes the ``collaboration_id``. Synthesize with ``python examples/cross_account.py``; deploy with the
context values ``configuredAudienceModelArn`` (the other account's model) and ``collaborationId``.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, CfnOutput, CfnResource, Environment, Stack, Validations
from aws_cdk import aws_s3 as s3

from cdk_cleanrooms_ml import AudienceGenerationJob, SeedAudience
from constructs import Construct

STACK_NAME = "CleanRoomsMlCrossAccountExample"
REGION = "us-east-1"
MODEL_OWNER_ACCOUNT = "444455556666"
DEFAULTS = {
    "configuredAudienceModelArn": (
        f"arn:aws:cleanrooms-ml:{REGION}:{MODEL_OWNER_ACCOUNT}:configured-audience-model/partner-model"
    ),
    "collaborationId": "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f",
}
SEED_KEY = "seed/loyal-customers.jsonl"


class CrossAccountStack(Stack):
    """Our seed (bucket and role in this account) sent to a model that another account owns."""

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
            "PartnerLookalike",
            configured_audience_model_arn=model_arn,
            collaboration_id=collaboration_id,
            # The job runs in this account (the caller's): the seed role the library creates trusts
            # this account's jobs only, and the bucket stays private to this account.
            seed_audience=SeedAudience.from_bucket(bucket, key=SEED_KEY),
            description="Lookalikes of our loyal customers from the partner's model",
        )
        CfnOutput(self, "JobArn", value=job.audience_generation_job_arn)
        CfnOutput(self, "JobStatus", value=job.status)


def build(app: App) -> CrossAccountStack:
    """Add the example's stack to ``app``; context values override the placeholder identifiers."""
    values = {key: app.node.try_get_context(key) or default for key, default in DEFAULTS.items()}
    return CrossAccountStack(
        app,
        STACK_NAME,
        model_arn=values["configuredAudienceModelArn"],
        collaboration_id=values["collaborationId"],
        env=Environment(region=REGION),
    )


def main(outdir: str | None = None) -> None:
    """Synthesize into ``outdir``; default: ``CDK_OUTDIR`` (set by the CDK CLI), else a temporary directory."""
    app = App(outdir=outdir)
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
