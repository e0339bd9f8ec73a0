"""The fault matrix: deploys rehearsed from a synthesized cloud assembly against the local endpoint.

One app with four stacks is synthesized once for the module. Every case checks the endpoint's state at
the end: no job is left that the stack does not own, and none that it owns is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, RemovalPolicy, Stack

from cdk_cleanrooms_ml.rehearsal.driver import Outcome, Rehearsal
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from cdk_cleanrooms_ml.rehearsal.framework import CREATE_FAILED_MARKER
from tests.helpers import ACCOUNT, REGION, job, nested_template_files

BASIC, RETAINED, TIMEOUT, FIFTY = "rehearsal-basic", "rehearsal-retained", "rehearsal-timeout", "Fifty"
START, GET, DELETE = "StartAudienceGenerationJob", "GetAudienceGenerationJob", "DeleteAudienceGenerationJob"

#: Per case: API calls, jobs created and deleted (printed at the end; written to $REHEARSAL_MATRIX_REPORT).
MATRIX: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("rehearsal-cdk-out")
    app = App(outdir=str(out))
    env = Environment(account=ACCOUNT, region=REGION)
    job(Stack(app, "Basic", env=env), name=BASIC, tags={"team": "ads"})
    job(Stack(app, "Retained", env=env), name=RETAINED, removal_policy=RemovalPolicy.RETAIN)
    job(
        Stack(app, "Timeout", env=env),
        name=TIMEOUT,
        poll_interval=Duration.seconds(1),
        timeout=Duration.seconds(2),
    )
    fifty = Stack(app, FIFTY, env=env)
    for i in range(50):
        job(fifty, f"Job{i:02d}")
    app.synth()
    yield out
    report = os.environ.get("REHEARSAL_MATRIX_REPORT")
    if report:
        Path(report).write_text(json.dumps(MATRIX, indent=2, sort_keys=True))
    total = {k: sum(m[k] for m in MATRIX.values()) for k in ("api_calls", "jobs_created", "jobs_deleted")}
    print(f"\nfault matrix: {len(MATRIX)} cases, {total}")
    for case, counts in sorted(MATRIX.items()):
        print(f"  {case}: {counts}")


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as started:
        yield started


def rehearse(cdk_out: Path, stack: str, endpoint: Endpoint, **kwargs: Any) -> Rehearsal:
    return Rehearsal(cdk_out, stack, endpoint=endpoint, **kwargs)


def only_job(rehearsal: Rehearsal) -> str:
    (logical_id,) = rehearsal.logical_ids()
    return logical_id


def assert_owned_state(endpoint: Endpoint, rehearsal: Rehearsal, *, also: set[str] | None = None) -> None:
    """No job the stack does not own, none that it owns missing (``also``: jobs kept on purpose)."""
    existing = {j["arn"] for j in endpoint.jobs()}
    assert existing == rehearsal.owned_jobs() | (also or set())


def record(case: str, endpoint: Endpoint) -> None:
    MATRIX[case] = {
        "api_calls": endpoint.count(),
        "jobs_created": endpoint.count(START) - sum(1 for c in endpoint.calls if c.operation == START and c.error),
        "jobs_deleted": endpoint.count(DELETE) - sum(1 for c in endpoint.calls if c.operation == DELETE and c.error),
    }


def test_throttling_and_server_errors_during_start_poll_and_delete(cdk_out: Path, endpoint: Endpoint) -> None:
    for operation in (START, GET, DELETE):
        endpoint.throttle(operation, 1)
        endpoint.server_error(operation, 1)
    with rehearse(cdk_out, "Basic", endpoint) as stack:
        created = stack.create()
        assert created.status == "CREATE_COMPLETE", created.reason
        assert created.result(only_job(stack)).data["Status"] == "ACTIVE"
        assert_owned_state(endpoint, stack)
        deleted = stack.delete()
        assert deleted.status == "DELETE_COMPLETE", deleted.reason
        assert_owned_state(endpoint, stack)
    for operation in (START, GET, DELETE):
        assert endpoint.count(operation, error="ThrottlingException") == 1
        assert endpoint.count(operation, error="InternalServerException") == 1
    assert endpoint.count(START) == 3  # retried by the SDK, and still one job: it was never started twice
    assert endpoint.jobs() == []
    record("throttling + 500 on start, poll, delete", endpoint)


def test_job_that_ends_create_failed_fails_the_deploy_and_rollback_leaves_no_job(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    endpoint.fail_job(BASIC, "The seed data at s3://seed-bucket/seed.jsonl has fewer than 25 unique user ids")
    with rehearse(cdk_out, "Basic", endpoint) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE"
        assert "CREATE_FAILED" in outcome.reason
        assert "fewer than 25 unique user ids" in outcome.reason
        rollback = outcome.result(only_job(stack), "Delete", rollback=True)
        assert rollback.status == "SUCCESS"
        assert rollback.physical_id.startswith("arn:aws:cleanrooms-ml:")
        assert_owned_state(endpoint, stack)
    assert endpoint.jobs() == []
    assert endpoint.count(DELETE) == 1
    record("job ends CREATE_FAILED", endpoint)


def test_access_denied_on_start_fails_at_once_naming_the_permission(cdk_out: Path, endpoint: Endpoint) -> None:
    endpoint.deny(START)
    with rehearse(cdk_out, "Basic", endpoint) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE"
        assert "AccessDeniedException" in outcome.reason
        assert "cleanrooms-ml:StartAudienceGenerationJob" in outcome.reason
        assert "iam:PassRole" in outcome.reason
        logical_id = only_job(stack)
        assert outcome.result(logical_id, "Create").physical_id == CREATE_FAILED_MARKER
        assert outcome.result(logical_id, "Delete", rollback=True).status == "SKIPPED"
        assert_owned_state(endpoint, stack)
        assert stack.invocation_count() == 1  # on_event only: no waiter, no retries
    assert endpoint.count(START) == 1  # no retry storm: AccessDenied is not retried
    assert endpoint.count() == 1
    record("AccessDenied on start", endpoint)


def test_job_deleted_out_of_band_before_stack_delete(cdk_out: Path, endpoint: Endpoint) -> None:
    with rehearse(cdk_out, "Basic", endpoint) as stack:
        assert stack.create().ok
        (arn,) = stack.owned_jobs()
        endpoint.remove_job(arn)
        outcome = stack.delete()
        assert outcome.status == "DELETE_COMPLETE", outcome.reason
        assert endpoint.count(DELETE, error="ResourceNotFoundException") == 1
        assert stack.owned_jobs() == set()
    assert endpoint.jobs() == []
    record("job deleted out of band", endpoint)


def test_delete_answered_conflict_until_the_dependent_resource_goes(cdk_out: Path, endpoint: Endpoint) -> None:
    endpoint.block_delete(BASIC, 3)
    with rehearse(cdk_out, "Basic", endpoint) as stack:
        assert stack.create().ok
        outcome = stack.delete()
        assert outcome.status == "DELETE_COMPLETE", outcome.reason
        assert outcome.result(only_job(stack), "Delete").polls >= 3
    assert endpoint.count(DELETE, error="ConflictException") == 3
    assert endpoint.jobs() == []
    record("delete ConflictException x3 then gone", endpoint)


def test_delete_that_stays_blocked_fails_and_keeps_the_job(cdk_out: Path, endpoint: Endpoint) -> None:
    endpoint.block_delete(BASIC, 10_000)
    with rehearse(cdk_out, "Basic", endpoint) as stack:
        assert stack.create().ok
        outcome = stack.delete()
        assert outcome.status == "DELETE_FAILED"
        # Retried for 10 minutes of (simulated) time, then a message that says what blocks it.
        assert "cannot be deleted: the service answered ConflictException" in outcome.reason
        assert "A resource that depends on it still exists" in outcome.reason
        # One poll per 30 s for the 10-minute bound, measured from on_event's own clock: the handler's run time
        # (real seconds, even in simulated time) can push the bound past one more poll on a loaded machine.
        assert outcome.result(only_job(stack), "Delete").polls in (600 // 30 + 1, 600 // 30 + 2)
        assert_owned_state(endpoint, stack)  # the job is still the stack's: nothing orphaned
        assert len(stack.owned_jobs()) == 1
    record("delete blocked for good", endpoint)


def test_replacing_a_job_with_an_explicit_name_fails_with_rename_advice_and_keeps_the_old_job(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with rehearse(cdk_out, "Basic", endpoint) as stack:
        assert stack.create().ok
        (old_arn,) = stack.owned_jobs()
        outcome = stack.update(change=lambda _id, props: {**props, "description": "a new description"})
        assert outcome.status == "UPDATE_ROLLBACK_COMPLETE", outcome.results
        assert "Change `name`" in outcome.reason
        assert stack.owned_jobs() == {old_arn}
        assert endpoint.job(old_arn) is not None and endpoint.job(old_arn)["status"] == "ACTIVE"  # type: ignore[index]
        assert endpoint.count(START) == 1
        assert_owned_state(endpoint, stack)
        assert stack.delete().ok
    assert endpoint.jobs() == []
    record("replacement with an explicit name", endpoint)


def test_timeout_while_waiting_gives_a_clear_message(cdk_out: Path, endpoint: Endpoint) -> None:
    endpoint.set_reads(TIMEOUT, 10_000)
    with rehearse(cdk_out, "Timeout", endpoint, real_time=True) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE"
        assert "timed out after waiting" in outcome.reason
        assert "(timeout 2 s)" in outcome.reason
        assert "CREATE_IN_PROGRESS" in outcome.reason
        assert_owned_state(endpoint, stack)
    assert endpoint.jobs() == []
    record("timeout while waiting (real time)", endpoint)


def test_create_event_delivered_twice_leaves_exactly_one_job(cdk_out: Path, endpoint: Endpoint) -> None:
    with rehearse(cdk_out, "Basic", endpoint) as stack:
        logical_id = only_job(stack)
        outcome = stack.create(deliver_twice={logical_id})
        assert outcome.ok, outcome.reason
        creates = [r for r in outcome.results if r.action == "Create" and r.logical_id == logical_id]
        assert len(creates) == 2 and {r.status for r in creates} == {"SUCCESS"}
        assert creates[0].physical_id == creates[1].physical_id
        assert len(endpoint.jobs()) == 1
        assert endpoint.count(START, error="ConflictException") == 1
        assert_owned_state(endpoint, stack)
        assert stack.delete().ok
    assert endpoint.jobs() == []
    record("Create delivered twice", endpoint)


def test_retained_job_survives_stack_delete(cdk_out: Path, endpoint: Endpoint) -> None:
    with rehearse(cdk_out, "Retained", endpoint) as stack:
        assert stack.create().ok
        (arn,) = stack.owned_jobs()
        outcome = stack.delete()
        assert outcome.status == "DELETE_COMPLETE"
        assert outcome.result(only_job(stack), "Delete").status == "SKIPPED"
        assert_owned_state(endpoint, stack, also={arn})
    assert endpoint.job(arn) is not None
    assert endpoint.count(DELETE) == 0
    record("RETAIN", endpoint)


def test_fifty_jobs_against_the_ten_job_quota_all_become_active(cdk_out: Path, endpoint: Endpoint) -> None:
    with rehearse(cdk_out, FIFTY, endpoint) as stack:
        jobs = stack.logical_ids()
        assert len(jobs) == 50
        outcome: Outcome = stack.create()
        assert outcome.status == "CREATE_COMPLETE", outcome.reason
        assert {outcome.result(j, "Create").data["Status"] for j in jobs} == {"ACTIVE"}
        assert len(stack.owned_jobs()) == 50
        assert endpoint.count(START, error="ServiceQuotaExceededException") > 0  # the quota was really hit
        assert_owned_state(endpoint, stack)
        assert stack.delete().ok
        assert_owned_state(endpoint, stack)
    assert endpoint.jobs() == []
    record("50 jobs, quota 10", endpoint)


def test_a_file_missing_from_the_asset_fails_the_rehearsal(cdk_out: Path, endpoint: Endpoint, tmp_path: Path) -> None:
    broken = tmp_path / "cdk.out"
    shutil.copytree(cdk_out, broken)
    (provider,) = nested_template_files(broken, "Basic")  # the handlers are in the provider's nested stack
    template = json.loads(provider.read_text())
    function = next(
        r for r in template["Resources"].values() if r["Properties"].get("Handler") == "entrypoints.on_event"
    )
    asset = broken / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    (asset / "engine.py").unlink()
    with rehearse(broken, "Basic", endpoint) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE"
        assert "Unable to import module 'entrypoints'" in outcome.reason
        assert_owned_state(endpoint, stack)
    assert endpoint.count() == 0


def test_the_cli_rehearses_the_example_app_and_says_it_is_not_aws(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    from cdk_cleanrooms_ml.rehearsal.__main__ import main

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "example.out"
    subprocess.run(
        [sys.executable, str(root / "examples" / "app.py")],
        env={**os.environ, "CDK_OUTDIR": str(out)},
        check=True,
        capture_output=True,
        cwd=root,
    )
    assert main(["--cdk-out", str(out), "--stack", "CleanRoomsMlExample"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("LOCAL REHEARSAL") and "NOT AWS" in printed.splitlines()[-1]
    for step in ("CREATE_COMPLETE", "RecallMetric=0.", "tags-update", "DELETE_COMPLETE", "ResourceNotFoundException"):
        assert step in printed
    assert main(["--cdk-out", str(tmp_path / "nowhere")]) == 1
