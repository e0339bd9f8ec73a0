"""Answers the local endpoint cannot give, scripted with botocore's Stubber on the handler's real client.

Races (a job listed under the name, then gone or being deleted when read), error answers of unusual
shapes (no message, an unmodelled 5xx, the quota named in the body or only in the message), and listings
longer than one page. Each test drives the entry points as the Provider framework does and asserts what
CloudFormation would get back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import engine
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError
from botocore.stub import Stubber

import entrypoints
import service
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import JOB_ARN, MODEL_ARN, REGION
from tests.test_engine import PROPS, create, name_of, props, update

NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)
NOUN = "audience generation job"


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "1")
    service.reset_clients()
    with Stubber(service.client("cleanroomsml", REGION)) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    service.reset_clients()


def item(name: str, status: str = "ACTIVE", arn: str = JOB_ARN) -> dict[str, Any]:
    return {
        "createTime": NOW,
        "updateTime": NOW,
        "audienceGenerationJobArn": arn,
        "name": name,
        "status": status,
        "configuredAudienceModelArn": MODEL_ARN,
    }


def name_taken(stub: Stubber, *listed: dict[str, Any]) -> None:
    stub.add_client_error("start_audience_generation_job", "ConflictException", "name taken", 409)
    stub.add_response("list_audience_generation_jobs", {"audienceGenerationJobs": list(listed)})


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The handler's log lines, as they are emitted."""
    caplog.set_level(logging.INFO, logger="cdk_cleanrooms_ml")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    logging.getLogger("cdk_cleanrooms_ml").addHandler(handler)
    yield lines
    logging.getLogger("cdk_cleanrooms_ml").removeHandler(handler)


def test_a_job_listed_under_the_name_but_gone_when_read_is_waited_for(stub: Stubber, logged: list[str]) -> None:
    name = name_of(PROPS)
    name_taken(stub, item(name))
    stub.add_client_error("get_audience_generation_job", "ResourceNotFoundException", "gone", 404)
    result = entrypoints.on_event(create())
    assert result["PhysicalResourceId"] == engine.PENDING_PREFIX + name
    assert (
        f"{NOUN} {name} is not created yet (the {NOUN} {JOB_ARN} that had the name {name!r} is gone); "
        "is_complete tries again"
    ) in logged


def test_a_job_listed_active_but_being_deleted_when_read_is_waited_for(stub: Stubber, logged: list[str]) -> None:
    name = name_of(PROPS)
    name_taken(stub, item(name))
    stub.add_response("get_audience_generation_job", item(name, "DELETE_IN_PROGRESS"))
    result = entrypoints.on_event(create())
    assert result["PhysicalResourceId"] == engine.PENDING_PREFIX + name
    assert (
        f"{NOUN} {name} is not created yet (the {NOUN} {JOB_ARN} that had the name {name!r} is being deleted); "
        "is_complete tries again"
    ) in logged


def test_a_job_listed_as_being_deleted_is_waited_for_without_reading_it(stub: Stubber) -> None:
    name_taken(stub, item(name_of(PROPS), "DELETE_PENDING"))  # no read answered: none may be made
    assert entrypoints.on_event(create())["PhysicalResourceId"] == engine.PENDING_PREFIX + name_of(PROPS)


@pytest.mark.parametrize("code", [500, 503, 599])
def test_any_5xx_that_outlasts_the_retries_defers_the_start(stub: Stubber, code: int) -> None:
    stub.add_client_error("start_audience_generation_job", "SomethingUnmodelled", "try later", code)
    assert entrypoints.on_event(create())["PhysicalResourceId"].startswith(engine.PENDING_PREFIX)


@pytest.mark.parametrize("code", [400, 499])
def test_an_unknown_4xx_fails_at_once_with_the_service_message(stub: Stubber, code: int) -> None:
    stub.add_client_error("start_audience_generation_job", "SomethingUnmodelled", "no way", code)
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(create())
    assert str(raised.value) == "StartAudienceGenerationJob failed: SomethingUnmodelled: no way"


def test_an_error_without_a_message_is_shown_as_botocore_words_it(stub: Stubber) -> None:
    stub.add_client_error("start_audience_generation_job", "ValidationException", "", 400)
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(create())
    assert str(raised.value) == (
        "StartAudienceGenerationJob failed: ValidationException: An error occurred (ValidationException) when "
        "calling the StartAudienceGenerationJob operation: "
    )


def test_an_error_with_no_code_or_message_at_all_is_still_described() -> None:
    error = ClientError({}, "GetAudienceGenerationJob")
    assert service.quota_detail(error) == ""
    assert service.error_code(error) == ""
    assert service.error_message(error) == (
        "Error: An error occurred (Unknown) when calling the GetAudienceGenerationJob operation: Unknown"
    )
    assert not service.is_transient(error)


def test_errors_without_an_answer_are_named_by_their_type_and_are_transient() -> None:
    timeout = ConnectTimeoutError(endpoint_url="https://cleanrooms-ml.us-east-1.amazonaws.com")
    assert service.error_code(timeout) == "ConnectTimeoutError"
    assert service.error_message(timeout) == (
        'ConnectTimeoutError: Connect timeout on endpoint URL: "https://cleanrooms-ml.us-east-1.amazonaws.com"'
    )
    assert service.is_transient(timeout) and service.is_transient(EndpointConnectionError(endpoint_url="x"))
    assert not service.is_transient(ValueError("a bug"))


@pytest.mark.parametrize(
    "response",
    [
        {"Error": {"Code": "ServiceQuotaExceededException", "quotaName": "Jobs pending or in progress"}},
        {"Error": {"Code": "ServiceQuotaExceededException"}, "quotaName": "Jobs PENDING or in progress"},
        {"Error": {"Code": "ServiceQuotaExceededException", "Message": "Over the quota: pending or in progress"}},
    ],
    ids=["quota-name-in-the-error", "quota-name-beside-it", "only-the-message"],
)
def test_the_quota_is_read_wherever_botocore_puts_it(response: dict[str, Any]) -> None:
    assert "pending or in progress" in service.quota_detail(ClientError(response, "StartAudienceGenerationJob"))


def test_a_quota_error_without_any_detail_names_no_quota() -> None:
    error = ClientError({"Error": {"Code": "ServiceQuotaExceededException"}}, "StartAudienceGenerationJob")
    assert service.quota_detail(error) == ""


def test_a_waited_quota_named_only_in_the_message_defers_the_start(stub: Stubber) -> None:
    stub.add_client_error(
        "start_audience_generation_job",
        "ServiceQuotaExceededException",
        "You have reached the quota 'Audience generation jobs pending or in progress' (10)",
        402,
    )
    assert entrypoints.on_event(create())["PhysicalResourceId"].startswith(engine.PENDING_PREFIX)


def test_a_throttled_read_in_an_update_leaves_the_decision_to_is_complete(stub: Stubber) -> None:
    """A throttled read in on_event leaves the decision (replace or not) to is_complete."""
    stub.add_client_error("get_audience_generation_job", "ThrottlingException", "slow down", 400)
    merged = {**update(props(description="autumn"), PROPS, JOB_ARN)}
    merged.update(entrypoints.on_event(merged))
    assert merged[engine.AWAIT] == engine.AWAIT_UPDATE and merged["PhysicalResourceId"] == JOB_ARN


# -- Listings longer than a page ----------------------------------------------------------------------


def test_a_job_on_a_later_page_of_the_listing_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    with Endpoint(reads_until_active=1) as endpoint:
        for key, value in endpoint.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "1")
        service.reset_clients()
        for i in range(205):  # the handler asks for 100 per page: its job is on the third
            endpoint.add_job(f"other-{i:03d}", {"configuredAudienceModelArn": MODEL_ARN})
        first = entrypoints.on_event(create())
        again = entrypoints.on_event(create())  # redelivered: found by its name, on the third page, adopted
        service.reset_clients()
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    lists = [c.params for c in endpoint.calls if c.operation == "ListAudienceGenerationJobs"]
    assert [c.get("nextToken") is not None for c in lists] == [False, True, True]
    assert all(c["maxResults"] == 100 and c["configuredAudienceModelArn"] == MODEL_ARN for c in lists)
    assert "collaborationId" not in lists[0]  # only the filters the request has


def test_a_name_found_on_no_page_is_not_there(monkeypatch: pytest.MonkeyPatch) -> None:
    with Endpoint(reads_until_active=1) as endpoint:
        for key, value in endpoint.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "1")
        service.reset_clients()
        for i in range(150):
            endpoint.add_job(f"other-{i:03d}", {"configuredAudienceModelArn": MODEL_ARN})
        spec = engine.specs.AUDIENCE_GENERATION_JOB
        assert service.find_by_name(spec, REGION, "missing", {"configuredAudienceModelArn": MODEL_ARN}) is None
        assert service.find_by_name(spec, REGION, "other-149", None) is not None  # no filter: every job listed
        service.reset_clients()
    assert endpoint.count("ListAudienceGenerationJobs") == 4
