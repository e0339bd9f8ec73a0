"""TrainingDataset: the CfnTrainingDataset it renders, the user guide's training-data role, synth-time validation
(every rule, all problems at once), tags, the derived name, and the scanners (cdk-nag, cfn-lint) on it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.loaders
import pytest
from aws_cdk import App, CfnParameter, Environment, RemovalPolicy, Stack, Tags, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from cdk_cleanrooms_ml import Column, ColumnType, TrainingDataset, ValidationError, training_dataset
from tests.helpers import ACCOUNT, REGION

COLUMNS = [
    Column("user_id", ColumnType.USER_ID),
    Column("item_id", ColumnType.ITEM_ID),
    Column("ts", ColumnType.TIMESTAMP),
    Column("country", ColumnType.CATEGORICAL_FEATURE),
]
PARTITION = {"Ref": "AWS::Partition"}


def new_stack(app: App | None = None, id: str = "Data", region: str = REGION) -> Stack:
    return Stack(app or App(), id, env=Environment(account=ACCOUNT, region=region))


def dataset(stack: Stack, id: str = "Interactions", **kwargs: Any) -> TrainingDataset:
    kwargs.setdefault("database_name", "ads")
    kwargs.setdefault("table_name", "interactions")
    kwargs.setdefault("columns", COLUMNS)
    if kwargs.get("role") is None:
        kwargs.setdefault("data_bucket", s3.Bucket.from_bucket_name(stack, f"{id}Bucket", "training-data"))
    return TrainingDataset(stack, id, **kwargs)


def resources(stack: Stack, type_name: str) -> dict[str, Any]:
    found: dict[str, Any] = Template.from_stack(stack).find_resources(type_name)
    return found


def only_dataset(stack: Stack) -> dict[str, Any]:
    ((_id, resource),) = resources(stack, "AWS::CleanRoomsML::TrainingDataset").items()
    return dict(resource)


def arn(service: str, rest: str) -> dict[str, Any]:
    return {"Fn::Join": ["", ["arn:", PARTITION, f":{service}:{REGION}:{rest}"]]}


def glue(rest: str, account: str = ACCOUNT) -> dict[str, Any]:
    return arn("glue", f"{account}:{rest}")


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def glue_statements(database: str = "ads", table: str = "interactions", account: str = ACCOUNT) -> list[dict[str, Any]]:
    read_on = [
        glue(f"database/{database}", account),
        glue(f"table/{database}/{table}", account),
        glue("catalog", account),
    ]
    if database != "default":
        read_on.append(glue("database/default", account))
    return [
        {
            "Action": [
                "glue:GetDatabase",
                "glue:GetDatabases",
                "glue:GetTable",
                "glue:GetTables",
                "glue:GetPartitions",
                "glue:GetPartition",
                "glue:BatchGetPartition",
                "glue:GetUserDefinedFunctions",
            ],
            "Effect": "Allow",
            "Resource": read_on,
            "Sid": "ReadGlueTable",
        },
        {
            "Action": "glue:CreateDatabase",
            "Effect": "Allow",
            "Resource": glue("database/default", account),
            "Sid": "CreateDefaultGlueDatabase",
        },
    ]


def s3_statements(bucket_arn: Any, objects: Any) -> list[dict[str, Any]]:
    owner = {"StringEquals": {"s3:ResourceAccount": ACCOUNT}}
    return [
        {
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Condition": owner,
            "Effect": "Allow",
            "Resource": bucket_arn,
            "Sid": "LocateTrainingDataBucket",
        },
        {
            "Action": "s3:GetObject",
            "Condition": owner,
            "Effect": "Allow",
            "Resource": objects,
            "Sid": "ReadTrainingDataObjects",
        },
    ]


def invalid(stack: Stack, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        dataset(stack, "Bad", **kwargs)
    assert stack.node.try_find_child("Bad") is None  # a failed construction leaves nothing in the tree
    return raised.value


def rules(error: ValidationError) -> list[tuple[str, str]]:
    return [(issue.prop, issue.rule) for issue in error.issues]


# --------------------------------------------------------------------------------------------------
# The template


def test_defaults_render_the_resource_and_the_user_guides_training_data_role() -> None:
    stack = new_stack()
    made = dataset(stack, tags={"team": "data"})
    (role_id,) = resources(stack, "AWS::IAM::Role")
    resource = only_dataset(stack)
    name = resource["Properties"].pop("Name")
    assert resource == {
        "Type": "AWS::CleanRoomsML::TrainingDataset",
        "Properties": {
            "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
            "Tags": [{"Key": "team", "Value": "data"}],
            "TrainingData": [
                {
                    "InputConfig": {
                        "DataSource": {"GlueDataSource": {"DatabaseName": "ads", "TableName": "interactions"}},
                        "Schema": [
                            {"ColumnName": "user_id", "ColumnTypes": ["USER_ID"]},
                            {"ColumnName": "item_id", "ColumnTypes": ["ITEM_ID"]},
                            {"ColumnName": "ts", "ColumnTypes": ["TIMESTAMP"]},
                            {"ColumnName": "country", "ColumnTypes": ["CATEGORICAL_FEATURE"]},
                        ],
                    },
                    "Type": "INTERACTIONS",
                }
            ],
        },
        "UpdateReplacePolicy": "Delete",
        "DeletionPolicy": "Delete",
    }
    assert re.fullmatch(r"Data-Interactions-[0-9a-f]{10}", name)
    assert stack.resolve(made.training_dataset_name) == name
    assert stack.resolve(made.training_dataset_arn) == {"Fn::GetAtt": [only_dataset_id(stack), "TrainingDatasetArn"]}
    assert stack.resolve(made.role.role_arn) == {"Fn::GetAtt": [role_id, "Arn"]}
    assert role_id.startswith("InteractionsCleanRoomsMlTrainingDataRole")


def only_dataset_id(stack: Stack) -> str:
    (logical_id,) = resources(stack, "AWS::CleanRoomsML::TrainingDataset")
    return str(logical_id)


def test_the_made_role_trusts_clean_rooms_ml_for_this_accounts_training_datasets_and_reads_only_the_table() -> None:
    stack = new_stack()
    bucket = s3.Bucket(stack, "Bucket")
    dataset(stack, data_bucket=bucket, data_prefix="interactions/")
    ((_id, role),) = resources(stack, "AWS::IAM::Role").items()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT},
                "ArnLikeIfExists": {"aws:SourceArn": arn("cleanrooms-ml", f"{ACCOUNT}:training-dataset/*")},
            },
            "Effect": "Allow",
            "Principal": {"Service": "cleanrooms-ml.amazonaws.com"},
        }
    ]
    bucket_arn = stack.resolve(bucket.bucket_arn)
    objects = {"Fn::Join": ["", [bucket_arn, "/interactions/*"]]}
    # Not encrypted with a KMS key: no key statement.
    assert statements(role) == glue_statements() + s3_statements(bucket_arn, objects)
    assert [p["PolicyName"] for p in role["Properties"]["Policies"]] == ["ReadTrainingData"]
    assert not resources(stack, "AWS::IAM::Policy")  # inline: one resource per role


def test_a_kms_encrypted_bucket_adds_decrypt_for_the_datas_objects_only() -> None:
    stack = new_stack()
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Bucket", encryption_key=key)
    dataset(stack, data_bucket=bucket)
    ((_id, role),) = resources(stack, "AWS::IAM::Role").items()
    bucket_arn = stack.resolve(bucket.bucket_arn)
    objects = {"Fn::Join": ["", [bucket_arn, "/*"]]}  # no prefix: the whole bucket, as the guide's bucketFolders/*
    assert statements(role) == [
        *glue_statements(),
        *s3_statements(bucket_arn, objects),
        {
            "Action": "kms:Decrypt",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:s3:arn": [objects, bucket_arn]}},
            "Effect": "Allow",
            "Resource": stack.resolve(key.key_arn),
            "Sid": "DecryptTrainingDataObjects",
        },
    ]


def test_a_catalog_of_another_account_is_sent_and_read_there_and_the_default_database_appears_once() -> None:
    stack = new_stack()
    dataset(stack, database_name="default", catalog_id="444455556666")
    glue_source = only_dataset(stack)["Properties"]["TrainingData"][0]["InputConfig"]["DataSource"]["GlueDataSource"]
    assert glue_source == {"CatalogId": "444455556666", "DatabaseName": "default", "TableName": "interactions"}
    ((_id, role),) = resources(stack, "AWS::IAM::Role").items()
    assert statements(role)[:2] == glue_statements("default", account="444455556666")


def test_an_imported_role_or_an_arn_is_used_as_it_is_and_no_role_is_made() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/training-reader"
    for given in ("arn", "imported"):
        stack = new_stack()
        role: iam.IRole | str = role_arn if given == "arn" else iam.Role.from_role_arn(stack, "Reader", role_arn)
        made = dataset(stack, role=role)
        assert only_dataset(stack)["Properties"]["RoleArn"] == role_arn
        assert not resources(stack, "AWS::IAM::Role") and not resources(stack, "AWS::IAM::Policy")
        assert made.role.role_arn == role_arn


def test_a_role_of_the_app_gets_the_statements_and_the_dataset_waits_for_its_policy() -> None:
    stack = new_stack()
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
    bucket = s3.Bucket(stack, "Bucket")
    made = dataset(stack, role=role, data_bucket=bucket)
    assert made.role is role
    assert len(resources(stack, "AWS::IAM::Role")) == 1  # the app's own: none made
    ((policy_id, policy),) = resources(stack, "AWS::IAM::Policy").items()
    bucket_arn = stack.resolve(bucket.bucket_arn)
    assert policy["Properties"]["PolicyDocument"]["Statement"] == glue_statements() + s3_statements(
        bucket_arn, {"Fn::Join": ["", [bucket_arn, "/*"]]}
    )
    assert only_dataset(stack)["DependsOn"] == [policy_id]


def test_retain_keeps_the_dataset_except_when_its_own_create_is_rolled_back() -> None:
    stack = new_stack()
    dataset(stack, removal_policy=RemovalPolicy.RETAIN)
    resource = only_dataset(stack)
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


# --------------------------------------------------------------------------------------------------
# Tags


def test_tags_of_reach_the_dataset_merged_with_its_own() -> None:
    stack = new_stack()
    dataset(stack, tags={"team": "data"})
    Tags.of(stack).add("env", "dev")
    assert only_dataset(stack)["Properties"]["Tags"] == [
        {"Key": "env", "Value": "dev"},
        {"Key": "team", "Value": "data"},
    ]


def test_tags_of_that_break_a_rule_fail_the_synth_naming_the_dataset() -> None:
    stack = new_stack()
    dataset(stack)
    Tags.of(stack).add("AWS:owner", "me")
    Tags.of(stack).add("empty", "")
    with pytest.raises(Exception) as raised:
        Template.from_stack(stack)
    message = str(raised.value)
    assert "Data/Interactions: tags['AWS:owner'] = 'AWS:owner': key must not start with 'aws:'" in message
    assert "Data/Interactions: tags['empty'] = '': must not be empty" in message


def test_too_many_tags_are_refused_at_construction() -> None:
    error = invalid(new_stack(), tags={f"k{i}": "v" for i in range(51)})
    assert rules(error) == [("tags", "must have at most 50 tags")]


# --------------------------------------------------------------------------------------------------
# Validation


def test_every_problem_is_reported_at_once_in_prop_order_naming_the_construct() -> None:
    stack = new_stack()
    error = invalid(
        stack,
        database_name="ads db",
        columns=[Column("user id!", ColumnType.USER_ID), Column("item_id", "ITEM"), Column("ts", ColumnType.TIMESTAMP)],
        name="n" * 64,
        description="d" * 256,
    )
    assert error.construct_path == "Data/Bad"
    assert [prop for prop, _rule in rules(error)] == [
        "database_name",
        "columns",  # no ITEM_ID column (the one meant is mistyped)
        "columns[0].name",
        "columns[1].type",
        "name",
        "description",
    ]
    lines = str(error).splitlines()
    assert lines[0] == "Data/Bad: 6 invalid props:"
    assert lines[1].startswith("  Data/Bad: database_name = 'ads db': must match the pattern")
    assert "columns[1].type = 'ITEM': must be one of USER_ID, ITEM_ID, TIMESTAMP, CATEGORICAL_FEATURE" in str(error)
    assert "description = 'ddd" in str(error) and "must be between 0 and 255 characters long" in str(error)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"table_name": "t" * 129}, [("table_name", "must be between 1 and 128 characters long")]),
        ({"table_name": "-t"}, [("table_name", "must match the pattern")]),
        ({"catalog_id": "4444-5555"}, [("catalog_id", "must be between 12 and 12"), ("catalog_id", "must match")]),
        ({"columns": []}, [("columns", "must have exactly one")] * 3 + [("columns", "must be between 1 and 100")]),
        ({"columns": "user_id"}, [("columns", "must be a list of Column")]),
        (
            {"columns": [*COLUMNS, Column("USER_ID", ColumnType.NUMERICAL_FEATURE), Column("x", ColumnType.ITEM_ID)]},
            [("columns", "must have exactly one ITEM_ID column"), ("columns[4].name", "must be unique: columns[0]")],
        ),
        (
            {"columns": COLUMNS[:3] + [Column(f"f{i}", ColumnType.NUMERICAL_FEATURE) for i in range(11)]},
            [("columns", "must have at most 10 CATEGORICAL_FEATURE and NUMERICAL_FEATURE columns in all")],
        ),
        ({"columns": [*COLUMNS[:3], ("country", "CATEGORICAL_FEATURE")]}, [("columns[3]", "must be a Column")]),
        ({"columns": [*COLUMNS[:3], Column("country", 7)]}, [("columns[3].type", "must be a ColumnType or its name")]),
        ({"role": 42}, [("role", "must be an iam.IRole or a role ARN string")]),
        ({"role": "reader"}, [("role", "must be between 20 and 2048 characters"), ("role", "must match the pattern")]),
        ({"role": "arn:aws:iam::444455556666:role/reader"}, [("role", "must be a role of the stack's account")]),
        ({"role": None, "data_bucket": None}, [("data_bucket", "is required when the library makes the role")]),
        ({"data_bucket": "training-data"}, [("data_bucket", "must be an s3.IBucket")]),
        ({"data_prefix": "data/*"}, [("data_prefix", "must be a plain key prefix")]),
        (
            {"role": f"arn:aws:iam::{ACCOUNT}:role/r", "data_prefix": "data/"},
            [("data_prefix", "only goes with data_bucket")],
        ),
        ({"name": "   "}, [("name", "must match the pattern")]),
        ({"tags": {"aws:cdk": "x"}}, [("tags['aws:cdk']", "key must not start with 'aws:'")]),
        ({"tags": {"k": ""}}, [("tags['k']", "must not be empty")]),
        ({"removal_policy": RemovalPolicy.SNAPSHOT}, [("removal_policy", "must be RemovalPolicy.DESTROY or")]),
    ],
)
def test_each_rule(kwargs: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    found = rules(invalid(new_stack(), **kwargs))
    assert len(found) == len(expected), found
    for (prop, rule), (want_prop, want_rule) in zip(found, expected, strict=True):
        assert prop == want_prop and want_rule in rule, (prop, rule)


def test_the_data_must_be_in_the_stacks_region() -> None:
    app = App()
    elsewhere = s3.Bucket(new_stack(app, "Elsewhere", region="eu-west-1"), "Bucket")
    error = invalid(new_stack(app), data_bucket=elsewhere)
    assert rules(error) == [
        (
            "data_bucket",
            "is in region eu-west-1 but the stack deploys to us-east-1: the training data must be in the region of "
            "the Clean Rooms ML resources (the user guide's training data requirements)",
        )
    ]


def test_deploy_time_values_are_left_to_the_service() -> None:
    stack = new_stack()
    table = CfnParameter(stack, "Table").value_as_string
    role = CfnParameter(stack, "Role").value_as_string
    dataset(stack, table_name=table, role=role, catalog_id=CfnParameter(stack, "Catalog").value_as_string)
    properties = only_dataset(stack)["Properties"]
    assert properties["RoleArn"] == {"Ref": "Role"}
    assert properties["TrainingData"][0]["InputConfig"]["DataSource"]["GlueDataSource"]["TableName"] == {"Ref": "Table"}


def test_column_types_are_the_service_models() -> None:
    shape = training_dataset.create_request_shape()
    schema = shape.members["trainingData"].member.members["inputConfig"].members["schema"]
    declared = [v.value for k, v in vars(ColumnType).items() if k.isupper()]
    assert declared == list(schema.member.members["columnTypes"].member.enum)


def test_without_the_model_in_botocore_the_documented_rules_still_apply_and_a_warning_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Simulates a botocore older than Clean Rooms ML (the library allows botocore 1.31, which has no cleanroomsml)."""

    def missing(self: Any, service_name: str, type_name: str, api_version: Any = None) -> Any:
        raise botocore.exceptions.UnknownServiceError(service_name=service_name, known_service_names=[])

    monkeypatch.setattr(botocore.loaders.Loader, "load_service_model", missing)
    training_dataset.create_request_shape.cache_clear()
    try:
        stack = new_stack()
        assert rules(invalid(stack, columns=COLUMNS[:2], description="d" * 256)) == [
            (
                "columns",
                "must have exactly one TIMESTAMP column (the Clean Rooms ML user guide's training data requirements: "
                "USER_ID, ITEM_ID and TIMESTAMP are required)",
            )
        ]  # the model's description length is not known
        made = dataset(stack)
        (warning,) = [e.data for e in made.node.metadata if e.type == "aws:cdk:warning"]
        assert "has no cleanroomsml CreateTrainingDataset model" in str(warning)
        assert re.fullmatch(r"Data-Interactions-[0-9a-f]{10}", only_dataset(stack)["Properties"]["Name"])
    finally:
        monkeypatch.undo()
        training_dataset.create_request_shape.cache_clear()


# --------------------------------------------------------------------------------------------------
# The derived name


def name_of(**kwargs: Any) -> str:
    app = App()
    stack = new_stack(app)
    path_parts = kwargs.pop("under", None)
    scope: Any = stack
    if path_parts:
        from constructs import Construct

        for part in path_parts:
            scope = Construct(scope, part)
    kwargs.setdefault("database_name", "ads")
    kwargs.setdefault("table_name", "interactions")
    kwargs.setdefault("columns", COLUMNS)
    kwargs.setdefault("data_bucket", s3.Bucket.from_bucket_name(stack, "Bucket", "training-data"))
    tags = kwargs.pop("stack_tags", None)
    TrainingDataset(scope, "Interactions", **kwargs)
    if tags:
        Tags.of(stack).add(*tags)
    return str(only_dataset(stack)["Properties"]["Name"])


def test_the_derived_name_is_stable_and_changes_with_every_property_that_replaces_the_dataset() -> None:
    base = name_of()
    assert name_of() == base
    changed = {
        "columns": name_of(columns=[*COLUMNS[:3], Column("country", ColumnType.NUMERICAL_FEATURE)]),
        "table": name_of(table_name="interactions2"),
        "description": name_of(description="v2"),
        "role": name_of(role=f"arn:aws:iam::{ACCOUNT}:role/other"),
        "catalog": name_of(catalog_id=ACCOUNT),
    }
    assert base not in changed.values() and len(set(changed.values())) == len(changed)
    # Tags change in place (the resource schema's tagUpdatable): no new name, no replacement.
    assert name_of(tags={"team": "data"}) == name_of(stack_tags=("env", "dev")) == base


def test_a_long_path_is_cut_to_the_services_63_characters_and_a_given_name_is_used_as_it_is() -> None:
    name = name_of(under=["A" * 40, "B" * 40])  # whole path segments only, the innermost that fit
    assert re.fullmatch(r"Interactions-[0-9a-f]{10}", name)
    assert re.fullmatch(r"B{30}-Interactions-[0-9a-f]{10}", name_of(under=["A" * 40, "B" * 30]))
    assert name_of(name="interactions v1") == "interactions v1"


# --------------------------------------------------------------------------------------------------
# Scanners


def test_cdk_nag_finds_nothing_unacknowledged_and_cfn_lint_nothing_in_the_stacks_region(tmp_path: Path) -> None:
    from cdk_nag import AwsSolutionsChecks
    from cfnlint.api import ManualArgs, lint

    app = App(outdir=str(tmp_path))
    stack = new_stack(app)
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    bucket = s3.Bucket.from_bucket_attributes(stack, "Bucket", bucket_name="training-data", encryption_key=key)
    dataset(stack, data_bucket=bucket, data_prefix="interactions/")
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
    dataset(stack, "WithOwnRole", role=role, data_bucket=bucket)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin["violations"]] == []
    # The wildcard that stays (the objects under the prefix) is acknowledged on the role, with its reason.
    acknowledged = {
        rule: reason
        for construct in app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in dict(entry.data).items()
    }
    assert set(acknowledged) == {
        "Annotation::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::training-data/interactions/*]",
        "Annotation::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::training-data/*]",
    }
    assert all(len(reason) > 80 for reason in acknowledged.values()), acknowledged
    template = (tmp_path / "Data.template.json").read_text()
    # The stack's region: AWS::CleanRoomsML::TrainingDataset exists only where Clean Rooms ML does.
    matches = lint(template, config=ManualArgs(regions=[REGION]))
    assert [str(m) for m in matches if m.rule.id[0] in "EW"] == []
