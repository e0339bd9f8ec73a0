"""The lifecycle of every resource type, written once: what each CloudFormation request does, and when it is complete.

The engine never names a type; ``specs.py`` says what each type's API looks like. The rules it keeps:

* Names are unique per account and no API takes a client token, so a resource is found again by name.
  Every resource the handler creates carries a tag with a digest of the stack, the logical id and the
  request: a resource found by name is adopted only when it carries this request's digest, and never
  when it failed or is being deleted.
* on_event never raises after it may have created a resource (the Provider framework would answer
  CloudFormation with a marker physical id and skip the later Delete). When the create call cannot be
  made now (the quota of resources in progress, throttling or a 5xx that outlasted the client's
  retries, a name still held by a resource being deleted), on_event answers with a *pending* physical
  id that carries the name, and is_complete creates the resource on a later poll.
* is_complete receives the same event on every poll (the framework cannot carry state between polls),
  so each poll finds the resource again from the physical id or the name. A transient error in a poll
  is logged and the next poll tries again, until the resource's own deadline.
* Every Update can be rolled back. Whether a resource must be replaced is decided against the resource
  itself (its request tag), not against an echo of its members: an Update back to the properties the
  resource was created from is a no-op. A failed replacement deletes the resource it started, whatever
  the failure; an Update back also discards what the failed update may have left (found by the failed
  properties' name and digest).
* The handler gives up MAX_TIMEOUT_SECONDS after on_event began, well inside CloudFormation's hour, so
  no resource is created after CloudFormation could have stopped waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import specs
from botocore.exceptions import ClientError
from specs import ResourceSpec

import properties
import service
from properties import Control
from service import Home

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
    #: The create request, typed, with its name; None when a Delete's properties no longer decode.
    desired: dict[str, Any] | None
    control: Control
    #: On an Update: the properties CloudFormation had before (None when they no longer decode).
    previous: dict[str, Any] | None = None
    event: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return str((self.desired or {}).get(self.spec.name, ""))

    @property
    def region(self) -> str:
        return self.home.region_for(self.spec, self.desired)

    def owns(self, physical_id: str) -> bool:
        """Whether ``physical_id`` is the ARN of a resource this request may touch (see ``Home.owns``)."""
        return self.home.owns(self.spec, physical_id, self.region if self.desired is not None else None)

    def digest(self, request: dict[str, Any] | None = None) -> str:
        return properties.request_digest(self.spec, request or self.desired or {}, self.stack_id, self.logical_id)


# --------------------------------------------------------------------------------------------------
# Finding and creating


class Created(NamedTuple):
    arn: str | None  # None: not created yet (try again on a later poll)
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
    try:
        response = service.call(
            spec.service, req.region, spec.create, **properties.tagged_request(spec, desired, req.digest())
        )
    except ClientError as error:
        code = service.error_code(error)
        if code == "ServiceQuotaExceededException":
            if any(quota in service.quota_detail(error) for quota in spec.waited_quotas):
                return Created(None, "the account is at its quota of resources in progress")
            raise ResourceError(f"{spec.create} failed: {service.error_message(error)}") from None
        if code == "ConflictException":
            return _adopt(req)
        raise
    arn = response.get(spec.arn_member)
    return Created(str(arn)) if arn else _adopt(req)  # no ARN in the answer: found by its name


def _adopt(req: Request) -> Created:
    """The resource named like the request, if this very request created it (its request tag says so)."""
    spec, name = req.spec, req.name
    item = service.find_by_name(spec, req.region, name, req.desired)
    if item is None:
        # The name is taken, yet nothing is listed under it: a resource on its way out, or a listing
        # that has not caught up yet. Either way, try again on a later poll.
        return Created(None, f"the name {name!r} is in use by a resource that is not listed (yet)")
    arn = str(item[spec.arn_member])
    if str(item.get(spec.statuses.member, "")) in spec.statuses.deleting:
        return Created(None, f"the {spec.noun} {arn} that had the name {name!r} is being deleted")
    description = service.read(spec, arn)
    if description is None:
        return Created(None, f"the {spec.noun} {arn} that had the name {name!r} is gone")
    status = str(description.get(spec.statuses.member, ""))
    if status in spec.statuses.deleting:
        return Created(None, f"the {spec.noun} {arn} that had the name {name!r} is being deleted")
    if status in spec.statuses.create_failed | spec.statuses.delete_failed:
        raise ResourceError(
            f"{spec.noun} names are unique per account and {name!r} is held by {arn}, which is {status} "
            "(left by an earlier failed attempt?): delete it or give this resource another name"
        )
    if service.request_tag(spec, description) != req.digest():
        raise ResourceError(
            f"{spec.noun} names are unique per account and {name!r} is already used by {arn}, which was not "
            "created from this resource's properties: give this resource another name"
        )
    LOG.info("adopted %s %s, created by an earlier attempt of this request", spec.noun, arn)
    return Created(arn)


def _locate(req: Request, physical_id: str) -> str | None:
    """The ARN a physical id stands for: itself, or for a pending id the resource found by its name."""
    if physical_id.startswith(PENDING_PREFIX):
        item = service.find_by_name(req.spec, req.region, physical_id[len(PENDING_PREFIX) :], req.desired)
        return str(item[req.spec.arn_member]) if item is not None else None
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
    if created.arn is None:
        LOG.info("%s %s is not created yet (%s); is_complete tries again", req.spec.noun, req.name, created.why)
        return {"PhysicalResourceId": _pending(req), STARTED_AT: started, AWAIT: AWAIT_CREATED}
    LOG.info("created %s %s", req.spec.noun, created.arn)
    return {"PhysicalResourceId": created.arn, STARTED_AT: started, AWAIT: AWAIT_CREATED}


def on_update(req: Request) -> dict[str, Any]:
    started = time.time()
    if not _is_ours(req, req.physical_id):
        raise ResourceError(f"physical id {req.physical_id!r} is not an {req.spec.noun} ARN of this stack's account")
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
    arn = _locate(req, physical_id)
    current = service.read(spec, arn) if arn else None
    changed = _replacing_changes(req, current)
    if not changed:
        return {"PhysicalResourceId": physical_id, AWAIT: AWAIT_UPDATED}
    if current is not None and str(current.get(spec.name) or "") == req.name:
        raise ResourceError(
            f"the {spec.noun} must be replaced because {', '.join(changed)} changed, but its name {req.name!r} "
            "did not: names are unique per account and CloudFormation deletes the old resource only after the "
            "new one exists. Change `name` (or omit it to let the library derive one) and deploy again."
        )
    LOG.info("replacing %s %s (changed: %s)", spec.noun, physical_id, ", ".join(changed))
    created = create(req)
    result: dict[str, Any] = {"PhysicalResourceId": created.arn or _pending(req), AWAIT: AWAIT_CREATED}
    if result["PhysicalResourceId"] != physical_id:
        result[REPLACES] = physical_id
    return result


def _replacing_changes(req: Request, current: dict[str, Any] | None) -> list[str]:
    """The members whose change needs a new resource; empty when the resource already is what is asked.

    Decided against the resource itself where it carries the request tag (an Update back during a
    rollback then finds nothing to do), else by comparing the old and new properties.
    """
    spec, desired = req.spec, req.desired or {}
    tag = service.request_tag(spec, current) if current is not None else None
    if tag is not None:
        if tag == req.digest():
            return []
        if req.previous is not None and tag == req.digest(req.previous):
            return specs.replacing_members(spec, req.previous, desired) or ["the request"]
        return ["the request"]
    if req.previous is None:
        return ["the request"]  # old properties that no longer decode: replace, never patch
    return specs.replacing_members(spec, req.previous, desired)


def _discard_failed_attempt(req: Request) -> None:
    """On an Update back: delete what the failed update may have created under the old (failed) properties.

    Only a resource that is not the physical id, that is named as those properties name it, and that
    carries their request digest: in a forward update, the old properties are the physical id's own.
    """
    failed = req.previous
    if failed is not None and failed.get(req.spec.name) != req.name:
        _discard_made_from(req, failed)


def _discard_made_from(req: Request, failed: dict[str, Any]) -> None:
    """Delete the resource named as ``failed`` names it and carrying its request digest, unless it is the
    physical id's own. A best effort: a failure is logged, never raised."""
    spec = req.spec
    if spec.tags is None:
        return
    try:
        region = req.home.region_for(spec, failed)
        item = service.find_by_name(spec, region, str(failed.get(spec.name)), failed)
        if item is None or str(item[spec.arn_member]) == req.physical_id:
            return
        arn = str(item[spec.arn_member])
        description = service.read(spec, arn)
        if description is None or service.request_tag(spec, description) != req.digest(failed):
            return
        if str(description.get(spec.statuses.member)) not in spec.statuses.deleting:
            _try_delete(spec, arn)
        LOG.info("deleted %s %s, left by a failed update", spec.noun, arn)
    except Exception as error:  # a best effort: the update itself goes on
        LOG.warning("could not discard what a failed update left: %s", service.error_message(error))


def on_delete(req: Request) -> dict[str, Any]:
    result: dict[str, Any] = {"PhysicalResourceId": req.physical_id, STARTED_AT: time.time(), AWAIT: AWAIT_DELETED}
    physical_id = req.physical_id
    if not _is_ours(req, physical_id):
        if physical_id.startswith("arn:"):
            raise ResourceError(
                f"physical id {physical_id!r} is not an {req.spec.noun} ARN of this stack's account; "
                "refusing to delete it"
            )
        LOG.info("physical id %s is not a resource (none was created); nothing to delete", physical_id)
        return result
    try:
        arn = _locate(req, physical_id)
        if arn is not None:
            _try_delete(req.spec, arn)
    except _Conflict as conflict:
        LOG.info("%s cannot be deleted yet (%s); is_complete tries again", physical_id, conflict)
    except Exception as error:
        _raise_unless_transient(req, error)
    return result


class _Conflict(Exception):
    """The service refused the delete because a dependent resource still exists."""


def _try_delete(spec: ResourceSpec, arn: str) -> None:
    """Ask for deletion; an already-gone resource is fine. Raises _Conflict while a dependent resource exists."""
    parsed = service.Arn.parse(arn)
    try:
        service.call(spec.service, parsed.region if parsed else None, spec.delete, **{spec.arn_member: arn})
    except ClientError as error:
        code = service.error_code(error)
        if code == "ResourceNotFoundException":
            LOG.info("%s %s is already gone", spec.noun, arn)
            return
        if code == "ConflictException":
            raise _Conflict(service.error_message(error)) from None
        raise
    LOG.info("deletion of %s %s requested", spec.noun, arn)


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
            return _still_waiting(req, f"{spec.noun} {req.name!r} was never created (no free slot or name)")
        created = create(req)
        if created.arn is None:
            return _still_waiting(req, f"{spec.noun} {req.name!r} was never created: {created.why}")
        LOG.info("created %s %s after waiting", spec.noun, created.arn)
        arn = created.arn
    else:
        arn = physical_id
    description = service.read(spec, arn)
    if description is None:
        raise ResourceError(f"{spec.noun} {arn} does not exist (deleted outside CloudFormation?)")
    status = str(description.get(spec.statuses.member))
    LOG.info("%s %s is %s", spec.noun, arn, status)
    creating = status in spec.statuses.creating
    if status in spec.statuses.active or (creating and not req.control.wait_for_completion):
        return {"IsComplete": True, "PhysicalResourceId": arn, "Data": properties.attributes(spec, description)}
    if status in spec.statuses.create_failed:
        details = description.get(spec.statuses.details) or {}
        code = f" ({details['statusCode']})" if details.get("statusCode") else ""
        raise ResourceError(f"{spec.noun} {arn} failed: {status}{code}: {details.get('message') or 'no message'}")
    if creating:
        return _still_waiting(req, f"{spec.noun} {arn} is still {status}")
    raise ResourceError(f"{spec.noun} {arn} is {status}: it is being deleted or failed to delete, it cannot be ready")


def _discard_failed_replacement(req: Request) -> None:
    """A replacement that fails deletes its new resource: CloudFormation keeps the old physical id and never
    learns the new one, so nothing else would delete it."""
    replaced, physical_id = req.event.get(REPLACES), req.physical_id
    if not replaced or physical_id == replaced:
        return
    try:
        arn = _locate(req, physical_id)
        if arn is not None and arn != replaced:
            _try_delete(req.spec, arn)
            LOG.info("deleted %s %s of the failed replacement; %s is unchanged", req.spec.noun, arn, replaced)
    except Exception as error:  # the Update back of the rollback tries again (_discard_failed_attempt)
        LOG.warning("could not delete the new resource of the failed replacement: %s", service.error_message(error))


def _poll_updated(req: Request) -> dict[str, Any]:
    """An Update that needed no new resource: apply the tag changes, then refresh the attributes."""
    spec = req.spec
    arn = _locate(req, req.physical_id)
    description = service.read(spec, arn) if arn else None
    if description is None:
        # Deleted outside CloudFormation (the model owner may delete a job): nothing to update. Failing would
        # fail the rollback's Update back as well; the Status attribute says what happened.
        LOG.warning("%s %s no longer exists; the update changed nothing", spec.noun, req.physical_id)
        missing = {spec.arn_member: arn or "", spec.name: req.name, spec.statuses.member: NOT_FOUND}
        return {"IsComplete": True, "Data": properties.attributes(spec, missing)}
    if spec.tags is not None and arn is not None:
        old_tags = (req.previous or {}).get(spec.tags) or {}
        new_tags = (req.desired or {}).get(spec.tags) or {}
        if old_tags != new_tags:
            _retag(req, arn, old_tags, new_tags)
            description = service.read(spec, arn) or description
    return {"IsComplete": True, "Data": properties.attributes(spec, description)}


def _retag(req: Request, arn: str, old: dict[str, str], new: dict[str, str]) -> None:
    spec, parsed = req.spec, service.Arn.parse(arn)
    region = parsed.region if parsed else None
    removed = sorted(set(old) - set(new))
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if removed:
        service.call(spec.service, region, "UntagResource", resourceArn=arn, tagKeys=removed)
    if changed:
        service.call(spec.service, region, "TagResource", resourceArn=arn, tags=changed)
    LOG.info("tags of %s updated: %d set, %d removed", arn, len(changed), len(removed))


def _poll_deleted(req: Request) -> dict[str, Any]:
    """Complete when the resource is gone (or, without waiting, once its deletion was accepted)."""
    spec, physical_id = req.spec, req.physical_id
    if not _is_ours(req, physical_id):
        return {"IsComplete": True}
    arn = _locate(req, physical_id)
    description = service.read(spec, arn) if arn else None
    if arn is None or description is None:
        LOG.info("%s %s is gone", spec.noun, arn or physical_id)
        return {"IsComplete": True}
    status = str(description.get(spec.statuses.member))
    LOG.info("%s %s is %s", spec.noun, arn, status)
    if status in spec.statuses.delete_failed:
        details = description.get(spec.statuses.details) or {}
        raise ResourceError(f"deleting {spec.noun} {arn} failed: {status}: {details.get('message') or 'no message'}")
    if status not in spec.statuses.deleting:
        try:
            _try_delete(spec, arn)
        except _Conflict as conflict:
            return _blocked(req, arn, str(conflict))
    if not req.control.wait_for_completion:
        return {"IsComplete": True}
    return _still_waiting(req, f"{spec.noun} {arn} is still {status}")


def _blocked(req: Request, arn: str, message: str) -> dict[str, Any]:
    """A delete refused while a dependent resource exists: retried for DELETE_CONFLICT_SECONDS, then a clear error."""
    bound = min(DELETE_CONFLICT_SECONDS, req.control.timeout_seconds)
    elapsed = _elapsed(req)
    if elapsed >= bound:
        raise ResourceError(
            f"{req.spec.noun} {arn} cannot be deleted: the service answered {message} for {elapsed:.0f} s. "
            "A resource that depends on it still exists (for a job: an audience export job in progress); "
            "delete that first, then delete the stack again."
        )
    LOG.info("%s %s cannot be deleted yet (%s); trying again", req.spec.noun, arn, message)
    return {"IsComplete": False}
