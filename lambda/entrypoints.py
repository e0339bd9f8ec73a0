"""Lambda entry points for the CDK Provider framework: ``entrypoints.on_event`` and ``entrypoints.is_complete``.

Both check the event before anything else: a malformed or unexpected event fails with an EventError
and no call that could change anything. The event's ``ResourceType`` picks the resource spec, so one
provider serves every type of this library. Logs carry the request type, the logical id, ARNs and
statuses -- never property values, request bodies or responses (SQL parameters are sensitive).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import engine
import watcher
from specs import EVENT_OVERHEAD_BYTES, MAX_PROPERTIES_BYTES, SPECS, STEP_FUNCTIONS_INPUT_LIMIT, ResourceSpec

import model_rules
import properties
import service

LOG = logging.getLogger("cdk_cleanrooms_ml")
LOG.setLevel(logging.INFO)

REQUEST_TYPES = ("Create", "Update", "Delete")

#: The framework sends our message (plus its own stack trace) as the Reason of a response that CloudFormation
#: takes only up to 4,096 bytes: a longer message would be replaced by "Response object is too long".
MAX_MESSAGE_BYTES = 2_400


class EventError(ValueError):
    """The event is not one CloudFormation (through the Provider framework) would send."""


def _checked(event: Any) -> tuple[str, str, ResourceSpec, service.Home]:
    if not isinstance(event, dict):
        raise EventError("the event must be an object")
    request_type = event.get("RequestType")
    if request_type not in REQUEST_TYPES:
        raise EventError(
            f"unknown RequestType {model_rules.shorten(request_type)}; expected one of {', '.join(REQUEST_TYPES)}"
        )
    logical_id = event.get("LogicalResourceId")
    if not isinstance(logical_id, str) or not logical_id:
        raise EventError("the event has no LogicalResourceId")
    spec = SPECS.get(str(event.get("ResourceType")))
    if spec is None:
        raise EventError(
            f"unknown ResourceType {model_rules.shorten(event.get('ResourceType'))}; this provider serves "
            + ", ".join(sorted(SPECS))
        )
    try:
        home = service.Home.of_stack(event.get("StackId"))
    except ValueError as error:
        raise EventError(str(error)) from None
    if request_type != "Create" and not isinstance(event.get("PhysicalResourceId"), str):
        raise EventError(f"a {request_type} event needs a PhysicalResourceId")
    if request_type == "Update" and not isinstance(event.get("OldResourceProperties"), dict):
        raise EventError("an Update event needs OldResourceProperties")
    return str(request_type), logical_id, spec, home


def _decoded(spec: ResourceSpec, event: dict[str, Any], key: str) -> tuple[dict[str, Any], properties.Control]:
    """The typed request with its name, and the control properties, of ``event[key]``."""
    raw, control = properties.split(event.get(key))
    if control.signal_url is not None and not spec.signals_when_ready:
        raise properties.PropertyError(
            f"{properties.SIGNAL_URL} is for resources a WaitCondition waits for (audience models), not for an "
            f"{spec.noun}"
        )
    attached = {a.member: service.input_shape(spec.service, a.put).members[a.member] for a in spec.attachments}
    request = properties.decode_request(spec, raw, service.input_shape(spec.service, spec.create), attached)
    name_max = int(service.input_shape(spec.service, spec.create).members[spec.name].metadata.get("max", 63))
    return (
        properties.with_name(spec, request, control, str(event["StackId"]), str(event["LogicalResourceId"]), name_max),
        control,
    )


def _lenient_control(raw: Any) -> properties.Control | None:
    """Control properties that only help (a Delete's, an Update's old ones): None when they no longer decode."""
    try:
        return properties.split(raw)[1]
    except properties.PropertyError:
        return None


def _lenient(spec: ResourceSpec, event: dict[str, Any], key: str) -> dict[str, Any] | None:
    """Properties that only help (a Delete's, an Update's old ones): None when they no longer decode."""
    try:
        return _decoded(spec, event, key)[0]
    except properties.PropertyError:
        return None


def _request(event: dict[str, Any]) -> engine.Request:
    request_type, logical_id, spec, home = _checked(event)
    if request_type == "Delete":
        # A Delete goes through whatever its properties say.
        control = _lenient_control(event.get("ResourceProperties")) or properties.Control()
        desired = _lenient(spec, event, "ResourceProperties")
    else:
        desired, control = _decoded(spec, event, "ResourceProperties")
    previous = _lenient(spec, event, "OldResourceProperties") if request_type == "Update" else None
    previous_control = _lenient_control(event.get("OldResourceProperties")) if request_type == "Update" else None
    return engine.Request(
        spec=spec,
        request_type=request_type,
        logical_id=logical_id,
        stack_id=str(event["StackId"]),
        home=home,
        physical_id=str(event.get("PhysicalResourceId", "")),
        desired=desired,
        control=control,
        previous=previous,
        event=event,
        previous_control=previous_control,
    )


def _bounded(entry: Callable[[Any], dict[str, Any]]) -> Callable[[Any, Any], dict[str, Any]]:
    """The entry point, its own errors cut to MAX_MESSAGE_BYTES (their start and end, which say the most)."""

    @functools.wraps(entry)
    def bounded(event: Any, context: Any = None) -> dict[str, Any]:
        try:
            return entry(event)
        except (EventError, properties.PropertyError, engine.ResourceError) as error:
            message = str(error)
            if len(message.encode()) <= MAX_MESSAGE_BYTES:
                raise
            cut = message.encode()[: MAX_MESSAGE_BYTES - 200].decode(errors="ignore")
            tail = message.encode()[-150:].decode(errors="ignore")
            raise type(error)(f"{cut} [... {len(message):,} characters in all ...] {tail}") from None

    return bounded


@_bounded
def on_event(event: Any) -> dict[str, Any]:
    request_type, logical_id, _spec, _home = _checked(event)
    LOG.info("on_event %s %s %s", request_type, logical_id, event.get("PhysicalResourceId", ""))
    size = properties.event_size(event)
    if request_type != "Delete" and size > STEP_FUNCTIONS_INPUT_LIMIT - EVENT_OVERHEAD_BYTES:
        # Checked before anything starts: the framework could not start its waiter with this event.
        raise properties.PropertyError(
            f"the event is {size:,} bytes: the Provider framework hands it to Step Functions, whose execution "
            f"input is at most {STEP_FUNCTIONS_INPUT_LIMIT:,} bytes (the resource's properties may take "
            f"at most {MAX_PROPERTIES_BYTES:,} bytes, as an Update carries the old and the new ones)"
        )
    req = _request(event)
    if request_type == "Create":
        return engine.on_create(req)
    if request_type == "Update":
        return engine.on_update(req)
    return engine.on_delete(req)


@_bounded
def is_complete(event: Any) -> dict[str, Any]:
    request_type, logical_id, spec, _home = _checked(event)
    physical_id = str(event.get("PhysicalResourceId", ""))
    LOG.info("is_complete %s %s %s", request_type, logical_id, physical_id)
    req = _request(event)
    if physical_id.startswith("arn:") and not req.owns(physical_id):
        # on_event only ever answers with an ARN of the stack's account: anything else is not ours.
        raise EventError(
            f"physical id {model_rules.shorten(physical_id)} is not an {spec.noun} ARN of this stack's account "
            "and of its region; refusing to read or delete it"
        )
    return engine.poll(req)


def watch(event: Any, context: Any = None) -> dict[str, Any]:
    """The watcher state machine's task: read the audience model once, signal its WaitCondition when it is done
    (``watcher.watch``). Its own Lambda function, in the same asset."""
    return watcher.watch(event)
