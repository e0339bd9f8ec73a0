"""Stack operations that fail and roll back, rehearsed as CloudFormation runs them (update rollback, cleanup,
deletion policies, transient errors past the client's retries, oversized events).

Every case ends with the two checks that matter most: no operation ended in UPDATE_ROLLBACK_FAILED (or
ROLLBACK_FAILED), and no job exists that the stack does not own.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Environment, RemovalPolicy, Stack

from cdk_cleanrooms_ml import SeedAudience, SqlParameters
from cdk_cleanrooms_ml.rehearsal.driver import Rehearsal
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import ACCOUNT, REGION, ROLE_ARN, job, nested_template_files, s3_seed

START, DELETE = "StartAudienceGenerationJob", "DeleteAudienceGenerationJob"


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rollback-cdk-out")
    app = App(outdir=str(out))
    env = Environment(account=ACCOUNT, region=REGION)
    pair = Stack(app, "Pair", env=env)
    first = job(pair, "First")
    second = job(pair, "Second", name="pair-second")
    second.node.add_dependency(first)  # First's update is done before Second's starts
    job(Stack(app, "Basic", env=env))
    token = Stack(app, "Token", env=env)
    key = CfnParameter(token, "SeedKey", default="seed/v1.jsonl")
    job(token, seed_audience=s3_seed(uri=f"s3://seed-bucket/{key.value_as_string}"))
    job(Stack(app, "Kept", env=env), name="kept-job", removal_policy=RemovalPolicy.RETAIN)
    job(Stack(app, "KeptGenerated", env=env), removal_policy=RemovalPolicy.RETAIN)
    huge = Stack(app, "Huge", env=env)
    big = job(huge, seed_audience=SeedAudience(role=ROLE_ARN, sql_parameters=SqlParameters(query_string="SELECT 1")))
    # An escape hatch sends what synth would refuse: a 260 KB query (the API allows 500,000 characters).
    big.resource.add_property_override("seedAudience.sqlParameters.queryString", "SELECT " + "x" * 260_000)
    app.synth()
    return out


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as started:
        yield started


def sound(endpoint: Endpoint, stack: Rehearsal, *, also: set[str] | None = None) -> None:
    """Nothing wedged, nothing orphaned: every job that exists is the stack's (or kept on purpose)."""
    assert stack.wedged() == [], [o.reason for o in stack.wedged()]
    live = {j["arn"] for j in endpoint.jobs() if not j["status"].startswith("DELETE")}
    assert live == stack.owned_jobs() | (also or set()), (live, stack.owned_jobs())


def change(logical_prefix: str, **members: Any) -> Any:
    def apply(logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {**properties, **members} if logical_id.startswith(logical_prefix) else properties

    return apply


def test_an_explicit_name_refused_after_another_job_was_replaced_rolls_both_back(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "Pair", endpoint=endpoint) as stack:
        assert stack.create().ok
        before = stack.owned_jobs()
        outcome = stack.update(change=change("", description="autumn"))
        assert outcome.status == "UPDATE_ROLLBACK_COMPLETE", outcome.reason
        assert "Change `name`" in outcome.reason
        # First was replaced: its new job goes in the cleanup, its old one is the resource again.
        first = next(k for k in stack.logical_ids() if k.startswith("First"))
        new_first = outcome.result(first, "Update", rollback=False).physical_id
        assert new_first not in before and outcome.result(first, "Delete", rollback=True).physical_id == new_first
        assert stack.owned_jobs() == before
        sound(endpoint, stack)
        assert stack.delete().ok
        sound(endpoint, stack)


def test_an_in_place_update_is_undone_when_a_later_resource_fails(cdk_out: Path, endpoint: Endpoint) -> None:
    def retag_first_and_rename_second(logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        if logical_id.startswith("First"):
            return {**properties, "tags": {"team": "growth"}}
        return {**properties, "description": "autumn"}  # refused: explicit name, replacing change

    with Rehearsal(cdk_out, "Pair", endpoint=endpoint) as stack:
        assert stack.create().ok
        outcome = stack.update(change=retag_first_and_rename_second)
        assert outcome.status == "UPDATE_ROLLBACK_COMPLETE", outcome.reason
        first = next(k for k in stack.logical_ids() if k.startswith("First"))
        assert outcome.result(first, "Update", rollback=True).status == "SUCCESS"  # the same Update back
        (first_arn,) = {a for a in stack.owned_jobs() if endpoint.job(a)["name"].startswith("Pair-First")}  # type: ignore[index]
        assert endpoint.job(first_arn)["tags"].get("team") is None  # type: ignore[index]
        sound(endpoint, stack)


def test_a_replacement_whose_token_value_changed_gets_a_new_name(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Token", endpoint=endpoint) as stack:
        assert stack.create().ok
        (old,) = stack.owned_jobs()
        old_name = endpoint.job(old)["name"]  # type: ignore[index]
        template = copy.deepcopy(stack.template)
        template["Parameters"]["SeedKey"]["Default"] = "seed/v2.jsonl"  # what an SSM parameter or bucket name does
        outcome = stack.update(template)
        assert outcome.status == "UPDATE_COMPLETE", outcome.reason
        (new,) = stack.owned_jobs()
        assert new != old and endpoint.job(new)["name"] != old_name  # type: ignore[index]
        assert endpoint.job(old) is None  # deleted in the cleanup
        sound(endpoint, stack)


@pytest.mark.parametrize("what", ["tags", "control"])
def test_an_update_of_a_job_deleted_outside_cloudformation_completes(
    cdk_out: Path, endpoint: Endpoint, what: str
) -> None:
    members = {"tags": {"team": "growth"}} if what == "tags" else {"WaitForCompletion": "false"}
    with Rehearsal(cdk_out, "Basic", endpoint=endpoint) as stack:
        assert stack.create().ok
        (arn,) = stack.owned_jobs()
        endpoint.remove_job(arn)
        outcome = stack.update(change=change("", **members))
        assert outcome.status == "UPDATE_COMPLETE", outcome.reason
        (logical_id,) = stack.logical_ids()
        assert outcome.result(logical_id, "Update").data["Status"] == "NOT_FOUND"
        assert stack.delete().ok
        sound(endpoint, stack)


@pytest.mark.parametrize("stack_name", ["Kept", "KeptGenerated"])
def test_a_retained_job_whose_create_failed_is_deleted_so_the_app_deploys_again(
    cdk_out: Path, endpoint: Endpoint, stack_name: str
) -> None:
    pattern = "kept-job" if stack_name == "Kept" else "KeptGenerated-*"
    endpoint.fail_job(pattern, "The seed data at s3://seed-bucket/seed.jsonl does not exist")
    with Rehearsal(cdk_out, stack_name, endpoint=endpoint) as stack:
        failed = stack.create()
        assert failed.status == "ROLLBACK_COMPLETE" and "does not exist" in failed.reason
        sound(endpoint, stack)
    assert [j for j in endpoint.jobs() if not j["status"].startswith("DELETE")] == []
    endpoint.heal(pattern)  # the seed was uploaded
    with Rehearsal(cdk_out, stack_name, endpoint=endpoint) as again:  # the same app, deployed again
        created = again.create()
        assert created.status == "CREATE_COMPLETE", created.reason
        (arn,) = again.owned_jobs()
        assert again.delete().ok  # RETAIN: kept with the stack
        assert endpoint.job(arn)["status"] == "ACTIVE"  # type: ignore[index]
        sound(endpoint, again, also={arn})


def test_errors_that_outlast_the_clients_retries_do_not_fail_the_deploy(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Basic", endpoint=endpoint, client_max_attempts=1) as stack:
        endpoint.throttle(START, 1)
        endpoint.server_error("GetAudienceGenerationJob", 2)
        endpoint.throttle("ListAudienceGenerationJobs", 1)
        created = stack.create()
        assert created.status == "CREATE_COMPLETE", created.reason
        endpoint.server_error(DELETE, 1)
        endpoint.throttle("GetAudienceGenerationJob", 2)
        assert stack.delete().ok
        sound(endpoint, stack)
    assert endpoint.count(START) >= 2 and endpoint.jobs() == []


def test_an_event_too_large_for_the_waiter_starts_nothing(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Huge", endpoint=endpoint) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE"
        assert "262,144 bytes" in outcome.reason
        sound(endpoint, stack)
    assert endpoint.count(START) == 0


def test_a_job_that_never_becomes_active_fails_with_the_handlers_message_inside_the_hour(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    endpoint.set_reads("Basic-*", 1_000_000)  # CREATE_IN_PROGRESS for good (simulated time: no real wait)
    with Rehearsal(cdk_out, "Basic", endpoint=endpoint) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE"
        assert "timed out after waiting" in outcome.reason and "(timeout 3300 s)" in outcome.reason
        assert "ServiceTimeout" not in outcome.reason  # the handler answered before CloudFormation gave up
        sound(endpoint, stack)
    assert [j for j in endpoint.jobs() if not j["status"].startswith("DELETE")] == []


def test_a_job_that_never_gets_a_slot_is_never_started(cdk_out: Path, endpoint: Endpoint) -> None:
    endpoint.quota = 0
    with Rehearsal(cdk_out, "Basic", endpoint=endpoint) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE"
        assert "was never created" in outcome.reason and "quota" in outcome.reason
        assert "ServiceTimeout" not in outcome.reason
        sound(endpoint, stack)
    assert endpoint.jobs() == [] and endpoint.count(START, error=None) == endpoint.count(START)  # every one refused


def test_the_rehearsal_authorizes_every_call_against_the_synthesized_handler_policy(
    cdk_out: Path, endpoint: Endpoint, tmp_path: Path
) -> None:
    """A permission missing from the template fails here, as it would fail in an account."""
    import json
    import shutil

    broken = tmp_path / "cdk.out"
    shutil.copytree(cdk_out, broken)
    (provider_file,) = nested_template_files(broken, "Basic")  # the handler role's policy is in the provider's
    edited = 0
    for template_file in (broken / "Basic.template.json", provider_file):
        template = json.loads(template_file.read_text())
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::IAM::Policy":
                for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    statement["Action"] = [a for a in actions if a != "cleanrooms-ml:TagResource"] or ["none:None"]
                    edited += actions != statement["Action"]
        template_file.write_text(json.dumps(template))
    assert edited == 1  # the handler role's statement that allowed TagResource
    with Rehearsal(broken, "Basic", endpoint=endpoint) as stack:
        outcome = stack.create()  # the job has tags: starting it needs TagResource too
        assert outcome.status == "ROLLBACK_COMPLETE"
        assert "not authorized to perform: cleanrooms-ml:TagResource" in outcome.reason
        sound(endpoint, stack)
    assert endpoint.jobs() == []
