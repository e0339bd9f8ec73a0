"""The model walker (lambda/model_rules.py) on its own: decoding CloudFormation's strings and checking every
constraint kind a botocore model declares, with the exact message each problem gives.

The shipped Clean Rooms ML model has no list, long, float or timestamp member in its request, so a small
model made here declares one of each (the walker serves any model a future resource type brings). The
handler-side checks of the real request are at the end: what an escape hatch could send, the handler refuses.
"""

from __future__ import annotations

from typing import Any

import botocore.model
import pytest
from specs import AUDIENCE_GENERATION_JOB as SPEC

import model_rules
import properties
import service
from model_rules import REDACTED, DecodeError, Problem
from tests.helpers import MODEL_ARN, ROLE_ARN

SHAPES: dict[str, Any] = {
    "Request": {
        "type": "structure",
        "required": ["name"],
        "members": {
            "name": {"shape": "Name"},
            "kind": {"shape": "Kind"},
            "count": {"shape": "Count"},
            "big": {"shape": "Big"},
            "ratio": {"shape": "Ratio"},
            "rate": {"shape": "Rate"},
            "flag": {"shape": "Flag"},
            "labels": {"shape": "Labels"},
            "names": {"shape": "Names"},
            "choice": {"shape": "Choice"},
            "secret": {"shape": "Secret"},
            "when": {"shape": "When"},
            "inner": {"shape": "Inner"},
            "codes": {"shape": "Codes"},
        },
    },
    "Inner": {"type": "structure", "required": ["name"], "members": {"name": {"shape": "Name"}}},
    "Codes": {"type": "map", "key": {"shape": "SecretKey"}, "value": {"shape": "LabelValue"}},
    "SecretKey": {"type": "string", "min": 2, "sensitive": True},
    "Name": {"type": "string", "min": 1, "max": 5, "pattern": "[a-z.]+"},
    "Kind": {"type": "string", "enum": ["red", "blue"]},
    "Count": {"type": "integer", "min": 2, "max": 4},
    "Big": {"type": "long", "max": 10},
    "Ratio": {"type": "double"},
    "Rate": {"type": "float"},
    "Flag": {"type": "boolean"},
    "Labels": {"type": "map", "key": {"shape": "LabelKey"}, "value": {"shape": "LabelValue"}, "max": 2},
    "LabelKey": {"type": "string", "min": 2},
    "LabelValue": {"type": "string", "max": 3},
    "Names": {"type": "list", "member": {"shape": "Name"}, "min": 1, "max": 2},
    "Choice": {"type": "structure", "union": True, "members": {"left": {"shape": "Name"}, "right": {"shape": "Name"}}},
    "Secret": {
        "type": "structure",
        "sensitive": True,
        "members": {
            "code": {"shape": "Count"},
            "words": {"shape": "Names"},
            "pairs": {"shape": "Labels"},
            "on": {"shape": "Flag"},
            "level": {"shape": "Ratio"},
        },
    },
    "When": {"type": "timestamp"},
}
SHAPE = botocore.model.ShapeResolver(SHAPES).get_shape_by_name("Request")


def decode_error(value: Any) -> str:
    with pytest.raises(DecodeError) as raised:
        model_rules.decode(value, SHAPE)
    return str(raised.value)


# -- Decoding -----------------------------------------------------------------------------------------


def test_strings_become_the_types_the_model_asks_for() -> None:
    delivered = {
        "name": "ab",
        "count": " 3 ",
        "big": "-7",
        "ratio": "2.5",
        "rate": 4,
        "flag": "TRUE",
        "labels": {"ab": "x"},
        "names": ["a", "b"],
        "secret": {"code": "2", "words": ["z"]},
    }
    assert model_rules.decode(delivered, SHAPE) == {
        "name": "ab",
        "count": 3,
        "big": -7,
        "ratio": 2.5,
        "rate": 4.0,
        "flag": True,
        "labels": {"ab": "x"},
        "names": ["a", "b"],
        "secret": {"code": 2, "words": ["z"]},
    }
    typed = {"count": 3, "big": 2, "flag": False, "ratio": 1}
    assert model_rules.decode(typed, SHAPE) == {"count": 3, "big": 2, "flag": False, "ratio": 1.0}
    assert model_rules.decode({"flag": "false"}, SHAPE) == {"flag": False}
    assert model_rules.decode({"flag": "True"}, SHAPE) == {"flag": True}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["x"], "property <root> (): expected an object, got list"),
        ({"bogus": 1, "other": 2}, "unknown member(s) bogus, other; known: name, kind, count, big, ratio, rate, "),
        ({"labels": ["x"]}, "property labels (labels): expected a map, got list"),
        ({"names": "a"}, "property names (names): expected a list, got str"),
        ({"names": ["a", 5]}, "property names[1] (names[1]): expected a string, got int 5"),
        ({"labels": {"ab": 7}}, "property labels['ab'] (labels['ab']): expected a string, got int 7"),
        ({"flag": "yes"}, "property flag (flag): expected true or false, got str 'yes'"),
        ({"flag": 1}, "property flag (flag): expected true or false, got int 1"),
        ({"count": True}, "property count (count): expected an integer, got bool True"),
        ({"count": "2.5"}, "property count (count): expected an integer, got str '2.5'"),
        ({"count": 2.0}, "property count (count): expected an integer, got float 2.0"),
        ({"big": "ten"}, "property big (big): expected an integer, got str 'ten'"),
        ({"ratio": "half"}, "property ratio (ratio): expected a number, got str 'half'"),
        ({"rate": None}, "property rate (rate): expected a number, got NoneType None"),
        ({"name": {"a": 1}}, "property name (name): expected a string, got a dict"),
        ({"when": 5}, "property when (when): expected a string, got int 5"),  # a timestamp: its ISO 8601 text
        (
            {"secret": {"code": "two"}},
            f"property secret.code (secret.code): expected an integer, got a str ({REDACTED})",
        ),
        (
            {"secret": {"words": [3]}},
            f"property secret.words[0] (secret.words[0]): expected a string, got a int ({REDACTED})",
        ),
        ({"secret": {"pairs": {"ab": 1}}}, "property secret.pairs[<entry 1>] (secret.pairs[<entry 1>]): expected a "),
        ({"secret": {"code": 2.5}}, f"expected an integer, got a float ({REDACTED})"),
        (
            {"secret": {"code": True}},
            f"property secret.code (secret.code): expected an integer, got a bool ({REDACTED})",
        ),
        (
            {"secret": {"on": "maybe"}},
            f"property secret.on (secret.on): expected true or false, got a str ({REDACTED})",
        ),
        (
            {"secret": {"level": "high"}},
            f"property secret.level (secret.level): expected a number, got a str ({REDACTED})",
        ),
        ({"labels": {5: "x"}}, "property labels[5] (labels[5]): expected a string, got int 5"),
        (
            {"secret": {"pairs": {5: "x"}}},
            f"property secret.pairs[<entry 1>] (secret.pairs[<entry 1>]): expected a string, got a int ({REDACTED})",
        ),
        ({"secret": "x"}, "property secret (secret): expected an object, got str"),
    ],
)
def test_what_cannot_be_decoded_is_named_by_its_path(value: Any, message: str) -> None:
    assert message in decode_error(value)


def test_a_decode_error_keeps_the_path_it_is_about() -> None:
    with pytest.raises(DecodeError) as raised:
        model_rules.decode({"names": ["a", 5]}, SHAPE)
    assert raised.value.path == "names[1]"
    assert str(DecodeError("", "broken")) == "property <root> (): broken"


def test_sensitive_values_are_never_repeated_in_decode_errors() -> None:
    for value in ({"secret": {"code": "hunter2"}}, {"secret": {"words": [12345]}}, {"secret": {"pairs": {"k9": 42}}}):
        message = decode_error(value)
        assert REDACTED in message
        assert "hunter2" not in message and "12345" not in message and "42" not in message and "k9" not in message


# -- Checking -----------------------------------------------------------------------------------------


def problems(value: Any, **kwargs: Any) -> list[Problem]:
    return model_rules.check(value, SHAPE, **kwargs)


def test_a_valid_request_has_no_problem() -> None:
    good = {
        "name": "a.b",
        "kind": "red",
        "count": 4,
        "big": 10,
        "ratio": 1.5,
        "flag": False,
        "labels": {"ab": "xyz"},
        "names": ["a", "b"],
        "choice": {"left": "a"},
        "secret": {"code": 2},
    }
    assert problems(good) == []
    assert problems({**good, "count": 2, "name": "a", "labels": {}}) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, [Problem("name", None, "is required")]),
        ({"name": None}, [Problem("name", None, "is required")]),
        ({"name": "a", "bogus": 1}, [Problem("bogus", 1, "is not a member the API knows")]),
        ({"name": "a", "inner": {}}, [Problem("inner.name", None, "is required")]),
        ({"name": "a", "inner": {"name": "a", "x": 1}}, [Problem("inner.x", 1, "is not a member the API knows")]),
        (
            {"name": "a", "codes": {"k": "v", "key": "toolong"}},
            [
                Problem("codes[<entry 1>]", REDACTED, "key must be at least 2 characters long"),
                Problem("codes[<entry 2>]", "toolong", "must be at most 3 characters long"),
            ],
        ),
        ("a", [Problem("", "a", "must be an object")]),
        (
            {"name": ""},
            [
                Problem("name", "", "must be between 1 and 5 characters long"),
                Problem("name", "", "must match the pattern '[a-z.]+'"),
            ],
        ),
        ({"name": "abcdef"}, [Problem("name", "abcdef", "must be between 1 and 5 characters long")]),
        ({"name": "A"}, [Problem("name", "A", "must match the pattern '[a-z.]+'")]),
        ({"name": 7}, [Problem("name", 7, "must be a string")]),
        (
            {"name": "a", "kind": "green"},
            [Problem("kind", "green", "must be one of red, blue (from the installed service model)")],
        ),
        ({"name": "a", "count": 1}, [Problem("count", 1, "must be between 2 and 4")]),
        ({"name": "a", "count": 5}, [Problem("count", 5, "must be between 2 and 4")]),
        ({"name": "a", "count": "3"}, [Problem("count", "3", "must be an integer")]),
        ({"name": "a", "count": True}, [Problem("count", True, "must be an integer")]),
        ({"name": "a", "big": 11}, [Problem("big", 11, "must be at most 10")]),
        ({"name": "a", "flag": "true"}, [Problem("flag", "true", "must be true or false")]),
        ({"name": "a", "labels": []}, [Problem("labels", [], "must be a map")]),
        (
            {"name": "a", "labels": {"a": "v", "bb": "v", "cc": "long"}},
            [
                Problem("labels", "3 entries", "must be at most 2 entries"),
                Problem("labels['a']", "a", "key must be at least 2 characters long"),
                Problem("labels['cc']", "long", "must be at most 3 characters long"),
            ],
        ),
        ({"name": "a", "names": "a"}, [Problem("names", "a", "must be a list")]),
        ({"name": "a", "names": []}, [Problem("names", "0 items", "must be between 1 and 2 items")]),
        (
            {"name": "a", "names": ["a", "b", "C"]},
            [
                Problem("names", "3 items", "must be between 1 and 2 items"),
                Problem("names[2]", "C", "must match the pattern '[a-z.]+'"),
            ],
        ),
        ({"name": "a", "choice": {}}, [Problem("choice", {}, "must set exactly one of its members (left, right)")]),
        (
            {"name": "a", "choice": {"left": "a", "right": "b"}},
            [
                Problem(
                    "choice",
                    {"left": "a", "right": "b"},
                    "must set exactly one of its members (left, right), not left and right",
                )
            ],
        ),
        (
            {"name": "a", "secret": {"code": 9, "words": ["TOP"], "pairs": {"k": "secret"}}},
            [
                Problem("secret.code", REDACTED, "must be between 2 and 4"),
                Problem("secret.words[0]", REDACTED, "must match the pattern '[a-z.]+'"),
                Problem("secret.pairs[<entry 1>]", REDACTED, "key must be at least 2 characters long"),
                Problem("secret.pairs[<entry 1>]", REDACTED, "must be at most 3 characters long"),
            ],
        ),
    ],
)
def test_each_broken_rule_is_one_problem_with_its_path_value_and_rule(value: Any, expected: list[Problem]) -> None:
    assert problems(value) == expected


def test_values_known_only_at_deploy_time_are_not_checked() -> None:
    token = "${Token[TOKEN.1]}"

    def is_token(value: Any) -> bool:
        return value == token or value == {"Ref": "X"}

    assert problems({"name": token, "count": token, "labels": {"Ref": "X"}}, is_token=is_token) == []
    assert problems({"name": token, "count": 9}, is_token=is_token) == [Problem("count", 9, "must be between 2 and 4")]
    assert problems(token, is_token=is_token) == []
    assert problems({"name": token}) == [
        Problem("name", token, "must be between 1 and 5 characters long"),
        Problem("name", token, "must match the pattern '[a-z.]+'"),
    ]


def test_a_range_with_one_bound_says_which() -> None:
    low_only = botocore.model.ShapeResolver({"N": {"type": "integer", "min": 3}}).get_shape_by_name("N")
    assert model_rules.check(2, low_only) == [Problem("", 2, "must be at least 3")]
    assert model_rules.check(3, low_only) == []
    high_only = botocore.model.ShapeResolver({"N": {"type": "integer", "max": 3}}).get_shape_by_name("N")
    assert model_rules.check(4, high_only) == [Problem("", 4, "must be at most 3")]
    assert model_rules.check(-9, high_only) == []
    bounds = botocore.model.ShapeResolver(
        {"L": {"type": "list", "member": {"shape": "S"}, "min": 2}, "S": {"type": "string"}}
    )
    assert model_rules.check(["a"], bounds.get_shape_by_name("L")) == [
        Problem("", "1 items", "must be at least 2 items")
    ]


# -- Patterns, paths and how values are shown -----------------------------------------------------------


def test_a_dot_in_a_pattern_is_javas_dot_except_where_it_is_a_literal() -> None:
    assert model_rules.java_dot("a.b") == "a[^\\n\\r\\u0085\\u2028\\u2029]b"
    assert model_rules.java_dot("a\\.b[.]c[^.]d\\\\.") == "a\\.b[.]c[^.]d\\\\[^\\n\\r\\u0085\\u2028\\u2029]"
    assert model_rules.java_dot("[a\\]b.]c.") == "[a\\]b.]c[^\\n\\r\\u0085\\u2028\\u2029]"
    assert model_rules.matches("a\u2028b", "a.b") is False and model_rules.matches("a-b", "a.b") is True
    assert model_rules.matches("x.", "[x\\]].") is True


@pytest.mark.parametrize(
    ("path", "python"),
    [
        ("", ""),
        ("configuredAudienceModelArn", "configured_audience_model_arn"),
        ("seedAudience.sqlParameters.queryString", "seed_audience.sql_parameters.query_string"),
        ("seedAudience.sqlComputeConfiguration", "seed_audience.sql_compute_configuration"),
        (
            "seedAudience.sqlComputeConfiguration.worker.properties.spark['a.b'].x",
            "seed_audience.sql_compute_configuration.spark_properties['a.b'].x",
        ),
        ("names[1]", "names[1]"),
        ("tags['k'].valueOf", "tags['k'].value_of"),
        ("tags['k']!", "tags['k']!"),
        ("seedAudience.roleArn.someThing", "seed_audience.role.some_thing"),
        (
            "seedAudience.sqlComputeConfiguration.worker.number.x.yZ",
            "seed_audience.sql_compute_configuration.number.x.y_z",
        ),
    ],
)
def test_api_paths_name_the_python_props(path: str, python: str) -> None:
    assert model_rules.python_name(path) == python


def test_a_map_entry_is_named_by_its_key_or_only_by_its_position_when_sensitive() -> None:
    assert model_rules.entry_path("tags", "Team", 3) == "tags['Team']"
    assert model_rules.entry_path("p", "Team", 3, hidden=True) == "p[<entry 3>]"


@pytest.mark.parametrize(
    ("value", "limit", "shown"),
    [
        ("abc", 2048, "'abc'"),
        (REDACTED, 2048, REDACTED),
        (object(), 2048, "a object object"),
        ("x" * 10, 10, "'xxxxxxxxxx'"),
        ("a" + "x" * 9 + "z", 10, "'axxxxxxxxxz' ... 'axxxxxxxxxz' (11 chars)"),
        ([1, 2, 3], 5, "[1, 2, 3] ... [1, 2, 3] (9 chars)"),
        ("<b> object at 0xff", 2048, "'<b> object at 0xff'"),
    ],
)
def test_values_are_shown_whole_or_by_their_ends_and_length(value: Any, limit: int, shown: str) -> None:
    assert model_rules.shorten(value, limit) == shown


def test_a_long_value_is_shown_by_its_first_and_last_forty_characters() -> None:
    value = "b" + "d" * 4998 + "e"
    assert model_rules.shorten(value) == f"{repr(value)[:40]} ... {repr(value)[-40:]} (5000 chars)"


# -- The documented rules (tags, the seed) ------------------------------------------------------------


def test_user_tags_leave_one_slot_and_the_reserved_prefixes_to_the_library() -> None:
    never = lambda _v: False  # noqa: E731
    forty_nine = {f"k{i}": "v" for i in range(49)}
    assert model_rules.tag_rules(forty_nine, never) == []
    assert model_rules.tag_rules({**forty_nine, "x": "v"}, never) == [
        Problem("tags", "50 tags", "must have at most 49 user tags (50 per resource, one is the library's)")
    ]
    assert model_rules.tag_rules({**forty_nine, "x": "v"}, never, library=False) == []
    assert model_rules.tag_rules({**forty_nine, "x": "v", "y": "v"}, never, "labels", library=False) == [
        Problem("labels", "51 tags", "must have at most 50 tags")
    ]
    reserved = {"ok": "v", "AWS:x": "v", "Cdk-CleanRooms-ML:y": "v"}
    assert model_rules.tag_rules(reserved, never) == [
        Problem("tags['AWS:x']", "AWS:x", "key must not start with 'aws:' (reserved for AWS, any case)"),
        Problem(
            "tags['Cdk-CleanRooms-ML:y']",
            "Cdk-CleanRooms-ML:y",
            "key must not start with 'cdk-cleanrooms-ml:' (reserved for the library, any case)",
        ),
    ]
    assert model_rules.tag_rules(reserved, never, library=False) == [
        Problem("tags['AWS:x']", "AWS:x", "key must not start with 'aws:' (reserved for AWS, any case)")
    ]
    assert model_rules.tag_rules({"aws:x": "v"}, lambda v: v == "aws:x") == []  # a token key: unknown yet
    assert model_rules.tag_rules({"aws:x": "v"}, lambda v: isinstance(v, dict)) == []  # the whole map a token
    assert model_rules.tag_rules(["aws:x"], never) == []  # not a map: the model's check says so


def seed_problems(seed: Any, token: Any = None) -> list[Problem]:
    request = {"name": "n", "configuredAudienceModelArn": MODEL_ARN, "seedAudience": seed}
    return model_rules.documented_rules(SPEC.type_name, request, token)


def test_a_seed_comes_from_exactly_one_place_and_compute_goes_only_with_sql() -> None:
    s3 = {"s3Uri": "s3://b/k"}
    assert seed_problems({"roleArn": ROLE_ARN, "dataSource": s3}) == []
    assert seed_problems({"roleArn": ROLE_ARN, "sqlParameters": {"analysisTemplateArn": "arn:t"}}) == []
    assert seed_problems({"roleArn": ROLE_ARN}) == [
        Problem(
            "seedAudience",
            "neither",
            "must come from exactly one place: dataSource (S3) or sqlParameters (a protected query)",
        )
    ]
    assert seed_problems({"roleArn": ROLE_ARN, "dataSource": s3, "sqlParameters": {"queryString": "q"}})[0] == Problem(
        "seedAudience",
        "dataSource, sqlParameters",
        "must come from exactly one place: dataSource (S3) or sqlParameters (a protected query)",
    )
    assert seed_problems({"roleArn": ROLE_ARN, "sqlParameters": {"queryString": "", "analysisTemplateArn": ""}}) == [
        Problem(
            "seedAudience.sqlParameters", "neither", "must carry exactly one of queryString and analysisTemplateArn"
        )
    ]
    both = {"queryString": "q", "analysisTemplateArn": "arn:t"}
    assert seed_problems({"roleArn": ROLE_ARN, "sqlParameters": both}) == [
        Problem(
            "seedAudience.sqlParameters",
            "queryString, analysisTemplateArn",
            "must carry exactly one of queryString and analysisTemplateArn",
        )
    ]
    compute = {"worker": {"type": "CR.1X", "number": 2}}
    assert (
        seed_problems({"roleArn": ROLE_ARN, "sqlParameters": {"queryString": "q"}, "sqlComputeConfiguration": compute})
        == []
    )
    assert seed_problems({"roleArn": ROLE_ARN, "dataSource": s3, "sqlComputeConfiguration": compute}) == [
        Problem(
            "seedAudience.sqlComputeConfiguration",
            compute,
            "only goes with a SQL seed (sqlParameters); an S3 seed has no compute to configure",
        )
    ]


def test_seed_rules_wait_for_values_known_only_at_deploy_time() -> None:
    def is_token(value: Any) -> bool:
        return value in ("TOKEN", {"Ref": "Seed"}, {"Ref": "Sql"})

    assert seed_problems("TOKEN", is_token) == []
    assert seed_problems({"Ref": "Seed"}, is_token) == []  # CDK renders a token as an intrinsic, an object
    assert seed_problems({"roleArn": ROLE_ARN, "sqlParameters": {"Ref": "Sql"}}, is_token) == []
    assert seed_problems({"roleArn": ROLE_ARN, "sqlParameters": "TOKEN"}, is_token) == []
    assert seed_problems("not-a-seed") == []  # not an object: the model's check says so
    library_tag = {
        "seedAudience": {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://b/k"}},
        "tags": {"cdk-cleanrooms-ml:x": "v"},
    }
    assert model_rules.documented_rules(SPEC.type_name, library_tag, library=False) == []  # the service's rules only
    assert len(model_rules.documented_rules(SPEC.type_name, library_tag)) == 1
    assert model_rules.documented_rules("Custom::Unknown", {"seedAudience": {}, "tags": {"aws:x": "v"}}) == [
        Problem("tags['aws:x']", "aws:x", "key must not start with 'aws:' (reserved for AWS, any case)")
    ]


# -- The handler's own check of what it receives --------------------------------------------------------


def handler_error(seed: dict[str, Any], **extra: Any) -> str:
    shape = service.input_shape("cleanroomsml", SPEC.create)
    raw, _control = properties.split({"configuredAudienceModelArn": MODEL_ARN, "seedAudience": seed, **extra})
    with pytest.raises(properties.PropertyError) as raised:
        properties.decode_request(SPEC, raw, shape)
    return str(raised.value)


def test_the_handler_refuses_a_seed_from_two_places_even_without_a_name() -> None:
    message = handler_error(
        {"roleArn": ROLE_ARN, "dataSource": {"s3Uri": "s3://b/k"}, "sqlParameters": {"queryString": "q"}}
    )
    assert message == (
        "invalid audience generation job properties:\n"
        "property seedAudience (seed_audience) = 'dataSource, sqlParameters': must come from exactly one place: "
        "dataSource (S3) or sqlParameters (a protected query)"
    )


def test_the_handler_lists_every_problem_one_per_line() -> None:
    message = handler_error({"roleArn": "role"}, name="", tags={"aws:x": "v"})
    assert message.splitlines() == [
        "invalid audience generation job properties:",
        "property name (name) = '': must be between 1 and 63 characters long",
        "property name (name) = '': must match the pattern '(?!\\\\s*$)[\\\\u0020-\\\\uD7FF\\\\uE000-\\\\uFFFD"
        "\\\\uD800\\\\uDBFF-\\\\uDC00\\\\uDFFF\\\\t]*'",
        "property seedAudience.roleArn (seed_audience.role) = 'role': must be between 20 and 2048 characters long",
        "property seedAudience.roleArn (seed_audience.role) = 'role': must match the pattern "
        "'arn:aws[-a-z]*:iam::[0-9]{12}:role/.+'",
        "property tags['aws:x'] (tags['aws:x']) = 'aws:x': key must not start with 'aws:' (reserved for AWS, any case)",
        "property seedAudience (seed_audience) = 'neither': must come from exactly one place: dataSource (S3) or "
        "sqlParameters (a protected query)",
    ]


# -- Timestamps and percentage sizes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2024-01-31", True),
        ("2024-01-31T10:59:59Z", True),  # every field at its largest
        ("2024-01-31T23:00:00+23:59", True),  # the largest offset
        ("2024-02-29T00:00", True),  # a leap day
        ("2024-02-30", False),  # no such day
        ("2023-02-29", False),
        ("2024-01-31T24:00:00Z", False),  # hours end at 23
        ("2024-01-31T10:60:00Z", False),  # minutes at 59
        ("2024-01-31T10:00:60Z", False),  # seconds at 59
        ("2024-01-31T10:00:00+24:00", False),  # offsets end at 23:59
        ("2024-01-31T10:00:00+05:60", False),
        ("2024-01-31T10:00:00+24:60", False),
        ("31/01/2024", False),
    ],
)
def test_a_timestamp_is_an_iso_8601_date_and_time_that_exists(text: str, valid: bool) -> None:
    assert model_rules.is_iso_8601(text) is valid
    expected = (
        [] if valid else [Problem("when", text, "must be an ISO 8601 date and time, such as 2024-01-31T00:00:00Z")]
    )
    assert problems({"name": "a", "when": text}) == expected


def test_a_member_of_a_type_the_handler_cannot_decode_is_named() -> None:
    blob = botocore.model.ShapeResolver(
        {"R": {"type": "structure", "members": {"data": {"shape": "B"}}}, "B": {"type": "blob"}}
    ).get_shape_by_name("R")
    with pytest.raises(DecodeError) as raised:
        model_rules.decode({"data": "AAAA"}, blob)
    assert raised.value.path == "data"
    assert str(raised.value) == "property data (data): members of type blob are not supported"


EXPORT_JOB = "Custom::CleanRoomsMlAudienceExportJob"
CONFIGURED_MODEL = "Custom::CleanRoomsMlConfiguredAudienceModel"
PERCENT_RULE = "must be at most 100 for a PERCENTAGE size (the service takes 1-100 percent)"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ({"type": "PERCENTAGE", "value": 100}, []),
        ({"type": "PERCENTAGE", "value": 101}, [Problem("audienceSize.value", 101, PERCENT_RULE)]),
        ({"type": "ABSOLUTE", "value": 50000}, []),  # the model's range (up to 20,000,000) is the absolute one
        ({"type": "percentage", "value": 101}, []),  # not the enum's value: the model's check says so
        ({"type": "PERCENTAGE", "value": True}, []),  # not a number: the model's check says so
        ({"type": "PERCENTAGE", "value": "101"}, []),
        ({"value": 101}, []),
        (None, []),
        ("PERCENTAGE", []),
    ],
)
def test_an_export_of_a_percentage_takes_at_most_100_percent(size: Any, expected: list[Problem]) -> None:
    request = {} if size is None else {"audienceSize": size}
    assert model_rules.documented_rules(EXPORT_JOB, request) == expected


def test_a_percentage_known_only_at_deploy_time_is_not_checked() -> None:
    size = {"type": "PERCENTAGE", "value": 150}
    export = {"audienceSize": size}
    assert model_rules.documented_rules(EXPORT_JOB, export, lambda v: v == 150) == []
    assert model_rules.documented_rules(EXPORT_JOB, export, lambda v: v is size) == []
    assert model_rules.documented_rules(EXPORT_JOB, export, lambda v: v == 7) == [
        Problem("audienceSize.value", 150, PERCENT_RULE)
    ]
    config = {"audienceSizeType": "PERCENTAGE", "audienceSizeBins": [150]}
    model = {"audienceSizeConfig": config}
    assert model_rules.documented_rules(CONFIGURED_MODEL, model, lambda v: v is config) == []
    assert model_rules.documented_rules(CONFIGURED_MODEL, model, lambda v: v == 150) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"audienceSizeType": "PERCENTAGE", "audienceSizeBins": [5, 101, 100, 250]},
            [
                Problem("audienceSizeConfig.audienceSizeBins[1]", 101, PERCENT_RULE),
                Problem("audienceSizeConfig.audienceSizeBins[3]", 250, PERCENT_RULE),
            ],
        ),
        ({"audienceSizeType": "ABSOLUTE", "audienceSizeBins": [500, 20000]}, []),
        ({"audienceSizeType": "PERCENTAGE"}, []),  # no bins: the model's check says they are required
        ({"audienceSizeType": "PERCENTAGE", "audienceSizeBins": 101}, []),
        ({"audienceSizeBins": [101]}, []),
        (None, []),
    ],
)
def test_a_configured_model_of_percentages_has_bins_of_at_most_100(config: Any, expected: list[Problem]) -> None:
    request = {} if config is None else {"audienceSizeConfig": config}
    assert model_rules.documented_rules(CONFIGURED_MODEL, request) == expected
