"""``AudienceGenerationJob``: one AWS Clean Rooms ML audience generation job as one CloudFormation resource."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import jsii
from aws_cdk import (
    Duration,
    ITaggableV2,
    RemovalPolicy,
    Stack,
    TagManager,
)
from aws_cdk import aws_iam as iam

from constructs import Construct

from . import _resource, validation
from .seed_audience import SeedAudience

if TYPE_CHECKING:
    from .export_job import AudienceExportJob, AudienceSize
from .service_model import specs, start_request_shape
from .validation import Issue, ValidationError

_SPEC = specs().AUDIENCE_GENERATION_JOB
#: The CloudFormation type of every job resource.
RESOURCE_TYPE: str = _SPEC.type_name

#: Where the props' Python names do not follow the API member names by snake_case alone.
_PYTHON_NAMES = {
    "seedAudience.roleArn": "seed_audience.role",
    "seedAudience.sqlComputeConfiguration.worker": "seed_audience.sql_compute_configuration",
    "seedAudience.sqlComputeConfiguration.worker.properties.spark": (
        "seed_audience.sql_compute_configuration.spark_properties"
    ),
    "seedAudience.sqlComputeConfiguration.worker.properties": "seed_audience.sql_compute_configuration",
}


def max_name_length() -> int:
    """The service's limit on job names (NameString's max in the shipped model)."""
    return int(start_request_shape().members["name"].metadata["max"])


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
        request, issues = _request(
            configured_audience_model_arn=configured_audience_model_arn,
            seed_audience=seed_audience,
            name=name,
            include_seed_in_output=include_seed_in_output,
            collaboration_id=collaboration_id,
            description=description,
            tags=tags,
        )
        options = _resource.Options(wait_for_completion, timeout, removal_policy, poll_interval)
        issues += _stack_issues(_resource.stack_of(scope), request)
        prepared = _resource.prepare(scope, id, _SPEC, request, issues, options, names=_PYTHON_NAMES)
        super().__init__(scope, id)
        try:
            # A seed role the library makes is made now, in this job's stack (never silently in another one).
            seed = seed_audience.bound(self)
            prepared.request["seedAudience"]["roleArn"] = seed.role_arn
            self._waits = bool(wait_for_completion)
            self._explicit_name = name
            self.resource, tag_manager, self.provider = _resource.build(
                self,
                prepared,
                _SPEC,
                path=_resource.shared(prepared.stack).child_path(scope, id),
                explicit_name=name is not None,
                name_max_length=max_name_length(),
                removal_policy=removal_policy,
                poll_interval=poll_interval,
            )
            """The ``CfnResource`` of type ``RESOURCE_TYPE`` (escape hatch)."""
            assert tag_manager is not None
            self._tags: TagManager = tag_manager
            self.provider.allow_job(
                prepared.request["configuredAudienceModelArn"],
                prepared.request["seedAudience"]["roleArn"],
                prepared.request.get("collaborationId"),
            )
            _resource.check_tags_at_synth(prepared.stack, self, _SPEC)  # last: a failed build is not in the tree
        except Exception:
            scope.node.try_remove_child(id)
            raise

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

    @property
    def _name_attribute(self) -> str:
        return _resource.attribute(self.resource, "Name")

    @property
    def waits_for_completion(self) -> bool:
        """Whether the job is ACTIVE when its deploy step ends (``wait_for_completion``)."""
        return self._waits

    def export(
        self,
        id: str,
        *,
        audience_size: AudienceSize,
        name: str | None = None,
        description: str | None = None,
        wait_for_completion: bool = True,
        timeout: Duration | None = None,
    ) -> AudienceExportJob:
        """Export this job's audience (an ``AudienceExportJob`` child of the job, which depends on it)."""
        from .export_job import AudienceExportJob

        return AudienceExportJob(
            self,
            id,
            audience_generation_job=self,
            audience_size=audience_size,
            name=name,
            description=description,
            wait_for_completion=wait_for_completion,
            timeout=timeout,
        )

    # The attributes are made on first use (and once): most jobs never read them, and each costs jsii calls.
    @property
    def audience_generation_job_arn(self) -> str:
        """The job's ARN (GetAtt ``AudienceGenerationJobArn``; the API's ``audienceGenerationJobArn``)."""
        arn = _resource.attribute(self.resource, "AudienceGenerationJobArn")
        _JOBS_BY_ARN[arn] = self
        return arn

    @property
    def status(self) -> str:
        """The job's status when its deploy step ended (GetAtt ``Status``; GetAudienceGenerationJob ``status``):
        ACTIVE, or with ``wait_for_completion=False`` the status right after the start (e.g. CREATE_PENDING).
        ``NOT_FOUND`` after an update that found the job deleted outside CloudFormation."""
        return _resource.attribute(self.resource, "Status")

    @property
    def recall_metric(self) -> str:
        """The service's recall metric once ACTIVE, else empty (GetAtt ``RecallMetric``; ``metrics.recallMetric``).

        Empty when the deploy step did not wait for ACTIVE."""
        return _resource.attribute(self.resource, "RecallMetric")

    @property
    def relevance_metrics(self) -> str:
        """The service's relevance metrics as a JSON string once ACTIVE, else empty (GetAtt ``RelevanceMetrics``;
        ``metrics.relevanceMetrics``). Empty when the deploy step did not wait for ACTIVE."""
        return _resource.attribute(self.resource, "RelevanceMetrics")

    @property
    def cdk_tag_manager(self) -> TagManager:
        """CDK's tag manager: ``Tags.of(scope).add(...)`` reaches the job's ``tags`` through it."""
        return self._tags

    def rendered_tags(self) -> dict[str, str]:
        """The tags the job is started with (own tags plus those applied through ``Tags.of``); complete only once
        the ``Tags.of`` aspects have run, at synth."""
        rendered = self._tags.render_tags()
        return dict(rendered) if isinstance(rendered, dict) else {}


# --------------------------------------------------------------------------------------------------


#: The app's jobs by their ARN token: an export given ``job.audience_generation_job_arn`` finds its job.
_JOBS_BY_ARN: weakref.WeakValueDictionary[str, AudienceGenerationJob] = weakref.WeakValueDictionary()


def job_of_arn(arn: str) -> AudienceGenerationJob | None:
    """The job of the app whose ARN token ``arn`` is (None for any other string)."""
    return _JOBS_BY_ARN.get(arn)


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
    return request, issues


def _stack_issues(stack: Stack, request: dict[str, Any]) -> list[Issue]:
    """Rules that need the stack's environment (applied when its region is concrete), and cross-ARN rules."""
    issues: list[Issue] = []
    model_arn = request.get("configuredAudienceModelArn")
    seed = request.get("seedAudience")
    role_arn = seed.get("roleArn") if isinstance(seed, dict) else None
    model = validation.arn_parts(model_arn)
    role = validation.arn_parts(role_arn)
    region = _resource.shared(stack).region
    partition = None if validation.is_token(region) else _resource.partition_of(region)
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


__all__ = ["RESOURCE_TYPE", "AudienceGenerationJob", "IAudienceGenerationJob", "max_name_length"]
