"""Property: the construct accepts exactly the props whose request the service's own rules accept.

Hypothesis generates props (names, ARNs valid and not, worker numbers, tags, SQL parameters, S3 URIs...).
The oracle is written here, independently of the library: botocore's own parameter validation, then
the model's maximum lengths, enums and patterns (botocore does not check those), then the rules the
API reference states in words, then the stack's region and partition.

* Whenever the construct accepts props, the request the handler builds from the synthesized properties
  (delivered as CloudFormation delivers them: every scalar a string) equals the request the user asked
  for and passes the oracle; so whenever the oracle rejects, the construct rejected first.
* Whenever the oracle accepts, the construct accepts too (no rule stricter than the service's).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import botocore.exceptions
import botocore.validate
import pytest
from aws_cdk import App, Environment, Stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdk_cleanrooms_ml import (
    AudienceGenerationJob,
    S3DataSource,
    SeedAudience,
    SqlParameters,
    ValidationError,
    WorkerComputeConfiguration,
    WorkerComputeType,
)
from cdk_cleanrooms_ml.service_model import service_model, specs
from tests.helpers import ACCOUNT, REGION, STACK_ID, as_cloudformation_delivers

# The model the library ships (the data both synth and the handler read); the rules below are the oracle's own.
SHAPE = service_model().operation_model("StartAudienceGenerationJob").input_shape
WORKER_TYPES = [t.value for t in WorkerComputeType.all()]

# Characters for generated text: ASCII letters and punctuation that patterns care about, non-ASCII
# letters, and (in wild text only) control characters and a newline. Carriage return and the Unicode
# line separators are left out so that Python's ``.`` (used by the oracle) means what Java's ``.`` means.
SAFE = [*"abcXYZ019-_.:/ @+=*", "é", "日", "\xa0"]
WILD = [*SAFE, "\n", "\t", "\x00", "\x07"]


def text(min_size: int = 0, max_size: int = 20, wild: bool = True) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(WILD if wild else SAFE), min_size=min_size, max_size=max_size)


def mostly(valid: st.SearchStrategy[Any], *invalid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values three times in four: with a dozen such fields, about half the examples are accepted."""
    wild = st.one_of(*invalid)
    return st.integers(0, 3).flatmap(lambda n: wild if n == 3 else valid)


def sometimes(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


partitions = st.sampled_from(["aws", "aws-cn", "aws-us-gov"])
accounts = st.text("0123456789", min_size=11, max_size=13)
safe_ids = st.text(st.sampled_from(list("abcXYZ019-_/.")), min_size=1, max_size=10)

model_arns = mostly(
    st.builds(lambda i: f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/{i}", safe_ids),
    st.builds(
        lambda p, r, a, i: f"arn:{p}:cleanrooms-ml:{r}:{a}:configured-audience-model/{i}",
        partitions,
        st.sampled_from([REGION, "eu-west-1", "", "US-EAST-1"]),
        st.one_of(st.just(ACCOUNT), accounts),
        text(0, 8),
    ),
    st.builds(lambda i: f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:configured-audience-model/{i}", safe_ids),
    text(0, 30),
)
role_arns = mostly(
    st.builds(lambda i: f"arn:aws:iam::{ACCOUNT}:role/{i}", text(1, 12, wild=False)),
    st.builds(lambda p, a, i: f"arn:{p}:iam::{a}:role/{i}", partitions, accounts, text(0, 12)),
    st.builds(lambda i: f"arn:aws:iam::{ACCOUNT}:user/{i}", safe_ids),
    st.builds(lambda i: f"arn:aws:iam::{ACCOUNT}:role/{i}", text(1, 12)),
    text(0, 30),
)
template_ids = st.text(st.sampled_from(list("abcXYZ019-_")), min_size=1, max_size=8)
template_arns = mostly(
    st.builds(
        lambda m, t: f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{m}/analysistemplate/{t}",
        template_ids,
        template_ids,
    ),
    # Letters outside ASCII: Java's \w does not match them (Python's does, unless told).
    st.builds(
        lambda m, t: f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{m}/analysistemplate/{t}",
        st.text(st.sampled_from(list("ab1-_éß日")), min_size=1, max_size=6),
        template_ids,
    ),
    st.builds(
        lambda r, m, t: f"arn:aws:cleanrooms:{r}:{ACCOUNT}:membership/{m}/analysistemplate/{t}",
        st.sampled_from(["eu-west-1", "x", "us-gov-west-1", "ab-cdéfg-1"]),
        text(1, 6),
        text(0, 6),
    ),
    text(0, 20),
)
s3_uris = mostly(
    st.builds(lambda rest: "s3://" + rest, text(1, 20, wild=False)),
    st.builds(lambda rest: "s3://" + rest, text(0, 20)),
    text(0, 20),
)
sql_parameters = mostly(
    st.one_of(
        st.builds(
            SqlParameters,
            query_string=text(1, 30),
            parameters=sometimes(st.dictionaries(st.text("abXY09_", min_size=1, max_size=6), text(0, 10), max_size=3)),
        ),
        st.builds(SqlParameters, analysis_template_arn=template_arns),
    ),
    st.builds(
        SqlParameters,
        query_string=sometimes(text(0, 30)),
        analysis_template_arn=sometimes(template_arns),
        parameters=sometimes(st.dictionaries(text(0, 6), text(0, 10), max_size=3)),
    ),
)
compute = st.builds(
    WorkerComputeConfiguration,
    type=mostly(st.sampled_from(WORKER_TYPES), st.sampled_from(["CR.9X", "cr.1x", ""])).map(WorkerComputeType.of),
    number=mostly(st.integers(2, 1024), st.integers(-2, 1), st.integers(1025, 1100)),
    spark_properties=sometimes(
        mostly(st.dictionaries(text(1, 12), text(0, 12), max_size=4), st.dictionaries(text(0, 3), text(0, 3)))
    ),
)
seeds = mostly(
    st.one_of(
        st.builds(SeedAudience, role=role_arns, data_source=st.builds(S3DataSource, s3_uri=s3_uris)),
        st.builds(
            SeedAudience, role=role_arns, sql_parameters=sql_parameters, sql_compute_configuration=sometimes(compute)
        ),
    ),
    st.builds(
        SeedAudience,
        role=role_arns,
        data_source=sometimes(st.builds(S3DataSource, s3_uri=s3_uris)),
        sql_parameters=sometimes(sql_parameters),
        sql_compute_configuration=sometimes(compute),
    ),
)
uuids = mostly(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), text(30, 40))
names = mostly(text(1, 63, wild=False).filter(lambda n: n.strip(" ") != ""), text(0, 70))
descriptions = mostly(text(0, 40, wild=False), text(0, 40), st.just("d" * 256))
tag_keys = mostly(text(1, 12, wild=False), st.builds(lambda k: "AwS:" + k, text(0, 5)), st.just("k" * 129), st.just(""))
tags = mostly(
    st.dictionaries(text(1, 12), mostly(text(0, 12), st.just("v" * 257)), max_size=4),
    st.dictionaries(tag_keys, text(0, 10), max_size=4),
    st.integers(45, 55).map(lambda n: {f"tag{i}": "v" for i in range(n)}),
)
job_props = st.fixed_dictionaries(
    {"configured_audience_model_arn": model_arns, "seed_audience": seeds},
    optional={
        "name": names,
        "include_seed_in_output": st.booleans(),
        "collaboration_id": uuids,
        "description": descriptions,
        "tags": tags,
    },
)


# --------------------------------------------------------------------------------------------------
# The request the user asked for, and the oracle, built without the library.


def expected_request(props: dict[str, Any]) -> dict[str, Any]:
    seed: SeedAudience = props["seed_audience"]
    rendered: dict[str, Any] = {"roleArn": seed.role}
    if seed.data_source is not None:
        rendered["dataSource"] = {"s3Uri": seed.data_source.s3_uri}
    if seed.sql_parameters is not None:
        sql = seed.sql_parameters
        rendered["sqlParameters"] = {
            name: value
            for name, value in [
                ("queryString", sql.query_string),
                ("analysisTemplateArn", sql.analysis_template_arn),
                ("parameters", sql.parameters),
            ]
            if value is not None
        }
    if seed.sql_compute_configuration is not None:
        worker = seed.sql_compute_configuration
        rendered["sqlComputeConfiguration"] = {"worker": {"type": str(worker.type), "number": worker.number}}
        if worker.spark_properties is not None:
            rendered["sqlComputeConfiguration"]["worker"]["properties"] = {"spark": worker.spark_properties}
    request = {
        "name": props.get("name", "generated"),
        "configuredAudienceModelArn": props["configured_audience_model_arn"],
        "seedAudience": rendered,
        "includeSeedInOutput": props.get("include_seed_in_output"),
        "collaborationId": props.get("collaboration_id"),
        "description": props.get("description"),
        "tags": props.get("tags") or None,  # no tags and empty tags send the same request
    }
    return {k: v for k, v in request.items() if v is not None}


def model_violations(value: Any, shape: Any, path: str = "") -> list[str]:
    """What botocore leaves to the service: maximum lengths and counts, enums, patterns."""
    meta = shape.metadata
    found: list[str] = []
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                found += model_violations(value[name], member, f"{path}.{name}")
    elif shape.type_name == "map":
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{path}: more than {meta['max']} entries")
        for key, item in value.items():
            found += model_violations(key, shape.key, f"{path}[{key!r}] key")
            found += model_violations(item, shape.value, f"{path}[{key!r}]")
    elif shape.type_name == "integer":
        if "max" in meta and value > meta["max"]:
            found.append(f"{path}: above {meta['max']}")
    elif shape.type_name == "string":
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{path}: longer than {meta['max']}")
        if "enum" in meta and value not in meta["enum"]:
            found.append(f"{path}: not in {meta['enum']}")
        # The service matches the whole value, with Java's ASCII-only \\w \\d \\s.
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value, re.ASCII):
            found.append(f"{path}: does not match {meta['pattern']}")
    return found


def documented_violations(request: dict[str, Any]) -> list[str]:
    """The API reference's rules in words, and the stack's region and partition."""
    found: list[str] = []
    user_tags = request.get("tags", {})
    if len(user_tags) > 49:  # 50 per resource, one is the library's request tag
        found.append("more than 49 user tags")
    found += [f"reserved tag key {k!r}" for k in user_tags if k.lower().startswith(("aws:", "cdk-cleanrooms-ml:"))]
    seed = request["seedAudience"]
    if ("dataSource" in seed) == ("sqlParameters" in seed):
        found.append("not exactly one seed source")
    sql = seed.get("sqlParameters")
    if sql is not None and bool(sql.get("queryString")) == bool(sql.get("analysisTemplateArn")):
        found.append("not exactly one of queryString and analysisTemplateArn")
    if "sqlComputeConfiguration" in seed and sql is None:
        found.append("compute without a SQL seed")
    model = request["configuredAudienceModelArn"].split(":")
    if len(model) > 4 and model[0] == "arn" and (model[1] != "aws" or (model[3] and model[3] != REGION)):
        found.append("model outside the stack's region or partition")
    role = seed["roleArn"].split(":")
    if len(role) > 2 and role[0] == "arn" and role[1] != "aws":
        found.append("role outside the stack's partition")
    return found


def oracle(request: dict[str, Any]) -> list[str]:
    try:
        botocore.validate.validate_parameters(request, SHAPE)
        found: list[str] = []
    except botocore.exceptions.ParamValidationError as error:
        found = [str(error)]
    return found + model_violations(request, SHAPE) + documented_violations(request)


def handler_request(stack: Stack, job: AudienceGenerationJob) -> dict[str, Any]:
    """What the handler sends to StartAudienceGenerationJob, from the properties CloudFormation delivers."""
    from properties import decode_request, split, with_name  # the handler's module (lambda/ is on sys.path)

    delivered = as_cloudformation_delivers(stack.resolve(job.resource._cfn_properties))
    raw, control = split(delivered)
    spec = specs().AUDIENCE_GENERATION_JOB
    request: dict[str, Any] = with_name(spec, decode_request(spec, raw, SHAPE), control, STACK_ID, "Lookalike1", 63)
    return request


# --------------------------------------------------------------------------------------------------


def test_the_construct_accepts_exactly_what_the_service_rules_accept() -> None:
    outcomes: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(props=job_props)
    def check(props: dict[str, Any]) -> None:
        stack = Stack(App(), "Test", env=Environment(account=ACCOUNT, region=REGION))
        wanted = expected_request(props)
        expected_problems = oracle(wanted)
        try:
            job = AudienceGenerationJob(stack, "Lookalike", **props)
        except ValidationError as error:
            outcomes["rejected"] += 1
            # Never stricter than the service: a rejection always has a reason the oracle sees too.
            assert expected_problems, f"rejected props the service accepts:\n{error}"
            assert stack.node.children == []
            return
        outcomes["accepted"] += 1
        assert not expected_problems, f"accepted props the service rejects: {expected_problems}"
        sent = handler_request(stack, job)
        assert sent == {**wanted, "name": sent["name"]}
        assert sent["name"] == props.get("name", sent["name"]) and sent["name"].startswith(props.get("name", "Test-"))
        # The request actually sent (generated name included) passes the service's rules too.
        assert oracle(sent) == []

    check()
    # Both sides of the property were exercised.
    assert outcomes["accepted"] >= 3, outcomes
    assert outcomes["rejected"] >= 10, outcomes


@pytest.mark.parametrize(
    "regex",
    sorted(
        {
            shape.metadata["pattern"]
            for shape in [
                SHAPE.members["name"],
                SHAPE.members["configuredAudienceModelArn"],
                SHAPE.members["collaborationId"],
                SHAPE.members["description"],
                SHAPE.members["seedAudience"].members["roleArn"],
                SHAPE.members["seedAudience"].members["dataSource"].members["s3Uri"],
                SHAPE.members["seedAudience"].members["sqlParameters"].members["analysisTemplateArn"],
            ]
        }
    ),
)
def test_every_pattern_of_the_request_compiles_in_python(regex: str) -> None:
    # The oracle above and the library both rely on Python reading the model's (Java) patterns.
    assert re.compile(regex, re.ASCII)
