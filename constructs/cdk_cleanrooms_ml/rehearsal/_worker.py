"""The body of one warm "Lambda" worker process; run with ``runpy.run_path`` in a spawned process.

It is a plain script (standard library only) so that the spawned process imports nothing of this
package (importing ``cdk_cleanrooms_ml`` would start jsii): it sees only the function's asset
directory, the environment the template gives, and site-packages (the Lambda runtime's SDK).

The parent passes, as init globals: ``CONNECTION`` (a multiprocessing Connection), ``ASSET_DIR``,
``HANDLER`` ("module.function"), ``ENVIRONMENT`` (the complete environment) and ``FUNCTION_NAME``.
Each message is ``(event, request_id, deadline_epoch)``; the answer is ``("ok", result, logs)`` or
``("error", {"errorType", "errorMessage", "stackTrace"}, logs)``.
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
from contextlib import redirect_stderr, redirect_stdout
from typing import Any


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
        return max(0, int((self._deadline - time.time()) * 1000))


class _Capture(logging.Handler):
    """Lambda's Python runtime format: level, time, request id, message."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.lines: list[str] = []
        self.request_id = ""

    def emit(self, record: logging.LogRecord) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        self.lines.append(f"[{record.levelname}]\t{stamp}Z\t{self.request_id}\t{record.getMessage()}")


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
    capture = _Capture()
    root = logging.getLogger()
    root.handlers[:] = [capture]
    root.setLevel(logging.WARNING)  # Lambda's default: the handler's own logger sets INFO for itself
    module_name, _, function = handler.rpartition(".")
    try:
        entry = getattr(importlib.import_module(module_name), function)
        init_error = None
    except Exception as error:  # Lambda reports an import error on every invocation (Runtime.ImportModuleError)
        entry, init_error = (
            None,
            {
                "errorType": "Runtime.ImportModuleError",
                "errorMessage": f"Unable to import module '{module_name}': {error}",
                "stackTrace": traceback.format_exc().splitlines(),
            },
        )
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
        event, request_id, deadline = message
        capture.lines = []
        capture.request_id = request_id
        output = io.StringIO()
        if entry is None:
            connection.send(("error", init_error, []))
            continue
        context = LambdaContext(function_name, request_id, deadline, memory, region)
        try:
            with redirect_stdout(output), redirect_stderr(output):
                result = entry(json.loads(json.dumps(event)), context)
            # Lambda serializes the result as JSON: anything else fails the invocation.
            answer: tuple[str, Any] = ("ok", json.loads(json.dumps(result)))
        except Exception as error:
            answer = (
                "error",
                {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_exc().splitlines(),
                },
            )
        lines = capture.lines + [line for line in output.getvalue().splitlines() if line]
        connection.send((answer[0], answer[1], lines))


if __name__ == "__rehearsal_worker__":
    serve(
        globals()["CONNECTION"],
        globals()["ASSET_DIR"],
        globals()["HANDLER"],
        globals()["ENVIRONMENT"],
        globals()["FUNCTION_NAME"],
    )
