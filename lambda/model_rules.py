"""Walk the botocore service model: restore CloudFormation's strings to API types, and check constraints.

This one module serves both sides. The Lambda handler uses it to decode the custom resource's
properties (CloudFormation delivers every scalar as a string) and to check them before calling the
service; the construct library loads the same file at synth time to check the user's props. Every
number, pattern and enum comes from the installed service model, none is copied here.

Standard library only (the shapes come from botocore, which the caller already has loaded).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, Protocol

__all__ = ["DecodeError", "Problem", "Shape", "check", "decode", "python_name"]

#: Where the construct's Python props do not follow the API member names by snake_case alone.
_PYTHON_NAMES = {
    "seedAudience.roleArn": "seed_audience.role",
    "seedAudience.sqlComputeConfiguration.worker": "seed_audience.sql_compute_configuration",
    "seedAudience.sqlComputeConfiguration.worker.type": "seed_audience.sql_compute_configuration.type",
    "seedAudience.sqlComputeConfiguration.worker.number": "seed_audience.sql_compute_configuration.number",
    "seedAudience.sqlComputeConfiguration.worker.properties": "seed_audience.sql_compute_configuration",
    "seedAudience.sqlComputeConfiguration.worker.properties.spark": (
        "seed_audience.sql_compute_configuration.spark_properties"
    ),
}


#: Shown instead of a value that the service model marks sensitive (SQL parameters and queries).
REDACTED = "<sensitive value>"


class Shape(Protocol):
    """The parts of botocore.model.Shape that this module reads."""

    name: str
    type_name: str
    metadata: Mapping[str, Any]


class Problem(NamedTuple):
    """One broken rule: the API member path (dotted), the offending value, and the rule in words."""

    path: str
    value: Any
    rule: str


class DecodeError(ValueError):
    """A property cannot be turned into the type its API member requires."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"property {path or '<root>'} ({python_name(path)}): {message}")
        self.path = path


#: A map entry or list item in a path: ``['CostCenter']``, ``[<entry 2>]`` (a sensitive key), ``[0]``.
_SUBSCRIPT = re.compile(r"""\[(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\]'"]*)\]""")
_MEMBER = re.compile(r"\.?([A-Za-z0-9_]+)")


def python_name(path: str) -> str:
    """The construct prop that an API member path comes from, e.g. seedAudience.s3Uri -> seed_audience.s3_uri.

    Map keys (``tags['CostCenter']``) keep their own spelling: only member names are converted.
    """
    first = _SUBSCRIPT.search(path)
    head, tail = (path[: first.start()], path[first.start() :]) if first else (path, "")
    parts = head.split(".") if head else []
    converted = ".".join(_snake(p) for p in parts)
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in _PYTHON_NAMES:
            converted = ".".join([_PYTHON_NAMES[prefix], *(_snake(p) for p in parts[cut:])])
            break
    out = [converted]
    position = 0
    while position < len(tail):
        subscript = _SUBSCRIPT.match(tail, position)
        member = subscript or _MEMBER.match(tail, position)
        if member is None:  # not a path we produced: keep the rest as it is
            out.append(tail[position:])
            break
        out.append(member.group(0) if subscript else "." + _snake(member.group(1)))
        position = member.end()
    return "".join(out)


def _snake(member: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", member).lower()


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def entry_path(path: str, key: Any, position: int, hidden: bool = False) -> str:
    """The path of a map entry: ``tags['CostCenter']``; a sensitive map's key is named by position only."""
    return f"{path}[<entry {position}>]" if hidden else f"{path}[{key!r}]"


# --------------------------------------------------------------------------------------------------
# Decoding: CloudFormation hands every scalar over as a string.


def decode(value: Any, shape: Any, path: str = "", hidden: bool = False) -> Any:
    """Return ``value`` converted to the Python types that ``shape`` asks for.

    Strings become booleans and integers where the model says so; structures keep only members the
    model knows (an unknown member is an error, not silently dropped); maps and lists are walked.
    """
    kind = shape.type_name
    hidden = hidden or bool(shape.metadata.get("sensitive"))
    if kind == "structure":
        if not isinstance(value, dict):
            raise DecodeError(path, f"expected an object, got {type(value).__name__}")
        members = shape.members
        unknown = sorted(set(value) - set(members))
        if unknown:
            raise DecodeError(path, f"unknown member(s) {', '.join(unknown)}; known: {', '.join(members)}")
        return {name: decode(item, members[name], _join(path, name), hidden) for name, item in value.items()}
    if kind == "map":
        if not isinstance(value, dict):
            raise DecodeError(path, f"expected a map, got {type(value).__name__}")
        decoded = {}
        for position, (key, item) in enumerate(value.items(), start=1):
            entry = entry_path(path, key, position, hidden)
            decoded[decode(key, shape.key, entry, hidden)] = decode(item, shape.value, entry, hidden)
        return decoded
    if kind == "list":
        if not isinstance(value, list):
            raise DecodeError(path, f"expected a list, got {type(value).__name__}")
        return [decode(item, shape.member, f"{path}[{i}]", hidden) for i, item in enumerate(value)]
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise DecodeError(path, f"expected true or false, got {_describe(value, hidden)}")
    if kind in ("integer", "long"):
        if isinstance(value, bool):
            raise DecodeError(path, f"expected an integer, got {_describe(value, hidden)}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            return int(value)
        raise DecodeError(path, f"expected an integer, got {_describe(value, hidden)}")
    if kind in ("double", "float"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DecodeError(path, f"expected a number, got {_describe(value, hidden)}") from None
    if kind in ("string", "timestamp"):  # a timestamp stays the text given (botocore serializes it)
        if not isinstance(value, str):
            raise DecodeError(path, f"expected a string, got {_describe(value, hidden)}")
        return value
    raise DecodeError(path, f"members of type {kind} are not supported")


def _describe(value: Any, hidden: bool) -> str:
    if hidden:
        return f"a {type(value).__name__} ({REDACTED})"
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    return f"{type(value).__name__} {shorten(value)}"


#: Values up to this length are shown whole: an ARN may be 2,048 characters long (the model's maximum for
#: every ARN member), and the part a message is about (region, partition, account) must not be cut out.
SHOWN_WHOLE_CHARS = 2048

#: A longer value is beyond every length the service accepts: its start, its end and its length identify it.
SHOWN_EDGE_CHARS = 40


def shorten(value: Any, limit: int = SHOWN_WHOLE_CHARS) -> str:
    """A value for an error message: quoted, whole up to ``limit`` characters, else its two ends and its length.

    REDACTED stays as it is.
    """
    if value == REDACTED:
        return REDACTED
    text = repr(value)
    if text.startswith("<") and " object at 0x" in text:  # a default repr says nothing but the type
        return f"a {type(value).__name__} object"
    length = len(value) if isinstance(value, str) else len(text)  # a string is measured without its quotes
    if length <= limit:
        return text
    return f"{text[:SHOWN_EDGE_CHARS]} ... {text[-SHOWN_EDGE_CHARS:]} ({len(str(value))} chars)"


# --------------------------------------------------------------------------------------------------
# Checking: every constraint the model declares.


#: What ``.`` matches in Java (and nearly so in ECMAScript): anything but a line terminator.
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"


@cache
def _pattern(regex: str) -> re.Pattern[str]:
    """The model's pattern with the service's semantics.

    The service matches the whole value (Java's ``Pattern.matches``), so we use ``fullmatch``;
    ``\\w``, ``\\d`` and ``\\s`` are ASCII-only in Java (``re.ASCII``), and ``.`` stops at line
    terminators there (Python's ``.`` stops at ``\\n`` only, so it is rewritten).
    """
    return re.compile(java_dot(regex), re.ASCII)


def java_dot(regex: str) -> str:
    """``regex`` with each bare ``.`` (not escaped, not in a character class) made Java's ``.``."""
    out: list[str] = []
    in_class = escaped = False
    for char in regex:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == ".":
            out.append(_JAVA_DOT)
            continue
        out.append(char)
    return "".join(out)


def matches(value: str, regex: str) -> bool:
    """Whether ``value`` matches the model pattern ``regex`` as the service applies it."""
    return _pattern(regex).fullmatch(value) is not None


def check(value: Any, shape: Any, path: str = "", is_token: Callable[[Any], bool] | None = None) -> list[Problem]:
    """Every problem of ``value`` against ``shape``: required members, unknown members, types, lengths,
    counts, ranges, enums and patterns. Values for which ``is_token(value)`` is true are not checked
    (they are only known at deploy time)."""
    problems: list[Problem] = []
    _check(value, shape, path, is_token or (lambda _v: False), problems, False)
    return problems


def _check(
    value: Any, shape: Any, path: str, is_token: Callable[[Any], bool], out: list[Problem], hidden: bool
) -> None:
    if is_token(value):
        return
    kind = shape.type_name
    meta = shape.metadata
    hidden = hidden or bool(meta.get("sensitive"))
    if hidden:
        out = _Redacting(out)
    if kind == "structure":
        if not isinstance(value, dict):
            out.append(Problem(path, value, "must be an object"))
            return
        members = shape.members
        for name in shape.required_members:
            if value.get(name) is None:
                out.append(Problem(_join(path, name), None, "is required"))
        for name in sorted(set(value) - set(members)):
            out.append(Problem(_join(path, name), value[name], "is not a member the API knows"))
        present = [n for n in members if value.get(n) is not None]
        # A union (tagged union) takes exactly one member: botocore rejects none as well as two.
        if meta.get("union") and len(present) != 1:
            rule = f"must set exactly one of its members ({', '.join(members)})"
            out.append(Problem(path, value, f"{rule}, not {' and '.join(present)}" if present else rule))
        for name in present:
            _check(value[name], members[name], _join(path, name), is_token, out, hidden)
        return
    if kind == "map":
        if not isinstance(value, dict):
            out.append(Problem(path, value, "must be a map"))
            return
        _check_count(value, meta, path, "entries", out)
        for position, (key, item) in enumerate(value.items(), start=1):
            entry = entry_path(path, key, position, hidden or bool(shape.key.metadata.get("sensitive")))
            key_problems: list[Problem] = []
            _check(key, shape.key, entry, is_token, key_problems, hidden)
            out.extend(Problem(p.path, p.value, f"key {p.rule}") for p in key_problems)
            _check(item, shape.value, entry, is_token, out, hidden)
        return
    if kind == "list":
        if not isinstance(value, list):
            out.append(Problem(path, value, "must be a list"))
            return
        _check_count(value, meta, path, "items", out)
        for i, item in enumerate(value):
            _check(item, shape.member, f"{path}[{i}]", is_token, out, hidden)
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            out.append(Problem(path, value, "must be true or false"))
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(Problem(path, value, "must be an integer"))
            return
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            out.append(Problem(path, value, _range_rule(low, high, "")))
        return
    if kind == "timestamp":
        if not isinstance(value, str) or not is_iso_8601(value):
            out.append(Problem(path, value, f"must be an ISO 8601 date and time, such as {ISO_8601_EXAMPLE}"))
        return
    if kind == "string":
        if not isinstance(value, str):
            out.append(Problem(path, value, "must be a string"))
            return
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            out.append(Problem(path, value, _range_rule(low, high, " characters long")))
        enum = meta.get("enum")
        if enum and value not in enum:
            out.append(Problem(path, value, f"must be one of {', '.join(enum)} (from the installed service model)"))
        regex = meta.get("pattern")
        if regex and not matches(value, regex):
            out.append(Problem(path, value, f"must match the pattern {regex!r}"))


#: A timestamp member's text: a date, optionally a time (seconds and fraction optional), optionally a UTC offset.
_ISO_8601 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:Z|[+-](\d{2}):(\d{2}))?)?",
    re.ASCII,
)
ISO_8601_EXAMPLE = "2024-01-31T00:00:00Z"


def is_iso_8601(value: str) -> bool:
    """Whether ``value`` is an ISO 8601 date (and time) that exists, as the API's timestamp members take it."""
    match = _ISO_8601.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second, offset_hours, offset_minutes = (int(g or 0) for g in match.groups())
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return offset_hours < 24 and offset_minutes < 60


class _Redacting(list[Problem]):
    """Collects problems into another list with their values replaced by REDACTED."""

    def __init__(self, target: list[Problem]) -> None:
        super().__init__()
        self._target = target

    def append(self, problem: Problem) -> None:
        self._target.append(Problem(problem.path, REDACTED, problem.rule))

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.append(problem)


def _check_count(value: Any, meta: Mapping[str, Any], path: str, noun: str, out: list[Problem]) -> None:
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and len(value) < low) or (high is not None and len(value) > high):
        out.append(Problem(path, f"{len(value)} {noun}", _range_rule(low, high, f" {noun}")))


def _range_rule(low: Any, high: Any, unit: str) -> str:
    if low is not None and high is not None:
        return f"must be between {low} and {high}{unit}"
    if low is not None:
        return f"must be at least {low}{unit}"
    return f"must be at most {high}{unit}"


# --------------------------------------------------------------------------------------------------
# Rules the API reference states in words but the model does not declare.

#: The API reference: "Maximum number of tags per resource - 50." The handler adds one tag of its own.
MAX_TAGS = 50
MAX_USER_TAGS = MAX_TAGS - 1
#: Tag keys the library keeps for itself (its request digest tag), and the ones AWS reserves.
RESERVED_TAG_PREFIXES = ("aws:", "cdk-cleanrooms-ml:")


def documented_rules(
    type_name: str,
    request: Mapping[str, Any],
    is_token: Callable[[Any], bool] | None = None,
    *,
    library: bool = True,
) -> list[Problem]:
    """Problems with a create request of ``type_name`` that only the documentation describes.

    With ``library`` (the default), also the library's own rules on user tags (one tag slot and the
    ``cdk-cleanrooms-ml:`` prefix are the library's); without, only what the service itself enforces.
    """
    token = is_token or (lambda _v: False)
    out = tag_rules(request.get("tags"), token, library=library)
    rules = _TYPE_RULES.get(type_name)
    if rules is not None:
        out += rules(request, token)
    return out


def tag_rules(tags: Any, token: Callable[[Any], bool], path: str = "tags", *, library: bool = True) -> list[Problem]:
    """At most MAX_USER_TAGS user tags (MAX_TAGS for the service), none with a reserved key prefix."""
    out: list[Problem] = []
    if not isinstance(tags, dict) or token(tags):
        return out
    limit = MAX_USER_TAGS if library else MAX_TAGS
    if len(tags) > limit:
        rule = f"must have at most {limit} user tags ({MAX_TAGS} per resource, one is the library's)"
        out.append(Problem(path, f"{len(tags)} tags", rule if library else f"must have at most {limit} tags"))
    prefixes = RESERVED_TAG_PREFIXES if library else RESERVED_TAG_PREFIXES[:1]
    for position, key in enumerate(tags, start=1):
        if isinstance(key, str) and not token(key):
            reserved = next((p for p in prefixes if key.lower().startswith(p)), None)
            if reserved is not None:
                out.append(
                    Problem(
                        entry_path(path, key, position),
                        key,
                        f"key must not start with {reserved!r} (reserved for "
                        f"{'AWS' if reserved == 'aws:' else 'the library'}, any case)",
                    )
                )
    return out


def _audience_generation_job_rules(request: Mapping[str, Any], token: Callable[[Any], bool]) -> list[Problem]:
    out: list[Problem] = []
    seed = request.get("seedAudience")
    if isinstance(seed, dict) and not token(seed):
        sources = [name for name in ("dataSource", "sqlParameters") if seed.get(name) is not None]
        if len(sources) != 1:
            out.append(
                Problem(
                    "seedAudience",
                    ", ".join(sources) or "neither",
                    "must come from exactly one place: dataSource (S3) or sqlParameters (a protected query)",
                )
            )
        sql = seed.get("sqlParameters")
        if isinstance(sql, dict) and not token(sql):
            given = [n for n in ("queryString", "analysisTemplateArn") if sql.get(n) not in (None, "")]
            if len(given) != 1:
                out.append(
                    Problem(
                        "seedAudience.sqlParameters",
                        ", ".join(given) or "neither",
                        "must carry exactly one of queryString and analysisTemplateArn",
                    )
                )
        if seed.get("sqlComputeConfiguration") is not None and seed.get("sqlParameters") is None:
            out.append(
                Problem(
                    "seedAudience.sqlComputeConfiguration",
                    seed["sqlComputeConfiguration"],
                    "only goes with a SQL seed (sqlParameters); an S3 seed has no compute to configure",
                )
            )
    return out


#: The API reference (AudienceSize, AudienceSizeConfig): a PERCENTAGE size is "in the range 1-100 percent"; the
#: model's range (1 to 20,000,000) is the ABSOLUTE one.
MAX_PERCENTAGE = 100


def _percentages(kind: Any, sizes: list[tuple[str, Any]], token: Callable[[Any], bool]) -> list[Problem]:
    if kind != "PERCENTAGE":
        return []
    rule = f"must be at most {MAX_PERCENTAGE} for a PERCENTAGE size (the service takes 1-100 percent)"
    return [
        Problem(path, value, rule)
        for path, value in sizes
        if isinstance(value, int) and not isinstance(value, bool) and not token(value) and value > MAX_PERCENTAGE
    ]


def _audience_export_job_rules(request: Mapping[str, Any], token: Callable[[Any], bool]) -> list[Problem]:
    size = request.get("audienceSize")
    if not isinstance(size, dict) or token(size):
        return []
    return _percentages(size.get("type"), [("audienceSize.value", size.get("value"))], token)


def _configured_audience_model_rules(request: Mapping[str, Any], token: Callable[[Any], bool]) -> list[Problem]:
    config = request.get("audienceSizeConfig")
    if not isinstance(config, dict) or token(config) or not isinstance(config.get("audienceSizeBins"), list):
        return []
    sizes = [(f"audienceSizeConfig.audienceSizeBins[{i}]", v) for i, v in enumerate(config["audienceSizeBins"])]
    return _percentages(config.get("audienceSizeType"), sizes, token)


_TYPE_RULES: dict[str, Callable[[Mapping[str, Any], Callable[[Any], bool]], list[Problem]]] = {
    "Custom::CleanRoomsMlAudienceGenerationJob": _audience_generation_job_rules,
    "Custom::CleanRoomsMlAudienceExportJob": _audience_export_job_rules,
    "Custom::CleanRoomsMlConfiguredAudienceModel": _configured_audience_model_rules,
}
