"""Drive the handler with the properties of a synthesized template, exactly as CloudFormation delivers them.

Create -> ACTIVE, a replacing update, a tags-only update, and delete; the service is botocore's
Stubber on the real client, which also checks every request against the service model.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import engine
import pytest
from aws_cdk import Stack, Tags
from aws_cdk import aws_iam as iam
from botocore.stub import ANY, Stubber
from specs import REQUEST_TAG

import entrypoints
import service
from cdk_cleanrooms_ml import SeedAudience, SqlParameters, WorkerComputeConfiguration, WorkerComputeType
from tests.helpers import COLLABORATION_ID, MODEL_ARN, as_cloudformation_delivers, custom_resources, event, job, stack

NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)
ROLE_ARN = "arn:aws:iam::111122223333:role/Test-SeedRole"


def resolve(value: Any) -> Any:
    """The few intrinsics a job's properties hold, with fake account values."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            logical_id, _attribute = value["Fn::GetAtt"]
            return ROLE_ARN if "Seed" in logical_id else f"arn:aws:lambda:us-east-1:111122223333:function:{logical_id}"
        if "Ref" in value:
            return {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "111122223333"}[value["Ref"]]
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(resolve(p) for p in parts)
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def synthesized_properties(description: str, tags: dict[str, str]) -> dict[str, Any]:
    scope: Stack = stack()
    role = iam.Role(scope, "SeedRole", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
    job(
        scope,
        collaboration_id=COLLABORATION_ID,
        description=description,
        include_seed_in_output=True,
        seed_audience=SeedAudience(
            role=role,
            sql_parameters=SqlParameters(query_string="SELECT user_id FROM seed WHERE c = :c", parameters={"c": "x"}),
            sql_compute_configuration=WorkerComputeConfiguration(
                type=WorkerComputeType.CR_4X, number=16, spark_properties={"spark.executor.cores": "4"}
            ),
        ),
    )
    for key, value in tags.items():
        Tags.of(scope).add(key, value)
    (resource,) = custom_resources(scope).values()
    properties: dict[str, Any] = resolve(resource["Properties"])
    return properties


SENT: list[dict[str, Any]] = []


@pytest.fixture
def stub() -> Iterator[Stubber]:
    service.reset_clients()
    client = service.client("cleanroomsml", "us-east-1")
    client.meta.events.register(
        "provide-client-params.cleanroomsml.StartAudienceGenerationJob", lambda params, **_: SENT.append(params)
    )
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    service.reset_clients()


def expected_request(properties: dict[str, Any]) -> dict[str, Any]:
    """What the service must receive: the properties less the control ones, with a name and the request tag."""
    request = {k: v for k, v in properties.items() if k not in ("ServiceToken", "NamePrefix")}
    return {**request, "name": ANY, "tags": {**request["tags"], REQUEST_TAG: ANY}}


def described(name: str, arn: str, status: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "createTime": NOW,
        "updateTime": NOW,
        "audienceGenerationJobArn": arn,
        "name": name,
        "status": status,
        "configuredAudienceModelArn": MODEL_ARN,
        "metrics": {"relevanceMetrics": [{"audienceSize": {"type": "PERCENTAGE", "value": 5}, "score": 6.0}]},
        **({"tags": tags} if tags is not None else {}),
    }


def test_create_update_and_delete_from_template_properties(stub: Stubber) -> None:
    first = synthesized_properties("spring", {"team": "ads"})
    delivered = event("Create", first)
    worker = delivered["ResourceProperties"]["seedAudience"]["sqlComputeConfiguration"]["worker"]
    assert worker["number"] == "16" and delivered["ResourceProperties"]["includeSeedInOutput"] == "true"
    assert first["NamePrefix"] == "Test-Lookalike" and "name" not in first

    # Create: the exact typed request reaches the service, with a name made from the prefix and a digest
    arn = "arn:aws:cleanrooms-ml:us-east-1:111122223333:audience-generation-job/first"
    stub.add_response("start_audience_generation_job", {"audienceGenerationJobArn": arn}, expected_request(first))
    created = entrypoints.on_event(delivered)
    sent = SENT.pop()
    name = sent["name"]
    assert name.startswith("Test-Lookalike-") and len(name) == len("Test-Lookalike-") + 10
    stub.add_response("get_audience_generation_job", described(name, arn, "CREATE_IN_PROGRESS"), None)
    assert entrypoints.is_complete({**delivered, **created}) == {"IsComplete": False}
    stub.add_response("get_audience_generation_job", described(name, arn, "ACTIVE"), None)
    done = entrypoints.is_complete({**delivered, **created})
    assert done["PhysicalResourceId"] == arn and done["Data"]["Status"] == "ACTIVE" and done["Data"]["Name"] == name
    tags = {**sent["tags"]}

    # Tags-only update: the job is read (its request tag says it is this request), then tagged in place
    retagged = synthesized_properties("spring", {"team": "marketing"})
    update = event("Update", retagged, PhysicalResourceId=arn, OldResourceProperties=as_cloudformation_delivers(first))
    stub.add_response("get_audience_generation_job", described(name, arn, "ACTIVE", tags), None)
    updated = entrypoints.on_event(update)
    assert updated["PhysicalResourceId"] == arn and updated[engine.AWAIT] == engine.AWAIT_UPDATED
    stub.add_response("get_audience_generation_job", described(name, arn, "ACTIVE", tags), None)
    stub.add_response("tag_resource", {}, {"resourceArn": arn, "tags": {"team": "marketing"}})
    stub.add_response("get_audience_generation_job", described(name, arn, "ACTIVE", tags), None)
    assert entrypoints.is_complete({**update, **updated})["Data"]["AudienceGenerationJobArn"] == arn

    # Replacing update: a new name, a new job, a new physical id
    replaced = synthesized_properties("autumn", {"team": "marketing"})
    update = event(
        "Update", replaced, PhysicalResourceId=arn, OldResourceProperties=as_cloudformation_delivers(retagged)
    )
    new_arn = arn.replace("first", "second")
    stub.add_response("get_audience_generation_job", described(name, arn, "ACTIVE", tags), None)
    stub.add_response(
        "start_audience_generation_job", {"audienceGenerationJobArn": new_arn}, expected_request(replaced)
    )
    updated = entrypoints.on_event(update)
    resent = SENT.pop()
    assert resent["name"] != name and resent["name"].startswith("Test-Lookalike-")
    assert updated["PhysicalResourceId"] == new_arn and updated[engine.REPLACES] == arn
    stub.add_response("get_audience_generation_job", described(resent["name"], new_arn, "ACTIVE"), None)
    assert entrypoints.is_complete({**update, **updated})["PhysicalResourceId"] == new_arn

    # CloudFormation then deletes the old job
    delete = event("Delete", retagged, PhysicalResourceId=arn)
    stub.add_response("delete_audience_generation_job", {}, {"audienceGenerationJobArn": arn})
    deleted = entrypoints.on_event(delete)
    client_error = {"service_error_code": "ResourceNotFoundException", "http_status_code": 404}
    stub.add_client_error("get_audience_generation_job", **client_error)
    assert entrypoints.is_complete({**delete, **deleted}) == {"IsComplete": True}
