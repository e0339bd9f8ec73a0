"""What the construct puts in the template: one resource per job, a shared provider, least-privilege IAM.

The provider is a nested stack: its functions, roles, policies and state machine are in its own template
(``provider_template``); the stack's template holds one ``AWS::CloudFormation::Stack`` for it."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match

from cdk_cleanrooms_ml import RESOURCE_TYPE, AudienceGenerationJob, IAudienceGenerationJob
from tests.helpers import MODEL_ARN, ROLE_ARN, custom_resources, job, provider_template, s3_seed, stack, template


@pytest.fixture(scope="module")
def one_job() -> tuple[Stack, Any]:
    scope = stack()
    created = job(scope, tags={"team": "ads"})
    return scope, created


def _only(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert len(resources) == 1
    return next(iter(resources.values()))


def test_a_job_is_one_custom_resource_whose_properties_are_the_api_request(one_job: tuple[Stack, Any]) -> None:
    scope, created = one_job
    resource = _only(custom_resources(scope))
    props = resource["Properties"]
    assert set(props) == {"ServiceToken", "NamePrefix", "configuredAudienceModelArn", "seedAudience", "tags"}
    assert props["configuredAudienceModelArn"] == MODEL_ARN
    assert props["seedAudience"] == {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://seed-bucket/seed.jsonl"}}
    assert props["tags"] == {"team": "ads"}
    # The name is made at deploy time from the resolved request: the construct sends its start.
    assert props["NamePrefix"] == "Test-Lookalike"
    logical_id = next(iter(custom_resources(scope)))
    assert scope.resolve(created.name) == {"Fn::GetAtt": [logical_id, "Name"]}
    assert resource["DeletionPolicy"] == "Delete"
    assert resource["UpdateReplacePolicy"] == "Delete"


def test_provider_runs_two_python_handlers_on_the_newest_runtime(one_job: tuple[Stack, Any]) -> None:
    scope, _ = one_job
    provider = provider_template(scope)
    functions = provider.find_resources("AWS::Lambda::Function", {"Properties": {"Runtime": "python3.14"}})
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == ["entrypoints.is_complete", "entrypoints.on_event"]
    for function in functions.values():
        assert function["Properties"]["Environment"]["Variables"]["AWS_DATA_PATH"] == "/var/task/models"
    provider.resource_count_is("AWS::StepFunctions::StateMachine", 1)


def test_attributes_are_getatts_of_the_resource(one_job: tuple[Stack, Any]) -> None:
    scope, created = one_job
    logical_id = next(iter(custom_resources(scope)))
    for attribute, token in [
        ("AudienceGenerationJobArn", created.audience_generation_job_arn),
        ("Status", created.status),
        ("RecallMetric", created.recall_metric),
        ("RelevanceMetrics", created.relevance_metrics),
    ]:
        assert scope.resolve(token) == {"Fn::GetAtt": [logical_id, attribute]}


def _count(scope: Stack) -> int:
    return len(template(scope).to_json()["Resources"])


def test_a_hundred_jobs_cost_a_hundred_resources_and_one_provider() -> None:
    """In the stack: one resource per job, and one for the provider (its nested stack), whatever the jobs."""
    single, hundred = stack(), stack()
    job(single, "Job0")
    for i in range(100):
        job(hundred, f"Job{i}")
    assert len(custom_resources(hundred)) == 100
    assert _count(hundred) - _count(single) == 99  # each job after the first: exactly one resource
    assert _count(single) == 2  # the job, and the provider's one constant resource
    for scope, jobs in ((single, 1), (hundred, 100)):
        template(scope).resource_count_is("AWS::CloudFormation::Stack", 1)
        template(scope).resource_count_is("AWS::Lambda::Function", 0)
        assert _count(scope) == jobs + 1
    # The provider's nested stack: the same for 1 job as for 100.
    assert provider_template(hundred).to_json()["Resources"] == provider_template(single).to_json()["Resources"]
    provider_template(hundred).resource_count_is("AWS::StepFunctions::StateMachine", 1)
    provider_template(hundred).resource_count_is("AWS::Lambda::Function", 5)
    prefixes = {r["Properties"]["NamePrefix"] for r in custom_resources(hundred).values()}
    assert len(prefixes) == 100


def _handler_policy(scope: Stack) -> list[dict[str, Any]]:
    policies = provider_template(scope).find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("HandlerRole")}]}}
    )
    statements: list[dict[str, Any]] = _only(policies)["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_handler_role_is_least_privilege() -> None:
    scope = stack()
    role = iam.Role(scope, "Seed", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
    job(scope, "A", seed_audience=s3_seed(role))
    job(scope, "B", seed_audience=s3_seed(role))  # same role and model: no duplicate grants
    statements = {s["Sid"]: s for s in _handler_policy(scope)}
    # The model's partition and region, the stack's account: where the job lives.
    jobs = "arn:aws:cleanrooms-ml:us-east-1:111122223333:audience-generation-job/*"
    assert statements["StartJobsFromTheseModels"]["Action"] == "cleanrooms-ml:StartAudienceGenerationJob"
    assert statements["StartJobsFromTheseModels"]["Resource"] == [MODEL_ARN, jobs]
    assert statements["WatchTagAndDeleteJobs"]["Resource"] == jobs
    assert set(statements["WatchTagAndDeleteJobs"]["Action"]) == {
        "cleanrooms-ml:GetAudienceGenerationJob",
        "cleanrooms-ml:DeleteAudienceGenerationJob",
        "cleanrooms-ml:TagResource",
        "cleanrooms-ml:UntagResource",
        "cleanrooms-ml:ListTagsForResource",
    }
    pass_role = statements["PassRolesToCleanRoomsMl"]
    assert pass_role["Action"] == "iam:PassRole"
    # The seed role is in the stack, the handler role in the provider's nested stack: its ARN is passed down
    # as one of the nested stack's Parameters.
    parameter = pass_role["Resource"]["Ref"]
    (nested,) = template(scope).find_resources("AWS::CloudFormation::Stack").values()
    assert nested["Properties"]["Parameters"] == {
        parameter: {"Fn::GetAtt": [scope.get_logical_id(role.node.default_child), "Arn"]}  # type: ignore[arg-type]
    }
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "cleanrooms-ml.amazonaws.com"}}
    wildcard = [s for s in statements.values() if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcard] == ["cleanrooms-ml:ListAudienceGenerationJobs"]
    assert all(not a.startswith("iam:") or a == "iam:PassRole" for s in statements.values() for a in _actions(s))


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_pass_role_lists_every_seed_role_once() -> None:
    scope = stack()
    job(scope, "A", seed_audience=s3_seed("arn:aws:iam::111122223333:role/one"))
    job(scope, "B", seed_audience=s3_seed("arn:aws:iam::111122223333:role/two"))
    job(scope, "C", seed_audience=s3_seed("arn:aws:iam::111122223333:role/one"))
    statements = {s["Sid"]: s for s in _handler_policy(scope)}
    assert sorted(statements["PassRolesToCleanRoomsMl"]["Resource"]) == [
        "arn:aws:iam::111122223333:role/one",
        "arn:aws:iam::111122223333:role/two",
    ]


def _jobs_with_their_own_seed_roles(count: int) -> Stack:
    scope = stack()
    for i in range(count):
        role = iam.Role(scope, f"Seed{i}", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
        job(scope, f"Job{i}", seed_audience=s3_seed(role))
    return scope


def test_more_seed_roles_of_the_stack_than_a_nested_stack_takes_fail_at_synth() -> None:
    """Each seed role defined in the stack is one Parameter of the provider's nested stack: CloudFormation takes
    200 per template and would refuse the 201st only at deploy. Synth says so, naming the provider."""
    at_quota = _jobs_with_their_own_seed_roles(200)
    assert len(provider_template(at_quota).to_json()["Parameters"]) == 200  # synthesizes
    over = _jobs_with_their_own_seed_roles(201)
    app = over.node.root
    assert isinstance(app, App)
    with pytest.raises(Exception, match=r"Test/CleanRoomsMlProvider: the provider's nested stack needs 201 Param"):
        app.synth()


def test_control_properties_appear_only_when_not_default() -> None:
    scope = stack()
    job(scope, "Defaults")
    job(scope, "Custom", wait_for_completion=False, timeout=Duration.minutes(30), removal_policy=RemovalPolicy.RETAIN)
    resources = {k[:6]: v for k, v in custom_resources(scope).items()}
    assert not {"WaitForCompletion", "TimeoutSeconds", "RemovalPolicy"} & set(resources["Defaul"]["Properties"])
    custom = resources["Custom"]
    assert custom["Properties"]["WaitForCompletion"] == "false"
    assert custom["Properties"]["TimeoutSeconds"] == "1800"
    # CloudFormation stops waiting soon after the handler would: 30 min + one poll + the handler's 5 minutes.
    assert custom["Properties"]["ServiceTimeout"] == str(1800 + 30 + 300)
    assert "RemovalPolicy" not in custom["Properties"]  # CloudFormation's policies decide, not the handler
    # RETAIN keeps the job when the stack goes or replaces it, not when its own create is rolled back.
    assert custom["DeletionPolicy"] == "RetainExceptOnCreate" and custom["UpdateReplacePolicy"] == "Retain"
    assert "ServiceTimeout" not in resources["Defaul"]["Properties"]  # the default: CloudFormation's hour


def test_name_prefix_of_a_deep_path_leaves_room_for_the_digest() -> None:
    from constructs import Construct

    scope: Construct = stack()
    for i in range(8):
        scope = Construct(scope, f"AVeryLongConstructIdNumber{i}")
    job(scope)  # type: ignore[arg-type]
    prefix = _only(custom_resources(scope.node.scopes[1]))["Properties"]["NamePrefix"]  # type: ignore[arg-type]
    # Whole path segments only, the innermost ones, within 63 characters less "-" and the 10-character digest.
    assert prefix == "AVeryLongConstructIdNumber7-Lookalike"
    assert len(prefix) <= 63 - 11


def test_explicit_name_is_used_as_is() -> None:
    scope = stack()
    job(scope, name="spring-lookalike")
    assert _only(custom_resources(scope))["Properties"]["name"] == "spring-lookalike"


def test_stack_level_tags_reach_the_job_tags() -> None:
    scope = stack()
    job(scope, tags={"team": "ads"})
    Tags.of(scope).add("cost-center", "42")
    assert _only(custom_resources(scope))["Properties"]["tags"] == {"team": "ads", "cost-center": "42"}


def test_resource_type() -> None:
    assert RESOURCE_TYPE == "Custom::CleanRoomsMlAudienceGenerationJob"


def test_a_dependency_the_user_adds_to_the_providers_resources_survives() -> None:
    """The library never rewrites a DependsOn list: cfn-lint's W3005 is explained in Metadata instead."""
    scope = stack()
    created = job(scope)
    # In the provider's nested stack, beside its functions (from the stack, CDK would make the nested stack
    # resource depend on it instead).
    extra = iam.Role(created.provider, "Extra", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    functions = [c for c in created.provider.node.find_all() if c.node.id == "OnEvent"]
    functions[0].node.add_dependency(extra)
    resources = provider_template(scope).find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "entrypoints.on_event"}}
    )
    (on_event,) = resources.values()
    assert created.provider.get_logical_id(extra.node.default_child) in on_event["DependsOn"]  # type: ignore[arg-type]
    assert on_event["Metadata"]["cfn-lint"] == {"config": {"ignore_checks": ["W3005"]}}


def test_an_imported_job_grants_read_and_export_on_its_arn() -> None:
    scope = stack()
    arn = f"arn:aws:cleanrooms-ml:us-east-1:111122223333:audience-generation-job/{'a' * 36}"
    imported = AudienceGenerationJob.from_audience_generation_job_arn(scope, "Imported", arn)
    assert isinstance(imported, IAudienceGenerationJob) and imported.waits_for_completion
    reader = iam.Role(scope, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    imported.grant_read(reader)
    imported.grant_start_export(reader)
    (policy,) = template(scope).find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    granted = {a: s["Resource"] for s in statements for a in _actions(s)}
    assert granted == {
        "cleanrooms-ml:GetAudienceGenerationJob": arn,
        "cleanrooms-ml:StartAudienceExportJob": arn,
        "cleanrooms-ml:ListAudienceExportJobs": arn,
    }


def test_a_job_of_the_app_grants_on_its_arn_attribute() -> None:
    scope = stack()
    created = job(scope)
    assert isinstance(created, IAudienceGenerationJob)
    reader = iam.Role(scope, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    created.grant_read(reader)
    policies = template(scope).find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("Reader")}]}}
    )
    (policy,) = policies.values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    logical_id = next(iter(custom_resources(scope)))
    assert statement["Resource"] == {"Fn::GetAtt": [logical_id, "AudienceGenerationJobArn"]}


@pytest.mark.parametrize(
    "arn",
    ["not-an-arn", "arn:aws:s3:::bucket", "arn:aws:cleanrooms-ml:us-east-1:111122223333:configured-audience-model/x"],
)
def test_importing_something_that_is_not_a_job_arn_fails_naming_it(arn: str) -> None:
    from cdk_cleanrooms_ml import ValidationError

    scope = stack()
    with pytest.raises(ValidationError, match="Test/Imported: arn = .*must be an audience generation job ARN"):
        AudienceGenerationJob.from_audience_generation_job_arn(scope, "Imported", arn)
