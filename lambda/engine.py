"""The lifecycle of every resource type, written once: what each CloudFormation request does, and when it is complete.

The engine never names a type; ``specs.py`` says what each type's API looks like. The rules it keeps:

* Names are unique (per account, or per parent) and no API takes a client token, so a resource is found
  again by name. A resource found by name is adopted only when this very request created it: it carries
  this request's digest in its request tag (or, for a type without tags, its description echoes every
  member that forces a replacement), and never when it failed or is being deleted.
* on_event never raises after it may have created a resource (the Provider framework would answer
  CloudFormation with a marker physical id and skip the later Delete). When the create call cannot be
  made now (the quota of resources in progress, throttling or a 5xx that outlasted the client's
  retries, a name still held by a resource being deleted), on_event answers with a *pending* physical
  id that carries the name, and is_complete creates the resource on a later poll.
* is_complete receives the same event on every poll (the framework cannot carry state between polls),
  so each poll finds the resource again from the physical id or the name. A transient error in a poll
  is logged and the next poll tries again, until the resource's own deadline.
* Every Update can be rolled back. Whether a resource must be replaced is decided against the resource
  itself (its request tag, or its echo), not against the old properties alone: an Update back to the
  properties the resource was created from needs no new resource. In-place members are set from the new
  properties (PATCH calls, idempotent), so an Update back sets them back. A failed replacement deletes the
  resource it created, whatever the failure; an Update back also discards what the failed update may have
  left (found by the failed properties' name and request).
* The handler gives up MAX_TIMEOUT_SECONDS after on_event began, well inside CloudFormation's hour, so
  no resource is created after CloudFormation could have stopped waiting.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import specs
import watcher
from botocore.exceptions import ClientError
from specs import SELF_ARN, ResourceSpec

import properties
import service
from properties import Control
from service import COMPOUND, Home

LOG = logging.getLogger("cdk_cleanrooms_ml")

#: The physical id of a resource that is not created yet: prefix + its name.
PENDING_PREFIX = "cdk-cleanrooms-ml:pending:"
#: The Provider framework's physical id for a Create that failed in on_event (it skips the Delete).
CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"

#: Keys on_event adds to the event is_complete receives (the framework passes them through).
STARTED_AT = "StartedAt"
AWAIT = "Await"
#: What is_complete waits for: the resource created and ready, an in-place update applied, the resource gone.
AWAIT_CREATED, AWAIT_UPDATED, AWAIT_DELETED = "created", "updated", "deleted"
#: An Update whose decision (in place or replace) is left to is_complete: the service answered a transient error.
AWAIT_UPDATE = "update"
#: On a replacing Update: the physical id being replaced (is_complete discards the new resource if it fails).
REPLACES = "Replaces"

#: How long a delete that the service refuses with ConflictException (a dependent resource exists) is retried.
DELETE_CONFLICT_SECONDS = 600
#: The Status attribute of a resource that no longer exists (deleted outside CloudFormation).
NOT_FOUND = "NOT_FOUND"


class ResourceError(RuntimeError):
    """The request failed; the message is what CloudFormation shows."""


class Request(NamedTuple):
    """One CloudFormation request, decoded: what the engine decides on."""

    spec: ResourceSpec
    request_type: str
    logical_id: str
    stack_id: str
    home: Home
    physical_id: str
    #: The create request (with attachments), typed, with its name; None when a Delete's properties no longer
    #: decode.
    desired: dict[str, Any] | None
    control: Control
    #: On an Update: the properties CloudFormation had before (None when they no longer decode).
    previous: dict[str, Any] | None = None
    event: dict[str, Any] = {}
    #: On an Update: the control properties CloudFormation had before (None when they no longer decode).
    previous_control: Control | None = None

    @property
    def name(self) -> str:
        return str((self.desired or {}).get(self.spec.name, ""))

    @property
    def region(self) -> str:
        return self.home.region_for(self.spec, self.desired)

    def owns(self, physical_id: str) -> bool:
        """Whether ``physical_id`` names a resource this request may touch (see ``Home.owns``)."""
        return self.home.owns(self.spec, physical_id, self.region if self.desired is not None else None)

    def digest(self, request: dict[str, Any] | None = None) -> str:
        return properties.request_digest(self.spec, request or self.desired or {}, self.stack_id, self.logical_id)


# --------------------------------------------------------------------------------------------------
# Finding and creating


class Created(NamedTuple):
    handle: str | None  # the ARN (or compound id); None: not created yet (try again on a later poll)
    why: str = ""


def _hint(spec: ResourceSpec, error: Exception) -> str:
    """The service's message; for AccessDenied, also the action the handler role is missing."""
    text = service.error_message(error)
    operation = getattr(error, "operation_name", None)
    if service.error_code(error) == "AccessDeniedException" and operation:
        text += f" -- the handler role needs {service.ARN_SERVICE.get(spec.service, spec.service)}:{operation}"
        if operation == spec.create and spec.passed_role:
            text += f" (and iam:PassRole on the role in {spec.passed_role})"
    return text


def _handle(spec: ResourceSpec, request: dict[str, Any], description: dict[str, Any]) -> str:
    """How the stack names a resource: its ARN, or ``<parent ARN>|<name>`` for a type without an ARN."""
    if spec.physical_id == "arn":
        return str(description[spec.arn_member])
    return f"{request.get(spec.physical_id)}{COMPOUND}{description.get(spec.described_name)}"


def _create_request(spec: ResourceSpec, request: dict[str, Any], digest: str) -> dict[str, Any]:
    """What the create call takes: the request less its attachments, with the request tag."""
    attachments = {a.member for a in spec.attachments}
    return properties.tagged_request(spec, {k: v for k, v in request.items() if k not in attachments}, digest)


def create(req: Request) -> Created:
    """Create the resource, or adopt the one an earlier attempt of this request created.

    ``Created(None, why)`` when it cannot be done now: a waited quota, a transient error, a name still
    held by a resource on its way out. Raises ResourceError when it cannot be done at all.
    """
    try:
        return _create(req)
    except ResourceError:
        raise
    except Exception as error:
        if service.is_transient(error):
            LOG.warning("%s: %s; trying again later", req.spec.create, service.error_message(error))
            return Created(None, f"the service answered {service.error_message(error)}")
        raise ResourceError(f"{req.spec.create} failed: {_hint(req.spec, error)}") from None


def _create(req: Request) -> Created:
    spec, desired = req.spec, req.desired or {}
    _require_ready(req, desired)
    try:
        response = service.call(spec.service, req.region, spec.create, **_create_request(spec, desired, req.digest()))
    except ClientError as error:
        code = service.error_code(error)
        if code == "ServiceQuotaExceededException":
            if any(quota in service.quota_detail(error) for quota in spec.waited_quotas):
                return Created(None, "the account is at its quota of resources in progress")
            raise ResourceError(f"{spec.create} failed: {service.error_message(error)}") from None
        if code == "ConflictException":
            return _adopt(req)
        raise
    arn = service.dig(response, spec.created_arn) if spec.created_arn else None
    return Created(str(arn)) if arn else _adopt(req, just_created=True)  # no ARN in the answer: found by name


def _adopt(req: Request, just_created: bool = False) -> Created:
    """The resource named like the request, if this very request created it."""
    spec, name = req.spec, req.name
    item = service.find_by_name(spec, req.region, name, req.desired)
    if item is None:
        # The name is taken, yet nothing is listed under it: a resource on its way out, or a listing
        # that has not caught up yet. Either way, try again on a later poll.
        return Created(None, f"the name {name!r} is in use by a resource that is not listed (yet)")
    handle = _handle(spec, req.desired or {}, item)
    status = _status(spec, item)
    if status in spec.statuses.deleting:
        return Created(None, f"the {spec.noun} {handle} that had the name {name!r} is being deleted")
    description = item if spec.read is None else service.describe(spec, handle, req.desired)
    if description is None:
        return Created(None, f"the {spec.noun} {handle} that had the name {name!r} is gone")
    status = _status(spec, description) or status
    if status in spec.statuses.deleting:
        return Created(None, f"the {spec.noun} {handle} that had the name {name!r} is being deleted")
    if status in spec.statuses.create_failed and _made_from(req, description, req.desired or {}):
        # This very request's resource, failed: take it as the physical id so that is_complete reports its
        # failure and the rollback's Delete removes it (an error here would leave it to no stack).
        LOG.warning("%s %s, created by an earlier attempt of this request, is %s", spec.noun, handle, status)
        return Created(handle)
    if status in spec.statuses.create_failed | spec.statuses.delete_failed:
        raise ResourceError(
            f"{spec.noun} names are unique and {name!r} is held by {handle}, which is {status} "
            "(left by an earlier failed attempt?): delete it or give this resource another name"
        )
    if not _made_from(req, description, req.desired or {}):
        raise ResourceError(
            f"{spec.noun} names are unique and {name!r} is already used by {handle}, which was not "
            "created from this resource's properties: give this resource another name"
        )
    if not just_created:
        LOG.info("adopted %s %s, created by an earlier attempt of this request", spec.noun, handle)
    return Created(handle)


def _require_ready(req: Request, request: dict[str, Any]) -> None:
    """The resource the spec ``requires`` (the audience model of a configured one) must be ready: what the service
    does with one that is not is undocumented, so it is never asked. Its errors come back as they are (a transient
    one is tried again on a later poll)."""
    required = req.spec.requires
    if required is None or request.get(required.member) is None:
        return
    arn = str(request[required.member])
    description = service.describe(required.spec, arn)
    if description is None:
        raise ResourceError(
            f"the {required.spec.noun} {arn} ({required.member}) does not exist (deleted, or another account's or "
            f"region's?): create it, or correct {required.member}, and deploy again"
        )
    status = _status(required.spec, description)
    if status not in required.spec.statuses.active:
        raise ResourceError(f"the {required.spec.noun} {arn} is {status}: {required.advice}")


def _status(spec: ResourceSpec, description: dict[str, Any]) -> str:
    return str(description.get(spec.statuses.member, "")) if spec.statuses.member else ""


def _made_from(req: Request, description: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether this resource was created by this stack's resource from ``request`` (its members that force a
    replacement): its request tag says so, or, for a type without tags, it echoes every such member."""
    spec = req.spec
    if spec.tags is not None:
        return service.request_tag(spec, description) == req.digest(request)
    wanted = specs.create_only(spec, request)
    return all(description.get(member) == value for member, value in wanted.items() if member in description)


def _locate(req: Request, physical_id: str) -> str | None:
    """The handle a physical id stands for: itself, or for a pending id the resource found by its name."""
    if physical_id.startswith(PENDING_PREFIX):
        item = service.find_by_name(req.spec, req.region, physical_id[len(PENDING_PREFIX) :], req.desired)
        return _handle(req.spec, req.desired or {}, item) if item is not None else None
    return physical_id if req.owns(physical_id) else None


def _pending(req: Request) -> str:
    return PENDING_PREFIX + req.name


def _is_ours(req: Request, physical_id: str) -> bool:
    return physical_id.startswith(PENDING_PREFIX) or req.owns(physical_id)


def _raise_unless_transient(req: Request, error: Exception) -> None:
    """Re-raise (a ResourceError with the service's message) unless the error is worth another try."""
    if isinstance(error, ResourceError):
        raise error
    if not service.is_transient(error):
        raise ResourceError(_hint(req.spec, error)) from None
    LOG.warning("%s; trying again on a later poll", service.error_message(error))


# --------------------------------------------------------------------------------------------------
# on_event


def on_create(req: Request) -> dict[str, Any]:
    started = time.time()
    created = create(req)
    if created.handle is None:
        LOG.info("%s %s is not created yet (%s); is_complete tries again", req.spec.noun, req.name, created.why)
        return {"PhysicalResourceId": _pending(req), STARTED_AT: started, AWAIT: AWAIT_CREATED}
    LOG.info("created %s %s", req.spec.noun, created.handle)
    return {"PhysicalResourceId": created.handle, STARTED_AT: started, AWAIT: AWAIT_CREATED}


def on_update(req: Request) -> dict[str, Any]:
    started = time.time()
    if not _is_ours(req, req.physical_id):
        raise ResourceError(f"physical id {req.physical_id!r} is not an {req.spec.noun} of this stack's account")
    _discard_failed_attempt(req)
    try:
        decision = _decide_update(req)
    except Exception as error:
        _raise_unless_transient(req, error)
        # The decision needs the service: is_complete makes it on a later poll.
        return {"PhysicalResourceId": req.physical_id, STARTED_AT: started, AWAIT: AWAIT_UPDATE}
    return {**decision, STARTED_AT: started}


def _decide_update(req: Request) -> dict[str, Any]:
    """In place (AWAIT_UPDATED), or a replacement created or pending (AWAIT_CREATED, REPLACES)."""
    spec, physical_id = req.spec, req.physical_id
    handle = _locate(req, physical_id)
    current = service.describe(spec, handle, req.desired) if handle else None
    changed = _replacing_changes(req, current)
    if not changed:
        return {"PhysicalResourceId": physical_id, AWAIT: AWAIT_UPDATED}
    if current is not None and str(current.get(spec.described_name) or "") == req.name:
        raise ResourceError(
            f"the {spec.noun} must be replaced because {', '.join(changed)} changed, but its name {req.name!r} "
            "did not: names are unique and CloudFormation deletes the old resource only after the new one "
            "exists. Change `name` (or omit it to let the library derive one) and deploy again."
        )
    LOG.info("replacing %s %s (changed: %s)", spec.noun, physical_id, ", ".join(changed))
    created = create(req)
    result: dict[str, Any] = {"PhysicalResourceId": created.handle or _pending(req), AWAIT: AWAIT_CREATED}
    if result["PhysicalResourceId"] != physical_id:
        result[REPLACES] = physical_id
    return result


def _replacing_changes(req: Request, current: dict[str, Any] | None) -> list[str]:
    """The members whose change needs a new resource; empty when the resource already is what is asked.

    Decided against the resource itself where it can tell (an Update back during a rollback then finds
    nothing to replace), else by comparing the old and new properties.
    """
    spec, desired = req.spec, req.desired or {}
    if current is not None and spec.tags is None:
        return _changes_seen_in(spec, current, req.previous, desired)
    if current is not None and service.request_tag(spec, current) is not None:
        if _made_from(req, current, desired):
            # Made from this very request (the Update back of a replacement finds nothing to replace). A member it
            # holds that the request leaves out was set outside CloudFormation: no value unsets it in place, and a
            # new resource would need the name this one holds, so it stays (said here) rather than fail the update.
            unset = specs.unset_members(spec, req.previous or {}, desired)
            held = [member for member in unset if current.get(member) is not None]
            if held:
                LOG.warning(
                    "%s %s holds %s, set outside CloudFormation: no value unsets it in place, so it stays",
                    spec.noun,
                    req.physical_id,
                    ", ".join(held),
                )
            return []
        if req.previous is not None and _made_from(req, current, req.previous):
            return specs.replacing_members(spec, req.previous, desired) or ["the request"]
        return ["the request"]
    if req.previous is None:
        return ["the request"]  # old properties that no longer decode: replace, never patch
    return specs.replacing_members(spec, req.previous, desired)


def _changes_seen_in(
    spec: ResourceSpec, current: dict[str, Any], previous: dict[str, Any] | None, desired: dict[str, Any]
) -> list[str]:
    """For a type without tags: the members the resource differs in from ``desired`` and the properties
    changed (a member the service echoes as a default, or omits, differs only when the properties changed it;
    an Update back during a rollback finds the resource as it was and changes nothing)."""
    old = previous or {}
    names = set(specs.create_only(spec, desired)) | set(specs.create_only(spec, old))
    changed = {
        member
        for member in names
        if current.get(member) != desired.get(member) and (previous is None or old.get(member) != desired.get(member))
    }
    unset = {member for member in specs.unset_members(spec, old, desired) if current.get(member) is not None}
    return sorted(changed | unset)


def _discard_failed_attempt(req: Request) -> None:
    """On an Update back: delete what the failed update may have created under the old (failed) properties.

    Only a resource that is not the physical id, that is named as those properties name it, and that was
    made from them: in a forward update, the old properties are the physical id's own.
    """
    failed = req.previous
    if failed is not None and failed.get(req.spec.name) != req.name:
        _discard_made_from(req, failed)


def _discard_made_from(req: Request, failed: dict[str, Any]) -> None:
    """Delete the resource named as ``failed`` names it and made from it, unless it is the physical id's own.
    A best effort: a failure is logged, never raised."""
    spec = req.spec
    if spec.delete is None:  # nothing can delete it (an export)
        return
    try:
        region = req.home.region_for(spec, failed)
        item = service.find_by_name(spec, region, str(failed.get(spec.name)), failed)
        if item is None:
            return
        handle = _handle(spec, failed, item)
        if handle == req.physical_id:
            return
        description = service.describe(spec, handle, failed)
        if description is None or not _made_from(req, description, failed):
            return
        if _status(spec, description) not in spec.statuses.deleting:
            _try_delete(spec, handle)
        LOG.info("deleted %s %s, left by a failed update", spec.noun, handle)
    except Exception as error:  # a best effort: the update itself goes on
        LOG.warning("could not discard what a failed update left: %s", service.error_message(error))


def on_delete(req: Request) -> dict[str, Any]:
    result: dict[str, Any] = {"PhysicalResourceId": req.physical_id, STARTED_AT: time.time(), AWAIT: AWAIT_DELETED}
    physical_id = req.physical_id
    if not _is_ours(req, physical_id):
        if physical_id.startswith("arn:"):
            raise ResourceError(
                f"physical id {physical_id!r} is not an {req.spec.noun} of this stack's account; refusing to delete it"
            )
        LOG.info("physical id %s is not a resource (none was created); nothing to delete", physical_id)
        return result
    try:
        handle = _locate(req, physical_id)
        if handle is not None:
            _try_delete(req.spec, handle)
    except _Conflict as conflict:
        LOG.info("%s cannot be deleted yet (%s); is_complete tries again", physical_id, conflict)
    except Exception as error:
        _raise_unless_transient(req, error)
    return result


class _Conflict(Exception):
    """The service refused the delete because a dependent resource still exists."""


def _try_delete(spec: ResourceSpec, handle: str) -> None:
    """Ask for deletion; an already-gone resource is fine. Raises _Conflict while a dependent resource exists."""
    if spec.delete is None:
        LOG.info("%s %s stays: the API has no call that deletes one", spec.noun, handle)
        return
    try:
        service.call(spec.service, service.region_of(handle), spec.delete, **service.key_params(spec, handle))
    except ClientError as error:
        code = service.error_code(error)
        if code == "ResourceNotFoundException":
            LOG.info("%s %s is already gone", spec.noun, handle)
            return
        if code == "ConflictException":
            raise _Conflict(service.error_message(error)) from None
        raise
    LOG.info("deletion of %s %s requested", spec.noun, handle)


# --------------------------------------------------------------------------------------------------
# is_complete


def _elapsed(req: Request) -> float:
    try:
        started = float(req.event.get(STARTED_AT, time.time()))
    except (TypeError, ValueError):
        started = time.time()
    return max(0.0, time.time() - started)


def _still_waiting(req: Request, what: str) -> dict[str, Any]:
    """Poll again, or fail when the deadline passed."""
    elapsed = _elapsed(req)
    if elapsed >= req.control.timeout_seconds:
        raise ResourceError(
            f"timed out after waiting {elapsed:.0f} s (timeout {req.control.timeout_seconds} s): {what}"
        )
    return {"IsComplete": False}


def poll(req: Request) -> dict[str, Any]:
    awaiting = req.event.get(AWAIT)
    if req.request_type == "Delete" or awaiting == AWAIT_DELETED:
        return _guarded(req, _poll_deleted)
    if awaiting == AWAIT_UPDATED:
        return _guarded(req, _poll_updated)
    if awaiting == AWAIT_UPDATE:
        return _guarded(req, _poll_undecided)
    return _replacement_safe(req, _poll_created)


def _guarded(req: Request, step: Callable[[Request], dict[str, Any]]) -> dict[str, Any]:
    """Run one poll step: a transient error means "poll again" until the deadline; others fail clearly."""
    try:
        return step(req)
    except Exception as error:
        _raise_unless_transient(req, error)
        return _still_waiting(req, f"the service kept answering {service.error_message(error)}")


def _replacement_safe(req: Request, step: Callable[[Request], dict[str, Any]]) -> dict[str, Any]:
    """Any failure of a replacement, whatever raised it, deletes the replacement's new resource."""
    try:
        return _guarded(req, step)
    except BaseException:
        _discard_failed_replacement(req)
        raise


def _poll_undecided(req: Request) -> dict[str, Any]:
    """An Update whose decision on_event could not make (the service answered a transient error).

    The decision is made again on every poll (the framework keeps none), so a replacement started on an
    earlier poll is found again by its name; when that fails (its job failed, say), it is deleted here.
    """
    try:
        decision = _decide_update(req)
    except ResourceError:
        if req.desired is not None:
            _discard_made_from(req, req.desired)
        raise
    if decision[AWAIT] == AWAIT_UPDATED:
        return _poll_updated(req)
    replacement = req._replace(physical_id=decision["PhysicalResourceId"], event={**req.event, **decision})
    return _replacement_safe(replacement, _poll_created)


def _poll_created(req: Request) -> dict[str, Any]:
    spec, physical_id = req.spec, req.physical_id
    if physical_id.startswith(PENDING_PREFIX):
        if _elapsed(req) >= req.control.timeout_seconds:
            return _still_waiting(
                req,
                f"{spec.noun} {req.name!r} was never created: the quota of resources in progress stayed full, or "
                "its name stayed in use",
            )
        created = create(req)
        if created.handle is None:
            return _still_waiting(req, f"{spec.noun} {req.name!r} was never created: {created.why}")
        LOG.info("created %s %s after waiting", spec.noun, created.handle)
        handle = created.handle
    else:
        handle = physical_id
    description = service.describe(spec, handle, req.desired)
    if description is None:
        raise ResourceError(f"{spec.noun} {handle} does not exist (deleted outside CloudFormation?)")
    status = _status(spec, description)
    LOG.info("%s %s is %s", spec.noun, handle, status or "created")
    creating = status in spec.statuses.creating
    if (
        status in spec.statuses.active
        or spec.statuses.member is None
        or (creating and not req.control.wait_for_completion)
    ):
        if not _attached(req, handle, previous=None):
            return _still_waiting(req, f"the {spec.noun}'s attachments changed meanwhile")
        _start_watcher(req, handle)  # a new resource: whoever waits for it beyond this step is told when it is ready
        return {"IsComplete": True, "PhysicalResourceId": handle, "Data": properties.attributes(spec, description)}
    if status in spec.statuses.create_failed:
        details = description.get(spec.statuses.details) or {}
        code = f" ({details['statusCode']})" if details.get("statusCode") else ""
        raise ResourceError(f"{spec.noun} {handle} failed: {status}{code}: {details.get('message') or 'no message'}")
    if creating:
        return _still_waiting(req, f"{spec.noun} {handle} is still {status}")
    raise ResourceError(
        f"{spec.noun} {handle} is {status}: it is being deleted or failed to delete, it cannot be ready"
    )


def _discard_failed_replacement(req: Request) -> None:
    """A replacement that fails deletes its new resource: CloudFormation keeps the old physical id and never
    learns the new one, so nothing else would delete it."""
    replaced, physical_id = req.event.get(REPLACES), req.physical_id
    if not replaced or physical_id == replaced:
        return
    try:
        handle = _locate(req, physical_id)
        if handle is not None and handle != replaced:
            _try_delete(req.spec, handle)
            LOG.info("deleted %s %s of the failed replacement; %s is unchanged", req.spec.noun, handle, replaced)
    except Exception as error:  # the Update back of the rollback tries again (_discard_failed_attempt)
        LOG.warning("could not delete the new resource of the failed replacement: %s", service.error_message(error))


def _poll_updated(req: Request) -> dict[str, Any]:
    """An Update that needed no new resource: apply the in-place changes, then refresh the attributes."""
    spec = req.spec
    handle = _locate(req, req.physical_id)
    description = service.describe(spec, handle, req.desired) if handle else None
    if handle is None or description is None:
        # Deleted outside CloudFormation (the model owner may delete a job): nothing to update. Failing would
        # fail the rollback's Update back as well; the Status attribute says what happened.
        LOG.warning("%s %s no longer exists; the update changed nothing", spec.noun, req.physical_id)
        if handle is not None and _signal_url_changed(req):
            _start_watcher(req, handle)  # it signals the new WaitCondition that the resource is gone
        missing = {spec.arn_member: handle or "", spec.described_name: req.name, spec.statuses.member or "": NOT_FOUND}
        return {"IsComplete": True, "Data": properties.attributes(spec, missing)}
    changed = _update_in_place(req, handle)
    changed |= _retag(req, handle)
    if not _attached(req, handle, previous=req.previous):
        return _still_waiting(req, f"the {spec.noun}'s attachments changed meanwhile")
    if changed:
        description = service.describe(spec, handle, req.desired) or description
    if _signal_url_changed(req):
        _start_watcher(req, handle)  # a new WaitCondition (wait_for_completion turned on) waits for this resource
    return {"IsComplete": True, "Data": properties.attributes(spec, description)}


def _signal_url_changed(req: Request) -> bool:
    """Whether an in-place Update brings a SignalUrl the old properties did not have (a tags-only update does not).
    Old control properties that no longer decode count as changed: a start that is not needed starts nothing."""
    if req.control.signal_url is None:
        return False
    return req.previous_control is None or req.previous_control.signal_url != req.control.signal_url


def _start_watcher(req: Request, handle: str) -> None:
    """Start the watcher that signals ``SignalUrl`` once the resource is ready (the step itself never waits for
    that). Its errors come back as they are: a transient one makes the caller poll again, until the deadline."""
    if req.control.signal_url is None:
        return
    try:
        watcher.start(handle, req.control.signal_url, req.logical_id, req.control.signal_timeout_seconds)
    except watcher.WatcherError as error:
        raise ResourceError(str(error)) from None


def _update_in_place(req: Request, handle: str) -> bool:
    """The ``update`` call with the members whose value changed (the new properties' values, or the reset value
    of a member no longer set)."""
    spec, desired, previous = req.spec, req.desired or {}, req.previous or {}
    if spec.update is None:
        return False
    resets = dict(spec.update.resets)
    params = {
        param: desired[member] if member in desired else resets[member]
        for member, param in spec.update.members
        if desired.get(member) != previous.get(member) and (member in desired or member in resets)
    }
    if not params:
        return False
    if spec.requires is not None and spec.requires.member in params:
        _require_ready(req, desired)
    service.call(
        spec.service, service.region_of(handle), spec.update.operation, **service.key_params(spec, handle), **params
    )
    LOG.info("%s %s updated in place: %s", spec.noun, handle, ", ".join(sorted(params)))
    return True


def _retag(req: Request, handle: str) -> bool:
    spec = req.spec
    if spec.tags is None:
        return False
    old = (req.previous or {}).get(spec.tags) or {}
    new = (req.desired or {}).get(spec.tags) or {}
    removed = sorted(set(old) - set(new))
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    region = service.region_of(handle)
    if removed:
        service.call(spec.service, region, "UntagResource", resourceArn=handle, tagKeys=removed)
    if changed:
        service.call(spec.service, region, "TagResource", resourceArn=handle, tags=changed)
    if removed or changed:
        LOG.info("tags of %s updated: %d set, %d removed", handle, len(changed), len(removed))
    return bool(removed or changed)


def _attached(req: Request, handle: str, previous: dict[str, Any] | None) -> bool:
    """Make each attachment (a resource policy) what the properties say; False when it changed meanwhile (its hash
    no longer matched: another writer), so the next poll reads it again."""
    spec, desired = req.spec, req.desired or {}
    region = service.region_of(handle)
    for attachment in spec.attachments:
        wanted = desired.get(attachment.member)
        if wanted is None:
            if previous is not None and previous.get(attachment.member) is not None:
                try:
                    service.call(spec.service, region, attachment.delete, **{attachment.key: handle})
                except ClientError as error:
                    if service.error_code(error) != "ResourceNotFoundException":
                        raise
                LOG.info("%s of %s deleted", attachment.member, handle)
            continue
        text = str(wanted).replace(SELF_ARN, handle)
        try:
            current = service.call(spec.service, region, attachment.get, **{attachment.key: handle})
        except ClientError as error:
            if service.error_code(error) != "ResourceNotFoundException":
                raise
            current = None
        params: dict[str, Any] = {attachment.key: handle, attachment.member: text}
        if current is not None:
            if _same_json(current.get(attachment.member), text):
                continue
            params[attachment.previous_hash] = current.get(attachment.hash)
        else:
            params[attachment.existence] = "POLICY_MUST_NOT_EXIST"
        try:
            service.call(spec.service, region, attachment.put, **params)
        except ClientError as error:
            if service.error_code(error) == "ConflictException":
                LOG.warning("%s of %s changed meanwhile; reading it again", attachment.member, handle)
                return False
            raise
        LOG.info("%s of %s set", attachment.member, handle)
    return True


def _same_json(a: Any, b: str) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b)) if isinstance(a, str) else False
    except ValueError:
        return bool(a == b)


def _poll_deleted(req: Request) -> dict[str, Any]:
    """Complete when the resource is gone (or, without waiting, once its deletion was accepted)."""
    spec, physical_id = req.spec, req.physical_id
    if not _is_ours(req, physical_id) or spec.delete is None:
        return {"IsComplete": True}
    handle = _locate(req, physical_id)
    description = service.describe(spec, handle, req.desired) if handle else None
    if handle is None or description is None:
        LOG.info("%s %s is gone", spec.noun, handle or physical_id)
        return {"IsComplete": True}
    status = _status(spec, description)
    LOG.info("%s %s is %s", spec.noun, handle, status or "still there")
    if status in spec.statuses.delete_failed:
        details = description.get(spec.statuses.details) or {}
        raise ResourceError(f"deleting {spec.noun} {handle} failed: {status}: {details.get('message') or 'no message'}")
    if status not in spec.statuses.deleting:
        try:
            _try_delete(spec, handle)
        except _Conflict as conflict:
            return _blocked(req, handle, str(conflict))
    if not req.control.wait_for_completion:
        return {"IsComplete": True}
    return _still_waiting(req, f"{spec.noun} {handle} is still {status or 'there'}")


def _blocked(req: Request, handle: str, message: str) -> dict[str, Any]:
    """A delete refused while a dependent resource exists: retried for DELETE_CONFLICT_SECONDS, then a clear error."""
    bound = min(DELETE_CONFLICT_SECONDS, req.control.timeout_seconds)
    elapsed = _elapsed(req)
    if elapsed >= bound:
        raise ResourceError(
            f"{req.spec.noun} {handle} cannot be deleted: the service answered {message} for {elapsed:.0f} s. "
            f"A resource that depends on it still exists ({req.spec.dependents}); delete that first, then delete "
            "the stack again."
        )
    LOG.info("%s %s cannot be deleted yet (%s); trying again", req.spec.noun, handle, message)
    return {"IsComplete": False}
