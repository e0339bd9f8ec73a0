"""The handler's lifecycle decisions, against the real boto3 client with botocore's Stubber (no AWS)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from botocore.stub import Stubber

import entrypoints
import lifecycle
import service
from tests.helpers import COLLABORATION_ID, JOB_ARN, MODEL_ARN, ROLE_ARN, event

NAME = "Test-Lookalike-0123456789"
PROPS: dict[str, Any] = {
    "name": NAME,
    "configuredAudienceModelArn": MODEL_ARN,
    "seedAudience": {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://seed-bucket/seed.jsonl"}},
    "includeSeedInOutput": False,
    "tags": {"team": "ads"},
}
REQUEST: dict[str, Any] = {**PROPS}  # what the service must receive: the same members, typed
NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)


@pytest.fixture
def stub() -> Iterator[Stubber]:
    service._client = None
    client = service.client()
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    service._client = None


def job(status: str, arn: str = JOB_ARN, **extra: Any) -> dict[str, Any]:
    return {
        "createTime": NOW,
        "updateTime": NOW,
        "audienceGenerationJobArn": arn,
        "name": NAME,
        "status": status,
        "configuredAudienceModelArn": MODEL_ARN,
        "seedAudience": PROPS["seedAudience"],
        **extra,
    }


def client_error(stub: Stubber, operation: str, code: str, status: int, message: str = "boom") -> None:
    stub.add_client_error(operation, service_error_code=code, service_message=message, http_status_code=status)


# -- Create -------------------------------------------------------------------------------------


def test_create_restores_types_and_sends_exactly_the_request(stub: Stubber) -> None:
    stub.add_response("start_audience_generation_job", {"audienceGenerationJobArn": JOB_ARN}, REQUEST)
    result = entrypoints.on_event(event("Create", PROPS))
    assert result["PhysicalResourceId"] == JOB_ARN
    assert result[lifecycle.AWAIT] == lifecycle.AWAIT_JOB


def test_integers_and_maps_of_a_sql_seed_are_restored_from_strings(stub: Stubber) -> None:
    props = {
        **PROPS,
        "collaborationId": COLLABORATION_ID,
        "seedAudience": {
            "roleArn": ROLE_ARN,
            "sqlParameters": {"queryString": "SELECT user_id FROM t WHERE c = :c", "parameters": {"c": "spring"}},
            "sqlComputeConfiguration": {
                "worker": {"type": "CR.4X", "number": 4, "properties": {"spark": {"spark.executor.cores": "2"}}}
            },
        },
    }
    stub.add_response("start_audience_generation_job", {"audienceGenerationJobArn": JOB_ARN}, props)
    delivered = event("Create", props)
    assert delivered["ResourceProperties"]["seedAudience"]["sqlComputeConfiguration"]["worker"]["number"] == "4"
    entrypoints.on_event(delivered)


def test_retried_create_adopts_the_job_it_already_started(stub: Stubber) -> None:
    client_error(stub, "start_audience_generation_job", "ConflictException", 409, "name exists")
    stub.add_response(
        "list_audience_generation_jobs",
        {
            "audienceGenerationJobs": [
                _summary("other", "arn:aws:cleanrooms-ml:us-east-1:111122223333:audience-generation-job/x"),
                _summary(NAME, JOB_ARN),
            ]
        },
        {"configuredAudienceModelArn": MODEL_ARN, "maxResults": 100},
    )
    stub.add_response("get_audience_generation_job", job("CREATE_IN_PROGRESS"), {"audienceGenerationJobArn": JOB_ARN})
    assert entrypoints.on_event(event("Create", PROPS))["PhysicalResourceId"] == JOB_ARN


def test_a_same_named_job_from_other_properties_is_not_adopted(stub: Stubber) -> None:
    client_error(stub, "start_audience_generation_job", "ConflictException", 409, "name exists")
    stub.add_response("list_audience_generation_jobs", {"audienceGenerationJobs": [_summary(NAME, JOB_ARN)]}, None)
    other = job("ACTIVE", seedAudience={"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://other/seed.jsonl"}})
    stub.add_response("get_audience_generation_job", other, {"audienceGenerationJobArn": JOB_ARN})
    with pytest.raises(lifecycle.JobError, match="already exists .* give this job another `name`"):
        entrypoints.on_event(event("Create", PROPS))


def test_quota_reached_answers_a_pending_id_and_is_complete_starts_the_job_later(stub: Stubber) -> None:
    client_error(stub, "start_audience_generation_job", "ServiceQuotaExceededException", 402, "10 jobs in progress")
    created = entrypoints.on_event(event("Create", PROPS))
    assert created["PhysicalResourceId"] == lifecycle.PENDING_PREFIX + NAME
    polled = {**event("Create", PROPS), **created}
    # first poll: still no slot, and no job of that name runs yet (the service may check its quota first)
    client_error(stub, "start_audience_generation_job", "ServiceQuotaExceededException", 402)
    stub.add_response("list_audience_generation_jobs", {"audienceGenerationJobs": []}, None)
    assert entrypoints.is_complete(polled) == {"IsComplete": False}
    # second poll: a slot is free, the job starts, and the physical id becomes its ARN
    stub.add_response("start_audience_generation_job", {"audienceGenerationJobArn": JOB_ARN}, REQUEST)
    stub.add_response("get_audience_generation_job", job("CREATE_PENDING"), {"audienceGenerationJobArn": JOB_ARN})
    assert entrypoints.is_complete(polled) == {"IsComplete": False}
    # third poll: is_complete keeps no state, so the Start meets the job's name and the job is found by it
    client_error(stub, "start_audience_generation_job", "ConflictException", 409, "name exists")
    stub.add_response("list_audience_generation_jobs", {"audienceGenerationJobs": [_summary(NAME, JOB_ARN)]}, None)
    stub.add_response("get_audience_generation_job", job("ACTIVE"), {"audienceGenerationJobArn": JOB_ARN})
    stub.add_response(
        "get_audience_generation_job", job("ACTIVE", metrics={"relevanceMetrics": [], "recallMetric": 0.5}), None
    )
    done = entrypoints.is_complete(polled)
    assert done["IsComplete"] is True
    assert done["PhysicalResourceId"] == JOB_ARN
    assert done["Data"]["RecallMetric"] == "0.5"


def test_access_denied_on_start_fails_at_once_naming_the_permission(stub: Stubber) -> None:
    client_error(stub, "start_audience_generation_job", "AccessDeniedException", 403, "not authorized")
    with pytest.raises(lifecycle.JobError, match="cleanrooms-ml:StartAudienceGenerationJob"):
        entrypoints.on_event(event("Create", PROPS))


def test_invalid_properties_fail_before_any_call(stub: Stubber) -> None:
    bad = {**PROPS, "seedAudience": {**PROPS["seedAudience"], "roleArn": "not-a-role"}}
    with pytest.raises(ValueError, match=r"seedAudience\.roleArn \(seed_audience\.role\)"):
        entrypoints.on_event(event("Create", bad))


# -- is_complete after Create --------------------------------------------------------------------


def _polled(**extra: Any) -> dict[str, Any]:
    return {**event("Create", PROPS), "PhysicalResourceId": JOB_ARN, lifecycle.AWAIT: lifecycle.AWAIT_JOB, **extra}


def test_poll_until_active_returns_attributes(stub: Stubber) -> None:
    stub.add_response("get_audience_generation_job", job("CREATE_IN_PROGRESS"), {"audienceGenerationJobArn": JOB_ARN})
    assert entrypoints.is_complete(_polled(StartedAt=9e18)) == {"IsComplete": False}
    metrics = {
        "relevanceMetrics": [{"audienceSize": {"type": "ABSOLUTE", "value": 1000}, "score": 7.5}],
        "recallMetric": 0.8,
    }
    stub.add_response(
        "get_audience_generation_job", job("ACTIVE", metrics=metrics), {"audienceGenerationJobArn": JOB_ARN}
    )
    done = entrypoints.is_complete(_polled())
    assert done["Data"] == {
        "AudienceGenerationJobArn": JOB_ARN,
        "Name": NAME,
        "Status": "ACTIVE",
        "RecallMetric": "0.8",
        "RelevanceMetrics": '[{"audienceSize":{"type":"ABSOLUTE","value":1000},"score":7.5}]',
    }


def test_create_failed_reports_the_service_message(stub: Stubber) -> None:
    failed = job("CREATE_FAILED", statusDetails={"statusCode": "400", "message": "seed has fewer than 25 users"})
    stub.add_response("get_audience_generation_job", failed, {"audienceGenerationJobArn": JOB_ARN})
    with pytest.raises(lifecycle.JobError, match="seed has fewer than 25 users"):
        entrypoints.is_complete(_polled())


def test_timeout_says_how_long_it_waited_and_the_last_status(stub: Stubber) -> None:
    stub.add_response("get_audience_generation_job", job("CREATE_IN_PROGRESS"), {"audienceGenerationJobArn": JOB_ARN})
    late = {**_polled(StartedAt=0), "ResourceProperties": {**_polled()["ResourceProperties"], "TimeoutSeconds": "600"}}
    with pytest.raises(
        lifecycle.JobError, match=r"timed out after waiting \d+ s \(timeout 600 s\).*CREATE_IN_PROGRESS"
    ):
        entrypoints.is_complete(late)


def test_without_waiting_the_first_status_completes(stub: Stubber) -> None:
    stub.add_response("get_audience_generation_job", job("CREATE_PENDING"), {"audienceGenerationJobArn": JOB_ARN})
    polled = _polled()
    polled["ResourceProperties"]["WaitForCompletion"] = "false"
    done = entrypoints.is_complete(polled)
    assert done["IsComplete"] is True and done["Data"]["Status"] == "CREATE_PENDING"


# -- Update --------------------------------------------------------------------------------------


def _update(new: dict[str, Any], old: dict[str, Any] = PROPS) -> dict[str, Any]:
    return event(
        "Update", new, PhysicalResourceId=JOB_ARN, OldResourceProperties=event("Create", old)["ResourceProperties"]
    )


def test_update_of_a_replacing_member_starts_a_new_job(stub: Stubber) -> None:
    new = {**PROPS, "name": NAME + "x", "description": "new"}
    new_arn = JOB_ARN + "-2"
    stub.add_response("start_audience_generation_job", {"audienceGenerationJobArn": new_arn}, new)
    assert entrypoints.on_event(_update(new))["PhysicalResourceId"] == new_arn


def test_update_that_must_replace_a_job_keeping_its_name_fails_with_advice(stub: Stubber) -> None:
    stub.add_response("get_audience_generation_job", job("ACTIVE"), {"audienceGenerationJobArn": JOB_ARN})
    with pytest.raises(lifecycle.JobError, match="Change `name`"):
        entrypoints.on_event(_update({**PROPS, "description": "new"}))


def test_update_rollback_to_the_jobs_own_properties_needs_no_new_job(stub: Stubber) -> None:
    # CloudFormation rolls the failed update back: old = the refused properties, new = the job's own.
    stub.add_response("get_audience_generation_job", job("ACTIVE"), {"audienceGenerationJobArn": JOB_ARN})
    result = entrypoints.on_event(_update(PROPS, old={**PROPS, "description": "new"}))
    assert result["PhysicalResourceId"] == JOB_ARN and result[lifecycle.AWAIT] == lifecycle.AWAIT_ATTRIBUTES


def test_tags_only_update_tags_in_place(stub: Stubber) -> None:
    new = {**PROPS, "tags": {"team": "marketing", "cost": "42"}}
    stub.add_response("tag_resource", {}, {"resourceArn": JOB_ARN, "tags": {"team": "marketing", "cost": "42"}})
    result = entrypoints.on_event(_update(new))
    assert result["PhysicalResourceId"] == JOB_ARN and result[lifecycle.AWAIT] == lifecycle.AWAIT_ATTRIBUTES
    stub.add_response("untag_resource", {}, {"resourceArn": JOB_ARN, "tagKeys": ["team"]})
    entrypoints.on_event(_update({**PROPS, "tags": {}}))


@pytest.mark.parametrize(
    "control", [{"WaitForCompletion": "false"}, {"TimeoutSeconds": "900"}, {"RemovalPolicy": "retain"}, {}]
)
def test_control_only_or_no_change_calls_nothing(stub: Stubber, control: dict[str, str]) -> None:
    result = entrypoints.on_event(_update({**PROPS, **control}))
    assert result["PhysicalResourceId"] == JOB_ARN  # the stubber has no response queued: any call would fail


# -- Delete --------------------------------------------------------------------------------------


def _delete(physical_id: str = JOB_ARN, **props: Any) -> dict[str, Any]:
    return event("Delete", {**PROPS, **props}, PhysicalResourceId=physical_id)


def test_delete_waits_until_the_job_is_gone(stub: Stubber) -> None:
    stub.add_response("delete_audience_generation_job", {}, {"audienceGenerationJobArn": JOB_ARN})
    deleted = entrypoints.on_event(_delete())
    assert deleted[lifecycle.DELETE_ACCEPTED] is True
    polled = {**_delete(), **deleted}
    stub.add_response("get_audience_generation_job", job("DELETE_IN_PROGRESS"), None)
    assert entrypoints.is_complete(polled) == {"IsComplete": False}
    client_error(stub, "get_audience_generation_job", "ResourceNotFoundException", 404)
    assert entrypoints.is_complete(polled) == {"IsComplete": True}


def test_delete_of_a_job_already_gone_succeeds(stub: Stubber) -> None:
    client_error(stub, "delete_audience_generation_job", "ResourceNotFoundException", 404)
    assert entrypoints.on_event(_delete())[lifecycle.DELETE_ACCEPTED] is True


@pytest.mark.parametrize("physical_id", [lifecycle.CREATE_FAILED_MARKER, "req-1", "Lookalike1234"])
def test_delete_of_a_create_that_never_started_a_job_calls_nothing(stub: Stubber, physical_id: str) -> None:
    assert lifecycle.DELETE_ACCEPTED not in entrypoints.on_event(_delete(physical_id))
    assert entrypoints.is_complete({**_delete(physical_id)}) == {"IsComplete": True}


def test_retain_calls_nothing(stub: Stubber) -> None:
    assert lifecycle.DELETE_ACCEPTED not in entrypoints.on_event(_delete(RemovalPolicy="retain"))


def test_delete_refuses_a_job_arn_of_another_account(stub: Stubber) -> None:
    with pytest.raises(lifecycle.JobError, match="refusing to delete"):
        entrypoints.on_event(_delete(JOB_ARN.replace("111122223333", "999999999999")))


def test_delete_retries_while_a_dependent_resource_exists(stub: Stubber) -> None:
    client_error(stub, "delete_audience_generation_job", "ConflictException", 409, "another resource depends on this")
    deleted = entrypoints.on_event(_delete())
    assert deleted[lifecycle.DELETE_ACCEPTED] is False
    polled = {**_delete(), **deleted}
    stub.add_response("get_audience_generation_job", job("ACTIVE"), None)
    client_error(stub, "delete_audience_generation_job", "ConflictException", 409, "another resource depends on this")
    assert entrypoints.is_complete(polled) == {"IsComplete": False}
    stub.add_response("get_audience_generation_job", job("ACTIVE"), None)
    stub.add_response("delete_audience_generation_job", {}, None)
    assert entrypoints.is_complete(polled) == {"IsComplete": False}  # accepted; now waiting until gone
    client_error(stub, "get_audience_generation_job", "ResourceNotFoundException", 404)
    assert entrypoints.is_complete(polled) == {"IsComplete": True}


def _summary(name: str, arn: str) -> dict[str, Any]:
    return {
        "createTime": NOW,
        "updateTime": NOW,
        "audienceGenerationJobArn": arn,
        "name": name,
        "status": "ACTIVE",
        "configuredAudienceModelArn": MODEL_ARN,
    }


def test_a_failed_replacement_deletes_its_new_job_and_leaves_the_old_one(stub: Stubber) -> None:
    new = {**PROPS, "name": NAME + "x", "description": "new"}
    new_arn = JOB_ARN + "-2"
    stub.add_response("start_audience_generation_job", {"audienceGenerationJobArn": new_arn}, new)
    updated = entrypoints.on_event(_update(new))
    assert updated[lifecycle.REPLACES] == JOB_ARN
    failed = job("CREATE_FAILED", arn=new_arn, statusDetails={"message": "bad seed"})
    stub.add_response("get_audience_generation_job", failed, {"audienceGenerationJobArn": new_arn})
    stub.add_response("delete_audience_generation_job", {}, {"audienceGenerationJobArn": new_arn})
    with pytest.raises(lifecycle.JobError, match="bad seed"):
        entrypoints.is_complete({**_update(new), **updated})


def test_a_pending_job_is_found_by_name_even_when_the_quota_answers_first(stub: Stubber) -> None:
    polled = {**event("Create", PROPS), "PhysicalResourceId": lifecycle.PENDING_PREFIX + NAME, "StartedAt": 9e18}
    client_error(stub, "start_audience_generation_job", "ServiceQuotaExceededException", 402)
    stub.add_response("list_audience_generation_jobs", {"audienceGenerationJobs": [_summary(NAME, JOB_ARN)]}, None)
    stub.add_response("get_audience_generation_job", job("CREATE_IN_PROGRESS"), {"audienceGenerationJobArn": JOB_ARN})
    stub.add_response("get_audience_generation_job", job("ACTIVE"), {"audienceGenerationJobArn": JOB_ARN})
    done = entrypoints.is_complete(polled)
    assert done["IsComplete"] is True and done["PhysicalResourceId"] == JOB_ARN
