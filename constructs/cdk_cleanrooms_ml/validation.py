"""Synth-time validation: every problem of a job's props, found before anything is deployed.

Three sources of rules:
* the installed botocore service model (required members, lengths, counts, ranges, enums, patterns),
  walked by the handler's own ``model_rules`` so synth and deploy apply the same rules;
* the rules the API reference states in words (user tags, one seed source, ...), also in ``model_rules``;
* what the stack knows (its region and partition) and the library's own props (timeout, poll interval).

Values that are unresolved CDK tokens are skipped here; the handler checks them at deploy time and
its message names the property. All problems of one construct are raised together.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .service_model import model_rules, request_shape, specs

__all__ = ["Issue", "ValidationError", "check_request", "format_issues", "is_token", "seed_request"]

_TOKEN_MARKERS = ("${Token[", "#{Token[", "${TOKEN[")
_ARN_PARTS = re.compile(r"arn:(?P<partition>[^:]+):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):.*")


class ValidationError(ValueError):
    """The props of a construct break one or more rules; the message lists every one of them."""

    def __init__(self, construct_path: str, issues: Iterable[Issue]) -> None:
        self.construct_path = construct_path
        """The path of the construct whose props were rejected."""
        self.issues = list(issues)
        """Every broken rule, in the order found."""
        count = len(self.issues)
        header = f"{construct_path}: {count} invalid prop{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *format_issues(construct_path, self.issues)]))


@dataclass(frozen=True)
class Issue:
    """One broken rule: the Python prop, its value, and the rule."""

    prop: str
    value: Any
    rule: str


def format_issues(construct_path: str, issues: Iterable[Issue]) -> list[str]:
    shorten = model_rules().shorten
    return [f"  {construct_path}: {i.prop} = {shorten(i.value)}: {i.rule}" for i in issues]


def is_role(value: Any) -> bool:
    """Whether ``value`` is an ``iam.IRole``: a class of the app's (looked up on the class: no jsii call), or a
    jsii proxy, such as what ``iam.Role.from_role_arn`` returns (asked through jsii)."""
    return hasattr(type(value), "role_arn") or (hasattr(value, "__jsii_ref__") and hasattr(value, "role_arn"))


def is_token(value: Any) -> bool:
    """Whether a value is (or contains at its top) an unresolved CDK token; jsii is called for jsii objects only."""
    if isinstance(value, str):
        return any(marker in value for marker in _TOKEN_MARKERS)
    if isinstance(value, float):
        return abs(value) > 1e280  # CDK encodes number tokens as huge doubles
    if isinstance(value, (bool, int, dict, list, tuple, set)) or value is None:
        return False
    # An IResolvable (Lazy.any, Fn.get_att, a Reference...) is an object only CDK can turn into a value.
    # A Python class that implements it has ``resolve`` (read from the class: no jsii call); a jsii object
    # (possibly a dynamic proxy) is asked through CDK. Any other object (a Duration given as a name, say)
    # is a wrong type and is reported, not skipped.
    if callable(getattr(type(value), "resolve", None)):
        return True
    if hasattr(value, "__jsii_ref__"):
        from aws_cdk import Token

        return bool(Token.is_unresolved(value))
    return False


class _Unchecked:
    """Stands in the request for a part whose Python type is already reported: its members are not checked."""

    def __init__(self, given: Any) -> None:
        self.given = given


def _skip(value: Any) -> bool:
    return isinstance(value, _Unchecked) or is_token(value)


def check_request(request: dict[str, Any], spec: Any = None, names: dict[str, str] | None = None) -> list[Issue]:
    """Every problem of a create request of ``spec``'s type (default: an audience generation job), as the user's
    props name them: the shipped model's constraints (the create call's, and its attachments' calls for their
    members) and the rules the documentation states. ``names``: API member paths -> prop names, where they differ.
    """
    rules = model_rules()
    spec = spec or specs().AUDIENCE_GENERATION_JOB
    attached = {a.member: request_shape(a.put, spec.service).members[a.member] for a in spec.attachments}
    created = {k: v for k, v in request.items() if k not in attached}
    problems = rules.check(created, request_shape(spec.create, spec.service), "", _skip)
    problems += rules.documented_rules(spec.type_name, created, _skip)
    for member, shape in attached.items():
        if member in request:
            problems += rules.check(request[member], shape, member, _skip)
    return [Issue(_prop_name(rules, p.path, names or {}), p.value, p.rule) for p in problems]


def _prop_name(rules: Any, path: str, names: dict[str, str]) -> str:
    for api, prop in sorted(names.items(), key=lambda item: -len(item[0])):
        if path == api or path.startswith(api + ".") or path.startswith(api + "["):
            return prop + str(rules.python_name(path))[len(str(rules.python_name(api))) :]
    return str(rules.python_name(path))


def seed_request(seed: Any) -> tuple[Any, list[Issue]]:
    """The ``seedAudience`` member for a SeedAudience, and the problems with the Python types of its parts.

    A part of the wrong type (a dict where an S3DataSource belongs, say) is reported here and left out
    of the model checks, so the user reads one clear line instead of a Python or jsii traceback.
    """
    from .seed_audience import S3DataSource, SeedAudience, SqlParameters, WorkerComputeConfiguration, WorkerComputeType

    if not isinstance(seed, SeedAudience):
        return _Unchecked(seed), [Issue("seed_audience", seed, "must be a SeedAudience")]
    issues: list[Issue] = []
    rendered: dict[str, Any] = {}
    role = seed.role
    if role is None:
        # The library makes the role when the job is built; otherwise the model's "is required".
        rendered["roleArn"] = _Unchecked(None) if seed.makes_role else None
    elif isinstance(role, str) or is_token(role):
        rendered["roleArn"] = role
    elif is_role(role):
        rendered["roleArn"] = role.role_arn
    else:
        issues.append(Issue("seed_audience.role", role, "must be an iam.IRole or a role ARN string"))
        rendered["roleArn"] = _Unchecked(role)
    parts: tuple[tuple[str, str, Any, Any], ...] = (
        ("dataSource", "data_source", seed.data_source, S3DataSource),
        ("sqlParameters", "sql_parameters", seed.sql_parameters, SqlParameters),
        (
            "sqlComputeConfiguration",
            "sql_compute_configuration",
            seed.sql_compute_configuration,
            WorkerComputeConfiguration,
        ),
    )
    for member, prop, part, kind in parts:
        if part is None:
            continue
        if not isinstance(part, kind):
            issues.append(Issue(f"seed_audience.{prop}", part, f"must be a {kind.__name__}"))
            rendered[member] = _Unchecked(part)
            continue
        bad: dict[str, Any] = {}
        for attribute in ("parameters", "spark_properties"):
            given = getattr(part, attribute, None)
            if given is not None and not isinstance(given, dict):
                issues.append(Issue(f"seed_audience.{prop}.{attribute}", given, "must be a dict of str to str"))
                bad[attribute] = None
        if isinstance(part, WorkerComputeConfiguration) and not isinstance(part.type, (WorkerComputeType, str)):
            issues.append(Issue(f"seed_audience.{prop}.type", part.type, "must be a WorkerComputeType or its name"))
            bad["type"] = ""
        rendered[member] = dataclasses.replace(part, **bad)._render()
        # What was wrong is already reported: mark it so the model checks leave it alone.
        if "parameters" in bad:
            rendered[member]["parameters"] = _Unchecked(part.parameters)
        if "spark_properties" in bad:
            rendered[member]["worker"]["properties"] = {"spark": _Unchecked(part.spark_properties)}
        if "type" in bad:
            rendered[member]["worker"]["type"] = _Unchecked(part.type)
    return rendered, issues


def duration_seconds(duration: Any) -> float | None:
    """A Duration in seconds, fractions kept (CDK's own conversion raises on them); None for anything else."""
    from aws_cdk import Duration

    if not isinstance(duration, Duration):
        return None
    seconds = duration.to_seconds(integral=False)
    return None if is_token(seconds) else float(seconds)


def arn_parts(arn: Any) -> dict[str, str] | None:
    """partition, service, region and account of a concrete ARN; None for a token or a non-ARN."""
    if not isinstance(arn, str) or is_token(arn):
        return None
    match = _ARN_PARTS.fullmatch(arn)
    return match.groupdict() if match else None
