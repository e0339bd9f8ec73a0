"""The rehearsal's States language subset beyond the waiter's Task: Choice, Wait, Succeed and Fail (the audience
model's watcher: Check -> Done? -> Wait -> Check ... -> Signaled), through a simulated clock."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from cdk_cleanrooms_ml._watcher import definition as watcher_definition
from cdk_cleanrooms_ml.rehearsal.clock import SimulatedClock
from cdk_cleanrooms_ml.rehearsal.state_machine import Execution, StateMachine, TaskResult
from cdk_cleanrooms_ml.rehearsal.template import TemplateError

CHECK = "arn:aws:lambda:us-east-1:111122223333:function:watch"


def watcher(**overrides: Any) -> str:
    """The library's watcher definition (``_watcher.definition``), with states replaced or added."""
    states: dict[str, Any] = watcher_definition(CHECK)["States"]
    states.update(overrides)
    return json.dumps({"StartAt": "Check", "States": states})


def run(definition: str, run_task: Any, execution_input: str = "{}") -> tuple[Execution, SimulatedClock]:
    clock = SimulatedClock()
    clock.register()  # this thread alone: each wait jumps the clock
    return StateMachine("arn:sm", definition).execute(execution_input, run_task, clock, lambda k, m: None), clock


def test_the_watcher_loops_check_wait_until_done_then_succeeds_at_the_simulated_times() -> None:
    seen: list[float] = []
    clock_box: list[SimulatedClock] = []

    def check(arn: str, data: Any) -> TaskResult:
        seen.append(clock_box[0].now() if clock_box else 0.0)
        return TaskResult({**data, "Done": len(seen) == 4, "WaitSeconds": 300 if len(seen) < 3 else 120})

    clock = SimulatedClock()
    clock.register()
    clock_box.append(clock)
    execution = StateMachine("arn:sm", watcher()).execute('{"Arn": "a"}', check, clock, lambda k, m: None)
    assert execution.status == "SUCCEEDED" and execution.output["Done"] is True
    assert seen == [0, 300, 600, 720]  # SecondsPath read from each check's output


def test_a_failing_check_is_retried_with_backoff_before_the_choice() -> None:
    attempts: list[int] = []

    def check(arn: str, data: Any) -> TaskResult:
        attempts.append(1)
        return TaskResult(error="Lambda.Unknown") if len(attempts) < 3 else TaskResult({"Done": True})

    execution, clock = run(watcher(), check)
    assert execution.status == "SUCCEEDED" and clock.now() == 30 + 60


@pytest.mark.parametrize(
    ("rule", "value", "taken"),
    [
        ({"BooleanEquals": True}, True, "yes"),
        ({"BooleanEquals": True}, 1, "no"),  # another type: false, not an error
        ({"StringEquals": "ACTIVE"}, "ACTIVE", "yes"),
        ({"StringEquals": "ACTIVE"}, "CREATE_PENDING", "no"),
        ({"NumericGreaterThan": 5}, 6, "yes"),
        ({"NumericGreaterThan": 5}, 5, "no"),
        ({"NumericGreaterThan": 5}, True, "no"),  # a boolean is no number in JSON
        ({"NumericLessThanEquals": 5}, 5.0, "yes"),
    ],
)
def test_choice_rules_compare_as_the_states_language_says(rule: dict[str, Any], value: Any, taken: str) -> None:
    definition = json.dumps(
        {
            "StartAt": "Pick",
            "States": {
                "Pick": {"Type": "Choice", "Choices": [{"Variable": "$.v.x", **rule, "Next": "yes"}], "Default": "no"},
                "yes": {"Type": "Succeed"},
                "no": {"Type": "Fail", "Error": "Went.No", "Cause": "the default"},
            },
        }
    )
    execution, _ = run(definition, lambda arn, data: TaskResult(data), json.dumps({"v": {"x": value}}))
    assert (execution.status, execution.error) == (("SUCCEEDED", "") if taken == "yes" else ("FAILED", "Went.No"))


def test_and_or_not_combine_rules() -> None:
    rule = {
        "And": [
            {"Variable": "$.a", "BooleanEquals": True},
            {"Not": {"Variable": "$.s", "StringEquals": "x"}},
            {"Or": [{"Variable": "$.n", "NumericEquals": 1}, {"Variable": "$.n", "NumericEquals": 2}]},
        ],
        "Next": "yes",
    }
    definition = json.dumps(
        {"StartAt": "Pick", "States": {"Pick": {"Type": "Choice", "Choices": [rule]}, "yes": {"Type": "Succeed"}}}
    )
    ok, _ = run(definition, lambda a, d: TaskResult(d), '{"a": true, "s": "y", "n": 2}')
    missed, _ = run(definition, lambda a, d: TaskResult(d), '{"a": true, "s": "x", "n": 2}')
    assert ok.status == "SUCCEEDED"
    assert (missed.status, missed.error) == ("FAILED", "States.NoChoiceMatched")


def test_no_matching_rule_and_no_default_fails_with_no_choice_matched() -> None:
    definition = watcher(
        **{"Done?": {"Type": "Choice", "Choices": [{"Variable": "$.Done", "BooleanEquals": True, "Next": "Signaled"}]}}
    )
    execution, _ = run(definition, lambda arn, data: TaskResult({"Done": False}))
    assert (execution.status, execution.error) == ("FAILED", "States.NoChoiceMatched")
    assert "Done?" in execution.cause


def test_a_variable_that_names_no_field_is_a_runtime_error() -> None:
    execution, _ = run(watcher(), lambda arn, data: TaskResult({"WaitSeconds": 1}))
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime") and "$.Done" in execution.cause


@pytest.mark.parametrize("seconds", [-1, "300", None])
def test_a_seconds_path_to_no_non_negative_integer_fails_the_execution(seconds: Any) -> None:
    execution, _ = run(watcher(), lambda arn, data: TaskResult({"Done": False, "WaitSeconds": seconds}))
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")


def test_a_fixed_wait_and_a_fail_state() -> None:
    definition = json.dumps(
        {
            "StartAt": "Nap",
            "States": {
                "Nap": {"Type": "Wait", "Seconds": 43_200, "Next": "Stop"},
                "Stop": {"Type": "Fail", "Error": "Gave.Up", "Cause": "twelve hours"},
            },
        }
    )
    execution, clock = run(definition, lambda arn, data: TaskResult(data))
    assert execution == Execution("FAILED", error="Gave.Up", cause="twelve hours") and clock.now() == 43_200


def test_a_set_stop_event_aborts_an_execution_in_its_wait() -> None:
    stop = threading.Event()
    clock = SimulatedClock()
    clock.register()
    clock.register()  # a second participant that never sleeps: time cannot jump, the wait blocks

    def check(arn: str, data: Any) -> TaskResult:
        threading.Timer(0.2, stop.set).start()
        return TaskResult({"Done": False, "WaitSeconds": 300})

    machine = StateMachine("arn:sm", watcher())
    execution = machine.execute("{}", check, clock, lambda k, m: None, stop)
    assert execution.status == "ABORTED" and clock.now() == 0


@pytest.mark.parametrize(
    ("state", "refused"),
    [
        ({"Type": "Pass", "End": True}, "a Pass state"),
        ({"Type": "Wait", "Timestamp": "2030-01-01T00:00:00Z", "Next": "Check"}, r"the field\(s\) \['Timestamp'\]"),
        ({"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "Next": "Check"}, "exactly one of Seconds"),
        ({"Type": "Choice", "Choices": [{"Variable": "$.a", "IsPresent": True, "Next": "Check"}]}, "the Choice rule"),
        ({"Type": "Choice", "Choices": [{"Variable": "$.a[0]", "BooleanEquals": True, "Next": "Check"}]}, "path"),
        ({"Type": "Fail", "ErrorPath": "$.e"}, r"\['ErrorPath'\]"),
        ({"Type": "Succeed", "OutputPath": "$.x"}, r"\['OutputPath'\]"),
    ],
)
def test_what_the_rehearsal_does_not_play_is_refused_by_name(state: dict[str, Any], refused: str) -> None:
    with pytest.raises(TemplateError, match=rf"state machine arn:sm, state Extra: .*{refused}"):
        StateMachine("arn:sm", watcher(Extra=state))


def test_a_choice_naming_no_state_is_refused() -> None:
    broken = {"Type": "Choice", "Choices": [{"Variable": "$.Done", "BooleanEquals": True, "Next": "Nowhere"}]}
    with pytest.raises(TemplateError, match="names no state"):
        StateMachine("arn:sm", watcher(**{"Done?": broken}))


def test_a_set_event_wakes_its_waiter_before_time_may_jump_to_the_waiters_timeout() -> None:
    """A wait condition's signal (the event) arrives, then the signaling execution ends (unregisters): time must
    stay where it is, not jump to the wait's timeout because the waiter had not yet seen its event."""
    clock = SimulatedClock()
    event = threading.Event()
    clock.register()  # the waiter (a wait condition)
    clock.register()  # the signaler (an execution)
    seen: list[float] = []

    def waiter() -> None:
        with clock.participant():
            clock.wait(event, 43_200)
            seen.append(clock.now())

    thread = threading.Thread(target=waiter)
    with clock._cond:  # hold the waiter back from seeing the event until the signaler has gone
        thread.start()
        while not clock._sleeping:
            clock._cond.wait(0.01)
        event.set()
        clock.unregister()  # the signaler ends, in the same critical section (the condition's lock is reentrant)
    thread.join(5)
    assert seen == [0.0]
