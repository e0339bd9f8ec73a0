"""``AudienceExportJob`` (and ``AudienceGenerationJob.export``) at synth: one resource whose properties are the
StartAudienceExportJob request, a dependency on its job, exports granted on the stack's jobs only, and every bad
prop refused with the construct path, the prop, the value and the rule."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aws_cdk import CfnResource, Duration, Tags

from cdk_cleanrooms_ml import AudienceExportJob, AudienceGenerationJob, AudienceSize
from cdk_cleanrooms_ml.rehearsal.template import dependencies, is_custom, order
from cdk_cleanrooms_ml.service_model import specs
from tests.helpers import (
    ACCOUNT,
    JOB_ARN,
    MODEL_ARN,
    REGION,
    Synthesized,
    handler_statements,
    invalid_props_message,
    job,
    of_type,
    refused,
    stack,
    stack_arn,
)

EXPORT_TYPE = "Custom::CleanRoomsMlAudienceExportJob"
#: A job of another deploy (an imported one), by its ARN.
OTHER_JOB_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/{'b' * 36}"
STACK_JOBS = stack_arn("cleanrooms-ml", "audience-generation-job/*")


@pytest.fixture(scope="module")
def app() -> Synthesized:
    """One stack with a job and five exports of it, of an ARN string, of an imported job and of the job's ARN."""
    scope = stack()
    generation = job(scope, tags={"team": "ads"})
    made = Synthesized(scope=scope, job=generation)
    made.top = generation.export("Top10Percent", audience_size=AudienceSize.percentage(10))
    made.named = AudienceExportJob(
        scope,
        "Top50k",
        audience_generation_job=generation,
        audience_size=AudienceSize.absolute(50_000),
        name="top-50k",
        description="the 50,000 most relevant users",
    )
    made.quick = AudienceExportJob(
        scope,
        "Quick",
        audience_generation_job=JOB_ARN,
        audience_size=AudienceSize.percentage(5),
        wait_for_completion=False,
        timeout=Duration.minutes(20),
    )
    imported = AudienceGenerationJob.from_audience_generation_job_arn(scope, "Imported", OTHER_JOB_ARN)
    made.of_imported = AudienceExportJob(
        scope, "FromImported", audience_generation_job=imported, audience_size=AudienceSize.percentage(20)
    )
    made.by_arn = AudienceExportJob(
        scope,
        "ByArn",
        audience_generation_job=generation.audience_generation_job_arn,
        audience_size=AudienceSize.percentage(20),
    )
    Tags.of(scope).add("cost-center", "42")
    return made.synthesize()


def _job_arn(app: Synthesized) -> dict[str, Any]:
    return {"Fn::GetAtt": [app.logical_id(app.job), "AudienceGenerationJobArn"]}


def test_an_export_is_one_resource_whose_properties_are_the_start_request(app: Synthesized) -> None:
    resource = app.resource(app.top)
    assert resource["Type"] == EXPORT_TYPE
    assert resource["Properties"] == {
        "ServiceToken": app.resource(app.job)["Properties"]["ServiceToken"],  # the stack's one provider
        "audienceGenerationJobArn": _job_arn(app),
        "audienceSize": {"type": "PERCENTAGE", "value": 10},
        # No name given: the handler makes one from this prefix (the export is the job's child).
        "NamePrefix": "Test-Lookalike-Top10Percent",
    }
    # Deleting makes no call (the API has no Delete): the policies only say CloudFormation may let go.
    assert resource["DeletionPolicy"] == "Delete" and resource["UpdateReplacePolicy"] == "Delete"
    assert [c for c in app.top.node.find_all() if isinstance(c, CfnResource)] == [app.top.resource]
    assert len(of_type(app.template, EXPORT_TYPE)) == 5


def test_an_explicit_name_and_a_description_are_sent_and_no_prefix(app: Synthesized) -> None:
    assert app.resource(app.named)["Properties"] == {
        "ServiceToken": app.resource(app.job)["Properties"]["ServiceToken"],
        "audienceGenerationJobArn": _job_arn(app),
        "audienceSize": {"type": "ABSOLUTE", "value": 50_000},
        "name": "top-50k",
        "description": "the 50,000 most relevant users",
    }
    assert app.named.name == "top-50k"


def test_exports_take_no_tags_not_even_from_tags_of(app: Synthesized) -> None:
    """StartAudienceExportJob takes no tags: Tags.of reaches the job, never an export."""
    assert app.resource(app.job)["Properties"]["tags"] == {"team": "ads", "cost-center": "42"}
    for export in of_type(app.template, EXPORT_TYPE).values():
        assert not {"tags", "Tags"} & set(export["Properties"])


def test_control_properties_of_an_export_that_does_not_wait(app: Synthesized) -> None:
    props = app.resource(app.quick)["Properties"]
    assert props["audienceGenerationJobArn"] == JOB_ARN
    assert props["WaitForCompletion"] == "false"
    assert props["TimeoutSeconds"] == "1200"
    assert props["ServiceTimeout"] == str(1200 + 30 + 300)  # the timeout, one poll, the handler's margin


def test_an_export_depends_on_its_job_and_the_template_has_a_creation_order(app: Synthesized) -> None:
    graph = dependencies(app.template)
    job_id = app.logical_id(app.job)
    creation = order(graph)  # raises on a cycle
    for export in (app.top, app.named, app.by_arn):
        assert job_id in graph[app.logical_id(export)]
        assert creation.index(job_id) < creation.index(app.logical_id(export))
    # An export of an ARN (given or imported) depends on no resource the provider serves.
    for export in (app.quick, app.of_imported):
        assert not [d for d in graph[app.logical_id(export)] if is_custom(app.template["Resources"][d]["Type"])]
    assert app.resource(app.by_arn)["Properties"]["audienceGenerationJobArn"] == _job_arn(app)


def test_the_handler_may_export_the_stacks_jobs_and_the_given_job_arns_only(app: Synthesized) -> None:
    statements = handler_statements(app)
    export = statements["ExportJobsOfTheseJobs"]
    assert export["Action"] == ["cleanrooms-ml:StartAudienceExportJob", "cleanrooms-ml:ListAudienceExportJobs"]
    # The stack's jobs by their type's pattern (their ARN would make the handler depend on them), once.
    assert export["Resource"] == [STACK_JOBS, JOB_ARN, OTHER_JOB_ARN]
    others = [s for sid, s in statements.items() if sid != "ExportJobsOfTheseJobs"]
    assert not [s for s in others if "cleanrooms-ml:StartAudienceExportJob" in s["Action"]]


def test_exports_of_an_imported_job_alone_grant_that_job_only() -> None:
    scope = stack()
    AudienceExportJob(scope, "Export", audience_generation_job=OTHER_JOB_ARN, audience_size=AudienceSize.absolute(10))
    statements = handler_statements(scope)
    assert set(statements) == {"WriteOwnLogs", "ExportJobsOfTheseJobs"}  # no job, no job statements
    assert statements["ExportJobsOfTheseJobs"]["Resource"] == OTHER_JOB_ARN


def test_attributes_are_getatts_of_the_spec_attributes(app: Synthesized) -> None:
    export_id = app.logical_id(app.top)
    known = {name for name, _member in specs().AUDIENCE_EXPORT_JOB.attributes}
    for token, attribute in [
        (app.top.status, "Status"),
        (app.top.output_location, "OutputLocation"),
        (app.top.name, "Name"),  # no name given: the one the handler made
    ]:
        assert app.scope.resolve(token) == {"Fn::GetAtt": [export_id, attribute]}
        assert attribute in known


def test_job_export_makes_a_child_of_the_job_served_by_the_same_provider(app: Synthesized) -> None:
    assert app.top.node.path == "Test/Lookalike/Top10Percent"
    assert app.top.provider is app.job.provider


# --------------------------------------------------------------------------------------------------
# Validation at synth: one ValidationError naming the path, the prop, the value and the rule.


@pytest.fixture(scope="module")
def scope() -> SimpleNamespace:
    """A stack with a job that waits and one that does not; rejected exports add nothing to it."""
    where = stack()
    return SimpleNamespace(stack=where, job=job(where), no_wait=job(where, "NoWait", wait_for_completion=False))


PATTERN = "'arn:aws[-a-z]*:cleanrooms-ml:[-a-z0-9]+:[0-9]{12}:audience-generation-job/[-a-zA-Z0-9_/.]+'"
BAD = [
    pytest.param(
        {"audience_size": AudienceSize.percentage(101)},
        ["audience_size.value = 101: must be at most 100 for a PERCENTAGE size (the service takes 1-100 percent)"],
        id="percentage-over-100",
    ),
    pytest.param(
        {"audience_size": AudienceSize.percentage(0)},
        ["audience_size.value = 0: must be between 1 and 20000000"],
        id="percentage-0",
    ),
    pytest.param(
        {"audience_size": AudienceSize.absolute(0)},
        ["audience_size.value = 0: must be between 1 and 20000000"],
        id="absolute-0",
    ),
    pytest.param(
        {"audience_size": AudienceSize.absolute(20_000_001)},
        ["audience_size.value = 20000001: must be between 1 and 20000000"],
        id="absolute-over-max",
    ),
    pytest.param(
        {"audience_size": AudienceSize("TOP", 5)},
        ["audience_size.type = 'TOP': must be one of ABSOLUTE, PERCENTAGE (from the installed service model)"],
        id="size-type",
    ),
    pytest.param(
        {"audience_size": 10},
        ["audience_size = 10: must be an AudienceSize, e.g. AudienceSize.percentage(10)"],
        id="size-not-an-audience-size",
    ),
    pytest.param(
        {"audience_generation_job": "not-an-arn"},
        [
            "audience_generation_job = 'not-an-arn': must be between 20 and 2048 characters long",
            f"audience_generation_job = 'not-an-arn': must match the pattern {PATTERN}",
        ],
        id="job-not-an-arn",
    ),
    pytest.param(
        {"audience_generation_job": MODEL_ARN},
        [f"audience_generation_job = {MODEL_ARN!r}: must match the pattern {PATTERN}"],
        id="job-arn-of-a-model",
    ),
    pytest.param(
        {"audience_generation_job": 42},
        ["audience_generation_job = 42: must be an IAudienceGenerationJob or a job ARN string"],
        id="job-not-a-job",
    ),
    pytest.param(
        {"name": "n" * 64},
        [f"name = {'n' * 64!r}: must be between 1 and 63 characters long"],
        id="name-64",
    ),
    pytest.param(
        {"description": "d" * 256},
        [f"description = {'d' * 256!r}: must be between 0 and 255 characters long"],
        id="description-256",
    ),
    pytest.param(
        {"timeout": Duration.hours(2)},
        [
            "timeout = '7200 seconds': must be at most 55 minutes (CloudFormation gives a custom resource one hour; "
            "the handler keeps 5 minutes of it for its own calls)"
        ],
        id="timeout-2h",
    ),
    pytest.param(
        {"wait_for_completion": "yes"},
        ["wait_for_completion = 'yes': must be True or False"],
        id="wait-not-bool",
    ),
]


@pytest.mark.parametrize(("props", "lines"), BAD)
def test_a_bad_prop_is_refused_naming_path_prop_value_and_rule(
    scope: SimpleNamespace, props: dict[str, Any], lines: list[str]
) -> None:
    given = {"audience_generation_job": scope.job, "audience_size": AudienceSize.percentage(10), **props}
    error = refused(scope.stack, "Bad", lambda: AudienceExportJob(scope.stack, "Bad", **given))
    assert str(error) == invalid_props_message("Test/Bad", lines)
    assert error.construct_path == "Test/Bad"


NOT_ACTIVE = (
    "audience_generation_job = 'Test/NoWait': is declared with wait_for_completion=False: its deploy step ends "
    "before the job is ACTIVE, and an export needs an ACTIVE job (give the job wait_for_completion=True, or export "
    "in a later deploy from its ARN)"
)


def test_exporting_a_job_that_does_not_wait_is_refused_with_the_reason(scope: SimpleNamespace) -> None:
    size = AudienceSize.percentage(10)
    error = refused(scope.no_wait, "Top", lambda: scope.no_wait.export("Top", audience_size=size))
    assert str(error) == invalid_props_message("Test/NoWait/Top", [NOT_ACTIVE])
    for given in (scope.no_wait, scope.no_wait.audience_generation_job_arn):  # the job, or its ARN token
        error = refused(
            scope.stack,
            "Top",
            lambda given=given: AudienceExportJob(
                scope.stack, "Top", audience_generation_job=given, audience_size=size
            ),
        )
        assert str(error) == invalid_props_message("Test/Top", [NOT_ACTIVE])


def test_several_problems_come_in_one_error_and_nothing_joins_the_tree(scope: SimpleNamespace) -> None:
    before = sorted(c.node.path for c in scope.stack.node.find_all())
    error = refused(
        scope.job,
        "Bad",
        lambda: scope.job.export(
            "Bad", audience_size=AudienceSize.percentage(150), name="n" * 64, timeout=Duration.seconds(10)
        ),
    )
    assert str(error) == invalid_props_message(
        "Test/Lookalike/Bad",
        [
            f"name = {'n' * 64!r}: must be between 1 and 63 characters long",
            "audience_size.value = 150: must be at most 100 for a PERCENTAGE size (the service takes 1-100 percent)",
            "timeout = '10 seconds': must be at least the poll interval (30 seconds)",
        ],
    )
    assert sorted(c.node.path for c in scope.stack.node.find_all()) == before
    # Nor did the handler role get the right to export: a rejected export grants nothing.
    assert "ExportJobsOfTheseJobs" not in {s.sid for s in scope.job.provider.statements.all()}
    # The id is free again for the corrected export.
    assert scope.job.export("Bad", audience_size=AudienceSize.percentage(15)).node.path == "Test/Lookalike/Bad"


def test_the_handler_applies_the_percentage_rule_to_what_it_receives() -> None:
    """The same rule at deploy time (a token value, or a template edited by hand): the handler's decoding."""
    import properties
    import service

    spec = specs().AUDIENCE_EXPORT_JOB
    shape = service.input_shape("cleanroomsml", spec.create)
    raw = {"audienceGenerationJobArn": JOB_ARN, "audienceSize": {"type": "PERCENTAGE", "value": "101"}}
    with pytest.raises(properties.PropertyError) as raised:
        properties.decode_request(spec, raw, shape)
    assert "property audienceSize.value (audience_size.value) = 101: must be at most 100" in str(raised.value)
    raw["audienceSize"] = {"type": "ABSOLUTE", "value": "101"}  # a number of users: any up to 20,000,000
    assert properties.decode_request(spec, raw, shape)["audienceSize"] == {"type": "ABSOLUTE", "value": 101}
