"""The training-data provider's side: a configured audience model, shared with a partner and a collaboration.

The audience model is trained outside this stack (its ARN comes as context); this stack configures it: where
the segments partners generate are written (a bucket of this account, with the role that writes them, made
by the library), the sizes and metrics partners get, a resource policy that lets the partner's account start
audience generation jobs from it, and its association with the collaboration through this account's
membership.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, CfnOutput, CfnResource, Environment, Stack, Validations
from aws_cdk import aws_s3 as s3

from cdk_cleanrooms_ml import (
    AudienceDestination,
    AudienceSizeConfig,
    AudienceSizeType,
    ConfiguredAudienceModel,
    SharedAudienceMetrics,
)
from constructs import Construct

STACK_NAME = "CleanRoomsMlTrainingProviderExample"
DEFAULT_AUDIENCE_MODEL_ARN = "arn:aws:cleanrooms-ml:us-east-1:444455556666:audience-model/interactions-2026"
DEFAULT_PARTNER_ACCOUNT = "111122223333"
DEFAULT_MEMBERSHIP_ID = "5b7d0f2a-8c1e-4c3a-9e6f-1a2b3c4d5e6f"


class TrainingProviderStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, audience_model_arn: str, partner: str, membership_id: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        segments = s3.Bucket(
            self,
            "Segments",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
        )
        no_access_logs = "example segment bucket: enable server access logging for real customer data"
        Validations.of(segments).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=no_access_logs))
        segments_resource = segments.node.default_child
        assert isinstance(segments_resource, CfnResource)
        segments_resource.add_metadata("checkov", {"skip": [{"id": "CKV_AWS_18", "comment": no_access_logs}]})
        model = ConfiguredAudienceModel(
            self,
            "Lookalike",
            audience_model_arn=audience_model_arn,
            destination=AudienceDestination.from_bucket(segments, prefix="segments/"),
            shared_audience_metrics=[SharedAudienceMetrics.ALL],
            audience_size_config=AudienceSizeConfig(type=AudienceSizeType.PERCENTAGE, bins=[5, 10, 20]),
            description="Lookalike model of the interactions dataset, for the partner's campaigns",
            tags={"team": "data"},
        )
        model.grant_start_audience_generation(partner)
        association = model.associate("InCollaboration", membership_id=membership_id, name="lookalike")
        CfnOutput(self, "ConfiguredAudienceModelArn", value=model.configured_audience_model_arn)
        CfnOutput(self, "CollaborationId", value=association.collaboration_id)


def build(app: App) -> TrainingProviderStack:
    """Add the example's stack to ``app`` (the tests synthesize every example in one app)."""
    return TrainingProviderStack(
        app,
        STACK_NAME,
        audience_model_arn=app.node.try_get_context("audienceModelArn") or DEFAULT_AUDIENCE_MODEL_ARN,
        partner=app.node.try_get_context("partnerAccount") or DEFAULT_PARTNER_ACCOUNT,
        membership_id=app.node.try_get_context("membershipId") or DEFAULT_MEMBERSHIP_ID,
        env=Environment(region="us-east-1"),
    )


def main(outdir: str | None = None) -> None:
    """Synthesize into ``outdir``; default: ``CDK_OUTDIR`` (set by the CDK CLI), else a temporary directory."""
    app = App(outdir=outdir)
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
