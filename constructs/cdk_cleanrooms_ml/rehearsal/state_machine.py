"""A Step Functions state machine from its definition in the template: the Provider framework's waiter.

Played: the subset of the Amazon States Language the Provider framework's waiter and the audience model's
watcher use -- Task states whose Resource is a Lambda function ARN, with Retry (ErrorEquals, IntervalSeconds,
MaxAttempts, BackoffRate, MaxDelaySeconds), Catch (ErrorEquals, Next, ResultPath ``$`` / ``$.key`` / null),
Next and End; Choice states (Choices of rules on a ``Variable`` with BooleanEquals, StringEquals, NumericEquals,
NumericGreaterThan(Equals), NumericLessThan(Equals), or And / Or / Not of rules; Default); Wait states
(Seconds, SecondsPath); Succeed and Fail (Error, Cause). Paths are ``$`` or ``$.a.b``. Anything else in a
definition (Pass, Parallel, Map, InputPath, Timestamp waits, JSONata...) is refused by name, rather than played
wrong.

Step Functions' rules kept here (Step Functions developer guide, "Error handling" and "Quotas"):

* A Lambda task that fails reports the error name the function's payload gives (``errorType``) and,
  as Cause, that payload as JSON; a timeout or a crashed runtime is ``Lambda.Unknown``.
* ``States.ALL`` matches every error but ``States.DataLimitExceeded`` and ``States.Runtime``;
  ``States.TaskFailed`` every error but ``States.Timeout``.
* Retry n (from 1) waits IntervalSeconds * BackoffRate^(n-1), at most MaxDelaySeconds; after
  MaxAttempts retries the first matching Catch leads on, with ``{"Error", "Cause"}`` as its output.
* A Choice whose rules all fail and that has no Default fails the execution with ``States.NoChoiceMatched``;
  a rule's Variable that names no field fails it with ``States.Runtime``, as does a SecondsPath that names
  no non-negative integer. A comparison with a value of another type is false (ASL specification).
* A state input or output over 256 KiB (UTF-8) fails the execution with ``States.DataLimitExceeded``,
  which no Catch of ``States.ALL`` catches. StartExecution refuses an input over 256 KiB (``framework.py``).

Waits go through the rehearsal's clock, so simulated time serves them.
"""

from __future__ import annotations

import json
import re
import threading
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


@dataclass(frozen=True)
class _Choice:
    name: str
    rules: list[tuple[dict[str, Any], str]]  # (the rule, its Next)
    default: str | None


@dataclass(frozen=True)
class _Wait:
    name: str
    seconds: float | None
    seconds_path: str | None
    next: str | None


@dataclass(frozen=True)
class _End:
    """Succeed, or Fail with its Error and Cause."""

    name: str
    failed: bool
    error: str = ""
    cause: str = ""


_State = _Task | _Choice | _Wait | _End

_FIELDS = {
    "Task": _STATE_FIELDS,
    "Choice": frozenset({"Type", "Choices", "Default", "Comment"}),
    "Wait": frozenset({"Type", "Seconds", "SecondsPath", "Next", "End", "Comment"}),
    "Succeed": frozenset({"Type", "Comment"}),
    "Fail": frozenset({"Type", "Error", "Cause", "Comment"}),
}
#: Comparison operators of a Choice rule, with the type the compared value must have.
_COMPARISONS: dict[str, tuple[tuple[type, ...], Callable[[Any, Any], bool]]] = {
    "BooleanEquals": ((bool,), lambda value, expected: value == expected),
    "StringEquals": ((str,), lambda value, expected: value == expected),
    "NumericEquals": ((int, float), lambda value, expected: value == expected),
    "NumericGreaterThan": ((int, float), lambda value, expected: value > expected),
    "NumericGreaterThanEquals": ((int, float), lambda value, expected: value >= expected),
    "NumericLessThan": ((int, float), lambda value, expected: value < expected),
    "NumericLessThanEquals": ((int, float), lambda value, expected: value <= expected),
}
_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_MISSING = object()


class _RuntimeError(Exception):
    """An execution error of the States language itself (States.Runtime, States.NoChoiceMatched)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(cause)
        self.error = error
        self.cause = cause


def _at(data: Any, path: str) -> Any:
    """The value at a ``$`` / ``$.a.b`` path, or _MISSING."""
    value = data
    for key in path.split(".")[1:]:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _is_type(value: Any, types: tuple[type, ...]) -> bool:
    # JSON's true is not a number: bool is an int subclass in Python.
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


class StateMachine:
    """One state machine of the stack, read from its (resolved) definition."""

    def __init__(self, arn: str, definition: str) -> None:
        self.arn = arn
        body = json.loads(definition)
        self.start_at = str(body["StartAt"])
        self.states: dict[str, _State] = {name: self._state(name, state) for name, state in body["States"].items()}
        targets: set[str] = set()
        for state in self.states.values():
            if isinstance(state, _Task):
                targets |= {state.next} if state.next else set()
                targets |= {c.next for c in state.catchers}
            elif isinstance(state, _Choice):
                targets |= {target for _, target in state.rules} | ({state.default} if state.default else set())
            elif isinstance(state, _Wait) and state.next:
                targets.add(state.next)
        if self.start_at not in self.states or not targets <= set(self.states):
            raise TemplateError(f"state machine {arn}: a Next or StartAt names no state of {sorted(self.states)}")

    def _refuse(self, name: str, what: str) -> TemplateError:
        return TemplateError(f"state machine {self.arn}, state {name}: {what} is not played by the rehearsal")

    def _state(self, name: str, state: dict[str, Any]) -> _State:
        kind = state.get("Type")
        if kind not in _FIELDS:
            raise self._refuse(name, f"a {kind} state (only Task, Choice, Wait, Succeed and Fail states are)")
        extra = set(state) - _FIELDS[str(kind)]
        if extra:
            raise self._refuse(name, f"the field(s) {sorted(extra)} of a {kind} state")
        if kind == "Task":
            return self._task(name, state)
        if kind == "Choice":
            choices = state.get("Choices")
            if not isinstance(choices, list) or not choices:
                raise self._refuse(name, "a Choice state without Choices")
            rules = []
            for rule in choices:
                if "Next" not in rule:
                    raise self._refuse(name, "a Choice rule without Next")
                self._check_rule(name, {k: v for k, v in rule.items() if k != "Next"})
                rules.append(({k: v for k, v in rule.items() if k != "Next"}, str(rule["Next"])))
            default = state.get("Default")
            return _Choice(name, rules, None if default is None else str(default))
        if kind == "Wait":
            given = [k for k in ("Seconds", "SecondsPath") if k in state]
            if len(given) != 1:
                raise self._refuse(name, "a Wait state without exactly one of Seconds and SecondsPath")
            seconds = state.get("Seconds")
            if seconds is not None and (not _is_type(seconds, (int,)) or seconds < 0):
                raise self._refuse(name, f"Seconds {seconds!r} (a non-negative integer is)")
            path = state.get("SecondsPath")
            if path is not None and not _PATH.match(str(path)):
                raise self._refuse(name, f"the path {path}")
            return _Wait(name, None if seconds is None else float(seconds), path, self._next(name, state))
        if kind == "Fail":
            return _End(name, True, str(state.get("Error", "")), str(state.get("Cause", "")))
        return _End(name, False)

    def _next(self, name: str, state: dict[str, Any]) -> str | None:
        if bool(state.get("End")) == ("Next" in state):
            raise self._refuse(name, "a state without exactly one of Next and End")
        return None if state.get("End") else str(state["Next"])

    def _check_rule(self, name: str, rule: dict[str, Any]) -> None:
        combinators = [k for k in ("And", "Or", "Not") if k in rule]
        if combinators:
            if len(rule) != 1:
                raise self._refuse(name, f"the Choice rule fields {sorted(rule)}")
            inner = rule[combinators[0]]
            for item in inner if isinstance(inner, list) else [inner]:
                self._check_rule(name, item)
            return
        operators = sorted(set(rule) - {"Variable"})
        if "Variable" not in rule or len(operators) != 1 or operators[0] not in _COMPARISONS:
            raise self._refuse(name, f"the Choice rule {json.dumps(rule, sort_keys=True)}")
        if not _PATH.match(str(rule["Variable"])):
            raise self._refuse(name, f"the path {rule['Variable']}")

    def _task(self, name: str, state: dict[str, Any]) -> _Task:
        if not isinstance(state.get("Resource"), str):
            raise self._refuse(name, "a Task state without a Resource")
        if ":lambda:" not in state["Resource"] or ":function:" not in state["Resource"]:
            raise self._refuse(name, f"the Resource {state['Resource']}")
        retriers, catchers = [], []
        for retry in state.get("Retry", []):
            if set(retry) - _RETRY_FIELDS:
                raise self._refuse(name, f"the Retry field(s) {sorted(set(retry) - _RETRY_FIELDS)}")
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
                raise self._refuse(name, f"the Catch field(s) {sorted(set(catch) - _CATCH_FIELDS)}")
            path = catch.get("ResultPath", "$")
            if path is not None and path != "$" and not (path.startswith("$.") and "." not in path[2:]):
                raise self._refuse(name, f"the ResultPath {path}")
            catchers.append(_Catcher(list(catch["ErrorEquals"]), str(catch["Next"]), path))
        return _Task(name, state["Resource"], retriers, catchers, self._next(name, state))

    # ----------------------------------------------------------------------------------------------

    def execute(
        self,
        execution_input: str,
        run_task: RunTask,
        clock: Clock,
        report: Report,
        stop: threading.Event | None = None,
    ) -> Execution:
        """Run one execution to its end (the caller has checked the input against StartExecution's limit).

        :param stop: set to end the execution early (ABORTED, as StopExecution does): its waits end at once.
        """
        data: Any = json.loads(execution_input)
        name: str | None = self.start_at
        while name is not None:
            if stop is not None and stop.is_set():
                return Execution("ABORTED", output=data)
            state = self.states[name]
            if payload_size(data) > MAX_PAYLOAD_BYTES:
                return self._data_limit(report, f"the input of state {name}")
            try:
                if isinstance(state, _End):
                    if state.failed:
                        report("execution", f"FAILED in {name}: {state.error}")
                        return Execution("FAILED", error=state.error, cause=state.cause)
                    return Execution("SUCCEEDED", output=data)
                if isinstance(state, _Choice):
                    name = self._choose(state, data)
                    continue
                if isinstance(state, _Wait):
                    self._pause(clock, stop, self._wait_seconds(state, data))
                    name = state.next
                    continue
            except _RuntimeError as error:
                report("execution", f"FAILED in {name}: {error.error}: {error.cause}")
                return Execution("FAILED", error=error.error, cause=error.cause)
            outcome = self._run(state, data, run_task, clock, report, stop)
            if isinstance(outcome, Execution):
                return outcome
            data, name = outcome
        return Execution("SUCCEEDED", output=data)

    @staticmethod
    def _pause(clock: Clock, stop: threading.Event | None, seconds: float) -> None:
        if stop is None:
            clock.sleep(seconds)
        else:
            clock.wait(stop, seconds)

    def _choose(self, state: _Choice, data: Any) -> str:
        for rule, target in state.rules:
            if self._holds(rule, data):
                return target
        if state.default is None:
            raise _RuntimeError(
                "States.NoChoiceMatched", f"No Choice Rules matched and no Default was specified in state {state.name}"
            )
        return state.default

    def _holds(self, rule: dict[str, Any], data: Any) -> bool:
        if "And" in rule:
            return all(self._holds(item, data) for item in rule["And"])
        if "Or" in rule:
            return any(self._holds(item, data) for item in rule["Or"])
        if "Not" in rule:
            return not self._holds(rule["Not"], data)
        path = str(rule["Variable"])
        value = _at(data, path)
        if value is _MISSING:
            raise _RuntimeError(
                "States.Runtime",
                f"Invalid path '{path}': the choice state's condition path references an invalid value.",
            )
        (operator,) = (k for k in rule if k != "Variable")
        types, compare = _COMPARISONS[operator]
        return _is_type(value, types) and bool(compare(value, rule[operator]))

    @staticmethod
    def _wait_seconds(state: _Wait, data: Any) -> float:
        if state.seconds is not None:
            return state.seconds
        path = str(state.seconds_path)
        value = _at(data, path)
        if not _is_type(value, (int,)) or value < 0:
            raise _RuntimeError(
                "States.Runtime", f"The SecondsPath parameter does not reference a valid non-negative integer: {path}"
            )
        return float(value)

    def _run(
        self, task: _Task, data: Any, run_task: RunTask, clock: Clock, report: Report, stop: threading.Event | None
    ) -> tuple[Any, str | None] | Execution:
        """One Task state, with its retries and catchers: the next data and state, or how the execution ended."""
        name = task.name
        retries = [0] * len(task.retriers)
        while True:
            result = run_task(task.resource, data)
            if result.error is None:
                if payload_size(result.output) > MAX_PAYLOAD_BYTES:
                    return self._data_limit(report, f"the output of state {name}")
                return result.output, task.next
            retrier = next((i for i, r in enumerate(task.retriers) if matches(r.errors, result.error)), None)
            if retrier is not None and retries[retrier] < task.retriers[retrier].max_attempts:
                retries[retrier] += 1
                self._pause(clock, stop, task.retriers[retrier].wait(retries[retrier]))
                if stop is not None and stop.is_set():
                    return Execution("ABORTED", output=data)
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
                return data, catcher.next  # the state's input goes on unchanged
            if catcher.result_path == "$":
                return caught, catcher.next
            return {**data, catcher.result_path[2:]: caught}, catcher.next

    @staticmethod
    def _data_limit(report: Report, what: str) -> Execution:
        cause = f"{what} has a size exceeding the maximum number of bytes service limit."
        report("waiter", f"execution FAILED: States.DataLimitExceeded: {cause}")
        return Execution("FAILED", error="States.DataLimitExceeded", cause=cause)
