"""``AudienceGenerationJob``: one AWS Clean Rooms ML audience generation job as one CloudFormation resource."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

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

from constructs import Construct, IValidation

from . import validation
from .provider import DEFAULT_POLL_INTERVAL, TOTAL_TIMEOUT, AudienceGenerationProvider
from .seed_audience import SeedAudience
from .validation import Issue, ValidationError

RESOURCE_TYPE = "Custom::CleanRoomsMlAudienceGenerationJob"

#: The service's limit on job names (NameString in the model); generated names stay within it.
MAX_NAME_LENGTH = 63
_HASH_LENGTH = 10

#: Request members whose change needs a new job (and so a new generated name). Tags change in place.
_REPLACING_MEMBERS = (
    "configuredAudienceModelArn",
    "seedAudience",
    "includeSeedInOutput",
    "collaborationId",
    "description",
)


@jsii.implements(ITaggableV2)
class AudienceGenerationJob(Construct):
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
        :param name: the job's name (``name``), unique per account, 1-63 characters. Default: derived
            from the construct path and the properties that force a new job, so a replaced job never
            collides with the one it replaces. An explicit name must be changed whenever the job is
            replaced (the deploy fails with a message saying so otherwise).
        :param include_seed_in_output: whether the seed is part of the generated audience
            (``includeSeedInOutput``). Default: not sent (the service's default, false).
        :param collaboration_id: the collaboration that contains the job (``collaborationId``),
            needed when the configured audience model belongs to another account. Default: not sent.
        :param description: the job's description (``description``). Default: not sent.
        :param tags: tags of the job (``tags``), merged with the tags applied through ``Tags.of``.
            Default: none. At most 50; keys starting with ``aws:`` are reserved.
        :param wait_for_completion: whether the deploy step waits until the job is ACTIVE (and, on
            delete, until it is gone). Default: True.
        :param timeout: how long the deploy step waits. Default and maximum: 60 minutes
            (CloudFormation's limit for a custom resource); at least the poll interval.
        :param removal_policy: DESTROY deletes the job with the stack (or when it is replaced);
            RETAIN keeps it. Default: DESTROY.
        :param poll_interval: how often the job's status is read while waiting. Default: the stack
            provider's (30 seconds). Jobs with different intervals use different providers.
        """
        path = f"{scope.node.path}/{id}" if scope.node.path else id
        stack = Stack.of(scope)
        request, issues = _request(
            configured_audience_model_arn=configured_audience_model_arn,
            seed_audience=seed_audience,
            name=name,
            include_seed_in_output=include_seed_in_output,
            collaboration_id=collaboration_id,
            description=description,
            tags=tags,
        )
        control, control_issues = _control(wait_for_completion, timeout, removal_policy, poll_interval)
        issues += control_issues + _stack_issues(stack, request)
        if issues:
            raise ValidationError(path, issues)  # before the node exists: no half-built tree

        super().__init__(scope, id)
        try:
            self._build(stack, request, control, removal_policy, poll_interval, explicit_name=name)
        except Exception:
            scope.node.try_remove_child(id)
            raise

    def _build(
        self,
        stack: Stack,
        request: dict[str, Any],
        control: dict[str, str],
        removal_policy: RemovalPolicy | None,
        poll_interval: Duration | None,
        explicit_name: str | None,
    ) -> None:
        self.name: str = explicit_name if explicit_name is not None else _generated_name(stack, self.node.path, request)
        """The job's name: the one given, or the one derived from the construct path."""
        request["name"] = self.name
        user_tags = request.pop("tags", None) or {}
        self._tags = TagManager(TagType.MAP, RESOURCE_TYPE, user_tags)
        self.node.add_validation(_TagValidation(self))

        self.provider = AudienceGenerationProvider.of(self, poll_interval=poll_interval)
        """The provider that runs this job's lifecycle (shared with the stack's other jobs)."""
        self.provider.allow_job(request["configuredAudienceModelArn"], request["seedAudience"]["roleArn"])

        self.resource = CfnResource(
            self,
            "Resource",
            type=RESOURCE_TYPE,
            properties={
                "ServiceToken": self.provider.service_token,
                **request,
                "tags": self._tags.rendered_tags,  # resolved at synth, after Tags.of aspects ran
                **control,
            },
        )
        """The custom resource (escape hatch)."""
        self.resource.apply_removal_policy(removal_policy or RemovalPolicy.DESTROY)

        self.audience_generation_job_arn: str = self.resource.get_att("AudienceGenerationJobArn").to_string()
        """The job's ARN (GetAtt ``AudienceGenerationJobArn``)."""
        self.status: str = self.resource.get_att("Status").to_string()
        """The job's status when its deploy step ended, e.g. ACTIVE (GetAtt ``Status``)."""
        self.recall_metric: str = self.resource.get_att("RecallMetric").to_string()
        """The service's recall metric once ACTIVE, else empty (GetAtt ``RecallMetric``)."""
        self.relevance_metrics: str = self.resource.get_att("RelevanceMetrics").to_string()
        """The service's relevance metrics as a JSON string once ACTIVE, else empty (GetAtt ``RelevanceMetrics``)."""

    @property
    def cdk_tag_manager(self) -> TagManager:
        """CDK's tag manager: ``Tags.of(scope).add(...)`` reaches the job's ``tags`` through it."""
        return self._tags

    def rendered_tags(self) -> dict[str, str]:
        """The tags the job is started with (own tags plus those applied through ``Tags.of``)."""
        rendered = self._tags.render_tags()
        return dict(rendered) if isinstance(rendered, dict) else {}


@jsii.implements(IValidation)
class _TagValidation:
    """Tags applied through ``Tags.of`` are known only at synth: check them then, through CDK's validation."""

    def __init__(self, job: AudienceGenerationJob) -> None:
        self._job = job

    def validate(self) -> list[str]:
        tags = self._job.rendered_tags()
        issues = [i for i in validation.check_request({"tags": tags}) if i.prop.startswith("tags")]
        return validation.format_issues(self._job.node.path, issues)


# --------------------------------------------------------------------------------------------------


def _request(**props: Any) -> tuple[dict[str, Any], list[Issue]]:
    """The StartAudienceGenerationJob request (without its name) and every problem found in it."""
    issues: list[Issue] = []
    seed = props["seed_audience"]
    if isinstance(seed, SeedAudience):
        if not (isinstance(seed.role, str) or hasattr(seed.role, "role_arn")):
            issues.append(Issue("seed_audience.role", seed.role, "must be an iam.IRole or a role ARN string"))
            seed_request: Any = {}
        else:
            seed_request = seed._render()
    else:
        issues.append(Issue("seed_audience", seed, "must be a SeedAudience"))
        seed_request = None
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
    problems = validation.check_request({"name": "placeholder", **request})
    issues += [
        i for i in problems if not (i.prop == "seed_audience" and seed_request is None and i.rule == "is required")
    ]
    return request, issues


def _control(
    wait_for_completion: Any, timeout: Any, removal_policy: Any, poll_interval: Any
) -> tuple[dict[str, str], list[Issue]]:
    """The handler's control properties (only those that differ from the default) and their problems."""
    issues: list[Issue] = []
    control: dict[str, str] = {}
    if not isinstance(wait_for_completion, bool):
        issues.append(Issue("wait_for_completion", wait_for_completion, "must be True or False"))
    elif not wait_for_completion:
        control["WaitForCompletion"] = "false"
    interval_seconds = int(DEFAULT_POLL_INTERVAL.to_seconds())
    if poll_interval is not None:
        if not isinstance(poll_interval, Duration):
            issues.append(Issue("poll_interval", poll_interval, "must be a Duration"))
        else:
            seconds = poll_interval.to_seconds()
            if seconds < 1 or seconds != int(seconds) or int(TOTAL_TIMEOUT.to_seconds()) % int(seconds):
                issues.append(
                    Issue(
                        "poll_interval",
                        f"{seconds:g} seconds",
                        "must be a whole number of seconds that divides one hour",
                    )
                )
            else:
                interval_seconds = int(seconds)
    if timeout is not None:
        if not isinstance(timeout, Duration):
            issues.append(Issue("timeout", timeout, "must be a Duration"))
        else:
            seconds = timeout.to_seconds()
            limit = int(TOTAL_TIMEOUT.to_seconds())
            if seconds > limit:
                issues.append(
                    Issue(
                        "timeout",
                        f"{seconds:g} seconds",
                        "must be at most 60 minutes (CloudFormation's limit for a custom resource)",
                    )
                )
            elif seconds < interval_seconds:
                issues.append(
                    Issue(
                        "timeout",
                        f"{seconds:g} seconds",
                        f"must be at least the poll interval ({interval_seconds} seconds)",
                    )
                )
            elif seconds != limit:
                control["TimeoutSeconds"] = str(int(seconds))
    if removal_policy is not None and not isinstance(removal_policy, RemovalPolicy):
        issues.append(Issue("removal_policy", removal_policy, "must be a RemovalPolicy"))
    elif removal_policy == RemovalPolicy.RETAIN:
        control["RemovalPolicy"] = "retain"
    elif removal_policy not in (None, RemovalPolicy.DESTROY):
        issues.append(Issue("removal_policy", removal_policy, "must be RemovalPolicy.DESTROY or RemovalPolicy.RETAIN"))
    return control, issues


def _stack_issues(stack: Stack, request: dict[str, Any]) -> list[Issue]:
    """Rules that need the stack's environment: only applied when it is concrete."""
    issues: list[Issue] = []
    region = stack.region
    if validation.is_token(region):
        return issues
    model = validation.arn_parts(request.get("configuredAudienceModelArn"))
    if model and model["region"] != region:
        issues.append(
            Issue(
                "configured_audience_model_arn",
                request["configuredAudienceModelArn"],
                f"is in region {model['region']} but the stack deploys to {region}: "
                "a job is started in its model's region",
            )
        )
    partition = region_info.RegionInfo.get(region).partition
    role = validation.arn_parts((request.get("seedAudience") or {}).get("roleArn"))
    if partition and role and role["partition"] != partition:
        issues.append(
            Issue(
                "seed_audience.role",
                request["seedAudience"]["roleArn"],
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


_NAME_CHARS = re.compile(r"[^A-Za-z0-9-]+")


def _generated_name(stack: Stack, path: str, request: dict[str, Any]) -> str:
    """``<path>-<hash>``: unique per construct path and stack name, new whenever the job must be replaced.

    The hash covers the members that force a new job, as they appear in the template (tokens are
    resolved to their CloudFormation form), so CloudFormation never creates the replacement under
    the name of the job it is about to delete.
    """
    replacing = {k: request[k] for k in _REPLACING_MEMBERS if k in request}
    if validation.is_token(json.dumps(replacing, default=lambda _o: "${Token[object]}")):
        replacing = stack.resolve(replacing)
    digest_input = json.dumps([stack.stack_name, path, replacing], sort_keys=True, default=str)
    digest = hashlib.sha256(digest_input.encode()).hexdigest()[:_HASH_LENGTH]
    prefix = _NAME_CHARS.sub("-", path).strip("-")
    room = MAX_NAME_LENGTH - _HASH_LENGTH - 1
    if len(prefix) > room:
        prefix = prefix[-room:].lstrip("-")
    return f"{prefix}-{digest}"
