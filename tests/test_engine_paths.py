"""More of the handler's lifecycle against the local endpoint: the paths that could orphan a job or mislead.

Same setup as tests/test_engine.py (in-process, real boto3 client, real HTTP, one attempt per call). Here:
updates and rollbacks of a physical id that is still the pending one, Deletes whose properties no longer
decode, deadlines, failures without details, a job whose model lives in another region (every call must
go to that region), tag removal, and the log lines an operator reads to know what the handler did.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import boto3
import engine
import pytest
from specs import REQUEST_TAG

import entrypoints
import properties
import service
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import MODEL_ARN, REGION, STACK_ID
from tests.test_engine import (
    LOGICAL_ID,
    PROPS,
    create,
    delete,
    deploy,
    name_of,
    poll,
    properties_split,
    properties_with_name,
    props,
    started,
    update,
)

NOUN = "audience generation job"
OTHER_REGION = "eu-west-1"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    with Endpoint(reads_until_active=1, reads_until_deleted=1) as running:
        for key, value in running.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "1")
        service.reset_clients()
        yield running
        service.reset_clients()


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The handler's log lines (what CloudWatch shows an operator), as they are emitted."""
    caplog.set_level(logging.INFO, logger="cdk_cleanrooms_ml")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    logging.getLogger("cdk_cleanrooms_ml").addHandler(handler)
    yield lines
    logging.getLogger("cdk_cleanrooms_ml").removeHandler(handler)


def pending_id(properties: dict[str, Any] = PROPS) -> str:
    return engine.PENDING_PREFIX + name_of(properties)


def undecodable(properties: dict[str, Any]) -> dict[str, Any]:
    """Properties a newer template or an older SDK would not decode (an unknown member)."""
    return {**properties, "retiredMember": "x"}


# -- Physical ids that are still the pending one ----------------------------------------------------


def test_the_rollback_of_a_replacement_that_never_got_a_slot_returns_to_the_old_job(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    endpoint.quota = 0  # no slot: the replacement stays pending until its deadline
    merged = started(update(autumn, PROPS, arn))
    assert merged["PhysicalResourceId"] == pending_id(autumn) and merged[engine.REPLACES] == arn
    endpoint.quota = 10
    # The replacement failed (its deadline passed); CloudFormation's Update back names the pending id.
    back = deploy(update(PROPS, autumn, pending_id(autumn)))
    assert back["PhysicalResourceId"] == arn and back["Data"]["Status"] == "ACTIVE"
    assert [j["name"] for j in endpoint.jobs()] == [name_of(PROPS)]  # nothing started under the failed name


def test_the_rollback_of_a_pending_replacement_whose_job_started_late_deletes_that_job(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    endpoint.quota = 0
    started(update(autumn, PROPS, arn))
    endpoint.quota = 10
    late = deploy(create(autumn))["PhysicalResourceId"]  # say an earlier poll started it after all
    back = deploy(update(PROPS, autumn, pending_id(autumn)))
    assert back["PhysicalResourceId"] == arn
    assert endpoint.job(late)["status"].startswith("DELETE")  # type: ignore[index]


def test_an_update_of_a_pending_id_whose_job_never_started_starts_it_once(endpoint: Endpoint) -> None:
    autumn = props(description="autumn")
    done = deploy(update(autumn, PROPS, pending_id(PROPS)))
    assert done["PhysicalResourceId"].startswith("arn:") and done["Data"]["Name"] == name_of(autumn)
    assert [j["name"] for j in endpoint.jobs()] == [name_of(autumn)]


def test_delete_of_a_pending_id_deletes_the_job_that_started_late(endpoint: Endpoint, logged: list[str]) -> None:
    late = deploy(create())["PhysicalResourceId"]
    deploy(delete(pending_id()))
    assert endpoint.job(late) is None
    assert f"{NOUN} {late} is gone" in logged


def test_a_pending_create_that_times_out_says_so_and_its_delete_finds_nothing(endpoint: Endpoint) -> None:
    endpoint.quota = 0
    merged = started(create(props(TimeoutSeconds="60")))
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    merged[engine.STARTED_AT] -= 60
    with pytest.raises(
        engine.ResourceError,
        match=rf"^timed out after waiting 60 s \(timeout 60 s\): {NOUN} '{name_of(PROPS)}' was never created"
        r": the quota of resources in progress stayed full, or its name stayed in use$",
    ):
        entrypoints.is_complete(merged)
    deploy(delete(merged["PhysicalResourceId"]))
    assert endpoint.jobs() == [] and endpoint.count("DeleteAudienceGenerationJob") == 0


# -- A name held by a job this request cannot see or adopt ------------------------------------------


def test_a_name_held_by_a_job_of_another_model_is_waited_for_not_adopted(endpoint: Endpoint, logged: list[str]) -> None:
    name = name_of(PROPS)
    other = endpoint.add_job(name, {"configuredAudienceModelArn": MODEL_ARN.replace("/abc", "/other")})
    merged = started(create())
    assert merged["PhysicalResourceId"] == pending_id()  # listed under another model: not ours to adopt
    assert (
        f"{NOUN} {name} is not created yet (the name {name!r} is in use by a resource that is not listed (yet)); "
        "is_complete tries again"
    ) in logged
    endpoint.remove_job(other)
    assert poll(merged)["Data"]["Status"] == "ACTIVE"


def test_a_name_held_by_a_job_being_deleted_says_so_in_the_log(endpoint: Endpoint, logged: list[str]) -> None:
    name = name_of(PROPS)
    old = endpoint.add_job(name, {"configuredAudienceModelArn": MODEL_ARN}, status="DELETE_IN_PROGRESS")
    assert started(create())["PhysicalResourceId"] == pending_id()
    assert f"{NOUN} {name} is not created yet (the {NOUN} {old} that had the name {name!r} is being deleted); " in (
        " ".join(logged) + " "
    )


def test_a_name_held_by_a_failed_deletion_is_never_adopted(endpoint: Endpoint) -> None:
    name = name_of(PROPS)
    held = endpoint.add_job(name, {"configuredAudienceModelArn": MODEL_ARN}, status="DELETE_FAILED")
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(create())
    assert str(raised.value) == (
        f"{NOUN} names are unique and {name!r} is held by {held}, which is DELETE_FAILED "
        "(left by an earlier failed attempt?): delete it or give this resource another name"
    )


def test_a_redelivered_create_whose_job_failed_takes_it_so_the_rollback_deletes_it(endpoint: Endpoint) -> None:
    endpoint.fail_job(name_of(PROPS), "the seed object does not exist")
    endpoint.set_reads(name_of(PROPS), 0)  # it fails at its first read
    first = started(create())  # the first delivery starts the job
    (job,) = endpoint.jobs()
    client = endpoint.client()
    assert client.get_audience_generation_job(audienceGenerationJobArn=job["arn"])["status"] == "CREATE_FAILED"
    again = started(create())  # redelivered: the name is held by this request's own failed job
    assert again["PhysicalResourceId"] == job["arn"] == first["PhysicalResourceId"]
    with pytest.raises(engine.ResourceError, match="CREATE_FAILED.*the seed object does not exist"):
        poll(again)
    deploy(delete(again["PhysicalResourceId"]))  # CloudFormation's rollback: the job is the resource's, deleted
    assert endpoint.jobs() == [] or all(j["status"].startswith("DELETE") for j in endpoint.jobs())
    assert endpoint.count("StartAudienceGenerationJob") == 2  # the second start found the name taken


def test_a_name_held_by_an_untagged_job_is_never_adopted(endpoint: Endpoint) -> None:
    name = name_of(PROPS)
    held = endpoint.add_job(name, {"configuredAudienceModelArn": MODEL_ARN})  # someone else's: no request tag
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(create())
    assert str(raised.value) == (
        f"{NOUN} names are unique and {name!r} is already used by {held}, which was not created "
        "from this resource's properties: give this resource another name"
    )


# -- Deletes whose properties no longer decode ------------------------------------------------------


def test_a_delete_whose_properties_no_longer_decode_still_deletes_and_waits(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    merged = started(delete(arn, undecodable(PROPS)))
    assert entrypoints.is_complete(merged) == {"IsComplete": False}  # waits (the default), DELETE_PENDING
    assert poll(merged)["IsComplete"] and endpoint.jobs() == []


def test_a_delete_whose_control_properties_are_invalid_still_deletes(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    deploy(delete(arn, props(WaitForCompletion="maybe", TimeoutSeconds="soon")))
    assert endpoint.jobs() == []


def test_is_complete_decides_a_delete_by_its_request_type(endpoint: Endpoint) -> None:
    """Whatever keys on_event added (an event from an older handler has none), a Delete polls the deletion."""
    arn = deploy(create())["PhysicalResourceId"]
    assert entrypoints.is_complete(delete(arn)) == {"IsComplete": False}  # deletion requested, DELETE_PENDING
    assert poll(delete(arn))["IsComplete"] and endpoint.jobs() == []


# -- Deadlines --------------------------------------------------------------------------------------


def test_a_one_second_timeout_is_accepted_and_zero_is_not(endpoint: Endpoint) -> None:
    merged = started(create(props(TimeoutSeconds="1")))
    merged[engine.STARTED_AT] = time.time() + 600  # another function's clock runs ahead: no time has passed
    endpoint.reads_until_active = 3
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    with pytest.raises(properties.PropertyError, match="^TimeoutSeconds must be between 1 and 3600$"):
        entrypoints.on_event(create(props(TimeoutSeconds="0")))


def test_a_start_time_that_is_not_a_number_counts_from_now(endpoint: Endpoint) -> None:
    merged = {**started(create(props(TimeoutSeconds="60"))), engine.STARTED_AT: "soon"}
    endpoint.set_reads(name_of(PROPS), 5)
    assert entrypoints.is_complete(merged) == {"IsComplete": False}


def test_a_job_still_creating_at_its_deadline_fails_naming_its_status(endpoint: Endpoint) -> None:
    endpoint.set_reads(name_of(PROPS), 5)
    merged = started(create(props(TimeoutSeconds="60")))
    merged[engine.STARTED_AT] -= 60
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.is_complete(merged)
    arn = merged["PhysicalResourceId"]
    assert str(raised.value) == f"timed out after waiting 60 s (timeout 60 s): {NOUN} {arn} is still CREATE_PENDING"


def test_a_deletion_still_running_at_its_deadline_fails_naming_its_status(monkeypatch: pytest.MonkeyPatch) -> None:
    with Endpoint(reads_until_active=1, reads_until_deleted=5) as slow:
        for key, value in slow.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "1")
        service.reset_clients()
        arn = deploy(create(props(TimeoutSeconds="60")))["PhysicalResourceId"]
        merged = started(delete(arn, props(TimeoutSeconds="60")))
        merged[engine.STARTED_AT] -= 60
        with pytest.raises(engine.ResourceError) as raised:
            entrypoints.is_complete(merged)
        service.reset_clients()
    assert str(raised.value) == f"timed out after waiting 60 s (timeout 60 s): {NOUN} {arn} is still DELETE_PENDING"


def test_a_delete_blocked_past_its_bound_names_the_job_and_what_to_do(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.block_delete(name_of(PROPS), 100)
    merged = started(delete(arn))
    merged[engine.STARTED_AT] -= engine.DELETE_CONFLICT_SECONDS
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.is_complete(merged)
    assert str(raised.value) == (
        f"{NOUN} {arn} cannot be deleted: the service answered ConflictException: Audience generation job {arn} "
        f"cannot be deleted: another resource depends on this resource for {engine.DELETE_CONFLICT_SECONDS} s. "
        "A resource that depends on it still exists (an audience export job in progress); "
        "delete that first, then delete the stack again."
    )


def test_a_short_timeout_bounds_the_retries_of_a_blocked_delete(endpoint: Endpoint) -> None:
    arn = deploy(create(props(TimeoutSeconds="60")))["PhysicalResourceId"]
    endpoint.block_delete(name_of(PROPS), 100)
    merged = started(delete(arn, props(TimeoutSeconds="60")))
    merged[engine.STARTED_AT] -= 60
    with pytest.raises(engine.ResourceError, match="cannot be deleted: the service answered ConflictException"):
        entrypoints.is_complete(merged)


# -- Failures the service describes (or does not) ---------------------------------------------------


def test_a_creation_failure_without_details_still_says_what_failed(endpoint: Endpoint) -> None:
    endpoint.fail_job(name_of(PROPS), "", status_code="")
    merged = started(create())
    with pytest.raises(engine.ResourceError) as raised:
        poll(merged)
    assert str(raised.value) == f"{NOUN} {merged['PhysicalResourceId']} failed: CREATE_FAILED: no message"


def test_a_deletion_failure_without_details_still_says_what_failed(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.fail_delete(name_of(PROPS), "")
    with pytest.raises(engine.ResourceError) as raised:
        poll(started(delete(arn)))
    assert str(raised.value) == f"deleting {NOUN} {arn} failed: DELETE_FAILED: no message"


def test_a_job_deleted_while_it_was_being_created_fails_the_create(endpoint: Endpoint) -> None:
    merged = started(create())
    arn = merged["PhysicalResourceId"]
    endpoint.client().delete_audience_generation_job(audienceGenerationJobArn=arn)  # someone deletes it
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.is_complete(merged)
    assert str(raised.value) == (
        f"{NOUN} {arn} is DELETE_PENDING: it is being deleted or failed to delete, it cannot be ready"
    )


def test_a_job_removed_while_it_was_being_created_fails_the_create(endpoint: Endpoint) -> None:
    merged = started(create())
    endpoint.remove_job(merged["PhysicalResourceId"])
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.is_complete(merged)
    assert str(raised.value) == (
        f"{NOUN} {merged['PhysicalResourceId']} does not exist (deleted outside CloudFormation?)"
    )


def test_a_permission_missing_for_a_read_is_named_without_the_pass_role_hint(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.deny("GetAudienceGenerationJob")
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(update(props(description="autumn"), PROPS, arn))
    message = str(raised.value)
    assert message.startswith("AccessDeniedException: User: ")
    assert message.endswith(" -- the handler role needs cleanrooms-ml:GetAudienceGenerationJob")


def test_a_permission_missing_for_the_start_also_names_the_role_to_pass(endpoint: Endpoint) -> None:
    endpoint.deny("StartAudienceGenerationJob")
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(create())
    assert str(raised.value).endswith(
        " -- the handler role needs cleanrooms-ml:StartAudienceGenerationJob "
        "(and iam:PassRole on the role in seedAudience.roleArn)"
    )


def test_a_permission_missing_for_the_delete_fails_the_delete_naming_it(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.deny("DeleteAudienceGenerationJob")
    with pytest.raises(engine.ResourceError, match="the handler role needs cleanrooms-ml:DeleteAudienceGenerationJob$"):
        entrypoints.on_event(delete(arn))
    assert endpoint.job(arn)["status"] == "ACTIVE"  # type: ignore[index]


def test_a_transient_error_on_delete_leaves_the_delete_to_is_complete(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.throttle("DeleteAudienceGenerationJob", 1)
    merged = started(delete(arn))
    assert endpoint.job(arn)["status"] == "ACTIVE"  # type: ignore[index]
    assert poll(merged)["IsComplete"] and endpoint.jobs() == []


# -- Tags -------------------------------------------------------------------------------------------


def test_a_tags_update_removes_and_sets_exactly_what_changed(endpoint: Endpoint) -> None:
    before = props(tags={"team": "ads", "env": "dev", "keep": "1"})
    arn = deploy(create(before))["PhysicalResourceId"]
    endpoint.calls.clear()
    done = deploy(update(props(tags={"team": "growth", "keep": "1", "new": "x"}), before, arn))
    tagging = [(c.operation, c.params) for c in endpoint.calls if c.operation in ("TagResource", "UntagResource")]
    assert tagging == [
        ("UntagResource", {"resourceArn": arn, "tagKeys": ["env"]}),
        ("TagResource", {"resourceArn": arn, "tags": {"team": "growth", "new": "x"}}),
    ]
    tags = endpoint.job(arn)["tags"]  # type: ignore[index]
    assert {k: v for k, v in tags.items() if k != REQUEST_TAG} == {"team": "growth", "keep": "1", "new": "x"}
    assert done["Data"]["AudienceGenerationJobArn"] == arn and done["Data"]["Name"] == name_of(PROPS)


def test_a_tags_update_only_removing_tags_makes_no_tag_call(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.calls.clear()
    deploy(update(props(tags=None), PROPS, arn))
    assert [c.operation for c in endpoint.calls if c.operation in ("TagResource", "UntagResource")] == ["UntagResource"]
    assert endpoint.job(arn)["tags"] == {REQUEST_TAG: endpoint.job(arn)["tags"][REQUEST_TAG]}  # type: ignore[index]


def test_the_attributes_after_a_tags_update_are_read_after_the_tags_changed(endpoint: Endpoint) -> None:
    no_wait = props(WaitForCompletion="false")
    endpoint.set_reads(name_of(no_wait), 3)  # reads 1-3 see it unfinished, the 4th ACTIVE
    arn = deploy(create(no_wait))["PhysicalResourceId"]  # read 1
    done = deploy(update(props(WaitForCompletion="false", tags={"team": "growth"}), no_wait, arn))  # reads 2-4
    assert done["Data"]["Status"] == "ACTIVE" == endpoint.job(arn)["status"]  # type: ignore[index]


def test_a_job_still_creating_completes_without_metrics_when_not_waiting(endpoint: Endpoint) -> None:
    endpoint.set_reads(name_of(props(WaitForCompletion="false")), 5)
    data = deploy(create(props(WaitForCompletion="false")))["Data"]
    assert data["Status"] == "CREATE_PENDING" and data["RecallMetric"] == "" and data["RelevanceMetrics"] == ""


def test_an_update_of_a_job_deleted_outside_reports_it_not_found_with_its_name(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.remove_job(arn)
    data = deploy(update(props(tags={"team": "growth"}), PROPS, arn))["Data"]
    assert data == {
        "AudienceGenerationJobArn": arn,
        "Name": name_of(PROPS),
        "Status": engine.NOT_FOUND,
        "RecallMetric": "",
        "RelevanceMetrics": "",
    }


# -- A model in another region: every call goes to the job's region ----------------------------------


@pytest.fixture
def elsewhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Endpoint, list[tuple[str, str, str]]]]:
    """The service in eu-west-1 (sparse reads: tags come from ListTagsForResource), the functions in us-east-1,
    and every request the handler sends as (operation, the region it is signed for, its User-Agent)."""
    sent: list[tuple[str, str, str]] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        scope = re.search(r"Credential=[^/]+/[0-9]{8}/([^/]+)/", headers["authorization"])
        sent.append((event_name.rsplit(".", 1)[1], scope[1] if scope else "", headers.get("user-agent", "")))

    session = boto3._get_default_session()._session  # the session boto3.client() creates the handler's clients in
    session.register("before-send.cleanroomsml", record, unique_id="test-engine-paths-record")
    with Endpoint(region=OTHER_REGION, reads_until_active=1, echo="sparse") as running:
        for key, value in running.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_REGION", REGION)  # the functions run in the stack's region
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "1")
        service.reset_clients()
        try:
            yield running, sent
        finally:
            service.reset_clients()
            session.unregister("before-send.cleanroomsml", unique_id="test-engine-paths-record")


MODEL_ELSEWHERE = MODEL_ARN.replace(REGION, OTHER_REGION)


def test_every_call_for_a_job_of_a_model_in_another_region_goes_to_that_region(
    elsewhere: tuple[Endpoint, list[tuple[str, str, str]]],
) -> None:
    endpoint, sent = elsewhere
    spring = props(configuredAudienceModelArn=MODEL_ELSEWHERE)
    autumn = props(configuredAudienceModelArn=MODEL_ELSEWHERE, description="autumn")
    arn = deploy(create(spring))["PhysicalResourceId"]
    assert arn.startswith(f"arn:aws:cleanrooms-ml:{OTHER_REGION}:")
    assert deploy(create(spring))["PhysicalResourceId"] == arn  # adopted: listed, read, its tags listed
    deploy(update(props(configuredAudienceModelArn=MODEL_ELSEWHERE, tags={"env": "prod"}), spring, arn))
    started(update(autumn, spring, arn))  # a replacement whose is_complete never ran
    assert deploy(update(spring, autumn, arn))["PhysicalResourceId"] == arn  # the Update back discards it
    endpoint.remove_job(name_of(autumn))  # its deletion finishes
    new = deploy(create(autumn))["PhysicalResourceId"]
    deploy(delete(engine.PENDING_PREFIX + name_of(autumn), autumn))  # a pending id found by its name
    deploy(delete(arn, undecodable(spring)))  # properties that no longer decode: the ARN says the region
    assert endpoint.job(new) is None and endpoint.job(arn) is None
    operations = {operation for operation, _region, _agent in sent}
    assert operations == {
        "StartAudienceGenerationJob",
        "GetAudienceGenerationJob",
        "ListAudienceGenerationJobs",
        "ListTagsForResource",
        "TagResource",
        "UntagResource",
        "DeleteAudienceGenerationJob",
    }
    assert {region for _operation, region, _agent in sent} == {OTHER_REGION}
    assert all("cdk-cleanrooms-ml" in agent.split() for _operation, _region, agent in sent)


def test_without_a_region_given_the_client_is_the_functions_own(monkeypatch: pytest.MonkeyPatch) -> None:
    service.reset_clients()
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert service.client("cleanroomsml").meta.region_name == "ap-south-1"
    assert service.client("cleanroomsml", OTHER_REGION).meta.region_name == OTHER_REGION
    monkeypatch.delenv("AWS_REGION")
    service.reset_clients()
    assert service.client("cleanroomsml").meta.region_name == "eu-north-1"
    service.reset_clients()


def test_the_clients_fail_within_the_functions_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every attempt may wait for a connection and an answer: all attempts, with backoff, fit the functions'
    5-minute timeout (the handler then fails clearly instead of being cut off by Lambda)."""
    monkeypatch.delenv("CLEANROOMSML_MAX_ATTEMPTS", raising=False)
    service.reset_clients()
    config = service.client("cleanroomsml", REGION).meta.config
    attempts = config.retries["total_max_attempts"]
    assert attempts == service.DEFAULT_ATTEMPTS and config.retries["mode"] == "standard"
    # botocore's standard mode waits at most 2 ** (retry - 1) s, and never over 20 s, before each retry
    backoff = sum(min(20, 2**retry) for retry in range(attempts - 1))
    assert attempts * (config.connect_timeout + config.read_timeout) + backoff < 5 * 60
    assert config.connect_timeout <= 5 and config.read_timeout <= 20
    service.reset_clients()


# -- What the log tells an operator -------------------------------------------------------------------


def test_the_log_tells_each_step_of_a_job_s_life(endpoint: Endpoint, logged: list[str]) -> None:
    endpoint.quota = 0
    merged = started(create())
    name = name_of(PROPS)
    endpoint.quota = 10
    arn = poll(merged)["PhysicalResourceId"]
    deploy(create())  # redelivered: adopted
    deploy(update(props(tags={"team": "growth", "env": "prod"}), PROPS, arn))
    autumn = props(description="autumn")
    new = deploy(update(autumn, props(tags={"team": "growth", "env": "prod"}), arn))["PhysicalResourceId"]
    endpoint.block_delete(name_of(autumn), 1)
    deploy(delete(new, autumn))
    endpoint.remove_job(arn)
    deploy(delete(arn))
    deploy(delete(engine.CREATE_FAILED_MARKER))
    expected = [
        f"{NOUN} {name} is not created yet (the account is at its quota of resources in progress); "
        "is_complete tries again",
        f"created {NOUN} {arn} after waiting",
        f"{NOUN} {arn} is ACTIVE",
        f"adopted {NOUN} {arn}, created by an earlier attempt of this request",
        f"created {NOUN} {arn}",
        f"tags of {arn} updated: 2 set, 0 removed",
        f"replacing {NOUN} {arn} (changed: description, name)",
        f"{new} cannot be deleted yet (ConflictException: Audience generation job {new} cannot be deleted: "
        "another resource depends on this resource); is_complete tries again",
        f"deletion of {NOUN} {new} requested",
        f"{NOUN} {new} is DELETE_PENDING",
        f"{NOUN} {new} is gone",
        f"{NOUN} {arn} is already gone",
        f"{NOUN} {arn} is gone",
        f"physical id {engine.CREATE_FAILED_MARKER} is not a resource (none was created); nothing to delete",
    ]
    assert [line for line in expected if line not in logged] == []
    assert logged.index(expected[0]) < logged.index(expected[1]) < logged.index(expected[3])


def test_the_log_tells_what_a_conflict_during_polling_and_transient_errors_did(
    endpoint: Endpoint, logged: list[str]
) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.block_delete(name_of(PROPS), 2)
    merged = started(delete(arn))
    poll(merged)
    assert (
        f"{NOUN} {arn} cannot be deleted yet (ConflictException: Audience generation job {arn} cannot be "
        "deleted: another resource depends on this resource); trying again"
    ) in logged
    endpoint.throttle("StartAudienceGenerationJob", 1)
    started(create(props(description="autumn")))
    assert "StartAudienceGenerationJob: ThrottlingException: Rate exceeded; trying again later" in logged
    assert (
        f"{NOUN} {name_of(props(description='autumn'))} is not created yet (the service answered "
        "ThrottlingException: Rate exceeded); is_complete tries again"
    ) in logged
    endpoint.throttle("GetAudienceGenerationJob", 1)
    assert entrypoints.is_complete(started(create(props(description="winter")))) == {"IsComplete": False}
    assert "ThrottlingException: Rate exceeded; trying again on a later poll" in logged


def test_the_log_tells_what_a_failed_replacement_and_its_rollback_deleted(
    endpoint: Endpoint, logged: list[str]
) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn, winter = props(description="autumn"), props(description="winter")
    endpoint.fail_job(name_of(autumn), "seed data not found")
    merged = started(update(autumn, PROPS, arn))
    with pytest.raises(engine.ResourceError):
        poll(merged)
    new = merged["PhysicalResourceId"]
    assert f"deleted {NOUN} {new} of the failed replacement; {arn} is unchanged" in logged
    started(update(winter, PROPS, arn))  # a replacement whose is_complete never ran
    crashed = endpoint.job(name_of(winter))["arn"]  # type: ignore[index]
    deploy(update(PROPS, winter, arn))
    assert f"deleted {NOUN} {crashed}, left by a failed update" in logged
    assert f"replacing {NOUN} {arn} (changed: description, name)" in logged


def test_a_replacement_whose_cleanup_fails_still_fails_with_its_own_error(
    endpoint: Endpoint, logged: list[str]
) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    endpoint.fail_job(name_of(autumn), "seed data not found")
    merged = started(update(autumn, PROPS, arn))
    endpoint.deny("DeleteAudienceGenerationJob", "no deletes today")
    with pytest.raises(engine.ResourceError, match="failed: CREATE_FAILED \\(400\\): seed data not found$"):
        poll(merged)
    assert (
        "could not delete the new resource of the failed replacement: AccessDeniedException: no deletes today" in logged
    )
    assert endpoint.job(merged["PhysicalResourceId"])["status"] == "CREATE_FAILED"  # type: ignore[index]


def test_an_update_back_that_cannot_look_for_leftovers_still_updates(endpoint: Endpoint, logged: list[str]) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    endpoint.deny("ListAudienceGenerationJobs", "no listing today")
    back = deploy(update(PROPS, autumn, arn))
    assert back["PhysicalResourceId"] == arn
    assert "could not discard what a failed update left: AccessDeniedException: no listing today" in logged


def test_an_update_whose_old_properties_are_this_jobs_discards_nothing(endpoint: Endpoint) -> None:
    """A forward update: the old properties name the physical id's own job, which is never deleted."""
    explicit = props(NamePrefix=None, name="spring")
    arn = deploy(create(explicit))["PhysicalResourceId"]
    renamed = props(NamePrefix=None, name="summer")
    new = deploy(update(renamed, explicit, arn))["PhysicalResourceId"]
    assert new != arn and endpoint.job(arn)["status"] == "ACTIVE"  # type: ignore[index]
    assert endpoint.count("DeleteAudienceGenerationJob") == 0


# -- More paths: older jobs, deferred decisions, leftovers that are not ours ---------------------------


def test_a_missing_credential_fails_clearly_and_starts_nothing(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it keeps the credentials it found first
    service.reset_clients()
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(create())
    assert str(raised.value) == "StartAudienceGenerationJob failed: NoCredentialsError: Unable to locate credentials"
    assert endpoint.calls == []


def test_every_listing_is_narrowed_by_the_request_s_model(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    deploy(create())  # adoption
    autumn = props(description="autumn")
    started(update(autumn, PROPS, arn))
    deploy(update(PROPS, autumn, arn))  # the Update back looks for the failed update's job
    deploy(delete(pending_id(autumn), autumn))
    listings = [c.params for c in endpoint.calls if c.operation == "ListAudienceGenerationJobs"]
    assert len(listings) >= 3 and all(c.get("configuredAudienceModelArn") == MODEL_ARN for c in listings)


def test_a_job_an_older_release_started_without_a_request_tag_is_updated_in_place(endpoint: Endpoint) -> None:
    explicit = props(NamePrefix=None, name="spring")
    request = properties_with_name(*properties_split(explicit), LOGICAL_ID, STACK_ID)
    arn = endpoint.add_job("spring", {k: v for k, v in request.items() if k != "tags"})  # no request tag
    done = deploy(update(props(NamePrefix=None, name="spring", tags={"team": "growth"}), explicit, arn))
    assert done["PhysicalResourceId"] == arn and len(endpoint.jobs()) == 1


@pytest.mark.parametrize("tagged", [True, False], ids=["started-by-this-release", "started-by-an-older-one"])
def test_old_properties_that_no_longer_decode_make_any_change_a_replacement(endpoint: Endpoint, tagged: bool) -> None:
    explicit = props(NamePrefix=None, name="spring")
    if tagged:
        arn = deploy(create(explicit))["PhysicalResourceId"]
    else:
        arn = endpoint.add_job("spring", {"configuredAudienceModelArn": MODEL_ARN})
    changed = {**explicit, "description": "autumn"}
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(update(changed, undecodable(explicit), arn))
    assert str(raised.value).startswith(
        f"the {NOUN} must be replaced because the request changed, but its name 'spring' did not: "
    )


def test_an_explicit_name_that_must_be_replaced_says_what_changed_and_what_to_do(endpoint: Endpoint) -> None:
    explicit = props(NamePrefix=None, name="spring")
    arn = deploy(create(explicit))["PhysicalResourceId"]
    changed = {**explicit, "description": "autumn", "includeSeedInOutput": "true"}
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(update(changed, explicit, arn))
    assert str(raised.value) == (
        f"the {NOUN} must be replaced because description, includeSeedInOutput changed, but its name 'spring' "
        "did not: names are unique and CloudFormation deletes the old resource only after the new "
        "one exists. Change `name` (or omit it to let the library derive one) and deploy again."
    )


def test_an_update_left_undecided_times_out_from_on_event_s_start(endpoint: Endpoint) -> None:
    arn = deploy(create(props(TimeoutSeconds="60")))["PhysicalResourceId"]
    endpoint.throttle("GetAudienceGenerationJob", 2)
    merged = started(update(props(TimeoutSeconds="60", description="autumn"), props(TimeoutSeconds="60"), arn))
    assert merged[engine.AWAIT] == engine.AWAIT_UPDATE
    merged[engine.STARTED_AT] -= 60
    with pytest.raises(engine.ResourceError, match=r"^timed out after waiting 60 s \(timeout 60 s\): the service kept"):
        entrypoints.is_complete(merged)


def test_a_tags_update_decided_by_is_complete_is_applied_in_place(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.throttle("GetAudienceGenerationJob", 1)
    merged = started(update(props(tags={"team": "growth"}), PROPS, arn))
    assert merged[engine.AWAIT] == engine.AWAIT_UPDATE
    done = poll(merged)
    assert done["PhysicalResourceId"] == arn and endpoint.job(arn)["tags"]["team"] == "growth"  # type: ignore[index]


def test_a_replacement_decided_by_is_complete_that_fails_deletes_its_new_job(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    endpoint.fail_job(name_of(autumn), "seed data not found")
    endpoint.throttle("GetAudienceGenerationJob", 1)
    merged = started(update(autumn, PROPS, arn))
    assert merged[engine.AWAIT] == engine.AWAIT_UPDATE
    with pytest.raises(engine.ResourceError, match="CREATE_FAILED"):
        poll(merged)
    assert endpoint.job(name_of(autumn))["status"].startswith("DELETE")  # type: ignore[index]
    assert endpoint.job(arn)["status"] == "ACTIVE"  # type: ignore[index]


def test_a_failed_create_leaves_its_job_to_cloudformation_s_delete(endpoint: Endpoint) -> None:
    endpoint.fail_job(name_of(PROPS), "seed data not found")
    merged = started(create())
    with pytest.raises(engine.ResourceError, match="CREATE_FAILED"):
        poll(merged)
    assert endpoint.job(merged["PhysicalResourceId"])["status"] == "CREATE_FAILED"  # type: ignore[index]
    deploy(delete(merged["PhysicalResourceId"]))  # the Delete that follows removes it
    assert endpoint.jobs() == []


def test_a_pending_replacement_that_never_started_has_nothing_to_clean_up(
    endpoint: Endpoint, logged: list[str]
) -> None:
    arn = deploy(create(props(TimeoutSeconds="60")))["PhysicalResourceId"]
    endpoint.quota = 0
    merged = started(update(props(TimeoutSeconds="60", description="autumn"), props(TimeoutSeconds="60"), arn))
    merged[engine.STARTED_AT] -= 60
    with pytest.raises(engine.ResourceError, match="was never created"):
        entrypoints.is_complete(merged)
    assert not [line for line in logged if line.startswith("could not delete")]
    assert endpoint.count("DeleteAudienceGenerationJob") == 0


def test_an_in_place_update_of_a_pending_id_keeps_the_job_that_started_late(endpoint: Endpoint) -> None:
    late = deploy(create())["PhysicalResourceId"]
    done = deploy(update(props(tags={"team": "growth"}), PROPS, pending_id()))
    assert endpoint.job(late)["status"] == "ACTIVE"  # type: ignore[index]
    assert endpoint.job(late)["tags"]["team"] == "growth"  # type: ignore[index]
    assert done["Data"]["AudienceGenerationJobArn"] == late


def test_an_in_place_update_of_a_pending_id_whose_job_never_started_reports_it_not_found(
    endpoint: Endpoint, logged: list[str]
) -> None:
    done = deploy(update(props(tags={"team": "growth"}), PROPS, pending_id()))
    assert done["PhysicalResourceId"] == pending_id() and endpoint.jobs() == []
    assert done["Data"] == {
        "AudienceGenerationJobArn": "",
        "Name": name_of(PROPS),
        "Status": engine.NOT_FOUND,
        "RecallMetric": "",
        "RelevanceMetrics": "",
    }
    assert f"{NOUN} {pending_id()} no longer exists; the update changed nothing" in logged


def test_an_update_back_never_deletes_a_job_of_the_failed_name_it_did_not_start(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    someone_elses = endpoint.add_job(name_of(autumn), {"configuredAudienceModelArn": MODEL_ARN})
    assert deploy(update(PROPS, autumn, arn))["PhysicalResourceId"] == arn
    assert endpoint.job(someone_elses)["status"] == "ACTIVE"  # type: ignore[index]


def test_an_update_back_does_not_delete_again_what_is_already_being_deleted(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    started(update(autumn, PROPS, arn))
    leftover = endpoint.job(name_of(autumn))["arn"]  # type: ignore[index]
    endpoint.client().delete_audience_generation_job(audienceGenerationJobArn=leftover)  # already on its way out
    before = endpoint.count("DeleteAudienceGenerationJob")
    deploy(update(PROPS, autumn, arn))
    assert endpoint.count("DeleteAudienceGenerationJob") == before


def test_a_delete_of_a_pending_id_whose_properties_no_longer_decode_still_finds_the_job(endpoint: Endpoint) -> None:
    late = deploy(create())["PhysicalResourceId"]
    deploy(delete(pending_id(), undecodable(PROPS)))
    assert endpoint.job(late) is None


def test_tags_in_a_full_description_are_not_listed_again(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    assert deploy(create())["PhysicalResourceId"] == arn  # adoption reads the request tag from the description
    assert endpoint.count("ListTagsForResource") == 0


def test_a_replacement_decided_by_is_complete_that_fails_at_once_deletes_its_new_job(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    endpoint.fail_job(name_of(autumn), "seed data not found")
    endpoint.set_reads(name_of(autumn), 0)  # its first read already sees it CREATE_FAILED
    endpoint.throttle("GetAudienceGenerationJob", 1)
    merged = started(update(autumn, PROPS, arn))
    with pytest.raises(engine.ResourceError, match=r"failed: CREATE_FAILED \(400\): seed data not found$"):
        entrypoints.is_complete(merged)  # decides, starts the replacement, reads it failed: one poll
    assert endpoint.job(name_of(autumn))["status"].startswith("DELETE")  # type: ignore[index]
