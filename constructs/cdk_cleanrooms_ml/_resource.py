"""What every custom resource construct of the library shares: stack-level caches, control props, limits.

Private: the constructs (``job.py`` and the ones to come) build on it. Synthesis speed: every jsii call is a
round trip to node, and a stack of hundreds of resources would repeat the same ones per resource, so
what cannot change once known is asked once per stack here.
"""

from __future__ import annotations

import functools
import json
import re
import weakref
from typing import Any, NamedTuple

import jsii
from aws_cdk import CfnDeletionPolicy, CfnResource, Duration, RemovalPolicy, Stack, TagManager, TagType, region_info

from constructs import Construct, IValidation

from . import references, validation
from .service_model import specs
from .validation import Issue

_LIMITS = specs()
#: The longest a deploy step waits (CloudFormation's hour minus the handler's margin): 55 minutes.
MAX_TIMEOUT_SECONDS: int = _LIMITS.MAX_TIMEOUT_SECONDS
MAX_PROPERTIES_BYTES: int = _LIMITS.MAX_PROPERTIES_BYTES
CLOUDFORMATION_LIMIT_SECONDS: int = _LIMITS.CLOUDFORMATION_LIMIT_SECONDS
HANDLER_MARGIN_SECONDS: int = _LIMITS.HANDLER_MARGIN_SECONDS

_NAME_CHARS = re.compile(r"[^A-Za-z0-9-]+")


class StackShared:
    """What the resources of one stack share and never changes once asked: its region, the paths of the scopes
    resources are added to, providers, and stack-wide validations."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.region: str = stack.region
        self.scope_paths: weakref.WeakKeyDictionary[Construct, str] = weakref.WeakKeyDictionary()
        self.providers: dict[int, Any] = {}
        self.validations: dict[str, Any] = {}

    def child_path(self, scope: Construct, id: str) -> str:
        """The construct path of ``scope``'s child ``id`` (what ``child.node.path`` says)."""
        scope_path = self.scope_paths.get(scope)
        if scope_path is None:
            scope_path = self.scope_paths[scope] = scope.node.path
        return f"{scope_path}/{id}" if scope_path else id


_SHARED: weakref.WeakKeyDictionary[Stack, StackShared] = weakref.WeakKeyDictionary()
_STACK_OF: weakref.WeakKeyDictionary[Construct, Stack] = weakref.WeakKeyDictionary()


def stack_of(scope: Construct) -> Stack:
    """``Stack.of(scope)``, asked once per scope: a construct never moves to another stack."""
    try:
        found = _STACK_OF.get(scope)
    except TypeError:  # not a construct: let Stack.of say so
        return Stack.of(scope)
    if found is None:
        found = _STACK_OF[scope] = Stack.of(scope)
    return found


@functools.cache
def partition_of(region: str) -> str | None:
    """The partition of a (known) region, from aws-cdk-lib's region facts; None when it does not know it."""
    partition = region_info.RegionInfo.get(region).partition
    return str(partition) if partition is not None else None


def shared(stack: Stack) -> StackShared:
    found = _SHARED.get(stack)
    if found is None:
        found = _SHARED[stack] = StackShared(stack)
    return found


def name_prefix(path: str, max_length: int) -> str:
    """The start of a generated name: the construct path in the characters names allow (the handler adds a
    digest of the resolved request)."""
    prefix = _NAME_CHARS.sub("-", path).strip("-")
    if len(prefix) <= max_length:
        return prefix
    kept = prefix[-max_length:]
    if prefix[-max_length - 1] != "-":  # cut inside a path segment: keep whole segments only (the innermost)
        kept = kept.partition("-")[2] or kept
    return kept.lstrip("-")


def control_properties(
    wait_for_completion: Any, timeout: Any, poll_seconds: int
) -> tuple[dict[str, str], int, list[Issue]]:
    """The handler's control properties (only those that differ from the default), the effective timeout
    in seconds, and the problems of these props."""
    issues: list[Issue] = []
    control: dict[str, str] = {}
    if not isinstance(wait_for_completion, bool):
        issues.append(Issue("wait_for_completion", wait_for_completion, "must be True or False"))
    elif not wait_for_completion:
        control["WaitForCompletion"] = "false"
    effective = MAX_TIMEOUT_SECONDS
    if timeout is not None:
        seconds = validation.duration_seconds(timeout)
        if seconds is None:
            issues.append(Issue("timeout", timeout, "must be a Duration, e.g. Duration.minutes(30)"))
        elif seconds > MAX_TIMEOUT_SECONDS:
            issues.append(
                Issue(
                    "timeout",
                    f"{seconds:g} seconds",
                    f"must be at most {MAX_TIMEOUT_SECONDS // 60} minutes (CloudFormation gives a custom resource "
                    f"one hour; the handler keeps {HANDLER_MARGIN_SECONDS // 60} minutes of it for its own calls)",
                )
            )
        elif seconds < poll_seconds:
            issues.append(
                Issue("timeout", f"{seconds:g} seconds", f"must be at least the poll interval ({poll_seconds} seconds)")
            )
        elif seconds != int(seconds):
            issues.append(Issue("timeout", f"{seconds:g} seconds", "must be a whole number of seconds"))
        else:
            effective = int(seconds)
            if effective != MAX_TIMEOUT_SECONDS:
                control["TimeoutSeconds"] = str(effective)
    return control, effective, issues


def service_timeout(timeout_seconds: int, poll_seconds: int) -> str | None:
    """CloudFormation's ``ServiceTimeout`` for a resource that waits at most ``timeout_seconds``.

    Set so that CloudFormation stops waiting soon after the handler would have answered, if the provider
    itself died; None when that is CloudFormation's default (and maximum) of one hour.
    """
    seconds = timeout_seconds + poll_seconds + HANDLER_MARGIN_SECONDS
    return str(seconds) if seconds < CLOUDFORMATION_LIMIT_SECONDS else None


def removal_policy_issues(removal_policy: Any) -> list[Issue]:
    if removal_policy is not None and not isinstance(removal_policy, RemovalPolicy):
        return [Issue("removal_policy", removal_policy, "must be a RemovalPolicy")]
    if removal_policy not in (None, RemovalPolicy.DESTROY, RemovalPolicy.RETAIN):
        return [Issue("removal_policy", removal_policy, "must be RemovalPolicy.DESTROY or RemovalPolicy.RETAIN")]
    return []


def apply_removal_policy(resource: CfnResource, removal_policy: RemovalPolicy | None) -> None:
    """DESTROY deletes; RETAIN keeps the resource when the stack goes or replaces it, but not when its own
    Create is rolled back (``RetainExceptOnCreate``): a failed first deploy leaves nothing behind, so the
    same app deploys again once the cause is fixed."""
    if removal_policy == RemovalPolicy.RETAIN:
        resource.cfn_options.deletion_policy = CfnDeletionPolicy.RETAIN_EXCEPT_ON_CREATE
        resource.cfn_options.update_replace_policy = CfnDeletionPolicy.RETAIN
    else:
        resource.apply_removal_policy(RemovalPolicy.DESTROY)


def size_issues(properties: dict[str, Any]) -> list[Issue]:
    """The properties must fit the Provider framework's Step Functions input twice (an Update carries the old
    and the new ones). Tokens count as written, which is close: their values are ARNs and names."""
    size = len(json.dumps(properties, ensure_ascii=False, default=str, separators=(",", ":")).encode())
    if size <= MAX_PROPERTIES_BYTES:
        return []
    return [
        Issue(
            "(all props)",
            f"{size:,} bytes of properties",
            f"must be at most {MAX_PROPERTIES_BYTES:,} bytes: the CDK Provider framework hands each event to Step "
            f"Functions, whose execution input is at most {_LIMITS.STEP_FUNCTIONS_INPUT_LIMIT:,} bytes, and an "
            "Update event carries the old and the new properties (a long SQL query_string is the usual cause: "
            "use an analysis template instead)",
        )
    ]


# --------------------------------------------------------------------------------------------------
# One custom resource of a spec's type: validated whole before it joins the tree, then built.


class Options(NamedTuple):
    """The props every resource construct of the library takes beside its API members."""

    wait_for_completion: Any = True
    timeout: Any = None
    removal_policy: Any = None
    poll_interval: Any = None


class Prepared(NamedTuple):
    """A request that passed every check, with what building it needs."""

    stack: Stack
    request: dict[str, Any]
    control: dict[str, str]
    poll_seconds: int


def prepare(
    scope: Construct,
    id: str,
    spec: Any,
    request: dict[str, Any],
    issues: list[Issue],
    options: Options,
    *,
    names: dict[str, str] | None = None,
) -> Prepared:
    """Check the request (the shipped model, the documented rules, the size) and the options; raise one
    ValidationError naming the construct with every problem, before anything joins the tree."""
    stack = stack_of(scope)
    poll_seconds, poll_issues = poll_interval_seconds(options.poll_interval)
    control, timeout_seconds, control_issues = control_properties(
        options.wait_for_completion, options.timeout, poll_seconds
    )
    checked = request if spec.name in request else {spec.name: "placeholder", **request}
    issues = issues + validation.check_request(checked, spec, names) + poll_issues + control_issues
    issues += removal_policy_issues(options.removal_policy) + size_issues(request)
    if issues:
        scope_path = scope.node.path  # only on failure: each jsii call is a round trip to node
        raise validation.ValidationError(f"{scope_path}/{id}" if scope_path else id, issues)
    timeout_property = service_timeout(timeout_seconds, poll_seconds)
    if timeout_property is not None:
        control["ServiceTimeout"] = timeout_property
    return Prepared(stack, request, control, poll_seconds)


def poll_interval_seconds(poll_interval: Any) -> tuple[int, list[Issue]]:
    """The poll interval in seconds (the default when not given) and its problems."""
    if poll_interval is None:
        return DEFAULT_POLL_SECONDS, []
    seconds = validation.duration_seconds(poll_interval)
    if seconds is None:
        return DEFAULT_POLL_SECONDS, [
            Issue("poll_interval", poll_interval, "must be a Duration, e.g. Duration.minutes(1)")
        ]
    if seconds < 1 or seconds != int(seconds) or CLOUDFORMATION_LIMIT_SECONDS % int(seconds):
        return DEFAULT_POLL_SECONDS, [
            Issue("poll_interval", f"{seconds:g} seconds", "must be a whole number of seconds that divides one hour")
        ]
    if seconds > MAX_TIMEOUT_SECONDS:
        return DEFAULT_POLL_SECONDS, [
            Issue(
                "poll_interval",
                f"{seconds:g} seconds",
                f"must be at most {MAX_TIMEOUT_SECONDS // 60} minutes (the longest a deploy step waits)",
            )
        ]
    return int(seconds), []


#: How often a resource's status is read while the deploy waits, unless it asks otherwise.
DEFAULT_POLL_SECONDS = 30


def build(
    construct: Construct,
    prepared: Prepared,
    spec: Any,
    *,
    path: str,
    explicit_name: bool,
    name_max_length: int,
    removal_policy: RemovalPolicy | None,
    poll_interval: Duration | None,
) -> tuple[CfnResource, TagManager | None, Any]:
    """The CfnResource of ``spec``'s type under ``construct``, served by the stack's provider for this poll
    interval: its properties are the request (tags through CDK's tag manager when the type has tags), the
    control properties, and ``NamePrefix`` when no name was given. Returns it, the tag manager, the provider."""
    from .provider import CleanRoomsMlProvider

    request, control = dict(prepared.request), dict(prepared.control)
    if not explicit_name:
        control["NamePrefix"] = name_prefix(path, name_max_length - NAME_DIGEST_LENGTH - 1)
    providers = shared(prepared.stack).providers
    if prepared.poll_seconds not in providers:
        provider = CleanRoomsMlProvider.of(construct, poll_interval=poll_interval)
        providers[prepared.poll_seconds] = (provider, provider.service_token)
    provider, service_token = providers[prepared.poll_seconds]
    tags: TagManager | None = None
    if spec.tags is not None:
        tags = TagManager(TagType.MAP, spec.type_name, request.pop(spec.tags, None) or {})
        request[spec.tags] = tags.rendered_tags  # resolved at synth, after Tags.of aspects ran
    resource = CfnResource(
        construct, "Resource", type=spec.type_name, properties={"ServiceToken": service_token, **request, **control}
    )
    apply_removal_policy(resource, removal_policy)
    return resource, tags, provider


#: A generated name is ``<prefix>-<digest of this many characters>`` (made by the handler).
NAME_DIGEST_LENGTH = 10


@jsii.implements(IValidation)
class _TagValidation:
    """Tags applied through ``Tags.of`` are known only at synth: check them then, through CDK's validation.

    One per stack, on the stack, for all its resources that take tags: one per resource would cost node round
    trips per resource at every synth. Each message names its construct's path.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[Any, Any]] = []

    def validate(self) -> list[str]:
        messages: list[str] = []
        for construct, spec in self.entries:
            rendered = construct.cdk_tag_manager.render_tags()
            tags = dict(rendered) if isinstance(rendered, dict) else {}
            issues = [i for i in validation.check_request({"tags": tags}, spec) if i.prop.startswith("tags")]
            if issues:  # the path only when needed
                messages += validation.format_issues(construct.node.path, issues)
        return messages


def check_tags_at_synth(stack: Stack, construct: Any, spec: Any) -> None:
    """Have the stack's one tag validation check ``construct``'s final tags at synth."""
    found = shared(stack).validations.get("tags")
    if found is None:
        found = shared(stack).validations["tags"] = _TagValidation()
        stack.node.add_validation(found)
    found.entries.append((construct, spec))


_ATTRIBUTES: weakref.WeakKeyDictionary[CfnResource, dict[str, str]] = weakref.WeakKeyDictionary()


def attribute(resource: CfnResource, name: str) -> str:
    """GetAtt ``name`` of ``resource`` as a string token, made once (each costs jsii round trips)."""
    made = _ATTRIBUTES.setdefault(resource, {})
    if name not in made:
        made[name] = references.remember(resource.get_att(name).to_string(), resource.cfn_resource_type)
    return made[name]
