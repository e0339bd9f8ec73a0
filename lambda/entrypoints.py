"""Lambda entry points for the CDK Provider framework: ``entrypoints.on_event`` and ``entrypoints.is_complete``.

Both check the event before anything else: a malformed or unexpected event fails with a clear
message and no call that could change anything. Logs carry the request type, the logical id, the
job ARN and status -- never property values, request bodies or responses (SQL parameters are
sensitive).
"""

from __future__ import annotations

import logging
from typing import Any

import lifecycle
import model_rules
import properties
import service

LOG = logging.getLogger("cdk_cleanrooms_ml")
LOG.setLevel(logging.INFO)

REQUEST_TYPES = ("Create", "Update", "Delete")


class EventError(ValueError):
    """The event is not one CloudFormation (through the Provider framework) would send."""


def _checked(event: Any) -> tuple[str, str, service.Home]:
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
    try:
        home = service.Home.of_stack(event.get("StackId"))
    except ValueError as error:
        raise EventError(str(error)) from None
    if request_type != "Create" and not isinstance(event.get("PhysicalResourceId"), str):
        raise EventError(f"a {request_type} event needs a PhysicalResourceId")
    if request_type == "Update" and not isinstance(event.get("OldResourceProperties"), dict):
        raise EventError("an Update event needs OldResourceProperties")
    return str(request_type), logical_id, home


def _request(raw_properties: Any) -> tuple[dict[str, Any], properties.Control]:
    raw, control = properties.split(raw_properties)
    return properties.decode_request(raw, service.input_shape(lifecycle.START)), control


def on_event(event: Any, context: Any = None) -> dict[str, Any]:
    request_type, logical_id, home = _checked(event)
    LOG.info("on_event %s %s %s", request_type, logical_id, event.get("PhysicalResourceId", ""))
    if request_type == "Create":
        request, _control = _request(event.get("ResourceProperties"))
        return lifecycle.create(request)
    if request_type == "Update":
        request, _control = _request(event.get("ResourceProperties"))
        try:
            old, _old_control = _request(event["OldResourceProperties"])
        except properties.PropertyError:
            old = {}  # an old request that no longer decodes is replaced, never patched
        return lifecycle.update(event["PhysicalResourceId"], home, old, request)
    raw, control = properties.split(event.get("ResourceProperties"))
    return lifecycle.delete(event["PhysicalResourceId"], home, _lenient(raw), control)


def _lenient(raw: dict[str, Any]) -> dict[str, Any] | None:
    """A Delete must go through even when the properties no longer decode: they only help to find a job."""
    try:
        return properties.decode_request(raw, service.input_shape(lifecycle.START))
    except properties.PropertyError:
        return None


def is_complete(event: Any, context: Any = None) -> dict[str, Any]:
    request_type, logical_id, home = _checked(event)
    physical_id = str(event.get("PhysicalResourceId", ""))
    awaiting = event.get(lifecycle.AWAIT)
    LOG.info("is_complete %s %s %s", request_type, logical_id, physical_id)
    if physical_id.startswith("arn:") and not home.owns_job_arn(physical_id):
        # on_event only ever answers with a job ARN of the stack's home: anything else is not our job.
        raise EventError(
            f"physical id {model_rules.shorten(physical_id)} is not an audience generation job ARN of this stack's "
            "account and region; refusing to read or delete it"
        )
    if request_type == "Delete":
        raw, control = properties.split(event.get("ResourceProperties"))
        return lifecycle.poll_delete(event, _lenient(raw), control)
    request, control = _request(event.get("ResourceProperties"))
    if awaiting == lifecycle.AWAIT_ATTRIBUTES:
        return lifecycle.poll_unchanged(physical_id, request)
    return lifecycle.poll_create(event, request, control)
