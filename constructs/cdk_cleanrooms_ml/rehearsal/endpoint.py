"""A local AWS Clean Rooms ML endpoint for the lookalike flow's operations (a simulation, not AWS).

Usage::

    from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint

    with Endpoint(reads_until_active=2) as endpoint:       # 127.0.0.1, a free port, threaded
        os.environ.update(endpoint.environment())            # AWS_ENDPOINT_URL_CLEANROOMSML and _CLEANROOMS,
                                                             # fake creds, region
        client = boto3.client("cleanroomsml")                # the unmodified client reaches it
        # or: client = endpoint.client()                     # a botocore client bound to it
        #     endpoint.client(service="cleanrooms")          # the same server plays AWS Clean Rooms too
        endpoint.throttle("GetAudienceGenerationJob", 2)     # the next 2 Gets answer 429 ThrottlingException
        endpoint.server_error("StartAudienceGenerationJob", 1)  # the next Start answers 500
        endpoint.lose_response("StartAudienceGenerationJob", 1) # the next Start takes effect, then answers 500
        endpoint.deny("StartAudienceGenerationJob")          # AccessDeniedException (403) until allow()
        endpoint.throttle("TagResource", 1, service="cleanrooms")  # an operation both services have: say which
        endpoint.fail_job("my-job", "seed data not found")   # that job ends CREATE_FAILED with this message
                                                             # (a name, or a glob pattern: "Stack-Job-*")
        endpoint.fail_export("my-export", "no access")       # that export ends CREATE_FAILED
        endpoint.set_export_reads("my-export", 5)            # 5 listings see it unfinished
        endpoint.fail_delete("my-job", "in use")             # deleting that job ends DELETE_FAILED
        endpoint.block_delete("my-job", 3)                   # 3 deletes of that job (or configured audience
                                                             # model) answer ConflictException (409)
        endpoint.exceed_quota("StartAudienceGenerationJob", "Audience generation jobs per account", 1)
        endpoint.remove_job(arn)                             # the job vanishes (deleted out of band)
        endpoint.fail_training("my-model", "not enough data") # that audience model ends CREATE_FAILED
        endpoint.set_training_reads("my-model", 5)           # 5 reads of that audience model see it training
        endpoint.add_audience_model("trained", status="ACTIVE")  # an audience model put in place, no call
        partner.share_models_of(owner)                       # two accounts: jobs started at ``partner`` may use
                                                             # ``owner``'s configured models, as their resource
                                                             # policies allow (``cross_account``)
        Endpoint(echo="sparse")                              # reads leave out optional members (tags too)
        endpoint.calls, endpoint.count("StartAudienceGenerationJob"), endpoint.count(service="cleanrooms")
        endpoint.jobs(), endpoint.exports(), endpoint.configured_models(), endpoint.associations(),
        endpoint.audience_models()
        endpoint.inventory()                                 # everything that exists, by kind

``Endpoint(...).start()`` / ``.stop()`` work too; ``endpoint.url`` is ``http://127.0.0.1:<port>``.

What it does:

* Serves two services on one server: ``cleanroomsml`` (signing name ``cleanrooms-ml``) and ``cleanrooms``
  (the model associations), each request routed by the service its SigV4 credential scope names
  (``.../cleanrooms-ml/aws4_request``); a request without one, or for another service, answers 403.
* Speaks rest-json as the shipped models (``lambda/models/``, the handler's) describe it: every operation
  is routed by the model's HTTP method and request URI; URI labels, query strings and JSON bodies are
  read per member location; success answers the model's response code (204 has no body); errors carry the
  status code of the model's error shape, the ``x-amzn-ErrorType`` header and a ``{"message": ...}`` body;
  timestamps are formatted as the model says (ISO 8601 for cleanroomsml, epoch seconds for cleanrooms).
* Validates every request against the model (required members, types, lengths, ranges, enums, full-match
  patterns, map and list sizes) with the same rules the handler uses (``lambda/model_rules.py``), plus the
  service's documented tag rules (at most 50, no ``aws:`` keys), and answers ``ValidationException`` (400)
  listing each broken rule (cleanrooms' also carries ``reason`` and ``fieldList``). One rule of the models is
  waived: cleanrooms' tagging operations take a ``resourceArn`` of up to 256 characters, not the model's 100,
  or no association ARN could be tagged (see ``_TAGGING_OPERATIONS``).
* Keeps state, one account in one region (``resource_kit.AccountState``), one module per resource family,
  each module's docstring stating its rules: audience generation jobs (``generation_jobs``), audience
  export jobs (``export_jobs``), configured audience models and their policies (``configured_models``),
  configured audience model associations (``model_associations``), audience models (``audience_models``).
  Tags are kept per ARN, for any ARN a service holds (jobs, audience models and configured models:
  cleanroomsml's TagResource...; associations: cleanrooms').
* Echoes as the service does, not as the request was: a read fills in the service's defaults for members
  the request left out (``includeSeedInOutput: false``), and ``echo="sparse"`` leaves out optional members
  (descriptions, includeSeedInOutput, the SQL parameters and compute, tags...) so nothing may rely on a
  perfect echo.

Defaults: account 111122223333, region us-east-1, partition aws, 2 reads until ACTIVE (jobs, exports and
audience models), 1 read until gone, quotas as the service's (10 jobs, 20 exports and 2 audience models
pending or in progress, 25 active exports per job, 5 associations per membership), list pages of 10.
Scripted faults are checked before validation, as the service checks authorization and throttling before it
reads a request.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session

from ..service_model import SERVICE_NAME, model_rules, operation_names, service_model
from .audience_models import AudienceModel, AudienceModels
from .configured_models import ConfiguredModel, ConfiguredModels
from .export_jobs import ExportJobs, offered_sizes
from .generation_jobs import GenerationJobs, Job, job_metrics
from .model_associations import Association, ModelAssociations
from .resource_kit import (
    AccountState,
    ServiceError,
    Tagging,
    by_name,
    quota_error,
)

__all__ = [
    "ACCOUNT",
    "OPERATIONS",
    "REGION",
    "SERVICES",
    "SERVICE_OPERATIONS",
    "Call",
    "Endpoint",
    "Job",
    "ServiceError",
]

ACCOUNT = "111122223333"
REGION = "us-east-1"

JOB_TYPE = "Custom::CleanRoomsMlAudienceGenerationJob"
#: The services this endpoint plays (botocore names), in the order an ambiguous operation name is looked up.
SERVICES = ("cleanroomsml", "cleanrooms")
#: The operations it serves: those of the shipped models (the handler's), per service.
SERVICE_OPERATIONS = {service: tuple(operation_names(service)) for service in SERVICES}
#: Clean Rooms ML's operations.
OPERATIONS = SERVICE_OPERATIONS[SERVICE_NAME]

#: The cleanrooms model caps the tagging operations' ``resourceArn`` at 100 characters, yet an association ARN
#: (membership id and association id, both UUIDs) is about 170: taken as a model error, not a service rule,
#: because AWS's own CloudFormation handlers (aws-cloudformation-resource-providers-cleanrooms,
#: ConfiguredTableAssociation's UpdateHandler) tag association ARNs of that length with TagResource.
_TAGGING_OPERATIONS = ("TagResource", "UntagResource", "ListTagsForResource")
#: The longest association ARN the model allows (ConfiguredAudienceModelAssociationArn's maximum).
_LONGEST_CLEANROOMS_ARN = 256

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^,\s]*/([^/,\s]+)/aws4_request")


@dataclass
class Call:
    """One request the endpoint answered: the operation, its decoded input, the HTTP status and error code,
    and the service it was for (``cleanroomsml`` or ``cleanrooms``)."""

    operation: str
    params: dict[str, Any]
    status: int
    error: str | None = None
    at: float = 0.0
    service: str = SERVICE_NAME


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    regex: re.Pattern[str]
    query: dict[str, str]


def _routes(model: Any, operations: tuple[str, ...]) -> list[_Route]:
    """Routes from the model's ``http`` traits: ``/x/{label}`` becomes a regex; ``{label+}`` is greedy."""
    routes = []
    for name in operations:
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


Operation = Callable[[dict[str, Any]], dict[str, Any]]


def _longer_arn_accepted(problem: Any) -> bool:
    """A tagging ``resourceArn`` over the model's 100 characters but within an association ARN's length."""
    return (
        problem.path == "resourceArn"
        and str(problem.rule).endswith("characters long")
        and isinstance(problem.value, str)
        and len(problem.value) <= _LONGEST_CLEANROOMS_ARN
    )


class Endpoint:
    """A local, threaded HTTP server that plays AWS Clean Rooms ML and AWS Clean Rooms (see the module docstring)."""

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
        export_reads_until_active: int | None = None,
        export_quota: int = 20,
        active_exports_per_job: int = 25,
        associations_per_membership: int = 5,
        audience_model_quota: int = 2,
        training_reads_until_active: int | None = None,
        delete_while_training: str = "accept",
        untrained_configuration: str = "ConflictException",
        training_seconds: float | None = None,
    ) -> None:
        """
        :param reads_until_active: GetAudienceGenerationJob reads that see a new job unfinished (the first
            CREATE_PENDING, the others CREATE_IN_PROGRESS); the next read sees ACTIVE. Default: 2.
        :param reads_until_deleted: reads that see a deleted job DELETE_PENDING / DELETE_IN_PROGRESS before
            it is gone. Default: 1.
        :param quota: jobs that may be pending or in progress at once. Default: 10 (the service's quota).
        :param page_size: List page size when maxResults is not given (every List operation). Default: 10.
        :param echo: "full" (default): reads carry every member the resource has, the service's defaults
            filled in; "sparse": reads leave out the optional members (descriptions, includeSeedInOutput, the
            SQL parameters and compute configuration, tags...), as a service may.
        :param export_reads_until_active: ListAudienceExportJobs answers that see a new export unfinished.
            Default: ``reads_until_active``.
        :param export_quota: exports that may be pending or in progress at once. Default: 20 (the service's).
        :param active_exports_per_job: exports (active or on their way) per generation job. Default: 25.
        :param associations_per_membership: configured audience model associations per membership. Default: 5.
        :param audience_model_quota: audience models that may be pending or in progress (training) at once.
            Default: 2 (the service's).
        :param training_reads_until_active: GetAudienceModel reads that see a new audience model training.
            Default: ``reads_until_active``.
        :param delete_while_training: what deleting an audience model that is still training answers: "accept"
            (default) or an error code ("ConflictException"). No source says; an assumption.
        :param training_seconds: how long a new audience model trains, in the endpoint's time (``clock``; a
            rehearsal sets its simulated one), e.g. ``6 * 3600`` (the service documents hours to days). Default:
            None: training goes by reads (``training_reads_until_active``).
        :param untrained_configuration: what configuring an audience model of this endpoint that is not ACTIVE
            answers: "ConflictException" (default), "ValidationException" or "accept". No source says; an
            assumption.
        """
        if echo not in ("full", "sparse"):
            raise ValueError("echo must be 'full' or 'sparse'")
        self.echo = echo
        self.account, self.region, self.partition = account, region, partition
        self.page_size = page_size
        self.calls: list[Call] = []
        self._state = AccountState(account, region, partition, echo=echo, page_size=page_size)
        self._jobs = self._state.jobs
        self._lock = threading.RLock()
        self._throttle: dict[tuple[str, str], int] = {}
        self._server_errors: dict[tuple[str, str], int] = {}
        self._lost_responses: dict[tuple[str, str], int] = {}
        self._denied: dict[tuple[str, str], str] = {}
        self._conflicts_by_name: dict[str, int] = {}  # block_delete's, for jobs and configured models
        self._quota_faults: dict[tuple[str, str], list[str]] = {}
        self._rules = model_rules()
        self._models = {service: service_model(service) for service in SERVICES}
        self._routing = {service: _routes(self._models[service], SERVICE_OPERATIONS[service]) for service in SERVICES}
        self._signing_names = {str(self._models[s].metadata["signingName"]): s for s in SERVICES}
        self._exports = ExportJobs(
            self._state,
            reads_until_active=reads_until_active if export_reads_until_active is None else export_reads_until_active,
            quota=export_quota,
            active_per_job=active_exports_per_job,
        )
        self._audience_models = AudienceModels(
            self._state,
            self._conflicts_by_name,
            reads_until_active=reads_until_active
            if training_reads_until_active is None
            else training_reads_until_active,
            reads_until_deleted=reads_until_deleted,
            quota=audience_model_quota,
            delete_while_training=delete_while_training,
            untrained_configuration=untrained_configuration,
            training_seconds=training_seconds,
        )
        self._configured_models = ConfiguredModels(
            self._state, self._conflicts_by_name, self._audience_models.check_configurable
        )
        self._generation_jobs = GenerationJobs(
            self._state,
            self._exports,
            self._configured_models,
            self._conflicts_by_name,
            reads_until_active=reads_until_active,
            reads_until_deleted=reads_until_deleted,
            quota=quota,
        )
        self._associations = ModelAssociations(
            self._state, per_membership=associations_per_membership, max_tags=self._rules.MAX_TAGS
        )
        self._served = self._operation_table()
        self._iam: tuple[list[dict[str, Any]], Any] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Settings of the generation jobs that tests change on a running endpoint.

    @property
    def quota(self) -> int:
        """Jobs that may be pending or in progress at once."""
        return self._generation_jobs.quota

    @quota.setter
    def quota(self, value: int) -> None:
        self._generation_jobs.quota = value

    @property
    def reads_until_active(self) -> int:
        return self._generation_jobs.reads_until_active

    @reads_until_active.setter
    def reads_until_active(self, value: int) -> None:
        self._generation_jobs.reads_until_active = value

    @property
    def reads_until_deleted(self) -> int:
        return self._generation_jobs.reads_until_deleted

    @reads_until_deleted.setter
    def reads_until_deleted(self, value: int) -> None:
        self._generation_jobs.reads_until_deleted = value

    @property
    def audience_model_quota(self) -> int:
        """Audience models that may be pending or in progress at once."""
        return self._audience_models.quota

    @audience_model_quota.setter
    def audience_model_quota(self, value: int) -> None:
        self._audience_models.quota = value

    def _operation_table(self) -> dict[str, dict[str, Operation]]:
        """Every operation of each shipped model, with what answers it; one the endpoint cannot answer fails here."""
        table = {
            "cleanroomsml": {
                **self._generation_jobs.operations(),
                **self._exports.operations(),
                **self._configured_models.operations(),
                **self._audience_models.operations(),
                **Tagging(self._taggable, self._rules.MAX_TAGS).operations(),
            },
            "cleanrooms": self._associations.operations(),
        }
        for service in SERVICES:
            missing = set(SERVICE_OPERATIONS[service]) - set(table[service])
            if missing:
                raise NotImplementedError(
                    f"the shipped {service} model has operations the endpoint does not serve: {sorted(missing)}"
                )
        return table

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
        """What a process needs so that unmodified boto3 clients of both services talk to this endpoint
        (fake credentials)."""
        return {
            "AWS_ENDPOINT_URL_CLEANROOMSML": self.url,
            "AWS_ENDPOINT_URL_CLEANROOMS": self.url,
            "AWS_ACCESS_KEY_ID": "AKIAREHEARSAL0000000",
            "AWS_SECRET_ACCESS_KEY": "rehearsal-secret-not-a-real-key",
            "AWS_SESSION_TOKEN": "rehearsal-session-token",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, *, service: str = SERVICE_NAME, parameter_validation: bool = True) -> Any:
        """A botocore client of ``service`` (``cleanroomsml``, the default, or ``cleanrooms``) bound to this
        endpoint (no retries: faults show as they are).

        :param parameter_validation: botocore's own client-side checks (required, types, minimums).
            Default: True; False lets a request that only the service would refuse reach the endpoint.
        """
        from botocore.config import Config

        from ..service_model import models_dir

        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
        env = self.environment()
        session = botocore.session.get_session()
        # The library's shipped models, as the handlers use them: an older botocore may not know the service.
        session.get_component("data_loader").search_paths.insert(0, str(models_dir()))
        return session.create_client(
            service,
            region_name=self.region,
            endpoint_url=self.url,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1}, parameter_validation=parameter_validation
            ),
        )

    # ----------------------------------------------------------------------------------------------
    # Scripting behaviour. An operation name both services have (TagResource...) means cleanroomsml's
    # unless ``service`` says otherwise.

    def throttle(self, operation: str, times: int, *, service: str | None = None) -> None:
        """The next ``times`` calls of ``operation`` answer ThrottlingException (429)."""
        with self._lock:
            key = self._key(operation, service)
            self._throttle[key] = self._throttle.get(key, 0) + times

    def server_error(self, operation: str, times: int, *, service: str | None = None) -> None:
        """The next ``times`` calls of ``operation`` answer InternalServerException (500)."""
        with self._lock:
            key = self._key(operation, service)
            self._server_errors[key] = self._server_errors.get(key, 0) + times

    def enforce_iam(self, statements: list[dict[str, Any]] | None, caller: Any = None) -> None:
        """Authorize every call as IAM would for a caller with these identity-policy statements (resolved JSON)
        before anything else: a denied request answers AccessDeniedException, naming the action and resource.
        ``caller`` is an ``iam.Caller`` (partition, region, account). None stops enforcing."""
        with self._lock:
            self._iam = None if statements is None else (list(statements), caller)

    def lose_response(self, operation: str, times: int, *, service: str | None = None) -> None:
        """The next ``times`` calls of ``operation`` take effect, then answer InternalServerException (500): the
        caller cannot tell whether anything happened."""
        with self._lock:
            key = self._key(operation, service)
            self._lost_responses[key] = self._lost_responses.get(key, 0) + times

    def deny(self, operation: str, message: str | None = None, *, service: str | None = None) -> None:
        """Every call of ``operation`` answers AccessDeniedException (403) until ``allow``."""
        key = self._key(operation, service)
        action = f"{self._iam_prefix(key[0])}:{operation}"
        text = message or (
            f"User: arn:{self.partition}:sts::{self.account}:assumed-role/rehearsal/handler is not authorized "
            f"to perform: {action} because no identity-based policy allows the {action} action"
        )
        with self._lock:
            self._denied[key] = text

    def allow(self, operation: str, *, service: str | None = None) -> None:
        with self._lock:
            self._denied.pop(self._key(operation, service), None)

    def fail_job(self, name: str, message: str, status_code: str = "400") -> None:
        """The job called ``name`` (started now or later) ends CREATE_FAILED with this ``statusDetails``."""
        with self._lock:
            self._generation_jobs.fail(name, message, status_code)

    def heal(self, name: str) -> None:
        """Jobs called ``name`` (a name or pattern) started from now on no longer fail: the cause was fixed."""
        with self._lock:
            self._generation_jobs.failures.pop(name, None)

    def set_reads(self, name: str, reads: int) -> None:
        """How many reads the job called ``name`` stays unfinished (overrides ``reads_until_active``)."""
        with self._lock:
            self._generation_jobs.set_reads(name, reads)

    def fail_export(self, name: str, message: str, status_code: str = "400") -> None:
        """The export called ``name`` (a name or glob pattern; started now or later, of any job) ends
        CREATE_FAILED with this ``statusDetails``."""
        with self._lock:
            self._exports.fail(name, message, status_code)

    def set_export_reads(self, name: str, reads: int) -> None:
        """How many ListAudienceExportJobs answers see the export called ``name`` unfinished."""
        with self._lock:
            self._exports.set_reads(name, reads)

    def fail_delete(self, name: str, message: str) -> None:
        """Deleting the job called ``name`` (now or later) ends DELETE_FAILED with this ``statusDetails`` message."""
        with self._lock:
            self._generation_jobs.fail_delete(name, message)

    def exceed_quota(self, operation: str, quota_name: str, times: int, *, service: str | None = None) -> None:
        """The next ``times`` calls of ``operation`` answer ServiceQuotaExceededException for ``quota_name``."""
        with self._lock:
            self._quota_faults.setdefault(self._key(operation, service), []).extend([quota_name] * times)

    def block_delete(self, name: str, attempts: int) -> None:
        """The next ``attempts`` deletes of the job, audience model or configured audience model called ``name`` (a
        name or pattern; now or later) answer ConflictException (a dependent resource, such as an export job,
        exists)."""
        with self._lock:
            self._conflicts_by_name[name] = attempts
            for job in self._generation_jobs.matching(name):
                job.conflicts_left = attempts
            for audience_model in self._audience_models.matching(name):
                audience_model.conflicts_left = attempts
            for model in self._state.models.values():
                if by_name({name: True}, model.name, False):
                    model.conflicts_left = attempts

    def remove_job(self, arn_or_name: str) -> None:
        """The job disappears at once, as if deleted outside CloudFormation (its exports with it)."""
        with self._lock:
            job = self._find(arn_or_name)
            if job is None:
                raise KeyError(arn_or_name)
            self._generation_jobs.forget(job)

    def add_job(self, name: str, request: dict[str, Any] | None = None, status: str = "ACTIVE") -> str:
        """Put a job in place without a call (someone else's job, say); returns its ARN."""
        with self._lock:
            job = self._generation_jobs.add({"name": name, **(request or {})})
            job.status = status
            if status == "ACTIVE":
                job.metrics = job_metrics(name, offered_sizes(job.model_settings))
            return job.arn

    def add_configured_model(self, name: str, request: dict[str, Any] | None = None) -> str:
        """Put a configured audience model in place without a call (unvalidated); returns its ARN."""
        with self._lock:
            return self._configured_models.add({"name": name, **(request or {})}).arn

    def remove_configured_model(self, arn_or_name: str) -> None:
        """The configured audience model (and its policy) disappears at once, as if deleted out of band."""
        with self._lock:
            model = self._find_in(self._state.models, arn_or_name)
            if model is None:
                raise KeyError(arn_or_name)
            del self._state.models[model.arn]

    def add_audience_model(
        self, name: str, request: dict[str, Any] | None = None, status: str = "ACTIVE", arn: str | None = None
    ) -> str:
        """Put an audience model in place without a call (unvalidated, outside the quota); returns its ARN (``arn``,
        when given: a model a template names). One put in place training (``status="CREATE_IN_PROGRESS"``) finishes
        as reads of it go by."""
        with self._lock:
            training_dataset = self._state.arn("cleanrooms-ml", f"training-dataset/{name}-data")
            model = self._audience_models.add(
                {"name": name, "trainingDatasetArn": training_dataset, **(request or {})}, arn
            )
            model.status = status
            return model.arn

    def assume_trained_audience_model(self, arn: str) -> bool:
        """An audience model a template names by its ARN (made outside the stack) is put in place ACTIVE, unless
        this endpoint holds it already: an assumption of the rehearsal, which cannot see the account. True when
        it was put in place now."""
        with self._lock:
            if arn in self._state.audience_models:
                return False
            self.add_audience_model(arn.rsplit("/", 1)[-1], arn=arn)
            return True

    def share_models_of(self, owner: Endpoint) -> None:
        """Jobs started here may use the configured audience models of ``owner``, the endpoint of another account,
        as their resource policies allow (``cross_account``: the start is refused when the model is missing there
        or its policy does not name this account)."""
        if owner.account == self.account:
            raise ValueError(f"{owner.url} holds this endpoint's own account {self.account}: nothing to share")

        def lookup(arn: str) -> ConfiguredModel | None:
            with owner._lock:
                found: ConfiguredModel | None = owner._state.models.get(arn)
                return found

        with self._lock:
            self._generation_jobs.owners.add(owner.account, lookup)

    def remove_audience_model(self, arn_or_name: str) -> None:
        """The audience model disappears at once, as if deleted out of band."""
        with self._lock:
            model = self._find_in(self._state.audience_models, arn_or_name)
            if model is None:
                raise KeyError(arn_or_name)
            del self._state.audience_models[model.arn]

    @property
    def clock(self) -> Callable[[], float]:
        """The simulated service's wall clock (epoch seconds): ``time.time`` unless a rehearsal gave its own."""
        return self._state.now

    @clock.setter
    def clock(self, now: Callable[[], float]) -> None:
        self._state.now = now

    @property
    def training_seconds(self) -> float | None:
        """How long audience models train in the endpoint's time (None: by reads)."""
        return self._audience_models.training_seconds

    @training_seconds.setter
    def training_seconds(self, value: float | None) -> None:
        self._audience_models.training_seconds = value

    def add_training_dataset(self, arn: str, status: str = "ACTIVE") -> None:
        """A training dataset CreateAudienceModel checks (a rehearsal registers the stack's)."""
        with self._lock:
            self._state.training_datasets[arn] = status
            self._state.removed_training_datasets.discard(arn)

    def remove_training_dataset(self, arn: str) -> None:
        """The training dataset is gone: CreateAudienceModel naming it is ResourceNotFoundException."""
        with self._lock:
            if self._state.training_datasets.pop(arn, None) is not None:
                self._state.removed_training_datasets.add(arn)

    def fail_training(self, name: str, message: str, status_code: str = "400") -> None:
        """The audience model called ``name`` (a name or glob pattern; created now or later) ends CREATE_FAILED
        with this ``statusDetails``."""
        with self._lock:
            self._audience_models.fail(name, message, status_code)

    def set_training_reads(self, name: str, reads: int) -> None:
        """How many GetAudienceModel reads the audience model called ``name`` stays training (overrides
        ``training_reads_until_active``)."""
        with self._lock:
            self._audience_models.set_reads(name, reads)

    def add_membership(self, membership_id: str, collaboration_id: str) -> None:
        """The collaboration the membership ``membership_id`` belongs to (otherwise one is made up from its id)."""
        with self._lock:
            self._associations.collaborations[membership_id] = collaboration_id

    def remove_association(self, arn_id_or_name: str) -> None:
        """The association disappears at once, as if deleted out of band."""
        with self._lock:
            association = self._find_association(arn_id_or_name)
            if association is None:
                raise KeyError(arn_id_or_name)
            del self._state.associations[association.arn]

    # ----------------------------------------------------------------------------------------------
    # Inspecting

    def count(self, operation: str | None = None, *, error: str | None = None, service: str | None = None) -> int:
        """Calls answered (of ``operation``, or all; of ``service``, or both), optionally only those answered
        with ``error``."""
        with self._lock:
            return sum(
                1
                for c in self.calls
                if (operation is None or c.operation == operation)
                and (error is None or c.error == error)
                and (service is None or c.service == service)
            )

    def jobs(self) -> list[dict[str, Any]]:
        """Every job that exists (any status): arn, name, status, tags, configuredAudienceModelArn."""
        with self._lock:
            return [job.snapshot() for job in self._jobs.values()]

    def job(self, arn_or_name: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._find(arn_or_name)
            return None if job is None else job.snapshot()

    def names(self) -> set[str]:
        with self._lock:
            return {job.name for job in self._jobs.values()}

    def exports(self, job_arn: str | None = None) -> list[dict[str, Any]]:
        """Every export (of the generation job ``job_arn``, or all): audienceGenerationJobArn, name, status,
        audienceSize, outputLocation (None until ACTIVE)."""
        with self._lock:
            return [e.snapshot() for e in self._state.exports if job_arn is None or e.job_arn == job_arn]

    def configured_models(self) -> list[dict[str, Any]]:
        """Every configured audience model: arn, name, status, tags, policy and policyHash (None without one)."""
        with self._lock:
            return [model.snapshot() for model in self._state.models.values()]

    def configured_model(self, arn_or_name: str) -> dict[str, Any] | None:
        with self._lock:
            model = self._find_in(self._state.models, arn_or_name)
            return None if model is None else model.snapshot()

    def audience_models(self) -> list[dict[str, Any]]:
        """Every audience model that exists (any status): arn, name, status, tags, trainingDatasetArn."""
        with self._lock:
            return [model.snapshot() for model in self._state.audience_models.values()]

    def audience_model(self, arn_or_name: str) -> dict[str, Any] | None:
        with self._lock:
            model = self._find_in(self._state.audience_models, arn_or_name)
            return None if model is None else model.snapshot()

    def associations(self, membership_id: str | None = None) -> list[dict[str, Any]]:
        """Every configured audience model association (of ``membership_id``, or all): arn, id, name,
        membershipId, configuredAudienceModelArn, manageResourcePolicies, tags."""
        with self._lock:
            return [
                a.snapshot()
                for a in self._state.associations.values()
                if membership_id is None or a.membership_id == membership_id
            ]

    def association(self, arn_id_or_name: str) -> dict[str, Any] | None:
        with self._lock:
            association = self._find_association(arn_id_or_name)
            return None if association is None else association.snapshot()

    def inventory(self) -> dict[str, list[dict[str, Any]]]:
        """Everything that exists, by kind: what a test compares with what the stack owns."""
        with self._lock:
            return {
                "jobs": self.jobs(),
                "exports": self.exports(),
                "configured_models": self.configured_models(),
                "associations": self.associations(),
                "audience_models": self.audience_models(),
            }

    def _find(self, arn_or_name: str) -> Job | None:
        job: Job | None = self._find_in(self._jobs, arn_or_name)
        return job

    @staticmethod
    def _find_in(resources: dict[str, Any], arn_or_name: str) -> Any:
        if arn_or_name in resources:
            return resources[arn_or_name]
        return next((r for r in resources.values() if r.name == arn_or_name), None)

    def _find_association(self, arn_id_or_name: str) -> Association | None:
        found: Association | None = self._find_in(self._state.associations, arn_id_or_name)
        return found or next((a for a in self._state.associations.values() if a.id == arn_id_or_name), None)

    def _key(self, operation: str, service: str | None) -> tuple[str, str]:
        """(service, operation) for a scripted fault: the first service that has ``operation`` unless named."""
        if service is None:
            service = next((s for s in SERVICES if operation in SERVICE_OPERATIONS[s]), SERVICE_NAME)
        if operation not in SERVICE_OPERATIONS.get(service, ()):
            known = ", ".join(SERVICE_OPERATIONS.get(service, ()))
            raise ValueError(f"unknown operation {operation!r} of {service!r}; one of {known}")
        return service, operation

    def _iam_prefix(self, service: str) -> str:
        return str(self._models[service].metadata["signingName"])

    # ----------------------------------------------------------------------------------------------
    # Serving one request

    def service_for_signature(self, authorization: str) -> str | None:
        """The service a SigV4 ``Authorization`` header is for (its credential scope's signing name), or None."""
        scope = _CREDENTIAL_SCOPE.search(authorization)
        return None if scope is None else self._signing_names.get(scope[1])

    def route(self, method: str, path: str, service: str = SERVICE_NAME) -> tuple[str, dict[str, str]] | None:
        for route in self._routing[service]:
            if route.method == method:
                match = route.regex.match(path)
                if match:
                    return route.operation, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    def success_status(self, operation: str, service: str = SERVICE_NAME) -> int:
        """The status code of a successful answer (the model's ``responseCode``: 200, or 204 for some deletes)."""
        return int(self._models[service].operation_model(operation).http.get("responseCode", 200))

    def handle(
        self,
        operation: str,
        labels: dict[str, str],
        query: dict[str, list[str]],
        body: bytes,
        service: str = SERVICE_NAME,
    ) -> Any:
        """The output of ``operation`` for this request, or a ServiceError. Records the call."""
        params: dict[str, Any] = {}
        key = (service, operation)
        try:
            params = self._decode(service, operation, labels, query, body)
            with self._lock:
                self._authorize(service, operation, params)
                self._scripted_fault(key)
            self._validate(service, operation, params)
            with self._lock:
                output = self._served[service][operation](params)
                if self._lost_responses.get(key, 0) > 0:
                    self._lost_responses[key] -= 1
                    raise ServiceError("InternalServerException", "An internal error occurred", status=500)
        except ServiceError as error:
            self._record(service, operation, params, self.status_of(error, service), error.code)
            raise
        self._record(service, operation, params, self.success_status(operation, service), None)
        return output

    def _record(self, service: str, operation: str, params: dict[str, Any], status: int, error: str | None) -> None:
        with self._lock:
            self.calls.append(Call(operation, params, status, error, time.time(), service))

    def status_of(self, error: ServiceError, service: str = SERVICE_NAME) -> int:
        if error.status is not None:
            return error.status
        try:
            return int(self._models[service].shape_for(error.code).metadata["error"]["httpStatusCode"])
        except Exception:  # an error shape the model does not name: a client error
            return 400

    def _authorize(self, service: str, operation: str, params: dict[str, Any]) -> None:
        if self._iam is None:
            return
        from .iam import evaluate, requests_for_call

        statements, caller = self._iam
        for request in requests_for_call(operation, params, caller, service=service):
            if not evaluate(statements, request).allowed:
                raise ServiceError(
                    "AccessDeniedException",
                    f"User: arn:{self.partition}:sts::{self.account}:assumed-role/rehearsal/handler is not "
                    f"authorized to perform: {request.action} on resource: {request.resource} because no "
                    f"identity-based policy allows the {request.action} action",
                )

    def _scripted_fault(self, key: tuple[str, str]) -> None:
        if key in self._denied:
            raise ServiceError("AccessDeniedException", self._denied[key])
        if self._throttle.get(key, 0) > 0:
            self._throttle[key] -= 1
            raise ServiceError("ThrottlingException", "Rate exceeded")
        if self._server_errors.get(key, 0) > 0:
            self._server_errors[key] -= 1
            raise ServiceError("InternalServerException", "An internal error occurred", status=500)
        if self._quota_faults.get(key):
            raise quota_error(self._quota_faults[key].pop(0), 1)

    def _decode(
        self, service: str, operation: str, labels: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> dict[str, Any]:
        """The input as the client meant it: body members from JSON, URI and query members by their shapes."""
        shape = self._models[service].operation_model(operation).input_shape
        params: dict[str, Any] = {}
        if body.strip():
            try:
                loaded = json.loads(body)
            except ValueError:
                raise ServiceError("SerializationException", "the request body is not valid JSON") from None
            if not isinstance(loaded, dict):
                raise ServiceError("SerializationException", "the request body must be a JSON object")
            params.update(loaded)
        if shape is None:
            return params
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

    def _validate(self, service: str, operation: str, params: dict[str, Any]) -> None:
        shape = self._models[service].operation_model(operation).input_shape
        problems = list(self._rules.check(params, shape)) if shape is not None else []
        if service == "cleanrooms" and operation in _TAGGING_OPERATIONS:
            problems = [p for p in problems if not _longer_arn_accepted(p)]
        if service == SERVICE_NAME and operation == "StartAudienceGenerationJob":
            problems += self._rules.documented_rules(JOB_TYPE, params, library=False)
        elif isinstance(params.get("tags"), dict):  # TagResource and the creates that take tags, both services
            problems += self._rules.tag_rules(params["tags"], lambda _v: False, library=False)
        if problems:
            details = [
                f"Value {self._rules.shorten(p.value)} at '{p.path}' failed to satisfy constraint: Member {p.rule}"
                for p in problems
            ]
            count = len(details)
            extra: dict[str, Any] = {}
            if service == "cleanrooms":  # its ValidationException says why, field by field
                extra = {
                    "reason": "FIELD_VALIDATION_FAILED",
                    "fieldList": [{"name": p.path, "message": f"Member {p.rule}"} for p in problems],
                }
            raise ServiceError(
                "ValidationException",
                f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(details),
                **extra,
            )

    # ----------------------------------------------------------------------------------------------
    # The generation jobs and Clean Rooms ML's tags (called with the lock held); the other families are in
    # export_jobs, configured_models and model_associations.

    def _taggable(self, arn: str) -> Job | ConfiguredModel | AudienceModel:
        """Any resource of this service with tags: a generation job, an audience model or a configured one."""
        found = self._jobs.get(arn) or self._state.models.get(arn) or self._state.audience_models.get(arn)
        if found is None:
            raise ServiceError("ResourceNotFoundException", f"Resource {arn} does not exist")
        return found


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
        service = endpoint.service_for_signature(self.headers.get("Authorization") or "")
        if service is None:
            # The service refuses unsigned requests, and signatures for another signing name.
            self._answer(403, {"message": "Missing or malformed SigV4 signature"}, "IncompleteSignatureException")
            return
        found = endpoint.route(self.command, parts.path, service)
        if found is None:
            self._answer(404, {"message": f"No operation at {self.command} {parts.path}"}, "UnknownOperationException")
            return
        operation, labels = found
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            output = endpoint.handle(operation, labels, query, body, service=service)
        except ServiceError as error:
            payload: dict[str, Any] = {"message": error.message, **error.extra}
            self._answer(endpoint.status_of(error, service), payload, error.code)
            return
        self._answer(endpoint.success_status(operation, service), output, None)

    def _answer(self, status: int, payload: dict[str, Any], error: str | None) -> None:
        data = b"" if status == 204 else json.dumps(payload).encode()  # 204: no content, not even "{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve
