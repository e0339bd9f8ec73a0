"""A local stand-in for AWS Step Functions' StartExecution / DescribeExecution, and for the wait condition handles'
presigned URLs: one small HTTP server on 127.0.0.1 that the handler Lambdas reach through ``AWS_ENDPOINT_URL_SFN``
(and whose URLs the handles' Refs are).

Step Functions' rules kept (API reference, StartExecution; Step Functions quotas):

* JSON 1.0 protocol, ``X-Amz-Target: AWSStepFunctions.<Operation>``; errors are HTTP 400 with ``__type``.
* StartExecution runs the template's state machine found by ARN (``state_machine.py``: Task, Choice, Wait,
  Succeed, Fail) in a background thread, on the rehearsal's clock; an unknown ARN is StateMachineDoesNotExist,
  an input that is not JSON InvalidExecutionInput, over 256 KiB a ValidationException, a name over 80 characters
  or with a forbidden character InvalidName.
* Standard workflows are idempotent by name: the same name and input as a RUNNING execution answer that
  execution again; a different input, or a closed execution of that name, is ExecutionAlreadyExists.
* IAM: the caller is told by its access key (each function of the rehearsal has its own); ``states:StartExecution``
  on the state machine's ARN is judged against the calling function's role in the template (``iam.py``). A caller
  the rehearsal does not know (a test's own client), or a role it cannot judge (managed policies), is not judged.

Not played: Express workflows, StopExecution, execution history, redrive, the 90-day name reuse, executions'
CloudWatch logging, the account's concurrent execution quota.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .clock import Clock
from .state_machine import MAX_PAYLOAD_BYTES, Execution, StateMachine, TaskResult
from .template import TemplateError
from .wait_conditions import Handles, SignalRefused

#: StartExecution's limits on ``name``: 1-80 characters, none of whitespace, brackets, wildcards, these
#: specials, or control characters (API reference).
_BAD_NAME = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class StatesError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ExecutionRecord:
    """One execution, as DescribeExecution tells it."""

    arn: str
    name: str
    state_machine_arn: str
    input: str
    started: float
    status: str = "RUNNING"
    stopped: float | None = None
    result: Execution | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "executionArn": self.arn,
            "stateMachineArn": self.state_machine_arn,
            "name": self.name,
            "status": self.status,
            "startDate": self.started,
            "input": self.input,
        }
        if self.stopped is not None:
            out["stopDate"] = self.stopped
        if self.result is not None:
            if self.result.status == "SUCCEEDED":
                out["output"] = json.dumps(self.result.output)
            elif self.result.error or self.result.cause:
                out.update(error=self.result.error, cause=self.result.cause)
        return out


@dataclass
class Wiring:
    """What the server needs from the rehearsal."""

    state_machine: Callable[[str], StateMachine]  # by ARN; raises TemplateError when there is none
    run_task: Callable[[str, Any, Clock], TaskResult]  # a Task state's Lambda invocation
    clock: Callable[[], Clock]  # the current operation's clock
    authorize: Callable[[str, str, str], str | None]  # (access key, action, resource) -> why denied, or None
    report: Callable[[str, str, str], None]  # (who, kind, message)


class LocalCloud:
    """The server: Step Functions' executions and the wait condition handles. ``close`` stops every execution."""

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring
        self.handles = Handles()
        self.executions: dict[str, ExecutionRecord] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        owner = self

        class Handler(_Handler):
            cloud = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.handles.base_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="rehearsal-local-cloud", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop every running execution (ABORTED) and the server; returns once their threads ended."""
        self._stop.set()
        for record in list(self.executions.values()):
            if record.thread is not None:
                self.wiring.clock().notify()
                record.thread.join(timeout)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def running(self) -> list[ExecutionRecord]:
        with self._lock:
            return [r for r in self.executions.values() if r.status == "RUNNING"]

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait (real time) until no execution runs; returns whether none does."""
        deadline = time.monotonic() + timeout
        for record in list(self.executions.values()):
            if record.thread is not None:
                record.thread.join(max(0.0, deadline - time.monotonic()))
        return not self.running()

    # ----------------------------------------------------------------------------------------------

    def call(self, operation: str, request: dict[str, Any], access_key: str) -> dict[str, Any]:
        if operation == "StartExecution":
            return self.start_execution(request, access_key)
        if operation == "DescribeExecution":
            with self._lock:
                record = self.executions.get(str(request.get("executionArn", "")))
            if record is None:
                raise StatesError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{request.get('executionArn')}'")
            return record.describe()
        raise StatesError("UnknownOperationException", f"the rehearsal does not play Step Functions' {operation}")

    def start_execution(self, request: dict[str, Any], access_key: str) -> dict[str, Any]:
        machine_arn = str(request.get("stateMachineArn", ""))
        name = str(request.get("name") or uuid.uuid4())
        execution_input = str(request.get("input", "{}"))
        if not machine_arn.startswith("arn:") or ":stateMachine:" not in machine_arn:
            raise StatesError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {machine_arn}'")
        if not 1 <= len(name) <= 80 or _BAD_NAME.search(name):
            raise StatesError("InvalidName", f"Invalid Name: '{name}'")
        size = len(execution_input.encode())
        if size > MAX_PAYLOAD_BYTES:
            raise StatesError(
                "ValidationException",
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have size less than or equal to {MAX_PAYLOAD_BYTES} bytes in UTF-8 encoding",
            )
        denied = self.wiring.authorize(access_key, "states:StartExecution", machine_arn)
        if denied:
            raise StatesError("AccessDeniedException", denied)
        try:
            machine = self.wiring.state_machine(machine_arn)
        except TemplateError:
            raise StatesError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{machine_arn}'") from None
        try:
            json.loads(execution_input)
        except ValueError:
            raise StatesError("InvalidExecutionInput", "Invalid State Machine Execution Input") from None
        arn = machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name
        clock = self.wiring.clock()
        with self._lock:
            existing = self.executions.get(arn)
            if existing is not None:
                if existing.status == "RUNNING" and existing.input == execution_input:
                    return {"executionArn": existing.arn, "startDate": existing.started}
                raise StatesError("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
            if self._stop.is_set():
                raise StatesError("ServiceUnavailable", "the rehearsal is closing")
            record = ExecutionRecord(arn, name, machine_arn, execution_input, clock.epoch())
            self.executions[arn] = record
            # Counted in the clock before the caller (a running participant) gets its answer: time cannot jump
            # past the execution's first step.
            clock.register()
            record.thread = threading.Thread(
                target=self._run, args=(record, machine, clock), name=f"execution-{name[:20]}", daemon=True
            )
        self.wiring.report(machine_arn, "execution", f"{name} started ({size} bytes of input)")
        record.thread.start()
        return {"executionArn": arn, "startDate": record.started}

    def _run(self, record: ExecutionRecord, machine: StateMachine, clock: Clock) -> None:
        def report(kind: str, message: str) -> None:
            self.wiring.report(record.state_machine_arn, kind, f"{record.name}: {message}")

        def run_task(arn: str, task_input: Any) -> TaskResult:
            return self.wiring.run_task(arn, task_input, clock)

        try:
            result = machine.execute(record.input, run_task, clock, report, self._stop)
        except Exception as error:  # the rehearsal broke: the execution fails, visibly
            result = Execution("FAILED", error="Rehearsal.Error", cause=repr(error))
        finally:
            clock.unregister()
        with self._lock:
            record.result, record.status, record.stopped = result, result.status, clock.epoch()
        detail = f": {result.error}: {result.cause[:300]}" if result.error else ""
        self.wiring.report(record.state_machine_arn, "execution", f"{record.name} {result.status}{detail}")


class _Handler(BaseHTTPRequestHandler):
    cloud: LocalCloud
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_PUT(self) -> None:
        body = self._body()
        try:
            handle, signal = self.cloud.handles.put(self.path, body)
        except SignalRefused as refused:
            self._answer(refused.status, str(refused).encode(), "text/plain")
            return
        what = f"{signal.status} signal, UniqueId {signal.unique_id}" if signal else "a PUT that is no signal: ignored"
        self.cloud.wiring.report(handle.name, "signal", what)
        self.cloud.wiring.clock().notify()
        self._answer(200, b"", "text/plain")

    def do_POST(self) -> None:
        body = self._body()
        target = self.headers.get("X-Amz-Target") or ""
        access_key = _CREDENTIAL.search(self.headers.get("Authorization") or "")
        service, _, operation = target.partition(".")
        if service != "AWSStepFunctions" or access_key is None:
            self._error("UnknownOperationException" if access_key else "MissingAuthenticationTokenException", target)
            return
        try:
            request = json.loads(body or b"{}")
            answer = self.cloud.call(operation, request, access_key[1])
        except StatesError as error:
            self._error(error.code, error.message)
            return
        except ValueError:
            self._error("SerializationException", "the request body is not JSON")
            return
        self._answer(200, json.dumps(answer).encode(), "application/x-amz-json-1.0")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _error(self, code: str, message: str) -> None:
        payload = json.dumps({"__type": code, "message": message}).encode()
        self._answer(400, payload, "application/x-amz-json-1.0")

    def _answer(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)
