"""Synth-time validation: every bad prop is reported when the construct is created, with path, prop, value and rule.

Construction raises before anything is added to the tree, so no test here synthesizes an app except
the one that checks tags applied through ``Tags.of`` (known only at synth).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsii
import pytest
from aws_cdk import (
    App,
    Aws,
    CfnParameter,
    Duration,
    Environment,
    Fn,
    IStableAnyProducer,
    IStableStringProducer,
    Lazy,
    RemovalPolicy,
    Stack,
    Tags,
)
from aws_cdk import aws_iam as iam

from cdk_cleanrooms_ml import (
    AudienceGenerationJob,
    S3DataSource,
    SeedAudience,
    SqlParameters,
    ValidationError,
    WorkerComputeConfiguration,
    WorkerComputeType,
)
from cdk_cleanrooms_ml.service_model import service_model, specs, start_request_shape
from constructs import Construct
from tests.helpers import ACCOUNT, COLLABORATION_ID, MODEL_ARN, REGION, ROLE_ARN, as_cloudformation_delivers, s3_seed

PATH = "Test/Lookalike"
TEMPLATE_ARN = f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/m-1/analysistemplate/t-1"
SECRET = "SELECT user_id FROM secret_table"


@pytest.fixture(scope="module")
def scope() -> Stack:
    """One stack for every bad input: a rejected construct adds nothing, so it stays empty."""
    return Stack(App(), "Test", env=Environment(account=ACCOUNT, region=REGION))


def sql_seed(
    sql: SqlParameters | None = None, compute: WorkerComputeConfiguration | Any | None = None, **kwargs: Any
) -> SeedAudience:
    return SeedAudience(
        role=ROLE_ARN,
        sql_parameters=sql if sql is not None else SqlParameters(query_string=SECRET),
        sql_compute_configuration=compute,
        **kwargs,
    )


def workers(number: Any = 4, type: Any = WorkerComputeType.CR_1X, spark: Any = None) -> SeedAudience:
    return sql_seed(compute=WorkerComputeConfiguration(type=type, number=number, spark_properties=spark))


@dataclass(frozen=True)
class Bad:
    """One bad input: the props (built lazily: some need jsii objects), the prop named, the rule stated."""

    id: str
    props: Callable[[], dict[str, Any]]
    prop: str
    rule: str
    hidden: str | None = None  # a sensitive value that must not appear in the message


def bad(id: str, props: Callable[[], dict[str, Any]], prop: str, rule: str, hidden: str | None = None) -> Any:
    return pytest.param(Bad(id, props, prop, rule, hidden), id=id)


LONG_SQL = "S" * 500_001
BAD_INPUTS = [
    # name: NameString (length and pattern from the model)
    bad("name-empty", lambda: {"name": ""}, "name", "must be between 1 and 63 characters long"),
    bad("name-64", lambda: {"name": "n" * 64}, "name", "must be between 1 and 63 characters long"),
    bad("name-blank", lambda: {"name": "   "}, "name", "must match the pattern"),
    bad("name-control-char", lambda: {"name": "job\x00one"}, "name", "must match the pattern"),
    bad("name-int", lambda: {"name": 5}, "name", "must be a string"),
    bad("name-duration", lambda: {"name": Duration.seconds(4)}, "name", "must be a string"),
    # configuredAudienceModelArn
    bad(
        "model-not-arn",
        lambda: {"configured_audience_model_arn": "model-1"},
        "configured_audience_model_arn",
        "must match the pattern",
    ),
    bad(
        "model-wrong-service",
        lambda: {"configured_audience_model_arn": MODEL_ARN.replace("cleanrooms-ml", "cleanrooms")},
        "configured_audience_model_arn",
        "must match the pattern",
    ),
    bad(
        "model-short-account",
        lambda: {"configured_audience_model_arn": MODEL_ARN.replace(ACCOUNT, "1234")},
        "configured_audience_model_arn",
        "must match the pattern",
    ),
    bad(
        "model-too-long",
        lambda: {"configured_audience_model_arn": MODEL_ARN + "x" * 2048},
        "configured_audience_model_arn",
        "must be between 20 and 2048 characters long",
    ),
    bad(
        "model-int", lambda: {"configured_audience_model_arn": 42}, "configured_audience_model_arn", "must be a string"
    ),
    bad(
        "model-missing", lambda: {"configured_audience_model_arn": None}, "configured_audience_model_arn", "is required"
    ),
    bad(
        "model-other-region",
        lambda: {"configured_audience_model_arn": MODEL_ARN.replace(REGION, "eu-west-1")},
        "configured_audience_model_arn",
        "is in region eu-west-1 but the stack deploys to us-east-1",
    ),
    bad(
        "model-other-partition",
        lambda: {"configured_audience_model_arn": MODEL_ARN.replace("arn:aws:", "arn:aws-cn:")},
        "configured_audience_model_arn",
        "is in partition aws-cn but the stack deploys to partition aws",
    ),
    # seedAudience.roleArn
    bad(
        "role-user-arn",
        lambda: {"seed_audience": s3_seed(role=f"arn:aws:iam::{ACCOUNT}:user/u")},
        "seed_audience.role",
        "must match the pattern",
    ),
    bad(
        "role-newline",
        lambda: {"seed_audience": s3_seed(role=ROLE_ARN + "\nx")},
        "seed_audience.role",
        "must match the pattern",
    ),
    bad(
        "role-other-partition",
        lambda: {"seed_audience": s3_seed(role=ROLE_ARN.replace("arn:aws:", "arn:aws-us-gov:"))},
        "seed_audience.role",
        "is in partition aws-us-gov but the stack deploys to partition aws",
    ),
    bad(
        "role-line-separator",
        lambda: {"seed_audience": s3_seed(role=ROLE_ARN + "\u2028x")},
        "seed_audience.role",
        "must match the pattern",
    ),
    bad(
        "role-int",
        lambda: {"seed_audience": s3_seed(role=7)},
        "seed_audience.role",
        "must be an iam.IRole or a role ARN",
    ),
    bad("role-none", lambda: {"seed_audience": s3_seed(role=None)}, "seed_audience.role", "is required"),
    # seedAudience and its source
    bad("seed-dict", lambda: {"seed_audience": {"role": ROLE_ARN}}, "seed_audience", "must be a SeedAudience"),
    bad("seed-none", lambda: {"seed_audience": None}, "seed_audience", "must be a SeedAudience"),
    bad(
        "data-source-dict",
        lambda: {"seed_audience": SeedAudience(role=ROLE_ARN, data_source={"s3_uri": "s3://b/k"})},
        "seed_audience.data_source",
        "must be a S3DataSource",
    ),
    bad(
        "s3-https",
        lambda: {"seed_audience": s3_seed(uri="https://b/k")},
        "seed_audience.data_source.s3_uri",
        "must match the pattern",
    ),
    bad(
        "s3-empty",
        lambda: {"seed_audience": s3_seed(uri="")},
        "seed_audience.data_source.s3_uri",
        "must be between 1 and 1285",
    ),
    bad(
        "s3-scheme-only",
        lambda: {"seed_audience": s3_seed(uri="s3://")},
        "seed_audience.data_source.s3_uri",
        "must match the pattern",
    ),
    bad(
        "s3-too-long",
        lambda: {"seed_audience": s3_seed(uri="s3://b/" + "k" * 1280)},
        "seed_audience.data_source.s3_uri",
        "must be between 1 and 1285 characters long",
    ),
    bad(
        "s3-newline",
        lambda: {"seed_audience": s3_seed(uri="s3://b/k\nx")},
        "seed_audience.data_source.s3_uri",
        "must match the pattern",
    ),
    bad(
        "s3-carriage-return",
        lambda: {"seed_audience": s3_seed(uri="s3://b/k\rx")},
        "seed_audience.data_source.s3_uri",
        "must match the pattern",
    ),
    bad("s3-int", lambda: {"seed_audience": s3_seed(uri=3)}, "seed_audience.data_source.s3_uri", "must be a string"),
    bad(
        "two-sources",
        lambda: {"seed_audience": sql_seed(data_source=S3DataSource(s3_uri="s3://b/k"))},
        "seed_audience",
        "must come from exactly one place",
    ),
    bad(
        "no-source",
        lambda: {"seed_audience": SeedAudience(role=ROLE_ARN)},
        "seed_audience",
        "must come from exactly one place",
    ),
    # seedAudience.sqlParameters (sensitive: values never repeated)
    bad(
        "sql-empty",
        lambda: {"seed_audience": sql_seed(SqlParameters())},
        "seed_audience.sql_parameters",
        "must carry exactly one of queryString and analysisTemplateArn",
    ),
    bad(
        "sql-both",
        lambda: {"seed_audience": sql_seed(SqlParameters(query_string=SECRET, analysis_template_arn=TEMPLATE_ARN))},
        "seed_audience.sql_parameters",
        "must carry exactly one of queryString and analysisTemplateArn",
        hidden=SECRET,
    ),
    bad(
        "sql-template-arn",
        lambda: {"seed_audience": sql_seed(SqlParameters(analysis_template_arn="arn:aws:cleanrooms:template-secret"))},
        "seed_audience.sql_parameters.analysis_template_arn",
        "must match the pattern",
        hidden="template-secret",
    ),
    bad(
        "sql-template-non-ascii",
        lambda: {
            "seed_audience": sql_seed(
                SqlParameters(analysis_template_arn=TEMPLATE_ARN.replace("m-1", "mé-1")),
            )
        },
        "seed_audience.sql_parameters.analysis_template_arn",
        "must match the pattern",
        hidden="mé-1",
    ),
    bad(
        "sql-query-too-long",
        lambda: {"seed_audience": sql_seed(SqlParameters(query_string=LONG_SQL))},
        "seed_audience.sql_parameters.query_string",
        "must be between 0 and 500000 characters long",
        hidden="SSSS",
    ),
    bad(
        "sql-parameter-name",
        lambda: {
            "seed_audience": sql_seed(SqlParameters(query_string="q", parameters={"ok": "1", "secret-name": "x"}))
        },
        "seed_audience.sql_parameters.parameters[<entry 2>]",
        "key must match the pattern",
        hidden="secret-name",
    ),
    bad(
        "sql-parameter-value",
        lambda: {"seed_audience": sql_seed(SqlParameters(query_string="q", parameters={"p": "secret" * 200}))},
        "seed_audience.sql_parameters.parameters[<entry 1>]",
        "must be between 0 and 1000 characters long",
        hidden="secret",
    ),
    bad(
        "sql-parameters-list",
        lambda: {"seed_audience": sql_seed(SqlParameters(query_string="q", parameters=["p"]))},
        "seed_audience.sql_parameters.parameters",
        "must be a dict of str to str",
    ),
    bad(
        "sql-parameters-dataclass",
        lambda: {"seed_audience": SeedAudience(role=ROLE_ARN, sql_parameters="SELECT 1")},
        "seed_audience.sql_parameters",
        "must be a SqlParameters",
    ),
    # seedAudience.sqlComputeConfiguration
    bad(
        "compute-with-s3-seed",
        lambda: {
            "seed_audience": SeedAudience(
                role=ROLE_ARN,
                data_source=S3DataSource(s3_uri="s3://b/k"),
                sql_compute_configuration=WorkerComputeConfiguration(type=WorkerComputeType.CR_1X, number=4),
            )
        },
        "seed_audience.sql_compute_configuration",
        "only goes with a SQL seed",
    ),
    bad(
        "workers-1",
        lambda: {"seed_audience": workers(1)},
        "seed_audience.sql_compute_configuration.number",
        "must be between 2 and 1024",
    ),
    bad(
        "workers-1025",
        lambda: {"seed_audience": workers(1025)},
        "seed_audience.sql_compute_configuration.number",
        "must be between 2 and 1024",
    ),
    bad(
        "workers-str",
        lambda: {"seed_audience": workers("4")},
        "seed_audience.sql_compute_configuration.number",
        "must be an integer",
    ),
    bad(
        "workers-bool",
        lambda: {"seed_audience": workers(True)},
        "seed_audience.sql_compute_configuration.number",
        "must be an integer",
    ),
    bad(
        "workers-float",
        lambda: {"seed_audience": workers(2.5)},
        "seed_audience.sql_compute_configuration.number",
        "must be an integer",
    ),
    bad(
        "worker-type-unknown",
        lambda: {"seed_audience": workers(type=WorkerComputeType.of("CR.9X"))},
        "seed_audience.sql_compute_configuration.type",
        "must be one of CR.1X",
    ),
    bad(
        "worker-type-int",
        lambda: {"seed_audience": workers(type=4)},
        "seed_audience.sql_compute_configuration.type",
        "must be a WorkerComputeType or its name",
    ),
    bad(
        "spark-51",
        lambda: {"seed_audience": workers(spark={f"spark.k{i}": "v" for i in range(51)})},
        "seed_audience.sql_compute_configuration.spark_properties",
        "must be between 0 and 50 entries",
    ),
    bad(
        "spark-key-empty",
        lambda: {"seed_audience": workers(spark={"": "v"})},
        "seed_audience.sql_compute_configuration.spark_properties['']",
        "key must be between 1 and 200 characters long",
    ),
    bad(
        "spark-value-501",
        lambda: {"seed_audience": workers(spark={"spark.executor.memory": "9" * 501})},
        "seed_audience.sql_compute_configuration.spark_properties['spark.executor.memory']",
        "must be between 0 and 500 characters long",
    ),
    bad(
        "spark-str",
        lambda: {"seed_audience": workers(spark="spark.executor.memory=4g")},
        "seed_audience.sql_compute_configuration.spark_properties",
        "must be a dict of str to str",
    ),
    bad(
        "compute-dict",
        lambda: {"seed_audience": sql_seed(compute={"type": "CR.1X", "number": 4})},
        "seed_audience.sql_compute_configuration",
        "must be a WorkerComputeConfiguration",
    ),
    # includeSeedInOutput, collaborationId, description
    bad(
        "include-seed-str", lambda: {"include_seed_in_output": "yes"}, "include_seed_in_output", "must be true or false"
    ),
    bad(
        "collaboration-short", lambda: {"collaboration_id": "collab-1"}, "collaboration_id", "must be between 36 and 36"
    ),
    bad(
        "collaboration-upper",
        lambda: {"collaboration_id": COLLABORATION_ID.upper()},
        "collaboration_id",
        "must match the pattern",
    ),
    bad("description-256", lambda: {"description": "d" * 256}, "description", "must be between 0 and 255"),
    bad("description-bell", lambda: {"description": "ring \x07"}, "description", "must match the pattern"),
    # tags: the model's lengths and count, and the documented user-tag rules
    bad("tags-50", lambda: {"tags": {f"k{i}": "v" for i in range(50)}}, "tags", "must have at most 49 user tags"),
    bad(
        "tags-library-prefix",
        lambda: {"tags": {"cdk-cleanrooms-ml:request-digest": "x"}},
        "tags['cdk-cleanrooms-ml:request-digest']",
        "reserved for the library",
    ),
    bad("tags-201", lambda: {"tags": {f"k{i}": "v" for i in range(201)}}, "tags", "must be between 0 and 200 entries"),
    bad("tag-key-empty", lambda: {"tags": {"": "v"}}, "tags['']", "key must be between 1 and 128 characters long"),
    bad(
        "tag-key-129", lambda: {"tags": {"k" * 129: "v"}}, "tags['kkkk", "key must be between 1 and 128 characters long"
    ),
    bad("tag-value-257", lambda: {"tags": {"Team.Name": "v" * 257}}, "tags['Team.Name']", "must be between 0 and 256"),
    bad("tag-key-aws", lambda: {"tags": {"aws:team": "ads"}}, "tags['aws:team']", "key must not start with 'aws:'"),
    bad("tag-key-AwS", lambda: {"tags": {"AwS:Team": "ads"}}, "tags['AwS:Team']", "key must not start with 'aws:'"),
    bad("tags-list", lambda: {"tags": ["team"]}, "tags", "must be a map"),
    bad("tag-value-int", lambda: {"tags": {"CostCenter": 42}}, "tags['CostCenter']", "must be a string"),
    # the library's own props
    bad("timeout-56min", lambda: {"timeout": Duration.minutes(56)}, "timeout", "must be at most 55 minutes"),
    bad("poll-1h", lambda: {"poll_interval": Duration.hours(1)}, "poll_interval", "must be at most 55 minutes"),
    bad(
        "timeout-below-poll",
        lambda: {"timeout": Duration.seconds(10)},
        "timeout",
        "must be at least the poll interval (30 seconds)",
    ),
    bad(
        "timeout-below-own-poll",
        lambda: {"timeout": Duration.minutes(1), "poll_interval": Duration.minutes(2)},
        "timeout",
        "must be at least the poll interval (120 seconds)",
    ),
    bad("timeout-int", lambda: {"timeout": 600}, "timeout", "must be a Duration"),
    bad(
        "timeout-fraction", lambda: {"timeout": Duration.millis(90_500)}, "timeout", "must be a whole number of seconds"
    ),
    bad(
        "poll-7s",
        lambda: {"poll_interval": Duration.seconds(7)},
        "poll_interval",
        "must be a whole number of seconds that divides one hour",
    ),
    bad("poll-fraction", lambda: {"poll_interval": Duration.millis(1500)}, "poll_interval", "divides one hour"),
    bad("poll-str", lambda: {"poll_interval": "30s"}, "poll_interval", "must be a Duration"),
    bad("wait-str", lambda: {"wait_for_completion": "no"}, "wait_for_completion", "must be True or False"),
    bad(
        "removal-snapshot",
        lambda: {"removal_policy": RemovalPolicy.SNAPSHOT},
        "removal_policy",
        "must be RemovalPolicy.DESTROY or",
    ),
    bad("removal-str", lambda: {"removal_policy": "retain"}, "removal_policy", "must be a RemovalPolicy"),
]


def _props(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"configured_audience_model_arn": MODEL_ARN, "seed_audience": s3_seed()}
    props.update(overrides)
    return props


def _line_for(error: ValidationError, prop: str, rule: str = "") -> str:
    lines = [line for line in str(error).splitlines()[1:] if line.strip().startswith(f"{PATH}: {prop}")]
    lines = [line for line in lines if rule in line]
    assert lines, f"no line names {prop!r} with {rule!r}:\n{error}"
    return lines[0]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_reported_with_path_prop_value_and_rule(scope: Stack, case: Bad) -> None:
    with pytest.raises(ValidationError) as caught:
        AudienceGenerationJob(scope, "Lookalike", **_props(**case.props()))
    error = caught.value
    line = _line_for(error, case.prop, case.rule)
    # `<path>: <prop> = <value>: <rule>`
    assert re.match(rf"\s+{re.escape(PATH)}: {re.escape(case.prop)}\S* = .+: .*{re.escape(case.rule)}", line), line
    assert any(i.prop.startswith(case.prop) and case.rule in i.rule for i in error.issues)
    assert error.__cause__ is None  # ours, not a jsii or Python traceback
    if case.hidden is not None:
        assert case.hidden not in str(error)
    # Nothing of the rejected construct stays in the tree, not even the shared provider.
    assert scope.node.children == []


def test_there_are_at_least_forty_bad_inputs() -> None:
    assert len(BAD_INPUTS) >= 40


def test_an_arn_is_shown_whole_with_the_part_the_message_is_about(scope: Stack) -> None:
    elsewhere = MODEL_ARN.replace(REGION, "eu-west-1")
    assert len(elsewhere) == 74
    with pytest.raises(ValidationError) as caught:
        AudienceGenerationJob(scope, "Lookalike", **_props(configured_audience_model_arn=elsewhere))
    line = _line_for(caught.value, "configured_audience_model_arn", "region")
    assert f"configured_audience_model_arn = {elsewhere!r}: is in region eu-west-1 but" in line


def test_values_as_long_as_the_longest_arn_are_shown_whole(scope: Stack) -> None:
    with pytest.raises(ValidationError) as caught:
        AudienceGenerationJob(scope, "Lookalike", **_props(description="d" * 2047 + "e"))
    assert f"description = {'d' * 2047 + 'e'!r}: must be between" in _line_for(caught.value, "description")


def test_longer_values_are_shown_by_their_ends_and_length(scope: Stack) -> None:
    with pytest.raises(ValidationError) as caught:
        AudienceGenerationJob(scope, "Lookalike", **_props(description="b" + "d" * 4998 + "e"))
    line = _line_for(caught.value, "description")
    assert "description = 'bddd" in line and "ddde' (5000 chars): must be between" in line
    assert len(line) < 250


def test_sensitive_values_are_named_redacted(scope: Stack) -> None:
    with pytest.raises(ValidationError) as caught:
        AudienceGenerationJob(
            scope, "Lookalike", **_props(seed_audience=sql_seed(SqlParameters(query_string="Q" * 500_001)))
        )
    assert "seed_audience.sql_parameters.query_string = <sensitive value>: must be between" in str(caught.value)


def test_all_problems_of_one_construct_come_in_one_exception(scope: Stack) -> None:
    with pytest.raises(ValidationError) as caught:
        AudienceGenerationJob(
            scope,
            "Lookalike",
            configured_audience_model_arn="model",
            seed_audience=workers(1, spark={"": "v"}),
            name="",
            tags={"aws:x": "y"},
            timeout=Duration.hours(2),
            wait_for_completion="no",
        )
    error = caught.value
    props = sorted({i.prop for i in error.issues})
    assert props == [
        "configured_audience_model_arn",
        "name",
        "seed_audience.sql_compute_configuration.number",
        "seed_audience.sql_compute_configuration.spark_properties['']",
        "tags['aws:x']",
        "timeout",
        "wait_for_completion",
    ]
    lines = str(error).splitlines()
    assert lines[0] == f"{PATH}: {len(error.issues)} invalid props:"
    assert len(lines) == 1 + len(error.issues)
    assert all(line.startswith(f"  {PATH}: ") for line in lines[1:])
    assert error.construct_path == PATH
    assert scope.node.children == []


def test_a_rejected_job_in_a_nested_scope_leaves_no_child() -> None:
    stack = Stack(App(), "Test", env=Environment(account=ACCOUNT, region=REGION))
    group = Construct(stack, "Audiences")
    AudienceGenerationJob(group, "Good", **_props())
    children_before = sorted(c.node.path for c in stack.node.find_all())
    with pytest.raises(ValidationError, match=r"^Test/Audiences/Bad: 1 invalid prop:\n  Test/Audiences/Bad: name "):
        AudienceGenerationJob(group, "Bad", **_props(name="x" * 64))
    assert sorted(c.node.path for c in stack.node.find_all()) == children_before
    # The id is free again: the corrected construct can take it.
    AudienceGenerationJob(group, "Bad", **_props(name="x" * 63))


def test_an_env_agnostic_stack_skips_the_region_rule_but_not_partition_consistency() -> None:
    stack = Stack(App(), "Agnostic")
    AudienceGenerationJob(
        stack, "OtherRegion", **_props(configured_audience_model_arn=MODEL_ARN.replace(REGION, "eu-west-1"))
    )
    with pytest.raises(ValidationError, match=r"seed_audience.role = .*: is in partition aws-cn but the configured"):
        AudienceGenerationJob(
            stack, "Mixed", **_props(seed_audience=s3_seed(role=ROLE_ARN.replace("arn:aws:", "arn:aws-cn:")))
        )


def test_a_china_stack_accepts_china_arns() -> None:
    stack = Stack(App(), "China", env=Environment(account=ACCOUNT, region="cn-north-1"))
    AudienceGenerationJob(
        stack,
        "Job",
        configured_audience_model_arn=f"arn:aws-cn:cleanrooms-ml:cn-north-1:{ACCOUNT}:configured-audience-model/m",
        seed_audience=s3_seed(role=f"arn:aws-cn:iam::{ACCOUNT}:role/r"),
    )


SPEC = specs().AUDIENCE_GENERATION_JOB

# --------------------------------------------------------------------------------------------------
# Good inputs at every boundary.


def _good_cases() -> list[Any]:
    return [
        pytest.param({"name": "n"}, id="name-1"),
        pytest.param({"name": "n" * 63}, id="name-63"),
        pytest.param({"name": "Lookalike job ü 2024 日本語"}, id="name-unicode-and-spaces"),
        pytest.param({"seed_audience": workers(2)}, id="workers-2"),
        pytest.param({"seed_audience": workers(1024)}, id="workers-1024"),
        pytest.param({"seed_audience": workers(16, type="CR.4X")}, id="worker-type-as-str"),
        pytest.param({"seed_audience": workers(spark={f"spark.k{i}": "v" * 500 for i in range(50)})}, id="spark-50"),
        pytest.param({"seed_audience": workers(spark={})}, id="spark-empty"),
        pytest.param({"seed_audience": sql_seed(SqlParameters(analysis_template_arn=TEMPLATE_ARN))}, id="sql-template"),
        pytest.param(
            {"seed_audience": sql_seed(SqlParameters(query_string=SECRET, parameters={"p_1": "v" * 1000, "P2": ""}))},
            id="sql-parameters",
        ),
        pytest.param({"seed_audience": s3_seed(uri="s3://" + "b" * 1280)}, id="s3-1285"),
        pytest.param({"tags": {f"k{i}": "v" for i in range(49)}}, id="tags-49"),
        pytest.param({"tags": {"k" * 128: "v" * 256}}, id="tag-key-128-value-256"),
        pytest.param({"tags": {"team": "", "Owner": "aws:value-prefix-is-fine"}}, id="tag-value-empty-and-aws-value"),
        pytest.param({"collaboration_id": COLLABORATION_ID}, id="collaboration"),
        pytest.param({"description": "d" * 255}, id="description-255"),
        pytest.param({"description": ""}, id="description-empty"),
        pytest.param({"description": "line one\nline two\ttabbed"}, id="description-newline-tab"),
        pytest.param({"include_seed_in_output": True}, id="include-seed"),
        pytest.param({"timeout": Duration.minutes(55)}, id="timeout-55min"),
        pytest.param({"timeout": Duration.seconds(30)}, id="timeout-equal-poll"),
        pytest.param({"timeout": Duration.minutes(5), "poll_interval": Duration.seconds(5)}, id="poll-5s"),
        pytest.param({"poll_interval": Duration.minutes(30), "timeout": Duration.minutes(30)}, id="poll-30min"),
        pytest.param({"wait_for_completion": False, "removal_policy": RemovalPolicy.RETAIN}, id="no-wait-retain"),
    ]


@pytest.mark.parametrize("props", _good_cases())
def test_good_input_at_a_boundary_is_accepted(props: dict[str, Any]) -> None:
    stack = Stack(App(), "Test", env=Environment(account=ACCOUNT, region=REGION))
    created = AudienceGenerationJob(stack, "Lookalike", **_props(**props))
    assert created.resource.cfn_resource_type == "Custom::CleanRoomsMlAudienceGenerationJob"
    if "name" in props:
        assert created.name == props["name"]


def test_every_worker_type_of_the_shipped_model_is_accepted() -> None:
    model = service_model()
    worker_shape = model.shape_for("WorkerComputeType")
    types = WorkerComputeType.all()
    assert [t.value for t in types] == list(worker_shape.enum)
    assert {"CR.1X", "CR.4X"} <= {t.value for t in types}
    stack = Stack(App(), "Test", env=Environment(account=ACCOUNT, region=REGION))
    for worker_type in types:
        AudienceGenerationJob(
            stack, worker_type.value.replace(".", ""), **_props(seed_audience=workers(type=worker_type))
        )
    assert len([c for c in stack.node.children if isinstance(c, AudienceGenerationJob)]) == len(types)


# --------------------------------------------------------------------------------------------------
# Tokens: skipped at synth; the handler names the property when the deployed value is bad.


@jsii.implements(IStableStringProducer)
class _ProduceString:
    """A string known only when the template is resolved (``Lazy.string``)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def produce(self) -> str:
        return self.value


@jsii.implements(IStableAnyProducer)
class _ProduceAny:
    """A value known only when the template is resolved (``Lazy.any``)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def produce(self) -> Any:
        return self.value


@pytest.fixture(scope="module")
def token_job() -> tuple[Stack, AudienceGenerationJob]:
    stack = Stack(App(), "Tokens", env=Environment(account=ACCOUNT, region=REGION))
    role = iam.Role(stack, "SeedRole", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
    created = AudienceGenerationJob(
        stack,
        "Lookalike",
        name=CfnParameter(stack, "JobName").value_as_string,
        configured_audience_model_arn=f"arn:aws:cleanrooms-ml:{REGION}:{Aws.ACCOUNT_ID}:configured-audience-model/m",
        seed_audience=SeedAudience(
            role=role,
            sql_parameters=SqlParameters(query_string=Fn.import_value("SeedQuery")),
            sql_compute_configuration=WorkerComputeConfiguration(
                type=WorkerComputeType.of(CfnParameter(stack, "WorkerType").value_as_string),
                number=CfnParameter(stack, "Workers", type="Number").value_as_number,
                spark_properties={"spark.executor.memory": Lazy.string(_ProduceString("4g"))},
            ),
        ),
        include_seed_in_output=Lazy.any(_ProduceAny(True)),
        collaboration_id=Fn.import_value("CollaborationId"),
        description=Lazy.string(_ProduceString("from a lazy")),
        tags={"team": CfnParameter(stack, "Team").value_as_string},
    )
    return stack, created


def _resolved_properties(stack: Stack, created: AudienceGenerationJob) -> dict[str, Any]:
    properties: dict[str, Any] = stack.resolve(created.resource._cfn_properties)
    return properties


def test_token_values_are_accepted_and_reach_the_template_unresolved(
    token_job: tuple[Stack, AudienceGenerationJob],
) -> None:
    stack, created = token_job
    props = _resolved_properties(stack, created)
    assert props["name"] == {"Ref": "JobName"}
    assert props["collaborationId"] == {"Fn::ImportValue": "CollaborationId"}
    assert props["seedAudience"]["sqlComputeConfiguration"]["worker"]["number"] == {"Ref": "Workers"}
    assert props["seedAudience"]["sqlParameters"] == {"queryString": {"Fn::ImportValue": "SeedQuery"}}
    assert "Ref" in str(props["configuredAudienceModelArn"])  # Aws.ACCOUNT_ID inside the ARN
    assert props["description"] == "from a lazy"


def _deliver_with(props: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The properties as CloudFormation would deliver them once it has resolved each intrinsic to ``values``."""

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1:
                (kind, argument), *_ = node.items()
                if kind in ("Ref", "Fn::ImportValue", "Fn::GetAtt"):
                    key = argument if isinstance(argument, str) else ".".join(argument)
                    return values.get(key, f"<{key}>")
                if kind == "Fn::Join":
                    return "".join(str(resolve(part)) for part in argument[1])
            return {resolve(k): resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    delivered: dict[str, Any] = as_cloudformation_delivers(resolve(props))
    return delivered


GOOD_DEPLOY_VALUES = {
    "JobName": "from-a-parameter",
    "AWS::AccountId": ACCOUNT,
    "SeedQuery": SECRET,
    "WorkerType": "CR.4X",
    "Workers": "8",
    "CollaborationId": COLLABORATION_ID,
    "Team": "ads",
}


@pytest.mark.parametrize(
    ("deployed", "message"),
    [
        ({"JobName": ""}, "property name (name) = '': must be between 1 and 63 characters long"),
        (
            {"Workers": "1"},
            "property seedAudience.sqlComputeConfiguration.worker.number "
            "(seed_audience.sql_compute_configuration.number) = 1: must be between 2 and 1024",
        ),
        (
            {"Workers": "many"},
            "property seedAudience.sqlComputeConfiguration.worker.number "
            "(seed_audience.sql_compute_configuration.number): expected an integer, got str 'many'",
        ),
        (
            {"WorkerType": "CR.99X"},
            "property seedAudience.sqlComputeConfiguration.worker.type "
            "(seed_audience.sql_compute_configuration.type) = 'CR.99X': must be one of",
        ),
        (
            {"CollaborationId": "nope"},
            "property collaborationId (collaboration_id) = 'nope': must be between 36 and 36",
        ),
        ({"AWS::AccountId": "12"}, "property configuredAudienceModelArn (configured_audience_model_arn) = "),
        ({"Team": "t" * 300}, "property tags['team'] (tags['team']) = "),
        (
            {"SeedQuery": "Q" * 500_001},
            "property seedAudience.sqlParameters.queryString (seed_audience.sql_parameters.query_string) = "
            "<sensitive value>: must be between 0 and 500000",
        ),
    ],
)
def test_a_bad_token_value_fails_at_deploy_naming_the_property(
    token_job: tuple[Stack, AudienceGenerationJob], deployed: dict[str, str], message: str
) -> None:
    import model_rules  # noqa: F401  (the handler's modules; conftest puts lambda/ on sys.path)
    from properties import PropertyError, decode_request, split

    stack, created = token_job
    shape = start_request_shape()  # the shipped model: the one the handler runs against
    props = _resolved_properties(stack, created)
    # The role's logical id is generated: its GetAtt resolves to a good role ARN.
    values = {**GOOD_DEPLOY_VALUES, ".".join(props["seedAudience"]["roleArn"]["Fn::GetAtt"]): ROLE_ARN}

    request, _control = split(_deliver_with(props, values))
    assert decode_request(SPEC, request, shape)["name"] == "from-a-parameter"  # the good values pass

    request, _control = split(_deliver_with(props, {**values, **deployed}))
    with pytest.raises(PropertyError) as caught:
        decode_request(SPEC, request, shape)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


# --------------------------------------------------------------------------------------------------
# Tags applied through Tags.of are known only at synth: CDK's validation reports them.


def test_tags_applied_through_tags_of_are_checked_at_synth() -> None:
    app = App()
    stack = Stack(app, "Tagged", env=Environment(account=ACCOUNT, region=REGION))
    AudienceGenerationJob(stack, "Lookalike", **_props(tags={f"own{i}": "v" for i in range(45)}))
    for i in range(6):
        Tags.of(stack).add(f"stack{i}", "v")
    Tags.of(stack).add("CostCenter", "c" * 257)
    with pytest.raises(Exception) as caught:  # CDK raises its own error type (through jsii)
        app.synth()
    message = str(caught.value)
    assert "Tagged/Lookalike: tags = '52 tags': must have at most 49 user tags" in message
    assert "Tagged/Lookalike: tags['CostCenter'] = " in message and "must be between 0 and 256" in message


# --------------------------------------------------------------------------------------------------
# The rule engine itself: the service's pattern semantics, and Python names of API paths.


def test_patterns_are_applied_with_the_services_semantics() -> None:
    import model_rules

    assert model_rules.matches("s3://bucket/key", "s3://.+")
    assert not model_rules.matches("s3://bucket/key\n", "s3://.+")  # the whole value, like Java's matches()
    for terminator in "\r\n\u0085\u2028\u2029":
        assert not model_rules.matches(f"s3://b{terminator}k", "s3://.+")  # Java's . stops at line terminators
    assert model_rules.matches("s3://b.k", r"s3://b[.]k")
    assert not model_rules.matches("s3://bxk", r"s3://b\.k")  # an escaped dot stays a dot
    assert not model_rules.matches("é1", r"[\w]{2}")  # Java's \w is ASCII-only
    assert model_rules.matches("ab", r"[\w]{2}")
    assert model_rules.matches("   x", r"(?!\s*$)[ x]*")
    assert not model_rules.matches("   ", r"(?!\s*$)[ x]*")


@pytest.mark.parametrize(
    ("path", "python"),
    [
        ("name", "name"),
        ("seedAudience.roleArn", "seed_audience.role"),
        ("seedAudience.dataSource.s3Uri", "seed_audience.data_source.s3_uri"),
        ("seedAudience.sqlComputeConfiguration.worker.number", "seed_audience.sql_compute_configuration.number"),
        (
            "seedAudience.sqlComputeConfiguration.worker.properties.spark['spark.Executor']",
            "seed_audience.sql_compute_configuration.spark_properties['spark.Executor']",
        ),
        ("tags['CostCenter']", "tags['CostCenter']"),
        ("tags['a.b]c']", "tags['a.b]c']"),
        ("seedAudience.sqlParameters.parameters[<entry 2>]", "seed_audience.sql_parameters.parameters[<entry 2>]"),
    ],
)
def test_api_paths_map_to_python_props_keeping_map_keys(path: str, python: str) -> None:
    import model_rules

    assert model_rules.python_name(path) == python


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        (
            {"roleArn": ROLE_ARN, "sqlParameters": {"queryString": "q"}, "sqlComputeConfiguration": {}},
            "property seedAudience.sqlComputeConfiguration (seed_audience.sql_compute_configuration) = {}: "
            "must set exactly one of its members (worker)",
        ),
        (
            {
                "roleArn": ROLE_ARN,
                "sqlParameters": {"queryString": "q"},
                "sqlComputeConfiguration": {"worker": {"type": "CR.1X", "number": "4", "properties": {}}},
            },
            "property seedAudience.sqlComputeConfiguration.worker.properties (seed_audience.sql_compute_configuration) "
            "= {}: must set exactly one of its members (spark)",
        ),
        (
            {"roleArn": ROLE_ARN, "sqlParameters": {"queryString": SECRET, "parameters": {"bad-name": "v"}}},
            "property seedAudience.sqlParameters.parameters[<entry 1>] (seed_audience.sql_parameters.parameters"
            "[<entry 1>]) = <sensitive value>: key must match the pattern",
        ),
    ],
)
def test_the_handler_applies_the_union_and_redaction_rules_to_what_it_receives(
    seed: dict[str, Any], message: str
) -> None:
    """An escape hatch (add_property_override) can send what the construct never renders: the handler still checks."""
    from properties import PropertyError, decode_request, split

    shape = start_request_shape()  # the shipped model: the one the handler runs against
    raw, _control = split(
        as_cloudformation_delivers({"name": "job", "configuredAudienceModelArn": MODEL_ARN, "seedAudience": seed})
    )
    with pytest.raises(PropertyError) as caught:
        decode_request(SPEC, raw, shape)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value) and "bad-name" not in str(caught.value)
