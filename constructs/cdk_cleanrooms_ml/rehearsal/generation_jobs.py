"""Audience generation jobs, as the simulated Clean Rooms ML service keeps them.

* A job is CREATE_PENDING, then CREATE_IN_PROGRESS, then ACTIVE with metrics (or CREATE_FAILED with
  ``statusDetails``), one step per GetAudienceGenerationJob read of that job (``reads_until_active`` reads see
  it unfinished). A deleted job is DELETE_PENDING, then DELETE_IN_PROGRESS, then gone
  (ResourceNotFoundException) after ``reads_until_deleted`` reads, or DELETE_FAILED.
* Names are unique per account, also while a job is being deleted (ConflictException); at most ``quota`` jobs
  are pending or in progress (ServiceQuotaExceededException with ``quotaName``).
* A job cannot be deleted while one of its exports is pending or in progress (ConflictException); when it is
  gone, its exports go with it.
* A job keeps the settings its configured audience model (when on this endpoint) had when it started: the
  sizes its metrics and exports use, the exports' destination (an update reaches later jobs only, API
  reference); with the model's ``childResourceTagOnCreatePolicy: FROM_PARENT_RESOURCE`` it starts with the
  model's tags, the request's overriding them.
* Reads echo as the service does: ``includeSeedInOutput: false`` filled in; ``echo="sparse"`` leaves out
  description, includeSeedInOutput, the SQL parameters and compute, and tags.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .configured_models import ConfiguredModel, ConfiguredModels
from .cross_account import ModelOwners
from .export_jobs import ExportJobs, offered_sizes
from .resource_kit import (
    CREATING,
    DELETING,
    AccountState,
    ScriptedOutcomes,
    ServiceError,
    by_name,
    iso,
    paginate,
    quota_error,
)

__all__ = ["PENDING_QUOTA", "GenerationJobs", "Job", "job_metrics"]

#: The quota a pending-or-in-progress job counts against (the name the service gives it).
PENDING_QUOTA = "Audience generation jobs pending or in progress"


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
    #: The configured audience model's settings when the job started (None: the model is not on this endpoint).
    model_settings: dict[str, Any] | None = None

    @property
    def model_arn(self) -> str | None:
        arn = self.request.get("configuredAudienceModelArn")
        return None if arn is None else str(arn)

    def snapshot(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "name": self.name,
            "status": self.status,
            "tags": dict(self.tags),
            "configuredAudienceModelArn": self.model_arn,
        }


def job_metrics(name: str, sizes: tuple[str, list[int]] | None = None) -> dict[str, Any]:
    """Deterministic metrics per job name, within the model's ranges (score 0-10, recall 0-1), for the sizes
    the configured audience model offers (10,000, 50,000 and 100,000 users when it is not known)."""
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    recall = round(0.5 + (seed % 4000) / 10000, 4)
    size_type, values = sizes or ("ABSOLUTE", [10_000, 50_000, 100_000])
    return {
        "relevanceMetrics": [
            {"audienceSize": {"type": size_type, "value": size}, "score": round(1.0 + ((seed >> i) % 800) / 100, 2)}
            for i, size in enumerate(values)
        ],
        "recallMetric": recall,
    }


class GenerationJobs(ScriptedOutcomes):
    """StartAudienceGenerationJob, Get..., Delete..., List... on one account, and the jobs' scripted faults
    (by job name or glob pattern, for jobs started now or later)."""

    def __init__(
        self,
        state: AccountState,
        exports: ExportJobs,
        models: ConfiguredModels,
        conflicts_by_name: dict[str, int],
        *,
        reads_until_active: int,
        reads_until_deleted: int,
        quota: int,
    ) -> None:
        self.state = state
        self.exports = exports
        self.models = models
        self.conflicts_by_name = conflicts_by_name  # block_delete's, shared with the configured models
        self.reads_until_active = reads_until_active
        self.reads_until_deleted = reads_until_deleted
        self.quota = quota
        super().__init__()
        self.delete_failures: dict[str, str] = {}
        #: Other accounts' endpoints whose configured models jobs here may use (``cross_account``).
        self.owners = ModelOwners(state.account, state.partition)

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "StartAudienceGenerationJob": self.start,
            "GetAudienceGenerationJob": self.get,
            "DeleteAudienceGenerationJob": self.delete,
            "ListAudienceGenerationJobs": self.list,
        }

    def matching(self, pattern: str) -> list[Job]:
        return [job for job in self.state.jobs.values() if by_name({pattern: True}, job.name, False)]

    # ----------------------------------------------------------------------------------------------
    # Scripting (fail and set_reads: ScriptedOutcomes)

    def fail_delete(self, name: str, message: str) -> None:
        self.delete_failures[name] = message
        for job in self.matching(name):
            job.delete_failure = message

    # ----------------------------------------------------------------------------------------------
    # The operations

    def add(self, request: dict[str, Any], foreign_model: ConfiguredModel | None = None) -> Job:
        name = str(request["name"])
        now = time.time()
        model = self.state.models.get(str(request.get("configuredAudienceModelArn"))) or foreign_model
        job = Job(
            arn=self.state.arn("cleanrooms-ml", f"audience-generation-job/{uuid.uuid4()}"),
            name=name,
            request=json.loads(json.dumps(request)),
            created=now,
            updated=now,
            reads_until_done=by_name(self.reads_by_name, name, self.reads_until_active),
            failure=by_name(self.failures, name, None),
            tags=self.models.child_tags(request.get("configuredAudienceModelArn"), request.get("tags") or {}),
            conflicts_left=by_name(self.conflicts_by_name, name, 0),
            delete_failure=by_name(self.delete_failures, name, None),
            model_settings=None if model is None else json.loads(json.dumps(model.settings)),
        )
        self.state.jobs[job.arn] = job
        return job

    def forget(self, job: Job) -> None:
        del self.state.jobs[job.arn]
        self.exports.forget(job.arn)

    def start(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        if any(job.name == name for job in self.state.jobs.values()):
            raise ServiceError(
                "ConflictException", f"An audience generation job with name {name} already exists in this account"
            )
        busy = sum(1 for job in self.state.jobs.values() if job.status in CREATING)
        if busy >= self.quota:
            raise quota_error(PENDING_QUOTA, self.quota)
        foreign_model = self.owners.model_for_start(str(params["configuredAudienceModelArn"]))
        return {"audienceGenerationJobArn": self.add(params, foreign_model).arn}

    def find(self, arn: str) -> Job:
        job = self.state.jobs.get(arn)
        if job is None:
            raise ServiceError("ResourceNotFoundException", f"Audience generation job {arn} does not exist")
        return job

    def _advance(self, job: Job) -> None:
        """One read of the job: it moves one step along its life."""
        job.reads += 1
        if job.status in CREATING:
            if job.reads > job.reads_until_done:
                job.status = "CREATE_FAILED" if job.failure else "ACTIVE"
                job.metrics = None if job.failure else job_metrics(job.name, offered_sizes(job.model_settings))
                job.updated = time.time()
            elif job.reads > 1:
                job.status = "CREATE_IN_PROGRESS"
        elif job.status in DELETING:
            if job.reads > self.reads_until_deleted and job.delete_failure is not None:
                job.status, job.updated = "DELETE_FAILED", time.time()
            elif job.reads > self.reads_until_deleted:
                self.forget(job)
                raise ServiceError("ResourceNotFoundException", f"Audience generation job {job.arn} does not exist")
            elif job.reads > 1:
                job.status = "DELETE_IN_PROGRESS"

    def _describe(self, job: Job) -> dict[str, Any]:
        request = job.request
        seed = dict(request.get("seedAudience") or {})
        if self.state.sparse:
            seed = {k: v for k, v in seed.items() if k in ("roleArn", "dataSource")}
        out: dict[str, Any] = {
            "createTime": iso(job.created),
            "updateTime": iso(job.updated),
            "audienceGenerationJobArn": job.arn,
            "name": job.name,
            "status": job.status,
            "configuredAudienceModelArn": request.get("configuredAudienceModelArn"),
            "seedAudience": seed,
            "includeSeedInOutput": bool(request.get("includeSeedInOutput", False)),
            "startedBy": self.state.account,
            "tags": dict(job.tags),
        }
        for key in ("description", "collaborationId"):
            if request.get(key) is not None:
                out[key] = request[key]
        if self.state.sparse:
            for key in ("description", "includeSeedInOutput", "tags"):
                out.pop(key, None)
        if job.status == "CREATE_FAILED" and job.failure:
            out["statusDetails"] = {"statusCode": job.failure[0], "message": job.failure[1]}
        if job.status == "DELETE_FAILED" and job.delete_failure:
            out["statusDetails"] = {"message": job.delete_failure}
        if job.metrics is not None:
            out["metrics"] = job.metrics
        return {k: v for k, v in out.items() if v is not None}

    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.find(params["audienceGenerationJobArn"])
        self._advance(job)
        return self._describe(job)

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.find(params["audienceGenerationJobArn"])
        if job.conflicts_left > 0:
            job.conflicts_left -= 1
            raise ServiceError(
                "ConflictException",
                f"Audience generation job {job.arn} cannot be deleted: another resource depends on this resource",
            )
        exporting = self.exports.in_flight(job.arn)
        if exporting:
            raise ServiceError(
                "ConflictException",
                f"Audience generation job {job.arn} cannot be deleted: another resource depends on this resource "
                f"(audience export jobs pending or in progress: {', '.join(e.name for e in exporting)})",
            )
        if job.status not in DELETING:
            job.status, job.reads, job.updated = "DELETE_PENDING", 0, time.time()
        return {}

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        jobs = [
            j
            for j in self.state.jobs.values()
            if all(
                params.get(key) is None or j.request.get(key) == params[key]
                for key in ("configuredAudienceModelArn", "collaborationId")
            )
        ]
        page, token = paginate(jobs, params, self.state.page_size)
        out: dict[str, Any] = {
            "audienceGenerationJobs": [
                {
                    k: v
                    for k, v in {
                        "createTime": iso(j.created),
                        "updateTime": iso(j.updated),
                        "audienceGenerationJobArn": j.arn,
                        "name": j.name,
                        "description": j.request.get("description"),
                        "status": j.status,
                        "configuredAudienceModelArn": j.request.get("configuredAudienceModelArn"),
                        "collaborationId": j.request.get("collaborationId"),
                        "startedBy": self.state.account,
                    }.items()
                    if v is not None
                }
                for j in page
            ]
        }
        if token:
            out["nextToken"] = token
        return out
