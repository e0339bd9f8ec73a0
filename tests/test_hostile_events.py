"""Malformed and hostile events: each fails with a clear message and no call to the service at all.

The handler runs against the real boto3 client with botocore's Stubber holding no responses; every
operation the handler attempts is also recorded (before parameter validation), so a test fails on any
attempted call, caught or not.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

import entrypoints
import service
from tests.helpers import ACCOUNT, JOB_ARN, MODEL_ARN, REGION, ROLE_ARN, STACK_ID, event

NAME = "Test-Lookalike-0123456789"
PROPS: dict[str, Any] = {
    "name": NAME,
    "configuredAudienceModelArn": MODEL_ARN,
    "seedAudience": {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://seed-bucket/seed.jsonl"}},
}
OTHER_ACCOUNT_JOB = JOB_ARN.replace(ACCOUNT, "999988887777")
OTHER_REGION_JOB = JOB_ARN.replace(REGION, "eu-west-1")
OTHER_PARTITION_JOB = JOB_ARN.replace("arn:aws:", "arn:aws-cn:")
NOT_A_JOB_ARN = f"arn:aws:s3:::{ACCOUNT}-important-bucket"


@pytest.fixture
def attempted() -> Iterator[list[str]]:
    """Operations the handler attempted (recorded before anything else sees the call); none is answered."""
    service._client = None
    client = service.client()
    calls: list[str] = []

    def record(**kwargs: Any) -> None:
        calls.append(kwargs["model"].name)

    client.meta.events.register_first("provide-client-params.cleanroomsml", record)
    with Stubber(client):
        yield calls
    service._client = None


def base(request_type: str = "Create", properties: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return event(request_type, copy.deepcopy(PROPS if properties is None else properties), **extra)


def without(key: str, request_type: str = "Create", **extra: Any) -> dict[str, Any]:
    delivered = base(request_type, **extra)
    delivered.pop(key)
    return delivered


def props(**changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(PROPS)
    for key, value in changes.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return changed


def seed(**changes: Any) -> dict[str, Any]:
    merged = {**PROPS["seedAudience"], **changes}
    return props(seedAudience={k: v for k, v in merged.items() if v is not None})


Entry = Callable[[Any], dict[str, Any]]
ON_EVENT, IS_COMPLETE = entrypoints.on_event, entrypoints.is_complete

#: (case, entry point, event, words the message must contain)
CASES: list[tuple[str, Entry, Any, str]] = [
    # The event itself
    ("event is a list", ON_EVENT, [base()], "must be an object"),
    ("event is None", IS_COMPLETE, None, "must be an object"),
    ("event is a JSON string", ON_EVENT, '{"RequestType": "Create"}', "must be an object"),
    ("unknown request type", ON_EVENT, base("Replace"), "unknown RequestType"),
    ("request type in lower case", IS_COMPLETE, base("delete", PhysicalResourceId=JOB_ARN), "unknown RequestType"),
    ("no request type", ON_EVENT, without("RequestType"), "unknown RequestType"),
    ("no StackId", ON_EVENT, without("StackId"), "StackId"),
    ("StackId is not a stack ARN", ON_EVENT, base(StackId="my-stack"), "StackId"),
    ("StackId of another service", IS_COMPLETE, base(StackId=NOT_A_JOB_ARN), "StackId"),
    ("no LogicalResourceId", ON_EVENT, without("LogicalResourceId"), "LogicalResourceId"),
    ("LogicalResourceId is a number", ON_EVENT, base(LogicalResourceId=7), "LogicalResourceId"),
    ("Update without physical id", ON_EVENT, base("Update", OldResourceProperties=PROPS), "PhysicalResourceId"),
    ("Delete with a non-string physical id", ON_EVENT, base("Delete", PhysicalResourceId=["x"]), "PhysicalResourceId"),
    ("Update without old properties", ON_EVENT, base("Update", PhysicalResourceId=JOB_ARN), "OldResourceProperties"),
    # The physical id
    (
        "Update of another account's job",
        ON_EVENT,
        base("Update", PhysicalResourceId=OTHER_ACCOUNT_JOB, OldResourceProperties=props(tags={"a": "b"})),
        "not an audience generation job ARN of this stack's account",
    ),
    (
        "Update of another region's job",
        ON_EVENT,
        base("Update", PhysicalResourceId=OTHER_REGION_JOB, OldResourceProperties=props(tags={"a": "b"})),
        "not an audience generation job ARN",
    ),
    (
        "Update of something that is not a job",
        ON_EVENT,
        base("Update", PhysicalResourceId="i-am-not-a-job", OldResourceProperties=props(tags={"a": "b"})),
        "not an audience generation job ARN",
    ),
    ("Delete of another account's job", ON_EVENT, base("Delete", PhysicalResourceId=OTHER_ACCOUNT_JOB), "refusing"),
    ("Delete of another partition's job", ON_EVENT, base("Delete", PhysicalResourceId=OTHER_PARTITION_JOB), "refusing"),
    ("Delete of an S3 bucket ARN", ON_EVENT, base("Delete", PhysicalResourceId=NOT_A_JOB_ARN), "refusing"),
    (
        "poll of another account's job deletion",
        IS_COMPLETE,
        base("Delete", PhysicalResourceId=OTHER_ACCOUNT_JOB),
        "not an audience generation job ARN",
    ),
    (
        "poll of another account's job creation",
        IS_COMPLETE,
        base("Create", PhysicalResourceId=OTHER_ACCOUNT_JOB),
        "not an audience generation job ARN",
    ),
    # The properties
    ("no properties", ON_EVENT, without("ResourceProperties"), "ResourceProperties must be an object"),
    ("properties are a string", ON_EVENT, base(ResourceProperties="name=x"), "ResourceProperties must be an object"),
    ("an extra property", ON_EVENT, base(properties=props(bogus="x")), "unknown member(s) bogus"),
    ("an extra seed member", ON_EVENT, base(properties=seed(roleName="x")), "unknown member(s) roleName"),
    ("required model ARN missing", ON_EVENT, base(properties=props(configuredAudienceModelArn=None)), "required"),
    ("seed is a string", ON_EVENT, base(properties=props(seedAudience="s3://x")), "expected an object"),
    ("boolean that is not one", ON_EVENT, base(properties=props(includeSeedInOutput="yes")), "true or false"),
    (
        "worker count that is not a number",
        ON_EVENT,
        base(
            properties=seed(
                dataSource=None,
                sqlParameters={"queryString": "SELECT 1"},
                sqlComputeConfiguration={"worker": {"type": "CR.4X", "number": "four"}},
            )
        ),
        "number",
    ),
    ("name too long", ON_EVENT, base(properties=props(name="x" * 64)), "name"),
    ("model ARN of another service", ON_EVENT, base(properties=props(configuredAudienceModelArn=ROLE_ARN)), "pattern"),
    ("tags with a reserved key", ON_EVENT, base(properties=props(tags={"aws:owner": "me"})), "aws:"),
    ("timeout that is not a number", ON_EVENT, base(properties=props(TimeoutSeconds="soon")), "TimeoutSeconds"),
    ("timeout beyond one hour", IS_COMPLETE, base(properties=props(TimeoutSeconds="7200")), "TimeoutSeconds"),
    ("wait flag that is not a flag", ON_EVENT, base(properties=props(WaitForCompletion="maybe")), "WaitForCompletion"),
    ("unknown removal policy", ON_EVENT, base(properties=props(RemovalPolicy="snapshot")), "RemovalPolicy"),
]


@pytest.mark.parametrize(("case", "entry", "delivered", "words"), CASES, ids=[c[0] for c in CASES])
def test_malformed_event_fails_clearly_without_any_call(
    attempted: list[str], case: str, entry: Entry, delivered: Any, words: str
) -> None:
    with pytest.raises(Exception) as raised:
        entry(delivered)
    message = str(raised.value)
    assert type(raised.value).__module__ != "botocore.exceptions", f"{case}: reached the client: {message}"
    assert words.lower() in message.lower(), message
    assert attempted == [], f"{case}: attempted {attempted}"


def test_there_are_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15
    assert STACK_ID.startswith("arn:aws:cloudformation:")  # the well-formed events above differ in one way each
