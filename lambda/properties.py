"""A custom resource's properties: the API request itself, plus a few control properties, and back into attributes.

The properties ARE the create request (the service's own member names), plus control properties in
PascalCase that steer the handler and never reach the service. CloudFormation delivers every scalar
as a string; the types are restored by walking the request shape of the service model. A name the
user did not give is made here, from the resolved request, so that it changes whenever the resource
must be replaced even when the members that changed were deploy-time tokens.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, NamedTuple

import specs
from specs import (
    CLOUDFORMATION_LIMIT_SECONDS,
    MAX_TIMEOUT_SECONDS,
    REQUEST_TAG,
    WAIT_CONDITION_LIMIT_SECONDS,
    ResourceSpec,
)

import model_rules

#: Control properties: how the handler behaves, never sent to the service.
SERVICE_TOKEN = "ServiceToken"
#: CloudFormation's own property (how long it waits for the provider); delivered like ServiceToken.
SERVICE_TIMEOUT = "ServiceTimeout"
WAIT_FOR_COMPLETION = "WaitForCompletion"
TIMEOUT_SECONDS = "TimeoutSeconds"
#: The start of a generated name; the handler appends a digest of the resolved request.
NAME_PREFIX = "NamePrefix"
#: Accepted from templates of 0.1.0 and ignored: CloudFormation's DeletionPolicy decides what is kept.
LEGACY_REMOVAL_POLICY = "RemovalPolicy"
#: The URL of a WaitConditionHandle (a presigned S3 URL: a credential) that a watcher signals once the resource is
#: ready, and how long the WaitCondition waits for it. Only for a type whose spec says ``signals_when_ready``.
SIGNAL_URL = "SignalUrl"
SIGNAL_TIMEOUT_SECONDS = "SignalTimeoutSeconds"
CONTROL_KEYS = frozenset(
    {
        SERVICE_TOKEN,
        SERVICE_TIMEOUT,
        WAIT_FOR_COMPLETION,
        TIMEOUT_SECONDS,
        NAME_PREFIX,
        LEGACY_REMOVAL_POLICY,
        SIGNAL_URL,
        SIGNAL_TIMEOUT_SECONDS,
    }
)

#: CloudFormation accepts a response body of 4,096 bytes; the attributes get this much of it.
MAX_ATTRIBUTES_BYTES = 3072

_DIGEST_LENGTH = 10
_NAME_CHARS = re.compile(r"[^A-Za-z0-9-]+")


class PropertyError(ValueError):
    """The event's properties cannot be a valid request; nothing was sent to the service."""


class Control(NamedTuple):
    """How the handler treats one resource (from the control properties)."""

    wait_for_completion: bool = True
    timeout_seconds: int = MAX_TIMEOUT_SECONDS
    name_prefix: str | None = None
    #: Where the watcher signals readiness (None: nobody waits for it beyond this step).
    signal_url: str | None = None
    signal_timeout_seconds: int = WAIT_CONDITION_LIMIT_SECONDS


def split(properties: Any) -> tuple[dict[str, Any], Control]:
    """Separate the API request from the control properties, restoring the control values' types."""
    if not isinstance(properties, dict):
        raise PropertyError("ResourceProperties must be an object")
    request = {k: v for k, v in properties.items() if k not in CONTROL_KEYS}
    wait = _flag(properties.get(WAIT_FOR_COMPLETION, "true"), WAIT_FOR_COMPLETION)
    timeout = _whole_seconds(
        properties.get(TIMEOUT_SECONDS, str(MAX_TIMEOUT_SECONDS)), TIMEOUT_SECONDS, CLOUDFORMATION_LIMIT_SECONDS
    )
    prefix = properties.get(NAME_PREFIX)
    if prefix is not None and (not isinstance(prefix, str) or not prefix.strip("-")):
        raise PropertyError(f"{NAME_PREFIX} must be a non-empty string")
    signal_url = properties.get(SIGNAL_URL)
    if signal_url is not None:
        signal_url = checked_signal_url(signal_url, SIGNAL_URL)
    signal_timeout = _whole_seconds(
        properties.get(SIGNAL_TIMEOUT_SECONDS, str(WAIT_CONDITION_LIMIT_SECONDS)),
        SIGNAL_TIMEOUT_SECONDS,
        WAIT_CONDITION_LIMIT_SECONDS,
    )
    return request, Control(wait, min(timeout, MAX_TIMEOUT_SECONDS), prefix, signal_url, signal_timeout)


def _whole_seconds(value: Any, name: str, maximum: int) -> int:
    try:
        seconds = int(str(value))
    except ValueError:
        raise PropertyError(f"{name} must be a whole number of seconds") from None
    if not 1 <= seconds <= maximum:
        raise PropertyError(f"{name} must be between 1 and {maximum}")
    return seconds


def checked_signal_url(value: Any, name: str) -> str:
    """A URL a signal may be PUT to: https, or http to this host (the rehearsal's local stand-in of a
    WaitConditionHandle). The value is a credential: messages never repeat it."""
    if not isinstance(value, str):
        raise PropertyError(f"{name} must be a URL string (a WaitConditionHandle's Ref)")
    try:
        parts = urllib.parse.urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise PropertyError(f"{name} is not a valid URL (its value is not shown: it is a credential)") from None
    if not host or (parts.scheme != "https" and not (parts.scheme == "http" and _loopback(host))):
        raise PropertyError(
            f"{name} must be an https URL (a WaitConditionHandle's Ref); its value is not shown: it is a credential"
        )
    return value


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise PropertyError(f"{name} must be true or false")


def decode_request(
    spec: ResourceSpec, raw: dict[str, Any], shape: Any, attached: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The typed request, checked against every rule the model and the documentation state.

    ``attached``: the members that are not the create call's but an attachment's (a resource policy), with the
    shape of the call that sets them. Raises PropertyError naming each offending property (values the model
    marks sensitive are not repeated in the message). The name may still be missing: ``with_name`` adds it.
    """
    attached = attached or {}
    try:
        request: dict[str, Any] = model_rules.decode({k: v for k, v in raw.items() if k not in attached}, shape)
        extra = {k: model_rules.decode(v, attached[k], k) for k, v in raw.items() if k in attached}
    except model_rules.DecodeError as error:
        raise PropertyError(str(error)) from None
    checked = request if spec.name in request else {**request, spec.name: "placeholder"}
    problems = model_rules.check(checked, shape) + model_rules.documented_rules(spec.type_name, request)
    for member, value in extra.items():
        problems += model_rules.check(value, attached[member], member)
    request.update(extra)
    if problems:
        lines = [
            f"property {p.path} ({model_rules.python_name(p.path)}) = {model_rules.shorten(p.value)}: {p.rule}"
            for p in problems
        ]
        raise PropertyError(f"invalid {spec.noun} properties:\n" + "\n".join(lines))
    return request


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _without(request: Mapping[str, Any], *members: str | None) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k not in members}


def with_name(
    spec: ResourceSpec, request: dict[str, Any], control: Control, stack_id: str, logical_id: str, max_length: int
) -> dict[str, Any]:
    """The request with its name: the given one, or ``<NamePrefix>-<digest>``.

    The digest covers the stack, the logical id and the resolved request without name and tags, so
    a resource that must be replaced always gets a new name (the old one still exists when the new
    one is created) and a retried request always the same one.
    """
    if spec.name in request:
        return request
    if control.name_prefix is None:
        raise PropertyError(f"the properties need either {spec.name} or {NAME_PREFIX}")
    digest = _digest([stack_id, logical_id, _without(specs.identity(spec, request), spec.name)])[:_DIGEST_LENGTH]
    prefix = _NAME_CHARS.sub("-", control.name_prefix).strip("-")
    room = max_length - _DIGEST_LENGTH - 1
    if len(prefix) > room:
        prefix = prefix[-room:].lstrip("-")
    return {**request, spec.name: f"{prefix}-{digest}" if prefix else digest}


def request_digest(spec: ResourceSpec, request: Mapping[str, Any], stack_id: str, logical_id: str) -> str:
    """The value of the REQUEST_TAG a resource created from ``request`` by this stack's resource carries: the
    digest of its identity (an in-place change leaves it true)."""
    return _digest([stack_id, logical_id, specs.identity(spec, dict(request))])


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def tagged_request(spec: ResourceSpec, request: dict[str, Any], digest: str) -> dict[str, Any]:
    """The create request with the library's request tag added to the user's tags."""
    if spec.tags is None:
        return request
    return {**request, spec.tags: {**(request.get(spec.tags) or {}), REQUEST_TAG: digest}}


def event_size(event: Mapping[str, Any]) -> int:
    """The bytes the event takes as JSON (UTF-8), as Step Functions counts its execution input."""
    return len(canonical(event).encode())


def attributes(spec: ResourceSpec, description: Mapping[str, Any]) -> dict[str, str]:
    """The GetAtt attributes: every key always present (a GetAtt never fails on a missing one), as strings.

    Structures become compact JSON; lists are shortened from the end until the attributes fit the part
    of CloudFormation's 4 KB response kept for them.
    """
    values = {name: _lookup(description, path) for name, path in spec.attributes}
    while True:
        rendered = {name: _text(value) for name, value in values.items()}
        if len(canonical(rendered).encode()) <= MAX_ATTRIBUTES_BYTES:
            return rendered
        longest = max(
            (name for name, value in values.items() if isinstance(value, list) and value),
            key=lambda name: len(rendered[name]),
            default=None,
        )
        if longest is None:
            return {name: text if len(text) < 1024 else "" for name, text in rendered.items()}
        values[longest] = values[longest][:-1]


def _lookup(description: Mapping[str, Any], path: str) -> Any:
    value: Any = description
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return canonical(value)
    return str(value)
