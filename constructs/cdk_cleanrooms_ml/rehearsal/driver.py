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
* Nested stacks (``AWS::CloudFormation::Stack``, e.g. every provider of this library) are stacks of their own:
  created as one resource of their parent (after its dependencies) by creating their template's resources
  with the Parameters the parent gives; their Outputs are the resource's ``Outputs.<name>`` attributes; inside,
  ``AWS::StackName``/``AWS::StackId`` are the nested stack's. An update reaches a nested stack whose template
  or Parameters changed (its custom resources get Updates) and rolls it back with its parent; a delete
  removes what depends on it first, then its resources in reverse order. Providers are found by ServiceToken
  in any of them. Steps and results name a nested resource ``<nested stack logical id>/<logical id>``.
* The Provider framework is aws-cdk-lib's own code from the asset, run under Node.js; ``framework.py``
  plays what it calls: Lambda, the waiter state machine, and CloudFormation's end of the response.
* Step Functions: the handlers' ``AWS_ENDPOINT_URL_SFN`` points at a local stand-in (``step_functions.py``) whose
  StartExecution runs the template's state machine (the audience model's watcher) in a background thread on the
  rehearsal's clock; ``executions()`` lists them with their outcome, ``close()`` stops those still running.
* Wait conditions (``wait_conditions.py``): a WaitConditionHandle's Ref is a URL of the same local server; a
  WaitCondition waits, in the rehearsal's clock, for its Count SUCCESS signals, fails on a FAILURE signal or
  at its Timeout, and then the stack rolls back as for any failed resource.
* ``AWS::CleanRoomsML::TrainingDataset`` exists on paper with a training-dataset ARN, registered with the
  endpoint (``Endpoint.add_training_dataset``) while the stack has it; any change of its properties replaces it.
* Time: by default the waits between polls are simulated (``real_time=False``); pass ``real_time=True``
  to sleep for real, e.g. to reach the handler's own timeout, which reads the real clock.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import wait_conditions
from .clock import Clock, SimulatedClock
from .endpoint import Endpoint
from .framework import CREATE_FAILED_MARKER, LambdaFunction, Provider, Response, _compact, _error_name
from .framework_host import FrameworkFunction
from .lambdas import FunctionSpec, InvocationError, WarmFunction
from .state_machine import StateMachine, TaskResult
from .step_functions import ExecutionRecord, LocalCloud, Wiring
from .template import (
    NESTED_STACK,
    TRAINING_DATASET,
    Resolver,
    StackTemplate,
    TemplateError,
    as_strings,
    dependencies,
    fake_physical,
    is_custom,
    is_nested_stack,
)

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
    properties: Any = None  # resolved, as delivered (custom resources); the Parameters given (nested stacks)
    stack: _Stack | None = None  # a nested stack: the stack it is


class _Stack:
    """A stack the rehearsal deploys: the one it was given, or a nested stack (an ``AWS::CloudFormation::Stack``
    resource of its parent, whose resources it creates, updates and deletes as CloudFormation does a stack's).

    Besides what is deployed, it keeps the update in progress, for the update's cleanup or rollback."""

    def __init__(self, definition: StackTemplate, path: str = "") -> None:
        self.definition = definition
        self.path = path  # how steps and results name its resources: "" or "<nested stack logical id>/..."
        self.deployed: dict[str, _Deployed] = {}
        self.old = definition  # the template and parameters before the update
        self.before: dict[str, _Deployed] = {}  # what was deployed before the update
        self.plan: dict[str, str] = {}  # logical id -> Create, Update or Keep
        self.attempted: dict[str, Any] = {}  # what an Update last sent (custom) or gave (nested), for its rollback
        self.replacements: list[tuple[str, _Deployed]] = []  # the new resources of replacements undone

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.definition.resources

    def qualified(self, logical_id: str) -> str:
        return self.path + logical_id

    def walk(self) -> Iterator[_Stack]:
        """This stack and its nested stacks, at any depth."""
        yield self
        for deployed in list(self.deployed.values()):
            if deployed.stack is not None:
                yield from deployed.stack.walk()

    def updated_nested(self) -> list[str]:
        """The nested stacks whose update this stack's update attempted."""
        return [k for k in self.plan if k in self.attempted and k in self.before and self.before[k].stack is not None]


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
        self._root = _Stack(StackTemplate.load(cdk_out, stack))
        self.endpoint = endpoint
        self.real_time = real_time
        self.on_step = on_step
        self.steps: list[Step] = []
        self.outcomes: list[Outcome] = []
        """Every stack operation of this rehearsal, in order (see ``wedged``)."""
        self.functions: dict[str, WarmFunction] = {}  # by function ARN
        self.framework_functions: dict[str, FrameworkFunction] = {}  # Node.js: the Provider framework's own
        self._providers: dict[str, Provider] = {}
        self._lock = threading.RLock()
        self._clock: Clock = Clock()
        self._thread = threading.local()  # .counted: this thread takes part in the simulated clock already
        self._started = time.monotonic()
        # The endpoint's audience models train in the rehearsal's time (when training goes by time).
        self._endpoint_clock = endpoint.clock
        endpoint.clock = lambda: self._clock.epoch()
        self._access_keys: dict[str, str] = {}  # a function's own access key -> its ARN (who calls Step Functions)
        self.cloud = LocalCloud(
            Wiring(self._state_machine, self._run_task, lambda: self._clock, self._authorize_states, self._report_at)
        )

    @property
    def stack(self) -> StackTemplate:
        """The stack rehearsed: its name, id, environment and current template."""
        return self._root.definition

    @property
    def template(self) -> dict[str, Any]:
        """The stack's current template (its nested stacks' templates are theirs)."""
        return self._root.definition.template

    @property
    def deployed(self) -> dict[str, _Deployed]:
        return self._root.deployed

    # ----------------------------------------------------------------------------------------------

    def __enter__(self) -> Rehearsal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the executions still running (ABORTED), the local server, then the worker processes."""
        self.cloud.close()
        self.endpoint.clock = self._endpoint_clock
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
                for stack in self._root.walk()
                for d in stack.deployed.values()
                if d.resource.get("Type") == JOB_TYPE and d.physical_id.startswith("arn:")
            }

    def logical_ids(self, resource_type: str = JOB_TYPE) -> list[str]:
        return sorted(k for k, v in self.template.get("Resources", {}).items() if v.get("Type") == resource_type)

    def executions(self) -> list[ExecutionRecord]:
        """Every Step Functions execution the handlers started, in order: name, input, status, result."""
        return list(self.cloud.executions.values())

    def settle_executions(self, timeout: float = 30.0) -> bool:
        """Wait (real time, at most ``timeout``) until no execution runs; returns whether none does. An execution
        that outlives the operation that started it goes on in that operation's (simulated) timeline."""
        return self.cloud.settle(timeout)

    def invocation_count(self) -> int:
        return sum(f.invocations for f in self.functions.values())

    # ----------------------------------------------------------------------------------------------
    # Stack operations

    def create(self, *, deliver_twice: Collection[str] = ()) -> Outcome:
        """Create every resource; on a failure, roll back (Delete what was created).

        :param deliver_twice: logical ids whose Create event is delivered twice (a redelivery).
        """
        if self._root.deployed:
            raise RuntimeError("the stack already exists: update or delete it")
        outcome = self._begin("CREATE")
        root = self._root
        failed = self._apply(outcome, root, {k: "Create" for k in root.resources}, set(deliver_twice))
        if not failed:
            return self._end(outcome, "CREATE_COMPLETE")
        outcome.reason = failed
        self._report("", "stack", f"ROLLBACK_IN_PROGRESS: {failed.splitlines()[0]}")
        rollback_ok = self._remove(outcome, root, list(root.deployed), rollback=True, on_create_rollback=True)
        return self._end(outcome, "ROLLBACK_COMPLETE" if rollback_ok else "ROLLBACK_FAILED")

    def update(
        self,
        template: dict[str, Any] | None = None,
        *,
        change: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Outcome:
        """Update the stack to ``template``, or to the current template with each custom resource's
        properties passed through ``change(logical_id, properties)``.

        A nested stack is updated when its template (its TemplateURL: a file asset of the same cloud assembly)
        or the values of its Parameters change, its resources as the stack's own."""
        if template is None:
            template = copy.deepcopy(self.template)
            if change is not None:
                for logical_id, resource in template.get("Resources", {}).items():
                    if is_custom(str(resource.get("Type", ""))):
                        resource["Properties"] = change(logical_id, copy.deepcopy(resource.get("Properties", {})))
        outcome = self._begin("UPDATE")
        root = self._root
        failed = self._update_stack(outcome, root, copy.deepcopy(template), root.definition.parameters)
        if not failed:
            self._clean_up(outcome, root)
            return self._end(outcome, "UPDATE_COMPLETE")
        outcome.reason = failed
        self._report("", "stack", f"UPDATE_ROLLBACK_IN_PROGRESS: {failed.splitlines()[0]}")
        if not self._roll_back(outcome, root):
            return self._end(outcome, "UPDATE_ROLLBACK_FAILED")
        self._clean_up_rollback(outcome, root)
        return self._end(outcome, "UPDATE_ROLLBACK_COMPLETE")

    def delete(self) -> Outcome:
        """Delete the stack (reverse dependency order; DeletionPolicy Retain keeps a resource)."""
        outcome = self._begin("DELETE")
        root = self._root
        ok = self._remove(outcome, root, list(root.deployed), rollback=False, on_create_rollback=False)
        if not ok:
            first = outcome.failures()[0]
            outcome.reason = f"{first.logical_id}: {first.reason}"
        return self._end(outcome, "DELETE_COMPLETE" if ok else "DELETE_FAILED")

    # ----------------------------------------------------------------------------------------------
    # The phases of an update, for one stack (a nested stack's update is one resource of its parent's)

    def _update_stack(
        self, outcome: Outcome, stack: _Stack, template: dict[str, Any], parameters: dict[str, str]
    ) -> str:
        """UPDATE_IN_PROGRESS: plan and apply. Returns the first failure ('' when all succeeded)."""
        stack.old, stack.definition = (
            stack.definition,
            replace(stack.definition, template=template, parameters=parameters),
        )
        stack.attempted.clear()
        stack.replacements.clear()
        stack.before = {k: copy.copy(v) for k, v in stack.deployed.items()}
        old_resources = stack.old.resources
        stack.plan = {}
        for logical_id, resource in stack.resources.items():
            if logical_id not in stack.deployed:
                stack.plan[logical_id] = "Create"
            elif resource != old_resources.get(logical_id) or self._resolves_anew(stack, logical_id, resource):
                stack.plan[logical_id] = "Update"
            else:
                stack.plan[logical_id] = "Keep"
        return self._apply(outcome, stack, stack.plan, set())

    def _clean_up(self, outcome: Outcome, stack: _Stack) -> None:
        """UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: replaced resources and removed resources go; then the cleanup
        of the nested stacks updated (after their parent's, whose removed resources may still use them)."""
        replaced = [
            (k, stack.before[k])
            for k, action in stack.plan.items()
            if action == "Update"
            and k in stack.deployed
            and stack.deployed[k].physical_id != stack.before[k].physical_id
        ]
        self._delete_replaced(outcome, stack, dict(replaced), rollback=False)
        removed = [k for k in stack.before if k not in stack.resources]
        self._remove(outcome, stack, removed, rollback=False, on_create_rollback=False, source=stack.before)
        for logical_id in stack.updated_nested():
            nested = stack.before[logical_id].stack
            if nested is not None:
                self._clean_up(outcome, nested)

    def _roll_back(self, outcome: Outcome, stack: _Stack) -> bool:
        """UPDATE_ROLLBACK_IN_PROGRESS: every resource whose update was attempted (in place and done, or failed)
        gets an Update back; a replaced resource is its old self again, its new one waits for the cleanup. The
        nested stacks updated roll back after the resources of their parent (which may use their outputs).
        Returns whether every Update back succeeded."""
        stack.definition = stack.old
        rollback_ok = True
        attempted = [k for k in stack.plan if k in stack.attempted and k in stack.before]
        for logical_id in [k for k in attempted if stack.before[k].stack is None]:
            old, now = stack.before[logical_id], stack.deployed.get(logical_id)
            if now is not None and now.physical_id != old.physical_id:
                stack.replacements.append((logical_id, now))
                stack.deployed[logical_id] = old
                continue
            current = now or old
            event = self._event(stack, "Update", logical_id, old.resource, old.properties)
            event["PhysicalResourceId"] = current.physical_id
            event["OldResourceProperties"] = stack.attempted[logical_id]
            with self._in_clock():
                response = self._send(outcome, stack, logical_id, old.resource, event, rollback=True)
            stack.deployed[logical_id] = _Deployed(old.resource, old.physical_id, old.attributes, old.properties)
            rollback_ok &= response.status == "SUCCESS"
        for logical_id in stack.updated_nested():
            old = stack.before[logical_id]
            assert old.stack is not None
            name = stack.qualified(logical_id)
            self._report(
                name, "cloudformation", f"ROLLBACK UPDATE_IN_PROGRESS (nested stack {old.stack.definition.name})"
            )
            nested_ok = self._roll_back(outcome, old.stack)
            self._nested_result(outcome, stack, logical_id, "Update", old.physical_id, nested_ok, True, old.attributes)
            rollback_ok &= nested_ok
        for logical_id, old in stack.before.items():  # resources not custom are restored as they were
            if not is_custom(str(old.resource.get("Type", ""))):
                now = stack.deployed.get(logical_id)
                if now is not None and now.physical_id != old.physical_id:
                    self._paper_delete(now)  # the replacement the update made goes
                stack.deployed[logical_id] = old
        return rollback_ok

    def _clean_up_rollback(self, outcome: Outcome, stack: _Stack) -> None:
        """UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS: the replacements and what the update created go, then
        the nested stacks' own; a failure here leaves the resource behind but does not fail the rollback."""
        self._delete_replaced(outcome, stack, dict(stack.replacements), rollback=True)
        created = [k for k, action in stack.plan.items() if action == "Create" and k in stack.deployed]
        self._remove(outcome, stack, created, rollback=True, on_create_rollback=True)
        for logical_id in stack.updated_nested():
            nested = stack.before[logical_id].stack
            if nested is not None:
                self._clean_up_rollback(outcome, nested)

    def _delete_replaced(
        self, outcome: Outcome, stack: _Stack, replaced: dict[str, _Deployed], *, rollback: bool
    ) -> None:
        """Delete the physical resources a replacement left (the old ones after an update, the new ones after its
        rollback), dependents first, independent ones at the same time. A failure leaves its resource behind and
        fails nothing; the others are still deleted. After an update, UpdateReplacePolicy Retain keeps the old
        resource."""
        graph = dependencies({"Resources": {k: d.resource for k, d in replaced.items()}})
        dependents: dict[str, set[str]] = {k: set() for k in replaced}
        for k, deps in graph.items():
            for dep in deps:
                dependents[dep].add(k)

        def start(logical_id: str) -> Callable[[], bool] | None:
            old = replaced[logical_id]
            retain = not rollback and old.resource.get("UpdateReplacePolicy", "Delete") == "Retain"
            return lambda: self._delete_one(outcome, stack, logical_id, old, retain=retain, rollback=rollback)

        def finish(_logical_id: str, future: Future[Any]) -> None:
            future.exception()  # a failure is already in the outcome's results; the cleanup goes on

        self._in_order(dependents, start, finish, halted=lambda: False, name="cfn-cleanup")

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
        counted, self._thread.counted = self._counted(), True
        try:
            yield
        finally:
            self._thread.counted = counted
            self._clock.unregister()

    def _counted(self) -> bool:
        """Whether this thread takes part in the simulated clock already (a task of ``_in_order``, say)."""
        return bool(getattr(self._thread, "counted", False))

    def _as_counted(self, task: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            self._thread.counted = True
            return task()

        return run

    def outputs(self) -> dict[str, Any]:
        """The stack's Outputs resolved against what is deployed now, as ``aws cloudformation describe-stacks``
        shows them after a deploy (what a second stack of another account is given as context)."""
        return self._resolver(self._root).outputs()

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

    def _resolves_anew(self, stack: _Stack, logical_id: str, resource: dict[str, Any]) -> bool:
        """Whether a custom resource's properties (a nested stack's Parameters) resolve to other values than it
        has (a parameter changed, say): CloudFormation updates it even though its template text is the same."""
        kind = str(resource.get("Type", ""))
        if is_custom(kind):
            given = resource.get("Properties", {})
        elif is_nested_stack(kind):
            given = resource.get("Properties", {}).get("Parameters") or {}
        else:
            return False
        try:
            now = as_strings(self._resolver(stack).resolve(given))
        except TemplateError:
            return True
        return bool(now != stack.deployed[logical_id].properties)

    def _resolver(self, stack: _Stack) -> Resolver:
        with self._lock:
            physical = {k: d.physical_id for k, d in stack.deployed.items()}
            attributes = {k: d.attributes for k, d in stack.deployed.items()}
        return Resolver(stack.definition, physical, attributes)

    def _apply(self, outcome: Outcome, stack: _Stack, plan: dict[str, str], twice: set[str]) -> str:
        """Create/Update per ``plan`` in dependency order, custom resources and nested stacks concurrently.
        Returns the first failure reason ('' when all succeeded); after a failure nothing new starts."""
        failures: list[str] = []
        resources = stack.resources

        def start(logical_id: str) -> Callable[[], Any] | None:
            action = plan[logical_id]
            resource = resources[logical_id]
            kind = str(resource.get("Type", ""))
            if action == "Keep" and logical_id in stack.deployed and self._resolves_anew(stack, logical_id, resource):
                # What it references was replaced a moment ago (a new ARN): CloudFormation updates it too.
                action = plan[logical_id] = "Update"
            if action == "Keep":
                return None
            if is_nested_stack(kind):
                return lambda: self._nested(outcome, stack, logical_id, resource, action)
            if kind == wait_conditions.CONDITION:
                return lambda: self._wait_condition(outcome, stack, logical_id, resource, action)
            if not is_custom(kind):
                self._paper(stack, logical_id, resource, action)
                return None
            return lambda: self._custom(outcome, stack, logical_id, resource, action, logical_id in twice)

        def finish(logical_id: str, future: Future[Any]) -> None:
            try:
                response = future.result()
            except Exception as error:  # the rehearsal itself broke: a failure, clearly
                response = Response("FAILED", "", reason=f"rehearsal error: {error!r}")
            if response is not None and response.status != "SUCCESS":
                failures.append(f"{stack.qualified(logical_id)}: {response.reason}")

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
        the pool, whose future ``finish`` receives. Once ``halted()``, nothing new starts. Returns the keys done.

        A nested stack's operation runs as one task of its parent's: its thread, counted in the simulated clock
        already, is not counted again."""
        done: set[str] = set()
        running: dict[Future[Any], str] = {}
        clock = self._clock
        counted = self._counted()
        if not counted:
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
                            running[pool.submit(self._as_counted(task))] = key
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
                if not counted:
                    clock.unregister()
        return done

    def _paper(self, stack: _Stack, logical_id: str, resource: dict[str, Any], action: str) -> None:
        with self._lock:
            current = stack.deployed.get(logical_id)
            replaced = (
                current is not None
                and str(resource.get("Type")) in _REPLACED_ON_ANY_CHANGE
                and current.resource.get("Properties") != resource.get("Properties")
            )
            if action == "Create" or current is None or replaced:
                physical, attributes = self._paper_physical(stack, logical_id, resource)
                stack.deployed[logical_id] = _Deployed(resource, physical, attributes)
                if replaced:
                    self._report(stack.qualified(logical_id), "cloudformation", f"replaced: {physical}")
            else:
                current.resource = resource

    def _paper_physical(self, stack: _Stack, logical_id: str, resource: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """A paper resource's physical id and attributes; a handle's URL is live, a training dataset is known to
        the endpoint (as long as the stack has it)."""
        kind = str(resource.get("Type"))
        if kind == wait_conditions.HANDLE:
            return self.cloud.handles.create(stack.qualified(logical_id)).url, {}
        physical, attributes = fake_physical(stack.definition, logical_id, resource)
        if kind == TRAINING_DATASET:
            self.endpoint.add_training_dataset(physical)
        return physical, attributes

    def _paper_delete(self, deployed: _Deployed) -> None:
        kind = str(deployed.resource.get("Type"))
        if kind == wait_conditions.HANDLE:
            self.cloud.handles.delete(deployed.physical_id)
        elif kind == TRAINING_DATASET:
            self.endpoint.remove_training_dataset(deployed.physical_id)

    # ----------------------------------------------------------------------------------------------
    # Wait conditions, and the Step Functions executions that signal them

    def _wait_condition(
        self, outcome: Outcome, stack: _Stack, logical_id: str, resource: dict[str, Any], action: str
    ) -> Response:
        """Create: wait (in the rehearsal's clock) for the handle's signals, or the Timeout. Update: nothing to do
        when Count, Handle and Timeout stay as they are; changing them fails ("Updates aren't supported")."""
        name = stack.qualified(logical_id)
        self._report(name, "cloudformation", f"{action.upper()}_IN_PROGRESS")
        properties = self._resolver(stack).resolve(resource.get("Properties", {}))
        previous = stack.deployed.get(logical_id)

        def done(status: str, physical: str, reason: str = "", data: dict[str, Any] | None = None) -> Response:
            result = ResourceResult(name, wait_conditions.CONDITION, action, status, physical, dict(data or {}), reason)
            with self._lock:
                outcome.results.append(result)
                if status == "SUCCESS":
                    stack.deployed[logical_id] = _Deployed(resource, physical, dict(data or {}), properties)
            word = "COMPLETE" if status == "SUCCESS" else "FAILED"
            self._report(
                name, "cloudformation", f"{action.upper()}_{word} {physical}" + (f": {reason}" if reason else "")
            )
            return Response(status, physical, dict(data or {}), reason)

        if action == "Update" and previous is not None:
            changed = [
                k
                for k in wait_conditions.NOT_UPDATABLE
                if as_strings(properties.get(k)) != as_strings((previous.properties or {}).get(k))
            ]
            if changed:
                return done(
                    "FAILED",
                    previous.physical_id,
                    f"{name} ({wait_conditions.CONDITION}): its {', '.join(changed)} changed, and for Count, Handle "
                    'and Timeout "Updates aren\'t supported" (CloudFormation template reference): give the changed '
                    "wait condition a new logical id and a new WaitConditionHandle",
                )
            return done("SUCCESS", previous.physical_id, data=previous.attributes)
        try:
            url, count, timeout = wait_conditions.settings(properties, name)
        except ValueError as error:
            return done("FAILED", "", str(error))
        handle = self.cloud.handles.by_url(url)
        if handle is None:
            return done("FAILED", "", f"{name}: its Handle is not the Ref of a {wait_conditions.HANDLE} of this stack")
        physical = fake_physical(stack.definition, logical_id, resource)[0]
        clock = self._clock
        deadline = clock.now() + timeout
        self._report(name, "wait", f"waiting for {count} SUCCESS signal(s), at most {timeout:g} s")
        while True:
            handle.changed.clear()
            verdict = self.cloud.handles.verdict(handle, count)
            if verdict.status == "SUCCESS":
                return done("SUCCESS", physical, data={"Data": verdict.data})
            remaining = deadline - clock.now()
            if verdict.status == "FAILED" or remaining <= 0:
                return done("FAILED", physical, verdict.reason)
            clock.wait(handle.changed, remaining)

    def _run_task(self, arn: str, task_input: Any, clock: Clock) -> TaskResult:
        """A Task state of an execution: Lambda's Invoke of a Python function of the stack."""
        try:
            function = self._function_by_arn(arn)
        except TemplateError as error:
            return TaskResult(error="Lambda.ResourceNotFoundException", cause=str(error))
        if not isinstance(function, WarmFunction):
            return TaskResult(error="Rehearsal.NotPlayed", cause=f"{arn} is a Node.js function: not played as a task")
        try:
            result, record = function.invoke(task_input, clock.epoch())
        except InvocationError as error:
            for line in error.logs:
                self._report(function.spec.logical_id, "log", line)
            return TaskResult(error=_error_name(error.payload), cause=_compact(error.payload))
        for line in record.logs:
            self._report(function.spec.logical_id, "log", line)
        return TaskResult(output=result)

    def _authorize_states(self, access_key: str, action: str, resource: str) -> str | None:
        """Why IAM would deny the calling function ``action`` on ``resource`` (None: allowed, or not judged)."""
        if not self.enforce_iam:
            return None
        from . import iam

        function_arn = self._access_keys.get(access_key)
        if function_arn is None:
            self._report("", "iam", f"{action} by a caller that is no function of the stack: not judged")
            return None
        with self._lock:
            stack, function = self._located(function_arn, FUNCTION)
            role_arn = str(self._resolver(stack).resolve(stack.resources[function]["Properties"]["Role"]))
            role_stack, role = self._located(role_arn, "AWS::IAM::Role")
            try:
                statements = iam.role_statements(
                    role_stack.definition.template, role, self._resolver(role_stack).resolve
                )
            except iam.PolicyError as error:
                self._report(
                    "", "iam", f"{action} is not judged against {role_stack.qualified(role)}'s policy: {error}"
                )
                return None
        decision = iam.evaluate(statements, iam.Request(action, resource))
        if decision.allowed:
            return None
        role_name = role_arn.rsplit("/", 1)[-1]
        return (
            f"User: arn:{self.stack.partition}:sts::{self.stack.account}:assumed-role/{role_name}/"
            f"{function_arn.rsplit(':', 1)[-1]} is not authorized to perform: {action} on resource: {resource} "
            f"because no identity-based policy allows the {action} action"
        )

    def _report_at(self, who: str, kind: str, message: str) -> None:
        self._report(who.rsplit(":", 1)[-1], kind, message)

    # ----------------------------------------------------------------------------------------------
    # Nested stacks

    def _nested(
        self, outcome: Outcome, stack: _Stack, logical_id: str, resource: dict[str, Any], action: str
    ) -> Response:
        """Create or update the nested stack of an ``AWS::CloudFormation::Stack`` resource: its template's
        resources, with the Parameters the resource gives (resolved in ``stack``); its Outputs become the
        resource's ``Outputs.<name>`` attributes. A nested stack whose Create fails rolls itself back (its
        parent then deletes what is left of it); one whose Update fails is rolled back with its parent."""
        name = stack.qualified(logical_id)
        nested = stack.deployed[logical_id].stack if action == "Update" else None
        try:
            if action == "Update" and nested is None:
                raise TemplateError(f"{name}: Update of resource type is not permitted (it is a nested stack now)")
            properties = self._resolver(stack).resolve(resource.get("Properties", {}))
            given = stack.definition.nested(logical_id, properties, existing=nested.definition if nested else None)
        except TemplateError as error:
            self._report(name, "cloudformation", f"{action.upper()}_IN_PROGRESS")
            return self._nested_failed(outcome, stack, logical_id, action, nested, str(error))
        self._report(name, "cloudformation", f"{action.upper()}_IN_PROGRESS (nested stack {given.name})")
        if nested is None:
            nested = _Stack(given, f"{name}/")
            with self._lock:
                stack.deployed[logical_id] = _Deployed(resource, given.stack_id, {}, given.parameters, nested)
            failed = self._apply(outcome, nested, {k: "Create" for k in nested.resources}, set())
            if failed:  # ROLLBACK of the nested stack itself: its parent then deletes an empty stack
                self._remove(outcome, nested, list(nested.deployed), rollback=True, on_create_rollback=True)
        else:
            with self._lock:
                stack.attempted[logical_id] = given.parameters
            failed = self._update_stack(outcome, nested, given.template, given.parameters)
        try:
            outputs = {} if failed else {f"Outputs.{k}": v for k, v in self._resolver(nested).outputs().items()}
        except TemplateError as error:
            failed = str(error)
        if failed:
            return self._nested_failed(outcome, stack, logical_id, action, nested, failed)
        physical = given.stack_id
        with self._lock:
            stack.deployed[logical_id] = _Deployed(resource, physical, outputs, given.parameters, nested)
        self._nested_result(outcome, stack, logical_id, action, physical, True, False, outputs)
        return Response("SUCCESS", physical, data=outputs)

    def _nested_failed(
        self, outcome: Outcome, stack: _Stack, logical_id: str, action: str, nested: _Stack | None, failure: str
    ) -> Response:
        physical = nested.definition.stack_id if nested is not None else ""
        verb = "created" if action == "Create" else "updated"
        reason = f"Embedded stack {physical or stack.qualified(logical_id)} was not successfully {verb}: {failure}"
        self._nested_result(outcome, stack, logical_id, action, physical, False, False, {}, reason)
        return Response("FAILED", physical, reason=reason)

    def _delete_nested(
        self, outcome: Outcome, stack: _Stack, logical_id: str, deployed: _Deployed, *, rollback: bool, on_create: bool
    ) -> bool:
        """Delete a nested stack: its resources in reverse dependency order, as a stack's."""
        nested = deployed.stack
        assert nested is not None
        phase = "ROLLBACK " if rollback else ""
        name = stack.qualified(logical_id)
        self._report(name, "cloudformation", f"{phase}DELETE_IN_PROGRESS (nested stack {nested.definition.name})")
        ok = self._remove(outcome, nested, list(nested.deployed), rollback=rollback, on_create_rollback=on_create)
        reason = ""
        if not ok:
            with self._lock:
                inner = [r for r in outcome.results if r.status == "FAILED" and r.logical_id.startswith(nested.path)]
            first = f"{inner[0].logical_id}: {inner[0].reason}" if inner else "a resource failed to delete"
            reason = f"Embedded stack {deployed.physical_id} was not successfully deleted: {first}"
        self._nested_result(outcome, stack, logical_id, "Delete", deployed.physical_id, ok, rollback, {}, reason)
        return ok

    def _nested_result(
        self,
        outcome: Outcome,
        stack: _Stack,
        logical_id: str,
        action: str,
        physical_id: str,
        ok: bool,
        rollback: bool,
        data: dict[str, Any],
        reason: str = "",
    ) -> None:
        name = stack.qualified(logical_id)
        status = "SUCCESS" if ok else "FAILED"
        result = ResourceResult(
            name, NESTED_STACK, action, status, physical_id, {k: str(v) for k, v in data.items()}, reason, 0, rollback
        )
        with self._lock:
            outcome.results.append(result)
        phase = "ROLLBACK " if rollback else ""
        word = "COMPLETE" if ok else "FAILED"
        self._report(
            name, "cloudformation", f"{phase}{action.upper()}_{word} {physical_id}" + (f": {reason}" if reason else "")
        )

    # ----------------------------------------------------------------------------------------------
    # Custom resources and their providers

    def _event(
        self, stack: _Stack, request_type: str, logical_id: str, resource: dict[str, Any], properties: Any
    ) -> dict[str, Any]:
        return {
            "RequestType": request_type,
            "ServiceToken": properties.get("ServiceToken") if isinstance(properties, dict) else None,
            "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/rehearsal",
            "StackId": stack.definition.stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "ResourceType": resource.get("Type"),
            "ResourceProperties": properties,
        }

    def _custom(
        self, outcome: Outcome, stack: _Stack, logical_id: str, resource: dict[str, Any], action: str, twice: bool
    ) -> Response | None:
        properties = as_strings(self._resolver(stack).resolve(resource.get("Properties", {})))
        named = (resource.get("Properties") or {}).get("audienceModelArn")
        if action != "Delete" and isinstance(named, str) and self.endpoint.assume_trained_audience_model(named):
            # A model made outside the stack, named by its ARN: the handler checks that it is ACTIVE.
            self._report(logical_id, "assumed", f"audience model {named} (not the stack's) taken as ACTIVE")
        event = self._event(stack, action, logical_id, resource, properties)
        previous = stack.deployed.get(logical_id)
        if action == "Update" and previous is not None:
            event["PhysicalResourceId"] = previous.physical_id
            event["OldResourceProperties"] = previous.properties
            with self._lock:
                stack.attempted[logical_id] = properties
        if twice:
            # A redelivered event: the same request reaches the provider twice, at the same time.
            with ThreadPoolExecutor(max_workers=1) as extra:
                self._clock.register()
                duplicate = extra.submit(self._send_counted, outcome, stack, logical_id, resource, copy.deepcopy(event))
                response = self._send(outcome, stack, logical_id, resource, event, rollback=False)
                with self._clock.idle():
                    duplicate.result()
        else:
            response = self._send(outcome, stack, logical_id, resource, event, rollback=False)
        if response.status == "SUCCESS" or response.physical_id:
            with self._lock:
                if response.status == "SUCCESS" or action == "Create":
                    stack.deployed[logical_id] = _Deployed(
                        resource, response.physical_id, dict(response.data), properties
                    )
        return response

    def _send_counted(
        self, outcome: Outcome, stack: _Stack, logical_id: str, resource: dict[str, Any], event: dict[str, Any]
    ) -> None:
        with self._clock.participant():
            self._send(outcome, stack, logical_id, resource, event, rollback=False, note=" (redelivered)")

    def _located(self, arn: str, resource_type: str) -> tuple[_Stack, str]:
        """The stack (this one or a nested one) and logical id of the deployed resource of this type and ARN."""
        with self._lock:
            for stack in self._root.walk():
                for logical_id, deployed in stack.deployed.items():
                    if deployed.resource.get("Type") == resource_type and arn in (
                        deployed.physical_id,
                        str(deployed.attributes.get("Arn")),
                    ):
                        return stack, logical_id
        raise TemplateError(f"no {resource_type} {arn} in this stack or its nested stacks")

    def _provider(self, service_token: str) -> Provider:
        with self._lock:
            if service_token in self._providers:
                return self._providers[service_token]
            try:
                stack, framework_id = self._located(service_token, FUNCTION)
            except TemplateError:
                raise TemplateError(
                    f"the ServiceToken {service_token} is not a Lambda function of this stack (or its nested stacks)"
                ) from None
            entry = self._function(stack, framework_id)
            if not isinstance(entry, FrameworkFunction) or "USER_ON_EVENT_FUNCTION_ARN" not in entry.spec.environment:
                raise TemplateError(f"{stack.qualified(framework_id)} is not a CDK Provider framework onEvent function")
            provider = Provider(entry, self._function_by_arn, self._state_machine)
            self._providers[service_token] = provider
            return provider

    def _function_by_arn(self, arn: str) -> LambdaFunction:
        with self._lock:
            return self._function(*self._located(arn, FUNCTION))

    def _state_machine(self, arn: str) -> StateMachine:
        with self._lock:
            stack, machine = self._located(arn, "AWS::StepFunctions::StateMachine")
            properties = self._resolver(stack).resolve(stack.resources[machine]["Properties"])
        definition = properties.get("DefinitionString") or json.dumps(properties.get("Definition", {}))
        return StateMachine(arn, str(definition))

    def _authorize_handlers(self, service_token: str) -> None:
        """The endpoint authorizes calls with the policy of the role the provider's Python handlers run with, as
        the template (and so CloudFormation) has it now: wherever the provider is, in this stack or a nested one."""
        from . import iam

        with self._lock:
            stack, framework = self._located(service_token, FUNCTION)
            properties = stack.resources[framework]["Properties"]
            environment = self._resolver(stack).resolve(properties.get("Environment", {}))
            handler_arn = str(environment.get("Variables", {}).get("USER_ON_EVENT_FUNCTION_ARN"))
            stack, handler = self._located(handler_arn, FUNCTION)
            role_arn = str(self._resolver(stack).resolve(stack.resources[handler]["Properties"]["Role"]))
            stack, role = self._located(role_arn, "AWS::IAM::Role")
            try:
                statements = iam.role_statements(stack.definition.template, role, self._resolver(stack).resolve)
            except iam.PolicyError as error:  # e.g. AWS-managed policies: not in the template, nothing to judge by
                self._report("", "iam", f"calls are not authorized against {stack.qualified(role)}'s policy: {error}")
                self.endpoint.enforce_iam(None)
                return
        self.endpoint.enforce_iam(statements, iam.Caller(self.stack.partition, self.stack.region, self.stack.account))

    def _function(self, stack: _Stack, logical_id: str) -> LambdaFunction:
        """The function's warm worker: Python in a worker process, Node.js (the framework) in a Node host."""
        arn = str(stack.deployed[logical_id].attributes.get("Arn"))
        if arn in self.functions:
            return self.functions[arn]
        if arn in self.framework_functions:
            return self.framework_functions[arn]
        resource = stack.resources[logical_id]
        props = self._resolver(stack).resolve(resource.get("Properties", {}))
        code = props.get("Code", {})
        key = str(code.get("S3Key", ""))
        asset = stack.definition.assets.get(key)
        if asset is None or not asset.is_dir():
            raise TemplateError(
                f"the code of {stack.qualified(logical_id)} ({key}) is not an asset directory in "
                f"{stack.definition.cdk_out}"
            )
        logging_config = props.get("LoggingConfig", {}) or {}
        spec = FunctionSpec(
            logical_id=stack.qualified(logical_id),
            name=stack.deployed[logical_id].physical_id,
            handler=str(props["Handler"]),
            asset_dir=asset.resolve(),
            environment={k: str(v) for k, v in (props.get("Environment", {}).get("Variables", {}) or {}).items()},
            timeout_seconds=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            runtime=str(props.get("Runtime", "")),
            log_format=str(logging_config.get("LogFormat", "")),
            application_log_level=str(logging_config.get("ApplicationLogLevel", "")),
        )
        region = stack.definition.region
        # Each function its own access key: the local Step Functions tells callers apart by it (IAM).
        access_key = "AKIAREH" + hashlib.sha256(arn.encode()).hexdigest()[:13].upper()
        self._access_keys[access_key] = arn
        base = {
            **self.endpoint.environment(),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL_SFN": self.cloud.url,
            "AWS_ACCESS_KEY_ID": access_key,
        }
        if spec.runtime.startswith("nodejs"):
            framework = FrameworkFunction(spec, base)
            self.framework_functions[arn] = framework
            return framework
        if self.client_max_attempts is not None:
            base["CLEANROOMSML_MAX_ATTEMPTS"] = str(self.client_max_attempts)
        function = WarmFunction(spec, base)
        self.functions[arn] = function
        return function

    def _send(
        self,
        outcome: Outcome,
        stack: _Stack,
        logical_id: str,
        resource: dict[str, Any],
        event: dict[str, Any],
        *,
        rollback: bool,
        note: str = "",
    ) -> Response:
        name = stack.qualified(logical_id)
        request_type = str(event["RequestType"])
        phase = "ROLLBACK " if rollback else ""
        self._report(name, "cloudformation", f"{phase}{request_type.upper()}_IN_PROGRESS{note}")

        def report(kind: str, message: str) -> None:
            self._report(name, kind, message)

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
            name,
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
        self._report(name, "cloudformation", f"{phase}{request_type.upper()}_{word}{note}{detail}")
        return response

    # ----------------------------------------------------------------------------------------------
    # Deletes

    def _delete_one(
        self,
        outcome: Outcome,
        stack: _Stack,
        logical_id: str,
        deployed: _Deployed,
        *,
        retain: bool,
        rollback: bool,
        on_create: bool = False,
    ) -> bool:
        kind = str(deployed.resource.get("Type", ""))
        if retain:
            name = stack.qualified(logical_id)
            self._report(name, "cloudformation", f"DELETE_SKIPPED (retained) {deployed.physical_id}")
            with self._lock:
                outcome.results.append(
                    ResourceResult(name, kind, "Delete", "SKIPPED", deployed.physical_id, rollback=rollback)
                )
            return True
        if deployed.stack is not None:
            return self._delete_nested(outcome, stack, logical_id, deployed, rollback=rollback, on_create=on_create)
        if not is_custom(kind):
            self._paper_delete(deployed)
            return True
        event = self._event(stack, "Delete", logical_id, deployed.resource, deployed.properties)
        event["PhysicalResourceId"] = deployed.physical_id
        return self._send(outcome, stack, logical_id, deployed.resource, event, rollback=rollback).status == "SUCCESS"

    def _remove(
        self,
        outcome: Outcome,
        stack: _Stack,
        logical_ids: list[str],
        *,
        rollback: bool,
        on_create_rollback: bool,
        source: dict[str, _Deployed] | None = None,
    ) -> bool:
        """Delete these resources, dependents first, independent ones at the same time."""
        state = source if source is not None else stack.deployed
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
            acts = is_custom(str(deployed.resource.get("Type", ""))) or deployed.stack is not None
            if not acts or (retain and deployed.physical_id != CREATE_FAILED_MARKER):
                self._delete_one(outcome, stack, logical_id, deployed, retain=retain, rollback=rollback)
                self._forget(stack, logical_id, source)
                return None
            return lambda: self._delete_one(
                outcome, stack, logical_id, deployed, retain=False, rollback=rollback, on_create=on_create_rollback
            )

        def finish(logical_id: str, future: Future[Any]) -> None:
            try:
                success = bool(future.result())
            except Exception:
                success = False
            results.append(success)
            if success:
                self._forget(stack, logical_id, source)

        # A resource that failed to delete keeps what it depends on (its provider's functions, say): nothing
        # new starts once a delete failed, as CloudFormation leaves the stack DELETE_FAILED with them in place.
        self._in_order(dependents, start, finish, halted=lambda: not all(results), name="cfn-delete")
        return all(results)

    def _forget(self, stack: _Stack, logical_id: str, source: dict[str, _Deployed] | None) -> None:
        with self._lock:
            if source is None or stack.deployed.get(logical_id) is source.get(logical_id):
                stack.deployed.pop(logical_id, None)


FUNCTION = "AWS::Lambda::Function"
#: Paper resources that every change of their properties replaces (a new physical id), as CloudFormation does.
_REPLACED_ON_ANY_CHANGE = frozenset({TRAINING_DATASET})


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
