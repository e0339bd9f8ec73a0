"""What to do for each CloudFormation request, and when a request is complete.

Rules that keep jobs from being duplicated or orphaned:
* A job's name is unique per account and there is no client token, so a job is found again by name:
  a retried Create adopts the job it already started instead of starting a second one.
* on_event never raises after it started a job: the Provider framework would answer CloudFormation
  with a marker physical id and skip the later Delete, orphaning the job.
* When the account already runs its quota of jobs, Create does not fail: it answers with a
  "pending" physical id that carries the name, and is_complete starts the job once a slot is free.
  is_complete receives the same event on every poll, so it finds the job again by name each time.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from botocore.exceptions import ClientError

import properties
import service
from properties import Control, PropertyError

LOG = logging.getLogger("cdk_cleanrooms_ml")

START = "StartAudienceGenerationJob"

#: The physical id of a job that waits for a free slot under the service quota: prefix + job name.
PENDING_PREFIX = "cdk-cleanrooms-ml:pending:"
#: The Provider framework's physical id for a Create that failed in on_event (it skips the Delete).
CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"

#: Keys that on_event adds to the event is_complete receives (the framework passes them through).
STARTED_AT = "StartedAt"
DELETE_ACCEPTED = "DeleteAccepted"
#: What is_complete waits for: a job to become ACTIVE, only fresh attributes, or the job to be gone.
AWAIT = "Await"
AWAIT_JOB, AWAIT_ATTRIBUTES, AWAIT_DELETION = "job", "attributes", "deletion"
#: On a replacing Update: the physical id of the job being replaced.
REPLACES = "Replaces"

#: The handler gives up this long before CloudFormation's one-hour limit so its own message arrives.
CLOUDFORMATION_MARGIN_SECONDS = 60

CREATING = frozenset({"CREATE_PENDING", "CREATE_IN_PROGRESS"})
DELETING = frozenset({"DELETE_PENDING", "DELETE_IN_PROGRESS"})


class JobError(RuntimeError):
    """The request failed; the message is what CloudFormation shows."""


def _permission_hint(operation: str, error: ClientError) -> str:
    text = service.error_message(error)
    if service.error_code(error) == "AccessDeniedException":
        text += f" -- the handler role needs cleanrooms-ml:{operation}" + (
            " (and iam:PassRole on the seed role)" if operation == START else ""
        )
    return text


# --------------------------------------------------------------------------------------------------
# Starting a job, or finding the one a previous attempt started.


def _same_job(job: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether an existing job was started from this request (as far as the service echoes it)."""
    for key in ("configuredAudienceModelArn", "collaborationId", "description", "includeSeedInOutput"):
        if key in job and key in request and job[key] != request[key]:
            return False
    seen, wanted = job.get("seedAudience") or {}, request.get("seedAudience") or {}
    for key in ("roleArn", "dataSource"):
        if key in seen and key in wanted and seen[key] != wanted[key]:
            return False
    return True


def _adopt(request: dict[str, Any]) -> str | None:
    """The ARN of the job named like the request if it was started from the same request."""
    arn = service.find_job_by_name(
        request["name"], request["configuredAudienceModelArn"], request.get("collaborationId")
    )
    if arn is None:
        return None
    job = service.get_job(arn)
    if job is not None and not _same_job(job, request):
        raise JobError(
            f"a job named {request['name']!r} already exists in this account ({arn}) with other properties; "
            "job names are unique per account: give this job another `name`"
        )
    return arn


def start_or_adopt(request: dict[str, Any]) -> str | None:
    """Start the job; None when the account is at its quota of jobs in progress (try again later)."""
    try:
        response = service.client().start_audience_generation_job(**request)
        return str(response["audienceGenerationJobArn"])
    except ClientError as error:
        code = service.error_code(error)
        if code == "ServiceQuotaExceededException":
            return None
        if code == "ConflictException":
            arn = _adopt(request)
            if arn is not None:
                LOG.info("adopted job %s started by an earlier attempt", arn)
                return arn
        raise JobError(f"{START} failed: {_permission_hint(START, error)}") from None


# --------------------------------------------------------------------------------------------------
# on_event


def create(request: dict[str, Any]) -> dict[str, Any]:
    arn = start_or_adopt(request)
    if arn is None:
        LOG.info("quota of jobs in progress reached; job %s waits for a free slot", request["name"])
        return {"PhysicalResourceId": PENDING_PREFIX + request["name"], STARTED_AT: time.time(), AWAIT: AWAIT_JOB}
    LOG.info("started job %s", arn)
    return {"PhysicalResourceId": arn, STARTED_AT: time.time(), AWAIT: AWAIT_JOB}


def update(physical_id: str, home: service.Home, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    if not (home.owns_job_arn(physical_id) or physical_id.startswith(PENDING_PREFIX)):
        raise JobError(f"physical id {physical_id!r} is not an audience generation job ARN of this stack's account")
    changed = properties.replacing_members(old, new)
    if changed and new["name"] == old.get("name") and _job_matches(physical_id, new, changed):
        # CloudFormation's update rollback: the job never changed, so going back to its properties needs no new job.
        LOG.info("job %s already has the requested %s: updated in place", physical_id, ", ".join(changed))
        changed = []
    if changed:
        if new["name"] == old.get("name"):
            raise JobError(
                f"the job must be replaced because {', '.join(changed)} changed, but its name {new['name']!r} "
                "did not: job names are unique per account and CloudFormation deletes the old job only after "
                "the new one exists. Change `name` (or omit it to let the library derive one) and deploy again."
            )
        LOG.info("replacing job %s (changed: %s)", physical_id, ", ".join(changed))
        result = create(new)
        if result["PhysicalResourceId"] != physical_id:
            result[REPLACES] = physical_id
        return result
    arn = _resolve(physical_id, new)
    if old.get("tags") != new.get("tags") and arn is not None:
        _retag(arn, old.get("tags") or {}, new.get("tags") or {})
    return {"PhysicalResourceId": physical_id, STARTED_AT: time.time(), AWAIT: AWAIT_ATTRIBUTES}


def _job_matches(physical_id: str, request: dict[str, Any], members: list[str]) -> bool:
    """Whether the job already has these members' values as the service echoes them (False when unsure)."""
    job = service.get_job(physical_id) if service.looks_like_job_arn(physical_id) else None
    return job is not None and all(job.get(member) == request.get(member) for member in members)


def _retag(arn: str, old: dict[str, str], new: dict[str, str]) -> None:
    removed = sorted(set(old) - set(new))
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    cleanroomsml = service.client()
    try:
        if removed:
            cleanroomsml.untag_resource(resourceArn=arn, tagKeys=removed)
        if changed:
            cleanroomsml.tag_resource(resourceArn=arn, tags=changed)
    except ClientError as error:
        operation = "UntagResource" if removed else "TagResource"
        raise JobError(f"updating the tags of {arn} failed: {_permission_hint(operation, error)}") from None
    LOG.info("tags of %s updated: %d set, %d removed", arn, len(changed), len(removed))


def _resolve(physical_id: str, request: dict[str, Any]) -> str | None:
    if physical_id.startswith(PENDING_PREFIX):
        return service.find_job_by_name(
            physical_id[len(PENDING_PREFIX) :], request["configuredAudienceModelArn"], request.get("collaborationId")
        )
    return physical_id


def delete(physical_id: str, home: service.Home, request: dict[str, Any] | None, control: Control) -> dict[str, Any]:
    result: dict[str, Any] = {"PhysicalResourceId": physical_id, STARTED_AT: time.time(), AWAIT: AWAIT_DELETION}
    if control.retain:
        LOG.info("removal policy RETAIN: job %s is kept", physical_id)
        return result
    if physical_id.startswith(PENDING_PREFIX):
        if request is None:
            raise JobError("cannot look up a pending job without its properties")
        arn = _resolve(physical_id, request)
        if arn is None:
            LOG.info("no job was started for %s; nothing to delete", physical_id)
            return result
    elif physical_id.startswith("arn:"):
        if not home.owns_job_arn(physical_id):
            raise JobError(
                f"physical id {physical_id!r} is not an audience generation job ARN of this stack's account and "
                "region; refusing to delete it"
            )
        arn = physical_id
    else:
        LOG.info("physical id is not a job ARN (no job was started); nothing to delete")
        return result
    result[DELETE_ACCEPTED] = _try_delete(arn)
    return result


def _try_delete(arn: str) -> bool:
    """Ask for deletion; False when the service answers that a dependent resource still exists."""
    try:
        service.client().delete_audience_generation_job(audienceGenerationJobArn=arn)
    except ClientError as error:
        code = service.error_code(error)
        if code == "ResourceNotFoundException":
            LOG.info("job %s is already gone", arn)
            return True
        if code == "ConflictException":
            LOG.info("job %s cannot be deleted yet (ConflictException); will retry", arn)
            return False
        hint = _permission_hint("DeleteAudienceGenerationJob", error)
        raise JobError(f"DeleteAudienceGenerationJob failed for {arn}: {hint}") from None
    LOG.info("deletion of job %s requested", arn)
    return True


# --------------------------------------------------------------------------------------------------
# is_complete


def _deadline_passed(event: dict[str, Any], control: Control) -> tuple[bool, float, int]:
    limit = min(control.timeout_seconds, properties.MAX_TIMEOUT_SECONDS - CLOUDFORMATION_MARGIN_SECONDS)
    try:
        started = float(event.get(STARTED_AT, time.time()))
    except (TypeError, ValueError):
        started = time.time()
    elapsed = time.time() - started
    return elapsed >= limit, elapsed, control.timeout_seconds


def _timed_out(what: str, elapsed: float, timeout: int) -> JobError:
    return JobError(f"timed out after waiting {elapsed:.0f} s (timeout {timeout} s): {what}")


def poll_create(event: dict[str, Any], request: dict[str, Any], control: Control) -> dict[str, Any]:
    """Whether a Create (or a replacing Update) is complete; raises when the job failed or time ran out.

    A replacing Update that fails deletes the new job first: CloudFormation keeps the old physical id
    and would never learn the new job's ARN, so nothing else could delete it.
    """
    try:
        return _poll_create(event, request, control)
    except JobError:
        _discard_failed_replacement(event, request)
        raise


def _discard_failed_replacement(event: dict[str, Any], request: dict[str, Any]) -> None:
    replaced, physical_id = event.get(REPLACES), str(event.get("PhysicalResourceId", ""))
    if not replaced or physical_id == replaced:
        return
    try:
        arn = _resolve(physical_id, request)
        if arn is not None and arn != replaced:
            _try_delete(arn)
            LOG.info("deleted job %s of the failed replacement; job %s is unchanged", arn, replaced)
    except (ClientError, JobError):
        LOG.warning("could not delete job %s of the failed replacement", physical_id)


def _poll_create(event: dict[str, Any], request: dict[str, Any], control: Control) -> dict[str, Any]:
    physical_id = str(event.get("PhysicalResourceId", ""))
    if physical_id.startswith(PENDING_PREFIX):
        # Start first; once an earlier poll started the job, the service answers ConflictException and the
        # job is found by its name. It may check its quota before the name, so a quota answer looks too.
        arn = start_or_adopt(request) or _adopt(request)
        if arn is None:
            late, elapsed, timeout = _deadline_passed(event, control)
            if late:
                raise _timed_out(
                    f"job {request['name']!r} never got a free slot under the service quota of jobs in progress",
                    elapsed,
                    timeout,
                )
            return {"IsComplete": False}
        LOG.info("job %s started after waiting for a free slot", arn)
    else:
        arn = physical_id
    job = service.get_job(arn)
    if job is None:
        raise JobError(f"job {arn} does not exist (deleted outside CloudFormation?)")
    status = str(job.get("status"))
    LOG.info("job %s is %s", arn, status)
    if status == "ACTIVE" or (status in CREATING and not control.wait_for_completion):
        return {"IsComplete": True, "PhysicalResourceId": arn, "Data": properties.attributes(job)}
    if status == "CREATE_FAILED":
        details = job.get("statusDetails") or {}
        reason = details.get("message") or "no message"
        code = f" ({details['statusCode']})" if details.get("statusCode") else ""
        raise JobError(f"audience generation job {arn} failed: CREATE_FAILED{code}: {reason}")
    if status in CREATING:
        late, elapsed, timeout = _deadline_passed(event, control)
        if late:
            raise _timed_out(f"job {arn} is still {status}", elapsed, timeout)
        return {"IsComplete": False}
    raise JobError(f"job {arn} is {status}: it is being deleted or failed to delete, it cannot become ACTIVE")


def poll_delete(event: dict[str, Any], request: dict[str, Any] | None, control: Control) -> dict[str, Any]:
    """Whether a Delete is complete: the job is gone (or, without waiting, its deletion was accepted)."""
    physical_id = str(event.get("PhysicalResourceId", ""))
    if control.retain or not (physical_id.startswith("arn:") or physical_id.startswith(PENDING_PREFIX)):
        return {"IsComplete": True}
    arn = _resolve(physical_id, request or {}) if physical_id.startswith(PENDING_PREFIX) else physical_id
    if arn is None:
        return {"IsComplete": True}
    accepted = str(event.get(DELETE_ACCEPTED, "true")).lower() == "true"
    if accepted and not control.wait_for_completion:
        return {"IsComplete": True}
    job = service.get_job(arn)
    if job is None:
        LOG.info("job %s is gone", arn)
        return {"IsComplete": True}
    status = str(job.get("status"))
    LOG.info("job %s is %s", arn, status)
    if status == "DELETE_FAILED":
        reason = (job.get("statusDetails") or {}).get("message") or "no message"
        raise JobError(f"deleting audience generation job {arn} failed: DELETE_FAILED: {reason}")
    if status not in DELETING and _try_delete(arn) and not control.wait_for_completion:
        return {"IsComplete": True}
    late, elapsed, timeout = _deadline_passed(event, control)
    if late:
        raise _timed_out(
            f"job {arn} is still {status}; if the service answered ConflictException, a resource that depends "
            "on the job (an audience export job, say) must go first",
            elapsed,
            timeout,
        )
    return {"IsComplete": False}


def poll_unchanged(physical_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """An Update that needed no new job: refresh the attributes with one read."""
    arn = _resolve(physical_id, request)
    job = service.get_job(arn) if arn else None
    if job is None:
        raise JobError(f"job {physical_id} does not exist (deleted outside CloudFormation?)")
    return {"IsComplete": True, "Data": properties.attributes(job)}


__all__ = [
    "JobError",
    "PropertyError",
    "create",
    "delete",
    "poll_create",
    "poll_delete",
    "poll_unchanged",
    "update",
]
