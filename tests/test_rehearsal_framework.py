"""The rehearsal runs aws-cdk-lib's own Provider framework (framework.js from the asset, under Node.js).

Small stacks of a plain ``custom_resources.Provider`` whose user functions are a tiny Python handler
of this test (written to a temporary directory), so each case can make on_event / is_complete do the
one thing it needs. What the framework answers CloudFormation comes from the framework's code, which
the test proves by patching that code in a copy of the cloud assembly and seeing the answer change.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_cdk import App, CustomResource, Duration, Environment, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr

from cdk_cleanrooms_ml.rehearsal.clock import SimulatedClock
from cdk_cleanrooms_ml.rehearsal.driver import Outcome, Rehearsal, TemplateError
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from cdk_cleanrooms_ml.rehearsal.framework import CREATE_FAILED_MARKER
from cdk_cleanrooms_ml.rehearsal.state_machine import Execution, StateMachine, TaskResult
from tests.helpers import ACCOUNT, REGION

HANDLER = textwrap.dedent(
    """
    import logging

    logger = logging.getLogger()
    logger.setLevel(logging.INFO)


    def on_event(event, context):
        mode = event["ResourceProperties"].get("Mode", "")
        logger.warning("on_event %s %s", event["RequestType"], mode)
        if mode == "raise" and event["RequestType"] == "Create":
            raise ValueError("on_event refused the Create")
        if mode == "big-result":
            return {"PhysicalResourceId": "thing-1", "Padding": "x" * 270_000}
        return {"PhysicalResourceId": "thing-1", "Extra": "from on_event"}


    def is_complete(event, context):
        mode = event["ResourceProperties"].get("Mode", "")
        if mode == "data-while-incomplete":
            return {"IsComplete": False, "Data": {"Progress": "50"}}
        if mode == "never" and event["RequestType"] == "Create":
            return {"IsComplete": False}
        if mode == "none":
            return None
        return {"IsComplete": True, "Data": {"Answer": "42", "Seen": event.get("Extra")}}
    """
)

#: One stack per case: the resource's Mode property picks the handler's behaviour.
CASES = {
    "Done": {"Mode": "done"},
    "Raise": {"Mode": "raise"},
    "DataWhileIncomplete": {"Mode": "data-while-incomplete"},
    "BigResult": {"Mode": "big-result"},
    "BigProperties": {"Mode": "done", "Padding": "p" * 270_000},
    "Never": {"Mode": "never"},
    "NoneResult": {"Mode": "none"},
}
INTERVAL_S, TIMEOUT_S = 1, 3  # the waiter: MaxAttempts = 3 retries, one second apart


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    code = tmp_path_factory.mktemp("handler")
    (code / "handler.py").write_text(HANDLER)
    out = tmp_path_factory.mktemp("framework-cdk-out")
    app = App(outdir=str(out))
    for name, properties in CASES.items():
        stack = Stack(app, name, env=Environment(account=ACCOUNT, region=REGION))
        functions = {
            entry: lambda_.Function(
                stack,
                entry,
                runtime=lambda_.Runtime.PYTHON_3_12,
                code=lambda_.Code.from_asset(str(code)),
                handler=f"handler.{entry}",
                timeout=Duration.seconds(30),
            )
            for entry in ("on_event", "is_complete")
        }
        provider = cr.Provider(
            stack,
            "Provider",
            on_event_handler=functions["on_event"],
            is_complete_handler=functions["is_complete"],
            query_interval=Duration.seconds(INTERVAL_S),
            total_timeout=Duration.seconds(TIMEOUT_S),
            # aws-cdk-lib's default is FATAL: INFO shows that the framework's own console.log lines arrive.
            framework_lambda_logging_level=lambda_.ApplicationLogLevel.INFO,
        )
        CustomResource(stack, "Thing", service_token=provider.service_token, properties=properties)
    app.synth()
    return out


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as started:
        yield started


def on_event_calls(rehearsal: Rehearsal) -> int:
    return sum(f.invocations for f in rehearsal.functions.values() if f.spec.handler == "handler.on_event")


def thing(rehearsal: Rehearsal) -> str:
    (logical_id,) = rehearsal.logical_ids("AWS::CloudFormation::CustomResource")
    return logical_id


def logs(rehearsal: Rehearsal) -> list[str]:
    return [step.message for step in rehearsal.steps if step.kind == "log"]


def test_a_create_that_completes_gets_is_completes_data_from_the_framework(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Done", endpoint=endpoint) as stack:
        created = stack.create()
        assert created.status == "CREATE_COMPLETE", created.reason
        result = created.result(thing(stack), "Create")
        # is_complete saw on_event's result merged into the event (framework.js), and its Data reached CloudFormation.
        assert (result.physical_id, result.polls) == ("thing-1", 1)
        assert result.data == {"Answer": "42", "Seen": "from on_event"}
        # The framework's own logging: console.log of framework.js, in Lambda's JSON log format.
        framework = [json.loads(line) for line in logs(stack) if line.startswith("{")]
        assert {"timestamp", "level", "requestId", "message"} <= set(framework[0])
        assert any(
            r["level"] == "INFO" and r["message"].startswith("[provider-framework] onEventHandler") for r in framework
        )
        assert stack.delete().status == "DELETE_COMPLETE"


def test_on_event_raising_on_create_gets_the_marker_id_and_the_delete_never_reaches_the_handler(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "Raise", endpoint=endpoint) as stack:
        outcome = stack.create()
        assert outcome.status == "ROLLBACK_COMPLETE"
        create = outcome.result(thing(stack), "Create")
        assert create.status == "FAILED" and create.physical_id == CREATE_FAILED_MARKER
        # framework.js: the user's errorMessage, where its logs are, then the stack of the framework's Error.
        assert create.reason.startswith("Error: on_event refused the Create\n\nLogs: /aws/lambda/Raise-")
        assert "at invokeUserFunction (/var/task/framework.js" in create.reason
        rollback = outcome.result(thing(stack), "Delete", rollback=True)
        assert (rollback.status, rollback.physical_id) == ("SKIPPED", CREATE_FAILED_MARKER)
        assert on_event_calls(stack) == 1  # the Delete was answered SUCCESS without calling on_event
        assert any(s.kind == "skip" for s in stack.steps)


def test_an_uncaught_handler_exception_is_logged_as_the_python_runtime_logs_it(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "Raise", endpoint=endpoint) as stack:
        assert stack.create().status == "ROLLBACK_COMPLETE"
        lines = logs(stack)
    own = [line for line in lines if line.startswith("[WARNING]")]
    assert re.fullmatch(
        r"\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t[0-9a-f-]{36}\ton_event Create raise", own[0]
    )
    (error,) = [line for line in lines if line.startswith("[ERROR]")]
    event_lines = error.split("\n")  # one log event, as the runtime writes it
    assert event_lines[0] == "[ERROR] ValueError: on_event refused the Create"
    assert event_lines[1] == "Traceback (most recent call last):"
    assert event_lines[2].startswith('\u00a0\u00a0File "/var/task/handler.py", line ') and "in on_event" in error
    assert 'raise ValueError("on_event refused the Create")' in error
    assert "_worker.py" not in error  # the runtime's own frames are not the handler's


def test_is_complete_data_while_not_complete_fails_with_the_frameworks_message(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "DataWhileIncomplete", endpoint=endpoint) as stack:
        outcome = stack.create()
        result = outcome.result(thing(stack), "Create")
        assert result.status == "FAILED" and result.physical_id == "thing-1" and result.polls == 1
        assert result.reason.startswith('Error: "Data" is not allowed if "IsComplete" is "False"\n    at ')


def test_is_complete_returning_none_fails_as_the_javascript_framework_reads_it(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "NoneResult", endpoint=endpoint) as stack:
        result = stack.create().result(thing(stack), "Create")
        assert result.status == "FAILED"
        assert result.reason.startswith("TypeError: Cannot read properties of null (reading 'IsComplete')")


@pytest.mark.parametrize("case", ["BigResult", "BigProperties"])
def test_an_execution_input_over_256_kib_fails_the_create_after_on_event_succeeded(
    cdk_out: Path, endpoint: Endpoint, case: str
) -> None:
    with Rehearsal(cdk_out, case, endpoint=endpoint) as stack:
        outcome = stack.create()
        create = outcome.result(thing(stack), "Create")
        assert create.status == "FAILED" and create.physical_id == CREATE_FAILED_MARKER
        assert create.reason.startswith("ValidationException: 1 validation error detected: Value at 'input'")
        assert "262144 bytes" in create.reason and create.polls == 0
        # on_event ran (it could have started something) and its Delete is skipped: whatever it started is orphaned.
        assert on_event_calls(stack) == 1
        assert outcome.result(thing(stack), "Delete", rollback=True).status == "SKIPPED"
        refused = [s.message for s in stack.steps if s.kind == "waiter"]
        assert refused and "StartExecution refused" in refused[0]


def test_the_waiter_gives_up_after_max_attempts_and_on_timeout_answers(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Never", endpoint=endpoint) as stack:
        outcome: Outcome = stack.create()
        create = outcome.result(thing(stack), "Create")
        assert (create.status, create.physical_id, create.reason) == ("FAILED", "thing-1", "Operation timed out")
        assert create.polls == TIMEOUT_S // INTERVAL_S + 1  # the first try and MaxAttempts retries
        rollback = next(i for i, s in enumerate(stack.steps) if s.message.startswith("ROLLBACK_IN_PROGRESS"))
        polls = [s.at for s in stack.steps[:rollback] if s.kind == "is_complete"]
        assert [round(b - a, 3) for a, b in itertools.pairwise(polls)] == [INTERVAL_S] * (TIMEOUT_S // INTERVAL_S)
        caught = [s.message for s in stack.steps if s.kind == "waiter" and "caught" in s.message]
        assert len(caught) == 1 and "framework-onTimeout-task" in caught[0]
        # The rollback Delete reaches on_event: the physical id is the handler's own.
        assert outcome.result(thing(stack), "Delete", rollback=True).status == "SUCCESS"


def test_the_answer_is_the_asset_frameworks_own(cdk_out: Path, endpoint: Endpoint, tmp_path: Path) -> None:
    """Patch the marker in the asset's cfn-response.js: the rehearsal's answers follow the patched code."""
    patched = tmp_path / "cdk.out"
    shutil.copytree(cdk_out, patched)
    (response_js,) = patched.glob("asset.*/cfn-response.js")
    response_js.write_text(response_js.read_text().replace(CREATE_FAILED_MARKER, "PATCHED::CREATE_FAILED"))
    with Rehearsal(patched, "Raise", endpoint=endpoint) as stack:
        outcome = stack.create()
        assert outcome.result(thing(stack), "Create").physical_id == "PATCHED::CREATE_FAILED"
        # The patched framework skips the Delete of its patched marker, and nothing else decided so.
        rollback = outcome.result(thing(stack), "Delete", rollback=True)
        assert (rollback.status, rollback.physical_id) == ("SKIPPED", "PATCHED::CREATE_FAILED")
        assert on_event_calls(stack) == 1


def test_the_projects_provider_keeps_the_frameworks_logs_at_fatal(endpoint: Endpoint, tmp_path: Path) -> None:
    """ApplicationLogLevel FATAL (JSON format) on the framework's functions: none of its INFO lines are kept."""
    from tests.helpers import job

    app = App(outdir=str(tmp_path / "cdk.out"))
    job(Stack(app, "Quiet", env=Environment(account=ACCOUNT, region=REGION)), name="quiet-job")
    app.synth()
    with Rehearsal(tmp_path / "cdk.out", "Quiet", endpoint=endpoint) as stack:
        assert stack.create().ok
        lines = logs(stack)
    assert any("created audience generation job" in line for line in lines)  # the handler's own lines are there
    assert not [line for line in lines if "provider-framework" in line]


def waiter_definition(**retry: float) -> str:
    function = "arn:aws:lambda:us-east-1:111122223333:function:"
    return json.dumps(
        {
            "StartAt": "check",
            "States": {
                "check": {
                    "Type": "Task",
                    "Resource": function + "check",
                    "Retry": [{"ErrorEquals": ["States.ALL"], **retry}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "give-up"}],
                    "End": True,
                },
                "give-up": {"Type": "Task", "Resource": function + "give-up", "End": True},
            },
        }
    )


def test_the_waiter_model_retries_backs_off_and_catches_as_its_definition_says() -> None:
    clock = SimulatedClock()
    clock.register()  # this thread is the only one: each sleep jumps the clock
    calls: list[tuple[float, str, object]] = []

    def run_task(arn: str, task_input: object) -> TaskResult:
        calls.append((clock.now(), arn.rsplit(":", 1)[-1], task_input))
        return (
            TaskResult(error="Error", cause='{"errorMessage":"not yet"}')
            if arn.endswith("check")
            else TaskResult(task_input)
        )

    machine = StateMachine(
        "arn:sm", waiter_definition(IntervalSeconds=2, MaxAttempts=3, BackoffRate=2, MaxDelaySeconds=5)
    )
    execution = machine.execute('{"k": "v"}', run_task, clock, lambda kind, message: None)
    assert [(at, name) for at, name, _ in calls] == [
        (0, "check"),
        (2, "check"),
        (6, "check"),
        (11, "check"),
        (11, "give-up"),
    ]
    caught = {"Error": "Error", "Cause": '{"errorMessage":"not yet"}'}
    assert calls[-1][2] == caught and execution == Execution("SUCCEEDED", output=caught)


def test_a_caught_error_too_large_to_pass_on_fails_the_execution_uncaught() -> None:
    clock = SimulatedClock()
    clock.register()
    reached: list[str] = []

    def run_task(arn: str, task_input: object) -> TaskResult:
        reached.append(arn.rsplit(":", 1)[-1])
        return TaskResult(error="Error", cause="c" * 300_000)

    machine = StateMachine("arn:sm", waiter_definition(IntervalSeconds=1, MaxAttempts=0))
    execution = machine.execute("{}", run_task, clock, lambda kind, message: None)
    # States.ALL does not catch States.DataLimitExceeded: the onTimeout task never runs.
    assert reached == ["check"] and (execution.status, execution.error) == ("FAILED", "States.DataLimitExceeded")


def test_a_definition_the_model_does_not_play_is_refused_by_name() -> None:
    definition = json.loads(waiter_definition())
    definition["States"]["give-up"] = {"Type": "Pass", "End": True}
    with pytest.raises(TemplateError, match=r"state machine arn:sm, state give-up: a Pass state"):
        StateMachine("arn:sm", json.dumps(definition))
