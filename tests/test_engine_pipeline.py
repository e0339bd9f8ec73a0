"""The shared engine drives every type of the lookalike flow: exports, configured audience models and their policies,
and model associations (a second service), in-process against the local endpoint (real boto3 clients, real HTTP).

The same rules as for jobs hold for each type: adoption of a redelivered create, quotas waited out, replacement
or in-place update as the spec says, a rollback's Update back that changes nothing it need not, deletes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import engine
import pytest
from specs import REQUEST_TAG, SELF_ARN

import entrypoints
import properties
import service
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import ACCOUNT, REGION, event

EXPORT = "Custom::CleanRoomsMlAudienceExportJob"
MODEL = "Custom::CleanRoomsMlConfiguredAudienceModel"
ASSOCIATION = "Custom::CleanRoomsMlConfiguredAudienceModelAssociation"
AUDIENCE_MODEL_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/interactions"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/segment-writer"
MEMBERSHIP = "5b7d0f2a-8c1e-4c3a-9e6f-1a2b3c4d5e6f"
PARTNER = "444455556666"


@contextmanager
def local_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    """An endpoint the handler's clients call (one try per call: a fault is seen at once)."""
    with Endpoint(reads_until_active=1, reads_until_deleted=1) as started:
        for key, value in started.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "1")
        service.reset_clients()
        yield started
        service.reset_clients()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    with local_endpoint(monkeypatch) as started:
        # The trained audience model the configured models are made from (the handler reads it first).
        started.add_audience_model("interactions", arn=AUDIENCE_MODEL_ARN)
        yield started


def typed(resource_type: str, request_type: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return event(request_type, properties, ResourceType=resource_type, LogicalResourceId="Thing1234", **extra)


def deploy(delivered: dict[str, Any], *, polls: int = 10) -> dict[str, Any]:
    merged = {**delivered, **entrypoints.on_event(delivered)}
    for _ in range(polls):
        answer = entrypoints.is_complete(merged)
        if answer["IsComplete"]:
            return {**merged, **answer}
    raise AssertionError(f"not complete after {polls} polls")


def update(resource_type: str, new: dict[str, Any], old: dict[str, Any], physical_id: str) -> dict[str, Any]:
    return typed(
        resource_type,
        "Update",
        new,
        PhysicalResourceId=physical_id,
        OldResourceProperties=event("Create", old)["ResourceProperties"],
    )


def mutations(endpoint: Endpoint, since: int = 0) -> list[str]:
    reads = ("Get", "List")
    return [c.operation for c in endpoint.calls[since:] if c.status < 300 and not c.operation.startswith(reads)]


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="cdk_cleanrooms_ml")
    return caplog


# -- Audience export jobs ---------------------------------------------------------------------------


@pytest.fixture
def job_arn(endpoint: Endpoint) -> str:
    return endpoint.add_job(
        "Test-Lookalike-abc",
        {"configuredAudienceModelArn": f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/x"},
    )


def export_props(job_arn: str, **changes: Any) -> dict[str, Any]:
    props = {
        "NamePrefix": "Test-Top10",
        "audienceGenerationJobArn": job_arn,
        "audienceSize": {"type": "PERCENTAGE", "value": 10},
    }
    props.update(changes)
    return {k: v for k, v in props.items() if v is not None}


def test_an_export_is_started_found_by_its_listing_and_named_by_its_job_and_name(
    endpoint: Endpoint, job_arn: str
) -> None:
    done = deploy(typed(EXPORT, "Create", export_props(job_arn)))
    name = done["Data"]["Name"]
    assert done["PhysicalResourceId"] == f"{job_arn}|{name}" and name.startswith("Test-Top10-")
    assert done["Data"]["Status"] == "ACTIVE" and done["Data"]["OutputLocation"].startswith("s3://")
    (export,) = endpoint.exports(job_arn)
    assert export["name"] == name and export["status"] == "ACTIVE"


def test_a_redelivered_export_is_adopted_not_started_twice(endpoint: Endpoint, job_arn: str) -> None:
    first = deploy(typed(EXPORT, "Create", export_props(job_arn)))
    again = deploy(typed(EXPORT, "Create", export_props(job_arn)))
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"] and len(endpoint.exports(job_arn)) == 1


def test_an_export_of_the_same_name_and_another_size_is_never_adopted(endpoint: Endpoint, job_arn: str) -> None:
    deploy(typed(EXPORT, "Create", export_props(job_arn, NamePrefix=None, name="fixed")))
    other = export_props(job_arn, NamePrefix=None, name="fixed", audienceSize={"type": "PERCENTAGE", "value": 20})
    with pytest.raises(engine.ResourceError, match="not created from this resource's properties"):
        entrypoints.on_event(typed(EXPORT, "Create", other))


def test_an_export_whose_name_holds_the_separator_is_found_and_kept_by_its_whole_name(
    endpoint: Endpoint, job_arn: str
) -> None:
    """The physical id is ``<job ARN>|<name>`` and a name may hold "|" (the model's pattern allows it): the id is
    split at its first "|" only."""
    piped = export_props(job_arn, NamePrefix=None, name="top|10")
    done = deploy(typed(EXPORT, "Create", piped))
    assert done["PhysicalResourceId"] == f"{job_arn}|top|10" and done["Data"]["Name"] == "top|10"
    again = deploy(update(EXPORT, {**piped, "TimeoutSeconds": "600"}, piped, done["PhysicalResourceId"]))
    assert again["PhysicalResourceId"] == done["PhysicalResourceId"] and again["Data"]["Status"] == "ACTIVE"


def test_exports_of_the_same_name_on_two_jobs_are_each_read_from_their_own_job(
    endpoint: Endpoint, job_arn: str
) -> None:
    other_job = endpoint.add_job(
        "Test-Lookalike-def",
        {"configuredAudienceModelArn": f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/x"},
    )
    first = deploy(typed(EXPORT, "Create", export_props(job_arn, NamePrefix=None, name="fixed")))
    second = deploy(typed(EXPORT, "Create", export_props(other_job, NamePrefix=None, name="fixed")))
    # Export names are unique per job only: each is found in its own job's listing.
    assert first["Data"]["AudienceGenerationJobArn"] == job_arn
    assert second["PhysicalResourceId"] == f"{other_job}|fixed"
    assert second["Data"]["AudienceGenerationJobArn"] == other_job


@pytest.mark.parametrize(
    "quota",
    ["Audience export jobs pending or in progress", "Pending/in progress audience export jobs per customer"],
)
def test_the_export_quota_in_progress_is_waited_out(endpoint: Endpoint, job_arn: str, quota: str) -> None:
    endpoint.exceed_quota("StartAudienceExportJob", quota, 1)  # the API reference's and the quotas page's words
    merged = {
        **typed(EXPORT, "Create", export_props(job_arn)),
        **entrypoints.on_event(typed(EXPORT, "Create", export_props(job_arn))),
    }
    assert merged["PhysicalResourceId"].startswith(engine.PENDING_PREFIX)
    for _ in range(5):
        answer = entrypoints.is_complete(merged)
        if answer["IsComplete"]:
            break
    assert answer["IsComplete"] and answer["PhysicalResourceId"].startswith(job_arn + "|")


def test_the_active_exports_quota_of_a_job_fails_at_once(endpoint: Endpoint, job_arn: str) -> None:
    endpoint.exceed_quota("StartAudienceExportJob", "Active audience export jobs per audience generation job", 1)
    with pytest.raises(engine.ResourceError, match="Active audience export jobs per audience generation job"):
        entrypoints.on_event(typed(EXPORT, "Create", export_props(job_arn)))


def test_a_failed_export_fails_the_deploy_with_the_services_message(endpoint: Endpoint, job_arn: str) -> None:
    endpoint.fail_export("Test-Top10-*", "the destination bucket refused the write")
    with pytest.raises(engine.ResourceError, match="CREATE_FAILED .*the destination bucket refused the write"):
        deploy(typed(EXPORT, "Create", export_props(job_arn)))


def test_a_redelivered_export_create_whose_export_failed_takes_it_and_reports_the_failure(
    endpoint: Endpoint, job_arn: str, logged: pytest.LogCaptureFixture
) -> None:
    endpoint.fail_export("Test-Top10-*", "the destination bucket refused the write")
    endpoint.set_export_reads("Test-Top10-*", 0)  # it fails at its first read
    first = entrypoints.on_event(typed(EXPORT, "Create", export_props(job_arn)))
    again = {**typed(EXPORT, "Create", export_props(job_arn))}
    again.update(entrypoints.on_event(again))  # redelivered: the name is held by this request's own failed export
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"] and len(endpoint.exports(job_arn)) == 1
    handle = first["PhysicalResourceId"]
    assert f"audience export job {handle}, created by an earlier attempt of this request, is CREATE_FAILED" in (
        logged.messages
    )
    with pytest.raises(engine.ResourceError, match="CREATE_FAILED .*the destination bucket refused the write"):
        entrypoints.is_complete(again)


def test_any_change_starts_a_new_export_and_the_old_one_stays(
    endpoint: Endpoint, job_arn: str, logged: pytest.LogCaptureFixture
) -> None:
    old = export_props(job_arn)
    physical = deploy(typed(EXPORT, "Create", old))["PhysicalResourceId"]
    new = export_props(job_arn, audienceSize={"type": "ABSOLUTE", "value": 50000})
    done = deploy(update(EXPORT, new, old, physical))
    assert done["PhysicalResourceId"] != physical and done[engine.REPLACES] == physical
    before = len(endpoint.calls)
    deploy(typed(EXPORT, "Delete", old, PhysicalResourceId=physical))  # CloudFormation's cleanup of the old one
    assert mutations(endpoint, before) == [] and len(endpoint.exports(job_arn)) == 2  # nothing deletes an export
    assert f"audience export job {physical} stays: the API has no call that deletes one" in logged.messages


def test_an_export_update_back_changes_nothing(endpoint: Endpoint, job_arn: str) -> None:
    explicit = export_props(job_arn, NamePrefix=None, name="fixed")
    physical = deploy(typed(EXPORT, "Create", explicit))["PhysicalResourceId"]
    changed = {**explicit, "description": "new"}
    with pytest.raises(engine.ResourceError, match="must be replaced because description changed"):
        entrypoints.on_event(update(EXPORT, changed, explicit, physical))
    before = len(endpoint.calls)
    assert deploy(update(EXPORT, explicit, changed, physical))["PhysicalResourceId"] == physical
    assert mutations(endpoint, before) == []


def test_an_export_is_compared_with_what_it_was_made_from_removed_members_included(
    endpoint: Endpoint, job_arn: str
) -> None:
    described = export_props(job_arn, NamePrefix=None, name="fixed", description="top ten percent")
    physical = deploy(typed(EXPORT, "Create", described))["PhysicalResourceId"]
    # Removing a member is a change: it needs a new export, which the fixed name cannot have.
    undescribed = {k: v for k, v in described.items() if k != "description"}
    with pytest.raises(engine.ResourceError, match="must be replaced because description changed"):
        entrypoints.on_event(update(EXPORT, undescribed, described, physical))
    # A size changed and the update back (the export still has the old size): the update back changes nothing.
    bigger = {**described, "audienceSize": {"type": "PERCENTAGE", "value": 20}}
    with pytest.raises(engine.ResourceError, match="must be replaced because audienceSize changed"):
        entrypoints.on_event(update(EXPORT, bigger, described, physical))
    before = len(endpoint.calls)
    assert deploy(update(EXPORT, described, bigger, physical))["PhysicalResourceId"] == physical
    assert mutations(endpoint, before) == []


# -- Configured audience models and their policies --------------------------------------------------


def policy(*accounts: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": account},
                    "Action": ["cleanrooms-ml:StartAudienceGenerationJob"],
                    "Resource": [SELF_ARN, f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/*"],
                }
                for account in accounts
            ],
        }
    )


def model_props(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "NamePrefix": "Test-Configured",
        "audienceModelArn": AUDIENCE_MODEL_ARN,
        "outputConfig": {"destination": {"s3Destination": {"s3Uri": "s3://segments/out/"}}, "roleArn": ROLE_ARN},
        "sharedAudienceMetrics": ["ALL"],
        "audienceSizeConfig": {"audienceSizeType": "PERCENTAGE", "audienceSizeBins": [5, 10, 20]},
        "tags": {"team": "data"},
        "configuredAudienceModelPolicy": policy(PARTNER),
    }
    props.update(changes)
    return {k: v for k, v in props.items() if v is not None}


def test_a_configured_model_is_created_with_its_request_tag_and_its_policy_naming_itself(endpoint: Endpoint) -> None:
    done = deploy(typed(MODEL, "Create", model_props()))
    arn = done["PhysicalResourceId"]
    model = endpoint.configured_model(arn)
    assert model is not None and done["Data"]["ConfiguredAudienceModelArn"] == arn
    assert REQUEST_TAG in model["tags"] and model["tags"]["team"] == "data"
    statement = json.loads(model["policy"])["Statement"][0]
    assert statement["Resource"][0] == arn and statement["Principal"] == {"AWS": PARTNER}
    put = next(c for c in endpoint.calls if c.operation == "PutConfiguredAudienceModelPolicy")
    assert put.params["policyExistenceCondition"] == "POLICY_MUST_NOT_EXIST"


def test_a_redelivered_configured_model_create_is_adopted(endpoint: Endpoint) -> None:
    first = deploy(typed(MODEL, "Create", model_props()))
    again = deploy(typed(MODEL, "Create", model_props()))
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"] and len(endpoint.configured_models()) == 1


def test_updatable_members_change_in_place_and_the_update_back_sets_them_back(
    endpoint: Endpoint, logged: pytest.LogCaptureFixture
) -> None:
    old = model_props()
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    new = model_props(description="for the autumn campaigns", minMatchingSeedSize=1000)
    before = len(endpoint.calls)
    assert deploy(update(MODEL, new, old, arn))["PhysicalResourceId"] == arn
    assert f"configured audience model {arn} updated in place: description, minMatchingSeedSize" in logged.messages
    (call,) = [c for c in endpoint.calls[before:] if c.operation == "UpdateConfiguredAudienceModel"]
    assert {k for k in call.params if k != "configuredAudienceModelArn"} == {"description", "minMatchingSeedSize"}
    assert endpoint.configured_model(arn)["minMatchingSeedSize"] == 1000  # type: ignore[index]
    before = len(endpoint.calls)
    assert deploy(update(MODEL, old, new, arn))["PhysicalResourceId"] == arn  # both unset: reset in place
    (call,) = [c for c in endpoint.calls[before:] if c.operation == "UpdateConfiguredAudienceModel"]
    assert call.params["description"] == "" and call.params["minMatchingSeedSize"] == 500  # the documented default
    assert endpoint.configured_model(arn)["minMatchingSeedSize"] == 500  # type: ignore[index]


def test_a_changed_policy_is_put_with_the_previous_hash_and_a_removed_one_is_deleted(endpoint: Endpoint) -> None:
    old = model_props()
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    hashed = endpoint.configured_model(arn)["policyHash"]  # type: ignore[index]
    wider = model_props(configuredAudienceModelPolicy=policy(PARTNER, "777788889999"))
    deploy(update(MODEL, wider, old, arn))
    put = [c for c in endpoint.calls if c.operation == "PutConfiguredAudienceModelPolicy"][-1]
    assert put.params["previousPolicyHash"] == hashed
    assert "777788889999" in endpoint.configured_model(arn)["policy"]  # type: ignore[index]
    deploy(update(MODEL, model_props(configuredAudienceModelPolicy=None), wider, arn))
    assert endpoint.configured_model(arn)["policy"] is None  # type: ignore[index]


POLICY_CALLS = (
    "PutConfiguredAudienceModelPolicy",
    "GetConfiguredAudienceModelPolicy",
    "DeleteConfiguredAudienceModelPolicy",
)


def policy_calls(endpoint: Endpoint, since: int = 0) -> list[str]:
    return [c.operation for c in endpoint.calls[since:] if c.operation in POLICY_CALLS]


def test_a_model_without_a_policy_never_touches_one(endpoint: Endpoint) -> None:
    old = model_props(configuredAudienceModelPolicy=None)
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    deploy(update(MODEL, model_props(configuredAudienceModelPolicy=None, description="autumn"), old, arn))
    assert policy_calls(endpoint) == [] and endpoint.configured_model(arn)["policy"] is None  # type: ignore[index]


def test_an_unchanged_policy_is_read_and_not_put_again(endpoint: Endpoint) -> None:
    old = model_props()
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    before = len(endpoint.calls)
    # The same document written another way (indented): the same policy, so nothing to put.
    reformatted = model_props(configuredAudienceModelPolicy=json.dumps(json.loads(policy(PARTNER)), indent=2))
    deploy(update(MODEL, {**reformatted, "description": "autumn"}, old, arn))
    assert policy_calls(endpoint, before) == ["GetConfiguredAudienceModelPolicy"]


def test_a_policy_already_deleted_outside_cloudformation_is_removed_without_error(
    endpoint: Endpoint, logged: pytest.LogCaptureFixture
) -> None:
    old = model_props()
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    assert f"configuredAudienceModelPolicy of {arn} set" in logged.messages
    endpoint.client().delete_configured_audience_model_policy(configuredAudienceModelArn=arn)
    before = len(endpoint.calls)
    done = deploy(update(MODEL, model_props(configuredAudienceModelPolicy=None), old, arn))
    assert done["PhysicalResourceId"] == arn
    (delete,) = [c for c in endpoint.calls[before:] if c.operation == "DeleteConfiguredAudienceModelPolicy"]
    assert delete.error == "ResourceNotFoundException"
    assert f"configuredAudienceModelPolicy of {arn} deleted" in logged.messages


def test_a_policy_delete_the_service_refuses_fails_the_update_and_keeps_the_policy(endpoint: Endpoint) -> None:
    old = model_props()
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    endpoint.deny("DeleteConfiguredAudienceModelPolicy")
    with pytest.raises(engine.ResourceError, match="AccessDeniedException"):
        deploy(update(MODEL, model_props(configuredAudienceModelPolicy=None), old, arn))
    assert endpoint.configured_model(arn)["policy"] is not None  # type: ignore[index]


@pytest.fixture
def retried(monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint) -> Endpoint:
    """The handler's clients retry once (as in Lambda, where they retry more): a put whose answer was lost is
    sent again, and its existence condition or previous hash no longer holds."""
    monkeypatch.setenv("CLEANROOMSML_MAX_ATTEMPTS", "2")
    service.reset_clients()
    return endpoint


def test_a_policy_put_that_conflicts_is_read_again_on_the_next_poll(
    retried: Endpoint, logged: pytest.LogCaptureFixture
) -> None:
    merged = typed(MODEL, "Create", model_props())
    merged.update(entrypoints.on_event(merged))
    arn = merged["PhysicalResourceId"]
    retried.lose_response("PutConfiguredAudienceModelPolicy", 1)  # it took effect; the retry meets the policy
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    assert retried.count("PutConfiguredAudienceModelPolicy", error="ConflictException") == 1
    assert f"configuredAudienceModelPolicy of {arn} changed meanwhile; reading it again" in logged.messages
    before = len(retried.calls)
    assert entrypoints.is_complete(merged)["IsComplete"] is True
    assert policy_calls(retried, before) == ["GetConfiguredAudienceModelPolicy"]  # already what was asked
    statement = json.loads(retried.configured_model(arn)["policy"])["Statement"][0]  # type: ignore[index]
    assert statement["Resource"][0] == arn


def test_a_policy_conflict_past_the_deadline_fails_naming_the_attachments(retried: Endpoint) -> None:
    merged = typed(MODEL, "Create", model_props())
    merged.update(entrypoints.on_event(merged))
    merged[engine.STARTED_AT] -= properties.MAX_TIMEOUT_SECONDS
    retried.lose_response("PutConfiguredAudienceModelPolicy", 1)
    with pytest.raises(engine.ResourceError, match="configured audience model's attachments changed meanwhile"):
        entrypoints.is_complete(merged)


def test_an_update_whose_policy_put_conflicts_past_the_deadline_fails_naming_the_attachments(
    retried: Endpoint,
) -> None:
    old = model_props()
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    merged = update(MODEL, model_props(configuredAudienceModelPolicy=policy(PARTNER, "777788889999")), old, arn)
    merged.update(entrypoints.on_event(merged))
    merged[engine.STARTED_AT] -= properties.MAX_TIMEOUT_SECONDS
    retried.lose_response("PutConfiguredAudienceModelPolicy", 1)  # the retry's previous hash is stale
    with pytest.raises(engine.ResourceError, match="configured audience model's attachments changed meanwhile"):
        entrypoints.is_complete(merged)
    assert "777788889999" in retried.configured_model(arn)["policy"]  # type: ignore[index]


def test_a_policy_is_checked_by_its_put_calls_rules_and_named_with_the_models_other_problems(
    endpoint: Endpoint,
) -> None:
    with pytest.raises(properties.PropertyError) as raised:
        entrypoints.on_event(typed(MODEL, "Create", model_props(configuredAudienceModelPolicy={"Version": "x"})))
    assert str(raised.value) == (
        "property configuredAudienceModelPolicy (configured_audience_model_policy): expected a string, got a dict"
    )
    with pytest.raises(properties.PropertyError) as raised:
        entrypoints.on_event(
            typed(MODEL, "Create", model_props(configuredAudienceModelPolicy="", minMatchingSeedSize=5))
        )
    assert str(raised.value) == (
        "invalid configured audience model properties:\n"
        "property minMatchingSeedSize (min_matching_seed_size) = 5: must be between 25 and 500000\n"
        "property configuredAudienceModelPolicy (configured_audience_model_policy) = '': "
        "must be between 1 and 20480 characters long"
    )
    assert endpoint.calls == []


def test_a_replacement_decided_by_is_complete_that_then_cannot_be_made_is_deleted(retried: Endpoint) -> None:
    """An Update whose decision on_event left to is_complete starts its new model on one poll; on the next the
    decision is made again and fails (its audience model was deleted meanwhile): the new model goes with it."""
    old = model_props()
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    retried.throttle("GetConfiguredAudienceModel", 2)  # on_event cannot read the model: is_complete decides
    merged = update(MODEL, model_props(audienceSizeConfig=None), old, arn)  # unset: only a new model can do that
    merged.update(entrypoints.on_event(merged))
    assert merged[engine.AWAIT] == engine.AWAIT_UPDATE
    retried.lose_response("PutConfiguredAudienceModelPolicy", 1)  # the new model's first poll does not complete
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    (new,) = [m["arn"] for m in retried.configured_models() if m["arn"] != arn]
    retried.remove_audience_model(AUDIENCE_MODEL_ARN)
    with pytest.raises(engine.ResourceError, match="does not exist"):
        entrypoints.is_complete(merged)
    assert retried.configured_model(new) is None and retried.configured_model(arn) is not None


def test_unsetting_an_updatable_member_or_changing_a_create_only_one_makes_a_new_model(endpoint: Endpoint) -> None:
    old = model_props()
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    unset = model_props(audienceSizeConfig=None)  # no value unsets it in place
    replaced = deploy(update(MODEL, unset, old, arn))
    assert replaced["PhysicalResourceId"] != arn and replaced[engine.REPLACES] == arn
    names = {m["name"] for m in endpoint.configured_models()}
    assert len(names) == 2  # the derived name changed with it: the old model still exists while the new is made
    tagged = model_props(childResourceTagOnCreatePolicy="FROM_PARENT_RESOURCE")
    again = deploy(update(MODEL, tagged, unset, replaced["PhysicalResourceId"]))
    assert again["PhysicalResourceId"] not in (arn, replaced["PhysicalResourceId"])


def test_the_update_back_of_a_replacement_that_added_a_member_changes_nothing(endpoint: Endpoint) -> None:
    """Adding audienceSizeConfig makes a new model (once set, no value unsets it: its presence is the model's
    identity). When that update is rolled back, the Update back (new = the first properties, old = the sized ones)
    reaches the first model, which never had a size config: nothing to replace, nothing to create."""
    bare = model_props(audienceSizeConfig=None)
    arn = deploy(typed(MODEL, "Create", bare))["PhysicalResourceId"]
    sized = model_props()
    replaced = deploy(update(MODEL, sized, bare, arn))
    assert replaced["PhysicalResourceId"] != arn
    since = len(endpoint.calls)
    back = deploy(update(MODEL, bare, sized, arn))
    assert back["PhysicalResourceId"] == arn
    assert [m for m in mutations(endpoint, since) if m.startswith("Create")] == []


def test_a_member_set_outside_the_stack_that_cannot_be_unset_stays_and_the_log_says_so(
    endpoint: Endpoint, logged: pytest.LogCaptureFixture
) -> None:
    """The same Update back, but the first model was given a size config outside CloudFormation meanwhile. No value
    unsets it in place, and a new model would need the name the first one holds: failing would fail the rollback
    (UPDATE_ROLLBACK_FAILED), so the update goes through, the model keeps it, and the log says why."""
    bare = model_props(audienceSizeConfig=None)
    arn = deploy(typed(MODEL, "Create", bare))["PhysicalResourceId"]
    sized = model_props()
    endpoint.client().update_configured_audience_model(
        configuredAudienceModelArn=arn, audienceSizeConfig=sized["audienceSizeConfig"]
    )
    since = len(endpoint.calls)
    back = deploy(update(MODEL, bare, sized, arn))
    assert back["PhysicalResourceId"] == arn
    assert [m for m in mutations(endpoint, since) if m.startswith(("Create", "Delete"))] == []
    assert (endpoint.configured_model(arn) or {}).get("audienceSizeConfig")
    assert (
        f"configured audience model {arn} holds audienceSizeConfig, set outside CloudFormation: no value unsets it "
        "in place, so it stays" in logged.text
    )


def test_a_configured_model_in_use_by_a_job_is_not_deleted_and_the_message_says_why(endpoint: Endpoint) -> None:
    arn = deploy(typed(MODEL, "Create", model_props()))["PhysicalResourceId"]
    endpoint.add_job("a-partner-job", {"configuredAudienceModelArn": arn})
    merged = {**typed(MODEL, "Delete", model_props(), PhysicalResourceId=arn)}
    merged.update(entrypoints.on_event(merged))
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    merged[engine.STARTED_AT] -= engine.DELETE_CONFLICT_SECONDS
    with pytest.raises(engine.ResourceError, match="audience generation job that uses it"):
        entrypoints.is_complete(merged)
    assert endpoint.configured_model(arn) is not None


def test_a_configured_model_is_deleted_with_its_policy(endpoint: Endpoint) -> None:
    arn = deploy(typed(MODEL, "Create", model_props()))["PhysicalResourceId"]
    deploy(typed(MODEL, "Delete", model_props(), PhysicalResourceId=arn))
    assert endpoint.configured_model(arn) is None


# -- Configured audience model associations (the cleanrooms service) --------------------------------


@pytest.fixture
def model_arn(endpoint: Endpoint) -> str:
    return endpoint.add_configured_model("shared-model", {"audienceModelArn": AUDIENCE_MODEL_ARN})


def association_props(model_arn: str, **changes: Any) -> dict[str, Any]:
    props = {
        "membershipIdentifier": MEMBERSHIP,
        "configuredAudienceModelArn": model_arn,
        "configuredAudienceModelAssociationName": "lookalike",
        "manageResourcePolicies": True,
        "tags": {"team": "data"},
    }
    props.update(changes)
    return props


def test_an_association_is_created_in_the_membership_and_tells_its_collaboration(
    endpoint: Endpoint, model_arn: str
) -> None:
    endpoint.add_membership(MEMBERSHIP, "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f")
    done = deploy(typed(ASSOCIATION, "Create", association_props(model_arn)))
    arn = done["PhysicalResourceId"]
    assert arn.startswith(
        f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{MEMBERSHIP}/configuredaudiencemodelassociation/"
    )
    assert done["Data"]["CollaborationId"] == "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f"
    assert REQUEST_TAG in endpoint.association(arn)["tags"]  # type: ignore[index]
    assert {c.service for c in endpoint.calls if c.operation.startswith("Create")} == {"cleanrooms"}


def test_an_association_is_renamed_in_place(
    endpoint: Endpoint, model_arn: str, logged: pytest.LogCaptureFixture
) -> None:
    old = association_props(model_arn)
    arn = deploy(typed(ASSOCIATION, "Create", old))["PhysicalResourceId"]
    assert f"configured audience model association {arn} is created" in logged.messages  # it has no status
    new = association_props(model_arn, configuredAudienceModelAssociationName="lookalike-2026")
    done = deploy(update(ASSOCIATION, new, old, arn))
    assert done["PhysicalResourceId"] == arn
    assert endpoint.association(arn)["name"] == "lookalike-2026"  # type: ignore[index]
    # The attributes are read again after the change: GetAtt Name gives the new name.
    assert done["Data"]["Name"] == "lookalike-2026" and done["Data"]["ConfiguredAudienceModelAssociationArn"] == arn


def test_a_redelivered_association_create_is_adopted(endpoint: Endpoint, model_arn: str) -> None:
    first = deploy(typed(ASSOCIATION, "Create", association_props(model_arn)))
    again = deploy(typed(ASSOCIATION, "Create", association_props(model_arn)))
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"] and len(endpoint.associations()) == 1


def test_an_association_is_deleted(endpoint: Endpoint, model_arn: str) -> None:
    arn = deploy(typed(ASSOCIATION, "Create", association_props(model_arn)))["PhysicalResourceId"]
    deploy(typed(ASSOCIATION, "Delete", association_props(model_arn), PhysicalResourceId=arn))
    assert endpoint.associations() == []


def test_the_association_of_another_membership_is_not_ours(endpoint: Endpoint, model_arn: str) -> None:
    membership = f"arn:aws:cleanrooms:{REGION}:999988887777:membership/{MEMBERSHIP}"
    foreign = f"{membership}/configuredaudiencemodelassociation/{MEMBERSHIP}"
    with pytest.raises(engine.ResourceError, match="refusing"):
        entrypoints.on_event(typed(ASSOCIATION, "Delete", association_props(model_arn), PhysicalResourceId=foreign))
