"""Turn a custom resource's properties into the StartAudienceGenerationJob request, and back into attributes.

The resource's properties ARE the API request (the service's own member names), plus a few control
properties in PascalCase that steer the handler and never reach the service. CloudFormation delivers
every scalar as a string; the types are restored by walking the request shape of the service model.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import model_rules

#: Control properties: how the handler behaves, never sent to the service.
SERVICE_TOKEN = "ServiceToken"
WAIT_FOR_COMPLETION = "WaitForCompletion"
TIMEOUT_SECONDS = "TimeoutSeconds"
REMOVAL_POLICY = "RemovalPolicy"
CONTROL_KEYS = frozenset({SERVICE_TOKEN, WAIT_FOR_COMPLETION, TIMEOUT_SECONDS, REMOVAL_POLICY})

#: CloudFormation gives a custom resource at most one hour (ServiceTimeout's maximum).
MAX_TIMEOUT_SECONDS = 3600

#: Members that can change without a new job (tags are updated in place).
IN_PLACE_MEMBERS = frozenset({"tags"})

#: The body CloudFormation accepts is 4096 bytes in all; the metrics get what the rest leaves.
MAX_RELEVANCE_METRICS_BYTES = 2048


class PropertyError(ValueError):
    """The event's properties cannot be a valid request; nothing was sent to the service."""


class Control(NamedTuple):
    """How the handler treats one job (from the control properties)."""

    wait_for_completion: bool = True
    timeout_seconds: int = MAX_TIMEOUT_SECONDS
    retain: bool = False


def split(properties: Any) -> tuple[dict[str, Any], Control]:
    """Separate the API request from the control properties, restoring the control values' types."""
    if not isinstance(properties, dict):
        raise PropertyError("ResourceProperties must be an object")
    request = {k: v for k, v in properties.items() if k not in CONTROL_KEYS}
    wait = _flag(properties.get(WAIT_FOR_COMPLETION, "true"), WAIT_FOR_COMPLETION)
    timeout_raw = properties.get(TIMEOUT_SECONDS, str(MAX_TIMEOUT_SECONDS))
    try:
        timeout = int(str(timeout_raw))
    except ValueError:
        raise PropertyError(f"{TIMEOUT_SECONDS} must be a whole number of seconds") from None
    if not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise PropertyError(f"{TIMEOUT_SECONDS} must be between 1 and {MAX_TIMEOUT_SECONDS}")
    policy = str(properties.get(REMOVAL_POLICY, "destroy")).lower()
    if policy not in ("destroy", "retain"):
        raise PropertyError(f"{REMOVAL_POLICY} must be destroy or retain")
    return request, Control(wait, timeout, policy == "retain")


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise PropertyError(f"{name} must be true or false")


def decode_request(raw: dict[str, Any], shape: Any) -> dict[str, Any]:
    """The typed request, checked against every rule the model and the documentation state.

    Raises PropertyError naming each offending property (values the model marks sensitive are
    not repeated in the message).
    """
    try:
        request: dict[str, Any] = model_rules.decode(raw, shape)
    except model_rules.DecodeError as error:
        raise PropertyError(str(error)) from None
    problems = model_rules.check(request, shape) + model_rules.documented_rules(request)
    if problems:
        lines = [
            f"property {p.path} ({model_rules.python_name(p.path)}) = {model_rules.shorten(p.value)}: {p.rule}"
            for p in problems
        ]
        raise PropertyError("invalid job properties:\n" + "\n".join(lines))
    return request


def replacing_members(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The members whose change needs a new job (everything but tags)."""
    names = (set(old) | set(new)) - IN_PLACE_MEMBERS
    return sorted(name for name in names if old.get(name) != new.get(name))


def attributes(job: dict[str, Any]) -> dict[str, str]:
    """The GetAtt attributes of a job: all keys always present, so a GetAtt never fails on a missing one."""
    metrics = job.get("metrics") or {}
    recall = metrics.get("recallMetric")
    relevance = list(metrics.get("relevanceMetrics") or [])
    relevance_json = json.dumps(relevance, separators=(",", ":"), sort_keys=True)
    while len(relevance_json.encode()) > MAX_RELEVANCE_METRICS_BYTES and relevance:
        relevance.pop()  # keep the response under CloudFormation's 4 KB
        relevance_json = json.dumps(relevance, separators=(",", ":"), sort_keys=True)
    return {
        "AudienceGenerationJobArn": str(job.get("audienceGenerationJobArn", "")),
        "Name": str(job.get("name", "")),
        "Status": str(job.get("status", "")),
        "RecallMetric": "" if recall is None else repr(float(recall)),
        "RelevanceMetrics": relevance_json if metrics else "",
    }
