"""The shared engine drives the audience model (lookalike model) type with no code of its own: the spec
``AUDIENCE_MODEL`` says it all. In-process against the local endpoint (real boto3 clients, real HTTP).

An audience model has no update call: every member but the tags needs a new model. Its quota (2 pending or in
progress per account) is waited out; a delete is refused while a configured audience model uses it. Training
takes hours (the user guide: up to 24 hours, or "several hours to 2 days"): here it takes a few reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import engine
import pytest
from specs import REQUEST_TAG

import entrypoints
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import ACCOUNT, REGION
from tests.test_engine_pipeline import MODEL, deploy, local_endpoint, model_props, mutations, typed, update

AUDIENCE_MODEL = "Custom::CleanRoomsMlAudienceModel"
DATASET_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:training-dataset/interactions"
KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PREFIX = "Test-Lookalike"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    with local_endpoint(monkeypatch) as started:
        yield started


def props(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "NamePrefix": PREFIX,
        "trainingDatasetArn": DATASET_ARN,
        "trainingDataStartTime": "2026-01-01T00:00:00Z",
        "trainingDataEndTime": "2026-06-30T00:00:00Z",
        "kmsKeyArn": KMS_KEY_ARN,
        "description": "purchases of the first half-year",
        "tags": {"team": "data"},
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def started(delivered: dict[str, Any]) -> dict[str, Any]:
    """The event is_complete receives after on_event."""
    return {**delivered, **entrypoints.on_event(delivered)}


def train(endpoint: Endpoint, arn: str) -> None:
    """Read the model until its training is over, as someone else watching it would."""
    client = endpoint.client()
    for _ in range(10):
        if client.get_audience_model(audienceModelArn=arn)["status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            return
    raise AssertionError(f"{arn} is still training")


# -- Create -----------------------------------------------------------------------------------------


def test_a_model_is_created_and_complete_once_trained(endpoint: Endpoint) -> None:
    endpoint.set_training_reads(f"{PREFIX}-*", 3)
    merged = started(typed(AUDIENCE_MODEL, "Create", props()))
    arn = merged["PhysicalResourceId"]
    assert arn.startswith(f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/")
    assert [entrypoints.is_complete(merged)["IsComplete"] for _ in range(3)] == [False, False, False]  # training
    done = entrypoints.is_complete(merged)
    assert done["IsComplete"] and done["Data"]["Status"] == "ACTIVE"
    assert done["Data"]["AudienceModelArn"] == arn and done["Data"]["TrainingDatasetArn"] == DATASET_ARN
    assert done["Data"]["Name"].startswith(f"{PREFIX}-")
    model = endpoint.audience_model(arn)
    assert model is not None and REQUEST_TAG in model["tags"] and model["tags"]["team"] == "data"
    (create,) = [c for c in endpoint.calls if c.operation == "CreateAudienceModel"]
    assert (
        create.params["trainingDataStartTime"] == "2026-01-01T00:00:00Z" and create.params["kmsKeyArn"] == KMS_KEY_ARN
    )


def test_without_waiting_the_create_is_complete_while_the_model_trains(endpoint: Endpoint) -> None:
    endpoint.set_training_reads(f"{PREFIX}-*", 50)
    done = deploy(typed(AUDIENCE_MODEL, "Create", props(WaitForCompletion="false")), polls=1)
    assert done["Data"]["Status"] in ("CREATE_PENDING", "CREATE_IN_PROGRESS")


def test_a_timestamp_that_is_not_iso_8601_fails_before_any_call(endpoint: Endpoint) -> None:
    with pytest.raises(ValueError, match=r"trainingDataStartTime .*must be an ISO 8601 date and time"):
        entrypoints.on_event(typed(AUDIENCE_MODEL, "Create", props(trainingDataStartTime="01/31/2026")))
    assert endpoint.calls == []


def test_a_redelivered_create_is_adopted_not_trained_twice(endpoint: Endpoint) -> None:
    first = deploy(typed(AUDIENCE_MODEL, "Create", props()))
    again = deploy(typed(AUDIENCE_MODEL, "Create", props()))
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"] and len(endpoint.audience_models()) == 1
    assert endpoint.count("CreateAudienceModel", error="ConflictException") == 1


def test_the_quota_of_models_in_training_is_waited_out(endpoint: Endpoint) -> None:
    endpoint.audience_model_quota = 1
    blocker = endpoint.add_audience_model("someone-elses", status="CREATE_IN_PROGRESS")
    merged = started(typed(AUDIENCE_MODEL, "Create", props()))
    assert merged["PhysicalResourceId"].startswith(engine.PENDING_PREFIX)
    assert entrypoints.is_complete(merged) == {"IsComplete": False}  # still full
    assert endpoint.count("CreateAudienceModel", error="ServiceQuotaExceededException") == 2
    train(endpoint, blocker)
    done = deploy(merged)
    assert done["PhysicalResourceId"].startswith(f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/")
    assert len(endpoint.audience_models()) == 2


def test_another_quota_fails_at_once_with_the_services_message(endpoint: Endpoint) -> None:
    endpoint.exceed_quota("CreateAudienceModel", "Audience models per account", 1)
    with pytest.raises(engine.ResourceError, match="Audience models per account"):
        entrypoints.on_event(typed(AUDIENCE_MODEL, "Create", props()))


def test_a_failed_training_fails_the_deploy_with_the_services_message(endpoint: Endpoint) -> None:
    endpoint.fail_training(f"{PREFIX}-*", "fewer than 100,000 users have 2 or more interactions")
    with pytest.raises(
        engine.ResourceError, match=r"CREATE_FAILED \(400\): fewer than 100,000 users have 2 or more interactions"
    ):
        deploy(typed(AUDIENCE_MODEL, "Create", props()))


# -- Update: replace on any change but the tags -----------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"trainingDataStartTime": "2026-02-01T00:00:00Z"},
        {"trainingDataEndTime": None},
        {"kmsKeyArn": None},
        {"description": "purchases, all of them"},
        {"trainingDatasetArn": DATASET_ARN.replace("interactions", "interactions-v2")},
    ],
)
def test_any_change_but_the_tags_trains_a_new_model_under_a_new_name(
    endpoint: Endpoint, change: dict[str, Any]
) -> None:
    old = props()
    first = deploy(typed(AUDIENCE_MODEL, "Create", old))
    new = props(**change)
    done = deploy(update(AUDIENCE_MODEL, new, old, first["PhysicalResourceId"]))
    assert done["PhysicalResourceId"] != first["PhysicalResourceId"]
    assert done[engine.REPLACES] == first["PhysicalResourceId"]
    assert done["Data"]["Name"] != first["Data"]["Name"]  # the old model still exists while the new one trains
    assert len(endpoint.audience_models()) == 2


def test_a_tags_change_is_made_in_place(endpoint: Endpoint) -> None:
    old = props()
    arn = deploy(typed(AUDIENCE_MODEL, "Create", old))["PhysicalResourceId"]
    before = len(endpoint.calls)
    done = deploy(update(AUDIENCE_MODEL, props(tags={"team": "ads", "cost": "ml"}), old, arn))
    assert done["PhysicalResourceId"] == arn and mutations(endpoint, before) == ["TagResource"]
    assert endpoint.audience_model(arn)["tags"]["team"] == "ads"  # type: ignore[index]


def test_a_change_that_needs_a_new_model_under_the_same_given_name_is_refused(endpoint: Endpoint) -> None:
    named = props(NamePrefix=None, name="lookalike-h1")
    arn = deploy(typed(AUDIENCE_MODEL, "Create", named))["PhysicalResourceId"]
    changed = {**named, "description": "another window"}
    before = len(endpoint.calls)
    with pytest.raises(engine.ResourceError, match="must be replaced because description changed, but its name"):
        entrypoints.on_event(update(AUDIENCE_MODEL, changed, named, arn))
    assert mutations(endpoint, before) == [] and len(endpoint.audience_models()) == 1


def test_the_update_back_of_a_rollback_changes_nothing(endpoint: Endpoint) -> None:
    named = props(NamePrefix=None, name="lookalike-h1")
    arn = deploy(typed(AUDIENCE_MODEL, "Create", named))["PhysicalResourceId"]
    changed = {**named, "description": "another window"}
    with pytest.raises(engine.ResourceError):
        entrypoints.on_event(update(AUDIENCE_MODEL, changed, named, arn))
    before = len(endpoint.calls)
    assert deploy(update(AUDIENCE_MODEL, named, changed, arn))["PhysicalResourceId"] == arn
    assert mutations(endpoint, before) == []


def test_the_update_back_after_a_replacement_keeps_the_old_model_and_discards_the_new(endpoint: Endpoint) -> None:
    old = props()
    arn = deploy(typed(AUDIENCE_MODEL, "Create", old))["PhysicalResourceId"]
    new = props(trainingDataStartTime="2026-03-01T00:00:00Z")
    replacement = deploy(update(AUDIENCE_MODEL, new, old, arn))["PhysicalResourceId"]
    before = len(endpoint.calls)  # another resource failed: CloudFormation sends the Update back
    assert deploy(update(AUDIENCE_MODEL, old, new, arn))["PhysicalResourceId"] == arn
    deletes = [c.params["audienceModelArn"] for c in endpoint.calls[before:] if c.operation == "DeleteAudienceModel"]
    assert mutations(endpoint, before) == ["DeleteAudienceModel"] and deletes == [replacement]
    assert endpoint.audience_model(arn)["status"] == "ACTIVE"  # type: ignore[index]


# -- Delete ---------------------------------------------------------------------------------------


def test_a_model_is_deleted_and_the_delete_waits_until_it_is_gone(endpoint: Endpoint) -> None:
    arn = deploy(typed(AUDIENCE_MODEL, "Create", props()))["PhysicalResourceId"]
    merged = started(typed(AUDIENCE_MODEL, "Delete", props(), PhysicalResourceId=arn))
    assert endpoint.audience_model(arn)["status"] == "DELETE_PENDING"  # type: ignore[index]
    assert entrypoints.is_complete(merged) == {"IsComplete": False}
    assert entrypoints.is_complete(merged) == {"IsComplete": True}
    assert endpoint.audience_model(arn) is None and endpoint.count("DeleteAudienceModel") == 1


def test_a_model_still_training_is_deleted(endpoint: Endpoint) -> None:
    """An assumption of the endpoint (no source says): a model in training can be deleted."""
    endpoint.set_training_reads(f"{PREFIX}-*", 50)
    arn = started(typed(AUDIENCE_MODEL, "Create", props()))["PhysicalResourceId"]
    deploy(typed(AUDIENCE_MODEL, "Delete", props(), PhysicalResourceId=arn))
    assert endpoint.audience_model(arn) is None


def test_a_model_a_configured_model_uses_is_not_deleted_and_the_message_says_why(endpoint: Endpoint) -> None:
    arn = deploy(typed(AUDIENCE_MODEL, "Create", props()))["PhysicalResourceId"]
    configured = endpoint.add_configured_model("uses-it", {"audienceModelArn": arn})
    merged = started(typed(AUDIENCE_MODEL, "Delete", props(), PhysicalResourceId=arn))
    assert entrypoints.is_complete(merged) == {"IsComplete": False}  # retried for a while: it may go first
    merged[engine.STARTED_AT] -= engine.DELETE_CONFLICT_SECONDS
    with pytest.raises(engine.ResourceError, match="a configured audience model that uses it") as raised:
        entrypoints.is_complete(merged)
    assert configured in str(raised.value)  # the service's message names it
    assert endpoint.audience_model(arn)["status"] == "ACTIVE"  # type: ignore[index]


def test_a_model_deleted_out_of_band_is_a_delete_that_succeeds_and_an_update_that_says_so(endpoint: Endpoint) -> None:
    old = props()
    arn = deploy(typed(AUDIENCE_MODEL, "Create", old))["PhysicalResourceId"]
    endpoint.remove_audience_model(arn)
    updated = deploy(update(AUDIENCE_MODEL, props(tags={"team": "ads"}), old, arn))
    assert updated["Data"]["Status"] == engine.NOT_FOUND
    deploy(typed(AUDIENCE_MODEL, "Delete", old, PhysicalResourceId=arn))
    assert endpoint.count("DeleteAudienceModel", error="ResourceNotFoundException") == 1


# -- With a configured audience model of the same stack ---------------------------------------------


def test_a_configured_model_on_a_model_in_training_is_refused_before_any_create(endpoint: Endpoint) -> None:
    """Whether the service accepts a model that is not ACTIVE is undocumented: the handler never asks it."""
    endpoint.set_training_reads(f"{PREFIX}-*", 50)
    audience_model = started(typed(AUDIENCE_MODEL, "Create", props()))["PhysicalResourceId"]
    with pytest.raises(engine.ResourceError) as raised:
        entrypoints.on_event(typed(MODEL, "Create", model_props(audienceModelArn=audience_model)))
    assert str(raised.value) == (
        f"the audience model {audience_model} is CREATE_PENDING: a configured audience model needs an ACTIVE one "
        "(training takes hours to days); deploy again once it is ACTIVE, or declare the AudienceModel with "
        "wait_for_completion=True"
    )
    assert endpoint.count("CreateConfiguredAudienceModel") == 0 and endpoint.configured_models() == []


def test_a_configured_model_on_a_trained_model_reads_it_then_is_created(endpoint: Endpoint) -> None:
    endpoint.set_training_reads(f"{PREFIX}-*", 50)
    audience_model = started(typed(AUDIENCE_MODEL, "Create", props()))["PhysicalResourceId"]
    endpoint.set_training_reads(f"{PREFIX}-*", 0)
    train(endpoint, audience_model)
    before = len(endpoint.calls)
    done = deploy(typed(MODEL, "Create", model_props(audienceModelArn=audience_model)))
    operations = [c.operation for c in endpoint.calls[before:]]
    assert operations[:2] == ["GetAudienceModel", "CreateConfiguredAudienceModel"]
    assert endpoint.configured_model(done["PhysicalResourceId"])["audienceModelArn"] == audience_model  # type: ignore[index]


def test_a_configured_model_on_a_missing_model_is_refused_naming_it(endpoint: Endpoint) -> None:
    missing = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/gone"
    with pytest.raises(engine.ResourceError, match=f"the audience model {missing} \\(audienceModelArn\\) does not"):
        entrypoints.on_event(typed(MODEL, "Create", model_props(audienceModelArn=missing)))
    assert endpoint.count("CreateConfiguredAudienceModel") == 0


def test_reading_the_model_throttled_leaves_the_create_pending_until_a_later_poll(endpoint: Endpoint) -> None:
    audience_model = endpoint.add_audience_model("trained")
    endpoint.throttle("GetAudienceModel", 1)
    merged = started(typed(MODEL, "Create", model_props(audienceModelArn=audience_model)))
    assert merged["PhysicalResourceId"].startswith(engine.PENDING_PREFIX)
    assert endpoint.count("CreateConfiguredAudienceModel") == 0
    done = deploy(merged)
    assert endpoint.configured_model(done["PhysicalResourceId"])["audienceModelArn"] == audience_model  # type: ignore[index]


def test_an_update_to_a_model_in_training_is_refused_and_one_to_a_trained_model_is_made(endpoint: Endpoint) -> None:
    first = endpoint.add_audience_model("first")
    training = endpoint.add_audience_model("second", status="CREATE_IN_PROGRESS")
    endpoint.set_training_reads("second", 50)
    old = model_props(audienceModelArn=first)
    arn = deploy(typed(MODEL, "Create", old))["PhysicalResourceId"]
    new = model_props(audienceModelArn=training)
    with pytest.raises(engine.ResourceError, match=f"the audience model {training} is CREATE_IN_PROGRESS: a conf"):
        deploy(update(MODEL, new, old, arn))
    assert endpoint.count("UpdateConfiguredAudienceModel") == 0
    endpoint.set_training_reads("second", 0)
    train(endpoint, training)
    deploy(update(MODEL, new, old, arn))
    assert endpoint.configured_model(arn)["audienceModelArn"] == training  # type: ignore[index]
    before = len(endpoint.calls)  # a tags-only update does not read the model
    deploy(update(MODEL, model_props(audienceModelArn=training, tags={"a": "b"}), new, arn))
    assert "GetAudienceModel" not in [c.operation for c in endpoint.calls[before:]]
