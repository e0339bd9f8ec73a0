"""A Step Functions state machine from its definition in the template: the Provider framework's waiter.

Played: the subset of the Amazon States Language the waiter uses -- Task states whose Resource is a
Lambda function ARN, with Retry (ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate,
MaxDelaySeconds), Catch (ErrorEquals, Next, ResultPath ``$`` / ``$.key`` / null), Next and End.
Anything else in a definition is refused by name, rather than played wrong.

Step Functions' rules kept here (Step Functions developer guide, "Error handling" and "Quotas"):

* A Lambda task that fails reports the error name the function's payload gives (``errorType``) and,
  as Cause, that payload as JSON; a timeout or a crashed runtime is ``Lambda.Unknown``.
* ``States.ALL`` matches every error but ``States.DataLimitExceeded`` and ``States.Runtime``;
  ``States.TaskFailed`` every error but ``States.Timeout``.
* Retry n (from 1) waits IntervalSeconds * BackoffRate^(n-1), at most MaxDelaySeconds; after
  MaxAttempts retries the first matching Catch leads on, with ``{"Error", "Cause"}`` as its output.
* A state input or output over 256 KiB (UTF-8) fails the execution with ``States.DataLimitExceeded``,
  which no Catch of ``States.ALL`` catches. StartExecution refuses an input over 256 KiB (``framework.py``).

Waits go through the rehearsal's clock, so simulated time serves them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .template import TemplateError

#: Step Functions' quota for an execution's, a state's or a task's input or output (UTF-8 bytes).
MAX_PAYLOAD_BYTES = 262_144

_UNCATCHABLE_BY_ALL = frozenset({"States.DataLimitExceeded", "States.Runtime"})
_STATE_FIELDS = frozenset({"Type", "Resource", "Retry", "Catch", "Next", "End", "Comment"})
_RETRY_FIELDS = frozenset({"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds"})
_CATCH_FIELDS = frozenset({"ErrorEquals", "Next", "ResultPath"})


@dataclass(frozen=True)
class TaskResult:
    """What a task's resource gave: its output, or an error name and cause."""

    output: Any = None
    error: str | None = None
    cause: str = ""


#: ``run_task(resource ARN, input) -> TaskResult``: the Lambda invocation behind a Task state.
RunTask = Callable[[str, Any], TaskResult]
Report = Callable[[str, str], None]


@dataclass(frozen=True)
class Execution:
    """How an execution ended: SUCCEEDED with its output, or FAILED with an error and cause."""

    status: str
    output: Any = None
    error: str = ""
    cause: str = ""


def payload_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def matches(error_equals: list[str], error: str) -> bool:
    if error in error_equals:
        return True
    if "States.ALL" in error_equals and error not in _UNCATCHABLE_BY_ALL:
        return True
    return "States.TaskFailed" in error_equals and error != "States.Timeout" and error not in _UNCATCHABLE_BY_ALL


@dataclass(frozen=True)
class _Retrier:
    errors: list[str]
    interval: float
    max_attempts: int
    backoff: float
    max_delay: float | None

    def wait(self, retry: int) -> float:
        seconds = self.interval * self.backoff ** (retry - 1)
        return min(seconds, self.max_delay) if self.max_delay is not None else seconds


@dataclass(frozen=True)
class _Catcher:
    errors: list[str]
    next: str
    result_path: str | None


@dataclass(frozen=True)
class _Task:
    name: str
    resource: str
    retriers: list[_Retrier]
    catchers: list[_Catcher]
    next: str | None


class StateMachine:
    """One state machine of the stack, read from its (resolved) definition."""

    def __init__(self, arn: str, definition: str) -> None:
        self.arn = arn
        body = json.loads(definition)
        self.start_at = str(body["StartAt"])
        self.states = {name: self._task(arn, name, state) for name, state in body["States"].items()}
        unknown = {t.next for t in self.states.values() if t.next} | {
            c.next for t in self.states.values() for c in t.catchers
        }
        if self.start_at not in self.states or not unknown <= set(self.states):
            raise TemplateError(f"state machine {arn}: a Next or StartAt names no state of {sorted(self.states)}")

    @staticmethod
    def _task(arn: str, name: str, state: dict[str, Any]) -> _Task:
        def refuse(what: str) -> TemplateError:
            return TemplateError(f"state machine {arn}, state {name}: {what} is not played by the rehearsal")

        if state.get("Type") != "Task" or not isinstance(state.get("Resource"), str):
            raise refuse(f"a {state.get('Type')} state (only Task states on a Lambda function ARN are)")
        if ":lambda:" not in state["Resource"] or ":function:" not in state["Resource"]:
            raise refuse(f"the Resource {state['Resource']}")
        extra = set(state) - _STATE_FIELDS
        if extra:
            raise refuse(f"the field(s) {sorted(extra)}")
        retriers, catchers = [], []
        for retry in state.get("Retry", []):
            if set(retry) - _RETRY_FIELDS:
                raise refuse(f"the Retry field(s) {sorted(set(retry) - _RETRY_FIELDS)}")
            max_delay = retry.get("MaxDelaySeconds")
            retriers.append(
                _Retrier(
                    list(retry["ErrorEquals"]),
                    float(retry.get("IntervalSeconds", 1)),
                    int(retry.get("MaxAttempts", 3)),
                    float(retry.get("BackoffRate", 2.0)),
                    float(max_delay) if max_delay is not None else None,
                )
            )
        for catch in state.get("Catch", []):
            if set(catch) - _CATCH_FIELDS:
                raise refuse(f"the Catch field(s) {sorted(set(catch) - _CATCH_FIELDS)}")
            path = catch.get("ResultPath", "$")
            if path is not None and path != "$" and not (path.startswith("$.") and "." not in path[2:]):
                raise refuse(f"the ResultPath {path}")
            catchers.append(_Catcher(list(catch["ErrorEquals"]), str(catch["Next"]), path))
        if not state.get("End") and not state.get("Next"):
            raise refuse("a state with neither Next nor End")
        return _Task(name, state["Resource"], retriers, catchers, None if state.get("End") else str(state["Next"]))

    # ----------------------------------------------------------------------------------------------

    def execute(self, execution_input: str, run_task: RunTask, clock: Clock, report: Report) -> Execution:
        """Run one execution to its end (the caller has checked the input against StartExecution's limit)."""
        data: Any = json.loads(execution_input)
        name: str | None = self.start_at
        while name is not None:
            task = self.states[name]
            if payload_size(data) > MAX_PAYLOAD_BYTES:
                return self._data_limit(report, f"the input of state {name}")
            retries = [0] * len(task.retriers)
            while True:
                result = run_task(task.resource, data)
                if result.error is None:
                    if payload_size(result.output) > MAX_PAYLOAD_BYTES:
                        return self._data_limit(report, f"the output of state {name}")
                    data, name = result.output, task.next
                    break
                retrier = next((i for i, r in enumerate(task.retriers) if matches(r.errors, result.error)), None)
                if retrier is not None and retries[retrier] < task.retriers[retrier].max_attempts:
                    retries[retrier] += 1
                    clock.sleep(task.retriers[retrier].wait(retries[retrier]))
                    continue
                catcher = next((c for c in task.catchers if matches(c.errors, result.error)), None)
                if catcher is None:
                    report("waiter", f"execution FAILED in {name}: {result.error}")
                    return Execution("FAILED", error=result.error, cause=result.cause)
                report(
                    "waiter",
                    f"{name} failed ({result.error}) after {sum(retries)} retries: caught, on to {catcher.next}",
                )
                caught = {"Error": result.error, "Cause": result.cause}
                if catcher.result_path is None:
                    pass  # the state's input goes on unchanged
                elif catcher.result_path == "$":
                    data = caught
                else:
                    data = {**data, catcher.result_path[2:]: caught}
                name = catcher.next
                break
        return Execution("SUCCEEDED", output=data)

    @staticmethod
    def _data_limit(report: Report, what: str) -> Execution:
        cause = f"{what} has a size exceeding the maximum number of bytes service limit."
        report("waiter", f"execution FAILED: States.DataLimitExceeded: {cause}")
        return Execution("FAILED", error="States.DataLimitExceeded", cause=cause)
