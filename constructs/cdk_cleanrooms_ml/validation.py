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

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .service_model import model_rules, start_request_shape

__all__ = ["Issue", "ValidationError", "check_request", "format_issues", "is_token"]

_TOKEN_MARKERS = ("${Token[", "#{Token[", "${TOKEN[")
_ARN_PARTS = re.compile(r"arn:(?P<partition>[^:]+):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):.*")


class ValidationError(ValueError):
    """The props of a construct break one or more rules; the message lists every one of them."""

    def __init__(self, construct_path: str, issues: Iterable[Issue]) -> None:
        self.construct_path = construct_path
        self.issues = list(issues)
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


def is_token(value: Any) -> bool:
    """Whether a value is (or contains at its top) an unresolved CDK token; pure Python, no jsii call."""
    if isinstance(value, str):
        return any(marker in value for marker in _TOKEN_MARKERS)
    if isinstance(value, float):
        return abs(value) > 1e280  # CDK encodes number tokens as huge doubles
    # Anything else (an IResolvable, say) is an object only CDK can turn into a value.
    return not (isinstance(value, (bool, int, dict, list)) or value is None)


def check_request(request: dict[str, Any]) -> list[Issue]:
    """Every problem of a StartAudienceGenerationJob request, as the user's props name them."""
    rules = model_rules()
    problems = rules.check(request, start_request_shape(), "", is_token) + rules.documented_rules(request, is_token)
    return [Issue(rules.python_name(p.path), p.value, p.rule) for p in problems]


def arn_parts(arn: Any) -> dict[str, str] | None:
    """partition, service, region and account of a concrete ARN; None for a token or a non-ARN."""
    if not isinstance(arn, str) or is_token(arn):
        return None
    match = _ARN_PARTS.fullmatch(arn)
    return match.groupdict() if match else None
