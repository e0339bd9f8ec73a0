"""The custom resource's properties (lambda/properties.py): control properties, generated names and request
digests that must stay stable across releases, and the GetAtt attributes that must fit CloudFormation's 4 KB.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from specs import AUDIENCE_GENERATION_JOB as SPEC

import properties
from tests.helpers import STACK_ID
from tests.test_engine import LOGICAL_ID, PROPS, SQL_SEED, name_of, properties_split, properties_with_name, props

# -- Names and digests: a release that changed them would replace (rename) every deployed job -----------


def test_generated_names_and_request_digests_are_stable_across_releases() -> None:
    assert name_of(PROPS) == "Test-Lookalike-945e923ded"
    accented = props(description="Frühling \u2013 été", tags={"team": "ads"})
    assert name_of(accented) == "Test-Lookalike-4be5647d0b"
    request = properties_with_name(*properties_split(accented), LOGICAL_ID, STACK_ID)
    assert properties.request_digest(SPEC, request, STACK_ID, LOGICAL_ID) == (
        "0c00126290791ad4305dcf450ddc271eaee3087325ea64d9a165e08fc0738394"
    )


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("Test/Look alike!", "Test-Look-alike-945e923ded"),  # characters a name may not hold become dashes
        ("--Look--", "Look-945e923ded"),  # no leading or trailing dash
        ("X", "X-945e923ded"),
        ("日本", "945e923ded"),  # nothing usable: the digest alone
        ("A" * 10 + "-" + "B" * 51, "B" * 51 + "-945e923ded"),  # cut from the start, never starting with a dash
        ("A" * 10 + "X" * 52, "X" * 52 + "-945e923ded"),
    ],
)
def test_a_name_prefix_is_made_fit_for_a_name(prefix: str, name: str) -> None:
    assert name_of(props(NamePrefix=prefix)) == name


def test_sql_parameters_the_service_may_not_echo_are_carried_by_the_generated_name() -> None:
    """A job found by name is never one started from other SQL parameters: with a generated name, other
    parameters are another name (the request tag then proves it, whatever the description echoes)."""
    spring = props(seedAudience=SQL_SEED)
    autumn = props(
        seedAudience={**SQL_SEED, "sqlParameters": {**SQL_SEED["sqlParameters"], "parameters": {"c": "autumn"}}}
    )
    template = props(
        seedAudience={
            **SQL_SEED,
            "sqlParameters": {
                "analysisTemplateArn": "arn:aws:cleanrooms:us-east-1:111122223333:membership/m/analysistemplate/t"
            },
        }
    )
    assert len({name_of(spring), name_of(autumn), name_of(template)}) == 3


def test_the_digest_ignores_the_tags_and_covers_everything_else() -> None:
    base = properties_with_name(*properties_split(PROPS), LOGICAL_ID, STACK_ID)
    digest = properties.request_digest(SPEC, base, STACK_ID, LOGICAL_ID)
    assert properties.request_digest(SPEC, {**base, "tags": {"x": "y"}}, STACK_ID, LOGICAL_ID) == digest
    assert properties.request_digest(SPEC, {**base, "name": "other"}, STACK_ID, LOGICAL_ID) != digest
    assert properties.request_digest(SPEC, base, STACK_ID, "Other") != digest


# -- Control properties -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "control"),
    [
        ({}, properties.Control(True, properties.MAX_TIMEOUT_SECONDS, None)),
        ({"WaitForCompletion": False, "TimeoutSeconds": 1}, properties.Control(False, 1, None)),
        ({"WaitForCompletion": True, "TimeoutSeconds": "3300"}, properties.Control(True, 3300, None)),
        ({"WaitForCompletion": "TRUE", "NamePrefix": "p"}, properties.Control(True, 3300, "p")),
        ({"WaitForCompletion": "False", "TimeoutSeconds": "3600"}, properties.Control(False, 3300, None)),
    ],
)
def test_control_properties_are_typed_and_bounded(given: dict[str, Any], control: properties.Control) -> None:
    request, parsed = properties.split({"name": "n", "ServiceToken": "arn", "RemovalPolicy": "retain", **given})
    assert request == {"name": "n"} and parsed == control


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"WaitForCompletion": 1}, "WaitForCompletion must be true or false"),
        ({"TimeoutSeconds": "0"}, "TimeoutSeconds must be between 1 and 3600"),
        ({"TimeoutSeconds": "3601"}, "TimeoutSeconds must be between 1 and 3600"),
        ({"TimeoutSeconds": "1.5"}, "TimeoutSeconds must be a whole number of seconds"),
        ({"NamePrefix": 7}, "NamePrefix must be a non-empty string"),
        ({"NamePrefix": "-"}, "NamePrefix must be a non-empty string"),
    ],
)
def test_invalid_control_properties_are_refused_naming_the_property(given: dict[str, Any], message: str) -> None:
    with pytest.raises(properties.PropertyError) as raised:
        properties.split(given)
    assert str(raised.value) == message


# -- Attributes ---------------------------------------------------------------------------------------


def metric(i: int) -> dict[str, Any]:
    return {"audienceSize": {"type": "ABSOLUTE", "value": 10_000 * (i + 1)}, "score": 1.25}


def described(**changes: Any) -> dict[str, Any]:
    return {
        "audienceGenerationJobArn": "arn:aws:cleanrooms-ml:us-east-1:111122223333:audience-generation-job/j",
        "name": "n",
        "status": "ACTIVE",
        "metrics": {"recallMetric": 0.5, "relevanceMetrics": [metric(0)]},
        **changes,
    }


def test_attributes_are_strings_and_structures_compact_json() -> None:
    assert properties.attributes(SPEC, described()) == {
        "AudienceGenerationJobArn": "arn:aws:cleanrooms-ml:us-east-1:111122223333:audience-generation-job/j",
        "Name": "n",
        "Status": "ACTIVE",
        "RecallMetric": "0.5",
        "RelevanceMetrics": '[{"audienceSize":{"type":"ABSOLUTE","value":10000},"score":1.25}]',
    }
    assert properties.attributes(SPEC, {"name": "n"})["RecallMetric"] == ""  # missing: present, empty


def test_booleans_and_other_values_render_as_cloudformation_reads_them() -> None:
    spec = SPEC._replace(attributes=(("On", "on"), ("Off", "off"), ("Count", "count"), ("Nothing", "none")))
    assert properties.attributes(spec, {"on": True, "off": False, "count": 3, "none": None}) == {
        "On": "true",
        "Off": "false",
        "Count": "3",
        "Nothing": "",
    }


@pytest.mark.parametrize("count", [300, 301])  # both parities: an item at a time, not two
def test_too_many_metrics_are_cut_from_the_end_just_enough_to_fit(count: int) -> None:
    data = properties.attributes(
        SPEC, described(metrics={"recallMetric": 0.5, "relevanceMetrics": [metric(i) for i in range(count)]})
    )
    kept = json.loads(data["RelevanceMetrics"])
    assert kept == [metric(i) for i in range(len(kept))]  # the first ones, in order
    assert len(properties.canonical(data).encode()) <= properties.MAX_ATTRIBUTES_BYTES
    one_more = {**data, "RelevanceMetrics": properties.canonical([metric(i) for i in range(len(kept) + 1)])}
    assert len(properties.canonical(one_more).encode()) > properties.MAX_ATTRIBUTES_BYTES
    assert data["Status"] == "ACTIVE" and data["Name"] == "n"


def test_attributes_of_exactly_the_limit_are_kept_whole() -> None:
    base = len(properties.canonical(properties.attributes(SPEC, described(name=""))).encode())
    name = "n" * (properties.MAX_ATTRIBUTES_BYTES - base)
    data = properties.attributes(SPEC, described(name=name))
    assert len(properties.canonical(data).encode()) == properties.MAX_ATTRIBUTES_BYTES
    assert data["Name"] == name and json.loads(data["RelevanceMetrics"]) == [metric(0)]


def test_the_longest_list_is_cut_first_and_other_values_are_never_cut() -> None:
    spec = SPEC._replace(attributes=(("A", "a"), ("B", "b"), ("Text", "text")))
    data = properties.attributes(spec, {"a": ["x" * 10] * 200, "b": ["y"] * 3, "text": "t" * 1000})
    assert json.loads(data["B"]) == ["y"] * 3 and data["Text"] == "t" * 1000
    assert 0 < len(json.loads(data["A"])) < 200


def test_values_too_long_to_fit_are_left_empty_when_no_list_is_left_to_cut() -> None:
    spec = SPEC._replace(attributes=(("A", "a"), ("B", "b"), ("C", "c"), ("D", "d")))
    data = properties.attributes(spec, {"a": "a" * 1023, "b": "b" * 1024, "c": "c" * 2000, "d": []})
    assert data == {"A": "a" * 1023, "B": "", "C": "", "D": "[]"}


@pytest.mark.parametrize(
    "url",
    [
        "https://cloudformation-waitcondition-us-east-1.s3.amazonaws.com/x",
        "http://localhost:8080/x",
        "http://127.0.0.1/x",
    ],
)
def test_a_signal_url_is_https_or_http_to_this_host(url: str) -> None:
    assert properties.checked_signal_url(url, "SignalUrl") == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://example.com/x?X-Amz-Signature=s3cr3t",
            "SignalUrl must be an https URL (a WaitConditionHandle's Ref); its value is not shown: it is a credential",
        ),
        (
            "https://[::1/x?X-Amz-Signature=s3cr3t",
            "SignalUrl is not a valid URL (its value is not shown: it is a credential)",
        ),
    ],
)
def test_a_signal_url_refused_is_never_repeated(url: str, message: str) -> None:
    with pytest.raises(properties.PropertyError) as raised:
        properties.checked_signal_url(url, "SignalUrl")
    assert str(raised.value) == message
