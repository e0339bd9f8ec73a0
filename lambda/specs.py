"""What each custom resource type of this library is, as data: the engine (``engine.py``) never names a type.

A spec says which API operations create, read, find, update and delete the resource, how its ARN
names it in those calls, which member holds its status and what the values mean, which members
change in place (every other member needs a new resource), whether it carries tags, what else is
attached to it (a resource policy), and which quota errors are waited out. The vocabulary follows the
CloudFormation resource schema (primary identifier, create-only properties, tagging) and botocore's
waiters (status values that mean success, failure or retry). Where an API has a gap (no Get, no Delete,
a create call that answers nothing), the spec says so in one visible line.

Standard library only: the handler loads it at cold start and the construct library reads the same
declarations at synth time.
"""

from __future__ import annotations

from typing import NamedTuple


class Find(NamedTuple):
    """How a resource is found again by its unique name: a List operation, narrowed by request members."""

    operation: str
    #: Where the list items are in each page.
    items: str
    #: Request members passed to the List call as they are (a job's model, an export's generation job).
    filters: tuple[str, ...] = ()


class Statuses(NamedTuple):
    """The status member and what its values mean (botocore waiter acceptors, as sets)."""

    #: None: the resource has no status; it is ready once created.
    member: str | None = "status"
    creating: frozenset[str] = frozenset({"CREATE_PENDING", "CREATE_IN_PROGRESS"})
    active: frozenset[str] = frozenset({"ACTIVE"})
    create_failed: frozenset[str] = frozenset({"CREATE_FAILED"})
    deleting: frozenset[str] = frozenset({"DELETE_PENDING", "DELETE_IN_PROGRESS"})
    delete_failed: frozenset[str] = frozenset({"DELETE_FAILED"})
    #: Where the service explains a failure: ``{statusCode, message}``.
    details: str = "statusDetails"


class Update(NamedTuple):
    """The call that changes members in place (PATCH semantics: only the members given change)."""

    operation: str
    #: Request member -> the Update call's parameter for it.
    members: tuple[tuple[str, str], ...]
    #: Request member -> the value that unsets it in place (the service's documented default); a member set
    #: before and absent now without one here needs a new resource.
    resets: tuple[tuple[str, object], ...] = ()


class Attachment(NamedTuple):
    """Something kept beside the resource through calls of its own: a resource policy, say.

    Its value is a request member of the custom resource (the Put call's own member name), which the
    create call does not take; ``SELF_ARN`` in it stands for the resource's ARN, known only once created.
    """

    member: str
    put: str
    get: str
    delete: str
    #: The parameter of these calls that names the resource (its ARN).
    key: str
    #: The Get/Put answer's hash of the current value, and the Put parameters for a safe concurrent update.
    hash: str
    previous_hash: str
    existence: str


class Requirement(NamedTuple):
    """Another resource that must be ready before this one is created from it (or updated to point at it): the
    request member holding its ARN, and its type (read with that spec's read call; ready: its ``active`` statuses).
    The service's behaviour with a resource that is not ready is undocumented, so it is never relied on."""

    member: str
    spec: ResourceSpec
    #: What the user can do about a resource that is not ready (the end of the message).
    advice: str


#: In an attachment (a resource policy), the ARN of the resource it belongs to.
SELF_ARN = "${cdk-cleanrooms-ml:self-arn}"


class ResourceSpec(NamedTuple):
    """One resource type: its API, its identity, and how its lifecycle reads."""

    #: The CloudFormation type of the custom resource.
    type_name: str
    #: How messages name one resource of this type.
    noun: str
    #: The boto3 client name.
    service: str
    #: The resource part of its ARN (``arn:<p>:<service>:<region>:<account>:<this>``), a regular expression
    #: whose named groups, if any, are the read/update/delete calls' parameters.
    arn_resource: str
    #: The operation that creates (or starts) one.
    create: str
    #: Where the create call's answer holds the ARN (dotted path); None: it answers nothing, and the resource is
    #: found by its name (an audience export job).
    created_arn: str | None
    #: The member holding the ARN in a read's description and in a list item.
    arn_member: str
    #: The operation that reads one (None: none exists; the resource is read through ``find``).
    read: str | None
    #: Where the read's answer holds the description (dotted path; "" for the whole answer).
    described: str
    #: The parameter of read/update/delete/tag calls that takes the ARN (None: the ARN's named groups).
    key: str | None
    #: The operation that deletes one (None: none exists; a Delete makes no call).
    delete: str | None
    find: Find
    #: Members that change without a new resource: tags, and those ``update`` takes.
    in_place: frozenset[str]
    update: Update | None = None
    statuses: Statuses = Statuses()
    #: The request member holding the resource's user tags (None: the type has no tags).
    tags: str | None = "tags"
    #: The request member holding the resource's name (unique per account, or per parent).
    name: str = "name"
    #: The description's member holding the name.
    described_name: str = "name"
    #: ``ServiceQuotaExceededException`` quota names (lower case fragments) that are waited out: a slot frees
    #: up as other resources finish. Any other quota fails at once with the service's message.
    waited_quotas: tuple[str, ...] = ()
    #: The request member whose ARN names the region the resource lives in (None: the stack's region).
    region_from: str | None = None
    #: The request member (dotted path) holding a role the service assumes: creating needs iam:PassRole on it.
    passed_role: str | None = None
    #: The physical id: "arn", or the request member whose value it is joined to with "|" and the name (an
    #: export has no ARN: "<generation job ARN>|<name>").
    physical_id: str = "arn"
    attachments: tuple[Attachment, ...] = ()
    #: What may still depend on it when a delete is refused with ConflictException (for the message).
    dependents: str = "a resource that depends on it"
    #: The GetAtt attributes, each from a member of the description (dotted path); missing members read as "".
    attributes: tuple[tuple[str, str], ...] = ()
    #: Checked before the create call, and before an update that changes the member: see ``Requirement``.
    requires: Requirement | None = None
    #: Whether the resource may carry ``SignalUrl``: once a step completes, a watcher (``watcher.py``) signals
    #: that URL when the resource is ready, however long after the custom resource's hour that is.
    signals_when_ready: bool = False


AUDIENCE_GENERATION_JOB = ResourceSpec(
    type_name="Custom::CleanRoomsMlAudienceGenerationJob",
    noun="audience generation job",
    service="cleanroomsml",
    arn_resource=r"audience-generation-job/[-a-zA-Z0-9_/.]+",
    create="StartAudienceGenerationJob",
    created_arn="audienceGenerationJobArn",
    arn_member="audienceGenerationJobArn",
    read="GetAudienceGenerationJob",
    described="",
    key="audienceGenerationJobArn",
    delete="DeleteAudienceGenerationJob",
    find=Find(
        "ListAudienceGenerationJobs",
        "audienceGenerationJobs",
        filters=("configuredAudienceModelArn", "collaborationId"),
    ),
    in_place=frozenset({"tags"}),
    waited_quotas=("pending or in progress", "pending/in progress"),
    region_from="configuredAudienceModelArn",
    passed_role="seedAudience.roleArn",
    dependents="an audience export job in progress",
    attributes=(
        ("AudienceGenerationJobArn", "audienceGenerationJobArn"),
        ("Name", "name"),
        ("Status", "status"),
        ("RecallMetric", "metrics.recallMetric"),
        ("RelevanceMetrics", "metrics.relevanceMetrics"),
    ),
)

#: StartAudienceExportJob answers nothing and there is no Get and no Delete: an export is found through
#: ListAudienceExportJobs (by its generation job and its unique name), and a Delete makes no call.
AUDIENCE_EXPORT_JOB = ResourceSpec(
    type_name="Custom::CleanRoomsMlAudienceExportJob",
    noun="audience export job",
    service="cleanroomsml",
    arn_resource=r"audience-generation-job/[-a-zA-Z0-9_/.]+",
    create="StartAudienceExportJob",
    created_arn=None,
    arn_member="audienceGenerationJobArn",
    read=None,
    described="",
    key=None,
    delete=None,
    find=Find("ListAudienceExportJobs", "audienceExportJobs", filters=("audienceGenerationJobArn",)),
    in_place=frozenset(),
    statuses=Statuses(deleting=frozenset(), delete_failed=frozenset()),
    tags=None,
    waited_quotas=("pending or in progress", "pending/in progress"),
    region_from="audienceGenerationJobArn",
    physical_id="audienceGenerationJobArn",
    attributes=(
        ("AudienceGenerationJobArn", "audienceGenerationJobArn"),
        ("Name", "name"),
        ("Status", "status"),
        ("OutputLocation", "outputLocation"),
    ),
)

#: There is no update call: every member but the tags needs a new audience model. Training can take far longer
#: than a custom resource may wait (the user guide: "up to 24 hours", "several hours to 2 days"); with
#: WaitForCompletion false the resource is complete once the model is created and training.
AUDIENCE_MODEL = ResourceSpec(
    type_name="Custom::CleanRoomsMlAudienceModel",
    noun="audience model",
    service="cleanroomsml",
    arn_resource=r"audience-model/[-a-zA-Z0-9_/.]+",
    create="CreateAudienceModel",
    created_arn="audienceModelArn",
    arn_member="audienceModelArn",
    read="GetAudienceModel",
    described="",
    key="audienceModelArn",
    delete="DeleteAudienceModel",
    find=Find("ListAudienceModels", "audienceModels"),
    in_place=frozenset({"tags"}),
    # The quotas page names it "Pending/in progress audience models per customer" (2 per Region); the jobs'
    # fragment is kept too, whichever spelling the service's quotaName uses.
    waited_quotas=("pending or in progress", "pending/in progress"),
    dependents="a configured audience model that uses it",
    signals_when_ready=True,
    attributes=(
        ("AudienceModelArn", "audienceModelArn"),
        ("Name", "name"),
        ("Status", "status"),
        ("TrainingDatasetArn", "trainingDatasetArn"),
    ),
)

CONFIGURED_AUDIENCE_MODEL = ResourceSpec(
    type_name="Custom::CleanRoomsMlConfiguredAudienceModel",
    noun="configured audience model",
    service="cleanroomsml",
    arn_resource=r"configured-audience-model/[-a-zA-Z0-9_/.]+",
    create="CreateConfiguredAudienceModel",
    created_arn="configuredAudienceModelArn",
    arn_member="configuredAudienceModelArn",
    read="GetConfiguredAudienceModel",
    described="",
    key="configuredAudienceModelArn",
    delete="DeleteConfiguredAudienceModel",
    find=Find("ListConfiguredAudienceModels", "configuredAudienceModels"),
    in_place=frozenset(
        {
            "tags",
            "outputConfig",
            "audienceModelArn",
            "sharedAudienceMetrics",
            "minMatchingSeedSize",
            "audienceSizeConfig",
            "description",
            "configuredAudienceModelPolicy",
        }
    ),
    update=Update(
        "UpdateConfiguredAudienceModel",
        (
            ("outputConfig", "outputConfig"),
            ("audienceModelArn", "audienceModelArn"),
            ("sharedAudienceMetrics", "sharedAudienceMetrics"),
            ("minMatchingSeedSize", "minMatchingSeedSize"),
            ("audienceSizeConfig", "audienceSizeConfig"),
            ("description", "description"),
        ),
        resets=(("description", ""), ("minMatchingSeedSize", 500)),
    ),
    statuses=Statuses(creating=frozenset(), create_failed=frozenset(), deleting=frozenset(), delete_failed=frozenset()),
    passed_role="outputConfig.roleArn",
    attachments=(
        Attachment(
            member="configuredAudienceModelPolicy",
            put="PutConfiguredAudienceModelPolicy",
            get="GetConfiguredAudienceModelPolicy",
            delete="DeleteConfiguredAudienceModelPolicy",
            key="configuredAudienceModelArn",
            hash="policyHash",
            previous_hash="previousPolicyHash",
            existence="policyExistenceCondition",
        ),
    ),
    dependents="an audience generation job that uses it (a job of another account included)",
    requires=Requirement(
        "audienceModelArn",
        AUDIENCE_MODEL,
        "a configured audience model needs an ACTIVE one (training takes hours to days); deploy again once it is "
        "ACTIVE, or declare the AudienceModel with wait_for_completion=True",
    ),
    attributes=(
        ("ConfiguredAudienceModelArn", "configuredAudienceModelArn"),
        ("Name", "name"),
        ("Status", "status"),
    ),
)

CONFIGURED_AUDIENCE_MODEL_ASSOCIATION = ResourceSpec(
    type_name="Custom::CleanRoomsMlConfiguredAudienceModelAssociation",
    noun="configured audience model association",
    service="cleanrooms",
    arn_resource=(
        r"membership/(?P<membershipIdentifier>[-a-z0-9]+)/configuredaudiencemodelassociation/"
        r"(?P<configuredAudienceModelAssociationIdentifier>[-a-z0-9]+)"
    ),
    create="CreateConfiguredAudienceModelAssociation",
    created_arn="configuredAudienceModelAssociation.arn",
    arn_member="arn",
    read="GetConfiguredAudienceModelAssociation",
    described="configuredAudienceModelAssociation",
    key=None,
    delete="DeleteConfiguredAudienceModelAssociation",
    find=Find(
        "ListConfiguredAudienceModelAssociations",
        "configuredAudienceModelAssociationSummaries",
        filters=("membershipIdentifier",),
    ),
    in_place=frozenset({"tags", "configuredAudienceModelAssociationName", "description"}),
    update=Update(
        "UpdateConfiguredAudienceModelAssociation",
        (("configuredAudienceModelAssociationName", "name"), ("description", "description")),
    ),
    statuses=Statuses(member=None),
    name="configuredAudienceModelAssociationName",
    attributes=(
        ("ConfiguredAudienceModelAssociationArn", "arn"),
        ("ConfiguredAudienceModelAssociationId", "id"),
        ("Name", "name"),
        ("CollaborationId", "collaborationId"),
    ),
)

#: Every type the provider serves, by CloudFormation type.
SPECS: dict[str, ResourceSpec] = {
    spec.type_name: spec
    for spec in (
        AUDIENCE_GENERATION_JOB,
        AUDIENCE_EXPORT_JOB,
        AUDIENCE_MODEL,
        CONFIGURED_AUDIENCE_MODEL,
        CONFIGURED_AUDIENCE_MODEL_ASSOCIATION,
    )
}

# --------------------------------------------------------------------------------------------------
# Limits of the custom-resource protocol, checked at synth by the constructs and at deploy by the handler.

#: CloudFormation gives a custom resource at most one hour (ServiceTimeout's maximum).
CLOUDFORMATION_LIMIT_SECONDS = 3600
#: The handler stops waiting this long before CloudFormation's hour is over: an invocation may take up to
#: the functions' 5-minute timeout, and no resource is created after CloudFormation could have given up.
HANDLER_MARGIN_SECONDS = 300
#: The longest a deploy step waits for a resource (55 minutes).
MAX_TIMEOUT_SECONDS = CLOUDFORMATION_LIMIT_SECONDS - HANDLER_MARGIN_SECONDS
#: An AWS::CloudFormation::WaitCondition waits at most 12 hours (its Timeout's maximum).
WAIT_CONDITION_LIMIT_SECONDS = 43_200
#: Step Functions refuses an execution input over 256 KB; the Provider framework's input is the whole event.
STEP_FUNCTIONS_INPUT_LIMIT = 262_144
#: Room kept in that input for what is not properties: the presigned ResponseURL, ids, on_event's answer.
EVENT_OVERHEAD_BYTES = 8_192
#: The largest properties (JSON) a resource may have: an Update event carries the old and the new ones.
MAX_PROPERTIES_BYTES = (STEP_FUNCTIONS_INPUT_LIMIT - EVENT_OVERHEAD_BYTES) // 2

#: The tag the handler puts on every resource it creates that takes tags: a digest of the stack, the logical
#: id and the members that force a new resource. It proves that a resource found by name was created from
#: this very request, whatever the service echoes of it (SQL parameters are not echoed).
REQUEST_TAG = "cdk-cleanrooms-ml:request-digest"
#: Tag keys with this prefix belong to the library; users may not set them.
RESERVED_TAG_PREFIX = "cdk-cleanrooms-ml:"


def replacing_members(spec: ResourceSpec, old: dict[str, object], new: dict[str, object]) -> list[str]:
    """The members whose change needs a new resource, sorted: any but ``in_place``, and an ``update`` member
    that was set and is now absent (an update can change a member, not unset it)."""
    names = (set(old) | set(new)) - spec.in_place
    changed = {name for name in names if old.get(name) != new.get(name)}
    return sorted(changed | set(unset_members(spec, old, new)))


def unset_members(spec: ResourceSpec, old: dict[str, object], new: dict[str, object]) -> list[str]:
    """The ``update`` members set in ``old`` and absent from ``new`` that no reset value unsets: only a new
    resource can unset them."""
    return sorted(member for member in _unresettable(spec) if old.get(member) is not None and new.get(member) is None)


def _unresettable(spec: ResourceSpec) -> list[str]:
    if spec.update is None:
        return []
    resettable = {member for member, _value in spec.update.resets}
    return [member for member, _param in spec.update.members if member not in resettable]


def create_only(spec: ResourceSpec, request: dict[str, object]) -> dict[str, object]:
    """The members of ``request`` whose change needs a new resource."""
    return {k: v for k, v in request.items() if k not in spec.in_place}


def identity(spec: ResourceSpec, request: dict[str, object]) -> dict[str, object]:
    """What derived names and request tags cover: the create-only members, and whether each ``update`` member
    that only a new resource can unset is set (unsetting it then yields a new name, as a replacement needs)."""
    marks = {f"{member} (set)": True for member in _unresettable(spec) if request.get(member) is not None}
    return {**create_only(spec, request), **marks}
