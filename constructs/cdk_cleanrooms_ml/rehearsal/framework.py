"""The CDK Provider framework (aws-cdk-lib ``custom_resources.Provider``), played locally.

The rules, from the framework's ``framework.js`` / ``cfn-response.js``:

* A Delete whose physical id is the CREATE_FAILED marker is answered SUCCESS without calling anything.
* on_event's result is merged into the event (its PhysicalResourceId, or the RequestId on Create, the
  old id otherwise); a Delete may not change the physical id. If on_event raises, the answer is FAILED;
  a Create then gets the marker id ``AWSCDK::CustomResourceProviderFramework::CREATE_FAILED``.
* With an is_complete handler, a Step Functions waiter invokes it with that merged event at once, then
  every ``IntervalSeconds`` up to ``MaxAttempts`` retries (read from the state machine in the template);
  IsComplete false with Data fails; IsComplete true answers SUCCESS with the event's keys overridden by
  is_complete's and Data merged; a raise answers FAILED; running out of attempts answers
  "Operation timed out".
* CloudFormation refuses a response body over 4096 bytes and a physical id over 1 KB.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock
from .lambdas import Invocation, InvocationError, WarmFunction

CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"
MISSING_PHYSICAL_ID_MARKER = "AWSCDK::CustomResourceProviderFramework::MISSING_PHYSICAL_ID"
MAX_RESPONSE_BYTES = 4096
MAX_PHYSICAL_ID_BYTES = 1024


@dataclass
class Waiter:
    """The waiter state machine's retry policy for is_complete."""

    interval_seconds: float
    max_attempts: int
    backoff_rate: float = 1.0

    @staticmethod
    def from_definition(definition: str) -> Waiter:
        """Read the Retry of the task state that invokes is_complete from the state machine's JSON."""
        states = json.loads(definition).get("States", {})
        for state in states.values():
            for retry in state.get("Retry", []):
                if "States.ALL" in retry.get("ErrorEquals", []):
                    return Waiter(
                        float(retry.get("IntervalSeconds", 1)),
                        int(retry.get("MaxAttempts", 3)),
                        float(retry.get("BackoffRate", 2.0)),
                    )
        raise ValueError("the waiter state machine has no Retry on States.ALL")


@dataclass
class Response:
    """What the framework sends back to CloudFormation."""

    status: str  # SUCCESS or FAILED
    physical_id: str
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    polls: int = 0
    skipped: bool = False


Report = Callable[[str, str], None]  # (kind, message)


@dataclass
class Provider:
    """One Provider: its user functions and its waiter."""

    on_event: WarmFunction
    is_complete: WarmFunction | None
    waiter: Waiter | None
    invocations: list[Invocation] = field(default_factory=list)

    def handle(self, event: dict[str, Any], clock: Clock, report: Report) -> Response:
        if event["RequestType"] == "Delete" and event.get("PhysicalResourceId") == CREATE_FAILED_MARKER:
            report("skip", "ignoring DELETE of a resource whose CREATE failed (framework rule)")
            return Response("SUCCESS", CREATE_FAILED_MARKER, skipped=True)
        try:
            result = self._invoke(self.on_event, event, report)
            merged = self._merged(event, result)
        except (InvocationError, _FrameworkError) as error:
            physical = event.get("PhysicalResourceId") or (
                CREATE_FAILED_MARKER if event["RequestType"] == "Create" else MISSING_PHYSICAL_ID_MARKER
            )
            return Response("FAILED", str(physical), reason=_reason(error, self.on_event))
        if self.is_complete is None or self.waiter is None:
            return self._answer("SUCCESS", merged)
        attempt = 0
        while True:
            try:
                outcome = self._invoke(self.is_complete, merged, report)
            except InvocationError as error:
                return Response(
                    "FAILED",
                    str(merged["PhysicalResourceId"]),
                    reason=_reason(error, self.is_complete),
                    polls=attempt + 1,
                )
            attempt += 1
            if outcome.get("IsComplete"):
                response = {**merged, **outcome, "Data": {**(merged.get("Data") or {}), **(outcome.get("Data") or {})}}
                answer = self._answer("SUCCESS", response)
                answer.polls = attempt
                return answer
            if outcome.get("Data"):
                return Response(
                    "FAILED",
                    str(merged["PhysicalResourceId"]),
                    reason='"Data" is not allowed if "IsComplete" is "False"',
                    polls=attempt,
                )
            if attempt > self.waiter.max_attempts:
                report("timeout", f"waiter gave up after {attempt} is_complete calls")
                return Response(
                    "FAILED", str(merged["PhysicalResourceId"]), reason="Operation timed out", polls=attempt
                )
            interval = self.waiter.interval_seconds * self.waiter.backoff_rate ** (attempt - 1)
            clock.sleep(interval)

    def _invoke(self, function: WarmFunction, event: dict[str, Any], report: Report) -> dict[str, Any]:
        entry = "on_event" if function is self.on_event else "is_complete"
        try:
            result, record = function.invoke(event)
        except InvocationError as error:
            for line in error.logs:
                report("log", line)
            report(entry, f"raised {error.error_type}: {error.message.splitlines()[0] if error.message else ''}")
            raise
        self.invocations.append(record)
        for line in record.logs:
            report("log", line)
        shown = {k: v for k, v in result.items() if k != "Data"}
        report(entry, f"returned {json.dumps(shown, sort_keys=True, default=str)}")
        return result

    @staticmethod
    def _merged(event: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        physical = result.get("PhysicalResourceId") or (
            event["RequestId"] if event["RequestType"] == "Create" else event["PhysicalResourceId"]
        )
        if event["RequestType"] == "Delete" and physical != event["PhysicalResourceId"]:
            raise _FrameworkError(
                f'DELETE: cannot change the physical resource ID from "{event["PhysicalResourceId"]}" to '
                f'"{result.get("PhysicalResourceId")}" during deletion'
            )
        return {**event, **result, "PhysicalResourceId": physical}

    @staticmethod
    def _answer(status: str, response: dict[str, Any]) -> Response:
        physical = str(response.get("PhysicalResourceId") or MISSING_PHYSICAL_ID_MARKER)
        data = dict(response.get("Data") or {})
        body = json.dumps(
            {
                "Status": status,
                "Reason": status,
                "StackId": response.get("StackId"),
                "RequestId": response.get("RequestId"),
                "PhysicalResourceId": physical,
                "LogicalResourceId": response.get("LogicalResourceId"),
                "Data": data,
            }
        )
        if len(body.encode()) > MAX_RESPONSE_BYTES:
            return Response("FAILED", physical, data, reason="Response object is too long.")
        if len(physical.encode()) > MAX_PHYSICAL_ID_BYTES:
            return Response("FAILED", physical[:64], data, reason="PhysicalResourceId is longer than 1 KB")
        return Response(status, physical, {k: str(v) for k, v in data.items()})


class _FrameworkError(Exception):
    pass


def _reason(error: Exception, function: WarmFunction) -> str:
    if isinstance(error, InvocationError):
        # framework.js: the user function's errorMessage, then where its logs are.
        return f"{error.message}\n\nLogs: /aws/lambda/{function.spec.name}\n"
    return str(error)
