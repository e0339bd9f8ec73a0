"""The lookalike flow's types rehearsed as CloudFormation deploys them, through the shared engine: a configured
audience model with its policy and its association, a job on that model, and exports of the job, in one stack.

Each case ends with the checks that matter most: no operation wedged (UPDATE_ROLLBACK_FAILED), and nothing
exists that the stack does not own. The handler role's policy is enforced on every call (``enforce_iam``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_s3 as s3

from cdk_cleanrooms_ml import (
    AudienceDestination,
    AudienceSize,
    AudienceSizeConfig,
    AudienceSizeType,
    ConfiguredAudienceModel,
    SharedAudienceMetrics,
)
from cdk_cleanrooms_ml.rehearsal import __main__ as cli
from cdk_cleanrooms_ml.rehearsal.driver import Rehearsal
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import ACCOUNT, REGION, job

MODEL = "Custom::CleanRoomsMlConfiguredAudienceModel"
ASSOCIATION = "Custom::CleanRoomsMlConfiguredAudienceModelAssociation"
EXPORT = "Custom::CleanRoomsMlAudienceExportJob"
JOB = "Custom::CleanRoomsMlAudienceGenerationJob"
MEMBERSHIP = "5b7d0f2a-8c1e-4c3a-9e6f-1a2b3c4d5e6f"
PARTNER = "444455556666"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def flow(app: App, name: str, association_name: str | None = "lookalike") -> Stack:
    """A configured model (its policy for a partner, its association), a job on it, and an export of the job."""
    stack = Stack(app, name, env=Environment(account=ACCOUNT, region=REGION))
    bucket = s3.Bucket(stack, "Segments")
    model = ConfiguredAudienceModel(
        stack,
        "Configured",
        audience_model_arn=f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/interactions",
        destination=AudienceDestination.from_bucket(bucket, prefix="segments/"),
        shared_audience_metrics=[SharedAudienceMetrics.ALL],
        audience_size_config=AudienceSizeConfig(type=AudienceSizeType.PERCENTAGE, bins=[5, 10, 20]),
        tags={"team": "data"},
    )
    model.grant_start_audience_generation(PARTNER)
    model.associate("InCollaboration", membership_id=MEMBERSHIP, name=association_name)
    generated = job(stack, "Lookalike", configured_audience_model_arn=model.configured_audience_model_arn)
    generated.export("Top10", audience_size=AudienceSize.percentage(10))
    return stack


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline-cdk-out")
    app = App(outdir=str(out))
    flow(app, "Flow")
    flow(app, "Derived", association_name=None)  # every name derived: any replacement can go through
    app.synth()
    return out


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as started:
        yield started


def owned(stack: Rehearsal) -> dict[str, set[str]]:
    """The physical ids the stack's resources of each library type point at."""
    found: dict[str, set[str]] = {MODEL: set(), ASSOCIATION: set(), EXPORT: set(), JOB: set()}
    for deployed in stack.deployed.values():
        kind = deployed.resource.get("Type")
        if kind in found and deployed.physical_id.startswith("arn:"):
            found[kind].add(deployed.physical_id)
    return found


def existing(endpoint: Endpoint) -> dict[str, set[str]]:
    """What exists at the endpoint (jobs on their way out and failed exports excluded), keyed like ``owned``."""
    inventory = endpoint.inventory()
    return {
        MODEL: {m["arn"] for m in inventory["configured_models"]},
        ASSOCIATION: {a["arn"] for a in inventory["associations"]},
        # A failed export stays listed (the API has no delete), but it is not running.
        EXPORT: {
            f"{e['audienceGenerationJobArn']}|{e['name']}"
            for e in inventory["exports"]
            if e["status"] != "CREATE_FAILED"
        },
        JOB: {j["arn"] for j in inventory["jobs"] if not j["status"].startswith("DELETE")},
    }


def sound(endpoint: Endpoint, stack: Rehearsal) -> None:
    """Nothing wedged, nothing orphaned: everything that exists is the stack's."""
    assert stack.wedged() == [], [o.reason for o in stack.wedged()]
    assert existing(endpoint) == owned(stack)


def only(stack: Rehearsal, resource_type: str) -> str:
    (logical_id,) = stack.logical_ids(resource_type)
    return logical_id


def change(resource_type: str, stack: Rehearsal, **members: Any) -> Any:
    target = only(stack, resource_type)

    def apply(logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {**properties, **members} if logical_id == target else properties

    return apply


def test_the_flow_is_created_in_dependency_order_and_deleted_dependents_first(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "Flow", endpoint=endpoint) as stack:
        created = stack.create()
        assert created.ok, created.reason
        ours = owned(stack)
        assert all(len(ids) == 1 for ids in ours.values()), ours
        (model_arn,) = ours[MODEL]
        (job_arn,) = ours[JOB]
        assert endpoint.job(job_arn)["configuredAudienceModelArn"] == model_arn  # type: ignore[index]
        assert PARTNER in endpoint.configured_model(model_arn)["policy"]  # type: ignore[index]
        (association,) = endpoint.associations(MEMBERSHIP)
        assert association["configuredAudienceModelArn"] == model_arn
        order = [r.logical_id for r in created.results if r.action == "Create"]
        assert order.index(only(stack, MODEL)) < order.index(only(stack, JOB)) < order.index(only(stack, EXPORT))
        sound(endpoint, stack)
        deleted = stack.delete()
        assert deleted.ok, deleted.reason
        order = [r.logical_id for r in deleted.results if r.action == "Delete"]
        assert order.index(only(stack, JOB)) < order.index(only(stack, MODEL))
        assert order.index(only(stack, ASSOCIATION)) < order.index(only(stack, MODEL))
        assert existing(endpoint) == {MODEL: set(), ASSOCIATION: set(), EXPORT: set(), JOB: set()}


def test_a_failed_association_rolls_the_whole_flow_back(cdk_out: Path, endpoint: Endpoint) -> None:
    endpoint.exceed_quota("CreateConfiguredAudienceModelAssociation", "associations per membership", 5)
    with Rehearsal(cdk_out, "Flow", endpoint=endpoint) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE", outcome.reason
        assert "associations per membership" in outcome.reason
        assert existing(endpoint) == {MODEL: set(), ASSOCIATION: set(), EXPORT: set(), JOB: set()}
        sound(endpoint, stack)


def test_a_failed_export_rolls_back_the_job_and_the_model(cdk_out: Path, endpoint: Endpoint) -> None:
    endpoint.fail_export("Flow-Lookalike-Top10-*", "the destination bucket refused the write")
    with Rehearsal(cdk_out, "Flow", endpoint=endpoint) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE", outcome.reason
        assert "the destination bucket refused the write" in outcome.reason
        assert existing(endpoint) == {MODEL: set(), ASSOCIATION: set(), EXPORT: set(), JOB: set()}
        sound(endpoint, stack)


def test_redelivered_creates_are_adopted_not_doubled(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Flow", endpoint=endpoint) as stack:
        twice = [only(stack, t) for t in (MODEL, ASSOCIATION, EXPORT, JOB)]
        outcome = stack.create(deliver_twice=twice)
        assert outcome.ok, outcome.reason
        assert all(len(ids) == 1 for ids in existing(endpoint).values())
        sound(endpoint, stack)


def test_an_in_place_model_update_is_set_back_when_a_later_resource_fails(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Flow", endpoint=endpoint) as stack:
        assert stack.create().ok
        (model_arn,) = owned(stack)[MODEL]
        before = owned(stack)
        endpoint.fail_export("Flow-Lookalike-Top10-*", "the destination bucket refused the write")

        def describe_model_and_export_more(logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
            if logical_id == only(stack, MODEL):
                return {**properties, "description": "autumn", "minMatchingSeedSize": "1000"}
            if logical_id == only(stack, EXPORT):
                return {**properties, "audienceSize": {"type": "PERCENTAGE", "value": "20"}}  # a new export
            return properties

        outcome = stack.update(change=describe_model_and_export_more)
        assert outcome.status == "UPDATE_ROLLBACK_COMPLETE", outcome.reason
        assert outcome.result(only(stack, MODEL), "Update", rollback=True).status == "SUCCESS"
        model = endpoint.configured_model(model_arn)
        assert model is not None and model["minMatchingSeedSize"] == 500 and not model.get("description")
        assert owned(stack) == before
        sound(endpoint, stack)
        assert stack.delete().ok
        sound(endpoint, stack)


def test_a_rolled_back_replacement_that_added_a_member_leaves_the_model_as_it_was(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    """The model first deployed without audienceSizeConfig; the next update adds it (a new model: once set, no
    value unsets it) and fails (the new model's policy is refused). CloudFormation sends the model an Update back
    (new = the first properties, old = the sized ones) to the first model, which never had a size config: it must
    change nothing (it once failed here, wedging the stack in UPDATE_ROLLBACK_FAILED)."""
    with Rehearsal(cdk_out, "Derived", endpoint=endpoint) as stack:
        assert stack.create().ok
        sized = copy.deepcopy(stack.template)
        model_id = only(stack, MODEL)

        def without_size_config(logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in properties.items() if logical_id != model_id or k != "audienceSizeConfig"}

        unsized = stack.update(change=without_size_config)
        assert unsized.ok, unsized.reason
        (bare_arn,) = owned(stack)[MODEL]
        before = owned(stack)
        endpoint.deny("PutConfiguredAudienceModelPolicy")
        outcome = stack.update(sized)  # the size config is back
        assert outcome.status == "UPDATE_ROLLBACK_COMPLETE", outcome.reason
        assert outcome.result(only(stack, MODEL), "Update", rollback=True).status == "SUCCESS"
        assert owned(stack) == before
        model = endpoint.configured_model(bare_arn)
        assert model is not None and not model.get("audienceSizeConfig")
        assert [m["arn"] for m in endpoint.configured_models()] == [bare_arn]  # the failed new model deleted
        sound(endpoint, stack)
        endpoint.allow("PutConfiguredAudienceModelPolicy")
        assert stack.delete().ok
        sound(endpoint, stack)


def test_a_replaced_model_replaces_its_job_and_association_and_the_cleanup_deletes_the_old_ones(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "Derived", endpoint=endpoint) as stack:
        assert stack.create().ok
        before = owned(stack)
        outcome = stack.update(change=change(MODEL, stack, childResourceTagOnCreatePolicy="FROM_PARENT_RESOURCE"))
        assert outcome.status == "UPDATE_COMPLETE", outcome.reason
        after = owned(stack)
        for kind in (MODEL, JOB, ASSOCIATION, EXPORT):  # the export follows its new job
            assert after[kind].isdisjoint(before[kind]), kind
        (job_arn,) = after[JOB]
        assert endpoint.job(job_arn)["configuredAudienceModelArn"] in after[MODEL]  # type: ignore[index]
        sound(endpoint, stack)


def test_a_replacement_an_explicit_association_name_forbids_rolls_the_flow_back(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "Flow", endpoint=endpoint) as stack:
        assert stack.create().ok
        before = owned(stack)
        outcome = stack.update(change=change(MODEL, stack, childResourceTagOnCreatePolicy="FROM_PARENT_RESOURCE"))
        assert outcome.status == "UPDATE_ROLLBACK_COMPLETE", outcome.reason
        assert "its name 'lookalike' did not" in outcome.reason
        assert owned(stack) == before  # the new model (and job) went in the cleanup
        sound(endpoint, stack)


def test_a_model_in_use_by_a_partners_job_blocks_the_delete_with_the_reason(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Flow", endpoint=endpoint) as stack:
        assert stack.create().ok
        (model_arn,) = owned(stack)[MODEL]
        partner_job = endpoint.add_job("partner-job", {"configuredAudienceModelArn": model_arn})
        outcome = stack.delete()
        assert outcome.status == "DELETE_FAILED"
        assert "audience generation job that uses it" in outcome.reason
        assert endpoint.configured_model(model_arn) is not None and model_arn in owned(stack)[MODEL]
        endpoint.remove_job(partner_job)
        assert stack.delete().ok  # deleting the stack again, once the partner's job is gone
        assert endpoint.configured_model(model_arn) is None


def test_an_export_waits_for_a_slot_under_the_accounts_quota(cdk_out: Path, endpoint: Endpoint) -> None:
    endpoint.exceed_quota("StartAudienceExportJob", "Audience export jobs pending or in progress", 3)
    with Rehearsal(cdk_out, "Flow", endpoint=endpoint) as stack:
        outcome = stack.create()
        assert outcome.ok, outcome.reason
        assert endpoint.count("StartAudienceExportJob", error="ServiceQuotaExceededException") == 3
        sound(endpoint, stack)


@pytest.mark.parametrize("example", ["seed_provider", "training_provider"])
def test_the_cli_rehearses_each_pipeline_example(
    example: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{example}", EXAMPLES / f"{example}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(str(tmp_path))
    assert cli.main(["--cdk-out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "==> create: CREATE_COMPLETE" in out and "==> delete: DELETE_COMPLETE" in out
    assert "STILL THERE" not in out
    if example == "seed_provider":
        assert out.count("audience export job gone with its generation job") == 2
        assert "audience export jobs take no tags: not updated" in out
    else:
        assert "configured audience model association gone" in out and "same resource: True" in out
