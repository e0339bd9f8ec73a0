"""Seeds produced by a protected SQL query in a Clean Rooms collaboration.

Two jobs: one runs a query string with parameters, the other an analysis template of the
collaboration; each says which workers run the query (type, number, Spark properties).
Synthesize with ``python examples/sql_seed.py`` or ``npx cdk synth --app "python examples/sql_seed.py"``;
deploy with the context values ``configuredAudienceModelArn``, ``collaborationId`` and ``membershipId``.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import App, CfnOutput, Environment, Stack

from cdk_cleanrooms_ml import (
    AudienceGenerationJob,
    SeedAudience,
    WorkerComputeConfiguration,
    WorkerComputeType,
)
from constructs import Construct

STACK_NAME = "CleanRoomsMlSqlSeedExample"
REGION = "us-east-1"
DEFAULTS = {
    "configuredAudienceModelArn": f"arn:aws:cleanrooms-ml:{REGION}:111122223333:configured-audience-model/example",
    "collaborationId": "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f",
    "membershipId": "7c9d2e4f-1a3b-4c5d-8e6f-0a1b2c3d4e5f",
}

QUERY = """
SELECT DISTINCT c.user_id
FROM customers c JOIN purchases p ON c.user_id = p.user_id
WHERE p.category = :category AND p.purchased_at >= :since
"""


class SqlSeedStack(Stack):
    """Two SQL-seeded jobs in one collaboration, sharing the seed role the library creates."""

    def __init__(
        self, scope: Construct, id: str, *, model_arn: str, collaboration_id: str, membership_id: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        membership_arn = self.format_arn(service="cleanrooms", resource="membership", resource_name=membership_id)
        # The library creates the seed role Clean Rooms ML runs the query with (Clean Rooms user guide,
        # "Create a service role"): protected-query permissions, the query ones on this membership only.
        by_query = AudienceGenerationJob(
            self,
            "FromQuery",
            configured_audience_model_arn=model_arn,
            collaboration_id=collaboration_id,
            seed_audience=SeedAudience.from_sql(
                scope=self,
                membership_arn=membership_arn,
                query_string=QUERY,
                parameters={"category": "garden", "since": "2025-03-01"},
                sql_compute_configuration=WorkerComputeConfiguration(
                    type=WorkerComputeType.CR_4X,
                    number=4,
                    spark_properties={"spark.sql.shuffle.partitions": "64"},
                ),
            ),
            description="Garden buyers since March, from a query string",
        )
        template_arn = f"{membership_arn}/analysistemplate/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
        by_template = AudienceGenerationJob(
            self,
            "FromTemplate",
            configured_audience_model_arn=model_arn,
            collaboration_id=collaboration_id,
            seed_audience=SeedAudience.from_sql(
                scope=self,
                membership_arn=membership_arn,
                analysis_template_arn=template_arn,
                parameters={"region": "west"},
                sql_compute_configuration=WorkerComputeConfiguration(
                    type=WorkerComputeType.CR_1X,
                    number=16,
                    spark_properties={"spark.executor.memory": "8g", "spark.sql.adaptive.enabled": "true"},
                ),
            ),
            include_seed_in_output=True,
            description="Seed from the collaboration's approved analysis template",
        )
        for label, job in (("FromQuery", by_query), ("FromTemplate", by_template)):
            CfnOutput(self, f"{label}JobArn", value=job.audience_generation_job_arn)
            CfnOutput(self, f"{label}Status", value=job.status)


def build(app: App) -> SqlSeedStack:
    """Add the example's stack to ``app``; context values override the placeholder identifiers."""
    values = {key: app.node.try_get_context(key) or default for key, default in DEFAULTS.items()}
    return SqlSeedStack(
        app,
        STACK_NAME,
        model_arn=values["configuredAudienceModelArn"],
        collaboration_id=values["collaborationId"],
        membership_id=values["membershipId"],
        env=Environment(region=REGION),
    )


def main(outdir: str | None = None) -> None:
    """Synthesize into ``outdir``; default: ``CDK_OUTDIR`` (set by the CDK CLI), else a temporary directory."""
    app = App(outdir=outdir)
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
