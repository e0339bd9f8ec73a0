"""The CDK Provider framework (aws-cdk-lib ``custom_resources.Provider``), run for real around a played AWS.

The framework's rules are not written here: its own code runs. CloudFormation's event goes to the
framework's onEvent function -- ``framework.js`` from the synthesized asset, under Node.js
(``framework_host.py``) -- and everything that code does on the outside comes back through its
``outbound`` module and is played here:

* ``invokeFunction``: Lambda's Invoke of a function of the stack, by ARN. The user's Python functions
  run in their warm workers (``lambdas.py``); the answer has Lambda's shape: ``Payload`` (the result as
  JSON), and ``FunctionError: "Unhandled"`` with the runtime's error payload when the handler raised.
* ``startExecution``: Step Functions' StartExecution of the waiter state machine of the template
  (``state_machine.py``), refused with ValidationException over 256 KiB of input as Step Functions does;
  the execution then runs (its isComplete and onTimeout tasks are the framework's functions again).
* ``httpRequest``: the response to CloudFormation's ResponseURL. CloudFormation's own checks apply:
  a response body over 4096 bytes and a physical id over 1 KB are refused.

So the marker physical id of a failed Create, the skipped Delete, the event merged from on_event's
result, the Data check, what a handler error becomes and the response body are aws-cdk-lib's own.
``Provider.handle`` returns once CloudFormation has its response: from onEvent itself, from the
waiter's isComplete, or from onTimeout.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from .clock import Clock
from .framework_host import FrameworkFunction, NodeInvocation, OutboundError
from .lambdas import Invocation, InvocationError, WarmFunction
from .state_machine import MAX_PAYLOAD_BYTES, StateMachine, TaskResult
from .template import TemplateError

CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"
MAX_RESPONSE_BYTES = 4096
MAX_PHYSICAL_ID_BYTES = 1024
USER_ON_EVENT = "USER_ON_EVENT_FUNCTION_ARN"
USER_IS_COMPLETE = "USER_IS_COMPLETE_FUNCTION_ARN"

#: StartExecution's answer to an input over its limit, as the SDK reports it (a ValidationException
#: of the API's length constraint on ``input``).
INPUT_TOO_LARGE = (
    "1 validation error detected: Value at 'input' failed to satisfy constraint: "
    f"Member must have size less than or equal to {MAX_PAYLOAD_BYTES} bytes in UTF-8 encoding"
)
#: What CloudFormation says when no response arrives (a rehearsal does not wait the hour out).
NO_RESPONSE = (
    "CloudFormation did not receive a response from the custom resource provider: it would wait until the "
    "resource's ServiceTimeout (default 3600 s) and then fail the resource"
)

LambdaFunction = WarmFunction | FrameworkFunction
_SHOWN_CHARACTERS = 2000  # of a handler's result, in its step


@dataclass
class Response:
    """What the framework sent back to CloudFormation, as CloudFormation took it."""

    status: str  # SUCCESS or FAILED
    physical_id: str
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    polls: int = 0
    skipped: bool = False  # the framework answered without invoking the user's on_event


Report = Callable[[str, str], None]  # (kind, message)


@dataclass
class Provider:
    """One Provider: its framework onEvent function (the ServiceToken), and the stack around it.

    :param entry: the framework's onEvent function.
    :param function: a Lambda function of the stack by ARN (raises TemplateError when there is none).
    :param state_machine: a state machine of the stack by ARN (raises TemplateError when there is none).
    """

    entry: FrameworkFunction
    function: Callable[[str], LambdaFunction]
    state_machine: Callable[[str], StateMachine]
    invocations: list[Invocation | NodeInvocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def handle(self, event: dict[str, Any], clock: Clock, report: Report) -> Response:
        """Deliver one CloudFormation request to the framework; returns the response CloudFormation got."""
        return _Delivery(self, event, clock, report).run()

    def record(self, invocation: Invocation | NodeInvocation) -> None:
        with self._lock:
            self.invocations.append(invocation)

    def user_function_kind(self, arn: str) -> str:
        """How the steps name a user function: on_event / is_complete, from the framework's environment."""
        environment = self.entry.spec.environment
        if arn == environment.get(USER_ON_EVENT):
            return "on_event"
        if arn == environment.get(USER_IS_COMPLETE):
            return "is_complete"
        return arn.rsplit(":", 1)[-1]


class _Delivery:
    """One CloudFormation request, followed through the framework until CloudFormation has a response."""

    def __init__(self, provider: Provider, event: dict[str, Any], clock: Clock, report: Report) -> None:
        self.provider = provider
        self.event = event
        self.clock = clock
        self.report = report
        self.responses: list[str] = []  # bodies PUT to the ResponseURL, in order
        self.executions: list[tuple[StateMachine, str]] = []
        self.user_invocations = 0
        self.polls = 0

    def run(self) -> Response:
        # CloudFormation invokes the onEvent function asynchronously: a failure of it reaches nobody.
        self._invoke_framework(self.provider.entry, self.event)
        while self.executions:  # onEvent started the waiter: it runs to its end
            machine, execution_input = self.executions.pop(0)
            machine.execute(execution_input, self._run_task, self.clock, self.report)
        return self._response()

    # ----------------------------------------------------------------------------------------------
    # Lambda

    def _invoke_framework(self, function: FrameworkFunction, event: Any, *, as_task: bool = False) -> NodeInvocation:
        invocation = function.invoke(event, self._serve)
        self.provider.record(invocation)
        for line in invocation.logs:
            self.report("log", line)
        # A waiter task fails on every poll that is not complete (the framework's Retry): the waiter reports.
        if invocation.error is not None and not as_task:
            self.report(
                "framework",
                f"{function.spec.handler} failed: {invocation.error.get('errorType')}: "
                f"{str(invocation.error.get('errorMessage', '')).splitlines()[0][:200]}",
            )
        return invocation

    def _run_task(self, arn: str, task_input: Any) -> TaskResult:
        """A Task state of the waiter: Step Functions invokes the function with the state's input."""
        try:
            function = self.provider.function(arn)
        except TemplateError as error:
            return TaskResult(error="Lambda.ResourceNotFoundException", cause=str(error))
        if isinstance(function, FrameworkFunction):
            invocation = self._invoke_framework(function, task_input, as_task=True)
            if invocation.error is None:
                return TaskResult(output=invocation.result)
            return TaskResult(error=_error_name(invocation.error), cause=_compact(invocation.error))
        try:
            result, record = function.invoke(task_input, self.clock.epoch())
        except InvocationError as error:
            return TaskResult(error=_error_name(error.payload), cause=_compact(error.payload))
        self.provider.record(record)
        return TaskResult(output=result)

    def _invoke_user(self, request: dict[str, Any]) -> dict[str, Any]:
        """Lambda's Invoke (RequestResponse) of a function of the stack, answered in Invoke's shape."""
        arn = str(request.get("FunctionName", ""))
        try:
            function = self.provider.function(arn)
        except TemplateError:
            raise OutboundError("ResourceNotFoundException", f"Function not found: {arn}") from None
        payload = request.get("Payload")
        event = json.loads(payload) if payload else None
        kind = self.provider.user_function_kind(arn)
        self.user_invocations += 1
        if kind == "is_complete":
            self.polls += 1
        if isinstance(function, FrameworkFunction):
            invocation = self._invoke_framework(function, event)
            if invocation.error is not None:
                return _invoke_response(invocation.error, failed=True)
            return _invoke_response(invocation.result)
        try:
            result, record = function.invoke(event, self.clock.epoch())
        except InvocationError as error:
            for line in error.logs:
                self.report("log", line)
            first = error.message.splitlines()[0] if error.message else ""
            self.report(kind, f"raised {error.error_type}: {first}")
            return _invoke_response(error.payload, failed=True)
        self.provider.record(record)
        for line in record.logs:
            self.report("log", line)
        shown = {k: v for k, v in result.items() if k != "Data"} if isinstance(result, dict) else result
        text = json.dumps(shown, sort_keys=True, default=str)
        if len(text) > _SHOWN_CHARACTERS:
            text = f"{text[:_SHOWN_CHARACTERS]}... ({len(text)} characters)"
        self.report(kind, f"returned {text}")
        return _invoke_response(result)

    # ----------------------------------------------------------------------------------------------
    # The framework's outbound calls

    def _serve(self, name: str, args: list[Any]) -> Any:
        if name == "invokeFunction":
            return self._invoke_user(args[0])
        if name == "startExecution":
            return self._start_execution(args[0])
        if name == "httpRequest":
            return self._respond(args[0], str(args[1]))
        raise OutboundError("Rehearsal.NotPlayed", f"the rehearsal does not play the framework's outbound.{name}")

    def _start_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        arn = str(request.get("stateMachineArn", ""))
        execution_input = str(request.get("input", "{}"))
        size = len(execution_input.encode())
        if size > MAX_PAYLOAD_BYTES:
            self.report("waiter", f"StartExecution refused: {size} bytes of input (the limit is {MAX_PAYLOAD_BYTES})")
            raise OutboundError("ValidationException", INPUT_TOO_LARGE)
        try:
            machine = self.provider.state_machine(arn)
        except TemplateError:
            raise OutboundError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'") from None
        try:
            json.loads(execution_input)
        except ValueError:
            raise OutboundError("InvalidExecutionInput", "Invalid State Machine Execution Input") from None
        self.executions.append((machine, execution_input))
        execution = arn.replace(":stateMachine:", ":execution:", 1) + ":" + str(uuid.uuid4())
        self.report("waiter", f"execution started ({size} bytes of input)")
        return {"executionArn": execution, "startDate": int(time.time() * 1000)}

    def _respond(self, options: dict[str, Any], body: str) -> None:
        url = urlparse(str(self.event.get("ResponseURL", "")))
        target = url.path + (f"?{url.query}" if url.query else "")
        if options.get("method") != "PUT" or options.get("hostname") != url.hostname or options.get("path") != target:
            self.report("framework", f"a response went to {options.get('hostname')}{options.get('path')}, not here")
            return
        if self.responses:
            self.report("framework", "a second response to the same request: CloudFormation keeps the first")
        self.responses.append(body)

    # ----------------------------------------------------------------------------------------------
    # CloudFormation

    def _response(self) -> Response:
        if not self.responses:
            self.report("cloudformation", "no response arrived")
            return Response(
                "FAILED", str(self.event.get("PhysicalResourceId", "")), reason=NO_RESPONSE, polls=self.polls
            )
        body = self.responses[0]
        sent = json.loads(body)
        status = str(sent.get("Status"))
        physical = str(sent.get("PhysicalResourceId") or "")
        data = dict(sent.get("Data") or {})
        skipped = status == "SUCCESS" and self.user_invocations == 0
        if skipped:
            self.report("skip", "the framework answered without invoking the user's on_event")
        if len(body.encode()) > MAX_RESPONSE_BYTES:
            return Response("FAILED", physical, data, reason="Response object is too long.", polls=self.polls)
        if len(physical.encode()) > MAX_PHYSICAL_ID_BYTES:
            return Response(
                "FAILED", physical[:64], data, reason="PhysicalResourceId is longer than 1 KB", polls=self.polls
            )
        reason = str(sent.get("Reason") or "") if status != "SUCCESS" else ""
        return Response(
            status, physical, {k: str(v) for k, v in data.items()}, reason=reason, polls=self.polls, skipped=skipped
        )


def _invoke_response(payload: Any, *, failed: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": json.dumps(payload)}
    if failed:
        response["FunctionError"] = "Unhandled"
    return response


def _error_name(payload: dict[str, Any]) -> str:
    """Step Functions' error name for a failed Lambda task: the payload's errorType; a timeout or crash
    of the runtime is Lambda.Unknown."""
    error_type = str(payload.get("errorType") or "")
    return "Lambda.Unknown" if not error_type or error_type in ("Sandbox.Timedout", "Runtime.ExitError") else error_type


def _compact(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
