"""Audience export jobs, as the simulated Clean Rooms ML service keeps them.

An export has no ARN, no Get and no Delete (API reference): StartAudienceExportJob answers nothing, and
ListAudienceExportJobs (optionally narrowed to one generation job) is the only way to see one. The
generation job's ARN and the export's name identify it: names are unique per generation job.

* Start needs the generation job: ResourceNotFoundException when it does not exist; ConflictException
  when it exists but is not ACTIVE (see ``ExportJobs.start``). The size must be one of those the job's
  configured audience model offers (its ``audienceSizeConfig`` when the job started: its type and one of
  its bins; ValidationException otherwise). A model this endpoint does not hold (another account's, or a
  job put in place with ``add_job``), or one without ``audienceSizeConfig``, accepts any size.
* Statuses: CREATE_PENDING, CREATE_IN_PROGRESS (``reads_until_active`` listings see it unfinished), then
  ACTIVE with an ``outputLocation`` under the model's output destination (a made-up bucket when the model
  is not on this endpoint), or CREATE_FAILED with ``statusDetails``; one step per ListAudienceExportJobs
  answer that shows it (an export on page 2 moves when page 2 is read).
* Quotas (Clean Rooms ML quotas page): 20 exports pending or in progress per account, 25 active exports per
  generation job; in-flight exports count against the second too, so it can never be exceeded.
* An export lives as long as its generation job: when the job is gone, so are its exports.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .configured_models import output_destination
from .resource_kit import CREATING, AccountState, ServiceError, by_name, iso, paginate, quota_error

if TYPE_CHECKING:
    from .endpoint import Job

__all__ = ["ACTIVE_PER_JOB_QUOTA", "PENDING_EXPORTS_QUOTA", "Export", "ExportJobs"]

#: The quotas' names as the service gives them.
PENDING_EXPORTS_QUOTA = "Audience export jobs pending or in progress"
ACTIVE_PER_JOB_QUOTA = "Active audience export jobs per audience generation job"


@dataclass
class Export:
    """One audience export job."""

    job_arn: str
    name: str
    size: dict[str, Any]
    description: str | None
    created: float
    updated: float
    reads_until_done: int
    status: str = "CREATE_PENDING"
    reads: int = 0
    failure: tuple[str, str] | None = None
    output_location: str | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "audienceGenerationJobArn": self.job_arn,
            "name": self.name,
            "status": self.status,
            "audienceSize": dict(self.size),
            "outputLocation": self.output_location,
        }


def offered_sizes(settings: dict[str, Any] | None) -> tuple[str, list[int]] | None:
    """The (type, bins) a configured model's settings offer, or None when they do not restrict sizes."""
    config = (settings or {}).get("audienceSizeConfig")
    if not config:
        return None
    return str(config["audienceSizeType"]), [int(v) for v in config["audienceSizeBins"]]


class ExportJobs:
    """StartAudienceExportJob and ListAudienceExportJobs on one account, and the exports' scripted faults."""

    def __init__(self, state: AccountState, *, reads_until_active: int, quota: int, active_per_job: int) -> None:
        self.state = state
        self.reads_until_active = reads_until_active
        self.quota = quota
        self.active_per_job = active_per_job
        self.failures: dict[str, tuple[str, str]] = {}
        self.reads_by_name: dict[str, int] = {}

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"StartAudienceExportJob": self.start, "ListAudienceExportJobs": self.list}

    # ----------------------------------------------------------------------------------------------
    # Scripting

    def fail(self, name: str, message: str, status_code: str) -> None:
        self.failures[name] = (status_code, message)
        for export in self._matching(name):
            export.failure = (status_code, message)

    def set_reads(self, name: str, reads: int) -> None:
        self.reads_by_name[name] = reads
        for export in self._matching(name):
            export.reads_until_done = reads

    def _matching(self, pattern: str) -> list[Export]:
        return [e for e in self.state.exports if e.status in CREATING and by_name({pattern: True}, e.name, False)]

    # ----------------------------------------------------------------------------------------------
    # What the generation jobs need to know

    def in_flight(self, job_arn: str) -> list[Export]:
        return [e for e in self.state.exports if e.job_arn == job_arn and e.status in CREATING]

    def forget(self, job_arn: str) -> None:
        """The job is gone: its exports go with it."""
        self.state.exports[:] = [e for e in self.state.exports if e.job_arn != job_arn]

    # ----------------------------------------------------------------------------------------------
    # The operations

    def _model_settings(self, job: Job) -> dict[str, Any] | None:
        """The configured model as the job uses it: as it was when the job started, else as it is now."""
        if job.model_settings is not None:
            return job.model_settings
        model = self.state.models.get(job.model_arn or "")
        return None if model is None else model.settings

    def start(self, params: dict[str, Any]) -> dict[str, Any]:
        """Start an export of an ACTIVE generation job.

        A job that exists but is not ACTIVE (still being created, failed, being deleted) answers
        ConflictException, not ValidationException: the request itself is well formed, it conflicts with the
        job's current state (the service's meaning of 409), and the same request may succeed once the job is
        ACTIVE, which a caller may wait for; a validation error is never worth a retry.
        """
        job_arn, name, size = params["audienceGenerationJobArn"], params["name"], params["audienceSize"]
        job = self.state.jobs.get(job_arn)
        if job is None:
            raise ServiceError("ResourceNotFoundException", f"Audience generation job {job_arn} does not exist")
        offered = offered_sizes(self._model_settings(job))
        if offered is not None and (size["type"] != offered[0] or size["value"] not in offered[1]):
            raise ServiceError(
                "ValidationException",
                f"audienceSize {size['type']} {size['value']} is not one of the sizes configured audience model "
                f"{job.model_arn} offers: {offered[0]} {offered[1]}",
            )
        if job.status != "ACTIVE":
            raise ServiceError(
                "ConflictException",
                f"Audience generation job {job_arn} is {job.status}: only an ACTIVE job can be exported",
            )
        if any(e.job_arn == job_arn and e.name == name for e in self.state.exports):
            raise ServiceError(
                "ConflictException",
                f"An audience export job with name {name} already exists for audience generation job {job_arn}",
            )
        if sum(1 for e in self.state.exports if e.status in CREATING) >= self.quota:
            raise quota_error(PENDING_EXPORTS_QUOTA, self.quota)
        live = [e for e in self.state.exports if e.job_arn == job_arn and e.status in (*CREATING, "ACTIVE")]
        if len(live) >= self.active_per_job:
            raise quota_error(ACTIVE_PER_JOB_QUOTA, self.active_per_job)
        now = time.time()
        self.state.exports.append(
            Export(
                job_arn=job_arn,
                name=name,
                size=copy.deepcopy(size),
                description=params.get("description"),
                created=now,
                updated=now,
                reads_until_done=by_name(self.reads_by_name, name, self.reads_until_active),
                failure=by_name(self.failures, name, None),
            )
        )
        return {}

    def _advance(self, export: Export) -> None:
        """One listing that shows the export: it moves one step along its life."""
        export.reads += 1
        if export.status not in CREATING:
            return
        if export.reads > export.reads_until_done:
            export.status = "CREATE_FAILED" if export.failure else "ACTIVE"
            export.updated = time.time()
            if export.status == "ACTIVE":
                export.output_location = self._output_location(export)
        elif export.reads > 1:
            export.status = "CREATE_IN_PROGRESS"

    def _output_location(self, export: Export) -> str:
        job = self.state.jobs.get(export.job_arn)
        destination = None if job is None else output_destination(self._model_settings(job))
        base = destination or f"s3://cleanrooms-ml-rehearsal-output-{self.state.account}-{self.state.region}"
        job_id = export.job_arn.rsplit("/", 1)[-1]
        return f"{base.rstrip('/')}/{job_id}/{quote(export.name, safe='')}/"

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("audienceGenerationJobArn")
        exports = [e for e in self.state.exports if wanted is None or e.job_arn == wanted]
        page, token = paginate(exports, params, self.state.page_size)
        summaries = []
        for export in page:
            self._advance(export)
            summary: dict[str, Any] = {
                "createTime": iso(export.created),
                "updateTime": iso(export.updated),
                "name": export.name,
                "audienceGenerationJobArn": export.job_arn,
                "audienceSize": dict(export.size),
                "description": None if self.state.sparse else export.description,
                "status": export.status,
                "outputLocation": export.output_location,
            }
            if export.status == "CREATE_FAILED" and export.failure:
                summary["statusDetails"] = {"statusCode": export.failure[0], "message": export.failure[1]}
            summaries.append({k: v for k, v in summary.items() if v is not None})
        out: dict[str, Any] = {"audienceExportJobs": summaries}
        if token:
            out["nextToken"] = token
        return out
