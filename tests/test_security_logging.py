"""Sensitive inputs stay out of the handlers' logs and error messages.

A SQL-seeded job is rehearsed from a synthesized cloud assembly against the local endpoint: the handler
code is imported from the Lambda asset in cdk.out and run in worker processes the way Lambda runs it,
and every line it logs is collected. Neither the query nor a parameter value may appear.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack

import entrypoints
import properties
import service
from cdk_cleanrooms_ml import AudienceGenerationJob, SeedAudience
from cdk_cleanrooms_ml.rehearsal.driver import Rehearsal
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import ACCOUNT, COLLABORATION_ID, MODEL_ARN, REGION, ROLE_ARN, event

MEMBERSHIP_ARN = f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{COLLABORATION_ID}"
SECRET_VALUE = "spring-campaign-7f3a9c"
SECRET_QUERY = "SELECT user_id FROM converters WHERE campaign = :campaign AND secret_marker_q = 1"
JOB_NAME = "security-logging-sql-seed"


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("logging-cdk-out")
    app = App(outdir=str(out))
    stack = Stack(app, "SqlSeed", env=Environment(account=ACCOUNT, region=REGION))
    AudienceGenerationJob(
        stack,
        "FromSql",
        name=JOB_NAME,
        configured_audience_model_arn=MODEL_ARN,
        collaboration_id=COLLABORATION_ID,
        tags={"team": "ads"},
        seed_audience=SeedAudience.from_sql(
            scope=stack, membership_arn=MEMBERSHIP_ARN, query_string=SECRET_QUERY, parameters={"campaign": SECRET_VALUE}
        ),
    )
    app.synth()
    return out


def test_a_rehearsed_sql_seed_job_never_logs_its_query_or_parameters(cdk_out: Path) -> None:
    with Endpoint() as endpoint, Rehearsal(cdk_out, "SqlSeed", endpoint=endpoint) as rehearsal:
        created = rehearsal.create()
        assert created.ok, created.reason
        (arn,) = rehearsal.owned_jobs()
        started = [c for c in endpoint.calls if c.operation == "StartAudienceGenerationJob"]
        assert started, "the job was never started"
        deleted = rehearsal.delete()
        assert deleted.ok, deleted.reason
        steps = [str(step) for step in rehearsal.steps]
    logs = [line for line, step in zip(steps, rehearsal.steps, strict=True) if step.kind == "log"]
    # The capture works: the handlers' own lines are there, with the job ARN and its status.
    assert any(arn in line and "created audience generation job" in line for line in logs), logs
    assert any(arn in line and "ACTIVE" in line for line in logs), logs
    for line in steps:  # every log line, and every result the handlers returned
        assert SECRET_VALUE not in line
        assert "secret_marker_q" not in line


@pytest.fixture
def local_service() -> Iterator[Endpoint]:
    with Endpoint() as endpoint:
        previous = {k: v for k, v in os.environ.items() if k in endpoint.environment()}
        os.environ.update(endpoint.environment())
        service.reset_clients()  # a client made earlier would talk to another endpoint
        try:
            yield endpoint
        finally:
            service.reset_clients()
            for key in endpoint.environment():
                os.environ.pop(key, None)
            os.environ.update(previous)


def sql_props(**seed_changes: Any) -> dict[str, Any]:
    return {
        "name": JOB_NAME,
        "configuredAudienceModelArn": MODEL_ARN,
        "collaborationId": COLLABORATION_ID,
        "seedAudience": {
            "roleArn": ROLE_ARN,
            "sqlParameters": {"queryString": SECRET_QUERY, "parameters": {"campaign": SECRET_VALUE}},
            **seed_changes,
        },
    }


def test_errors_about_sensitive_members_do_not_repeat_their_values(
    local_service: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # what a Lambda function of the provider emits
    too_long = SECRET_VALUE * 60  # over the model's 1000 characters per parameter value
    props = sql_props(sqlParameters={"queryString": SECRET_QUERY, "parameters": {"campaign": too_long}})
    with pytest.raises(properties.PropertyError) as raised:
        entrypoints.on_event(event("Create", copy.deepcopy(props)))
    message = str(raised.value)
    assert "seedAudience.sqlParameters.parameters" in message  # the member is named; keys and values are not
    assert "<sensitive value>" in message
    assert SECRET_VALUE not in message
    assert local_service.calls == []
    # A valid request runs through the service; the records of the whole exchange stay clean too.
    created = entrypoints.on_event(event("Create", sql_props()))
    polled = entrypoints.is_complete({**event("Create", sql_props()), **created})
    assert created["PhysicalResourceId"].startswith("arn:aws:cleanrooms-ml:")
    assert polled == {"IsComplete": False}  # the job is CREATE_PENDING on its first read
    records = [r.getMessage() for r in caplog.records] + [message]
    assert any(created["PhysicalResourceId"] in r for r in records)
    assert not [r for r in records if SECRET_VALUE in r or "secret_marker_q" in r]
