"""Audience models that train over (simulated) time, the training datasets the endpoint knows, and the rehearsal's
stand-in for AWS::CleanRoomsML::TrainingDataset (on paper, registered with the endpoint, replaced on any change).

A simulation: these pin the rules the endpoint and the rehearsal play, not AWS itself."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdk_cleanrooms_ml.rehearsal.driver import Rehearsal
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import ACCOUNT, REGION
from tests.test_rehearsal_wait import cdk_out

__all__ = ["cdk_out"]

DATASET = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:training-dataset/interactions"
SIX_HOURS = 6 * 3600


class Now:
    def __init__(self) -> None:
        self.value = 1_700_000_000.0

    def __call__(self) -> float:
        return self.value


def status(ml: Any, arn: str) -> dict[str, Any]:
    return dict(ml.get_audience_model(audienceModelArn=arn))


def test_training_goes_by_time_pending_then_in_progress_then_active() -> None:
    now = Now()
    with Endpoint(training_seconds=SIX_HOURS) as endpoint:
        endpoint.clock = now
        ml = endpoint.client()
        arn = ml.create_audience_model(name="m", trainingDatasetArn=DATASET)["audienceModelArn"]
        seen = []
        for elapsed in (0, 60, 0.05 * SIX_HOURS, SIX_HOURS - 1, SIX_HOURS):
            now.value = 1_700_000_000.0 + elapsed
            seen.append(status(ml, arn)["status"])
        # Reads do not move it: 10 reads at the same time see the same status.
        assert [status(ml, arn)["status"] for _ in range(10)] == ["ACTIVE"] * 10
    assert seen == ["CREATE_PENDING", "CREATE_PENDING", "CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "ACTIVE"]


def test_a_failing_training_ends_create_failed_with_status_details_at_its_time() -> None:
    now = Now()
    with Endpoint(training_seconds=SIX_HOURS) as endpoint:
        endpoint.clock = now
        endpoint.fail_training("bad-*", "not enough data", "400")
        ml = endpoint.client()
        arn = ml.create_audience_model(name="bad-1", trainingDatasetArn=DATASET)["audienceModelArn"]
        assert status(ml, arn)["status"] == "CREATE_PENDING"
        now.value += SIX_HOURS
        model = status(ml, arn)
    assert model["status"] == "CREATE_FAILED"
    assert model["statusDetails"] == {"statusCode": "400", "message": "not enough data"}


def test_the_quota_of_two_models_in_training_frees_as_time_passes() -> None:
    now = Now()
    with Endpoint(training_seconds=SIX_HOURS) as endpoint:
        endpoint.clock = now
        ml = endpoint.client()
        for name in ("a", "b"):
            ml.create_audience_model(name=name, trainingDatasetArn=DATASET)
        with pytest.raises(ClientError) as refused:
            ml.create_audience_model(name="c", trainingDatasetArn=DATASET)
        assert refused.value.response["Error"]["Code"] == "ServiceQuotaExceededException"
        now.value += SIX_HOURS  # both trained, without anyone reading them
        ml.create_audience_model(name="c", trainingDatasetArn=DATASET)


def test_a_known_training_dataset_must_be_active_and_a_removed_one_is_not_found() -> None:
    with Endpoint() as endpoint:
        ml = endpoint.client()
        endpoint.add_training_dataset(DATASET, status="INACTIVE")
        with pytest.raises(ClientError) as inactive:
            ml.create_audience_model(name="m", trainingDatasetArn=DATASET)
        assert inactive.value.response["Error"]["Code"] == "ValidationException"
        endpoint.add_training_dataset(DATASET)
        ml.create_audience_model(name="m", trainingDatasetArn=DATASET)
        endpoint.remove_training_dataset(DATASET)
        with pytest.raises(ClientError) as gone:
            ml.create_audience_model(name="n", trainingDatasetArn=DATASET)
        assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
        # An ARN the endpoint never knew is taken on trust (another account's, say).
        ml.create_audience_model(name="o", trainingDatasetArn=DATASET.replace("interactions", "elsewhere"))


def test_the_rehearsal_creates_replaces_and_deletes_a_training_dataset_on_paper(cdk_out: Path) -> None:
    dataset: dict[str, Any] = {
        "Type": "AWS::CleanRoomsML::TrainingDataset",
        "Properties": {"Name": "interactions", "RoleArn": "arn:aws:iam::111122223333:role/r", "TrainingData": []},
    }
    # IAM off: the test's own client calls the endpoint, not the stack's handler.
    with Endpoint() as endpoint, Rehearsal(cdk_out, "Early", endpoint=endpoint, enforce_iam=False) as stack:
        assert stack.create().status == "CREATE_COMPLETE"
        template = copy.deepcopy(stack.template)
        template["Resources"]["Dataset"] = dataset
        template["Outputs"] = {"Arn": {"Value": {"Fn::GetAtt": ["Dataset", "TrainingDatasetArn"]}}}
        assert stack.update(template).status == "UPDATE_COMPLETE"
        first = stack.deployed["Dataset"].physical_id
        assert first.startswith(f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:training-dataset/")
        assert stack.deployed["Dataset"].attributes["TrainingDatasetArn"] == first
        ml = endpoint.client()
        ml.create_audience_model(name="m1", trainingDatasetArn=first)
        # Any property change replaces it: a new ARN, and the old one is gone once the update cleaned up.
        template = copy.deepcopy(template)
        template["Resources"]["Dataset"]["Properties"]["Description"] = "changed"
        assert stack.update(template).status == "UPDATE_COMPLETE"
        second = stack.deployed["Dataset"].physical_id
        assert second != first
        with pytest.raises(ClientError) as old:
            ml.create_audience_model(name="m2", trainingDatasetArn=first)
        assert old.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert stack.delete().status == "DELETE_COMPLETE"
        with pytest.raises(ClientError) as deleted:
            ml.create_audience_model(name="m3", trainingDatasetArn=second)
        assert deleted.value.response["Error"]["Code"] == "ResourceNotFoundException"
