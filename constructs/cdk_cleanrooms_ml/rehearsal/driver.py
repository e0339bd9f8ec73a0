"""Rehearse a stack's deploy: CloudFormation and the CDK Provider framework, played locally against an Endpoint.

Usage::

    from cdk_cleanrooms_ml.rehearsal.driver import Rehearsal
    from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint

    with Endpoint() as endpoint, Rehearsal("cdk.out", "CleanRoomsMlExample", endpoint=endpoint) as stack:
        outcome = stack.create()               # CREATE_COMPLETE, or ROLLBACK_COMPLETE after a failure
        outcome.result("LookalikeAD25D8A9").data["AudienceGenerationJobArn"]
        stack.update(change=lambda logical_id, props: {**props, "tags": {"team": "growth"}})
        stack.delete()                         # DELETE_COMPLETE
        stack.owned_jobs()                     # the job ARNs the stack's resources point at

What it plays:

* The template and asset manifest come from the cloud assembly. Each Lambda function behind a Provider
  runs from its asset directory with the template's Handler and Environment (``/var/task`` mapped to the
  asset directory), in its own warm worker process, with fake credentials, the stack's region and
  ``AWS_ENDPOINT_URL_CLEANROOMSML`` pointing at the endpoint.
* Intrinsics resolve against a fake account (111122223333, the stack's region or us-east-1, partition aws);
  other resources exist on paper. Custom resource properties arrive with every scalar as a string.
* Create runs in dependency order, independent resources at the same time (a thread each); Update sends
  OldResourceProperties and, when the physical id changes, deletes the old resource after the update
  (unless UpdateReplacePolicy is Retain); Delete runs in reverse order, honouring DeletionPolicy Retain.
  A failure rolls back: Delete of everything the operation created, Update back for what it updated.
* The Provider framework is aws-cdk-lib's own code from the asset, run under Node.js; ``framework.py``
  plays what it calls: Lambda, the waiter state machine, and CloudFormation's end of the response.
* Time: by default the waits between polls are simulated (``real_time=False``); pass ``real_time=True``
  to sleep for real, e.g. to reach the handler's own timeout, which reads the real clock.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clock import Clock, SimulatedClock
from .endpoint import Endpoint
from .framework import CREATE_FAILED_MARKER, LambdaFunction, Provider, Response
from .framework_host import FrameworkFunction
from .lambdas import FunctionSpec, WarmFunction
from .state_machine import StateMachine
from .template import Resolver, StackTemplate, TemplateError, as_strings, dependencies, fake_physical, is_custom

__all__ = ["Outcome", "Rehearsal", "ResourceResult", "Step", "TemplateError"]

JOB_TYPE = "Custom::CleanRoomsMlAudienceGenerationJob"


@dataclass(frozen=True)
class Step:
    """Something that happened: seconds since the operation began (simulated or real), the resource, what."""

    at: float
    logical_id: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"[{self.at:8.1f}s] {self.logical_id}: {self.kind}: {self.message}"


@dataclass
class ResourceResult:
    """One resource's part in an operation."""

    logical_id: str
    resource_type: str
    action: str  # Create, Update, Delete
    status: str  # SUCCESS, FAILED, SKIPPED (not sent: retained, or the framework skipped it)
    physical_id: str = ""
    data: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    polls: int = 0
    rollback: bool = False


@dataclass
class Outcome:
    """A stack operation's end state and every resource result, in the order they arrived."""

    operation: str
    status: str
    results: list[ResourceResult] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE")

    def result(self, logical_id: str, action: str | None = None, rollback: bool | None = None) -> ResourceResult:
        """The last result for ``logical_id`` (optionally of one action / phase)."""
        for item in reversed(self.results):
            if (
                item.logical_id == logical_id
                and (action is None or item.action == action)
                and (rollback is None or item.rollback == rollback)
            ):
                return item
        raise KeyError(f"no result for {logical_id} ({action or 'any action'})")

    def failures(self) -> list[ResourceResult]:
        return [r for r in self.results if r.status == "FAILED"]


@dataclass
class _Deployed:
    resource: dict[str, Any]
    physical_id: str
    attributes: dict[str, Any]
    properties: Any = None  # resolved, as delivered (custom resources only)


class Rehearsal:
    """One stack of a cloud assembly, deployed against a local endpoint (see the module docstring)."""

    def __init__(
        self,
        cdk_out: str | Path,
        stack: str | None = None,
        *,
        endpoint: Endpoint,
        real_time: bool = False,
        on_step: Callable[[Step], None] | None = None,
        client_max_attempts: int | None = None,
        enforce_iam: bool = True,
    ) -> None:
        """
        :param cdk_out: the cloud assembly directory (``cdk synth`` output).
        :param stack: the stack to rehearse. Default: the only stack in the assembly.
        :param endpoint: the started local endpoint the handlers talk to.
        :param real_time: sleep for real between polls. Default: False (simulated waits).
        :param on_step: called with every Step as it happens. Default: steps are only collected.
        :param client_max_attempts: the handlers' boto3 attempts per call (CLEANROOMSML_MAX_ATTEMPTS). Default:
            the handler's own (8, with real backoff sleeps); fewer compresses time when scripted throttling or
            5xx answers must outlast the client's retries.
        :param enforce_iam: the endpoint authorizes every call against the handler role's policy in the
            template, as IAM would (a missing permission is an AccessDeniedException here, not in an account).
            Default: True.
        """
        self.client_max_attempts = client_max_attempts
        self.enforce_iam = enforce_iam
        self.stack = StackTemplate.load(cdk_out, stack)
        self.endpoint = endpoint
        self.real_time = real_time
        self.on_step = on_step
        self.steps: list[Step] = []
        self.outcomes: list[Outcome] = []
        """Every stack operation of this rehearsal, in order (see ``wedged``)."""
        self.template: dict[str, Any] = copy.deepcopy(self.stack.template)
        self.deployed: dict[str, _Deployed] = {}
        self.functions: dict[str, WarmFunction] = {}
        self.framework_functions: dict[str, FrameworkFunction] = {}  # Node.js: the Provider framework's own
        self._providers: dict[str, Provider] = {}
        self._attempted: dict[str, Any] = {}  # properties last sent in an Update, for its rollback
        self._lock = threading.RLock()
        self._clock: Clock = Clock()
        self._started = time.monotonic()

    # ----------------------------------------------------------------------------------------------

    def __enter__(self) -> Rehearsal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes."""
        functions: list[LambdaFunction] = [*self.functions.values(), *self.framework_functions.values()]
        for function in functions:
            function.close()
        self.functions.clear()
        self.framework_functions.clear()
        self._providers.clear()

    def owned_jobs(self) -> set[str]:
        """The job ARNs the stack's audience generation job resources point at (their physical ids)."""
        with self._lock:
            return {
                d.physical_id
                for d in self.deployed.values()
                if d.resource.get("Type") == JOB_TYPE and d.physical_id.startswith("arn:")
            }

    def logical_ids(self, resource_type: str = JOB_TYPE) -> list[str]:
        return sorted(k for k, v in self.template.get("Resources", {}).items() if v.get("Type") == resource_type)

    def invocation_count(self) -> int:
        return sum(f.invocations for f in self.functions.values())

    # ----------------------------------------------------------------------------------------------
    # Stack operations

    def create(self, *, deliver_twice: Collection[str] = ()) -> Outcome:
        """Create every resource; on a failure, roll back (Delete what was created).

        :param deliver_twice: logical ids whose Create event is delivered twice (a redelivery).
        """
        if self.deployed:
            raise RuntimeError("the stack already exists: update or delete it")
        outcome = self._begin("CREATE")
        resources = self.template.get("Resources", {})
        failed = self._apply(outcome, resources, {k: ("Create", None) for k in resources}, set(deliver_twice))
        if not failed:
            return self._end(outcome, "CREATE_COMPLETE")
        outcome.reason = failed
        self._report("", "stack", f"ROLLBACK_IN_PROGRESS: {failed.splitlines()[0]}")
        rollback_ok = self._remove(outcome, list(self.deployed), rollback=True, on_create_rollback=True)
        return self._end(outcome, "ROLLBACK_COMPLETE" if rollback_ok else "ROLLBACK_FAILED")

    def update(
        self,
        template: dict[str, Any] | None = None,
        *,
        change: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Outcome:
        """Update the stack to ``template``, or to the current template with each custom resource's
        properties passed through ``change(logical_id, properties)``."""
        if template is None:
            template = copy.deepcopy(self.template)
            if change is not None:
                for logical_id, resource in template.get("Resources", {}).items():
                    if is_custom(str(resource.get("Type", ""))):
                        resource["Properties"] = change(logical_id, copy.deepcopy(resource.get("Properties", {})))
        old_template, self.template = self.template, copy.deepcopy(template)
        self.stack.template = self.template
        outcome = self._begin("UPDATE")
        self._attempted.clear()
        before = {k: copy.copy(v) for k, v in self.deployed.items()}
        resources = self.template.get("Resources", {})
        plan: dict[str, tuple[str, Any]] = {}
        for logical_id, resource in resources.items():
            if logical_id not in self.deployed:
                plan[logical_id] = ("Create", None)
            elif resource != old_template["Resources"].get(logical_id) or self._resolves_anew(logical_id, resource):
                plan[logical_id] = ("Update", self.deployed[logical_id])
            else:
                plan[logical_id] = ("Keep", None)
        failed = self._apply(outcome, resources, plan, set())
        if not failed:
            # UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: replaced resources and removed resources go.
            replaced = [
                (k, before[k])
                for k, (action, _) in plan.items()
                if action == "Update" and k in self.deployed and self.deployed[k].physical_id != before[k].physical_id
            ]
            self._clean_up(outcome, dict(replaced), rollback=False)
            removed = [k for k in before if k not in resources]
            self._remove(outcome, removed, rollback=False, on_create_rollback=False, source=before)
            return self._end(outcome, "UPDATE_COMPLETE")
        outcome.reason = failed
        self._report("", "stack", f"UPDATE_ROLLBACK_IN_PROGRESS: {failed.splitlines()[0]}")
        self.template, self.stack.template = old_template, old_template
        rollback_ok = True
        replacements: list[tuple[str, _Deployed]] = []
        # UPDATE_ROLLBACK_IN_PROGRESS: every resource whose update was attempted (in place and done, or failed)
        # gets an Update back; a replaced resource is its old self again, its new one waits for the cleanup.
        for logical_id in [k for k in plan if k in self._attempted and k in before]:
            old, now = before[logical_id], self.deployed.get(logical_id)
            if now is not None and now.physical_id != old.physical_id:
                replacements.append((logical_id, now))
                self.deployed[logical_id] = old
                continue
            current = now or old
            event = self._event("Update", logical_id, old.resource, old.properties)
            event["PhysicalResourceId"] = current.physical_id
            event["OldResourceProperties"] = self._attempted[logical_id]
            with self._in_clock():
                response = self._send(outcome, logical_id, old.resource, event, rollback=True)
            self.deployed[logical_id] = _Deployed(old.resource, old.physical_id, old.attributes, old.properties)
            rollback_ok &= response.status == "SUCCESS"
        for logical_id, old in before.items():  # resources not custom are restored as they were
            if not is_custom(str(old.resource.get("Type", ""))):
                self.deployed[logical_id] = old
        if not rollback_ok:
            return self._end(outcome, "UPDATE_ROLLBACK_FAILED")
        # UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS: the replacements and what the update created go; a
        # failure here leaves the resource behind but does not fail the rollback.
        self._clean_up(outcome, dict(replacements), rollback=True)
        created = [k for k, (action, _) in plan.items() if action == "Create" and k in self.deployed]
        self._remove(outcome, created, rollback=True, on_create_rollback=True)
        return self._end(outcome, "UPDATE_ROLLBACK_COMPLETE")

    def delete(self) -> Outcome:
        """Delete the stack (reverse dependency order; DeletionPolicy Retain keeps a resource)."""
        outcome = self._begin("DELETE")
        ok = self._remove(outcome, list(self.deployed), rollback=False, on_create_rollback=False)
        if not ok:
            first = outcome.failures()[0]
            outcome.reason = f"{first.logical_id}: {first.reason}"
        return self._end(outcome, "DELETE_COMPLETE" if ok else "DELETE_FAILED")

    # ----------------------------------------------------------------------------------------------
    # Internals

    def _begin(self, operation: str) -> Outcome:
        # Simulated time goes on from where the last operation left it, never back.
        self._clock = Clock() if self.real_time else SimulatedClock(max(time.time(), self._clock.epoch()))
        self._started = time.monotonic()
        self._report("", "stack", f"{operation}_IN_PROGRESS ({'real' if self.real_time else 'simulated'} time)")
        return Outcome(operation, f"{operation}_IN_PROGRESS")

    def _end(self, outcome: Outcome, status: str) -> Outcome:
        outcome.status = status
        outcome.seconds = self._now()
        self.outcomes.append(outcome)
        self._report("", "stack", status + (f": {outcome.reason.splitlines()[0]}" if outcome.reason else ""))
        return outcome

    @contextmanager
    def _in_clock(self) -> Iterator[None]:
        """This (the driver's own) thread takes part in the simulated clock while it waits for a provider."""
        self._clock.register()
        try:
            yield
        finally:
            self._clock.unregister()

    def wedged(self) -> list[Outcome]:
        """The operations that ended in a state only a human can leave (UPDATE_ROLLBACK_FAILED, ROLLBACK_FAILED)."""
        return [o for o in self.outcomes if o.status in ("UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED")]

    def _now(self) -> float:
        return self._clock.now() if self._clock.simulated else time.monotonic() - self._started

    def _report(self, logical_id: str, kind: str, message: str) -> None:
        step = Step(round(self._now(), 3), logical_id or "stack", kind, message)
        with self._lock:
            self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)

    def _resolves_anew(self, logical_id: str, resource: dict[str, Any]) -> bool:
        """Whether a custom resource's properties resolve to other values than it has (a parameter changed, say):
        CloudFormation sends it an Update even though its template text is the same."""
        if not is_custom(str(resource.get("Type", ""))):
            return False
        try:
            now = as_strings(self._resolver().resolve(resource.get("Properties", {})))
        except TemplateError:
            return True
        return bool(now != self.deployed[logical_id].properties)

    def _resolver(self) -> Resolver:
        with self._lock:
            physical = {k: d.physical_id for k, d in self.deployed.items()}
            attributes = {k: d.attributes for k, d in self.deployed.items()}
        return Resolver(self.stack, physical, attributes)

    def _apply(
        self, outcome: Outcome, resources: dict[str, Any], plan: dict[str, tuple[str, Any]], twice: set[str]
    ) -> str:
        """Create/Update per ``plan`` in dependency order, custom resources concurrently. Returns the first
        failure reason ('' when all succeeded); after a failure nothing new starts."""
        failures: list[str] = []

        def start(logical_id: str) -> Callable[[], Any] | None:
            action, _ = plan[logical_id]
            resource = resources[logical_id]
            if action == "Keep" and logical_id in self.deployed and self._resolves_anew(logical_id, resource):
                # What it references was replaced a moment ago (a new ARN): CloudFormation updates it too.
                action = "Update"
                plan[logical_id] = (action, self.deployed[logical_id])
            if action == "Keep":
                return None
            if not is_custom(str(resource.get("Type", ""))):
                self._paper(outcome, logical_id, resource, action)
                return None
            return lambda: self._custom(outcome, logical_id, resource, action, logical_id in twice)

        def finish(logical_id: str, future: Future[Any]) -> None:
            try:
                response = future.result()
            except Exception as error:  # the rehearsal itself broke: a failure, clearly
                response = Response("FAILED", "", reason=f"rehearsal error: {error!r}")
            if response is not None and response.status != "SUCCESS":
                failures.append(f"{logical_id}: {response.reason}")

        done = self._in_order(
            dependencies({"Resources": resources}), start, finish, halted=lambda: bool(failures), name="cfn"
        )
        missing = [k for k in resources if k not in done]
        if failures:
            return failures[0]
        return f"resources never became ready: {', '.join(sorted(missing))}" if missing else ""

    def _in_order(
        self,
        before: dict[str, set[str]],
        start: Callable[[str], Callable[[], Any] | None],
        finish: Callable[[str, Future[Any]], None],
        *,
        halted: Callable[[], bool] = lambda: False,
        name: str,
    ) -> set[str]:
        """CloudFormation's scheduling: each key starts once every key in ``before[key]`` is done, independent
        ones at the same time. ``start`` handles a key at once (returning None) or returns the task to run in
        the pool, whose future ``finish`` receives. Once ``halted()``, nothing new starts. Returns the keys done."""
        done: set[str] = set()
        running: dict[Future[Any], str] = {}
        clock = self._clock
        clock.register()  # this thread: time may not jump while it hands out work
        with ThreadPoolExecutor(max_workers=64, thread_name_prefix=name) as pool:
            try:
                while True:
                    ready = [
                        k
                        for k in before
                        if k not in done and k not in running.values() and before[k] <= done and not halted()
                    ]
                    handled = False
                    for key in ready:
                        task = start(key)
                        if task is None:
                            done.add(key)
                            handled = True
                        else:
                            clock.register()
                            running[pool.submit(task)] = key
                    if handled:
                        continue  # what was handled at once may have unblocked others
                    if not running:
                        break
                    with clock.idle():
                        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for future in finished:
                        key = running.pop(future)
                        finish(key, future)
                        done.add(key)  # a failure does not block the rest: CloudFormation goes on
                        clock.unregister()
            finally:
                clock.unregister()
        return done

    def _paper(self, outcome: Outcome, logical_id: str, resource: dict[str, Any], action: str) -> None:
        with self._lock:
            if action == "Create" or logical_id not in self.deployed:
                physical, attributes = fake_physical(self.stack, logical_id, resource)
                self.deployed[logical_id] = _Deployed(resource, physical, attributes)
            else:
                self.deployed[logical_id].resource = resource

    def _event(self, request_type: str, logical_id: str, resource: dict[str, Any], properties: Any) -> dict[str, Any]:
        return {
            "RequestType": request_type,
            "ServiceToken": properties.get("ServiceToken") if isinstance(properties, dict) else None,
            "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/rehearsal",
            "StackId": self.stack.stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "ResourceType": resource.get("Type"),
            "ResourceProperties": properties,
        }

    def _custom(
        self, outcome: Outcome, logical_id: str, resource: dict[str, Any], action: str, twice: bool
    ) -> Response | None:
        properties = as_strings(self._resolver().resolve(resource.get("Properties", {})))
        event = self._event(action, logical_id, resource, properties)
        previous = self.deployed.get(logical_id)
        if action == "Update" and previous is not None:
            event["PhysicalResourceId"] = previous.physical_id
            event["OldResourceProperties"] = previous.properties
            with self._lock:
                self._attempted[logical_id] = properties
        if twice:
            # A redelivered event: the same request reaches the provider twice, at the same time.
            with ThreadPoolExecutor(max_workers=1) as extra:
                self._clock.register()
                duplicate = extra.submit(self._send_counted, outcome, logical_id, resource, copy.deepcopy(event))
                response = self._send(outcome, logical_id, resource, event, rollback=False)
                with self._clock.idle():
                    duplicate.result()
        else:
            response = self._send(outcome, logical_id, resource, event, rollback=False)
        if response.status == "SUCCESS" or response.physical_id:
            with self._lock:
                if response.status == "SUCCESS" or action == "Create":
                    self.deployed[logical_id] = _Deployed(
                        resource, response.physical_id, dict(response.data), properties
                    )
        return response

    def _send_counted(self, outcome: Outcome, logical_id: str, resource: dict[str, Any], event: dict[str, Any]) -> None:
        with self._clock.participant():
            self._send(outcome, logical_id, resource, event, rollback=False, note=" (redelivered)")

    def _provider(self, service_token: str) -> Provider:
        with self._lock:
            if service_token in self._providers:
                return self._providers[service_token]
            framework_id = self._function_ids().get(service_token)
            if framework_id is None:
                raise TemplateError(f"the ServiceToken {service_token} is not a Lambda function of this stack")
            entry = self._function(framework_id)
            if not isinstance(entry, FrameworkFunction) or "USER_ON_EVENT_FUNCTION_ARN" not in entry.spec.environment:
                raise TemplateError(f"{framework_id} is not a CDK Provider framework onEvent function")
            provider = Provider(entry, self._function_by_arn, self._state_machine)
            self._providers[service_token] = provider
            return provider

    def _function_ids(self) -> dict[str, str]:
        """Function ARN -> logical id, for the functions deployed so far."""
        return {
            str(d.attributes.get("Arn")): k
            for k, d in self.deployed.items()
            if d.resource.get("Type") == "AWS::Lambda::Function"
        }

    def _function_by_arn(self, arn: str) -> LambdaFunction:
        with self._lock:
            logical_id = self._function_ids().get(arn)
            if logical_id is None:
                raise TemplateError(f"no Lambda function {arn} in this stack")
            return self._function(logical_id)

    def _state_machine(self, arn: str) -> StateMachine:
        with self._lock:
            machine = next(
                (
                    k
                    for k, d in self.deployed.items()
                    if d.resource.get("Type") == "AWS::StepFunctions::StateMachine" and d.physical_id == arn
                ),
                None,
            )
            if machine is None:
                raise TemplateError(f"no state machine {arn} in this stack")
            properties = self._resolver().resolve(self.template["Resources"][machine]["Properties"])
        definition = properties.get("DefinitionString") or json.dumps(properties.get("Definition", {}))
        return StateMachine(arn, str(definition))

    def _authorize_handlers(self, service_token: str) -> None:
        """The endpoint authorizes calls with the policy of the role the provider's Python handlers run with, as
        the template (and so CloudFormation) has it now."""
        from . import iam

        with self._lock:
            resolver = self._resolver()
            resources = self.template.get("Resources", {})
            framework = next(k for k, d in self.deployed.items() if str(d.attributes.get("Arn")) == service_token)
            environment = resolver.resolve(resources[framework]["Properties"].get("Environment", {}))
            handler_arn = environment.get("Variables", {}).get("USER_ON_EVENT_FUNCTION_ARN")
            handler = next(k for k, d in self.deployed.items() if str(d.attributes.get("Arn")) == handler_arn)
            role_arn = resolver.resolve(resources[handler]["Properties"]["Role"])
            role = next(k for k, d in self.deployed.items() if str(d.attributes.get("Arn")) == role_arn)
            try:
                statements = iam.role_statements(self.template, role, resolver.resolve)
            except iam.PolicyError as error:  # e.g. AWS-managed policies: not in the template, nothing to judge by
                self._report("", "iam", f"calls are not authorized against {role}'s policy: {error}")
                self.endpoint.enforce_iam(None)
                return
        self.endpoint.enforce_iam(statements, iam.Caller(self.stack.partition, self.stack.region, self.stack.account))

    def _function(self, logical_id: str) -> LambdaFunction:
        """The function's warm worker: Python in a worker process, Node.js (the framework) in a Node host."""
        if logical_id in self.functions:
            return self.functions[logical_id]
        if logical_id in self.framework_functions:
            return self.framework_functions[logical_id]
        resource = self.template["Resources"][logical_id]
        props = self._resolver().resolve(resource.get("Properties", {}))
        code = props.get("Code", {})
        key = str(code.get("S3Key", ""))
        asset = self.stack.assets.get(key)
        if asset is None or not asset.is_dir():
            raise TemplateError(f"the code of {logical_id} ({key}) is not an asset directory in {self.stack.cdk_out}")
        logging_config = props.get("LoggingConfig", {}) or {}
        spec = FunctionSpec(
            logical_id=logical_id,
            name=self.deployed[logical_id].physical_id,
            handler=str(props["Handler"]),
            asset_dir=asset.resolve(),
            environment={k: str(v) for k, v in (props.get("Environment", {}).get("Variables", {}) or {}).items()},
            timeout_seconds=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            runtime=str(props.get("Runtime", "")),
            log_format=str(logging_config.get("LogFormat", "")),
            application_log_level=str(logging_config.get("ApplicationLogLevel", "")),
        )
        base = {**self.endpoint.environment(), "AWS_REGION": self.stack.region, "AWS_DEFAULT_REGION": self.stack.region}
        if spec.runtime.startswith("nodejs"):
            framework = FrameworkFunction(spec, base)
            self.framework_functions[logical_id] = framework
            return framework
        if self.client_max_attempts is not None:
            base["CLEANROOMSML_MAX_ATTEMPTS"] = str(self.client_max_attempts)
        function = WarmFunction(spec, base)
        self.functions[logical_id] = function
        return function

    def _send(
        self,
        outcome: Outcome,
        logical_id: str,
        resource: dict[str, Any],
        event: dict[str, Any],
        *,
        rollback: bool,
        note: str = "",
    ) -> Response:
        request_type = str(event["RequestType"])
        phase = "ROLLBACK " if rollback else ""
        self._report(logical_id, "cloudformation", f"{phase}{request_type.upper()}_IN_PROGRESS{note}")

        def report(kind: str, message: str) -> None:
            self._report(logical_id, kind, message)

        began = self._clock.now()
        try:
            provider = self._provider(str(event["ServiceToken"]))
            if self.enforce_iam:
                self._authorize_handlers(str(event["ServiceToken"]))
            response = provider.handle(event, self._clock, report)
        except TemplateError as error:
            response = Response("FAILED", str(event.get("PhysicalResourceId", "")), reason=str(error))
        waited, allowed = self._clock.now() - began, _service_timeout(event)
        if waited > allowed and not response.skipped:
            # CloudFormation stopped waiting at ServiceTimeout; the late answer is ignored (the model keeps its
            # physical id, so a rollback can still reach what it created).
            response = Response(
                "FAILED",
                response.physical_id,
                reason=f"CloudFormation did not receive a response within the ServiceTimeout ({allowed:.0f} s; "
                f"the provider answered after {waited:.0f} s)",
                polls=response.polls,
            )
        status = "SKIPPED" if response.skipped else response.status
        result = ResourceResult(
            logical_id,
            str(resource.get("Type")),
            request_type,
            status,
            response.physical_id,
            dict(response.data),
            response.reason,
            response.polls,
            rollback,
        )
        with self._lock:
            outcome.results.append(result)
        word = {"SUCCESS": "COMPLETE", "FAILED": "FAILED", "SKIPPED": "COMPLETE (skipped)"}[status]
        detail = f" {response.physical_id}" + (f": {response.reason.strip()}" if response.reason else "")
        self._report(logical_id, "cloudformation", f"{phase}{request_type.upper()}_{word}{note}{detail}")
        return response

    def _delete_one(
        self, outcome: Outcome, logical_id: str, deployed: _Deployed, *, retain: bool, rollback: bool
    ) -> bool:
        kind = str(deployed.resource.get("Type", ""))
        if retain:
            self._report(logical_id, "cloudformation", f"DELETE_SKIPPED (retained) {deployed.physical_id}")
            with self._lock:
                outcome.results.append(
                    ResourceResult(logical_id, kind, "Delete", "SKIPPED", deployed.physical_id, rollback=rollback)
                )
            return True
        if not is_custom(kind):
            return True
        event = self._event("Delete", logical_id, deployed.resource, deployed.properties)
        event["PhysicalResourceId"] = deployed.physical_id
        return self._send(outcome, logical_id, deployed.resource, event, rollback=rollback).status == "SUCCESS"

    def _remove(
        self,
        outcome: Outcome,
        logical_ids: list[str],
        *,
        rollback: bool,
        on_create_rollback: bool,
        source: dict[str, _Deployed] | None = None,
    ) -> bool:
        """Delete these resources, dependents first, independent ones at the same time."""
        state = source if source is not None else self.deployed
        targets = {k: state[k] for k in logical_ids if k in state}
        graph = dependencies({"Resources": {k: d.resource for k, d in targets.items()}})
        dependents: dict[str, set[str]] = {k: set() for k in targets}
        for k, deps in graph.items():
            for dep in deps:
                dependents[dep].add(k)
        results: list[bool] = []

        def start(logical_id: str) -> Callable[[], bool] | None:
            deployed = targets[logical_id]
            policy = deployed.resource.get("DeletionPolicy", "Delete")
            retain = policy == "Retain" or (policy == "RetainExceptOnCreate" and not on_create_rollback)
            if not is_custom(str(deployed.resource.get("Type", ""))) or (
                retain and deployed.physical_id != CREATE_FAILED_MARKER
            ):
                self._delete_one(outcome, logical_id, deployed, retain=retain, rollback=rollback)
                self._forget(logical_id, source)
                return None
            return lambda: self._delete_one(outcome, logical_id, deployed, retain=False, rollback=rollback)

        def finish(logical_id: str, future: Future[Any]) -> None:
            try:
                success = bool(future.result())
            except Exception:
                success = False
            results.append(success)
            if success:
                self._forget(logical_id, source)

        # A resource that failed to delete keeps what it depends on (its provider's functions, say): nothing
        # new starts once a delete failed, as CloudFormation leaves the stack DELETE_FAILED with them in place.
        self._in_order(dependents, start, finish, halted=lambda: not all(results), name="cfn-delete")
        return all(results)

    def _clean_up(self, outcome: Outcome, replaced: dict[str, _Deployed], *, rollback: bool) -> None:
        """The cleanup phase: delete the physical resources a replacement left (the old ones after an update, the
        new ones after its rollback), dependents first, independent ones at the same time. A failure leaves its
        resource behind and fails nothing; the others are still deleted. After an update, UpdateReplacePolicy
        Retain keeps the old resource."""
        graph = dependencies({"Resources": {k: d.resource for k, d in replaced.items()}})
        dependents: dict[str, set[str]] = {k: set() for k in replaced}
        for k, deps in graph.items():
            for dep in deps:
                dependents[dep].add(k)

        def start(logical_id: str) -> Callable[[], bool] | None:
            old = replaced[logical_id]
            retain = not rollback and old.resource.get("UpdateReplacePolicy", "Delete") == "Retain"
            return lambda: self._delete_one(outcome, logical_id, old, retain=retain, rollback=rollback)

        def finish(_logical_id: str, future: Future[Any]) -> None:
            future.exception()  # a failure is already in the outcome's results; the cleanup goes on

        self._in_order(dependents, start, finish, halted=lambda: False, name="cfn-cleanup")

    def _forget(self, logical_id: str, source: dict[str, _Deployed] | None) -> None:
        with self._lock:
            if source is None or self.deployed.get(logical_id) is source.get(logical_id):
                self.deployed.pop(logical_id, None)


def _service_timeout(event: dict[str, Any]) -> float:
    """The resource's ``ServiceTimeout`` property (CloudFormation's default and maximum: one hour)."""
    try:
        return float((event.get("ResourceProperties") or {}).get("ServiceTimeout", 3600))
    except (TypeError, ValueError):
        return 3600.0


def summary(outcome: Outcome) -> str:
    """One line per resource result, for printing."""
    lines = [
        f"{outcome.operation}: {outcome.status}" + (f" ({outcome.reason.splitlines()[0]})" if outcome.reason else "")
    ]
    for r in outcome.results:
        phase = " [rollback]" if r.rollback else ""
        data = f" data={json.dumps(r.data, sort_keys=True)}" if r.data else ""
        lines.append(f"  {r.logical_id} {r.action}{phase}: {r.status} {r.physical_id}{data}")
    return "\n".join(lines)
