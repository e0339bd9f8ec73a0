"""Waiting longer than a custom resource may: a watcher that signals a WaitCondition once a resource is ready.

A custom resource waits at most an hour; an audience model trains for hours to days. So its step completes
while the model trains, and, when its properties carry ``SignalUrl`` (a WaitConditionHandle's presigned URL),
``start`` starts the watcher: a Step Functions state machine (its ARN in CLEANROOMS_ML_WATCHER_ARN) whose one
task is ``watch``. ``watch`` reads the model and, once it is ACTIVE or can no longer become so, PUTs a signal to
the URL; otherwise it says how long to wait before the next read. The WaitCondition holds the stack meanwhile
(up to 12 hours) and fails it on a FAILURE signal.

The URL is a credential (anyone holding it can signal the stack): it is never logged nor repeated in an error.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import os
import re
import time
import urllib.error
import urllib.request
from typing import Any, NamedTuple

from botocore.exceptions import ClientError
from specs import AUDIENCE_MODEL

import properties
import service

LOG = logging.getLogger("cdk_cleanrooms_ml")

#: The environment variable holding the watcher state machine's ARN (set on the handler functions by a provider
#: that serves waiting audience models).
WATCHER_ARN_ENV = "CLEANROOMS_ML_WATCHER_ARN"
#: The longest pause between two reads of a model in training.
POLL_SECONDS = 300
#: How long the PUT of a signal may take.
PUT_TIMEOUT_SECONDS = 30

_STATE_MACHINE_ARN = re.compile(r"arn:aws[-a-z]*:states:[-a-z0-9]+:[0-9]{12}:stateMachine:[-A-Za-z0-9_]{1,80}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


class WatcherError(RuntimeError):
    """The handler cannot start the watcher: the provider was made without one, or Step Functions refused for good."""


class WatchEventError(ValueError):
    """The watch task's input is not what ``start`` gives the state machine."""


class SignalError(RuntimeError):
    """The signal could not be delivered (the state machine retries the task)."""


# --------------------------------------------------------------------------------------------------
# Starting the watcher (from the handler, when a step completes)


def execution_name(model_arn: str, signal_url: str) -> str:
    """One name per model and URL: a repeated start (a retried poll, an Update back) starts nothing new."""
    return "am-" + hashlib.sha256(f"{model_arn}|{signal_url}".encode()).hexdigest()[:60]


def start(model_arn: str, signal_url: str, unique_id: str, timeout_seconds: int) -> None:
    """Start the watcher of ``model_arn`` for ``signal_url``, unless it is started already.

    Raises WatcherError without a watcher or when Step Functions refuses for good; a transient error as it comes
    (the caller tries again).
    """
    state_machine = os.environ.get(WATCHER_ARN_ENV, "")
    if not _STATE_MACHINE_ARN.fullmatch(state_machine):
        raise WatcherError(
            f"the audience model {model_arn} is waited for (SignalUrl is set: wait_for_completion=True), but the "
            f"handler's environment has no state machine ARN in {WATCHER_ARN_ENV}"
            + (" (its value is not a state machine ARN)" if state_machine else "")
            + ": the provider was made without the audience model watcher. Deploy the stack with this library's "
            "AudienceModel construct (it adds the watcher to its provider), or set wait_for_completion=False."
        )
    watch_input = {
        "Arn": model_arn,
        "Region": service.region_of(model_arn),
        "SignalUrl": signal_url,
        "UniqueId": unique_id,
        "Deadline": int(time.time()) + timeout_seconds,
    }
    name = execution_name(model_arn, signal_url)
    try:
        service.call(
            "stepfunctions",
            service.region_of(state_machine),
            "StartExecution",
            stateMachineArn=state_machine,
            name=name,
            input=json.dumps(watch_input),
        )
    except ClientError as error:
        code = service.error_code(error)
        if service.is_transient(error):
            raise
        if code != "ExecutionAlreadyExists":
            needs = " -- the handler role needs states:StartExecution on it" if code == "AccessDeniedException" else ""
            raise WatcherError(
                f"starting the watcher of audience model {model_arn} ({state_machine}) failed: "
                f"{service.error_message(error)}{needs}"
            ) from None
        LOG.info("the watcher of %s is started already (execution %s)", model_arn, name)
        return
    LOG.info("started the watcher of %s (execution %s, deadline in %d s)", model_arn, name, timeout_seconds)


# --------------------------------------------------------------------------------------------------
# The watch task (its own Lambda function, run by the state machine until it answers Done)


class WatchEvent(NamedTuple):
    arn: str
    region: str
    signal_url: str
    unique_id: str
    deadline: float


def checked(event: Any) -> WatchEvent:
    """The watch task's input, checked: a malformed one fails before any call."""
    if not isinstance(event, dict):
        raise WatchEventError("the watch event must be an object")
    arn = event.get("Arn")
    parsed = service.Arn.parse(arn)
    if (
        parsed is None
        or parsed.service != "cleanrooms-ml"
        or not re.fullmatch(AUDIENCE_MODEL.arn_resource, parsed.resource)
    ):
        raise WatchEventError(f"the watch event's Arn must be an audience model ARN, not {_short(arn)}")
    region = event.get("Region")
    if not isinstance(region, str) or not _REGION.fullmatch(region) or region != parsed.region:
        raise WatchEventError(
            f"the watch event's Region must be the region of its Arn ({parsed.region}), not {_short(region)}"
        )
    try:
        url = properties.checked_signal_url(event.get("SignalUrl"), "the watch event's SignalUrl")
    except properties.PropertyError as error:
        raise WatchEventError(str(error)) from None
    unique_id = event.get("UniqueId")
    if not isinstance(unique_id, str) or not unique_id:
        raise WatchEventError("the watch event's UniqueId must be a non-empty string")
    deadline = event.get("Deadline")
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not math.isfinite(deadline):
        raise WatchEventError(f"the watch event's Deadline must be a number (epoch seconds), not {_short(deadline)}")
    return WatchEvent(str(arn), region, url, unique_id, float(deadline))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def watch(event: Any) -> dict[str, Any]:
    """Read the model once: signal the WaitCondition and answer Done, or say how long to wait before the next read."""
    watched = checked(event)
    statuses, arn = AUDIENCE_MODEL.statuses, watched.arn
    try:
        description = service.describe(AUDIENCE_MODEL, arn)
    except Exception as error:
        if isinstance(error, ClientError) and not service.is_transient(error):
            # A retry cannot fix it (AccessDenied names the missing action): fail the WaitCondition now, not in hours.
            reason = f"audience model {arn} cannot be read: {service.error_message(error)}"
            return _signaled(event, watched, "FAILURE", reason, service.error_code(error))
        if not service.is_transient(error):
            raise  # the state machine retries the task
        if time.time() >= watched.deadline:
            reason = f"audience model {arn} could not be read by the deadline: {service.error_message(error)}"
            return _signaled(event, watched, "FAILURE", reason, service.error_code(error))
        LOG.warning("reading audience model %s: %s; reading it again later", arn, service.error_code(error))
        return _later(event, watched)
    if description is None:
        return _signaled(event, watched, "FAILURE", f"audience model {arn} is NOT_FOUND: it was deleted", "NOT_FOUND")
    status = str(description.get(statuses.member or "status", ""))
    LOG.info("audience model %s is %s", arn, status)
    if status in statuses.active:
        return _signaled(event, watched, "SUCCESS", f"audience model {arn} is {status}", status)
    if status in statuses.create_failed | statuses.deleting | statuses.delete_failed:
        details = description.get(statuses.details) or {}
        code = f" ({details['statusCode']})" if details.get("statusCode") else ""
        message = f": {details['message']}" if details.get("message") else ""
        return _signaled(event, watched, "FAILURE", f"audience model {arn} is {status}{code}{message}", status)
    if time.time() >= watched.deadline:
        at = datetime.datetime.fromtimestamp(watched.deadline, datetime.timezone.utc).isoformat(timespec="seconds")
        return _signaled(
            event,
            watched,
            "FAILURE",
            f"audience model {arn} is still {status} at the deadline ({at}, SignalTimeoutSeconds after its deploy "
            "step): deploy again to wait again, or give the AudienceModel a longer timeout",
            status,
        )
    return _later(event, watched)


def _later(event: dict[str, Any], watched: WatchEvent) -> dict[str, Any]:
    """Not done: read again in POLL_SECONDS, or sooner when the deadline is nearer (at least 1 s)."""
    wait = max(1, min(POLL_SECONDS, math.ceil(watched.deadline - time.time())))
    return {**event, "Done": False, "WaitSeconds": wait}


def _signaled(event: dict[str, Any], watched: WatchEvent, status: str, reason: str, data: str) -> dict[str, Any]:
    """PUT the signal (``data``: the model's status, the WaitCondition's Data attribute), and answer Done."""
    put_signal(watched.signal_url, {"Status": status, "Reason": reason, "UniqueId": watched.unique_id, "Data": data})
    LOG.info("signaled %s for audience model %s", status, watched.arn)
    return {**event, "Done": True, "WaitSeconds": 0}


def put_signal(url: str, body: dict[str, str]) -> None:
    """PUT a WaitCondition signal, as cfn-response does for presigned URLs (an empty Content-Type: the signature
    covers none). Raises SignalError, which names neither the URL nor the body's destination."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(data))}
    )
    try:
        with urllib.request.urlopen(request, timeout=PUT_TIMEOUT_SECONDS) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        raise SignalError(f"the signal URL answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise SignalError(f"the signal could not be sent: {type(reason).__name__}") from None
    if not 200 <= status < 300:
        raise SignalError(f"the signal URL answered HTTP {status}")
