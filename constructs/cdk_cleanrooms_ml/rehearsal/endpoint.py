"""A local AWS Clean Rooms ML endpoint for the audience-generation operations (a simulation, not AWS).

Usage::

    from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint

    with Endpoint(reads_until_active=2) as endpoint:       # 127.0.0.1, a free port, threaded
        os.environ.update(endpoint.environment())            # AWS_ENDPOINT_URL_CLEANROOMSML, fake creds, region
        client = boto3.client("cleanroomsml")                # the unmodified client reaches it
        # or: client = endpoint.client()                     # a botocore client bound to it
        endpoint.throttle("GetAudienceGenerationJob", 2)     # the next 2 Gets answer 429 ThrottlingException
        endpoint.server_error("StartAudienceGenerationJob", 1)  # the next Start answers 500
        endpoint.lose_response("StartAudienceGenerationJob", 1) # the next Start takes effect, then answers 500
        endpoint.deny("StartAudienceGenerationJob")          # AccessDeniedException (403) until allow()
        endpoint.fail_job("my-job", "seed data not found")   # that job ends CREATE_FAILED with this message
                                                             # (a name, or a glob pattern: "Stack-Job-*")
        endpoint.fail_delete("my-job", "in use")             # deleting that job ends DELETE_FAILED
        endpoint.block_delete("my-job", 3)                   # 3 deletes answer ConflictException (409)
        endpoint.exceed_quota("StartAudienceGenerationJob", "Audience generation jobs per account", 1)
        endpoint.remove_job(arn)                             # the job vanishes (deleted out of band)
        Endpoint(echo="sparse")                              # reads leave out optional members (tags too)
        endpoint.calls, endpoint.count("StartAudienceGenerationJob"), endpoint.jobs()

``Endpoint(...).start()`` / ``.stop()`` work too; ``endpoint.url`` is ``http://127.0.0.1:<port>``.

What it does:

* Speaks the service's rest-json protocol as the installed botocore model describes it: every operation
  is routed by the model's HTTP method and request URI; URI labels, query strings and JSON bodies are
  read per member location; errors carry the status code of the model's error shape, the
  ``x-amzn-ErrorType`` header and a ``{"message": ...}`` body; timestamps are ISO 8601 as the model says.
* Validates every request against the model (required members, types, lengths, ranges, enums, full-match
  patterns, map and list sizes) with the same rules the handler uses (``lambda/model_rules.py``), and
  answers ``ValidationException`` (400) listing each broken rule.
* Keeps state: a job is CREATE_PENDING, then CREATE_IN_PROGRESS, then ACTIVE with metrics (or CREATE_FAILED
  with ``statusDetails``), one step per GetAudienceGenerationJob read of that job (``reads_until_active``
  reads see it unfinished). A deleted job is DELETE_PENDING, then DELETE_IN_PROGRESS, then gone
  (ResourceNotFoundException, 404) after ``reads_until_deleted`` reads, or DELETE_FAILED. Names are unique
  per account, also while a job is being deleted (ConflictException, 409); at most ``quota`` jobs are pending
  or in progress (ServiceQuotaExceededException, 402, with ``quotaName``); tags are kept per ARN.
* Echoes as the service does, not as the request was: a read fills in the service's defaults for members
  the request left out (``includeSeedInOutput: false``), and ``echo="sparse"`` leaves out optional members
  (description, includeSeedInOutput, the SQL parameters and compute, tags) so nothing may rely on a perfect
  echo.

Defaults: account 111122223333, region us-east-1, partition aws, 2 reads until ACTIVE, 1 read until gone,
quota 10, list pages of 10 jobs. Scripted faults are checked before validation, as the service checks
authorization and throttling before it reads a request.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session

from ..service_model import SERVICE_NAME, model_rules, operation_names, service_model

__all__ = ["ACCOUNT", "REGION", "Call", "Endpoint", "Job", "ServiceError"]

ACCOUNT = "111122223333"
REGION = "us-east-1"

JOB_TYPE = "Custom::CleanRoomsMlAudienceGenerationJob"
#: The operations this endpoint serves: those of the shipped model (the handler's).
OPERATIONS: tuple[str, ...] = ()  # set below the class: the shipped model's operations this endpoint implements
#: The quota a pending-or-in-progress job counts against (the name the service gives it).
PENDING_QUOTA = "Audience generation jobs pending or in progress"

CREATING = ("CREATE_PENDING", "CREATE_IN_PROGRESS")
DELETING = ("DELETE_PENDING", "DELETE_IN_PROGRESS")


class ServiceError(Exception):
    """An error answer: the error shape's name (its status code comes from the model) and the message."""

    def __init__(self, code: str, message: str, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra


@dataclass
class Call:
    """One request the endpoint answered: the operation, its decoded input, the HTTP status and error code."""

    operation: str
    params: dict[str, Any]
    status: int
    error: str | None = None
    at: float = 0.0


@dataclass
class Job:
    """One audience generation job as the simulated service keeps it."""

    arn: str
    name: str
    request: dict[str, Any]
    created: float
    status: str = "CREATE_PENDING"
    reads: int = 0
    reads_until_done: int = 2
    failure: tuple[str, str] | None = None
    delete_failure: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    updated: float = 0.0
    conflicts_left: int = 0
    metrics: dict[str, Any] | None = None

    def snapshot(self) -> dict[str, Any]:
        return {"arn": self.arn, "name": self.name, "status": self.status, "tags": dict(self.tags)}


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    regex: re.Pattern[str]
    query: dict[str, str]


def _routes(model: Any) -> list[_Route]:
    """Routes from the model's ``http`` traits: ``/x/{label}`` becomes a regex; ``{label+}`` is greedy."""
    routes = []
    for name in OPERATIONS:
        http = model.operation_model(name).http
        path, _, literal_query = str(http["requestUri"]).partition("?")
        regex = "^" + re.sub(
            r"\\\{([A-Za-z0-9_]+)(\\\+)?\\\}",
            lambda m: f"(?P<{m[1]}>{'.+' if m[2] else '[^/]+'})",
            re.escape(path),
        )
        query = {k: v[0] for k, v in parse_qs(literal_query, keep_blank_values=True).items()}
        routes.append(_Route(name, str(http["method"]), re.compile(regex.rstrip("/") + "/?$"), query))
    return routes


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _metrics(name: str) -> dict[str, Any]:
    """Deterministic metrics per job name, within the model's ranges (score 0-10, recall 0-1)."""
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    recall = round(0.5 + (seed % 4000) / 10000, 4)
    sizes = (10_000, 50_000, 100_000)
    return {
        "relevanceMetrics": [
            {"audienceSize": {"type": "ABSOLUTE", "value": size}, "score": round(1.0 + ((seed >> i) % 800) / 100, 2)}
            for i, size in enumerate(sizes)
        ],
        "recallMetric": recall,
    }


class Endpoint:
    """A local, threaded HTTP server that plays AWS Clean Rooms ML (see the module docstring)."""

    def __init__(
        self,
        *,
        account: str = ACCOUNT,
        region: str = REGION,
        partition: str = "aws",
        reads_until_active: int = 2,
        reads_until_deleted: int = 1,
        quota: int = 10,
        page_size: int = 10,
        echo: str = "full",
    ) -> None:
        """
        :param reads_until_active: GetAudienceGenerationJob reads that see a new job unfinished (the first
            CREATE_PENDING, the others CREATE_IN_PROGRESS); the next read sees ACTIVE. Default: 2.
        :param reads_until_deleted: reads that see a deleted job DELETE_PENDING / DELETE_IN_PROGRESS before
            it is gone. Default: 1.
        :param quota: jobs that may be pending or in progress at once. Default: 10 (the service's quota).
        :param page_size: ListAudienceGenerationJobs page size when maxResults is not given. Default: 10.
        :param echo: "full" (default): reads carry every member the job has, the service's defaults filled in;
            "sparse": reads leave out the optional members (description, includeSeedInOutput, the SQL
            parameters and compute configuration, tags), as a service may.
        """
        if echo not in ("full", "sparse"):
            raise ValueError("echo must be 'full' or 'sparse'")
        self.echo = echo
        self.account, self.region, self.partition = account, region, partition
        self.reads_until_active = reads_until_active
        self.reads_until_deleted = reads_until_deleted
        self.quota = quota
        self.page_size = page_size
        self.calls: list[Call] = []
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._throttle: dict[str, int] = {}
        self._server_errors: dict[str, int] = {}
        self._lost_responses: dict[str, int] = {}
        self._denied: dict[str, str] = {}
        self._failures: dict[str, tuple[str, str]] = {}
        self._reads_by_name: dict[str, int] = {}
        self._conflicts_by_name: dict[str, int] = {}
        self._delete_failures: dict[str, str] = {}
        self._quota_faults: dict[str, list[str]] = {}
        self._model = service_model()
        self._rules = model_rules()
        self._routing = _routes(self._model)
        self._iam: tuple[list[dict[str, Any]], Any] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------------
    # Start and stop

    def start(self) -> Endpoint:
        """Listen on 127.0.0.1 at a free port (threaded, one thread per connection)."""
        if self._server is None:
            endpoint = self

            class Handler(_Handler):
                owner = endpoint

            self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self._server.daemon_threads = True
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() returns within one poll
                name="cleanroomsml-endpoint",
            )
            self._thread.daemon = True
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the endpoint is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a process needs so that an unmodified boto3 client talks to this endpoint (fake credentials)."""
        return {
            "AWS_ENDPOINT_URL_CLEANROOMSML": self.url,
            "AWS_ACCESS_KEY_ID": "AKIAREHEARSAL0000000",
            "AWS_SECRET_ACCESS_KEY": "rehearsal-secret-not-a-real-key",
            "AWS_SESSION_TOKEN": "rehearsal-session-token",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, *, parameter_validation: bool = True) -> Any:
        """A botocore ``cleanroomsml`` client bound to this endpoint (no retries: faults show as they are).

        :param parameter_validation: botocore's own client-side checks (required, types, minimums).
            Default: True; False lets a request that only the service would refuse reach the endpoint.
        """
        from botocore.config import Config

        from ..service_model import models_dir

        env = self.environment()
        session = botocore.session.get_session()
        # The library's shipped model, as the handlers use it: an older botocore may not know the service.
        session.get_component("data_loader").search_paths.insert(0, str(models_dir()))
        return session.create_client(
            SERVICE_NAME,
            region_name=self.region,
            endpoint_url=self.url,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1}, parameter_validation=parameter_validation
            ),
        )

    # ----------------------------------------------------------------------------------------------
    # Scripting behaviour

    def throttle(self, operation: str, times: int) -> None:
        """The next ``times`` calls of ``operation`` answer ThrottlingException (429)."""
        with self._lock:
            self._throttle[self._known(operation)] = self._throttle.get(operation, 0) + times

    def server_error(self, operation: str, times: int) -> None:
        """The next ``times`` calls of ``operation`` answer InternalServerException (500)."""
        with self._lock:
            self._server_errors[self._known(operation)] = self._server_errors.get(operation, 0) + times

    def enforce_iam(self, statements: list[dict[str, Any]] | None, caller: Any = None) -> None:
        """Authorize every call as IAM would for a caller with these identity-policy statements (resolved JSON)
        before anything else: a denied request answers AccessDeniedException, naming the action and resource.
        ``caller`` is an ``iam.Caller`` (partition, region, account). None stops enforcing."""
        with self._lock:
            self._iam = None if statements is None else (list(statements), caller)

    def lose_response(self, operation: str, times: int) -> None:
        """The next ``times`` calls of ``operation`` take effect, then answer InternalServerException (500): the
        caller cannot tell whether anything happened."""
        with self._lock:
            self._lost_responses[self._known(operation)] = self._lost_responses.get(operation, 0) + times

    def deny(self, operation: str, message: str | None = None) -> None:
        """Every call of ``operation`` answers AccessDeniedException (403) until ``allow``."""
        action = f"cleanrooms-ml:{operation}"
        text = message or (
            f"User: arn:{self.partition}:sts::{self.account}:assumed-role/rehearsal/handler is not authorized "
            f"to perform: {action} because no identity-based policy allows the {action} action"
        )
        with self._lock:
            self._denied[self._known(operation)] = text

    def allow(self, operation: str) -> None:
        with self._lock:
            self._denied.pop(operation, None)

    def fail_job(self, name: str, message: str, status_code: str = "400") -> None:
        """The job called ``name`` (started now or later) ends CREATE_FAILED with this ``statusDetails``."""
        with self._lock:
            self._failures[name] = (status_code, message)
            for job in self._jobs.values():
                if fnmatch.fnmatchcase(job.name, name) and job.status in CREATING:
                    job.failure = (status_code, message)

    def heal(self, name: str) -> None:
        """Jobs called ``name`` (a name or pattern) started from now on no longer fail: the cause was fixed."""
        with self._lock:
            self._failures.pop(name, None)

    def set_reads(self, name: str, reads: int) -> None:
        """How many reads the job called ``name`` stays unfinished (overrides ``reads_until_active``)."""
        with self._lock:
            self._reads_by_name[name] = reads
            for job in self._jobs.values():
                if fnmatch.fnmatchcase(job.name, name) and job.status in CREATING:
                    job.reads_until_done = reads

    def fail_delete(self, name: str, message: str) -> None:
        """Deleting the job called ``name`` (now or later) ends DELETE_FAILED with this ``statusDetails`` message."""
        with self._lock:
            self._delete_failures[name] = message
            for job in self._jobs.values():
                if fnmatch.fnmatchcase(job.name, name):
                    job.delete_failure = message

    def exceed_quota(self, operation: str, quota_name: str, times: int) -> None:
        """The next ``times`` calls of ``operation`` answer ServiceQuotaExceededException for ``quota_name``."""
        with self._lock:
            self._quota_faults.setdefault(self._known(operation), []).extend([quota_name] * times)

    def block_delete(self, name: str, attempts: int) -> None:
        """The next ``attempts`` deletes of the job called ``name`` answer ConflictException (a dependent
        resource, such as an export job, still exists)."""
        with self._lock:
            self._conflicts_by_name[name] = attempts
            for job in self._jobs.values():
                if fnmatch.fnmatchcase(job.name, name):
                    job.conflicts_left = attempts

    def remove_job(self, arn_or_name: str) -> None:
        """The job disappears at once, as if deleted outside CloudFormation."""
        with self._lock:
            job = self._find(arn_or_name)
            if job is None:
                raise KeyError(arn_or_name)
            del self._jobs[job.arn]

    def add_job(self, name: str, request: dict[str, Any] | None = None, status: str = "ACTIVE") -> str:
        """Put a job in place without a call (someone else's job, say); returns its ARN."""
        with self._lock:
            job = self._new_job({"name": name, **(request or {})})
            job.status = status
            if status == "ACTIVE":
                job.metrics = _metrics(name)
            return job.arn

    # ----------------------------------------------------------------------------------------------
    # Inspecting

    def count(self, operation: str | None = None, *, error: str | None = None) -> int:
        """Calls answered (of ``operation``, or all), optionally only those answered with ``error``."""
        with self._lock:
            return sum(
                1
                for c in self.calls
                if (operation is None or c.operation == operation) and (error is None or c.error == error)
            )

    def jobs(self) -> list[dict[str, Any]]:
        """Every job that exists (any status): arn, name, status, tags."""
        with self._lock:
            return [job.snapshot() for job in self._jobs.values()]

    def job(self, arn_or_name: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._find(arn_or_name)
            return None if job is None else job.snapshot()

    def names(self) -> set[str]:
        with self._lock:
            return {job.name for job in self._jobs.values()}

    def _find(self, arn_or_name: str) -> Job | None:
        if arn_or_name in self._jobs:
            return self._jobs[arn_or_name]
        return next((j for j in self._jobs.values() if j.name == arn_or_name), None)

    def _known(self, operation: str) -> str:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
        return operation

    # ----------------------------------------------------------------------------------------------
    # Serving one request

    def route(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        for route in self._routing:
            if route.method == method:
                match = route.regex.match(path)
                if match:
                    return route.operation, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    def handle(self, operation: str, labels: dict[str, str], query: dict[str, list[str]], body: bytes) -> Any:
        """The output of ``operation`` for this request, or a ServiceError. Records the call."""
        params: dict[str, Any] = {}
        try:
            params = self._decode(operation, labels, query, body)
            with self._lock:
                self._authorize(operation, params)
                self._scripted_fault(operation)
            self._validate(operation, params)
            with self._lock:
                output = getattr(self, "_op_" + operation)(params)
                if self._lost_responses.get(operation, 0) > 0:
                    self._lost_responses[operation] -= 1
                    raise ServiceError("InternalServerException", "An internal error occurred", status=500)
        except ServiceError as error:
            self._record(operation, params, self.status_of(error), error.code)
            raise
        self._record(operation, params, 200, None)
        return output

    def _record(self, operation: str, params: dict[str, Any], status: int, error: str | None) -> None:
        with self._lock:
            self.calls.append(Call(operation, params, status, error, time.time()))

    def status_of(self, error: ServiceError) -> int:
        if error.status is not None:
            return error.status
        try:
            return int(self._model.shape_for(error.code).metadata["error"]["httpStatusCode"])
        except Exception:  # an error shape the model does not name: a client error
            return 400

    def _authorize(self, operation: str, params: dict[str, Any]) -> None:
        if self._iam is None:
            return
        from .iam import evaluate, requests_for_call

        statements, caller = self._iam
        for request in requests_for_call(operation, params, caller):
            if not evaluate(statements, request).allowed:
                raise ServiceError(
                    "AccessDeniedException",
                    f"User: arn:{self.partition}:sts::{self.account}:assumed-role/rehearsal/handler is not "
                    f"authorized to perform: {request.action} on resource: {request.resource} because no "
                    f"identity-based policy allows the {request.action} action",
                )

    def _scripted_fault(self, operation: str) -> None:
        if operation in self._denied:
            raise ServiceError("AccessDeniedException", self._denied[operation])
        if self._throttle.get(operation, 0) > 0:
            self._throttle[operation] -= 1
            raise ServiceError("ThrottlingException", "Rate exceeded")
        if self._server_errors.get(operation, 0) > 0:
            self._server_errors[operation] -= 1
            raise ServiceError("InternalServerException", "An internal error occurred", status=500)
        if self._quota_faults.get(operation):
            raise _quota_error(self._quota_faults[operation].pop(0), 1)

    def _decode(
        self, operation: str, labels: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> dict[str, Any]:
        """The input as the client meant it: body members from JSON, URI and query members by their shapes."""
        shape = self._model.operation_model(operation).input_shape
        params: dict[str, Any] = {}
        if body.strip():
            try:
                loaded = json.loads(body)
            except ValueError:
                raise ServiceError("SerializationException", "the request body is not valid JSON") from None
            if not isinstance(loaded, dict):
                raise ServiceError("SerializationException", "the request body must be a JSON object")
            params.update(loaded)
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri" and wire in labels:
                params[name] = labels[wire]
            elif location == "querystring" and wire in query:
                values = query[wire]
                if member.type_name == "list":
                    params[name] = values
                elif member.type_name in ("integer", "long"):
                    params[name] = int(values[0]) if re.fullmatch(r"-?[0-9]+", values[0]) else values[0]
                else:
                    params[name] = values[0]
            elif location in ("uri", "querystring", "header"):
                params.pop(name, None)  # never taken from the body
        return params

    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        shape = self._model.operation_model(operation).input_shape
        problems = list(self._rules.check(params, shape))
        if operation == "StartAudienceGenerationJob":
            problems += self._rules.documented_rules(JOB_TYPE, params, library=False)
        elif operation == "TagResource" and isinstance(params.get("tags"), dict):
            problems += self._rules.tag_rules(params["tags"], lambda _v: False, library=False)
        if problems:
            details = [
                f"Value {self._rules.shorten(p.value)} at '{p.path}' failed to satisfy constraint: Member {p.rule}"
                for p in problems
            ]
            count = len(details)
            raise ServiceError(
                "ValidationException",
                f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(details),
            )

    # ----------------------------------------------------------------------------------------------
    # The operations (called with the lock held)

    def _new_job(self, request: dict[str, Any]) -> Job:
        name = str(request["name"])
        arn = f"arn:{self.partition}:cleanrooms-ml:{self.region}:{self.account}:audience-generation-job/{uuid.uuid4()}"
        now = time.time()
        job = Job(
            arn=arn,
            name=name,
            request=json.loads(json.dumps(request)),
            created=now,
            updated=now,
            reads_until_done=_by_name(self._reads_by_name, name, self.reads_until_active),
            failure=_by_name(self._failures, name, None),
            tags=dict(request.get("tags") or {}),
            conflicts_left=_by_name(self._conflicts_by_name, name, 0),
            delete_failure=_by_name(self._delete_failures, name, None),
        )
        self._jobs[arn] = job
        return job

    def _op_StartAudienceGenerationJob(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        if any(job.name == name for job in self._jobs.values()):
            raise ServiceError(
                "ConflictException", f"An audience generation job with name {name} already exists in this account"
            )
        busy = sum(1 for job in self._jobs.values() if job.status in CREATING)
        if busy >= self.quota:
            raise _quota_error(PENDING_QUOTA, self.quota)
        return {"audienceGenerationJobArn": self._new_job(params).arn}

    def _job_or_404(self, arn: str) -> Job:
        job = self._jobs.get(arn)
        if job is None:
            raise ServiceError("ResourceNotFoundException", f"Audience generation job {arn} does not exist")
        return job

    def _advance(self, job: Job) -> None:
        """One read of the job: it moves one step along its life."""
        job.reads += 1
        if job.status in CREATING:
            if job.reads > job.reads_until_done:
                job.status = "CREATE_FAILED" if job.failure else "ACTIVE"
                job.metrics = None if job.failure else _metrics(job.name)
                job.updated = time.time()
            elif job.reads > 1:
                job.status = "CREATE_IN_PROGRESS"
        elif job.status in DELETING:
            if job.reads > self.reads_until_deleted and job.delete_failure is not None:
                job.status, job.updated = "DELETE_FAILED", time.time()
            elif job.reads > self.reads_until_deleted:
                del self._jobs[job.arn]
                raise ServiceError("ResourceNotFoundException", f"Audience generation job {job.arn} does not exist")
            elif job.reads > 1:
                job.status = "DELETE_IN_PROGRESS"

    def _describe(self, job: Job) -> dict[str, Any]:
        request = job.request
        seed = dict(request.get("seedAudience") or {})
        if self.echo == "sparse":
            seed = {k: v for k, v in seed.items() if k in ("roleArn", "dataSource")}
        out: dict[str, Any] = {
            "createTime": _iso(job.created),
            "updateTime": _iso(job.updated),
            "audienceGenerationJobArn": job.arn,
            "name": job.name,
            "status": job.status,
            "configuredAudienceModelArn": request.get("configuredAudienceModelArn"),
            "seedAudience": seed,
            "includeSeedInOutput": bool(request.get("includeSeedInOutput", False)),
            "startedBy": self.account,
            "tags": dict(job.tags),
        }
        for key in ("description", "collaborationId"):
            if request.get(key) is not None:
                out[key] = request[key]
        if self.echo == "sparse":
            for key in ("description", "includeSeedInOutput", "tags"):
                out.pop(key, None)
        if job.status == "CREATE_FAILED" and job.failure:
            out["statusDetails"] = {"statusCode": job.failure[0], "message": job.failure[1]}
        if job.status == "DELETE_FAILED" and job.delete_failure:
            out["statusDetails"] = {"message": job.delete_failure}
        if job.metrics is not None:
            out["metrics"] = job.metrics
        return {k: v for k, v in out.items() if v is not None}

    def _op_GetAudienceGenerationJob(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_or_404(params["audienceGenerationJobArn"])
        self._advance(job)
        return self._describe(job)

    def _op_DeleteAudienceGenerationJob(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_or_404(params["audienceGenerationJobArn"])
        if job.conflicts_left > 0:
            job.conflicts_left -= 1
            raise ServiceError(
                "ConflictException",
                f"Audience generation job {job.arn} cannot be deleted: another resource depends on this resource",
            )
        if job.status not in DELETING:
            job.status, job.reads, job.updated = "DELETE_PENDING", 0, time.time()
        return {}

    def _op_ListAudienceGenerationJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        jobs = [
            j
            for j in self._jobs.values()
            if all(
                params.get(key) is None or j.request.get(key) == params[key]
                for key in ("configuredAudienceModelArn", "collaborationId")
            )
        ]
        start = 0
        if params.get("nextToken"):
            try:
                start = int(base64.urlsafe_b64decode(params["nextToken"].encode()).decode())
            except ValueError:
                raise ServiceError("ValidationException", "The nextToken is not valid") from None
        size = int(params.get("maxResults") or self.page_size)
        page = jobs[start : start + size]
        out: dict[str, Any] = {
            "audienceGenerationJobs": [
                {
                    k: v
                    for k, v in {
                        "createTime": _iso(j.created),
                        "updateTime": _iso(j.updated),
                        "audienceGenerationJobArn": j.arn,
                        "name": j.name,
                        "description": j.request.get("description"),
                        "status": j.status,
                        "configuredAudienceModelArn": j.request.get("configuredAudienceModelArn"),
                        "collaborationId": j.request.get("collaborationId"),
                        "startedBy": self.account,
                    }.items()
                    if v is not None
                }
                for j in page
            ]
        }
        if start + size < len(jobs):
            out["nextToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return out

    def _op_TagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_or_404(params["resourceArn"])
        merged = {**job.tags, **params["tags"]}
        if len(merged) > self._rules.MAX_USER_TAGS:
            raise ServiceError("ValidationException", f"A resource can have at most {self._rules.MAX_USER_TAGS} tags")
        job.tags = merged
        return {}

    def _op_UntagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_or_404(params["resourceArn"])
        for key in params["tagKeys"]:
            job.tags.pop(key, None)
        return {}

    def _op_ListTagsForResource(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"tags": dict(self._job_or_404(params["resourceArn"]).tags)}


OPERATIONS = tuple(op for op in operation_names() if hasattr(Endpoint, f"_op_{op}"))


def _by_name(scripted: dict[str, Any], name: str, default: Any) -> Any:
    """What was scripted for a job name: an exact name, or the first matching glob pattern (``Stack-Job-*``)."""
    if name in scripted:
        return scripted[name]
    return next((value for pattern, value in scripted.items() if fnmatch.fnmatchcase(name, pattern)), default)


def _quota_error(quota_name: str, value: int) -> ServiceError:
    return ServiceError(
        "ServiceQuotaExceededException",
        f"You have reached the quota '{quota_name}' ({value})",
        quotaName=quota_name,
        quotaValue=float(value),
    )


class _Handler(BaseHTTPRequestHandler):
    """HTTP glue: route, read, answer (JSON), with the headers a rest-json client reads."""

    owner: Endpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the call log is the record
        return

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without this, Nagle + delayed ACK add ~40 ms per call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        endpoint = self.owner
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        found = endpoint.route(self.command, parts.path)
        if found is None:
            self._answer(404, {"message": f"No operation at {self.command} {parts.path}"}, "UnknownOperationException")
            return
        operation, labels = found
        authorization = self.headers.get("Authorization") or ""
        if "Credential=" not in authorization or "/cleanrooms-ml/aws4_request" not in authorization:
            # The service refuses unsigned requests, and signatures for another signing name.
            self._answer(403, {"message": "Missing or malformed SigV4 signature"}, "IncompleteSignatureException")
            return
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            output = endpoint.handle(operation, labels, query, body)
        except ServiceError as error:
            payload: dict[str, Any] = {"message": error.message, **error.extra}
            self._answer(endpoint.status_of(error), payload, error.code)
            return
        self._answer(200, output, None)

    def _answer(self, status: int, payload: dict[str, Any], error: str | None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve
