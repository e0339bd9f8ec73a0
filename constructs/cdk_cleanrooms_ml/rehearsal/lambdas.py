"""Lambda functions of a synthesized template, each run in its own warm worker process.

A worker is spawned (``multiprocessing``, start method ``spawn``) once per function and kept warm,
as Lambda keeps an execution environment. It imports the handler from the function's asset
directory in ``cdk.out`` -- not from the source tree -- with the template's ``Handler`` string and
``Environment`` variables, so a file missing from the asset fails the rehearsal. Invocations of
one function run one at a time; a handler that overruns the function's ``Timeout`` is killed and the
worker started again (a cold start), as Lambda does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import runpy
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Lambda's code root: template paths under it point into the asset directory.
TASK_ROOT = "/var/task"

_WORKER_SCRIPT = str(Path(__file__).with_name("_worker.py"))


class InvocationError(Exception):
    """The function raised (or timed out): Lambda's errorType and errorMessage, and the whole error payload
    that Lambda's Invoke returns with ``FunctionError: Unhandled``."""

    def __init__(
        self, error_type: str, message: str, logs: list[str] | None = None, payload: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.logs = logs or []
        self.payload = payload if payload is not None else {"errorType": error_type, "errorMessage": message}


@dataclass
class FunctionSpec:
    """What the template says about one function, with the asset directory its code comes from."""

    logical_id: str
    name: str
    handler: str
    asset_dir: Path
    environment: dict[str, str]
    timeout_seconds: int = 3
    memory_mb: int = 128
    runtime: str = ""
    log_format: str = ""  # LoggingConfig.LogFormat (Text or JSON); empty: not set
    application_log_level: str = ""  # LoggingConfig.ApplicationLogLevel (JSON format only)


@dataclass
class Invocation:
    """One invocation: the function, the request id, how long it took, and the lines it logged."""

    function: str
    request_id: str
    seconds: float
    logs: list[str] = field(default_factory=list)
    error: str | None = None


def lambda_environment(spec: FunctionSpec, base: dict[str, str]) -> dict[str, str]:
    """The complete environment of one function: Lambda's reserved variables, then the template's own."""
    task_root = str(spec.asset_dir)
    env = {
        **base,
        "LAMBDA_TASK_ROOT": task_root,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python'}",
        # No user configuration may leak into the "Lambda": a missing file means none.
        "AWS_CONFIG_FILE": str(Path(task_root) / ".no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(Path(task_root) / ".no-aws-credentials"),
    }
    # Lambda tells the runtime the function's LoggingConfig through these two reserved variables.
    if spec.log_format:
        env["AWS_LAMBDA_LOG_FORMAT"] = spec.log_format
    if spec.application_log_level:
        env["AWS_LAMBDA_LOG_LEVEL"] = spec.application_log_level
    for key, value in spec.environment.items():
        if value == TASK_ROOT or value.startswith(TASK_ROOT + "/"):
            value = task_root + value[len(TASK_ROOT) :]
        env[key] = value
    return env


def timed_out(request_id: str, seconds: float) -> InvocationError:
    """What Lambda answers when a function overruns its Timeout (the environment is then discarded)."""
    return InvocationError(
        "Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds"
    )


class WarmFunction:
    """One function with one warm worker process (started on first use)."""

    def __init__(self, spec: FunctionSpec, base_environment: dict[str, str]) -> None:
        self.spec = spec
        self.environment = lambda_environment(spec, base_environment)
        self._lock = threading.Lock()
        self._process: Any = None
        self._connection: Any = None
        self.cold_starts = 0
        self.invocations = 0

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        init = {
            "CONNECTION": child,
            "ASSET_DIR": str(self.spec.asset_dir),
            "HANDLER": self.spec.handler,
            "ENVIRONMENT": self.environment,
            "FUNCTION_NAME": self.spec.name,
        }
        # runpy.run_path as the target: the child imports only the standard library and the worker script.
        process = context.Process(
            target=runpy.run_path,
            args=(_WORKER_SCRIPT,),
            kwargs={"init_globals": init, "run_name": "__rehearsal_worker__"},
            name=f"lambda-{self.spec.name}",
            daemon=True,
        )
        process.start()
        child.close()
        if not parent.poll(60):
            process.kill()
            raise InvocationError("Runtime.Unavailable", f"the worker of {self.spec.name} did not start")
        parent.recv()
        self._process, self._connection = process, parent
        self.cold_starts += 1

    def invoke(self, event: Any, epoch: float | None = None) -> tuple[Any, Invocation]:
        """Run the handler with ``event``; returns its result as JSON gives it back (any JSON value), or raises
        InvocationError.

        :param epoch: the wall-clock time the handler sees (``time.time()``) when it starts: the rehearsal's
            simulated time. Default: the real time.
        """
        request_id = str(uuid.uuid4())
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()
            started = time.time()
            deadline = started + self.spec.timeout_seconds
            offset = 0.0 if epoch is None else epoch - started
            self._connection.send((event, request_id, deadline, offset))
            self.invocations += 1
            if not self._connection.poll(self.spec.timeout_seconds + 1):
                self.close()
                raise timed_out(request_id, time.time() - started)
            try:
                status, payload, logs = self._connection.recv()
            except EOFError:
                self.close()
                raise InvocationError("Runtime.ExitError", "the worker process exited during the invocation") from None
        record = Invocation(self.spec.name, request_id, time.time() - started, list(logs))
        if status != "ok":
            record.error = str(payload.get("errorMessage"))
            raise InvocationError(
                str(payload.get("errorType")), str(payload.get("errorMessage")), list(logs), dict(payload)
            )
        return payload, record

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError, ValueError):  # the worker may be gone already
                self._connection.send(None)
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=2)
            self._process = None
