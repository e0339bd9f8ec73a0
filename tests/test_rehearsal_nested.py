"""Nested stacks in the rehearsal, as CloudFormation deploys them.

Every provider is a nested stack; here a user's nested stack holds a job too (whose provider is then a nested
stack of that nested stack), with a parameter of the parent passed down. What is checked: the nested stack's
resources are created after the resources it depends on and before the resources that read its outputs; its
``AWS::StackName``/``AWS::StackId`` and Parameters are its own; a parameter change updates it (its custom
resources get Updates) and a later failure rolls it back; a delete removes what depends on it first; a
TemplateURL that is not in the assembly fails clearly.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_cdk import App, CfnParameter, Environment, NestedStack, Stack

from cdk_cleanrooms_ml.rehearsal.driver import Rehearsal, ResourceResult, Step
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from cdk_cleanrooms_ml.rehearsal.iam import paper_resolver
from cdk_cleanrooms_ml.rehearsal.template import NESTED_STACK, Resolver, StackTemplate, TemplateError
from tests.helpers import ACCOUNT, REGION, job, nested_template_files

OUTER = "Outer"


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nested-cdk-out")
    app = App(outdir=str(out))
    outer = Stack(app, OUTER, env=Environment(account=ACCOUNT, region=REGION))
    team = CfnParameter(outer, "Team", default="ads")
    inner = NestedStack(outer, "Inner")
    job(inner, "InnerJob", tags={"team": team.value_as_string})  # a parameter of the nested stack
    outer_job = job(outer, "OuterJob", name="outer-job")
    outer_job.node.add_dependency(inner)  # the parent's job waits for the user's nested stack
    app.synth()
    return out


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as started:
        yield started


def nested_ids(stack: Rehearsal) -> tuple[str, str]:
    """The logical ids of the user's nested stack and of the parent's provider (both AWS::CloudFormation::Stack)."""
    ids = stack.logical_ids(NESTED_STACK)
    (inner,) = [i for i in ids if i.startswith("Inner")]
    (provider,) = [i for i in ids if i.startswith("CleanRoomsMlProvider")]
    return inner, provider


def index(steps: list[Step], logical_id: str, message: str) -> int:
    return next(i for i, s in enumerate(steps) if s.logical_id == logical_id and s.message.startswith(message))


def live(endpoint: Endpoint) -> list[dict[str, object]]:
    return [j for j in endpoint.jobs() if not str(j["status"]).startswith("DELETE")]


def test_nested_stacks_are_created_before_what_reads_their_outputs_and_deleted_after_it(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, OUTER, endpoint=endpoint) as stack:
        inner, provider = nested_ids(stack)
        (outer_job,) = stack.logical_ids()
        created = stack.create()
        assert created.status == "CREATE_COMPLETE", created.reason
        for nested in (inner, provider):
            result = created.result(nested, "Create")
            assert result.resource_type == NESTED_STACK and result.status == "SUCCESS"
            name = f"{OUTER}-{nested}-"
            assert re.fullmatch(
                rf"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}[A-Z0-9]{{12}}/.+", result.physical_id
            )
        # The provider's Outputs: the ServiceToken the parent's job reads with Fn::GetAtt [provider, Outputs.<name>].
        (token,) = created.result(provider, "Create").data.values()
        assert created.result(outer_job, "Create").status == "SUCCESS" and re.fullmatch(r"arn:aws:lambda:.+", token)
        # The job of the nested stack runs through the provider nested in it, with the parent's parameter value.
        inner_job = next(r.logical_id for r in created.results if r.logical_id.startswith(f"{inner}/InnerJob"))
        inner_arn = created.result(inner_job, "Create").data["AudienceGenerationJobArn"]
        assert endpoint.job(inner_arn)["tags"]["team"] == "ads"  # type: ignore[index]
        assert created.result(f"{inner}/{provider_of(created.results, inner)}", "Create").status == "SUCCESS"
        # Its dependencies first, what reads its outputs after: the outer job waits for both nested stacks.
        steps = stack.steps
        began = index(steps, outer_job, "CREATE_IN_PROGRESS")
        assert index(steps, inner, "CREATE_COMPLETE") < began and index(steps, provider, "CREATE_COMPLETE") < began
        assert len(stack.owned_jobs()) == 2

        deleted = stack.delete()
        assert deleted.status == "DELETE_COMPLETE", deleted.reason
        order = [r.logical_id for r in deleted.results if r.action == "Delete" and r.status != "SKIPPED"]
        assert order.index(outer_job) < order.index(inner) and order.index(outer_job) < order.index(provider)
        assert order.index(inner_job) < order.index(inner)  # its own resources go before it is gone
        assert live(endpoint) == [] and stack.owned_jobs() == set()


def provider_of(results: list[ResourceResult], inner: str) -> str:
    """The logical id (inside the user's nested stack) of the provider nested in it."""
    (provider,) = {
        r.logical_id.split("/")[1] for r in results if r.logical_id.startswith(f"{inner}/CleanRoomsMlProvider")
    }
    return provider


def test_a_parameter_change_updates_the_nested_stack_and_its_custom_resources(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, OUTER, endpoint=endpoint) as stack:
        inner, provider = nested_ids(stack)
        assert stack.create().ok
        before = stack.owned_jobs()
        template = copy.deepcopy(stack.template)
        template["Parameters"]["Team"]["Default"] = "growth"
        updated = stack.update(template)
        assert updated.status == "UPDATE_COMPLETE", updated.reason
        assert updated.result(inner, "Update").status == "SUCCESS"
        (inner_job,) = [r for r in updated.results if r.action == "Update" and r.resource_type != NESTED_STACK]
        assert inner_job.logical_id.startswith(f"{inner}/InnerJob")
        assert stack.owned_jobs() == before  # a tags change: the same job, updated in place
        assert endpoint.job(inner_job.physical_id)["tags"]["team"] == "growth"  # type: ignore[index]
        with pytest.raises(KeyError):  # the provider's Parameters and template did not change: not updated
            updated.result(provider, "Update")
        unchanged = stack.update()
        assert unchanged.status == "UPDATE_COMPLETE" and unchanged.results == []  # nothing changed, nothing sent
        assert stack.delete().ok
    assert live(endpoint) == []


def test_a_nested_stack_update_is_rolled_back_when_a_later_resource_of_its_parent_fails(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, OUTER, endpoint=endpoint) as stack:
        inner, _ = nested_ids(stack)
        (outer_job,) = stack.logical_ids()
        assert stack.create().ok
        before = stack.owned_jobs()
        template = copy.deepcopy(stack.template)
        template["Parameters"]["Team"]["Default"] = "growth"
        template["Resources"][outer_job]["Properties"]["description"] = "autumn"  # explicit name: refused
        outcome = stack.update(template)
        assert outcome.status == "UPDATE_ROLLBACK_COMPLETE", outcome.reason
        assert outcome.reason.startswith(outer_job) and "Change `name`" in outcome.reason
        assert outcome.result(inner, "Update", rollback=False).status == "SUCCESS"  # updated, then rolled back
        assert outcome.result(inner, "Update", rollback=True).status == "SUCCESS"
        back = [r for r in outcome.results if r.rollback and r.logical_id.startswith(f"{inner}/InnerJob")]
        assert [(r.action, r.status) for r in back] == [("Update", "SUCCESS")]  # the Update back
        assert endpoint.job(back[0].physical_id)["tags"]["team"] == "ads"  # type: ignore[index]
        assert stack.wedged() == [] and stack.owned_jobs() == before
        assert {j["arn"] for j in live(endpoint)} == before
        assert stack.delete().ok
    assert live(endpoint) == []


def test_a_nested_template_missing_from_the_assembly_fails_the_create_clearly(
    cdk_out: Path, endpoint: Endpoint, tmp_path: Path
) -> None:
    broken = tmp_path / "cdk.out"
    shutil.copytree(cdk_out, broken)
    for nested in nested_template_files(broken, OUTER):
        if "Inner" in nested.name:
            nested.unlink()
    with Rehearsal(broken, OUTER, endpoint=endpoint) as stack:
        inner, _ = nested_ids(stack)
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE"
        assert outcome.reason.startswith(f"{inner}: Embedded stack {inner} was not successfully created")
        assert "its TemplateURL" in outcome.reason and "is not a file asset of" in outcome.reason
        assert stack.wedged() == [] and stack.owned_jobs() == set()
    assert live(endpoint) == []


# --------------------------------------------------------------------------------------------------
# The nested stack as the template module reads it


def test_a_nested_stack_has_its_own_name_id_and_parameters(cdk_out: Path) -> None:
    outer = StackTemplate.load(cdk_out, OUTER)
    nested = outer.nested_stacks(paper_resolver(outer).resolve)
    inner_id = next(k for k in nested if k.startswith("Inner"))
    inner = nested[inner_id]
    assert re.fullmatch(rf"{OUTER}-{inner_id}-[A-Z0-9]{{12}}", inner.name) and len(inner.name) <= 128
    assert inner.stack_id.startswith(f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{inner.name}/")
    assert (inner.account, inner.region, inner.assets) == (outer.account, outer.region, outer.assets)
    (team,) = [p for p in inner.template["Parameters"] if "Team" in p]
    assert inner.parameters == {team: "ads"}  # the parent's parameter, resolved in the parent
    resolver = Resolver(inner, {}, {})
    assert resolver.resolve({"Ref": "AWS::StackName"}) == inner.name
    assert resolver.resolve({"Ref": "AWS::StackId"}) == inner.stack_id
    assert resolver.resolve({"Fn::Sub": f"${{AWS::StackName}}:${{{team}}}"}) == f"{inner.name}:ads"
    again = outer.nested_stacks(paper_resolver(outer).resolve)[inner_id]
    assert again.name != inner.name  # a new nested stack, a new random suffix (as CloudFormation names them)
    updated = outer.nested(inner_id, {**_properties(outer, inner_id)}, existing=inner)
    assert (updated.name, updated.stack_id) == (inner.name, inner.stack_id)  # an update keeps them


def _properties(outer: StackTemplate, logical_id: str) -> dict[str, object]:
    resolved: dict[str, object] = paper_resolver(outer).resolve(outer.resources[logical_id]["Properties"])
    return resolved


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: {**p, "Parameters": {**p["Parameters"], "Unknown": "x"}}, r"Parameters \['Unknown'\] do not exist"),
        (lambda p: {**p, "Parameters": {}}, r"Parameters \['.*Team.*'\] must have values"),
        (lambda p: {**p, "Parameters": {k: ["a"] for k in p["Parameters"]}}, r"must be strings"),
        (lambda p: {**p, "TemplateURL": "https://s3.amazonaws.com/b/nothing.json"}, r"is not a file asset"),
    ],
)
def test_a_nested_stack_is_refused_as_cloudformation_refuses_it(cdk_out: Path, edit: object, message: str) -> None:
    outer = StackTemplate.load(cdk_out, OUTER)
    inner_id = next(k for k in outer.resources if k.startswith("Inner"))
    with pytest.raises(TemplateError, match=message) as refused:
        outer.nested(inner_id, edit(_properties(outer, inner_id)))  # type: ignore[operator]
    assert str(refused.value).startswith(f"{OUTER}/{inner_id} (AWS::CloudFormation::Stack)")
