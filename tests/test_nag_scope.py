"""The library's cdk-nag acknowledgements never hide a user's own findings.

The library acknowledges the AwsSolutions-IAM5 findings it cannot avoid (``Resource::*`` among them)
on its own roles and state machine. A wildcard policy the user writes elsewhere in the same app raises
the same finding id and must still be reported. aws-cdk-lib also drops acknowledged findings from the
plugin reports itself: up to 2.270.0 by rule id for the whole app, whatever construct the id was
acknowledged on, and by construct path since 2.271.0. This test holds for every release the library
allows: ``.ci/lowest`` also runs this file against the installed wheel at the dependency floors.

Self-contained (no tests.helpers, no conftest) for that reason.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from aws_cdk import App, Environment, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from cdk_cleanrooms_ml import AudienceGenerationJob, S3DataSource, SeedAudience

ACCOUNT = "111122223333"
REGION = "us-east-1"
MODEL_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/abc"
MEMBERSHIP_ARN = f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f"
#: The finding the library acknowledges on its own constructs, and the user's policy below also raises.
SHARED_FINDING = "AwsSolutions-IAM5[Resource::*]"
USER_POLICY = "UserStack/UserAppRole/DefaultPolicy/Resource"
#: Every construct the library adds has this in its path (the provider, the seed roles, the jobs' ids here).
LIBRARY_MARK = "/CleanRoomsMl"


def synthesize(outdir: Path) -> tuple[App, list[tuple[str, str]]]:
    """An app with the library's constructs and a user's own ``s3:*`` on ``*``, checked by AwsSolutions.

    Returns the app and the reported findings as ``(rule, construct path)``.
    """
    app = App(outdir=str(outdir))
    stack = Stack(app, "UserStack", env=Environment(account=ACCOUNT, region=REGION))
    AudienceGenerationJob(
        stack,
        "CleanRoomsMlFromS3",
        configured_audience_model_arn=MODEL_ARN,
        seed_audience=SeedAudience(
            role=f"arn:aws:iam::{ACCOUNT}:role/seed-reader",
            data_source=S3DataSource(s3_uri="s3://seed-bucket/seed.jsonl"),
        ),
    )
    AudienceGenerationJob(  # a SQL seed: the library's seed role has its own Resource::* acknowledgement
        stack,
        "CleanRoomsMlFromSql",
        configured_audience_model_arn=MODEL_ARN,
        collaboration_id=MEMBERSHIP_ARN.rsplit("/", 1)[1],
        seed_audience=SeedAudience.from_sql(
            scope=stack, membership_arn=MEMBERSHIP_ARN, query_string="SELECT user_id FROM converters"
        ),
    )
    # The user's own role, nothing to do with the library: two wildcard findings of its own.
    user_role = iam.Role(stack, "UserAppRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    user_role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with contextlib.suppress(Exception):  # the user's findings are errors: synthesis fails, the report says which
        app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    findings = [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]
    return app, findings


def test_a_users_wildcard_finding_is_reported_while_the_librarys_are_acknowledged(tmp_path: Path) -> None:
    app, findings = synthesize(tmp_path)
    # The library did acknowledge the very finding the user's policy raises (else this test proves nothing).
    acknowledged_by_library = [
        construct.node.path
        for construct in app.node.find_all()
        if LIBRARY_MARK in construct.node.path
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        and any(rule.endswith(SHARED_FINDING) for rule in dict(entry.data))
    ]
    assert len(acknowledged_by_library) >= 2, acknowledged_by_library  # the provider and the SQL seed role
    # The user's findings are reported, the shared one included; none of the library's is.
    assert (SHARED_FINDING, USER_POLICY) in findings, findings
    assert ("AwsSolutions-IAM5[Action::s3:*]", USER_POLICY) in findings, findings
    assert [f for f in findings if LIBRARY_MARK in f[1]] == []
