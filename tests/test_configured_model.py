"""``ConfiguredAudienceModel`` and ``AudienceDestination`` at synth: one resource whose properties are the
CreateConfiguredAudienceModel request plus its resource policy, the user guide's segment-writer role, least
privilege for the handler, and a lookalike pipeline in one stack that shares one provider and has no cycle."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, CfnResource, Environment, RemovalPolicy, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from cdk_cleanrooms_ml import (
    AudienceDestination,
    AudienceSize,
    AudienceSizeConfig,
    AudienceSizeType,
    ConfiguredAudienceModel,
    SharedAudienceMetrics,
)
from cdk_cleanrooms_ml.destination import DESTINATION_ROLE_ID_PREFIX
from cdk_cleanrooms_ml.rehearsal.template import dependencies, is_custom, order
from cdk_cleanrooms_ml.service_model import specs
from tests.helpers import (
    ACCOUNT,
    AUDIENCE_MODEL_ARN,
    MEMBERSHIP_ID,
    MODEL_ARN,
    REGION,
    RESERVED_TAG,
    RESERVED_TAG_LINE,
    ROLE_ARN,
    SEGMENT_ROLE_ARN,
    Synthesized,
    handler_statements,
    invalid_props_message,
    job,
    of_type,
    refused,
    resolve_pseudo,
    stack,
    stack_arn,
    synth_error_with_tags_of,
)

MODEL_TYPE = "Custom::CleanRoomsMlConfiguredAudienceModel"
OTHER_AUDIENCE_MODEL_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/am-2"
PARTNER, OTHER_PARTNER = "444455556666", "777788889999"
STACK_MODELS = stack_arn("cleanrooms-ml", "configured-audience-model/*")
STACK_JOBS = stack_arn("cleanrooms-ml", "audience-generation-job/*")


def model(scope: Any, id: str = "Configured", **kwargs: Any) -> ConfiguredAudienceModel:
    kwargs.setdefault("audience_model_arn", AUDIENCE_MODEL_ARN)
    kwargs.setdefault("destination", AudienceDestination(s3_uri="s3://partner-segments/out/", role=SEGMENT_ROLE_ARN))
    kwargs.setdefault("shared_audience_metrics", [SharedAudienceMetrics.ALL])
    return ConfiguredAudienceModel(scope, id, **kwargs)


@pytest.fixture(scope="module")
def app() -> Synthesized:
    """Three configured models (the library's segment writer, a role ARN, a role of the app) and a job on one."""
    scope = stack()
    made = Synthesized(scope=scope, bucket=s3.Bucket(scope, "Segments"))
    made.model = model(
        scope,
        destination=AudienceDestination.from_bucket(made.bucket, prefix="segments/"),
        audience_size_config=AudienceSizeConfig(type=AudienceSizeType.PERCENTAGE, bins=[5, 10, 20]),
        min_matching_seed_size=1_000,
        child_resource_tag_on_create_policy="FROM_PARENT_RESOURCE",
        description="lookalikes of our buyers",
        tags={"team": "ads"},
    )
    for account in (PARTNER, PARTNER, OTHER_PARTNER):  # the same account twice: one statement
        made.model.grant_start_audience_generation(account)
    made.named = model(scope, "Named", shared_audience_metrics=["NONE"], name="lookalike-model")
    made.named_retained = model(scope, "Retained", removal_policy=RemovalPolicy.RETAIN)
    made.writer = iam.Role(scope, "Writer", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
    made.with_role = model(
        scope,
        "WithRole",
        audience_model_arn=OTHER_AUDIENCE_MODEL_ARN,
        destination=AudienceDestination(s3_uri="s3://x/y/", role=made.writer),
    )
    made.job = job(scope, configured_audience_model_arn=made.model.configured_audience_model_arn)
    Tags.of(made.model).add("cost-center", "42")
    return made.synthesize()


def _segment_writers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    roles = of_type(template, "AWS::IAM::Role")
    return {k: r for k, r in roles.items() if k.startswith(DESTINATION_ROLE_ID_PREFIX)}


def _statements(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]}


def test_a_model_is_one_resource_whose_properties_are_the_create_request(app: Synthesized) -> None:
    resource = app.resource(app.model)
    assert resource["Type"] == MODEL_TYPE
    props = dict(resource["Properties"])
    policy = props.pop("configuredAudienceModelPolicy")  # below: a JSON string CloudFormation completes
    (writer_id,) = _segment_writers(app.template)
    assert props == {
        "ServiceToken": app.resource(app.job)["Properties"]["ServiceToken"],
        "audienceModelArn": AUDIENCE_MODEL_ARN,
        "outputConfig": {
            "destination": {
                "s3Destination": {
                    "s3Uri": {"Fn::Join": ["", ["s3://", {"Ref": app.logical_id(app.bucket)}, "/segments/"]]}
                }
            },
            "roleArn": {"Fn::GetAtt": [writer_id, "Arn"]},
        },
        "sharedAudienceMetrics": ["ALL"],
        "audienceSizeConfig": {"audienceSizeType": "PERCENTAGE", "audienceSizeBins": [5, 10, 20]},
        "minMatchingSeedSize": 1_000,
        "childResourceTagOnCreatePolicy": "FROM_PARENT_RESOURCE",
        "description": "lookalikes of our buyers",
        "tags": {"team": "ads", "cost-center": "42"},  # its own and those of Tags.of
        "NamePrefix": "Test-Configured",
    }
    assert isinstance(policy, dict) and "Fn::Join" in policy
    assert resource["DeletionPolicy"] == "Delete" and resource["UpdateReplacePolicy"] == "Delete"
    assert [c for c in app.model.node.find_all() if isinstance(c, CfnResource)] == [app.model.resource]
    assert len(of_type(app.template, MODEL_TYPE)) == 4


def test_an_explicit_name_is_sent_without_a_prefix_and_no_grant_sends_no_policy(app: Synthesized) -> None:
    assert app.resource(app.named)["Properties"] == {
        "ServiceToken": app.resource(app.job)["Properties"]["ServiceToken"],
        "audienceModelArn": AUDIENCE_MODEL_ARN,
        "outputConfig": {
            "destination": {"s3Destination": {"s3Uri": "s3://partner-segments/out/"}},
            "roleArn": SEGMENT_ROLE_ARN,
        },
        "sharedAudienceMetrics": ["NONE"],
        "name": "lookalike-model",
    }
    assert app.named.name == "lookalike-model"


def test_retain_keeps_the_model_unless_its_own_create_is_rolled_back(app: Synthesized) -> None:
    resource = app.resource(app.named_retained)
    assert resource["DeletionPolicy"] == "RetainExceptOnCreate" and resource["UpdateReplacePolicy"] == "Retain"
    assert "RemovalPolicy" not in resource["Properties"]  # CloudFormation's policies decide, not the handler


def test_the_resource_policy_follows_the_user_guides_cross_account_statements(app: Synthesized) -> None:
    """One statement per account (granting twice adds nothing): StartAudienceGenerationJob on the model itself
    (the placeholder the handler replaces with the model's ARN) and on the jobs of the model's account."""
    written = app.resource(app.model)["Properties"]["configuredAudienceModelPolicy"]
    self_arn = specs().SELF_ARN
    assert self_arn == "${cdk-cleanrooms-ml:self-arn}"

    def statement(index: int, account: str, partition: str) -> dict[str, Any]:
        jobs = f"arn:{partition}:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/*"
        return {
            "Sid": f"StartAudienceGeneration{index}",
            "Effect": "Allow",
            "Principal": {"AWS": account},
            "Action": ["cleanrooms-ml:StartAudienceGenerationJob"],
            "Resource": [self_arn, jobs],
        }

    for partition in ("aws", "aws-cn"):  # the jobs' ARN is in the stack's partition, whichever it is
        document = json.loads(resolve_pseudo(written, partition=partition))
        assert document == {
            "Version": "2012-10-17",
            "Statement": [statement(1, PARTNER, partition), statement(2, OTHER_PARTNER, partition)],
        }
    assert "configuredAudienceModelPolicy" not in app.resource(app.with_role)["Properties"]


def test_an_account_from_a_parameter_is_granted_and_a_bad_account_refused() -> None:
    scope = stack()
    partner = CfnParameter(scope, "Partner")
    created = model(scope)
    created.grant_start_audience_generation(partner.value_as_string)
    (resource,) = of_type(Template.from_stack(scope).to_json(), MODEL_TYPE).values()
    parts = resource["Properties"]["configuredAudienceModelPolicy"]["Fn::Join"][1]
    assert {"Ref": "Partner"} in parts
    for bad in ("123", "1111222233334", "11112222333a", 111122223333):
        with pytest.raises(Exception) as raised:
            created.grant_start_audience_generation(bad)  # type: ignore[arg-type]
        assert str(raised.value) == invalid_props_message(
            "Test/Configured", [f"account = {bad!r}: must be a 12-digit AWS account id"]
        )


def test_the_segment_writer_role_is_the_user_guides(app: Synthesized) -> None:
    ((writer_id, writer),) = _segment_writers(app.template).items()
    (trust,) = writer["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Principal": {"Service": "cleanrooms-ml.amazonaws.com"},
        "Condition": {
            "StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT},
            "ArnLikeIfExists": {
                "aws:SourceArn": [
                    {
                        "Fn::Join": [
                            "",
                            ["arn:", {"Ref": "AWS::Partition"}, f":cleanrooms-ml:{REGION}:{ACCOUNT}:{kind}/*"],
                        ]
                    }
                    for kind in ("configured-audience-model", "audience-generation-job")
                ]
            },
        },
    }
    bucket_arn = {"Fn::GetAtt": [app.logical_id(app.bucket), "Arn"]}
    owner = {"StringEquals": {"s3:ResourceAccount": ACCOUNT}}
    assert _statements(writer) == {  # not encrypted with a KMS key: no key statement
        "WriteSegments": {
            "Sid": "WriteSegments",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": {"Fn::Join": ["", [bucket_arn, "/segments/*"]]},  # under the prefix only
            "Condition": owner,
        },
        "LocateDestinationBucket": {
            "Sid": "LocateDestinationBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
            "Resource": bucket_arn,
            "Condition": owner,
        },
    }
    assert (
        not [  # the role has no other policy
            p
            for p in of_type(app.template, "AWS::IAM::Policy").values()
            if {"Ref": writer_id} in p["Properties"]["Roles"]
        ]
    )


def test_a_kms_encrypted_bucket_adds_the_key_statement_for_the_prefix() -> None:
    made = Synthesized(scope=stack())
    made.key = kms.Key(made.scope, "Key")
    made.bucket = s3.Bucket(made.scope, "Segments", encryption_key=made.key)
    model(made.scope, destination=AudienceDestination.from_bucket(made.bucket, prefix="out/"))
    ((_writer_id, writer),) = _segment_writers(made.synthesize().template).items()
    bucket_arn = {"Fn::GetAtt": [made.logical_id(made.bucket), "Arn"]}
    assert _statements(writer)["EncryptSegments"] == {
        "Sid": "EncryptSegments",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": {"Fn::GetAtt": [made.logical_id(made.key), "Arn"]},
        "Condition": {
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [{"Fn::Join": ["", [bucket_arn, "/out/*"]]}, bucket_arn]}
        },
    }
    assert set(_statements(writer)) == {"WriteSegments", "LocateDestinationBucket", "EncryptSegments"}


def test_an_imported_bucket_takes_the_given_key_and_owner_and_one_location_gets_one_role() -> None:
    made = Synthesized(scope=stack())
    bucket = s3.Bucket.from_bucket_name(made.scope, "Theirs", "partner-segments")
    key_arn = f"arn:aws:kms:{REGION}:{PARTNER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    destination = AudienceDestination.from_bucket(bucket, prefix="out/", encryption_key=key_arn, bucket_owner=PARTNER)
    models = [model(made.scope, id, destination=destination) for id in ("First", "Second")]
    ((writer_id, writer),) = _segment_writers(made.synthesize().template).items()
    granted = _statements(writer)
    assert granted["WriteSegments"]["Condition"] == {"StringEquals": {"s3:ResourceAccount": PARTNER}}
    assert granted["EncryptSegments"]["Resource"] == key_arn
    for created in models:
        props = made.resource(created)["Properties"]
        assert props["outputConfig"]["roleArn"] == {"Fn::GetAtt": [writer_id, "Arn"]}
        assert props["outputConfig"]["destination"] == {"s3Destination": {"s3Uri": "s3://partner-segments/out/"}}


def test_the_segment_writer_is_made_in_the_models_stack_not_in_the_buckets() -> None:
    app = App()
    env = Environment(account=ACCOUNT, region=REGION)
    data, models = Stack(app, "Data", env=env), Stack(app, "Models", env=env)
    bucket = s3.Bucket(data, "Segments")
    model(models, destination=AudienceDestination.from_bucket(bucket, prefix="segments/"))
    assert _segment_writers(Template.from_stack(data).to_json()) == {}
    assert len(_segment_writers(Template.from_stack(models).to_json())) == 1


def test_a_given_role_is_used_as_it_is_and_no_role_is_made(app: Synthesized) -> None:
    assert app.resource(app.named)["Properties"]["outputConfig"]["roleArn"] == SEGMENT_ROLE_ARN
    assert app.resource(app.with_role)["Properties"]["outputConfig"] == {
        "destination": {"s3Destination": {"s3Uri": "s3://x/y/"}},
        "roleArn": {"Fn::GetAtt": [app.logical_id(app.writer), "Arn"]},
    }
    assert len(_segment_writers(app.template)) == 1  # the from_bucket model's only


def test_from_bucket_with_a_role_of_the_app_grants_it_the_writes() -> None:
    made = Synthesized(scope=stack())
    bucket = s3.Bucket(made.scope, "Segments")
    made.mine = iam.Role(made.scope, "Mine", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
    model(made.scope, destination=AudienceDestination.from_bucket(bucket, prefix="segments/", role=made.mine))
    template = made.synthesize().template
    assert _segment_writers(template) == {}
    mine = {"Ref": made.logical_id(made.mine)}
    (policy,) = [p for p in of_type(template, "AWS::IAM::Policy").values() if p["Properties"]["Roles"] == [mine]]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["WriteSegments"]["Resource"]["Fn::Join"][1][-1] == "/segments/*"
    assert set(statements) == {"WriteSegments", "LocateDestinationBucket"}


def test_the_handler_may_create_only_from_the_given_models_and_pass_only_the_destination_roles(
    app: Synthesized,
) -> None:
    statements = handler_statements(app)
    create = statements["CreateConfiguredModelsFromTheseModels"]
    assert create["Action"] == [
        "cleanrooms-ml:CreateConfiguredAudienceModel",
        "cleanrooms-ml:UpdateConfiguredAudienceModel",
        "cleanrooms-ml:GetAudienceModel",  # it must be ACTIVE
    ]
    assert create["Resource"] == [AUDIENCE_MODEL_ARN, OTHER_AUDIENCE_MODEL_ARN]
    manage = statements["ManageConfiguredModels"]
    assert manage["Resource"] == STACK_MODELS  # the stack's configured models, by their type's pattern
    assert sorted(manage["Action"]) == sorted(
        f"cleanrooms-ml:{a}"
        for a in (
            "GetConfiguredAudienceModel",
            "UpdateConfiguredAudienceModel",
            "DeleteConfiguredAudienceModel",
            "PutConfiguredAudienceModelPolicy",
            "GetConfiguredAudienceModelPolicy",
            "DeleteConfiguredAudienceModelPolicy",
            "TagResource",
            "UntagResource",
            "ListTagsForResource",
        )
    )
    assert statements["FindConfiguredModelsByName"] == {
        "Sid": "FindConfiguredModelsByName",
        "Effect": "Allow",
        "Action": "cleanrooms-ml:ListConfiguredAudienceModels",
        "Resource": "*",
    }
    (writer_id,) = _segment_writers(app.template)
    pass_role = statements["PassRolesToCleanRoomsMl"]
    assert pass_role["Action"] == "iam:PassRole"
    assert pass_role["Resource"] == [
        {"Fn::GetAtt": [writer_id, "Arn"]},
        SEGMENT_ROLE_ARN,
        {"Fn::GetAtt": [app.logical_id(app.writer), "Arn"]},
        ROLE_ARN,  # the job's seed role
    ]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "cleanrooms-ml.amazonaws.com"}}


def test_a_job_on_a_model_of_the_stack_depends_on_it_and_starts_on_the_stacks_models(app: Synthesized) -> None:
    model_arn = {"Fn::GetAtt": [app.logical_id(app.model), "ConfiguredAudienceModelArn"]}
    assert app.resource(app.job)["Properties"]["configuredAudienceModelArn"] == model_arn
    graph = dependencies(app.template)
    assert app.logical_id(app.model) in graph[app.logical_id(app.job)]
    creation = order(graph)
    assert creation.index(app.logical_id(app.model)) < creation.index(app.logical_id(app.job))
    statements = handler_statements(app)
    # Granted by the patterns of the stack's models and jobs, never by the model's ARN (that would be a cycle).
    assert statements["StartJobsFromTheseModels"]["Resource"] == [STACK_MODELS, STACK_JOBS]
    assert statements["WatchTagAndDeleteJobs"]["Resource"] == STACK_JOBS


def test_attributes_are_getatts_of_the_spec_attributes(app: Synthesized) -> None:
    known = {name for name, _member in specs().CONFIGURED_AUDIENCE_MODEL.attributes}
    for token, attribute in [
        (app.model.configured_audience_model_arn, "ConfiguredAudienceModelArn"),
        (app.model.name, "Name"),  # no name given: the one the handler made
    ]:
        assert app.scope.resolve(token) == {"Fn::GetAtt": [app.logical_id(app.model), attribute]}
        assert attribute in known


# --------------------------------------------------------------------------------------------------
# A lookalike pipeline in one stack: one provider, no cycle, a handler that depends on nothing it serves.


def _pipeline(scope: Stack, *, full: bool) -> None:
    bucket = s3.Bucket(scope, "Segments")
    if not full:
        job(scope)
        return
    configured = model(scope, destination=AudienceDestination.from_bucket(bucket, prefix="segments/"))
    configured.grant_start_audience_generation(PARTNER)
    configured.associate("Assoc", membership_id=MEMBERSHIP_ID)
    generation = job(scope, configured_audience_model_arn=configured.configured_audience_model_arn)
    generation.export("Top10Percent", audience_size=AudienceSize.percentage(10))


@pytest.fixture(scope="module")
def pipelines() -> tuple[dict[str, Any], dict[str, Any]]:
    """A stack with a job, and one with the whole pipeline: model, association, job on the model, export."""
    templates = []
    for full in (False, True):
        scope = stack()
        _pipeline(scope, full=full)
        templates.append(Template.from_stack(scope).to_json())
    return templates[0], templates[1]


def test_the_pipeline_adds_its_resources_and_no_provider(pipelines: tuple[dict[str, Any], dict[str, Any]]) -> None:
    base, full = pipelines
    added = Counter(r["Type"] for r in full["Resources"].values())
    added.subtract(Counter(r["Type"] for r in base["Resources"].values()))
    assert {t: n for t, n in added.items() if n} == {
        "Custom::CleanRoomsMlConfiguredAudienceModel": 1,
        "Custom::CleanRoomsMlConfiguredAudienceModelAssociation": 1,
        "Custom::CleanRoomsMlAudienceExportJob": 1,
        "AWS::IAM::Role": 1,  # the segment writer of AudienceDestination.from_bucket
    }
    service_tokens = {
        json.dumps(r["Properties"]["ServiceToken"]) for k, r in full["Resources"].items() if is_custom(r["Type"])
    }
    assert len(service_tokens) == 1


def test_the_pipeline_has_no_cycle_and_the_provider_depends_on_nothing_it_serves(
    pipelines: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _base, full = pipelines
    graph = dependencies(full)
    order(graph)  # raises on a dependency cycle
    served = {k for k, r in full["Resources"].items() if is_custom(r["Type"])}
    provider = [k for k in full["Resources"] if k.startswith("CleanRoomsMlProvider")]
    # The provider is a nested stack: its handler role's policy is inside; in this template it is one resource,
    # whose Parameters are what it takes from the stack.
    assert [full["Resources"][k]["Type"] for k in provider] == ["AWS::CloudFormation::Stack"]

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for dependency in graph[todo.pop()] - seen:
                seen.add(dependency)
                todo.append(dependency)
        return seen

    for logical_id in provider:
        assert not reachable(logical_id) & served, logical_id


# --------------------------------------------------------------------------------------------------
# Validation at synth


@pytest.fixture(scope="module")
def scope() -> Stack:
    """A stack that rejected models leave empty."""
    return stack()


ARN_PATTERN = "'arn:aws[-a-z]*:cleanrooms-ml:[-a-z0-9]+:[0-9]{12}:audience-model/[-a-zA-Z0-9_/.]+'"
PERCENT_RULE = "must be at most 100 for a PERCENTAGE size (the service takes 1-100 percent)"
BAD = [
    pytest.param(
        {"audience_size_config": AudienceSizeConfig(type=AudienceSizeType.ABSOLUTE, bins=list(range(1, 27)))},
        ["audience_size_config.bins = '26 items': must be between 1 and 25 items"],
        id="bins-26",
    ),
    pytest.param(
        {"audience_size_config": AudienceSizeConfig(type=AudienceSizeType.ABSOLUTE, bins=[])},
        ["audience_size_config.bins = '0 items': must be between 1 and 25 items"],
        id="bins-0",
    ),
    pytest.param(
        {"audience_size_config": AudienceSizeConfig(type=AudienceSizeType.PERCENTAGE, bins=[0, 10, 101])},
        [
            "audience_size_config.bins[0] = 0: must be between 1 and 20000000",
            f"audience_size_config.bins[2] = 101: {PERCENT_RULE}",
        ],
        id="bins-percent-out-of-range",
    ),
    pytest.param(
        {"audience_size_config": AudienceSizeConfig(type=AudienceSizeType.ABSOLUTE, bins=[20_000_001])},
        ["audience_size_config.bins[0] = 20000001: must be between 1 and 20000000"],
        id="bins-absolute-over-max",
    ),
    pytest.param(
        {"audience_size_config": AudienceSizeConfig(type="SOME", bins=5)},  # type: ignore[arg-type]
        [
            "audience_size_config.bins = 5: must be a list",
            "audience_size_config.type = 'SOME': must be one of ABSOLUTE, PERCENTAGE (from the installed service "
            "model)",
        ],
        id="size-config-bad-members",
    ),
    pytest.param(
        {"audience_size_config": {"type": "PERCENTAGE", "bins": [5]}},
        ["audience_size_config = {'type': 'PERCENTAGE', 'bins': [5]}: must be an AudienceSizeConfig"],
        id="size-config-a-dict",
    ),
    pytest.param(
        {"min_matching_seed_size": 24},
        ["min_matching_seed_size = 24: must be between 25 and 500000"],
        id="seed-size-24",
    ),
    pytest.param(
        {"min_matching_seed_size": 500_001},
        ["min_matching_seed_size = 500001: must be between 25 and 500000"],
        id="seed-size-over-max",
    ),
    pytest.param(
        {"audience_model_arn": MODEL_ARN},
        [f"audience_model_arn = {MODEL_ARN!r}: must match the pattern {ARN_PATTERN}"],
        id="audience-model-arn-of-a-configured-model",
    ),
    pytest.param(
        {"audience_model_arn": None},
        ["audience_model_arn = None: is required"],
        id="audience-model-arn-missing",
    ),
    pytest.param(
        {"name": "n" * 64},
        [f"name = {'n' * 64!r}: must be between 1 and 63 characters long"],
        id="name-64",
    ),
    pytest.param({"tags": RESERVED_TAG}, [RESERVED_TAG_LINE], id="reserved-tag"),
    pytest.param(
        {"shared_audience_metrics": SharedAudienceMetrics.ALL},
        ["shared_audience_metrics = SharedAudienceMetrics(value='ALL'): must be a list: [SharedAudienceMetrics.ALL]"],
        id="metrics-not-a-list",
    ),
    pytest.param(
        {"shared_audience_metrics": ["SOME"]},
        ["shared_audience_metrics[0] = 'SOME': must be one of ALL, NONE (from the installed service model)"],
        id="metrics-unknown",
    ),
    pytest.param(
        {"shared_audience_metrics": [SharedAudienceMetrics.ALL, SharedAudienceMetrics.NONE]},
        ["shared_audience_metrics = '2 items': must be between 1 and 1 items"],
        id="metrics-two",
    ),
    pytest.param(
        {"child_resource_tag_on_create_policy": "ALWAYS"},
        [
            "child_resource_tag_on_create_policy = 'ALWAYS': must be one of FROM_PARENT_RESOURCE, NONE (from the "
            "installed service model)"
        ],
        id="tag-on-create-policy",
    ),
    pytest.param(
        {"destination": "s3://bucket/segments/"},
        ["destination = 's3://bucket/segments/': must be an AudienceDestination"],
        id="destination-a-string",
    ),
    pytest.param(
        {"destination": AudienceDestination(s3_uri="https://bucket/segments/", role="segment-writer")},
        [
            "destination.s3_uri = 'https://bucket/segments/': must match the pattern 's3://.+'",
            "destination.role = 'segment-writer': must be between 20 and 2048 characters long",
            "destination.role = 'segment-writer': must match the pattern 'arn:aws[-a-z]*:iam::[0-9]{12}:role/.+'",
        ],
        id="destination-bad-members",
    ),
    pytest.param(
        {"removal_policy": RemovalPolicy.SNAPSHOT},
        [
            "removal_policy = <RemovalPolicy.SNAPSHOT: 'SNAPSHOT'>: must be RemovalPolicy.DESTROY or "
            "RemovalPolicy.RETAIN"
        ],
        id="removal-policy-snapshot",
    ),
]


@pytest.mark.parametrize(("props", "lines"), BAD)
def test_a_bad_prop_is_refused_naming_path_prop_value_and_rule(
    scope: Stack, props: dict[str, Any], lines: list[str]
) -> None:
    error = refused(scope, "Bad", lambda: model(scope, "Bad", **props))
    assert str(error) == invalid_props_message("Test/Bad", lines)
    assert scope.node.children == []  # nor the provider, nor a role


def test_several_problems_come_in_one_error_and_a_from_bucket_role_is_not_made(scope: Stack) -> None:
    bucket = s3.Bucket.from_bucket_name(scope, "Imported", "segments-bucket")
    error = refused(
        scope,
        "Bad",
        lambda: model(
            scope,
            "Bad",
            destination=AudienceDestination.from_bucket(bucket, prefix="segments/"),
            min_matching_seed_size=10,
            name="n" * 64,
            tags=RESERVED_TAG,
        ),
    )
    assert str(error) == invalid_props_message(
        "Test/Bad",
        [
            "min_matching_seed_size = 10: must be between 25 and 500000",
            f"name = {'n' * 64!r}: must be between 1 and 63 characters long",
            RESERVED_TAG_LINE,
        ],
    )
    assert [c.node.id for c in scope.node.children] == ["Imported"]
    scope.node.try_remove_child("Imported")


def test_a_reserved_tag_from_tags_of_is_refused_at_synth() -> None:
    message = synth_error_with_tags_of(model, RESERVED_TAG)
    assert f"Tagged/Configured: {RESERVED_TAG_LINE}" in message
