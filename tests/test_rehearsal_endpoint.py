"""The local Clean Rooms ML endpoint: protocol, validation, state machine, quota, conflicts, tags, scripting."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from cdk_cleanrooms_ml.service_model import model_rules, service_model
from tests.helpers import COLLABORATION_ID, MODEL_ARN, ROLE_ARN

SEED = {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://seed-bucket/seed.jsonl"}}


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as started:
        yield started


@pytest.fixture
def client(endpoint: Endpoint) -> Any:
    return endpoint.client()


@pytest.fixture
def raw_client(endpoint: Endpoint) -> Any:
    """No client-side checks: what only the service refuses reaches the endpoint."""
    return endpoint.client(parameter_validation=False)


def start(client: Any, name: str, **extra: Any) -> str:
    request = {"name": name, "configuredAudienceModelArn": MODEL_ARN, "seedAudience": SEED, **extra}
    return str(client.start_audience_generation_job(**request)["audienceGenerationJobArn"])


def error_of(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_the_unmodified_boto3_client_reaches_it_through_the_environment(endpoint: Endpoint) -> None:
    with mock.patch.dict(os.environ, endpoint.environment()):
        cleanroomsml = boto3.client("cleanroomsml")
        arn = start(cleanroomsml, "via-env")
        assert cleanroomsml.get_audience_generation_job(audienceGenerationJobArn=arn)["name"] == "via-env"
    assert endpoint.calls[0].operation == "StartAudienceGenerationJob"
    assert endpoint.calls[0].params["seedAudience"] == SEED


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"name": "x" * 64}, "'name'"),
        (
            {"configuredAudienceModelArn": "arn:aws:cleanrooms-ml:us-east-1:111122223333:model/x"},
            "configuredAudienceModel",
        ),
        ({"collaborationId": "not-a-uuid-but-36-characters-long-xx"}, "'collaborationId'"),
        ({"description": "x" * 256}, "'description'"),
        ({"tags": {f"k{i}": "v" for i in range(201)}}, "'tags'"),
        ({"tags": {"aws:reserved": "v"}}, "aws:"),
        ({"seedAudience": {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "https://not-s3"}}}, "s3Uri"),
        (
            {
                "seedAudience": {
                    "roleArn": ROLE_ARN,
                    "sqlParameters": {"queryString": "select 1"},
                    "sqlComputeConfiguration": {"worker": {"type": "CR.16X", "number": 2}},
                }
            },
            "worker.type",
        ),
        ({"seedAudience": {"roleArn": ROLE_ARN}}, "exactly one place"),
        ({"name": None}, "'name'"),
        ({"includeSeedInOutput": "yes"}, "includeSeedInOutput"),
    ],
)
def test_invalid_start_requests_answer_validation_exception(raw_client: Any, extra: dict[str, Any], where: str) -> None:
    request = {"name": "ok", "configuredAudienceModelArn": MODEL_ARN, "seedAudience": SEED, **extra}
    code, status, message = error_of(raw_client.start_audience_generation_job, **request)
    assert (code, status) == ("ValidationException", 400)
    assert "validation error" in message and where in message


def test_worker_number_range_and_list_query_ranges_are_checked(raw_client: Any) -> None:
    client = raw_client
    seed = {**SEED, "dataSource": None}
    del seed["dataSource"]
    seed["sqlParameters"] = {"queryString": "select 1"}
    seed["sqlComputeConfiguration"] = {"worker": {"type": "CR.1X", "number": 1}}
    code, _, message = error_of(
        client.start_audience_generation_job, name="n", configuredAudienceModelArn=MODEL_ARN, seedAudience=seed
    )
    assert code == "ValidationException" and "between 2 and 1024" in message
    code, status, message = error_of(client.list_audience_generation_jobs, maxResults=101)
    assert (code, status) == ("ValidationException", 400) and "maxResults" in message


def test_error_answers_carry_the_model_status_header_and_message_body(endpoint: Endpoint) -> None:
    """Raw HTTP: status code from the error shape, x-amzn-ErrorType, and a {"message": ...} body."""
    request = urllib.request.Request(
        endpoint.url + "/audience-generation-job",
        data=json.dumps({"name": "", "configuredAudienceModelArn": MODEL_ARN, "seedAudience": SEED}).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20250101/us-east-1/cleanrooms-ml/aws4_request",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == service_model().shape_for("ValidationException").metadata["error"]["httpStatusCode"]
    assert raised.value.headers["x-amzn-ErrorType"] == "ValidationException"
    body = json.loads(raised.value.read())
    assert list(body) == ["message"] and "'name'" in body["message"]


def test_unsigned_requests_and_unknown_routes_are_refused(endpoint: Endpoint) -> None:
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(endpoint.url + "/audience-generation-job", timeout=5)
    assert unsigned.value.code == 403
    request = urllib.request.Request(
        endpoint.url + "/no-such-thing",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=A/2025/us-east-1/cleanrooms-ml/aws4_request"},
    )
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(request, timeout=5)
    assert unknown.value.code == 404


def test_routes_come_from_the_model_and_uri_labels_are_percent_decoded(endpoint: Endpoint) -> None:
    arn = "arn:aws:cleanrooms-ml:us-east-1:111122223333:audience-generation-job/a/b"
    encoded = urllib.parse.quote(arn, safe="")
    assert endpoint.route("GET", f"/audience-generation-job/{encoded}") == (
        "GetAudienceGenerationJob",
        {"audienceGenerationJobArn": arn},
    )
    assert endpoint.route("DELETE", f"/tags/{encoded}") == ("UntagResource", {"resourceArn": arn})
    assert endpoint.route("GET", "/audience-generation-job")[0] == "ListAudienceGenerationJobs"  # type: ignore[index]
    assert endpoint.route("PATCH", "/audience-generation-job") is None


def test_a_job_moves_through_its_statuses_and_active_jobs_have_valid_metrics(client: Any) -> None:
    arn = start(client, "life", description="d", collaborationId=COLLABORATION_ID)
    seen = [client.get_audience_generation_job(audienceGenerationJobArn=arn)["status"] for _ in range(3)]
    assert seen == ["CREATE_PENDING", "CREATE_IN_PROGRESS", "ACTIVE"]
    job = client.get_audience_generation_job(audienceGenerationJobArn=arn)
    job.pop("ResponseMetadata")
    assert 0 <= job["metrics"]["recallMetric"] <= 1 and job["metrics"]["relevanceMetrics"]
    rules = model_rules()
    output = service_model().operation_model("GetAudienceGenerationJob").output_shape
    wire = json.loads(json.dumps(job, default=str))
    assert [p for p in rules.check(wire, output) if "createTime" not in p.path and "updateTime" not in p.path] == []
    client.delete_audience_generation_job(audienceGenerationJobArn=arn)
    assert client.get_audience_generation_job(audienceGenerationJobArn=arn)["status"] == "DELETE_PENDING"
    code, status, _ = error_of(client.get_audience_generation_job, audienceGenerationJobArn=arn)
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, status, _ = error_of(client.delete_audience_generation_job, audienceGenerationJobArn=arn)
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_slow_deletion_shows_delete_in_progress() -> None:
    with Endpoint(reads_until_active=0, reads_until_deleted=2) as endpoint:
        client = endpoint.client()
        arn = start(client, "slow")
        assert client.get_audience_generation_job(audienceGenerationJobArn=arn)["status"] == "ACTIVE"
        client.delete_audience_generation_job(audienceGenerationJobArn=arn)
        statuses = [client.get_audience_generation_job(audienceGenerationJobArn=arn)["status"] for _ in range(2)]
        assert statuses == ["DELETE_PENDING", "DELETE_IN_PROGRESS"]
        assert endpoint.jobs()[0]["status"] == "DELETE_IN_PROGRESS"


def test_a_scripted_failure_ends_create_failed_with_status_details(endpoint: Endpoint, client: Any) -> None:
    endpoint.fail_job("doomed", "seed too small", status_code="INSUFFICIENT_DATA")
    arn = start(client, "doomed")
    for _ in range(2):
        client.get_audience_generation_job(audienceGenerationJobArn=arn)
    job = client.get_audience_generation_job(audienceGenerationJobArn=arn)
    assert job["status"] == "CREATE_FAILED"
    assert job["statusDetails"] == {"statusCode": "INSUFFICIENT_DATA", "message": "seed too small"}
    assert "metrics" not in job


def test_names_are_unique_per_account(client: Any) -> None:
    start(client, "twin")
    code, status, message = error_of(
        client.start_audience_generation_job, name="twin", configuredAudienceModelArn=MODEL_ARN, seedAudience=SEED
    )
    assert (code, status) == ("ConflictException", 409) and "twin" in message


def test_at_most_ten_jobs_pending_or_in_progress(endpoint: Endpoint, client: Any) -> None:
    arns = [start(client, f"q{i}") for i in range(10)]
    with pytest.raises(ClientError) as raised:
        start(client, "q10")
    error = raised.value.response
    assert error["Error"]["Code"] == "ServiceQuotaExceededException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 402
    assert error["quotaValue"] == 10
    for _ in range(3):  # one job reaches ACTIVE: a slot is free
        client.get_audience_generation_job(audienceGenerationJobArn=arns[0])
    start(client, "q10")
    assert endpoint.count("StartAudienceGenerationJob", error="ServiceQuotaExceededException") == 1


def test_tags_are_kept_per_arn(endpoint: Endpoint, client: Any) -> None:
    first, second = start(client, "t1", tags={"a": "1"}), start(client, "t2")
    client.tag_resource(resourceArn=first, tags={"b": "2"})
    client.untag_resource(resourceArn=first, tagKeys=["a"])
    assert client.list_tags_for_resource(resourceArn=first)["tags"] == {"b": "2"}
    assert client.list_tags_for_resource(resourceArn=second)["tags"] == {}
    assert client.get_audience_generation_job(audienceGenerationJobArn=first)["tags"] == {"b": "2"}
    code, status, _ = error_of(client.tag_resource, resourceArn=first, tags={f"k{i}": "v" for i in range(50)})
    assert (code, status) == ("ValidationException", 400)  # 51 tags in all
    missing = first[:-4] + "0000"
    code, status, _ = error_of(client.list_tags_for_resource, resourceArn=missing)
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_list_filters_and_paginates() -> None:
    with Endpoint(quota=100) as endpoint:
        _list_filters_and_paginates(endpoint.client())


def _list_filters_and_paginates(client: Any) -> None:
    other_model = MODEL_ARN.replace("/abc", "/other")
    for i in range(23):
        start(client, f"l{i}")
    start(client, "elsewhere", configuredAudienceModelArn=other_model)
    pages = list(client.get_paginator("list_audience_generation_jobs").paginate(configuredAudienceModelArn=MODEL_ARN))
    assert [len(p["audienceGenerationJobs"]) for p in pages] == [10, 10, 3]
    names = {j["name"] for p in pages for j in p["audienceGenerationJobs"]}
    assert names == {f"l{i}" for i in range(23)}
    page = client.list_audience_generation_jobs(maxResults=100)
    assert len(page["audienceGenerationJobs"]) == 24 and "nextToken" not in page


def test_scripted_faults_throttle_500_access_denied_and_delete_conflicts(endpoint: Endpoint, client: Any) -> None:
    endpoint.throttle("ListAudienceGenerationJobs", 2)
    assert error_of(client.list_audience_generation_jobs)[:2] == ("ThrottlingException", 429)
    assert error_of(client.list_audience_generation_jobs)[:2] == ("ThrottlingException", 429)
    client.list_audience_generation_jobs()
    endpoint.server_error("StartAudienceGenerationJob", 1)
    code, status, _ = error_of(
        client.start_audience_generation_job, name="s", configuredAudienceModelArn=MODEL_ARN, seedAudience=SEED
    )
    assert status == 500
    endpoint.deny("GetAudienceGenerationJob")
    arn = start(client, "s")
    code, status, message = error_of(client.get_audience_generation_job, audienceGenerationJobArn=arn)
    assert (code, status) == ("AccessDeniedException", 403) and "cleanrooms-ml:GetAudienceGenerationJob" in message
    endpoint.allow("GetAudienceGenerationJob")
    endpoint.block_delete("s", 2)
    for _ in range(2):
        assert error_of(client.delete_audience_generation_job, audienceGenerationJobArn=arn)[:2] == (
            "ConflictException",
            409,
        )
    client.delete_audience_generation_job(audienceGenerationJobArn=arn)
    endpoint.remove_job(arn)
    assert endpoint.jobs() == []
    assert endpoint.count("ListAudienceGenerationJobs") == 3
    assert endpoint.count(error="ThrottlingException") == 2
    with pytest.raises(ValueError):
        endpoint.throttle("NoSuchOperation", 1)


def test_validation_comes_after_authorization(endpoint: Endpoint, client: Any) -> None:
    endpoint.deny("StartAudienceGenerationJob")
    code, _, _ = error_of(
        client.start_audience_generation_job, name="x" * 64, configuredAudienceModelArn=MODEL_ARN, seedAudience=SEED
    )
    assert code == "AccessDeniedException"


def test_concurrent_requests_are_all_served(endpoint: Endpoint) -> None:
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            start(endpoint.client(), f"c{index}", description=str(index))
        except BaseException as error:  # collected: the assertion below shows it
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert endpoint.names() == {f"c{i}" for i in range(10)}
    assert endpoint.count("StartAudienceGenerationJob") == 10
