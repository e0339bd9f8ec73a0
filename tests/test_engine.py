"""The handler's lifecycle decisions, run in-process against the local endpoint (real boto3 client, real HTTP).

Each test plays CloudFormation and the Provider framework in a few lines (``deploy``: on_event, then
is_complete with the merged event until it completes) and then looks at what the service holds. The
client makes one attempt per call here (CLEANROOMSML_MAX_ATTEMPTS=1), so every scripted throttle or
5xx "outlasts the client's retries".
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import engine
import pytest
from specs import AUDIENCE_GENERATION_JOB as SPEC
from specs import REQUEST_TAG

import entrypoints
import properties
import service
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import ACCOUNT, COLLABORATION_ID, MODEL_ARN, ROLE_ARN, STACK_ID, event

PREFIX = "Test-Lookalike"
LOGICAL_ID = "Lookalike1234"
PROPS: dict[str, Any] = {
    "NamePrefix": PREFIX,
    "configuredAudienceModelArn": MODEL_ARN,
    "seedAudience": {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://seed-bucket/seed.jsonl"}},
    "tags": {"team": "ads"},
}
SQL_SEED = {
    "roleArn": ROLE_ARN,
    "sqlParameters": {"queryString": "SELECT user_id FROM t WHERE c = :c", "parameters": {"c": "spring"}},
}
MUTATING = {"StartAudienceGenerationJob", "DeleteAudienceGenerationJob", "TagResource", "UntagResource"}


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    with Endpoint(reads_until_active=1, reads_until_deleted=1) as started:
        for key, value in started.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "1")
        service.reset_clients()
        yield started
        service.reset_clients()


def props(**changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(PROPS)
    for key, value in changes.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return changed


def create(properties: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return event("Create", properties or PROPS, LogicalResourceId=LOGICAL_ID, **extra)


def update(new: dict[str, Any], old: dict[str, Any], physical_id: str) -> dict[str, Any]:
    return event(
        "Update",
        new,
        LogicalResourceId=LOGICAL_ID,
        PhysicalResourceId=physical_id,
        OldResourceProperties=event("Create", old)["ResourceProperties"],
    )


def delete(physical_id: str, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return event("Delete", properties or PROPS, LogicalResourceId=LOGICAL_ID, PhysicalResourceId=physical_id)


def started(delivered: dict[str, Any]) -> dict[str, Any]:
    """on_event, merged into the event as the framework does."""
    return {**delivered, **entrypoints.on_event(delivered)}


def poll(merged: dict[str, Any], *, times: int = 10) -> dict[str, Any]:
    """is_complete until it completes; the framework's answer (merged event, is_complete's keys, Data)."""
    for _ in range(times):
        answer = entrypoints.is_complete(merged)
        if answer["IsComplete"]:
            return {**merged, **answer}
        assert "Data" not in answer
    raise AssertionError(f"not complete after {times} polls")


def deploy(delivered: dict[str, Any]) -> dict[str, Any]:
    return poll(started(delivered))


def name_of(properties: dict[str, Any], logical_id: str = LOGICAL_ID, stack_id: str = STACK_ID) -> str:
    raw, control = properties_split(properties)
    return str(properties_with_name(raw, control, logical_id, stack_id)["name"])


def properties_split(value: dict[str, Any]) -> tuple[dict[str, Any], properties.Control]:
    return properties.split(event("Create", value)["ResourceProperties"])


def properties_with_name(
    raw: dict[str, Any], control: properties.Control, logical_id: str, stack_id: str
) -> dict[str, Any]:
    shape = service.input_shape("cleanroomsml", SPEC.create)
    request = properties.decode_request(SPEC, raw, shape)
    return properties.with_name(SPEC, request, control, stack_id, logical_id, 63)


def mutating_calls(endpoint: Endpoint, since: int = 0) -> list[str]:
    return [c.operation for c in endpoint.calls[since:] if c.operation in MUTATING and c.status == 200]


# -- Names ------------------------------------------------------------------------------------------


def test_a_generated_name_is_the_prefix_and_a_digest_of_the_resolved_request(endpoint: Endpoint) -> None:
    done = deploy(create())
    name = done["Data"]["Name"]
    assert name == name_of(PROPS) and name.startswith(PREFIX + "-") and len(name) == len(PREFIX) + 11
    assert endpoint.job(done["PhysicalResourceId"])["name"] == name  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"tags": {"team": "growth"}}, True),  # tags change in place
        ({"WaitForCompletion": "false", "TimeoutSeconds": "600"}, True),  # control properties
        ({"ServiceTimeout": "900"}, True),  # CloudFormation's own property
        ({"description": "new"}, False),
        ({"includeSeedInOutput": False}, False),  # absent and the service's default are two requests
        # What a token (an in-stack bucket's name) resolves to: a new value, a new name.
        ({"seedAudience": {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://other-bucket/seed.jsonl"}}}, False),
        ({"seedAudience": {**PROPS["seedAudience"], "roleArn": ROLE_ARN.replace("seed-reader", "other")}}, False),
    ],
)
def test_the_name_changes_exactly_when_the_job_must_be_replaced(change: dict[str, Any], same: bool) -> None:
    assert (name_of({**PROPS, **change}) == name_of(PROPS)) is same


def test_the_name_differs_per_resource_and_per_stack() -> None:
    assert name_of(PROPS, logical_id="Other1234") != name_of(PROPS)
    assert name_of(PROPS, stack_id=STACK_ID.replace("11111111", "22222222")) != name_of(PROPS)


def test_a_long_prefix_is_cut_from_the_start_to_fit_63_characters() -> None:
    long = "-".join(f"AVeryLongConstructIdNumber{i}" for i in range(8)) + "-Lookalike"
    name = name_of(props(NamePrefix=long))
    assert len(name) == 63 and name.split("-")[-2] == "Lookalike"


def test_an_explicit_name_is_used_as_given(endpoint: Endpoint) -> None:
    done = deploy(create(props(NamePrefix=None, name="spring-lookalike")))
    assert done["Data"]["Name"] == "spring-lookalike"


# -- Create ---------------------------------------------------------------------------------------


def test_create_starts_the_job_with_its_request_tag_and_completes_when_active(endpoint: Endpoint) -> None:
    done = deploy(create())
    arn = done["PhysicalResourceId"]
    job = endpoint.job(arn)
    assert job is not None and job["status"] == "ACTIVE"
    digest = properties.request_digest(
        SPEC, properties_with_name(*properties_split(PROPS), LOGICAL_ID, STACK_ID), STACK_ID, LOGICAL_ID
    )
    assert job["tags"] == {"team": "ads", REQUEST_TAG: digest}
    assert done["Data"]["Status"] == "ACTIVE" and done["Data"]["AudienceGenerationJobArn"] == arn
    assert float(done["Data"]["RecallMetric"]) > 0 and done["Data"]["RelevanceMetrics"].startswith("[")
    start = next(c for c in endpoint.calls if c.operation == "StartAudienceGenerationJob")
    assert "NamePrefix" not in start.params and start.params["name"] == done["Data"]["Name"]


def test_a_redelivered_create_adopts_the_job_the_first_delivery_started(endpoint: Endpoint) -> None:
    first = deploy(create())
    second = deploy(create())
    assert second["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert len(endpoint.jobs()) == 1


def test_a_job_of_the_same_name_from_another_request_is_never_adopted(endpoint: Endpoint) -> None:
    explicit = props(NamePrefix=None, name="shared-name")
    deploy(create(explicit))
    other_stack = STACK_ID.replace("11111111", "22222222")
    with pytest.raises(engine.ResourceError, match="not created from this resource's properties"):
        entrypoints.on_event(create(explicit, StackId=other_stack))
    assert len(endpoint.jobs()) == 1


@pytest.mark.parametrize("echo", ["full", "sparse"])
def test_sql_parameters_the_service_does_not_echo_still_decide_adoption(echo: str) -> None:
    with Endpoint(reads_until_active=1, echo=echo) as endpoint, pytest.MonkeyPatch.context() as patch:
        for key, value in endpoint.environment().items():
            patch.setenv(key, value)
        patch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "1")
        service.reset_clients()
        sql = props(NamePrefix=None, name="sql-seeded", seedAudience=SQL_SEED)
        first = deploy(create(sql))
        assert deploy(create(sql))["PhysicalResourceId"] == first["PhysicalResourceId"]  # same request: adopted
        other_parameters = copy.deepcopy(sql)
        other_parameters["seedAudience"]["sqlParameters"]["parameters"] = {"c": "autumn"}
        with pytest.raises(engine.ResourceError, match="not created from this resource's properties"):
            entrypoints.on_event(create(other_parameters))
        if echo == "sparse":  # the tags came from ListTagsForResource, the description left them out
            assert endpoint.count("ListTagsForResource") >= 1
        service.reset_clients()


def test_quota_of_jobs_in_progress_waits_for_a_slot(endpoint: Endpoint) -> None:
    endpoint.quota = 0
    merged = started(create())
    name = name_of(PROPS)
    assert merged["PhysicalResourceId"] == engine.PENDING_PREFIX + name and not endpoint.jobs()
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    endpoint.quota = 10
    done = poll(merged)
    assert done["PhysicalResourceId"].startswith("arn:") and done["Data"]["Name"] == name


def test_another_quota_fails_at_once_with_the_service_message(endpoint: Endpoint) -> None:
    endpoint.exceed_quota("StartAudienceGenerationJob", "Audience generation jobs per configured model", 1)
    with pytest.raises(engine.ResourceError, match="Audience generation jobs per configured model"):
        entrypoints.on_event(create())
    assert not endpoint.jobs()


@pytest.mark.parametrize("fault", ["throttle", "server_error"])
def test_a_transient_error_on_start_defers_the_start_to_is_complete(endpoint: Endpoint, fault: str) -> None:
    getattr(endpoint, fault)("StartAudienceGenerationJob", 1)
    merged = started(create())
    assert merged["PhysicalResourceId"].startswith(engine.PENDING_PREFIX)
    done = poll(merged)
    assert done["Data"]["Status"] == "ACTIVE" and len(endpoint.jobs()) == 1


def test_a_start_whose_answer_was_lost_is_found_and_adopted_not_started_twice(endpoint: Endpoint) -> None:
    endpoint.lose_response("StartAudienceGenerationJob", 1)  # the job exists, the handler heard a 500
    done = deploy(create())
    assert len(endpoint.jobs()) == 1 and done["PhysicalResourceId"] == endpoint.jobs()[0]["arn"]


def test_a_transient_error_while_polling_keeps_polling(endpoint: Endpoint) -> None:
    merged = started(create())
    endpoint.throttle("GetAudienceGenerationJob", 2)
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    assert poll(merged)["Data"]["Status"] == "ACTIVE"


def test_a_transient_error_that_outlasts_the_timeout_fails_with_what_the_service_said(endpoint: Endpoint) -> None:
    merged = started(create(props(TimeoutSeconds="60")))
    merged[engine.STARTED_AT] -= 61
    endpoint.throttle("GetAudienceGenerationJob", 1)
    with pytest.raises(engine.ResourceError, match="timed out .* ThrottlingException"):
        entrypoints.is_complete(merged)


def test_create_failed_reports_the_service_message(endpoint: Endpoint) -> None:
    endpoint.fail_job(name_of(PROPS), "seed data not found", "400")
    with pytest.raises(engine.ResourceError, match=r"CREATE_FAILED \(400\): seed data not found"):
        deploy(create())


def test_a_name_held_by_a_failed_job_is_never_adopted(endpoint: Endpoint) -> None:
    name = name_of(PROPS)
    endpoint.add_job(name, {"configuredAudienceModelArn": MODEL_ARN}, status="CREATE_FAILED")
    with pytest.raises(engine.ResourceError, match="CREATE_FAILED .* delete it or give this resource another name"):
        entrypoints.on_event(create())


def test_a_name_held_by_a_job_being_deleted_is_waited_for(endpoint: Endpoint) -> None:
    name = name_of(PROPS)
    old = endpoint.add_job(name, {"configuredAudienceModelArn": MODEL_ARN}, status="DELETE_PENDING")
    merged = started(create())
    assert merged["PhysicalResourceId"] == engine.PENDING_PREFIX + name
    endpoint.remove_job(old)  # its deletion finishes
    assert poll(merged)["Data"]["Status"] == "ACTIVE"


def test_a_pending_job_never_starts_after_its_deadline(endpoint: Endpoint) -> None:
    endpoint.quota = 0
    merged = started(create(props(TimeoutSeconds="60")))
    merged[engine.STARTED_AT] -= 61
    endpoint.quota = 10  # a slot frees up, too late
    with pytest.raises(engine.ResourceError, match="timed out .* was never created"):
        entrypoints.is_complete(merged)
    assert not endpoint.jobs()


def test_without_waiting_the_first_status_completes(endpoint: Endpoint) -> None:
    endpoint.reads_until_active = 5
    done = deploy(create(props(WaitForCompletion="false")))
    assert done["Data"]["Status"] == "CREATE_PENDING"


def test_the_cloudformation_service_timeout_property_is_not_an_api_member(endpoint: Endpoint) -> None:
    deploy(create(props(ServiceTimeout="900")))
    start = next(c for c in endpoint.calls if c.operation == "StartAudienceGenerationJob")
    assert "ServiceTimeout" not in start.params


# -- Update ---------------------------------------------------------------------------------------


def test_a_tags_only_update_retags_in_place_and_keeps_the_request_tag(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    done = deploy(update(props(tags={"team": "growth", "env": "prod"}), PROPS, arn))
    assert done["PhysicalResourceId"] == arn
    tags = endpoint.job(arn)["tags"]  # type: ignore[index]
    assert tags["team"] == "growth" and tags["env"] == "prod" and REQUEST_TAG in tags


def test_a_control_only_update_makes_no_mutating_call(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    before = len(endpoint.calls)
    done = deploy(update(props(WaitForCompletion="false", TimeoutSeconds="600"), PROPS, arn))
    assert done["PhysicalResourceId"] == arn and mutating_calls(endpoint, before) == []


def test_a_replacing_update_starts_a_new_job_under_a_new_name(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    done = deploy(update(props(description="autumn"), PROPS, arn))
    assert done["PhysicalResourceId"] != arn and done[engine.REPLACES] == arn
    assert done["Data"]["Name"] == name_of(props(description="autumn")) != name_of(PROPS)
    assert endpoint.job(arn)["status"] == "ACTIVE"  # type: ignore[index]  # CloudFormation deletes it in cleanup


def test_explicit_name_that_must_be_replaced_fails_and_its_rollback_changes_nothing(endpoint: Endpoint) -> None:
    explicit = props(NamePrefix=None, name="spring")
    arn = deploy(create(explicit))["PhysicalResourceId"]
    changed = {**explicit, "description": "autumn"}
    before = len(endpoint.calls)
    with pytest.raises(engine.ResourceError, match="must be replaced because description changed"):
        entrypoints.on_event(update(changed, explicit, arn))
    back = deploy(update(explicit, changed, arn))  # CloudFormation's Update back: old and new swapped
    assert back["PhysicalResourceId"] == arn and mutating_calls(endpoint, before) == []


def test_an_absent_member_set_to_its_default_is_undone_by_the_rollback(endpoint: Endpoint) -> None:
    explicit = props(NamePrefix=None, name="spring")
    arn = deploy(create(explicit))["PhysicalResourceId"]
    with_default = {**explicit, "includeSeedInOutput": False}  # the service echoes includeSeedInOutput: false
    with pytest.raises(engine.ResourceError, match="includeSeedInOutput"):
        entrypoints.on_event(update(with_default, explicit, arn))
    assert deploy(update(explicit, with_default, arn))["PhysicalResourceId"] == arn


@pytest.mark.parametrize("change", [{"tags": {"team": "growth"}}, {"WaitForCompletion": "false"}])
def test_a_job_deleted_outside_cloudformation_does_not_wedge_an_update_or_its_rollback(
    endpoint: Endpoint, change: dict[str, Any]
) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.remove_job(arn)  # the model owner's account may delete a job
    forward = deploy(update({**PROPS, **change}, PROPS, arn))
    assert forward["PhysicalResourceId"] == arn and forward["Data"]["Status"] == engine.NOT_FOUND
    back = deploy(update(PROPS, {**PROPS, **change}, arn))
    assert back["Data"]["Status"] == engine.NOT_FOUND and not endpoint.jobs()


def test_a_replacement_whose_new_job_fails_deletes_it_and_keeps_the_old_one(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    endpoint.fail_job(name_of(autumn), "seed data not found")
    with pytest.raises(engine.ResourceError, match="CREATE_FAILED"):
        deploy(update(autumn, PROPS, arn))
    statuses = {j["name"]: j["status"] for j in endpoint.jobs()}
    assert statuses[name_of(PROPS)] == "ACTIVE" and statuses[name_of(autumn)].startswith("DELETE")


def test_a_replacement_that_fails_for_any_reason_deletes_its_new_job(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    merged = started(update(autumn, PROPS, arn))
    endpoint.deny("GetAudienceGenerationJob")  # not our own error: AccessDenied while polling
    with pytest.raises(engine.ResourceError, match="AccessDenied"):
        entrypoints.is_complete(merged)
    endpoint.allow("GetAudienceGenerationJob")
    assert endpoint.job(name_of(autumn))["status"].startswith("DELETE")  # type: ignore[index]


def test_the_update_back_discards_what_a_crashed_replacement_left(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    started(update(autumn, PROPS, arn))  # the new job exists; is_complete never ran (the Lambda died, say)
    new = endpoint.job(name_of(autumn))
    assert new is not None
    back = deploy(update(PROPS, autumn, arn))  # CloudFormation rolls back to the old job
    assert back["PhysicalResourceId"] == arn
    assert endpoint.job(new["arn"])["status"].startswith("DELETE")  # type: ignore[index]


def test_an_update_back_sent_to_the_new_job_returns_to_the_old_one(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    autumn = props(description="autumn")
    new_arn = deploy(update(autumn, PROPS, arn))["PhysicalResourceId"]
    back = deploy(update(PROPS, autumn, new_arn))
    assert back["PhysicalResourceId"] == arn  # CloudFormation then deletes new_arn as a replaced resource
    assert len(endpoint.jobs()) == 2


def test_a_transient_error_in_an_update_leaves_the_decision_to_is_complete(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.throttle("GetAudienceGenerationJob", 1)
    merged = started(update(props(description="autumn"), PROPS, arn))
    assert merged[engine.AWAIT] == engine.AWAIT_UPDATE and merged["PhysicalResourceId"] == arn
    done = poll(merged)
    assert done["PhysicalResourceId"] != arn and done["Data"]["Status"] == "ACTIVE"
    assert len(endpoint.jobs()) == 2


# -- Delete ---------------------------------------------------------------------------------------


def test_delete_waits_until_the_job_is_gone(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    merged = started(delete(arn))
    assert entrypoints.is_complete(merged) == {"IsComplete": False}  # DELETE_PENDING
    assert poll(merged)["IsComplete"] and not endpoint.jobs()


def test_delete_of_a_job_already_gone_succeeds(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.remove_job(arn)
    assert deploy(delete(arn))["IsComplete"]


def test_delete_of_a_pending_id_finds_the_job_by_the_exact_name(endpoint: Endpoint) -> None:
    endpoint.add_job("Test-Lookalike-other", {"configuredAudienceModelArn": MODEL_ARN})  # a near name
    merged = started(create())
    pending = engine.PENDING_PREFIX + name_of(PROPS)
    assert merged["PhysicalResourceId"] != pending
    deploy(delete(pending))
    assert [j["name"] for j in endpoint.jobs()] == ["Test-Lookalike-other"]


def test_delete_of_a_pending_id_whose_job_never_started_calls_no_mutation(endpoint: Endpoint) -> None:
    deploy(delete(engine.PENDING_PREFIX + name_of(PROPS)))
    assert mutating_calls(endpoint) == []


@pytest.mark.parametrize("physical_id", [engine.CREATE_FAILED_MARKER, "req-1"])
def test_delete_of_a_create_that_never_started_a_job_calls_nothing(endpoint: Endpoint, physical_id: str) -> None:
    deploy(delete(physical_id))
    assert endpoint.calls == []


def test_a_delete_blocked_by_a_dependent_resource_is_retried_then_fails_naming_it(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.block_delete(name_of(PROPS), 100)
    merged = started(delete(arn))
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    merged[engine.STARTED_AT] -= engine.DELETE_CONFLICT_SECONDS
    with pytest.raises(engine.ResourceError, match="cannot be deleted: the service answered ConflictException"):
        entrypoints.is_complete(merged)
    assert endpoint.job(arn)["status"] == "ACTIVE"  # type: ignore[index]


def test_a_delete_conflict_that_clears_deletes_the_job(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.block_delete(name_of(PROPS), 2)
    deploy(delete(arn))
    assert not endpoint.jobs()


def test_delete_failed_fails_at_once_instead_of_polling(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    endpoint.fail_delete(name_of(PROPS), "the model owner's job still uses it")
    merged = started(delete(arn))
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    with pytest.raises(engine.ResourceError, match="DELETE_FAILED: the model owner's job still uses it"):
        entrypoints.is_complete(merged)


def test_delete_without_waiting_completes_once_accepted_but_never_before(endpoint: Endpoint) -> None:
    no_wait = props(WaitForCompletion="false")
    arn = deploy(create(no_wait))["PhysicalResourceId"]
    endpoint.block_delete(name_of(no_wait), 1)
    merged = started(delete(arn, no_wait))
    assert not endpoint.job(arn)["status"].startswith("DELETE")  # type: ignore[index]  # refused once
    assert entrypoints.is_complete(merged) == {"IsComplete": True}  # accepted now
    assert endpoint.job(arn)["status"] == "DELETE_PENDING"  # type: ignore[index]


def test_a_template_of_0_1_0_with_removal_policy_retain_still_deletes_when_asked(endpoint: Endpoint) -> None:
    arn = deploy(create())["PhysicalResourceId"]
    deploy(delete(arn, props(RemovalPolicy="retain")))  # CloudFormation's DeletionPolicy decides what is kept
    assert not endpoint.jobs()


def test_the_handler_gives_up_before_cloudformation_could() -> None:
    assert properties.MAX_TIMEOUT_SECONDS + 300 <= 3600
    assert properties.split({"TimeoutSeconds": "3600"})[1].timeout_seconds == properties.MAX_TIMEOUT_SECONDS


def test_the_deadline_counts_from_on_event(endpoint: Endpoint) -> None:
    before = time.time()
    merged = started(create())
    assert before <= merged[engine.STARTED_AT] <= time.time()


def test_a_cross_account_model_starts_the_job_in_the_models_region(endpoint: Endpoint) -> None:
    model = MODEL_ARN.replace(ACCOUNT, "444455556666")
    done = deploy(create(props(configuredAudienceModelArn=model, collaborationId=COLLABORATION_ID)))
    assert done["PhysicalResourceId"].startswith(f"arn:aws:cleanrooms-ml:us-east-1:{ACCOUNT}:")


def test_access_denied_fails_at_once_naming_the_missing_permission(endpoint: Endpoint) -> None:
    endpoint.deny("StartAudienceGenerationJob")
    with pytest.raises(engine.ResourceError, match="handler role needs cleanrooms-ml:StartAudienceGenerationJob"):
        entrypoints.on_event(create())
    assert not endpoint.jobs()


def test_an_error_message_stays_within_what_cloudformation_takes(endpoint: Endpoint) -> None:
    """Many long bad values: the message is cut to its start and end, so CloudFormation still shows it."""
    bad = props(tags={f"key{i:02d}-" + "k" * 100: "v" * 257 for i in range(40)})
    with pytest.raises(properties.PropertyError) as raised:
        entrypoints.on_event(create(bad))
    message = str(raised.value)
    assert len(message.encode()) <= entrypoints.MAX_MESSAGE_BYTES
    assert message.startswith("invalid audience generation job properties:") and "characters in all" in message
