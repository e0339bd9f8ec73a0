"""What every resource family of the simulated endpoint shares: the account's resources, error answers,
pages of a listing, timestamps and values scripted by name.

The families (``export_jobs``, ``configured_models``, ``model_associations``, ``audience_models``, and the
generation jobs in ``endpoint``) read and change one ``AccountState``; its operations run with the endpoint's
lock held.
"""

from __future__ import annotations

import base64
import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .audience_models import AudienceModel
    from .configured_models import ConfiguredModel
    from .endpoint import Job
    from .export_jobs import Export
    from .model_associations import Association

__all__ = [
    "CREATING",
    "DELETING",
    "AccountState",
    "ScriptedOutcomes",
    "ServiceError",
    "Tagging",
    "by_name",
    "iso",
    "merge_tags",
    "paginate",
    "quota_error",
]

CREATING = ("CREATE_PENDING", "CREATE_IN_PROGRESS")
DELETING = ("DELETE_PENDING", "DELETE_IN_PROGRESS")

T = TypeVar("T")


class ServiceError(Exception):
    """An error answer: the error shape's name (its status code comes from the model) and the message;
    ``extra`` members go into the JSON body beside ``message`` (``quotaName``, ``reason``...)."""

    def __init__(self, code: str, message: str, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra


@dataclass
class AccountState:
    """One account's resources in one region, as the simulated services keep them, and how reads echo."""

    account: str
    region: str
    partition: str
    echo: str = "full"
    page_size: int = 10
    jobs: dict[str, Job] = field(default_factory=dict)
    exports: list[Export] = field(default_factory=list)  # no ARN: (generation job ARN, name) identifies one
    models: dict[str, ConfiguredModel] = field(default_factory=dict)
    associations: dict[str, Association] = field(default_factory=dict)
    audience_models: dict[str, AudienceModel] = field(default_factory=dict)
    training_datasets: dict[str, str] = field(default_factory=dict)  # ARN -> status, of the datasets known here
    removed_training_datasets: set[str] = field(default_factory=set)
    now: Callable[[], float] = time.time
    """The wall clock of the simulated service (a rehearsal sets its own, simulated, timeline)."""

    @property
    def sparse(self) -> bool:
        return self.echo == "sparse"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def owns(self, arn: str, service: str) -> bool:
        """Whether ``arn`` names a resource of ``service`` in this account and region (it would live here)."""
        parts = arn.split(":", 5)
        return len(parts) == 6 and parts[2] == service and parts[3] == self.region and parts[4] == self.account


def quota_error(quota_name: str, value: int) -> ServiceError:
    return ServiceError(
        "ServiceQuotaExceededException",
        f"You have reached the quota '{quota_name}' ({value})",
        quotaName=quota_name,
        quotaValue=float(value),
    )


def iso(epoch: float) -> str:
    """A timestamp member whose shape says ``timestampFormat: iso8601``."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def by_name(scripted: dict[str, Any], name: str, default: Any) -> Any:
    """What was scripted for a name: an exact name, or the first matching glob pattern (``Stack-Job-*``)."""
    if name in scripted:
        return scripted[name]
    return next((value for pattern, value in scripted.items() if fnmatch.fnmatchcase(name, pattern)), default)


def paginate(items: Sequence[T], params: dict[str, Any], page_size: int) -> tuple[Sequence[T], str | None]:
    """One page of ``items`` for a List request (``nextToken``, ``maxResults``) and the next page's token."""
    start = 0
    if params.get("nextToken"):
        try:
            start = int(base64.urlsafe_b64decode(params["nextToken"].encode()).decode())
        except ValueError:
            raise ServiceError("ValidationException", "The nextToken is not valid") from None
    size = int(params.get("maxResults") or page_size)
    following = start + size
    token = base64.urlsafe_b64encode(str(following).encode()).decode() if following < len(items) else None
    return items[start:following], token


def merge_tags(current: dict[str, str], added: dict[str, str], limit: int) -> dict[str, str]:
    """TagResource: the resource's tags with ``added`` (new values win); more than ``limit`` in all is refused."""
    merged = {**current, **added}
    if len(merged) > limit:
        raise ServiceError("ValidationException", f"A resource can have at most {limit} tags ({len(merged)} given)")
    return merged


class Tagging:
    """TagResource, UntagResource and ListTagsForResource over the resources ``find`` looks up by ARN (it raises
    ResourceNotFoundException for an ARN the service does not hold); each resource has a ``tags`` dict."""

    def __init__(self, find: Callable[[str], Any], max_tags: int) -> None:
        self.find = find
        self.max_tags = max_tags

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"TagResource": self.tag, "UntagResource": self.untag, "ListTagsForResource": self.list_tags}

    def tag(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = self.find(params["resourceArn"])
        resource.tags = merge_tags(resource.tags, params["tags"], self.max_tags)
        return {}

    def untag(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = self.find(params["resourceArn"])
        for key in params["tagKeys"]:
            resource.tags.pop(key, None)
        return {}

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"tags": dict(self.find(params["resourceArn"]).tags)}


class _Scriptable(Protocol):
    status: str
    failure: tuple[str, str] | None
    reads_until_done: int


class ScriptedOutcomes:
    """What a family whose resources end by reads (jobs, audience models) is scripted with, by name or glob
    pattern: the failure a resource ends in, the reads it takes; for resources created later, and for those of
    that name still being created."""

    def __init__(self) -> None:
        self.failures: dict[str, tuple[str, str]] = {}
        self.reads_by_name: dict[str, int] = {}

    def matching(self, pattern: str) -> Sequence[_Scriptable]:
        raise NotImplementedError

    def fail(self, name: str, message: str, status_code: str) -> None:
        self.failures[name] = (status_code, message)
        for resource in self.matching(name):
            if resource.status in CREATING:
                resource.failure = (status_code, message)

    def set_reads(self, name: str, reads: int) -> None:
        self.reads_by_name[name] = reads
        for resource in self.matching(name):
            if resource.status in CREATING:
                resource.reads_until_done = reads
