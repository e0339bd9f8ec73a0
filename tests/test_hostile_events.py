"""Malformed and hostile events: each fails with the handler's own error type, a clear message, and no call
to the service at all.

The handler runs against the real boto3 client with botocore's Stubber holding no responses; every
operation the handler attempts is also recorded (before parameter validation), so a test fails on any
attempted call, caught or not.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import engine
import pytest
from botocore.stub import Stubber
from specs import AUDIENCE_EXPORT_JOB, AUDIENCE_GENERATION_JOB

import entrypoints
import properties
import service
from tests.helpers import ACCOUNT, JOB_ARN, MODEL_ARN, REGION, ROLE_ARN, event

EventError, PropertyError, ResourceError = entrypoints.EventError, properties.PropertyError, engine.ResourceError

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
    service.reset_clients()
    client = service.client("cleanroomsml", REGION)
    calls: list[str] = []

    def record(**kwargs: Any) -> None:
        calls.append(kwargs["model"].name)

    client.meta.events.register_first("provide-client-params.cleanroomsml", record)
    with Stubber(client):
        yield calls
    service.reset_clients()


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

#: (case, entry point, event, the error type, words the message must contain)
CASES: list[tuple[str, Entry, Any, type[Exception], str]] = [
    # The event itself
    ("event is a list", ON_EVENT, [base()], EventError, "must be an object"),
    ("event is None", IS_COMPLETE, None, EventError, "must be an object"),
    ("event is a JSON string", ON_EVENT, '{"RequestType": "Create"}', EventError, "must be an object"),
    ("unknown request type", ON_EVENT, base("Replace"), EventError, "unknown RequestType"),
    (
        "request type in lower case",
        IS_COMPLETE,
        base("delete", PhysicalResourceId=JOB_ARN),
        EventError,
        "unknown RequestType",
    ),
    ("no request type", ON_EVENT, without("RequestType"), EventError, "unknown RequestType"),
    ("unknown resource type", ON_EVENT, base(ResourceType="Custom::Other"), EventError, "unknown ResourceType"),
    ("no resource type", IS_COMPLETE, without("ResourceType"), EventError, "unknown ResourceType"),
    ("no StackId", ON_EVENT, without("StackId"), EventError, "StackId"),
    ("StackId is not a stack ARN", ON_EVENT, base(StackId="my-stack"), EventError, "StackId"),
    ("StackId of another service", IS_COMPLETE, base(StackId=NOT_A_JOB_ARN), EventError, "StackId"),
    ("no LogicalResourceId", ON_EVENT, without("LogicalResourceId"), EventError, "LogicalResourceId"),
    ("LogicalResourceId is a number", ON_EVENT, base(LogicalResourceId=7), EventError, "LogicalResourceId"),
    (
        "Update without physical id",
        ON_EVENT,
        base("Update", OldResourceProperties=PROPS),
        EventError,
        "PhysicalResourceId",
    ),
    (
        "Delete with a non-string physical id",
        ON_EVENT,
        base("Delete", PhysicalResourceId=["x"]),
        EventError,
        "PhysicalResourceId",
    ),
    (
        "Update without old properties",
        ON_EVENT,
        base("Update", PhysicalResourceId=JOB_ARN),
        EventError,
        "OldResourceProperties",
    ),
    # The physical id
    (
        "Update of another account's job",
        ON_EVENT,
        base("Update", PhysicalResourceId=OTHER_ACCOUNT_JOB, OldResourceProperties=props(tags={"a": "b"})),
        ResourceError,
        "not an audience generation job of this stack's account",
    ),
    (
        "Update of another region's job",
        ON_EVENT,
        base("Update", PhysicalResourceId=OTHER_REGION_JOB, OldResourceProperties=props(tags={"a": "b"})),
        ResourceError,
        "not an audience generation job",
    ),
    (
        "Update of something that is not a job",
        ON_EVENT,
        base("Update", PhysicalResourceId="i-am-not-a-job", OldResourceProperties=props(tags={"a": "b"})),
        ResourceError,
        "not an audience generation job",
    ),
    (
        "Delete of another account's job",
        ON_EVENT,
        base("Delete", PhysicalResourceId=OTHER_ACCOUNT_JOB),
        ResourceError,
        "refusing",
    ),
    (
        "Delete of another region's job",
        ON_EVENT,
        base("Delete", PhysicalResourceId=OTHER_REGION_JOB),
        ResourceError,
        "refusing",
    ),
    (
        "Delete of another partition's job",
        ON_EVENT,
        base("Delete", PhysicalResourceId=OTHER_PARTITION_JOB),
        ResourceError,
        "refusing",
    ),
    (
        "Delete of an S3 bucket ARN",
        ON_EVENT,
        base("Delete", PhysicalResourceId=NOT_A_JOB_ARN),
        ResourceError,
        "refusing",
    ),
    (
        "poll of another account's job deletion",
        IS_COMPLETE,
        base("Delete", PhysicalResourceId=OTHER_ACCOUNT_JOB),
        EventError,
        "not an audience generation job",
    ),
    (
        "poll of another account's job creation",
        IS_COMPLETE,
        base("Create", PhysicalResourceId=OTHER_ACCOUNT_JOB),
        EventError,
        "not an audience generation job",
    ),
    # The properties
    ("no properties", ON_EVENT, without("ResourceProperties"), PropertyError, "ResourceProperties must be an object"),
    (
        "properties are a string",
        ON_EVENT,
        base(ResourceProperties="name=x"),
        PropertyError,
        "ResourceProperties must be an object",
    ),
    ("an extra property", ON_EVENT, base(properties=props(bogus="x")), PropertyError, "unknown member(s) bogus"),
    (
        "an extra seed member",
        ON_EVENT,
        base(properties=seed(roleName="x")),
        PropertyError,
        "unknown member(s) roleName",
    ),
    (
        "required model ARN missing",
        ON_EVENT,
        base(properties=props(configuredAudienceModelArn=None)),
        PropertyError,
        "required",
    ),
    ("seed is a string", ON_EVENT, base(properties=props(seedAudience="s3://x")), PropertyError, "expected an object"),
    (
        "boolean that is not one",
        ON_EVENT,
        base(properties=props(includeSeedInOutput="yes")),
        PropertyError,
        "true or false",
    ),
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
        PropertyError,
        "number",
    ),
    ("name too long", ON_EVENT, base(properties=props(name="x" * 64)), PropertyError, "name"),
    ("neither a name nor a prefix", ON_EVENT, base(properties=props(name=None)), PropertyError, "NamePrefix"),
    ("an empty name prefix", ON_EVENT, base(properties=props(name=None, NamePrefix="--")), PropertyError, "NamePrefix"),
    (
        "model ARN of another service",
        ON_EVENT,
        base(properties=props(configuredAudienceModelArn=ROLE_ARN)),
        PropertyError,
        "pattern",
    ),
    ("tags with a reserved key", ON_EVENT, base(properties=props(tags={"aws:owner": "me"})), PropertyError, "aws:"),
    (
        "tags with the library's key",
        ON_EVENT,
        base(properties=props(tags={"cdk-cleanrooms-ml:request-digest": "forged"})),
        PropertyError,
        "reserved for the library",
    ),
    (
        "timeout that is not a number",
        ON_EVENT,
        base(properties=props(TimeoutSeconds="soon")),
        PropertyError,
        "TimeoutSeconds",
    ),
    (
        "timeout beyond one hour",
        IS_COMPLETE,
        base(properties=props(TimeoutSeconds="7200")),
        PropertyError,
        "TimeoutSeconds",
    ),
    (
        "wait flag that is not a flag",
        ON_EVENT,
        base(properties=props(WaitForCompletion="maybe")),
        PropertyError,
        "WaitForCompletion",
    ),
    (
        "an event too large for the Provider framework's waiter",
        ON_EVENT,
        base(properties=props(description="x" * 300_000)),
        PropertyError,
        "262,144 bytes",
    ),
]


@pytest.mark.parametrize(("case", "entry", "delivered", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_malformed_event_fails_clearly_without_any_call(
    attempted: list[str], case: str, entry: Entry, delivered: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(Exception) as raised:
        entry(delivered)
    message = str(raised.value)
    assert type(raised.value) is error, f"{case}: {type(raised.value).__name__}: {message}"
    assert words.lower() in message.lower(), message
    assert attempted == [], f"{case}: attempted {attempted}"


def test_there_are_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15


#: (entry point, event, the whole message): what CloudFormation shows as the reason, word for word.
MESSAGES: list[tuple[Entry, Any, str]] = [
    (ON_EVENT, [base()], "the event must be an object"),
    (ON_EVENT, base("Replace"), "unknown RequestType 'Replace'; expected one of Create, Update, Delete"),
    (ON_EVENT, without("LogicalResourceId"), "the event has no LogicalResourceId"),
    (
        ON_EVENT,
        base(ResourceType="Custom::Other"),
        "unknown ResourceType 'Custom::Other'; this provider serves Custom::CleanRoomsMlAudienceExportJob, "
        "Custom::CleanRoomsMlAudienceGenerationJob, Custom::CleanRoomsMlAudienceModel, "
        "Custom::CleanRoomsMlConfiguredAudienceModel, Custom::CleanRoomsMlConfiguredAudienceModelAssociation",
    ),
    (ON_EVENT, base(StackId="my-stack"), "the event's StackId is not a CloudFormation stack ARN"),
    (ON_EVENT, base("Delete"), "a Delete event needs a PhysicalResourceId"),
    (ON_EVENT, base("Update", PhysicalResourceId=JOB_ARN), "an Update event needs OldResourceProperties"),
    (ON_EVENT, without("ResourceProperties"), "ResourceProperties must be an object"),
    (
        ON_EVENT,
        base("Delete", PhysicalResourceId=OTHER_ACCOUNT_JOB),
        f"physical id {OTHER_ACCOUNT_JOB!r} is not an audience generation job of this stack's account; "
        "refusing to delete it",
    ),
    (
        ON_EVENT,
        base("Update", PhysicalResourceId="i-am-not-a-job", OldResourceProperties=PROPS),
        "physical id 'i-am-not-a-job' is not an audience generation job of this stack's account",
    ),
    (
        IS_COMPLETE,
        base("Delete", PhysicalResourceId=OTHER_REGION_JOB),
        f"physical id {OTHER_REGION_JOB!r} is not an audience generation job ARN of this stack's account and of "
        "its region; refusing to read or delete it",
    ),
]


@pytest.mark.parametrize(("entry", "delivered", "message"), MESSAGES, ids=[m[2][:40] for m in MESSAGES])
def test_each_refusal_says_exactly_what_is_wrong(
    attempted: list[str], entry: Entry, delivered: Any, message: str
) -> None:
    with pytest.raises((EventError, PropertyError, ResourceError)) as raised:
        entry(delivered)
    assert str(raised.value) == message
    assert attempted == []


def test_ownership_is_judged_by_the_whole_arn_or_by_the_parent_of_a_compound_id() -> None:
    """A physical id another resource (or a hand-edited template) gave: Home.owns decides whether the handler may
    read, update or delete it. An ARN-identified type owns only a whole ARN; an export (``<job ARN>|<name>``) only
    a compound id, judged by its job's ARN."""
    home = service.Home("aws", REGION, ACCOUNT)
    assert home.owns(AUDIENCE_GENERATION_JOB, JOB_ARN, REGION)
    assert not home.owns(AUDIENCE_GENERATION_JOB, f"{JOB_ARN}|top10", REGION)  # not a job's ARN, though it starts so
    assert not home.owns(AUDIENCE_GENERATION_JOB, f"{JOB_ARN}|top10", None)
    assert home.owns(AUDIENCE_EXPORT_JOB, f"{JOB_ARN}|top10", REGION)
    assert not home.owns(AUDIENCE_EXPORT_JOB, JOB_ARN, REGION)  # a job's ARN alone names no export
    assert not home.owns(AUDIENCE_EXPORT_JOB, JOB_ARN, None)
    assert not home.owns(AUDIENCE_EXPORT_JOB, f"{OTHER_ACCOUNT_JOB}|top10", REGION)
    assert not home.owns(AUDIENCE_EXPORT_JOB, f"{OTHER_REGION_JOB}|top10", REGION)
