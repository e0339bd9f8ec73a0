"""The local endpoint beyond the generation job: audience export jobs, configured audience models and their
policies (cleanroomsml), configured audience model associations (cleanrooms), and routing by signing name.

Every call goes through a real botocore client (``endpoint.client(service=...)``) reading the shipped models.
The endpoint is a simulation: these tests pin the rules it plays, as the API reference and facts.md state
them, not AWS itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from cdk_cleanrooms_ml.rehearsal import iam
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from cdk_cleanrooms_ml.service_model import model_rules, service_model
from tests.helpers import ACCOUNT, COLLABORATION_ID, REGION, ROLE_ARN

AUDIENCE_MODEL = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/trained-1"
OUTPUT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/cleanrooms-ml-segment-writer"
DESTINATION = "s3://audiences-bucket/lookalike"
SIZES = {"audienceSizeType": "ABSOLUTE", "audienceSizeBins": [10_000, 50_000]}
SEED = {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://seed-bucket/seed.jsonl"}}
MEMBERSHIP = "11111111-2222-4333-8444-555555555555"
OTHER_MEMBERSHIP = "99999999-8888-4777-8666-555555555555"
OTHER_ACCOUNT = "444455556666"
POLICY = json.dumps({"Version": "2012-10-17", "Statement": []})
MODEL_ARN_FORMAT = re.compile(
    rf"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/[0-9a-f]{{8}}-[0-9a-f-]{{27}}"
)
ASSOCIATION_ARN_FORMAT = re.compile(
    rf"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{MEMBERSHIP}/configuredaudiencemodelassociation/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as started:
        yield started


@pytest.fixture
def ml(endpoint: Endpoint) -> Any:
    return endpoint.client()


@pytest.fixture
def rooms(endpoint: Endpoint) -> Any:
    return endpoint.client(service="cleanrooms")


def error_of(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def assert_not_found(call: Any, **kwargs: Any) -> None:
    assert error_of(call, **kwargs)[:2] == ("ResourceNotFoundException", 404)


def error_body(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return dict(raised.value.response)


def create_model(ml: Any, name: str = "model", **extra: Any) -> str:
    request = {
        "name": name,
        "audienceModelArn": AUDIENCE_MODEL,
        "outputConfig": {"destination": {"s3Destination": {"s3Uri": DESTINATION}}, "roleArn": OUTPUT_ROLE},
        "sharedAudienceMetrics": ["ALL"],
        "audienceSizeConfig": SIZES,
        **extra,
    }
    return str(ml.create_configured_audience_model(**request)["configuredAudienceModelArn"])


def active_job(ml: Any, name: str, model_arn: str, **extra: Any) -> str:
    """A generation job read until ACTIVE (the default endpoint needs 3 reads)."""
    arn = str(
        ml.start_audience_generation_job(name=name, configuredAudienceModelArn=model_arn, seedAudience=SEED, **extra)[
            "audienceGenerationJobArn"
        ]
    )
    for _ in range(3):
        status = ml.get_audience_generation_job(audienceGenerationJobArn=arn)["status"]
    assert status == "ACTIVE"
    return arn


def export(ml: Any, job_arn: str, name: str, value: int = 10_000, size_type: str = "ABSOLUTE") -> dict[str, Any]:
    answer = ml.start_audience_export_job(
        name=name, audienceGenerationJobArn=job_arn, audienceSize={"type": size_type, "value": value}
    )
    answer.pop("ResponseMetadata")
    return dict(answer)


def listed(ml: Any, job_arn: str | None = None) -> dict[str, dict[str, Any]]:
    """One ListAudienceExportJobs answer (it moves every export it shows one step), by export name."""
    request = {"audienceGenerationJobArn": job_arn} if job_arn else {}
    return {e["name"]: e for e in ml.list_audience_export_jobs(**request)["audienceExportJobs"]}


def wire_problems(answer: dict[str, Any], service: str, operation: str) -> list[Any]:
    """What in a parsed answer breaks the model's output shape (timestamps are not checked by the rules)."""
    answer = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    wire = json.loads(json.dumps(answer, default=str))
    return list(model_rules().check(wire, service_model(service).operation_model(operation).output_shape))


# --------------------------------------------------------------------------------------------------
# Configured audience models


def test_a_configured_model_is_created_active_and_read_back_with_the_service_defaults(ml: Any) -> None:
    arn = create_model(ml, description="for the spring campaign")
    assert MODEL_ARN_FORMAT.fullmatch(arn)
    model = ml.get_configured_audience_model(configuredAudienceModelArn=arn)
    assert model["status"] == "ACTIVE" and model["name"] == "model" and model["configuredAudienceModelArn"] == arn
    assert model["audienceSizeConfig"] == SIZES and model["outputConfig"]["roleArn"] == OUTPUT_ROLE
    assert model["minMatchingSeedSize"] == 500  # the API reference's default
    assert model["childResourceTagOnCreatePolicy"] == "NONE"
    assert model["description"] == "for the spring campaign" and model["tags"] == {}
    assert wire_problems(model, "cleanroomsml", "GetConfiguredAudienceModel") == []
    (summary,) = ml.list_configured_audience_models()["configuredAudienceModels"]
    assert summary["configuredAudienceModelArn"] == arn and summary["status"] == "ACTIVE"
    assert wire_problems({"configuredAudienceModels": [summary]}, "cleanroomsml", "ListConfiguredAudienceModels") == []


def test_configured_model_names_are_unique_per_account(ml: Any) -> None:
    create_model(ml, "twin")
    code, status, message = error_of(
        ml.create_configured_audience_model,
        name="twin",
        audienceModelArn=AUDIENCE_MODEL,
        outputConfig={"destination": {"s3Destination": {"s3Uri": DESTINATION}}, "roleArn": OUTPUT_ROLE},
        sharedAudienceMetrics=["NONE"],
    )
    assert (code, status) == ("ConflictException", 409) and "twin" in message


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"sharedAudienceMetrics": ["ALL", "NONE"]}, "sharedAudienceMetrics"),
        ({"sharedAudienceMetrics": ["SOME"]}, "sharedAudienceMetrics[0]"),
        ({"minMatchingSeedSize": 24}, "minMatchingSeedSize"),
        ({"audienceSizeConfig": {"audienceSizeType": "ABSOLUTE", "audienceSizeBins": list(range(1, 27))}}, "Bins"),
        ({"audienceSizeConfig": {"audienceSizeType": "ABSOLUTE", "audienceSizeBins": [0]}}, "audienceSizeBins[0]"),
        (
            {"audienceModelArn": f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/x"},
            "audienceModel",
        ),
        ({"outputConfig": {"destination": {"s3Destination": {"s3Uri": "https://x"}}, "roleArn": OUTPUT_ROLE}}, "s3Uri"),
        ({"outputConfig": {"destination": {"s3Destination": {"s3Uri": DESTINATION}}, "roleArn": "r"}}, "roleArn"),
        ({"tags": {"aws:team": "ads"}}, "aws:"),
        ({"tags": {f"k{i}": "v" for i in range(51)}}, "at most 50 tags"),
        ({"childResourceTagOnCreatePolicy": "ALWAYS"}, "childResourceTagOnCreatePolicy"),
    ],
)
def test_invalid_configured_models_answer_validation_exception(
    endpoint: Endpoint, extra: dict[str, Any], where: str
) -> None:
    raw = endpoint.client(parameter_validation=False)
    code, status, message = error_of(create_model, ml=raw, **extra)
    assert (code, status) == ("ValidationException", 400)
    assert where in message
    assert endpoint.configured_models() == []


def test_update_changes_only_the_members_given(ml: Any) -> None:
    arn = create_model(ml, description="before", minMatchingSeedSize=1000)
    before = ml.get_configured_audience_model(configuredAudienceModelArn=arn)
    answer = ml.update_configured_audience_model(configuredAudienceModelArn=arn, description="after")
    assert answer["configuredAudienceModelArn"] == arn
    after = ml.get_configured_audience_model(configuredAudienceModelArn=arn)
    assert after["description"] == "after" and after["updateTime"] >= before["updateTime"]
    for member in ("minMatchingSeedSize", "audienceSizeConfig", "outputConfig", "audienceModelArn", "name"):
        assert after[member] == before[member], member
    ml.update_configured_audience_model(
        configuredAudienceModelArn=arn, audienceSizeConfig={"audienceSizeType": "PERCENTAGE", "audienceSizeBins": [5]}
    )
    updated = ml.get_configured_audience_model(configuredAudienceModelArn=arn)
    assert updated["audienceSizeConfig"] == {"audienceSizeType": "PERCENTAGE", "audienceSizeBins": [5]}
    assert updated["description"] == "after"
    missing = arn[:-4] + "ffff"
    assert_not_found(ml.update_configured_audience_model, configuredAudienceModelArn=missing, description="x")


def test_a_model_in_use_by_a_job_cannot_be_deleted_until_the_job_is_being_deleted(endpoint: Endpoint, ml: Any) -> None:
    arn = create_model(ml)
    job = active_job(ml, "user", arn)
    code, status, message = error_of(ml.delete_configured_audience_model, configuredAudienceModelArn=arn)
    assert (code, status) == ("ConflictException", 409)
    assert "another resource depends on this resource" in message and job in message
    ml.delete_audience_generation_job(audienceGenerationJobArn=job)  # DELETE_PENDING: no longer a user
    ml.delete_configured_audience_model(configuredAudienceModelArn=arn)
    assert endpoint.configured_models() == []
    assert_not_found(ml.get_configured_audience_model, configuredAudienceModelArn=arn)
    assert_not_found(ml.delete_configured_audience_model, configuredAudienceModelArn=arn)


def test_block_delete_works_for_configured_models(endpoint: Endpoint, ml: Any) -> None:
    endpoint.block_delete("Stack-Model-*", 2)
    arn = create_model(ml, "Stack-Model-1")
    for _ in range(2):
        assert error_of(ml.delete_configured_audience_model, configuredAudienceModelArn=arn)[0] == "ConflictException"
    ml.delete_configured_audience_model(configuredAudienceModelArn=arn)
    assert endpoint.count("DeleteConfiguredAudienceModel", error="ConflictException") == 2


def test_configured_models_list_in_pages() -> None:
    with Endpoint() as endpoint:
        ml = endpoint.client()
        for index in range(23):
            create_model(ml, f"m{index}")
        pages = list(ml.get_paginator("list_configured_audience_models").paginate())
        assert [len(p["configuredAudienceModels"]) for p in pages] == [10, 10, 3]
        assert {m["name"] for p in pages for m in p["configuredAudienceModels"]} == {f"m{i}" for i in range(23)}
        page = ml.list_configured_audience_models(maxResults=5)
        assert len(page["configuredAudienceModels"]) == 5 and "nextToken" in page


def test_sparse_echo_leaves_out_the_models_optional_members() -> None:
    with Endpoint(echo="sparse") as endpoint:
        ml = endpoint.client()
        arn = create_model(ml, description="d", tags={"team": "ads"}, minMatchingSeedSize=100)
        model = ml.get_configured_audience_model(configuredAudienceModelArn=arn)
        for member in ("description", "tags", "minMatchingSeedSize", "childResourceTagOnCreatePolicy"):
            assert member not in model, member
        assert model["audienceSizeConfig"] == SIZES  # what the sizes are is not optional to know
        assert endpoint.configured_model(arn)["tags"] == {"team": "ads"}  # type: ignore[index]


def test_tags_on_configured_models_and_jobs_inherit_them_when_the_model_says_so(endpoint: Endpoint, ml: Any) -> None:
    arn = create_model(ml, tags={"team": "ads", "cost": "1"}, childResourceTagOnCreatePolicy="FROM_PARENT_RESOURCE")
    ml.tag_resource(resourceArn=arn, tags={"owner": "growth"})
    ml.untag_resource(resourceArn=arn, tagKeys=["cost"])
    assert ml.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "ads", "owner": "growth"}
    assert ml.get_configured_audience_model(configuredAudienceModelArn=arn)["tags"] == {
        "team": "ads",
        "owner": "growth",
    }
    code, _, message = error_of(ml.tag_resource, resourceArn=arn, tags={f"k{i}": "v" for i in range(49)})
    assert code == "ValidationException" and "at most 50 tags" in message
    job = ml.start_audience_generation_job(
        name="child", configuredAudienceModelArn=arn, seedAudience=SEED, tags={"team": "search"}
    )["audienceGenerationJobArn"]
    assert endpoint.job(job)["tags"] == {"team": "search", "owner": "growth"}  # type: ignore[index]
    plain = create_model(ml, "plain", tags={"team": "ads"})  # NONE: the request's tags only
    other = ml.start_audience_generation_job(name="other", configuredAudienceModelArn=plain, seedAudience=SEED)
    assert endpoint.job(other["audienceGenerationJobArn"])["tags"] == {}  # type: ignore[index]


# --------------------------------------------------------------------------------------------------
# The configured model's policy


def put_refused(ml: Any, arn: str, **precondition: str) -> tuple[str, int, str]:
    """A PutConfiguredAudienceModelPolicy of POLICY under ``precondition`` that the service refuses."""
    return error_of(
        ml.put_configured_audience_model_policy,
        configuredAudienceModelArn=arn,
        configuredAudienceModelPolicy=POLICY,
        **precondition,
    )


def test_the_policy_and_its_hash(endpoint: Endpoint, ml: Any) -> None:
    arn = create_model(ml)
    put = ml.put_configured_audience_model_policy(
        configuredAudienceModelArn=arn,
        configuredAudienceModelPolicy=POLICY,
        policyExistenceCondition="POLICY_MUST_NOT_EXIST",
    )
    first_hash = hashlib.sha256(POLICY.encode()).hexdigest()
    assert (put["configuredAudienceModelPolicy"], put["policyHash"]) == (POLICY, first_hash)
    got = ml.get_configured_audience_model_policy(configuredAudienceModelArn=arn)
    assert (got["configuredAudienceModelArn"], got["configuredAudienceModelPolicy"], got["policyHash"]) == (
        arn,
        POLICY,
        first_hash,
    )
    assert wire_problems(got, "cleanroomsml", "GetConfiguredAudienceModelPolicy") == []
    newer = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Principal": "*"}]})
    second = ml.put_configured_audience_model_policy(
        configuredAudienceModelArn=arn, configuredAudienceModelPolicy=newer, previousPolicyHash=first_hash
    )["policyHash"]
    assert second == hashlib.sha256(newer.encode()).hexdigest() != first_hash
    stale = put_refused(ml, arn, previousPolicyHash=first_hash)
    assert stale[:2] == ("ConflictException", 409) and "previousPolicyHash" in stale[2]
    assert put_refused(ml, arn, policyExistenceCondition="POLICY_MUST_NOT_EXIST")[:2] == ("ConflictException", 409)
    assert endpoint.configured_model(arn)["policyHash"] == second  # type: ignore[index]  # nothing changed
    ml.delete_configured_audience_model_policy(configuredAudienceModelArn=arn)
    assert_not_found(ml.get_configured_audience_model_policy, configuredAudienceModelArn=arn)
    assert_not_found(ml.delete_configured_audience_model_policy, configuredAudienceModelArn=arn)
    assert put_refused(ml, arn, policyExistenceCondition="POLICY_MUST_EXIST")[:2] == ("ConflictException", 409)
    assert put_refused(ml, arn, previousPolicyHash=second)[:2] == ("ConflictException", 409)  # no policy now
    assert endpoint.configured_model(arn)["policy"] is None  # type: ignore[index]


def test_a_policy_needs_json_a_valid_hash_and_an_existing_model(endpoint: Endpoint, ml: Any) -> None:
    arn = create_model(ml)
    for text in ("not json", "[1, 2]"):
        code, status, message = error_of(
            ml.put_configured_audience_model_policy, configuredAudienceModelArn=arn, configuredAudienceModelPolicy=text
        )
        assert (code, status) == ("ValidationException", 400) and "JSON object" in message
    code, _, message = put_refused(ml, arn, previousPolicyHash="Z" * 64)
    assert code == "ValidationException" and "previousPolicyHash" in message  # the model's Hash: 64-128 hex
    missing = arn[:-4] + "ffff"
    for call in (ml.get_configured_audience_model_policy, ml.delete_configured_audience_model_policy):
        assert_not_found(call, configuredAudienceModelArn=missing)
    assert error_of(
        ml.put_configured_audience_model_policy,
        configuredAudienceModelArn=missing,
        configuredAudienceModelPolicy=POLICY,
    )[:2] == ("ResourceNotFoundException", 404)


def test_deleting_the_model_deletes_its_policy_and_its_associations(endpoint: Endpoint, ml: Any, rooms: Any) -> None:
    arn = create_model(ml)
    ml.put_configured_audience_model_policy(configuredAudienceModelArn=arn, configuredAudienceModelPolicy=POLICY)
    associate(rooms, arn, "shared")
    kept = associate(rooms, create_model(ml, "kept"), "kept")
    ml.delete_configured_audience_model(configuredAudienceModelArn=arn)
    again = create_model(ml)  # the name is free; the new model has no policy
    assert endpoint.configured_model(again)["policy"] is None  # type: ignore[index]
    assert [a["arn"] for a in endpoint.associations()] == [kept["arn"]]


# --------------------------------------------------------------------------------------------------
# Audience export jobs


def test_an_export_moves_to_active_with_an_output_location_under_the_models_destination(
    endpoint: Endpoint, ml: Any
) -> None:
    model = create_model(ml)
    job = active_job(ml, "job", model)
    assert export(ml, job, "first") == {}  # StartAudienceExportJob answers nothing
    statuses = []
    for _ in range(3):
        (summary,) = ml.list_audience_export_jobs(audienceGenerationJobArn=job)["audienceExportJobs"]
        statuses.append(summary["status"])
        assert ("outputLocation" in summary) == (summary["status"] == "ACTIVE")
    assert statuses == ["CREATE_PENDING", "CREATE_IN_PROGRESS", "ACTIVE"]
    job_id = job.rsplit("/", 1)[1]
    assert summary["outputLocation"] == f"{DESTINATION}/{job_id}/first/"
    assert summary["audienceSize"] == {"type": "ABSOLUTE", "value": 10_000}
    assert wire_problems({"audienceExportJobs": [summary]}, "cleanroomsml", "ListAudienceExportJobs") == []
    assert endpoint.exports(job) == [
        {
            "audienceGenerationJobArn": job,
            "name": "first",
            "status": "ACTIVE",
            "audienceSize": {"type": "ABSOLUTE", "value": 10_000},
            "outputLocation": summary["outputLocation"],
        }
    ]


def test_the_jobs_metrics_use_the_models_sizes(ml: Any) -> None:
    model = create_model(ml, audienceSizeConfig={"audienceSizeType": "PERCENTAGE", "audienceSizeBins": [5, 10, 20]})
    job = ml.get_audience_generation_job(audienceGenerationJobArn=active_job(ml, "j", model))
    sizes = [m["audienceSize"] for m in job["metrics"]["relevanceMetrics"]]
    assert sizes == [{"type": "PERCENTAGE", "value": v} for v in (5, 10, 20)]


def test_an_export_needs_an_existing_active_job(endpoint: Endpoint, ml: Any) -> None:
    model = create_model(ml)
    missing = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/none"
    assert_not_found(export, ml=ml, job_arn=missing, name="e")
    pending = ml.start_audience_generation_job(name="pending", configuredAudienceModelArn=model, seedAudience=SEED)
    code, status, message = error_of(export, ml=ml, job_arn=pending["audienceGenerationJobArn"], name="e")
    assert (code, status) == ("ConflictException", 409) and "CREATE_PENDING" in message
    endpoint.fail_job("doomed", "no seed")
    failed = ml.start_audience_generation_job(name="doomed", configuredAudienceModelArn=model, seedAudience=SEED)
    for _ in range(3):
        ml.get_audience_generation_job(audienceGenerationJobArn=failed["audienceGenerationJobArn"])
    assert error_of(export, ml=ml, job_arn=failed["audienceGenerationJobArn"], name="e")[0] == "ConflictException"
    assert endpoint.exports() == []


def test_the_size_must_be_one_the_model_offered_when_the_job_started(ml: Any) -> None:
    model = create_model(ml)
    job = active_job(ml, "job", model)
    for value, size_type in ((20_000, "ABSOLUTE"), (10_000, "PERCENTAGE")):
        code, status, message = error_of(export, ml=ml, job_arn=job, name="e", value=value, size_type=size_type)
        assert (code, status) == ("ValidationException", 400) and "ABSOLUTE [10000, 50000]" in message
    export(ml, job, "ok", value=50_000)
    # An update reaches jobs started afterwards only (API reference): this job keeps the sizes it started with.
    ml.update_configured_audience_model(
        configuredAudienceModelArn=model, audienceSizeConfig={"audienceSizeType": "ABSOLUTE", "audienceSizeBins": [7]}
    )
    assert error_of(export, ml=ml, job_arn=job, name="seven", value=7)[0] == "ValidationException"
    later = active_job(ml, "later", model)
    export(ml, later, "seven", value=7)


def test_a_job_whose_model_is_not_on_the_endpoint_exports_any_size_to_a_made_up_place(
    endpoint: Endpoint, ml: Any
) -> None:
    foreign = f"arn:aws:cleanrooms-ml:{REGION}:{OTHER_ACCOUNT}:configured-audience-model/theirs"
    job = endpoint.add_job("theirs", {"configuredAudienceModelArn": foreign, "seedAudience": SEED})
    export(ml, job, "any", value=123_456)
    for _ in range(3):
        summary = listed(ml, job)["any"]
    assert summary["status"] == "ACTIVE" and summary["outputLocation"].startswith("s3://")
    assert summary["outputLocation"].endswith(f"/{job.rsplit('/', 1)[1]}/any/")


def test_export_names_are_unique_per_generation_job(ml: Any) -> None:
    model = create_model(ml)
    first, second = active_job(ml, "first", model), active_job(ml, "second", model)
    export(ml, first, "weekly")
    export(ml, second, "weekly")  # another job: fine
    code, status, message = error_of(export, ml=ml, job_arn=first, name="weekly")
    assert (code, status) == ("ConflictException", 409) and "weekly" in message


def test_at_most_twenty_exports_pending_or_in_progress_per_account(endpoint: Endpoint, ml: Any) -> None:
    model = create_model(ml)
    job = active_job(ml, "job", model)
    for index in range(20):
        export(ml, job, f"e{index}")
    answer = error_body(export, ml=ml, job_arn=job, name="e20")
    assert answer["Error"]["Code"] == "ServiceQuotaExceededException"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 402
    assert (answer["quotaName"], answer["quotaValue"]) == ("Audience export jobs pending or in progress", 20)
    for _ in range(3):  # the first page (10) reaches ACTIVE: slots free up
        ml.list_audience_export_jobs(audienceGenerationJobArn=job, maxResults=10)
    export(ml, job, "e20")


def test_at_most_twenty_five_active_exports_per_generation_job() -> None:
    with Endpoint(export_reads_until_active=0) as endpoint:
        ml = endpoint.client()
        model = create_model(ml)
        job, other = active_job(ml, "job", model), active_job(ml, "other", model)
        for index in range(25):
            export(ml, job, f"e{index}")
            listed(ml, job)  # ACTIVE at the first listing: the pending quota never binds
        answer = error_body(export, ml=ml, job_arn=job, name="e25")
        assert (answer["quotaName"], answer["quotaValue"]) == (
            "Active audience export jobs per audience generation job",
            25,
        )
        export(ml, other, "e25")  # per job


def test_a_job_cannot_be_deleted_while_an_export_is_pending_and_its_exports_go_with_it(
    endpoint: Endpoint, ml: Any
) -> None:
    model = create_model(ml)
    job = active_job(ml, "job", model)
    export(ml, job, "e")
    code, status, message = error_of(ml.delete_audience_generation_job, audienceGenerationJobArn=job)
    assert (code, status) == ("ConflictException", 409) and "audience export jobs pending or in progress: e" in message
    for _ in range(3):
        listed(ml, job)
    ml.delete_audience_generation_job(audienceGenerationJobArn=job)
    for _ in range(2):
        try:
            ml.get_audience_generation_job(audienceGenerationJobArn=job)
        except ClientError:
            break
    assert endpoint.job(job) is None and endpoint.exports() == []
    assert ml.list_audience_export_jobs(audienceGenerationJobArn=job)["audienceExportJobs"] == []


def test_scripted_export_failures_and_reads(endpoint: Endpoint, ml: Any) -> None:
    model = create_model(ml)
    job = active_job(ml, "job", model)
    endpoint.fail_export("bad-*", "the output role cannot write", status_code="403")
    endpoint.set_export_reads("slow", 4)
    export(ml, job, "bad-1")
    export(ml, job, "slow")
    seen = [listed(ml, job) for _ in range(5)]
    assert [s["bad-1"]["status"] for s in seen][:3] == ["CREATE_PENDING", "CREATE_IN_PROGRESS", "CREATE_FAILED"]
    assert seen[2]["bad-1"]["statusDetails"] == {"statusCode": "403", "message": "the output role cannot write"}
    assert "outputLocation" not in seen[4]["bad-1"]
    assert [s["slow"]["status"] for s in seen] == ["CREATE_PENDING"] + ["CREATE_IN_PROGRESS"] * 3 + ["ACTIVE"]


def test_exports_list_in_pages_filtered_by_job_and_only_shown_ones_move(ml: Any) -> None:
    model = create_model(ml)
    job, other = active_job(ml, "job", model), active_job(ml, "other", model)
    for index in range(13):
        export(ml, job, f"e{index:02}")
    export(ml, other, "elsewhere")
    pages = list(ml.get_paginator("list_audience_export_jobs").paginate(audienceGenerationJobArn=job))
    assert [len(p["audienceExportJobs"]) for p in pages] == [10, 3]
    assert {e["name"] for p in pages for e in p["audienceExportJobs"]} == {f"e{i:02}" for i in range(13)}
    everything = ml.list_audience_export_jobs(maxResults=100)["audienceExportJobs"]
    assert len(everything) == 14
    statuses = {e["name"]: e["status"] for e in everything}
    assert statuses["elsewhere"] == "CREATE_PENDING"  # its first showing
    assert statuses["e00"] == "CREATE_IN_PROGRESS"  # its second


def test_scripted_faults_reach_the_export_operations(endpoint: Endpoint, ml: Any) -> None:
    job = active_job(ml, "job", create_model(ml))
    endpoint.throttle("StartAudienceExportJob", 1)
    assert error_of(export, ml=ml, job_arn=job, name="e")[:2] == ("ThrottlingException", 429)
    endpoint.lose_response("StartAudienceExportJob", 1)
    assert error_of(export, ml=ml, job_arn=job, name="e")[1] == 500
    assert [e["name"] for e in endpoint.exports()] == ["e"]  # it took effect
    endpoint.deny("ListAudienceExportJobs")
    code, _, message = error_of(ml.list_audience_export_jobs)
    assert code == "AccessDeniedException" and "cleanrooms-ml:ListAudienceExportJobs" in message


# --------------------------------------------------------------------------------------------------
# Configured audience model associations (cleanrooms)


def associate(rooms: Any, model_arn: str, name: str, membership: str = MEMBERSHIP, **extra: Any) -> dict[str, Any]:
    answer = rooms.create_configured_audience_model_association(
        membershipIdentifier=membership,
        configuredAudienceModelArn=model_arn,
        configuredAudienceModelAssociationName=name,
        manageResourcePolicies=extra.pop("manageResourcePolicies", True),
        **extra,
    )
    return dict(answer["configuredAudienceModelAssociation"])


def test_an_association_is_created_in_a_membership_and_read_back(endpoint: Endpoint, ml: Any, rooms: Any) -> None:
    model = create_model(ml)
    created = associate(rooms, model, "shared", description="for partners")
    assert ASSOCIATION_ARN_FORMAT.fullmatch(created["arn"]) and created["arn"].endswith(created["id"])
    assert created["membershipId"] == MEMBERSHIP
    assert created["membershipArn"] == f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{MEMBERSHIP}"
    assert created["collaborationArn"].endswith(f":collaboration/{created['collaborationId']}")
    assert created["configuredAudienceModelArn"] == model and created["manageResourcePolicies"] is True
    assert created["name"] == "shared" and created["description"] == "for partners"
    assert (
        wire_problems(
            {"configuredAudienceModelAssociation": created}, "cleanrooms", "GetConfiguredAudienceModelAssociation"
        )
        == []
    )
    got = rooms.get_configured_audience_model_association(
        membershipIdentifier=MEMBERSHIP, configuredAudienceModelAssociationIdentifier=created["id"]
    )["configuredAudienceModelAssociation"]
    assert got == created
    # The collaboration is made up per membership: the same for every association of it, another for another.
    second = associate(rooms, model, "second")
    elsewhere = associate(rooms, model, "shared", membership=OTHER_MEMBERSHIP)
    assert second["collaborationId"] == created["collaborationId"] != elsewhere["collaborationId"]
    endpoint.add_membership(OTHER_MEMBERSHIP, COLLABORATION_ID)
    pinned = rooms.get_configured_audience_model_association(
        membershipIdentifier=OTHER_MEMBERSHIP, configuredAudienceModelAssociationIdentifier=elsewhere["id"]
    )["configuredAudienceModelAssociation"]
    assert pinned["collaborationId"] == COLLABORATION_ID


def test_association_timestamps_are_epoch_seconds_on_the_wire(endpoint: Endpoint, ml: Any) -> None:
    """The cleanrooms model gives its timestamps no format: rest-json's default is epoch seconds."""
    model = create_model(ml)
    body = json.dumps(
        {
            "configuredAudienceModelArn": model,
            "configuredAudienceModelAssociationName": "n",
            "manageResourcePolicies": False,
        }
    ).encode()
    request = urllib.request.Request(
        f"{endpoint.url}/memberships/{MEMBERSHIP}/configuredaudiencemodelassociations",
        data=body,
        method="POST",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=A/20250101/us-east-1/cleanrooms/aws4_request"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        association = json.loads(answer.read())["configuredAudienceModelAssociation"]
    assert isinstance(association["createTime"], float) and isinstance(association["updateTime"], float)


def test_associations_update_delete_and_list_per_membership(endpoint: Endpoint, ml: Any, rooms: Any) -> None:
    model = create_model(ml)
    created = associate(rooms, model, "a0")
    ids = {"membershipIdentifier": MEMBERSHIP, "configuredAudienceModelAssociationIdentifier": created["id"]}
    updated = rooms.update_configured_audience_model_association(**ids, name="renamed")[
        "configuredAudienceModelAssociation"
    ]
    assert updated["name"] == "renamed" and "description" not in updated
    updated = rooms.update_configured_audience_model_association(**ids, description="now described")[
        "configuredAudienceModelAssociation"
    ]
    assert (updated["name"], updated["description"]) == ("renamed", "now described")
    for index in range(1, 5):
        associate(rooms, model, f"a{index}")
    associate(rooms, model, "elsewhere", membership=OTHER_MEMBERSHIP)
    pages = list(
        rooms.get_paginator("list_configured_audience_model_associations").paginate(
            membershipIdentifier=MEMBERSHIP, PaginationConfig={"PageSize": 2}
        )
    )
    summaries = [s for p in pages for s in p["configuredAudienceModelAssociationSummaries"]]
    assert [len(p["configuredAudienceModelAssociationSummaries"]) for p in pages] == [2, 2, 1]
    assert {s["name"] for s in summaries} == {"renamed", "a1", "a2", "a3", "a4"}
    assert wire_problems(pages[0], "cleanrooms", "ListConfiguredAudienceModelAssociations") == []
    deleted = rooms.delete_configured_audience_model_association(**ids)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    for call in (
        rooms.get_configured_audience_model_association,
        rooms.delete_configured_audience_model_association,
    ):
        code, status, _ = error_of(call, **ids)
        assert (code, status) == ("ResourceNotFoundException", 404)
    in_other = {
        "membershipIdentifier": OTHER_MEMBERSHIP,
        "configuredAudienceModelAssociationIdentifier": summaries[1]["id"],
    }
    assert error_of(rooms.get_configured_audience_model_association, **in_other)[0] == "ResourceNotFoundException"
    assert len(endpoint.associations(MEMBERSHIP)) == 4 and len(endpoint.associations()) == 5


def test_association_names_are_unique_per_membership(ml: Any, rooms: Any) -> None:
    model = create_model(ml)
    first = associate(rooms, model, "twin")
    associate(rooms, model, "twin", membership=OTHER_MEMBERSHIP)
    answer = error_body(associate, rooms=rooms, model_arn=model, name="twin")
    assert answer["Error"]["Code"] == "ConflictException" and answer["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert answer["reason"] == "ALREADY_EXISTS" and answer["resourceId"] == first["id"]
    other = associate(rooms, model, "other")
    code, _, _ = error_of(
        rooms.update_configured_audience_model_association,
        membershipIdentifier=MEMBERSHIP,
        configuredAudienceModelAssociationIdentifier=other["id"],
        name="twin",
    )
    assert code == "ConflictException"


def test_at_most_five_associations_per_membership(ml: Any, rooms: Any) -> None:
    model = create_model(ml)
    for index in range(5):
        associate(rooms, model, f"a{index}")
    answer = error_body(associate, rooms=rooms, model_arn=model, name="a5")
    assert answer["Error"]["Code"] == "ServiceQuotaExceededException"
    assert (answer["quotaName"], answer["quotaValue"]) == ("Configured audience model associations per membership", 5)
    associate(rooms, model, "a5", membership=OTHER_MEMBERSHIP)


def test_the_model_must_exist_when_it_is_this_accounts(ml: Any, rooms: Any) -> None:
    missing = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/none"
    answer = error_body(associate, rooms=rooms, model_arn=missing, name="a")
    assert answer["Error"]["Code"] == "ResourceNotFoundException" and answer["resourceId"] == missing
    theirs = f"arn:aws:cleanrooms-ml:{REGION}:{OTHER_ACCOUNT}:configured-audience-model/theirs"
    assert associate(rooms, theirs, "a")["configuredAudienceModelArn"] == theirs


def test_invalid_association_requests_say_which_field(endpoint: Endpoint) -> None:
    raw = endpoint.client(service="cleanrooms", parameter_validation=False)
    answer = error_body(
        raw.create_configured_audience_model_association,
        membershipIdentifier="not-a-uuid-but-36-characters-long-xx",
        configuredAudienceModelArn=f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/x",
        configuredAudienceModelAssociationName="x" * 101,
        manageResourcePolicies=True,
        tags={"aws:team": "ads"},
    )
    assert answer["Error"]["Code"] == "ValidationException" and answer["reason"] == "FIELD_VALIDATION_FAILED"
    assert {f["name"] for f in answer["fieldList"]} == {
        "membershipIdentifier",
        "configuredAudienceModelAssociationName",
        "tags['aws:team']",
    }


def test_tags_on_associations_use_cleanrooms_own_operations(endpoint: Endpoint, ml: Any, rooms: Any) -> None:
    arn = associate(rooms, create_model(ml), "tagged", tags={"team": "ads"})["arn"]
    rooms.tag_resource(resourceArn=arn, tags={"owner": "growth"})
    rooms.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert rooms.list_tags_for_resource(resourceArn=arn)["tags"] == {"owner": "growth"}
    assert endpoint.association(arn)["tags"] == {"owner": "growth"}  # type: ignore[index]
    # The same path on the other service: Clean Rooms ML does not hold cleanrooms ARNs.
    code, _, _ = error_of(endpoint.client(parameter_validation=False).list_tags_for_resource, resourceArn=arn)
    assert code == "ValidationException"
    missing = arn[:-4] + "ffff"
    assert_not_found(rooms.list_tags_for_resource, resourceArn=missing)
    # The model's 100-character cap is waived up to an association ARN's 256 (see the endpoint), no further.
    too_long = f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{'a' * 220}"
    assert error_of(rooms.list_tags_for_resource, resourceArn=too_long)[0] == "ValidationException"
    assert (
        endpoint.count("TagResource", service="cleanrooms") == 1
        and endpoint.count("TagResource", service="cleanroomsml") == 0
    )


# --------------------------------------------------------------------------------------------------
# One server, two services


def test_the_environment_points_both_unmodified_clients_at_it(endpoint: Endpoint) -> None:
    environment = endpoint.environment()
    assert environment["AWS_ENDPOINT_URL_CLEANROOMS"] == environment["AWS_ENDPOINT_URL_CLEANROOMSML"] == endpoint.url
    with mock.patch.dict(os.environ, environment):
        model = create_model(boto3.client("cleanroomsml"))
        associate(boto3.client("cleanrooms"), model, "via-env")
    assert [(c.service, c.operation) for c in endpoint.calls] == [
        ("cleanroomsml", "CreateConfiguredAudienceModel"),
        ("cleanrooms", "CreateConfiguredAudienceModelAssociation"),
    ]
    assert endpoint.count(service="cleanrooms") == 1 and endpoint.count(service="cleanroomsml") == 1
    assert endpoint.count() == 2


def _raw(endpoint: Endpoint, path: str, signing_name: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        endpoint.url + path,
        headers={"Authorization": f"AWS4-HMAC-SHA256 Credential=A/20250101/us-east-1/{signing_name}/aws4_request"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, {"type": error.headers["x-amzn-ErrorType"], **json.loads(error.read())}


def test_requests_are_routed_by_the_service_their_signature_names(endpoint: Endpoint) -> None:
    ml_arn = urllib.parse.quote(f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/abc", safe="")
    status, answer = _raw(endpoint, f"/tags/{ml_arn}", "cleanrooms-ml")
    assert (status, answer["type"]) == (404, "ResourceNotFoundException")  # a cleanrooms-ml ARN, valid there
    status, answer = _raw(endpoint, f"/tags/{ml_arn}", "cleanrooms")
    assert (status, answer["type"]) == (400, "ValidationException")  # not an ARN cleanrooms takes
    assert answer["reason"] == "FIELD_VALIDATION_FAILED"
    assert _raw(endpoint, f"/memberships/{MEMBERSHIP}/configuredaudiencemodelassociations", "cleanrooms")[0] == 200
    assert _raw(endpoint, f"/memberships/{MEMBERSHIP}/configuredaudiencemodelassociations", "cleanrooms-ml")[0] == 404
    assert _raw(endpoint, "/configured-audience-model", "s3")[0] == 403
    assert [(c.service, c.operation) for c in endpoint.calls] == [
        ("cleanroomsml", "ListTagsForResource"),
        ("cleanrooms", "ListTagsForResource"),
        ("cleanrooms", "ListConfiguredAudienceModelAssociations"),
    ]


def test_scripted_faults_name_the_service_for_an_operation_both_have(endpoint: Endpoint, ml: Any, rooms: Any) -> None:
    model = create_model(ml)
    association = associate(rooms, model, "a")["arn"]
    endpoint.throttle("TagResource", 1, service="cleanrooms")
    ml.tag_resource(resourceArn=model, tags={"a": "1"})  # cleanroomsml's is not throttled
    assert error_of(rooms.tag_resource, resourceArn=association, tags={"a": "1"})[0] == "ThrottlingException"
    endpoint.throttle("TagResource", 1)  # no service: Clean Rooms ML's
    assert error_of(ml.tag_resource, resourceArn=model, tags={"b": "2"})[0] == "ThrottlingException"
    rooms.tag_resource(resourceArn=association, tags={"b": "2"})
    endpoint.deny("GetConfiguredAudienceModelAssociation")  # only cleanrooms has it
    code, _, message = error_of(
        rooms.get_configured_audience_model_association,
        membershipIdentifier=MEMBERSHIP,
        configuredAudienceModelAssociationIdentifier=association.rsplit("/", 1)[1],
    )
    assert code == "AccessDeniedException" and "cleanrooms:GetConfiguredAudienceModelAssociation" in message
    with pytest.raises(ValueError, match="CreateConfiguredAudienceModelAssociation"):
        endpoint.throttle("CreateConfiguredAudienceModelAssociation", 1, service="cleanroomsml")
    assert endpoint.count("TagResource", error="ThrottlingException", service="cleanrooms") == 1


def test_iam_is_enforced_on_the_new_operations_too(endpoint: Endpoint, ml: Any, rooms: Any) -> None:
    caller = iam.Caller("aws", REGION, ACCOUNT)
    statements = [
        {"Effect": "Allow", "Action": "cleanrooms-ml:CreateConfiguredAudienceModel", "Resource": AUDIENCE_MODEL},
        {"Effect": "Allow", "Action": "cleanrooms:*", "Resource": "*"},
    ]
    endpoint.enforce_iam(statements, caller)
    code, _, message = error_of(create_model, ml=ml)
    assert code == "AccessDeniedException" and f"iam:PassRole on resource: {OUTPUT_ROLE}" in message
    statements.append(
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": OUTPUT_ROLE,
            "Condition": {"StringEquals": {"iam:PassedToService": "cleanrooms-ml.amazonaws.com"}},
        }
    )
    endpoint.enforce_iam(statements, caller)
    model = create_model(ml)
    code, _, message = error_of(associate, rooms=rooms, model_arn=model, name="a")
    assert code == "AccessDeniedException" and "cleanrooms-ml:GetConfiguredAudienceModel" in message
    endpoint.enforce_iam(None)
    associate(rooms, model, "a")


def test_inventory_shows_everything_that_exists(endpoint: Endpoint, ml: Any, rooms: Any) -> None:
    model = create_model(ml)
    job = active_job(ml, "job", model)
    export(ml, job, "e")
    associate(rooms, model, "a")
    inventory = endpoint.inventory()
    assert {kind: len(items) for kind, items in inventory.items()} == {
        "jobs": 1,
        "exports": 1,
        "configured_models": 1,
        "associations": 1,
        "audience_models": 0,
    }
    endpoint.remove_association("a")
    endpoint.remove_job(job)
    endpoint.remove_configured_model("model")
    assert all(items == [] for items in endpoint.inventory().values())
