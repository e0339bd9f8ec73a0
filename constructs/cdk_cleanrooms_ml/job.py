"""``AudienceGenerationJob``: one AWS Clean Rooms ML audience generation job as one CloudFormation resource."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import weakref
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
from .service_model import start_request_shape
from .validation import Issue, ValidationError

#: The CloudFormation type of every job resource.
RESOURCE_TYPE = "Custom::CleanRoomsMlAudienceGenerationJob"


def max_name_length() -> int:
    """The service's limit on job names (NameString's max in the installed model); generated names stay within it."""
    return int(start_request_shape().members["name"].metadata["max"])


_HASH_LENGTH = 10

#: Request members whose change needs a new job (and so a new generated name). Tags change in place.
_REPLACING_MEMBERS = (
    "configuredAudienceModelArn",
    "seedAudience",
    "includeSeedInOutput",
    "collaborationId",
    "description",
)

# Synthesis speed: every jsii call is a round trip to node, and a stack of hundreds of jobs would repeat
# the same ones per job. What cannot change once known is asked once per process or once per stack.
_TOTAL_TIMEOUT_SECONDS = int(TOTAL_TIMEOUT.to_seconds())
_DEFAULT_POLL_SECONDS = int(DEFAULT_POLL_INTERVAL.to_seconds())


@functools.cache
def _partition_of(region: str) -> str | None:
    partition = region_info.RegionInfo.get(region).partition
    return str(partition) if partition is not None else None


class _StackShared:
    """What the jobs of one stack share and never changes once asked: its name and region, the paths of
    the scopes jobs are added to, resolved tokens, providers, and the one tag validation of its jobs."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.stack_name: str = stack.stack_name
        self.region: str = stack.region
        self.scope_paths: weakref.WeakKeyDictionary[Construct, str] = weakref.WeakKeyDictionary()
        self.resolved: dict[Any, Any] = {}
        self.providers: dict[int, tuple[AudienceGenerationProvider, str]] = {}
        self._tag_validation: _TagValidation | None = None

    def child_path(self, scope: Construct, id: str) -> str:
        """The construct path of ``scope``'s child ``id`` (what ``child.node.path`` says)."""
        scope_path = self.scope_paths.get(scope)
        if scope_path is None:
            scope_path = self.scope_paths[scope] = scope.node.path
        return f"{scope_path}/{id}" if scope_path else id

    def tag_validation(self) -> _TagValidation:
        if self._tag_validation is None:
            self._tag_validation = _TagValidation()
            self.stack.node.add_validation(self._tag_validation)
        return self._tag_validation


_SHARED: weakref.WeakKeyDictionary[Stack, _StackShared] = weakref.WeakKeyDictionary()
_STACK_OF: weakref.WeakKeyDictionary[Construct, Stack] = weakref.WeakKeyDictionary()


def _stack_of(scope: Construct) -> Stack:
    """``Stack.of(scope)``, asked once per scope: a construct never moves to another stack."""
    try:
        found = _STACK_OF.get(scope)
    except TypeError:  # not a construct: let Stack.of say so
        return Stack.of(scope)
    if found is None:
        found = _STACK_OF[scope] = Stack.of(scope)
    return found


def _shared(stack: Stack) -> _StackShared:
    found = _SHARED.get(stack)
    if found is None:
        found = _SHARED[stack] = _StackShared(stack)
    return found


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
        stack = _stack_of(scope)
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
            scope_path = scope.node.path  # only on failure: each jsii call is a round trip to node
            raise ValidationError(f"{scope_path}/{id}" if scope_path else id, issues)  # no half-built tree

        super().__init__(scope, id)
        try:
            path = _shared(stack).child_path(scope, id)
            self._build(stack, request, control, removal_policy, poll_interval, explicit_name=name, path=path)
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
        path: str,
    ) -> None:
        self.name: str = explicit_name if explicit_name is not None else _generated_name(stack, path, request)
        """The job's name (API field ``name``): the one given, or by default one derived from the construct path
        plus a hash of the stack name and the members that force a new job (at most 63 characters)."""
        request["name"] = self.name
        user_tags = request.pop("tags", None) or {}
        self._tags = TagManager(TagType.MAP, RESOURCE_TYPE, user_tags)

        self.provider, service_token = _provider_of(self, stack, poll_interval)
        """The provider that runs this job's lifecycle (shared with the stack's other jobs)."""
        self.provider.allow_job(request["configuredAudienceModelArn"], request["seedAudience"]["roleArn"])

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
        self.resource.apply_removal_policy(removal_policy or RemovalPolicy.DESTROY)
        _shared(stack).tag_validation().jobs.append(self)  # last: a job whose build failed is not in the tree

    # The attributes are made on first use: most jobs never read them, and each costs two jsii calls.
    @functools.cached_property
    def audience_generation_job_arn(self) -> str:
        """The job's ARN (GetAtt ``AudienceGenerationJobArn``; the API's ``audienceGenerationJobArn``)."""
        return self.resource.get_att("AudienceGenerationJobArn").to_string()

    @functools.cached_property
    def status(self) -> str:
        """The job's status when its deploy step ended (GetAtt ``Status``; GetAudienceGenerationJob ``status``):
        ACTIVE, or with ``wait_for_completion=False`` the status right after the start (e.g. CREATE_PENDING)."""
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
    limit = _TOTAL_TIMEOUT_SECONDS
    interval_seconds = _DEFAULT_POLL_SECONDS
    if poll_interval is not None:
        seconds = validation.duration_seconds(poll_interval)
        if seconds is None:
            issues.append(Issue("poll_interval", poll_interval, "must be a Duration, e.g. Duration.minutes(1)"))
        elif seconds < 1 or seconds != int(seconds) or limit % int(seconds):
            issues.append(
                Issue(
                    "poll_interval", f"{seconds:g} seconds", "must be a whole number of seconds that divides one hour"
                )
            )
        else:
            interval_seconds = int(seconds)
    if timeout is not None:
        seconds = validation.duration_seconds(timeout)
        if seconds is None:
            issues.append(Issue("timeout", timeout, "must be a Duration, e.g. Duration.minutes(30)"))
        elif seconds > limit:
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
        elif seconds != int(seconds):
            issues.append(Issue("timeout", f"{seconds:g} seconds", "must be a whole number of seconds"))
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
    """Rules that need the stack's environment (applied when its region is concrete), and cross-ARN rules."""
    issues: list[Issue] = []
    model_arn = request.get("configuredAudienceModelArn")
    seed = request.get("seedAudience")
    role_arn = seed.get("roleArn") if isinstance(seed, dict) else None
    model = validation.arn_parts(model_arn)
    role = validation.arn_parts(role_arn)
    region = _shared(stack).region
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


_NAME_CHARS = re.compile(r"[^A-Za-z0-9-]+")


def _generated_name(stack: Stack, path: str, request: dict[str, Any]) -> str:
    """``<path>-<hash>``: unique per construct path and stack name, new whenever the job must be replaced.

    The hash covers the members that force a new job, as they appear in the template (tokens are
    resolved to their CloudFormation form), so CloudFormation never creates the replacement under
    the name of the job it is about to delete.
    """
    replacing = {k: request[k] for k in _REPLACING_MEMBERS if k in request}
    if validation.is_token(json.dumps(replacing, default=lambda _o: "${Token[object]}")):
        replacing = _resolved(stack, replacing)
    digest_input = json.dumps([_shared(stack).stack_name, path, replacing], sort_keys=True, default=str)
    digest = hashlib.sha256(digest_input.encode()).hexdigest()[:_HASH_LENGTH]
    prefix = _NAME_CHARS.sub("-", path).strip("-")
    room = max_name_length() - _HASH_LENGTH - 1
    if len(prefix) > room:
        prefix = prefix[-room:].lstrip("-")
    return f"{prefix}-{digest}"


def _resolved(stack: Stack, value: Any) -> Any:
    """``stack.resolve(value)``, with one jsii call per distinct token of the stack instead of one per job.

    Tokens resolve leaf by leaf, so resolving each token string alone gives what resolving the whole
    value gives; anything else that may hide a token (a token key, an object) is resolved whole.
    """
    if isinstance(value, dict):
        if any(validation.is_token(key) for key in value):
            return stack.resolve(value)
        return {key: _resolved(stack, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(stack, item) for item in value]
    if isinstance(value, (str, float)) and validation.is_token(value):
        cache = _shared(stack).resolved
        if value not in cache:
            cache[value] = stack.resolve(value)
        return cache[value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return stack.resolve(value)


def _provider_of(
    job: AudienceGenerationJob, stack: Stack, poll_interval: Duration | None
) -> tuple[AudienceGenerationProvider, str]:
    """The stack's provider for the job's poll interval and its service token, looked up once per stack."""
    seconds = _DEFAULT_POLL_SECONDS if poll_interval is None else int(poll_interval.to_seconds())
    providers = _shared(stack).providers
    if seconds not in providers:
        provider = AudienceGenerationProvider.of(job, poll_interval=poll_interval)
        providers[seconds] = (provider, provider.service_token)
    return providers[seconds]
