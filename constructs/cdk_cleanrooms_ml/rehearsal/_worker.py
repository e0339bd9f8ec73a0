"""The body of one warm "Lambda" worker process; run with ``runpy.run_path`` in a spawned process.

It is a plain script (standard library only) so that the spawned process imports nothing of this
package (importing ``cdk_cleanrooms_ml`` would start jsii): it sees only the function's asset
directory, the environment the template gives, and site-packages (the Lambda runtime's SDK).

The parent passes, as init globals: ``CONNECTION`` (a multiprocessing Connection), ``ASSET_DIR``,
``HANDLER`` ("module.function"), ``ENVIRONMENT`` (the complete environment) and ``FUNCTION_NAME``.
Each message is ``(event, request_id, deadline_epoch, clock_offset)``: during the invocation ``time.time()``
reads the real time plus ``clock_offset`` (the rehearsal's simulated time); the answer is ``("ok", result, logs)`` or
``("error", {"errorType", "errorMessage", "requestId", "stackTrace"}, logs)``.

Logging is the Python runtime's (awslambdaric ``bootstrap.py``): a root handler writing
``[LEVEL]\t<time>Z\t<request id>\t<message>``, the root level from ``AWS_LAMBDA_LOG_LEVEL`` if set
(else Python's WARNING), each printed line its own log event, and an uncaught exception logged as one
event: ``[ERROR] <Type>: <message>``, ``Traceback (most recent call last):`` and the frames below the
runtime, indented with no-break spaces as the runtime does. ``logs`` holds the events in order. Paths
under the asset directory are shown under ``/var/task``, Lambda's code root. (LogFormat JSON is not
played for Python functions: they log in the Text format.)
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import sysconfig
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import Any

#: The real clock (``time.time`` is shifted to the rehearsal's simulated time while a handler runs).
_REAL_TIME = time.time


class LambdaContext:
    """The parts of the Lambda context object that handlers use."""

    def __init__(self, function_name: str, request_id: str, deadline: float, memory: str, region: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.aws_request_id = request_id
        self.memory_limit_in_mb = memory
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{os.environ.get('REHEARSAL_ACCOUNT', '')}:function:{function_name}"
        )
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "rehearsal"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - _REAL_TIME()) * 1000))


#: The runtime's Text format for the root logger (awslambdaric bootstrap._setup_logging), in UTC.
_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
_ERROR_INDENT = "\u00a0"  # the runtime indents traceback lines with NO-BREAK SPACEs


class _LogEvents(logging.Handler):
    """The function's log events of the current invocation: logging records and printed lines, in order."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        formatter = logging.Formatter(_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        self.setFormatter(formatter)
        self.events: list[str] = []
        self.request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(self.format(record))


class _Printed(io.TextIOBase):
    """stdout and stderr: each complete line printed is one log event (a partial line waits for its end)."""

    def __init__(self, events: _LogEvents) -> None:
        self._events = events
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        self._events.events.extend(line for line in lines if line)
        return len(text)

    def flush_partial(self) -> None:
        if self._partial:
            self._events.events.append(self._partial)
        self._partial = ""


def _error_payload(error: BaseException, request_id: str, asset_dir: str) -> dict[str, Any]:
    """The runtime's error payload: the frames from the handler down (the worker's own are dropped)."""
    frames = traceback.extract_tb(error.__traceback__)
    while frames and frames[0].filename == __file__:
        frames.pop(0)
    in_asset = f'File "{asset_dir}{os.sep}'
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": [line.replace(in_asset, 'File "/var/task/') for line in traceback.format_list(frames)],
    }


def _logged_error(payload: dict[str, Any]) -> str:
    """The log event the runtime writes for an uncaught exception (bootstrap.log_error, Text format)."""
    description = "[ERROR]"
    if payload.get("errorType"):
        description += " " + payload["errorType"]
    if payload.get("errorMessage"):
        description += (":" if payload.get("errorType") else "") + " " + payload["errorMessage"]
    lines = [description, "Traceback (most recent call last):"]
    for element in payload.get("stackTrace") or []:
        for line in element.splitlines() or [""]:
            stripped = line.lstrip(" ")
            lines.append(_ERROR_INDENT * (len(line) - len(stripped)) + stripped)
    return "\n".join(lines)


def _runtime_path(asset_dir: str) -> list[str]:
    """The asset directory first, then only the interpreter's own and site-packages directories."""
    keep = {
        os.path.realpath(p)
        for k, p in sysconfig.get_paths().items()
        if k in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    paths = [asset_dir]
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else ""
        if entry and (real in keep or any(real.startswith(k + os.sep) for k in keep) or entry.endswith(".zip")):
            paths.append(entry)
    return paths


def serve(connection: Any, asset_dir: str, handler: str, environment: dict[str, str], function_name: str) -> None:
    os.environ.clear()
    os.environ.update(environment)
    sys.path[:] = _runtime_path(asset_dir)
    os.chdir(asset_dir)
    events = _LogEvents()
    printed = _Printed(events)
    root = logging.getLogger()
    root.handlers[:] = [events]
    level = environment.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    # The runtime sets the root level only when the function configures one; else Python's WARNING stays.
    root.setLevel(level if isinstance(logging.getLevelName(level), int) else logging.WARNING)
    module_name, _, function = handler.rpartition(".")
    init_error: dict[str, Any] | None = None
    try:
        with redirect_stdout(printed), redirect_stderr(printed):
            entry = getattr(importlib.import_module(module_name), function)
    except ImportError as error:  # Lambda reports an import error on every invocation (Runtime.ImportModuleError)
        entry = None
        init_error = {
            "errorMessage": f"Unable to import module '{module_name}': {error}",
            "errorType": "Runtime.ImportModuleError",
            "requestId": "",
            "stackTrace": [],
        }
    except Exception as error:
        entry = None
        init_error = _error_payload(error, "", asset_dir)
    printed.flush_partial()
    if init_error is not None:  # logged once, at the cold start, like the runtime's init
        events.events.append(_logged_error(init_error))
    init_events, events.events = events.events, []
    memory = environment.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    region = environment.get("AWS_REGION", "us-east-1")
    connection.send(("ready", None, []))
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        event, request_id, deadline, offset = message
        events.events, init_events = init_events, []
        events.request_id = request_id
        if entry is None:
            connection.send(("error", {**(init_error or {}), "requestId": request_id}, events.events))
            continue
        context = LambdaContext(function_name, request_id, deadline, memory, region)
        payload: dict[str, Any] | None = None
        try:
            with redirect_stdout(printed), redirect_stderr(printed), _shifted_clock(offset):
                result = entry(json.loads(json.dumps(event)), context)
        except Exception as error:
            payload = _error_payload(error, request_id, asset_dir)
        else:
            try:  # Lambda serializes the result as JSON: anything else fails the invocation.
                result = json.loads(json.dumps(result))
            except (TypeError, ValueError) as error:
                payload = {
                    "errorMessage": f"Unable to marshal response: {error}",
                    "errorType": "Runtime.MarshalError",
                    "requestId": request_id,
                    "stackTrace": [],
                }
        printed.flush_partial()
        if payload is None:
            connection.send(("ok", result, events.events))
        else:
            events.events.append(_logged_error(payload))
            connection.send(("error", payload, events.events))


@contextmanager
def _shifted_clock(offset: float) -> Iterator[None]:
    """``time.time()`` reads ``offset`` seconds later than the real clock while the handler runs."""
    if not offset:
        yield
        return
    time.time = lambda: _REAL_TIME() + offset
    try:
        yield
    finally:
        time.time = _REAL_TIME


if __name__ == "__rehearsal_worker__":
    serve(
        globals()["CONNECTION"],
        globals()["ASSET_DIR"],
        globals()["HANDLER"],
        globals()["ENVIRONMENT"],
        globals()["FUNCTION_NAME"],
    )
