"""Several jobs in one stack, tagged for the whole stack with ``Tags.of(stack).add(...)``.

Every job shares the stack's one provider, and stack-level CDK tags reach each job's ``tags`` the
way they reach native resources (a job's own ``tags`` are merged with them). Outputs give each
job's ARN, status and metrics. Synthesize with ``python examples/many_jobs.py``.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, CfnOutput, CfnResource, Environment, Stack, Tags, Validations
from aws_cdk import aws_s3 as s3

from cdk_cleanrooms_ml import AudienceGenerationJob, SeedAudience
from constructs import Construct

STACK_NAME = "CleanRoomsMlManyJobsExample"
DEFAULT_MODEL_ARN = "arn:aws:cleanrooms-ml:us-east-1:111122223333:configured-audience-model/example"
#: One job per customer segment; each segment's seed is its own JSON-lines file.
SEGMENTS = ("Gardeners", "Cyclists", "Bakers")
STACK_TAGS = {"project": "spring-campaign", "cost-center": "1234"}


class ManyJobsStack(Stack):
    """One seed bucket, one job (and seed role) per segment, stack-wide tags, and outputs per job."""

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
        no_access_logs = "example seed bucket: enable server access logging for real customer data"
        Validations.of(bucket).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=no_access_logs))
        bucket_resource = bucket.node.default_child
        assert isinstance(bucket_resource, CfnResource)
        bucket_resource.add_metadata("checkov", {"skip": [{"id": "CKV_AWS_18", "comment": no_access_logs}]})
        self.jobs: list[AudienceGenerationJob] = []
        for segment in SEGMENTS:
            job = AudienceGenerationJob(
                self,
                segment,
                configured_audience_model_arn=model_arn,
                # One seed role per segment, each reading its own file only.
                seed_audience=SeedAudience.from_bucket(bucket, key=f"segments/{segment.lower()}.jsonl"),
                description=f"Lookalikes of the {segment.lower()} segment",
                tags={"segment": segment.lower()},
            )
            self.jobs.append(job)
            CfnOutput(self, f"{segment}JobArn", value=job.audience_generation_job_arn)
            CfnOutput(self, f"{segment}Status", value=job.status)
            CfnOutput(self, f"{segment}RecallMetric", value=job.recall_metric)
            CfnOutput(self, f"{segment}RelevanceMetrics", value=job.relevance_metrics)
        # Applied last on purpose: CDK's tag aspect runs at synth, so order does not matter.
        for key, value in STACK_TAGS.items():
            Tags.of(self).add(key, value)


def build(app: App) -> ManyJobsStack:
    """Add the example's stack to ``app``."""
    model_arn = app.node.try_get_context("configuredAudienceModelArn") or DEFAULT_MODEL_ARN
    return ManyJobsStack(app, STACK_NAME, model_arn=model_arn, env=Environment(region="us-east-1"))


def main(outdir: str | None = None) -> None:
    """Synthesize into ``outdir``; default: ``CDK_OUTDIR`` (set by the CDK CLI), else a temporary directory."""
    app = App(outdir=outdir)
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
