"""CloudFormation's wait conditions, played: ``AWS::CloudFormation::WaitConditionHandle`` and
``AWS::CloudFormation::WaitCondition``.

What CloudFormation documents (template reference, AWS::CloudFormation::WaitCondition and
WaitConditionHandle; "Create wait conditions in a CloudFormation template"):

* A handle's Ref is a presigned URL; whoever holds it PUTs a signal, a JSON object
  ``{"Status": "SUCCESS" | "FAILURE", "Reason": ..., "UniqueId": ..., "Data": ...}``. Here the URL is one of
  the rehearsal's local server (``http://127.0.0.1:<port>/waitcondition/<id>?Signature=<token>``): the path and
  token must match, as a presigned URL's signature must.
* The handle takes signals from the moment it exists: signals sent before the wait condition starts waiting
  count. A second signal with the same UniqueId replaces the first (the signals are stored by UniqueId).
* The wait condition completes once ``Count`` (default 1) SUCCESS signals (distinct UniqueIds) arrived; a
  FAILURE signal fails it ("WaitCondition received failed message: '<Reason>' for uniqueId: <UniqueId>"); so
  does its ``Timeout`` (seconds, at most 43,200) passing ("WaitCondition timed out. Received <n> conditions when
  expecting <Count>"). Then the stack rolls back, as for any resource that failed.
* ``Data`` is a JSON object string, ``{"<UniqueId>": "<Data>"}`` of the SUCCESS signals.
* Count, Handle and Timeout: "Updates aren't supported." An Update that changes them fails here, naming the
  rule (a changed wait condition needs a new logical id, and a new handle).

What no source says, taken as an assumption: a PUT whose body is not such a JSON object (S3 would store it
all the same) is no signal: it is reported and ignored, and the wait goes on.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: CloudFormation's maximum Timeout of a wait condition (12 hours).
MAX_TIMEOUT_SECONDS = 43_200
HANDLE = "AWS::CloudFormation::WaitConditionHandle"
CONDITION = "AWS::CloudFormation::WaitCondition"
#: The properties of a wait condition, none of which an update may change.
NOT_UPDATABLE = ("Count", "Handle", "Timeout")


class SignalRefused(Exception):
    """A PUT the handle URL does not take: the HTTP status and the message to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Signal:
    status: str
    reason: str
    unique_id: str
    data: str


@dataclass
class Handle:
    """One wait condition handle: its URL and the signals it received, by UniqueId in arrival order."""

    name: str  # <stack>/<logical id>, for messages
    url: str
    token: str
    signals: dict[str, Signal] = field(default_factory=dict)
    ignored: int = 0  # PUTs that were no signal
    deleted: bool = False
    changed: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Verdict:
    """Where a wait condition stands: done (SUCCESS or FAILED, with the reason) or still waiting."""

    status: str  # SUCCESS, FAILED or WAITING
    reason: str = ""
    data: str = ""


class Handles:
    """The handles of a rehearsal, served under ``base_url`` (the local server's)."""

    def __init__(self) -> None:
        self.base_url = ""
        self._handles: dict[str, Handle] = {}
        self._lock = threading.Lock()

    def create(self, name: str) -> Handle:
        handle_id = str(uuid.uuid4())
        token = secrets.token_urlsafe(24)
        handle = Handle(name, f"{self.base_url}/waitcondition/{handle_id}?Signature={token}", token)
        with self._lock:
            self._handles[handle_id] = handle
        return handle

    def by_url(self, url: str) -> Handle | None:
        with self._lock:
            return next((h for h in self._handles.values() if h.url == url and not h.deleted), None)

    def delete(self, url: str) -> None:
        handle = self.by_url(url)
        if handle is not None:
            handle.deleted = True

    def put(self, path_and_query: str, body: bytes) -> tuple[Handle, Signal | None]:
        """A PUT to a handle URL: the handle, and the signal (None when the body is no signal)."""
        parts = urlsplit(path_and_query)
        handle_id = parts.path.removeprefix("/waitcondition/")
        token = (parse_qs(parts.query).get("Signature") or [""])[0]
        with self._lock:
            handle = self._handles.get(handle_id)
        if handle is None or handle.deleted or not secrets.compare_digest(token, handle.token):
            # A presigned URL with a wrong signature, or of a handle deleted with its stack: S3 refuses it.
            raise SignalRefused(403, "AccessDenied: the wait condition handle URL is not valid (deleted, or wrong)")
        signal = _signal(body)
        with self._lock:
            if signal is None:
                handle.ignored += 1
            else:
                handle.signals.pop(signal.unique_id, None)  # a resent UniqueId replaces, and counts as last
                handle.signals[signal.unique_id] = signal
        handle.changed.set()
        return handle, signal

    def verdict(self, handle: Handle, count: int) -> Verdict:
        with self._lock:
            signals = list(handle.signals.values())
        failed = next((s for s in signals if s.status == "FAILURE"), None)
        if failed is not None:
            return Verdict(
                "FAILED", f"WaitCondition received failed message: '{failed.reason}' for uniqueId: {failed.unique_id}"
            )
        succeeded = [s for s in signals if s.status == "SUCCESS"]
        if len(succeeded) >= count:
            return Verdict("SUCCESS", data=json.dumps({s.unique_id: s.data for s in succeeded}))
        return Verdict(
            "WAITING", f"WaitCondition timed out. Received {len(succeeded)} conditions when expecting {count}"
        )


def _signal(body: bytes) -> Signal | None:
    try:
        sent: Any = json.loads(body or b"null")
    except ValueError:
        return None
    if not isinstance(sent, dict) or sent.get("Status") not in ("SUCCESS", "FAILURE") or "UniqueId" not in sent:
        return None
    return Signal(str(sent["Status"]), str(sent.get("Reason", "")), str(sent["UniqueId"]), str(sent.get("Data", "")))


def settings(properties: dict[str, Any], where: str) -> tuple[str, int, float]:
    """A wait condition's Handle, Count and Timeout (seconds), checked as CloudFormation checks them."""
    handle = properties.get("Handle")
    if not isinstance(handle, str) or not handle:
        raise ValueError(f"{where}: Handle must be the Ref of an {HANDLE}, not {handle!r}")
    try:
        count = int(str(properties.get("Count", 1)))
        timeout = float(str(properties["Timeout"]))
    except KeyError:
        raise ValueError(f"{where}: Timeout is required (seconds, at most {MAX_TIMEOUT_SECONDS})") from None
    except ValueError:
        raise ValueError(
            f"{where}: Count ({properties.get('Count')!r}) and Timeout ({properties.get('Timeout')!r}) must be numbers"
        ) from None
    if count < 1:
        raise ValueError(f"{where}: Count {count} must be at least 1")
    if not 0 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise ValueError(
            f"{where}: Timeout {timeout:g} s is beyond CloudFormation's maximum of {MAX_TIMEOUT_SECONDS} s"
        )
    return handle, count, timeout
