"""What each custom resource type of this library is, as data: the engine (``engine.py``) never names a type.

A spec says which API operations create, read, find, update and delete the resource, which member
identifies it and which holds its status, which members change in place (every other member needs a
new resource), whether it carries tags, and which quota errors are waited out. The vocabulary follows
the CloudFormation resource schema (primary identifier, create-only properties, tagging) and botocore's
waiters (status values that mean success, failure or retry).

Standard library only: the handler loads it at cold start and the construct library reads the same
declarations at synth time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class Find(NamedTuple):
    """How a resource is found again by its unique name: a List operation, narrowed by request members."""

    operation: str
    items: str
    filters: tuple[str, ...] = ()


class Statuses(NamedTuple):
    """The status member and what its values mean (botocore waiter acceptors, as sets)."""

    member: str = "status"
    creating: frozenset[str] = frozenset({"CREATE_PENDING", "CREATE_IN_PROGRESS"})
    active: frozenset[str] = frozenset({"ACTIVE"})
    create_failed: frozenset[str] = frozenset({"CREATE_FAILED"})
    deleting: frozenset[str] = frozenset({"DELETE_PENDING", "DELETE_IN_PROGRESS"})
    delete_failed: frozenset[str] = frozenset({"DELETE_FAILED"})
    #: Where the service explains a failure: ``{statusCode, message}``.
    details: str = "statusDetails"


class ResourceSpec(NamedTuple):
    """One resource type: its API, its identity, and how its lifecycle reads."""

    #: The CloudFormation type of the custom resource.
    type_name: str
    #: How messages name one resource of this type.
    noun: str
    #: The boto3 client name.
    service: str
    #: The resource segment of its ARN (``arn:...:<service>:<region>:<account>:<arn_resource>/<id>``).
    arn_resource: str
    #: The operation that creates (or starts) one.
    create: str
    #: The member holding the ARN: in the create response, in reads and in list items.
    arn_member: str
    #: The operations that read and delete one by its ARN (``arn_member`` is their input).
    read: str
    delete: str
    find: Find
    #: Members that change without a new resource (anything else forces a replacement).
    in_place: frozenset[str]
    statuses: Statuses = Statuses()
    #: The request member holding the resource's user tags (None: the type has no tags).
    tags: str | None = "tags"
    #: The member holding the resource's name (unique per account).
    name: str = "name"
    #: ``ServiceQuotaExceededException`` quota names (lower case fragments) that are waited out: a slot frees
    #: up as other resources finish. Any other quota fails at once with the service's message.
    waited_quotas: tuple[str, ...] = ("pending or in progress",)
    #: The request member whose ARN names the region the resource lives in (None: the stack's region).
    region_from: str | None = None
    #: The request member (dotted path) holding a role the service assumes: creating needs iam:PassRole on it.
    passed_role: str | None = None
    #: The GetAtt attributes, each from a member of a read (dotted path); missing members read as "".
    attributes: tuple[tuple[str, str], ...] = ()


AUDIENCE_GENERATION_JOB = ResourceSpec(
    type_name="Custom::CleanRoomsMlAudienceGenerationJob",
    noun="audience generation job",
    service="cleanroomsml",
    arn_resource="audience-generation-job",
    create="StartAudienceGenerationJob",
    arn_member="audienceGenerationJobArn",
    read="GetAudienceGenerationJob",
    delete="DeleteAudienceGenerationJob",
    find=Find(
        "ListAudienceGenerationJobs", "audienceGenerationJobs", ("configuredAudienceModelArn", "collaborationId")
    ),
    in_place=frozenset({"tags"}),
    region_from="configuredAudienceModelArn",
    passed_role="seedAudience.roleArn",
    attributes=(
        ("AudienceGenerationJobArn", "audienceGenerationJobArn"),
        ("Name", "name"),
        ("Status", "status"),
        ("RecallMetric", "metrics.recallMetric"),
        ("RelevanceMetrics", "metrics.relevanceMetrics"),
    ),
)

#: Every type the provider serves, by CloudFormation type.
SPECS: dict[str, ResourceSpec] = {spec.type_name: spec for spec in (AUDIENCE_GENERATION_JOB,)}

# --------------------------------------------------------------------------------------------------
# Limits of the custom-resource protocol, checked at synth by the constructs and at deploy by the handler.

#: CloudFormation gives a custom resource at most one hour (ServiceTimeout's maximum).
CLOUDFORMATION_LIMIT_SECONDS = 3600
#: The handler stops waiting this long before CloudFormation's hour is over: an invocation may take up to
#: the functions' 5-minute timeout, and no resource is created after CloudFormation could have given up.
HANDLER_MARGIN_SECONDS = 300
#: The longest a deploy step waits for a resource (55 minutes).
MAX_TIMEOUT_SECONDS = CLOUDFORMATION_LIMIT_SECONDS - HANDLER_MARGIN_SECONDS
#: Step Functions refuses an execution input over 256 KB; the Provider framework's input is the whole event.
STEP_FUNCTIONS_INPUT_LIMIT = 262_144
#: Room kept in that input for what is not properties: the presigned ResponseURL, ids, on_event's answer.
EVENT_OVERHEAD_BYTES = 8_192
#: The largest properties (JSON) a resource may have: an Update event carries the old and the new ones.
MAX_PROPERTIES_BYTES = (STEP_FUNCTIONS_INPUT_LIMIT - EVENT_OVERHEAD_BYTES) // 2

#: The tag the handler puts on every resource it creates: a digest of the stack, the logical id and the
#: request (without tags). It proves that a resource found by name was started from this very request,
#: whatever the service echoes of it (SQL parameters are not echoed).
REQUEST_TAG = "cdk-cleanrooms-ml:request-digest"
#: Tag keys with this prefix belong to the library; users may not set them.
RESERVED_TAG_PREFIX = "cdk-cleanrooms-ml:"


def replacing_members(spec: ResourceSpec, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The members whose change needs a new resource, sorted."""
    names = (set(old) | set(new)) - spec.in_place
    return sorted(name for name in names if old.get(name) != new.get(name))
