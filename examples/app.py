"""The example app that ``cdk.json`` runs: one job seeded from a JSON-lines file in S3.

Synthesize it with ``npx cdk synth`` (see the README); deploying it needs a real AWS account with a
configured audience model (set the context value ``configuredAudienceModelArn``).
"""

from __future__ import annotations

from aws_cdk import App, CfnOutput, Duration, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_cleanrooms_ml import AudienceGenerationJob, S3DataSource, SeedAudience

from constructs import Construct

DEFAULT_MODEL_ARN = "arn:aws:cleanrooms-ml:us-east-1:111122223333:configured-audience-model/example"


class LookalikeStack(Stack):
    """A seed bucket, the role Clean Rooms ML reads it with, and one audience generation job."""

    def __init__(self, scope: Construct, id: str, *, model_arn: str, **kwargs: object) -> None:
        super().__init__(scope, id, **kwargs)  # type: ignore[arg-type]
        bucket = s3.Bucket(
            self,
            "SeedBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
        )
        seed_role = iam.Role(
            self,
            "SeedRole",
            assumed_by=iam.ServicePrincipal(
                "cleanrooms-ml.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="cleanrooms-ml", resource="audience-generation-job", resource_name="*"
                        )
                    },
                },
            ),
        )
        bucket.grant_read(seed_role, "seed/*")
        job = AudienceGenerationJob(
            self,
            "Lookalike",
            configured_audience_model_arn=model_arn,
            seed_audience=SeedAudience(
                role=seed_role,
                data_source=S3DataSource(s3_uri=bucket.s3_url_for_object("seed/users.jsonl")),
            ),
            description="Lookalike audience from the spring campaign's converters",
            tags={"team": "ads"},
            timeout=Duration.minutes(60),
        )
        CfnOutput(self, "JobArn", value=job.audience_generation_job_arn)
        CfnOutput(self, "JobStatus", value=job.status)
        CfnOutput(self, "RecallMetric", value=job.recall_metric)


def main() -> None:
    app = App()
    model_arn = app.node.try_get_context("configuredAudienceModelArn") or DEFAULT_MODEL_ARN
    LookalikeStack(app, "CleanRoomsMlExample", model_arn=model_arn, env=Environment(region="us-east-1"))
    app.synth()


if __name__ == "__main__":
    main()
