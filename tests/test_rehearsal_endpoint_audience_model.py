"""The local endpoint's audience models (lookalike models): statuses over reads, the quota of models in training,
deletes refused while a configured audience model uses one, and what configuring a model in training answers.

Every call goes through a real botocore client reading the shipped models. The endpoint is a simulation: these
tests pin the rules it plays, as docs/audience_model_research.md states them (and the assumptions it names),
not AWS itself.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest

from cdk_cleanrooms_ml.rehearsal import iam
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import ACCOUNT, REGION
from tests.test_rehearsal_endpoint_pipeline import create_model, endpoint, error_body, error_of, ml, wire_problems

__all__ = ["endpoint", "ml"]  # the fixtures, shared with the pipeline's endpoint tests

DATASET = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:training-dataset/interactions"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ARN_FORMAT = re.compile(
    rf"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
TRAINING = ("CREATE_PENDING", "CREATE_IN_PROGRESS")


def create(ml: Any, name: str = "lookalike", **extra: Any) -> str:
    return str(ml.create_audience_model(name=name, trainingDatasetArn=DATASET, **extra)["audienceModelArn"])


def statuses(ml: Any, arn: str, reads: int) -> list[str]:
    return [ml.get_audience_model(audienceModelArn=arn)["status"] for _ in range(reads)]


def trained(ml: Any, name: str = "lookalike", **extra: Any) -> str:
    """A model read until ACTIVE (the default endpoint needs 3 reads)."""
    arn = create(ml, name, **extra)
    assert statuses(ml, arn, 3)[-1] == "ACTIVE"
    return arn


# --------------------------------------------------------------------------------------------------
# Create, read, list


def test_a_model_trains_over_reads_and_echoes_what_it_was_created_with(ml: Any) -> None:
    arn = create(
        ml,
        trainingDataStartTime=datetime(2026, 1, 1, tzinfo=timezone.utc),
        trainingDataEndTime="2026-06-30T12:00:00Z",
        kmsKeyArn=KMS_KEY,
        description="purchases of the first half-year",
        tags={"team": "data"},
    )
    assert ARN_FORMAT.fullmatch(arn)
    assert statuses(ml, arn, 3) == ["CREATE_PENDING", "CREATE_IN_PROGRESS", "ACTIVE"]
    model = ml.get_audience_model(audienceModelArn=arn)
    assert model["trainingDataStartTime"] == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert model["trainingDataEndTime"] == datetime(2026, 6, 30, 12, tzinfo=timezone.utc)
    assert model["kmsKeyArn"] == KMS_KEY and model["trainingDatasetArn"] == DATASET
    assert model["description"] == "purchases of the first half-year" and model["tags"] == {"team": "data"}
    assert "statusDetails" not in model
    assert wire_problems(model, "cleanroomsml", "GetAudienceModel") == []


def test_a_listing_shows_the_status_without_moving_it(ml: Any) -> None:
    arn = create(ml, description="d")
    for _ in range(3):
        (summary,) = ml.list_audience_models()["audienceModels"]
    assert summary["status"] == "CREATE_PENDING" and summary["audienceModelArn"] == arn
    assert summary["trainingDatasetArn"] == DATASET and summary["description"] == "d"
    assert wire_problems({"audienceModels": [summary]}, "cleanroomsml", "ListAudienceModels") == []


def test_models_list_in_pages() -> None:
    with Endpoint(audience_model_quota=30) as endpoint:
        ml = endpoint.client()
        for index in range(23):
            create(ml, f"m{index}")
        pages = list(ml.get_paginator("list_audience_models").paginate())
        assert [len(p["audienceModels"]) for p in pages] == [10, 10, 3]
        assert {m["name"] for p in pages for m in p["audienceModels"]} == {f"m{i}" for i in range(23)}
        page = ml.list_audience_models(maxResults=5)
        assert len(page["audienceModels"]) == 5 and "nextToken" in page


def test_names_are_unique_per_account_also_while_one_is_being_deleted(ml: Any) -> None:
    arn = trained(ml, "twin")
    assert error_of(create, ml=ml, name="twin")[:2] == ("ConflictException", 409)
    ml.delete_audience_model(audienceModelArn=arn)
    assert error_of(create, ml=ml, name="twin")[:2] == ("ConflictException", 409)


def test_invalid_requests_answer_validation_exception(ml: Any) -> None:
    code, status, message = error_of(create, ml=ml, kmsKeyArn="alias/my-key" + "x" * 10)
    assert (code, status) == ("ValidationException", 400) and "kmsKeyArn" in message
    code, _, message = error_of(ml.create_audience_model, name="m", trainingDatasetArn=KMS_KEY)
    assert code == "ValidationException" and "trainingDatasetArn" in message


def test_an_unknown_model_is_not_found(ml: Any) -> None:
    unknown = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/nothing-here"
    for call in (ml.get_audience_model, ml.delete_audience_model):
        assert error_of(call, audienceModelArn=unknown)[:2] == ("ResourceNotFoundException", 404)


# --------------------------------------------------------------------------------------------------
# Training: scripted per name, the quota


def test_scripted_training_time_and_failure_by_name_or_pattern(endpoint: Endpoint, ml: Any) -> None:
    endpoint.set_training_reads("slow-*", 4)
    endpoint.fail_training("broken", "fewer than 100,000 users have 2 or more interactions", "DATA_TOO_SMALL")
    slow = create(ml, "slow-1")
    assert statuses(ml, slow, 5) == ["CREATE_PENDING", *["CREATE_IN_PROGRESS"] * 3, "ACTIVE"]
    broken = create(ml, "broken")
    statuses(ml, broken, 2)
    model = ml.get_audience_model(audienceModelArn=broken)
    assert model["status"] == "CREATE_FAILED"
    assert model["statusDetails"] == {
        "statusCode": "DATA_TOO_SMALL",
        "message": "fewer than 100,000 users have 2 or more interactions",
    }


def test_at_most_two_models_train_at_once_per_account(endpoint: Endpoint, ml: Any) -> None:
    first, second = create(ml, "first"), create(ml, "second")
    answer = error_body(create, ml=ml, name="third")
    assert answer["Error"]["Code"] == "ServiceQuotaExceededException"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 402
    assert (answer["quotaName"], answer["quotaValue"]) == ("Pending/in progress audience models per customer", 2)
    statuses(ml, first, 3)  # trained: a slot is free
    create(ml, "third")
    endpoint.fail_training("second", "no data")
    statuses(ml, second, 3)  # failed: another one
    create(ml, "fourth")
    assert error_of(create, ml=ml, name="fifth")[0] == "ServiceQuotaExceededException"
    endpoint.add_audience_model("put-in-place", status="CREATE_IN_PROGRESS")  # outside the quota, counted by it
    assert [m["status"] for m in endpoint.audience_models()].count("CREATE_IN_PROGRESS") == 1


# --------------------------------------------------------------------------------------------------
# Delete


def test_a_model_configured_models_use_cannot_be_deleted_until_they_are_gone(endpoint: Endpoint, ml: Any) -> None:
    arn = trained(ml)
    configured = create_model(ml, audienceModelArn=arn)
    code, status, message = error_of(ml.delete_audience_model, audienceModelArn=arn)
    assert (code, status) == ("ConflictException", 409)
    assert "another resource depends on this resource" in message and configured in message
    ml.delete_configured_audience_model(configuredAudienceModelArn=configured)
    ml.delete_audience_model(audienceModelArn=arn)
    assert statuses(ml, arn, 1) == ["DELETE_PENDING"]  # the default endpoint: gone after 1 read
    assert error_of(ml.get_audience_model, audienceModelArn=arn)[0] == "ResourceNotFoundException"
    assert endpoint.audience_model(arn) is None


def test_a_deleted_model_is_in_progress_for_as_many_reads_as_the_endpoint_says() -> None:
    with Endpoint(reads_until_deleted=3) as endpoint:
        ml = endpoint.client()
        arn = trained(ml)
        ml.delete_audience_model(audienceModelArn=arn)
        ml.delete_audience_model(audienceModelArn=arn)  # again: still on its way out, no error
        assert statuses(ml, arn, 3) == ["DELETE_PENDING", "DELETE_IN_PROGRESS", "DELETE_IN_PROGRESS"]
        assert error_of(ml.get_audience_model, audienceModelArn=arn)[0] == "ResourceNotFoundException"


def test_a_model_in_training_is_deleted_unless_the_endpoint_says_otherwise(ml: Any) -> None:
    arn = create(ml)
    ml.delete_audience_model(audienceModelArn=arn)
    assert ml.get_audience_model(audienceModelArn=arn)["status"] == "DELETE_PENDING"
    with Endpoint(delete_while_training="ConflictException") as refusing:
        other = refusing.client()
        arn = create(other)
        code, _, message = error_of(other.delete_audience_model, audienceModelArn=arn)
        assert code == "ConflictException" and "CREATE_PENDING" in message
        statuses(other, arn, 3)
        other.delete_audience_model(audienceModelArn=arn)


def test_block_delete_and_out_of_band_removal(endpoint: Endpoint, ml: Any) -> None:
    arn = trained(ml)
    endpoint.block_delete("lookalike", 1)
    assert error_of(ml.delete_audience_model, audienceModelArn=arn)[0] == "ConflictException"
    endpoint.remove_audience_model("lookalike")
    assert error_of(ml.delete_audience_model, audienceModelArn=arn)[0] == "ResourceNotFoundException"
    with pytest.raises(KeyError):
        endpoint.remove_audience_model("lookalike")


# --------------------------------------------------------------------------------------------------
# Configuring a model: only an ACTIVE one of this endpoint (an assumption); others are taken on trust


def test_configuring_a_model_that_is_not_active_answers_conflict(endpoint: Endpoint, ml: Any) -> None:
    training = create(ml, "training")
    code, status, message = error_of(create_model, ml=ml, audienceModelArn=training)
    assert (code, status) == ("ConflictException", 409) and "CREATE_PENDING" in message
    endpoint.fail_training("failed", "no data")
    failed = create(ml, "failed")
    statuses(ml, failed, 3)
    assert error_of(create_model, ml=ml, audienceModelArn=failed)[0] == "ConflictException"
    statuses(ml, training, 3)
    configured = create_model(ml, audienceModelArn=training)
    other = create(ml, "other")
    code, _, _ = error_of(
        ml.update_configured_audience_model, configuredAudienceModelArn=configured, audienceModelArn=other
    )
    assert code == "ConflictException"
    foreign = f"arn:aws:cleanrooms-ml:{REGION}:444455556666:audience-model/theirs"
    create_model(ml, "on-trust", audienceModelArn=foreign)  # not this endpoint's: taken on trust


@pytest.mark.parametrize("answer", ["ValidationException", "accept"])
def test_what_configuring_a_model_in_training_answers_is_a_setting(answer: str) -> None:
    with Endpoint(untrained_configuration=answer) as endpoint:
        ml = endpoint.client()
        training = create(ml)
        if answer == "accept":
            create_model(ml, audienceModelArn=training)
        else:
            assert error_of(create_model, ml=ml, audienceModelArn=training)[:2] == ("ValidationException", 400)


def test_settings_outside_their_values_are_refused() -> None:
    with pytest.raises(ValueError, match="untrained_configuration must be one of"):
        Endpoint(untrained_configuration="ThrottlingException")
    with pytest.raises(ValueError, match="delete_while_training must be one of"):
        Endpoint(delete_while_training="refuse")


# --------------------------------------------------------------------------------------------------
# Tags, echo, inventory, IAM


def test_tags_on_a_model_and_the_sparse_echo() -> None:
    with Endpoint(echo="sparse") as endpoint:
        ml = endpoint.client()
        arn = create(ml, description="d", tags={"team": "data"})
        ml.tag_resource(resourceArn=arn, tags={"cost": "ml"})
        ml.untag_resource(resourceArn=arn, tagKeys=["team"])
        assert ml.list_tags_for_resource(resourceArn=arn)["tags"] == {"cost": "ml"}
        model = ml.get_audience_model(audienceModelArn=arn)
        assert "tags" not in model and "description" not in model
        assert "description" not in ml.list_audience_models()["audienceModels"][0]


def test_models_put_in_place_are_in_the_inventory(endpoint: Endpoint) -> None:
    arn = endpoint.add_audience_model("someone-elses")
    assert endpoint.audience_model(arn) == endpoint.audience_model("someone-elses")
    (listed,) = endpoint.inventory()["audience_models"]
    assert listed["arn"] == arn and listed["status"] == "ACTIVE"
    assert listed["trainingDatasetArn"].endswith(":training-dataset/someone-elses-data")


def test_the_iam_requests_of_the_audience_model_operations() -> None:
    caller = iam.Caller("aws", REGION, ACCOUNT)
    model = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/m"

    def mapped(operation: str, **params: Any) -> list[tuple[str, str, dict[str, Any]]]:
        return [(r.action, r.resource, dict(r.context)) for r in iam.requests_for_call(operation, params, caller)]

    tags = {"aws:RequestTag/team": "data", "aws:TagKeys": ("team",)}
    assert mapped("CreateAudienceModel", name="m", trainingDatasetArn=DATASET, tags={"team": "data"}) == [
        ("cleanrooms-ml:CreateAudienceModel", DATASET, tags),
        ("cleanrooms-ml:TagResource", model.replace("/m", f"/{iam.NEW_RESOURCE_ID}"), tags),
    ]
    assert mapped("CreateAudienceModel", name="m", trainingDatasetArn=DATASET, kmsKeyArn=KMS_KEY) == [
        ("cleanrooms-ml:CreateAudienceModel", DATASET, {})
    ]
    for operation in ("GetAudienceModel", "DeleteAudienceModel"):
        assert mapped(operation, audienceModelArn=model) == [(f"cleanrooms-ml:{operation}", model, {})]
    assert mapped("ListAudienceModels") == [("cleanrooms-ml:ListAudienceModels", "*", {})]
    with pytest.raises(iam.PolicyError, match="no 'trainingDatasetArn'"):
        mapped("CreateAudienceModel", name="m")


def test_iam_is_enforced_on_the_audience_model_operations(endpoint: Endpoint, ml: Any) -> None:
    caller = iam.Caller("aws", REGION, ACCOUNT)
    endpoint.enforce_iam([{"Effect": "Allow", "Action": "cleanrooms-ml:ListAudienceModels", "Resource": "*"}], caller)
    ml.list_audience_models()
    code, _, message = error_of(create, ml=ml)
    assert code == "AccessDeniedException" and f"cleanrooms-ml:CreateAudienceModel on resource: {DATASET}" in message
