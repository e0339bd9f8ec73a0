"""``AudienceGenerationJob``: one AWS Clean Rooms ML audience generation job as one CloudFormation resource."""

from __future__ import annotations

import functools
from typing import Any, Protocol, runtime_checkable

import jsii
from aws_cdk import (
    CfnResource,
    Duration,
    ITaggableV2,
    RemovalPolicy,
    Stack,
    TagManager,
    TagType,
    region_info,
)
from aws_cdk import aws_iam as iam

from constructs import Construct, IValidation

from . import _resource, validation
from .provider import DEFAULT_POLL_INTERVAL, TOTAL_TIMEOUT, AudienceGenerationProvider
from .seed_audience import SeedAudience
from .service_model import specs, start_request_shape
from .validation import Issue, ValidationError

_SPEC = specs().AUDIENCE_GENERATION_JOB
#: The CloudFormation type of every job resource.
RESOURCE_TYPE: str = _SPEC.type_name

_TOTAL_TIMEOUT_SECONDS = int(TOTAL_TIMEOUT.to_seconds())
_DEFAULT_POLL_SECONDS = int(DEFAULT_POLL_INTERVAL.to_seconds())
#: A generated name is ``<prefix>-<10-character digest>``.
_DIGEST_LENGTH = 10


def max_name_length() -> int:
    """The service's limit on job names (NameString's max in the shipped model)."""
    return int(start_request_shape().members["name"].metadata["max"])


@functools.cache
def _partition_of(region: str) -> str | None:
    partition = region_info.RegionInfo.get(region).partition
    return str(partition) if partition is not None else None


@runtime_checkable
class IAudienceGenerationJob(Protocol):
    """An audience generation job: one this app creates (``AudienceGenerationJob``) or one imported by ARN
    (``AudienceGenerationJob.from_audience_generation_job_arn``)."""

    @property
    def node(self) -> Any: ...

    @property
    def audience_generation_job_arn(self) -> str:
        """The job's ARN."""
        ...

    @property
    def waits_for_completion(self) -> bool:
        """Whether the job is ACTIVE once its deploy step ends (always True for an imported job)."""
        ...

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read the job (GetAudienceGenerationJob)."""
        ...

    def grant_start_export(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start and list audience export jobs of this job."""
        ...


class _JobGrants:
    """``grant_read`` and ``grant_start_export`` on ``audience_generation_job_arn``."""

    @property
    def audience_generation_job_arn(self) -> str:
        raise NotImplementedError

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read the job: ``cleanrooms-ml:GetAudienceGenerationJob`` on its ARN."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["cleanrooms-ml:GetAudienceGenerationJob"],
            resource_arns=[self.audience_generation_job_arn],
        )

    def grant_start_export(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` export the job's audience: ``cleanrooms-ml:StartAudienceExportJob`` and
        ``ListAudienceExportJobs`` on its ARN (the resource both actions take)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["cleanrooms-ml:StartAudienceExportJob", "cleanrooms-ml:ListAudienceExportJobs"],
            resource_arns=[self.audience_generation_job_arn],
        )


class _ImportedAudienceGenerationJob(_JobGrants, Construct):
    def __init__(self, scope: Construct, id: str, arn: str) -> None:
        super().__init__(scope, id)
        self._arn = arn

    @property
    def audience_generation_job_arn(self) -> str:
        return self._arn

    @property
    def waits_for_completion(self) -> bool:
        return True


@jsii.implements(ITaggableV2)
class AudienceGenerationJob(_JobGrants, Construct):
    """An AWS Clean Rooms ML audience generation job, started by ``cdk deploy`` and deleted with the stack.

    One CloudFormation resource of type ``Custom::CleanRoomsMlAudienceGenerationJob`` whose properties
    are the StartAudienceGenerationJob request; every job of a stack shares one provider. Stack-level
    tags (``Tags.of(...)``) reach the job's ``tags`` like they reach native resources.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        configured_audience_model_arn: str,
        seed_audience: SeedAudience,
        name: str | None = None,
        include_seed_in_output: bool | None = None,
        collaboration_id: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        wait_for_completion: bool = True,
        timeout: Duration | None = None,
        removal_policy: RemovalPolicy | None = None,
        poll_interval: Duration | None = None,
    ) -> None:
        """
        :param configured_audience_model_arn: the configured audience model to generate from
            (``configuredAudienceModelArn``). Required. The job is started in the model's region.
        :param seed_audience: the seed audience and the role that reads it (``seedAudience``). Required.
        :param name: the job's name (``name``), unique per account, 1-63 characters. Default: made at
            deploy time from the construct path and a digest of the stack, the logical id and the
            resolved request (``<path>-<digest>``), so a job that must be replaced always gets a new
            name, even when what changed is a deploy-time token. An explicit name must be changed
            whenever the job is replaced (the deploy fails with a message saying so otherwise).
        :param include_seed_in_output: whether the seed is part of the generated audience
            (``includeSeedInOutput``). Default: not sent (the service's default, false).
        :param collaboration_id: the collaboration that contains the job (``collaborationId``),
            needed when the configured audience model belongs to another account. Default: not sent.
        :param description: the job's description (``description``). Default: not sent.
        :param tags: tags of the job (``tags``), merged with the tags applied through ``Tags.of``.
            Default: none. At most 49 (the service allows 50; the library adds one, its request digest);
            keys starting with ``aws:`` or ``cdk-cleanrooms-ml:`` are reserved.
        :param wait_for_completion: whether the deploy step waits until the job is ACTIVE (and, on
            delete, until it is gone). Default: True.
        :param timeout: how long the deploy step waits. Default and maximum: 55 minutes
            (CloudFormation gives a custom resource one hour; the handler keeps 5 minutes of it for its
            own calls); at least the poll interval.
        :param removal_policy: DESTROY deletes the job with the stack (or when it is replaced);
            RETAIN keeps it then, but a job whose own create is rolled back is deleted
            (``DeletionPolicy: RetainExceptOnCreate``), so a failed first deploy can be repeated.
            Default: DESTROY.
        :param poll_interval: how often the job's status is read while waiting. Default: the stack
            provider's (30 seconds). Jobs with different intervals use different providers.
        """
        stack = _resource.stack_of(scope)
        request, issues = _request(
            configured_audience_model_arn=configured_audience_model_arn,
            seed_audience=seed_audience,
            name=name,
            include_seed_in_output=include_seed_in_output,
            collaboration_id=collaboration_id,
            description=description,
            tags=tags,
        )
        poll_seconds, poll_issues = _poll_seconds(poll_interval)
        control, timeout_seconds, control_issues = _resource.control_properties(
            wait_for_completion, timeout, poll_seconds
        )
        issues += poll_issues + control_issues + _resource.removal_policy_issues(removal_policy)
        issues += _stack_issues(stack, request) + _resource.size_issues(request)
        if issues:
            scope_path = scope.node.path  # only on failure: each jsii call is a round trip to node
            raise ValidationError(f"{scope_path}/{id}" if scope_path else id, issues)  # no half-built tree

        super().__init__(scope, id)
        try:
            path = _resource.shared(stack).child_path(scope, id)
            if name is None:
                control["NamePrefix"] = _resource.name_prefix(path, max_name_length() - _DIGEST_LENGTH - 1)
            timeout_property = _resource.service_timeout(timeout_seconds, poll_seconds)
            if timeout_property is not None:
                control["ServiceTimeout"] = timeout_property
            self._waits = bool(wait_for_completion)
            self._build(stack, request, control, seed_audience, removal_policy, poll_interval)
        except Exception:
            scope.node.try_remove_child(id)
            raise

    def _build(
        self,
        stack: Stack,
        request: dict[str, Any],
        control: dict[str, str],
        seed_audience: SeedAudience,
        removal_policy: RemovalPolicy | None,
        poll_interval: Duration | None,
    ) -> None:
        # A seed role the library makes is made now, in this job's stack (never silently in another one).
        seed = seed_audience.bound(self)
        request["seedAudience"]["roleArn"] = seed.role_arn
        user_tags = request.pop("tags", None) or {}
        self._tags = TagManager(TagType.MAP, RESOURCE_TYPE, user_tags)

        self.provider, service_token = _provider_of(self, stack, poll_interval)
        """The provider that runs this job's lifecycle (shared with the stack's other jobs)."""
        self.provider.allow_job(
            request["configuredAudienceModelArn"], request["seedAudience"]["roleArn"], request.get("collaborationId")
        )

        self.resource = CfnResource(
            self,
            "Resource",
            type=RESOURCE_TYPE,
            properties={
                "ServiceToken": service_token,
                **request,
                "tags": self._tags.rendered_tags,  # resolved at synth, after Tags.of aspects ran
                **control,
            },
        )
        """The ``CfnResource`` of type ``RESOURCE_TYPE`` (escape hatch)."""
        _resource.apply_removal_policy(self.resource, removal_policy)
        _tag_validation(stack).jobs.append(self)  # last: a job whose build failed is not in the tree
        self._explicit_name = request.get("name")

    @staticmethod
    def from_audience_generation_job_arn(scope: Construct, id: str, arn: str) -> IAudienceGenerationJob:
        """An existing job by its ARN.

        :param arn: ``arn:<partition>:cleanrooms-ml:<region>:<account>:audience-generation-job/<id>`` (or a token).
        """
        parts = validation.arn_parts(arn)
        if not validation.is_token(arn) and (
            parts is None or parts["service"] != "cleanrooms-ml" or ":audience-generation-job/" not in arn
        ):
            scope_path = scope.node.path
            raise ValidationError(
                f"{scope_path}/{id}" if scope_path else id,
                [Issue("arn", arn, "must be an audience generation job ARN")],
            )
        return _ImportedAudienceGenerationJob(scope, id, arn)

    @property
    def name(self) -> str:
        """The job's name (API field ``name``): the one given, or a token for the name the handler makes at deploy
        time (GetAtt ``Name``: ``<construct path>-<digest>``, at most 63 characters)."""
        return self._explicit_name if self._explicit_name is not None else self._name_attribute

    @functools.cached_property
    def _name_attribute(self) -> str:
        return self.resource.get_att("Name").to_string()

    @property
    def waits_for_completion(self) -> bool:
        """Whether the job is ACTIVE when its deploy step ends (``wait_for_completion``)."""
        return self._waits

    # The attributes are made on first use: most jobs never read them, and each costs two jsii calls.
    @functools.cached_property
    def audience_generation_job_arn(self) -> str:
        """The job's ARN (GetAtt ``AudienceGenerationJobArn``; the API's ``audienceGenerationJobArn``)."""
        return self.resource.get_att("AudienceGenerationJobArn").to_string()

    @functools.cached_property
    def status(self) -> str:
        """The job's status when its deploy step ended (GetAtt ``Status``; GetAudienceGenerationJob ``status``):
        ACTIVE, or with ``wait_for_completion=False`` the status right after the start (e.g. CREATE_PENDING).
        ``NOT_FOUND`` after an update that found the job deleted outside CloudFormation."""
        return self.resource.get_att("Status").to_string()

    @functools.cached_property
    def recall_metric(self) -> str:
        """The service's recall metric once ACTIVE, else empty (GetAtt ``RecallMetric``; ``metrics.recallMetric``).

        Empty when the deploy step did not wait for ACTIVE."""
        return self.resource.get_att("RecallMetric").to_string()

    @functools.cached_property
    def relevance_metrics(self) -> str:
        """The service's relevance metrics as a JSON string once ACTIVE, else empty (GetAtt ``RelevanceMetrics``;
        ``metrics.relevanceMetrics``). Empty when the deploy step did not wait for ACTIVE."""
        return self.resource.get_att("RelevanceMetrics").to_string()

    @property
    def cdk_tag_manager(self) -> TagManager:
        """CDK's tag manager: ``Tags.of(scope).add(...)`` reaches the job's ``tags`` through it."""
        return self._tags

    def rendered_tags(self) -> dict[str, str]:
        """The tags the job is started with (own tags plus those applied through ``Tags.of``); complete only once
        the ``Tags.of`` aspects have run, at synth."""
        rendered = self._tags.render_tags()
        return dict(rendered) if isinstance(rendered, dict) else {}


@jsii.implements(IValidation)
class _TagValidation:
    """Tags applied through ``Tags.of`` are known only at synth: check them then, through CDK's validation.

    One per stack, on the stack, for all its jobs: one per job would cost node round trips per job at
    every synth. Each message names its job's path.
    """

    def __init__(self) -> None:
        self.jobs: list[AudienceGenerationJob] = []

    def validate(self) -> list[str]:
        messages: list[str] = []
        for job in self.jobs:
            tags = job.rendered_tags()
            issues = [i for i in validation.check_request({"tags": tags}) if i.prop.startswith("tags")]
            if issues:  # the path only when needed
                messages += validation.format_issues(job.node.path, issues)
        return messages


def _tag_validation(stack: Stack) -> _TagValidation:
    found = _resource.shared(stack).validations.get(RESOURCE_TYPE)
    if found is None:
        found = _resource.shared(stack).validations[RESOURCE_TYPE] = _TagValidation()
        stack.node.add_validation(found)
    return found


# --------------------------------------------------------------------------------------------------


def _request(**props: Any) -> tuple[dict[str, Any], list[Issue]]:
    """The StartAudienceGenerationJob request (without its name) and every problem found in it."""
    # Wrong Python types inside the seed are reported here, before anything reaches jsii.
    seed_request, issues = validation.seed_request(props["seed_audience"])
    request: dict[str, Any] = {
        "configuredAudienceModelArn": props["configured_audience_model_arn"],
        "seedAudience": seed_request,
        "includeSeedInOutput": props["include_seed_in_output"],
        "collaborationId": props["collaboration_id"],
        "description": props["description"],
        "tags": props["tags"],
    }
    if props["name"] is not None:
        request["name"] = props["name"]
    request = {k: v for k, v in request.items() if v is not None}
    # The name is checked when given; a generated one is valid by construction.
    issues += validation.check_request({"name": "placeholder", **request})
    return request, issues


def _poll_seconds(poll_interval: Any) -> tuple[int, list[Issue]]:
    if poll_interval is None:
        return _DEFAULT_POLL_SECONDS, []
    seconds = validation.duration_seconds(poll_interval)
    if seconds is None:
        return _DEFAULT_POLL_SECONDS, [
            Issue("poll_interval", poll_interval, "must be a Duration, e.g. Duration.minutes(1)")
        ]
    if seconds < 1 or seconds != int(seconds) or _TOTAL_TIMEOUT_SECONDS % int(seconds):
        return _DEFAULT_POLL_SECONDS, [
            Issue("poll_interval", f"{seconds:g} seconds", "must be a whole number of seconds that divides one hour")
        ]
    if seconds > _resource.MAX_TIMEOUT_SECONDS:
        return _DEFAULT_POLL_SECONDS, [
            Issue(
                "poll_interval",
                f"{seconds:g} seconds",
                f"must be at most {_resource.MAX_TIMEOUT_SECONDS // 60} minutes (the longest a deploy step waits)",
            )
        ]
    return int(seconds), []


def _stack_issues(stack: Stack, request: dict[str, Any]) -> list[Issue]:
    """Rules that need the stack's environment (applied when its region is concrete), and cross-ARN rules."""
    issues: list[Issue] = []
    model_arn = request.get("configuredAudienceModelArn")
    seed = request.get("seedAudience")
    role_arn = seed.get("roleArn") if isinstance(seed, dict) else None
    model = validation.arn_parts(model_arn)
    role = validation.arn_parts(role_arn)
    region = _resource.shared(stack).region
    partition = None if validation.is_token(region) else _partition_of(region)
    if partition is None and model and role and role["partition"] != model["partition"]:
        # Env-agnostic stack: the model's partition is where the job runs, so the role must be there too.
        issues.append(
            Issue(
                "seed_audience.role",
                role_arn,
                f"is in partition {role['partition']} but the configured audience model is in {model['partition']}",
            )
        )
    if validation.is_token(region):
        return issues
    if model and model["region"] and model["region"] != region:
        issues.append(
            Issue(
                "configured_audience_model_arn",
                model_arn,
                f"is in region {model['region']} but the stack deploys to {region}: "
                "a job is started in its model's region",
            )
        )
    if partition and role and role["partition"] != partition:
        issues.append(
            Issue(
                "seed_audience.role",
                role_arn,
                f"is in partition {role['partition']} but the stack deploys to partition {partition}",
            )
        )
    if partition and model and model["partition"] != partition:
        issues.append(
            Issue(
                "configured_audience_model_arn",
                request["configuredAudienceModelArn"],
                f"is in partition {model['partition']} but the stack deploys to partition {partition}",
            )
        )
    return issues


def _provider_of(
    job: AudienceGenerationJob, stack: Stack, poll_interval: Duration | None
) -> tuple[AudienceGenerationProvider, str]:
    """The stack's provider for the job's poll interval and its service token, looked up once per stack."""
    seconds = _DEFAULT_POLL_SECONDS if poll_interval is None else int(poll_interval.to_seconds())
    providers = _resource.shared(stack).providers
    if seconds not in providers:
        provider = AudienceGenerationProvider.of(job, poll_interval=poll_interval)
        providers[seconds] = (provider, provider.service_token)
    return providers[seconds]  # type: ignore[no-any-return]


__all__ = ["RESOURCE_TYPE", "AudienceGenerationJob", "IAudienceGenerationJob", "max_name_length"]
