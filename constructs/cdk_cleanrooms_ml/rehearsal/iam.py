"""IAM as an account evaluates it, offline: identity policies from a template, requests from API calls.

Usage::

    from cdk_cleanrooms_ml.rehearsal import iam

    statements = iam.role_statements(template, "HandlerRoleLogicalId", resolver.resolve)
    for call in endpoint.calls:
        for request in iam.requests_for_call(call.operation, call.params, caller):
            decision = iam.evaluate(statements, request)   # decision.allowed, decision.reason

What it models (identity-based policies of one principal, the AWS policy evaluation logic reduced to them):

* An explicit Deny wins; otherwise an Allow must match; otherwise the request is implicitly denied.
* ``Action``/``NotAction`` (case-insensitive) and ``Resource``/``NotResource`` (case-sensitive, ARN
  component by component like ``ArnLike``) with the ``*`` and ``?`` wildcards.
* Conditions: the String, Arn, Bool, Numeric and Null operators, their ``...IfExists`` forms and the
  ``ForAnyValue:``/``ForAllValues:`` set qualifiers. Several values for one key: OR (NOR for a negated
  operator); several keys or operators: AND. A key missing from the request fails a matching operator,
  passes a negated one (``StringNotEquals``...) and passes any ``...IfExists`` one (IAM User Guide,
  "Condition operators"); ``ForAllValues`` passes and ``ForAnyValue`` fails on a missing key.

What it does not model, on purpose: resource-based policies, permissions boundaries, SCPs/RCPs, session
policies, policy variables (``${aws:username}``), Date/IpAddress/Binary operators (an unknown operator
raises ``PolicyError`` rather than guessing), and context keys AWS adds itself (``aws:ResourceTag/...``,
``aws:PrincipalArn``...): a request carries only the keys its mapping gives it.

``CALL_REQUESTS`` maps each API call the handler makes to the requests IAM evaluates for it; it is a
table keyed by (botocore service name, operation) so other operations slot in as one line each. Each
mapping follows the Service Authorization Reference (the resource types and condition keys an action takes,
and its dependent actions where the request names their resource), plus ``iam:PassRole`` for a role the
service is handed and ``TagResource`` for tags given on create. What a mapping cannot know: the resources a
request does not name (deleting an association does not name its configured audience model, so the SAR's
dependent actions on the model's policy are not derived).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .template import Resolver, StackTemplate, fake_physical, is_custom

__all__ = [
    "CALL_REQUESTS",
    "NEW_RESOURCE_ID",
    "PASSED_TO_SERVICE",
    "STARTED_JOB_ID",
    "Caller",
    "Decision",
    "PolicyError",
    "Request",
    "arn_matches",
    "evaluate",
    "paper_resolver",
    "requests_for_call",
    "role_statements",
    "wildcard_matches",
]

#: Context values: one string, or several for a multivalued key such as ``aws:TagKeys``.
ContextValue = str | tuple[str, ...]


class PolicyError(ValueError):
    """A policy or request this evaluator cannot judge (malformed, or a feature it does not model)."""


@dataclass(frozen=True)
class Request:
    """One authorization request: an action on a resource, with the request's context keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    why: str = ""  # what the request stands for, for messages

    def __str__(self) -> str:
        context = f" with {dict(self.context)}" if self.context else ""
        why = f" ({self.why})" if self.why else ""
        return f"{self.action} on {self.resource}{context}{why}"


@dataclass(frozen=True)
class Decision:
    """The outcome: allowed or not, and why (the statement that decided, or what each candidate missed)."""

    request: Request
    allowed: bool
    reason: str

    def __str__(self) -> str:
        return f"{'ALLOWED' if self.allowed else 'DENIED'}: {self.request}: {self.reason}"


# --------------------------------------------------------------------------------------------------
# Matching


@lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's ``*`` (any run of characters, none included) and ``?`` (one character) over the whole value."""
    return _wildcard_regex(pattern, ignore_case).fullmatch(value) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """``ArnLike``: each of the six colon-separated components matched on its own (the last may hold colons).

    A pattern that is not a six-component ARN (``*`` itself, say) is matched against the whole value.
    """
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6:
        return wildcard_matches(pattern, arn)
    if len(arn_parts) != 6:
        return False
    return all(wildcard_matches(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _as_text(value: Any) -> str:
    if isinstance(value, bool):  # a template's JSON true is IAM's "true"
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------------------
# Conditions

_Matcher = Callable[[str, str], bool]


def _numeric(compare: Callable[[float, float], bool]) -> _Matcher:
    def match(context_value: str, policy_value: str) -> bool:
        try:
            return compare(float(context_value), float(policy_value))
        except ValueError:
            return False

    return match


#: Base operator -> (whether one context value matches one policy value, negated?).
_OPERATORS: dict[str, tuple[_Matcher, bool]] = {
    "StringEquals": (lambda c, p: c == p, False),
    "StringNotEquals": (lambda c, p: c == p, True),
    "StringEqualsIgnoreCase": (lambda c, p: c.casefold() == p.casefold(), False),
    "StringNotEqualsIgnoreCase": (lambda c, p: c.casefold() == p.casefold(), True),
    "StringLike": (lambda c, p: wildcard_matches(p, c), False),
    "StringNotLike": (lambda c, p: wildcard_matches(p, c), True),
    # ArnEquals and ArnLike are one operator in IAM: both take wildcards, component by component.
    "ArnEquals": (lambda c, p: arn_matches(p, c), False),
    "ArnLike": (lambda c, p: arn_matches(p, c), False),
    "ArnNotEquals": (lambda c, p: arn_matches(p, c), True),
    "ArnNotLike": (lambda c, p: arn_matches(p, c), True),
    "Bool": (lambda c, p: c.lower() == p.lower(), False),
    "NumericEquals": (_numeric(lambda c, p: c == p), False),
    "NumericNotEquals": (_numeric(lambda c, p: c == p), True),
    "NumericLessThan": (_numeric(lambda c, p: c < p), False),
    "NumericLessThanEquals": (_numeric(lambda c, p: c <= p), False),
    "NumericGreaterThan": (_numeric(lambda c, p: c > p), False),
    "NumericGreaterThanEquals": (_numeric(lambda c, p: c >= p), False),
}
_SET_QUALIFIERS = ("ForAnyValue", "ForAllValues")


def _lookup(context: Mapping[str, ContextValue], key: str) -> ContextValue | None:
    """Condition keys are case-insensitive."""
    wanted = key.lower()
    return next((value for name, value in context.items() if name.lower() == wanted), None)


def _operator_holds(operator: str, key: str, policy_values: list[str], context: Mapping[str, ContextValue]) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if qualifier and qualifier not in _SET_QUALIFIERS:
        raise PolicyError(f"unknown condition set qualifier {qualifier!r} in {operator!r}")
    value = _lookup(context, key)
    if base == "Null":
        if qualifier:
            raise PolicyError(f"{operator!r}: Null takes no set qualifier")
        absent = value is None or value == ()
        return any(absent == (p.lower() == "true") for p in policy_values)
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise PolicyError(f"condition operator {operator!r} is not modelled (known: {', '.join(_OPERATORS)}, Null)")
    match, negated = _OPERATORS[base]

    def one(context_value: str) -> bool:
        """One context value against the policy values: OR, or NOR for a negated operator."""
        hit = any(match(context_value, p) for p in policy_values)
        return not hit if negated else hit

    if value is None:
        if if_exists or qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated
    values = (value,) if isinstance(value, str) else tuple(value)
    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    if len(values) != 1:
        raise PolicyError(
            f"{key} has several values in the request ({list(values)}): a multivalued key needs ForAnyValue: "
            f"or ForAllValues: before {operator!r} (IAM User Guide, single- vs multivalued context keys)"
        )
    return one(values[0])


def _failed_condition(condition: Mapping[str, Any], context: Mapping[str, ContextValue]) -> str | None:
    """The first condition (operator, key) that does not hold, or None when all hold (AND of all)."""
    for operator, keys in condition.items():
        if not isinstance(keys, Mapping):
            raise PolicyError(f"condition {operator!r} must map keys to values, got {keys!r}")
        for key, values in keys.items():
            policy_values = [_as_text(v) for v in _as_list(values)]
            if not _operator_holds(operator, key, policy_values, context):
                return f"{operator} {key} {policy_values} (request: {_lookup(context, key)!r})"
    return None


# --------------------------------------------------------------------------------------------------
# Statements


def _label(statement: Mapping[str, Any], index: int) -> str:
    return str(statement.get("Sid") or f"statement #{index}")


def _element(statement: Mapping[str, Any], name: str, label: str) -> tuple[list[str], bool]:
    """``Action``/``NotAction`` (or ``Resource``/``NotResource``): the values and whether it is the Not form."""
    present = [key for key in (name, f"Not{name}") if key in statement]
    if len(present) != 1:
        raise PolicyError(f"{label}: needs exactly one of {name} and Not{name}, has {present or 'neither'}")
    values = [str(v) for v in _as_list(statement[present[0]])]
    return values, present[0].startswith("Not")


def _why_not(statement: Mapping[str, Any], label: str, request: Request) -> str | None:
    """None when the statement applies to the request, else what does not match."""
    if "Principal" in statement or "NotPrincipal" in statement:
        raise PolicyError(f"{label}: an identity policy statement has no Principal")
    actions, not_action = _element(statement, "Action", label)
    if any(wildcard_matches(a, request.action, ignore_case=True) for a in actions) == not_action:
        return "action not matched"
    resources, not_resource = _element(statement, "Resource", label)
    if any(arn_matches(r, request.resource) for r in resources) == not_resource:
        return f"resource not matched (statement resources: {resources})"
    failed = _failed_condition(statement.get("Condition") or {}, request.context)
    return f"condition failed: {failed}" if failed else None


def evaluate(statements: Sequence[Mapping[str, Any]], request: Request) -> Decision:
    """Judge ``request`` against identity-policy ``statements`` (resolved JSON): Deny wins, then an Allow must match."""
    allowed_by: str | None = None
    misses: list[str] = []
    for index, statement in enumerate(statements):
        label = _label(statement, index)
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"{label}: Effect must be Allow or Deny, got {effect!r}")
        why_not = _why_not(statement, label, request)
        if why_not is None and effect == "Deny":
            return Decision(request, False, f"explicitly denied by {label}")
        if why_not is None and allowed_by is None:
            allowed_by = label
        elif why_not is not None and effect == "Allow" and why_not != "action not matched":
            misses.append(f"{label}: {why_not}")
    if allowed_by is not None:
        return Decision(request, True, f"allowed by {allowed_by}")
    detail = "; ".join(misses) if misses else "no statement grants the action"
    return Decision(request, False, f"implicitly denied: {detail}")


# --------------------------------------------------------------------------------------------------
# A role's statements in a template

_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def _statements_of(document: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(document, Mapping) or "Statement" not in document:
        raise PolicyError(f"{where}: not a policy document: {document!r}")
    statements = _as_list(document["Statement"])
    if not all(isinstance(s, Mapping) for s in statements):
        raise PolicyError(f"{where}: every statement must be an object")
    return [dict(s) for s in statements]


def role_statements(
    template: Mapping[str, Any], role_logical_id: str, resolve: Callable[[Any], Any]
) -> list[dict[str, Any]]:
    """Every identity-policy statement of the template's role ``role_logical_id``, intrinsics resolved.

    Its inline ``Policies`` and every ``AWS::IAM::Policy``/``AWS::IAM::ManagedPolicy`` of the template
    that names it in ``Roles``. A role with ``ManagedPolicyArns`` raises: those policies are not in the
    template, so judging without them could only be wrong.
    """
    resources: Mapping[str, Any] = template.get("Resources", {})
    role = resources.get(role_logical_id)
    if role is None or role.get("Type") != "AWS::IAM::Role":
        raise PolicyError(f"{role_logical_id} is not an AWS::IAM::Role of the template")
    properties = role.get("Properties", {})
    if properties.get("ManagedPolicyArns"):
        raise PolicyError(
            f"{role_logical_id} has ManagedPolicyArns {properties['ManagedPolicyArns']}: their statements are "
            "not in the template"
        )
    statements: list[dict[str, Any]] = []
    for policy in _as_list(properties.get("Policies") or []):
        name = policy.get("PolicyName", "?")
        statements += _statements_of(resolve(policy.get("PolicyDocument")), f"{role_logical_id} policy {name}")
    role_name = resolve({"Ref": role_logical_id})
    for logical_id, resource in resources.items():
        if resource.get("Type") not in _POLICY_TYPES:
            continue
        attached = resolve(resource.get("Properties", {}).get("Roles") or [])
        if role_name in attached:
            if "Condition" in resource:
                raise PolicyError(f"{logical_id} exists only under the condition {resource['Condition']!r}")
            document = resolve(resource["Properties"].get("PolicyDocument"))
            statements += _statements_of(document, logical_id)
    return statements


def paper_resolver(stack: StackTemplate) -> Resolver:
    """Intrinsics resolved as the rehearsal resolves them: every resource but the custom ones exists on paper.

    ``fake_physical`` is deterministic, so the ARNs match what a rehearsal of the same stack handed the handlers.
    """
    physical: dict[str, str] = {}
    attributes: dict[str, dict[str, Any]] = {}
    for logical_id, resource in stack.resources.items():
        if not is_custom(str(resource.get("Type", ""))):
            physical[logical_id], attributes[logical_id] = fake_physical(stack, logical_id, resource)
    return Resolver(stack, physical, attributes)


# --------------------------------------------------------------------------------------------------
# API calls -> the requests IAM evaluates


@dataclass(frozen=True)
class Caller:
    """Who makes the calls: the partition, region and account of the stack (the handler's role lives there)."""

    partition: str
    region: str
    account: str

    @staticmethod
    def of_stack(stack: StackTemplate) -> Caller:
        return Caller(stack.partition, stack.region, stack.account)


#: IAM's service prefix for a botocore service name (they differ for Clean Rooms ML).
SERVICE_PREFIXES = {"cleanroomsml": "cleanrooms-ml", "cleanrooms": "cleanrooms"}

#: Kept here, not imported from ``iam_statements`` (which imports aws_cdk): the rehearsal runs without jsii.
PASSED_TO_SERVICE = "cleanrooms-ml.amazonaws.com"

#: A new resource's id is in the service's answer, not in the request; the ARNs a create is authorized on use
#: this one. A policy grants such ARNs with a ``/*`` wildcard, so any id is judged the same.
NEW_RESOURCE_ID = "id-assigned-by-the-service"
#: The name the job mapping has always used for it.
STARTED_JOB_ID = NEW_RESOURCE_ID

#: (action, the call's decoded parameters, the caller) -> the requests IAM evaluates.
CallRequests = Callable[[str, Mapping[str, Any], Caller], list[Request]]


def _arn_parts(arn: str, what: str) -> list[str]:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise PolicyError(f"{what} is not an ARN: {arn!r}")
    return parts


def _tag_context(tags: Mapping[str, str]) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {f"aws:RequestTag/{key}": str(value) for key, value in tags.items()}
    context["aws:TagKeys"] = tuple(tags)
    return context


def _required(params: Mapping[str, Any], name: str, action: str) -> Any:
    if params.get(name) in (None, ""):
        raise PolicyError(f"{action}: the call has no {name!r}, so the resource it acts on is unknown")
    return params[name]


def on_arn(member: str, *, tags: str | None = None, tag_keys: str | None = None) -> CallRequests:
    """The action on the ARN in the request member ``member`` (with the tag context keys, when given)."""

    def requests(action: str, params: Mapping[str, Any], caller: Caller) -> list[Request]:
        context: dict[str, ContextValue] = {}
        if tags and params.get(tags):
            context = _tag_context(params[tags])
        if tag_keys and params.get(tag_keys):
            context["aws:TagKeys"] = tuple(str(k) for k in params[tag_keys])
        return [Request(action, str(_required(params, member, action)), context, f"the {member}")]

    return requests


def on_every_resource(action: str, params: Mapping[str, Any], caller: Caller) -> list[Request]:
    """An action without a resource type: IAM evaluates it on ``*``."""
    return [Request(action, "*", {}, "no resource type")]


def _start_audience_generation_job(action: str, params: Mapping[str, Any], caller: Caller) -> list[Request]:
    """The model (SAR), the job ARN in the caller's account and, for another account's model, in the owner's
    (Clean Rooms ML user guide, IAM behaviours); PassRole of the seed role; TagResource when tagged on start."""
    model = str(_required(params, "configuredAudienceModelArn", action))
    _, partition, _, region, owner, _ = _arn_parts(model, "configuredAudienceModelArn")
    context: dict[str, ContextValue] = {}
    if params.get("collaborationId"):
        context["cleanrooms-ml:CollaborationId"] = str(params["collaborationId"])
    tags = params.get("tags") or {}
    tag_context = _tag_context(tags) if tags else {}
    context.update(tag_context)

    def job(account: str) -> str:
        return f"arn:{partition}:cleanrooms-ml:{region}:{account}:audience-generation-job/{STARTED_JOB_ID}"

    requests = [
        Request(action, model, context, "the configured audience model"),
        Request(action, job(caller.account), context, "the new job, in the caller's account"),
    ]
    if owner != caller.account:
        requests.append(Request(action, job(owner), context, "the new job, in the model owner's account"))
    role = str(_required(_required(params, "seedAudience", action), "roleArn", action))
    requests.append(_passed_role(role, "the seed role"))
    if tags:
        requests.append(Request("cleanrooms-ml:TagResource", job(caller.account), tag_context, "tags on start"))
    return requests


def on_arn_or_every_resource(member: str) -> CallRequests:
    """The action on the ARN in ``member`` when the call names one (a List narrowed to it), else on ``*``."""

    def requests(action: str, params: Mapping[str, Any], caller: Caller) -> list[Request]:
        if params.get(member):
            return [Request(action, str(params[member]), {}, f"the {member}")]
        return [Request(action, "*", {}, f"no {member}: every resource")]

    return requests


def _passed_role(role: str, why: str) -> Request:
    return Request("iam:PassRole", role, {"iam:PassedToService": PASSED_TO_SERVICE}, why)


def _new_resource(caller: Caller, resource_type: str) -> str:
    """The ARN a create is authorized on for the Clean Rooms ML resource it makes (its id not known yet)."""
    return f"arn:{caller.partition}:cleanrooms-ml:{caller.region}:{caller.account}:{resource_type}/{NEW_RESOURCE_ID}"


def _new_configured_model(caller: Caller) -> str:
    return _new_resource(caller, "configured-audience-model")


def _create_configured_audience_model(action: str, params: Mapping[str, Any], caller: Caller) -> list[Request]:
    """The audience model it configures (the SAR's only resource type for it), with the request's tags; PassRole
    of the output role to Clean Rooms ML; TagResource on the new model when tagged on create."""
    model = str(_required(params, "audienceModelArn", action))
    tags = params.get("tags") or {}
    tag_context = _tag_context(tags) if tags else {}
    role = str(_required(_required(params, "outputConfig", action), "roleArn", action))
    requests = [
        Request(action, model, tag_context, "the audience model"),
        _passed_role(role, "the output role (outputConfig.roleArn)"),
    ]
    if tags:
        requests.append(
            Request("cleanrooms-ml:TagResource", _new_configured_model(caller), tag_context, "tags on create")
        )
    return requests


def _create_audience_model(action: str, params: Mapping[str, Any], caller: Caller) -> list[Request]:
    """The training dataset it trains on (the SAR's resource type for it), with the request's tags; TagResource on
    the new audience model when tagged on create. The KMS key (``kmsKeyArn``) is not a request of the caller's:
    the SAR names no dependent KMS action, and no role is passed (the training dataset holds the data role)."""
    dataset = str(_required(params, "trainingDatasetArn", action))
    tags = params.get("tags") or {}
    tag_context = _tag_context(tags) if tags else {}
    requests = [Request(action, dataset, tag_context, "the training dataset")]
    if tags:
        new_model = _new_resource(caller, "audience-model")
        requests.append(Request("cleanrooms-ml:TagResource", new_model, tag_context, "tags on create"))
    return requests


def _update_configured_audience_model(action: str, params: Mapping[str, Any], caller: Caller) -> list[Request]:
    """The configured model; the new audience model when it changes (the SAR lists both resource types);
    PassRole of a new output role."""
    requests = [Request(action, str(_required(params, "configuredAudienceModelArn", action)), {}, "the model")]
    if params.get("audienceModelArn"):
        requests.append(Request(action, str(params["audienceModelArn"]), {}, "the new audience model"))
    role = (params.get("outputConfig") or {}).get("roleArn")
    if role:
        requests.append(_passed_role(str(role), "the new output role (outputConfig.roleArn)"))
    return requests


def _membership_arn(params: Mapping[str, Any], caller: Caller, action: str) -> str:
    membership = str(_required(params, "membershipIdentifier", action))
    return f"arn:{caller.partition}:cleanrooms:{caller.region}:{caller.account}:membership/{membership}"


def on_membership(action: str, params: Mapping[str, Any], caller: Caller) -> list[Request]:
    """The membership the call names (``membershipIdentifier``: an id, in the caller's account and region)."""
    return [Request(action, _membership_arn(params, caller, action), {}, "the membership")]


def on_association(action: str, params: Mapping[str, Any], caller: Caller) -> list[Request]:
    """The association the call names: ``<membership ARN>/configuredaudiencemodelassociation/<id>``."""
    association = str(_required(params, "configuredAudienceModelAssociationIdentifier", action))
    arn = f"{_membership_arn(params, caller, action)}/configuredaudiencemodelassociation/{association}"
    return [Request(action, arn, {}, "the association")]


def _create_configured_audience_model_association(
    action: str, params: Mapping[str, Any], caller: Caller
) -> list[Request]:
    """The SAR's two resource types (the membership, the new association) with the request's tags; its
    dependent actions on the configured model: GetConfiguredAudienceModel always, and the model's policy
    (Get/PutConfiguredAudienceModelPolicy) when Clean Rooms is to manage it (``manageResourcePolicies``, whose
    API reference says it needs those permissions); TagResource on the new association when tagged on create."""
    membership = _membership_arn(params, caller, action)
    association = f"{membership}/configuredaudiencemodelassociation/{NEW_RESOURCE_ID}"
    model = str(_required(params, "configuredAudienceModelArn", action))
    tags = params.get("tags") or {}
    tag_context = _tag_context(tags) if tags else {}
    requests = [
        Request(action, membership, tag_context, "the membership"),
        Request(action, association, tag_context, "the new association"),
        Request("cleanrooms-ml:GetConfiguredAudienceModel", model, {}, "the configured model (dependent action)"),
    ]
    if params.get("manageResourcePolicies"):
        for policy_action in ("GetConfiguredAudienceModelPolicy", "PutConfiguredAudienceModelPolicy"):
            requests.append(
                Request(f"cleanrooms-ml:{policy_action}", model, {}, "the model's policy (manageResourcePolicies)")
            )
    if tags:
        requests.append(Request("cleanrooms:TagResource", association, tag_context, "tags on create"))
    return requests


_ON_JOB = on_arn("audienceGenerationJobArn")
_ON_CONFIGURED_MODEL = on_arn("configuredAudienceModelArn")
_ON_AUDIENCE_MODEL = on_arn("audienceModelArn")
_TAGGING: dict[str, CallRequests] = {
    "TagResource": on_arn("resourceArn", tags="tags"),
    "UntagResource": on_arn("resourceArn", tag_keys="tagKeys"),
    "ListTagsForResource": on_arn("resourceArn"),
}

#: (botocore service name, operation) -> the requests IAM evaluates for one call.
CALL_REQUESTS: dict[tuple[str, str], CallRequests] = {
    ("cleanroomsml", "StartAudienceGenerationJob"): _start_audience_generation_job,
    ("cleanroomsml", "GetAudienceGenerationJob"): _ON_JOB,
    ("cleanroomsml", "DeleteAudienceGenerationJob"): _ON_JOB,
    ("cleanroomsml", "ListAudienceGenerationJobs"): on_every_resource,
    ("cleanroomsml", "StartAudienceExportJob"): _ON_JOB,
    ("cleanroomsml", "ListAudienceExportJobs"): on_arn_or_every_resource("audienceGenerationJobArn"),
    ("cleanroomsml", "CreateConfiguredAudienceModel"): _create_configured_audience_model,
    ("cleanroomsml", "GetConfiguredAudienceModel"): _ON_CONFIGURED_MODEL,
    ("cleanroomsml", "UpdateConfiguredAudienceModel"): _update_configured_audience_model,
    ("cleanroomsml", "DeleteConfiguredAudienceModel"): _ON_CONFIGURED_MODEL,
    ("cleanroomsml", "ListConfiguredAudienceModels"): on_every_resource,
    ("cleanroomsml", "PutConfiguredAudienceModelPolicy"): _ON_CONFIGURED_MODEL,
    ("cleanroomsml", "GetConfiguredAudienceModelPolicy"): _ON_CONFIGURED_MODEL,
    ("cleanroomsml", "DeleteConfiguredAudienceModelPolicy"): _ON_CONFIGURED_MODEL,
    ("cleanroomsml", "CreateAudienceModel"): _create_audience_model,
    ("cleanroomsml", "GetAudienceModel"): _ON_AUDIENCE_MODEL,
    ("cleanroomsml", "DeleteAudienceModel"): _ON_AUDIENCE_MODEL,
    ("cleanroomsml", "ListAudienceModels"): on_every_resource,
    **{("cleanroomsml", operation): requests for operation, requests in _TAGGING.items()},
    ("cleanrooms", "CreateConfiguredAudienceModelAssociation"): _create_configured_audience_model_association,
    ("cleanrooms", "GetConfiguredAudienceModelAssociation"): on_association,
    ("cleanrooms", "UpdateConfiguredAudienceModelAssociation"): on_association,
    # The SAR's dependent actions on the model's policy cannot be derived: the request does not name the model.
    ("cleanrooms", "DeleteConfiguredAudienceModelAssociation"): on_association,
    ("cleanrooms", "ListConfiguredAudienceModelAssociations"): on_membership,
    **{("cleanrooms", operation): requests for operation, requests in _TAGGING.items()},
}


def requests_for_call(
    operation: str, params: Mapping[str, Any], caller: Caller, *, service: str = "cleanroomsml"
) -> list[Request]:
    """The requests IAM evaluates for one API call (``operation`` with its decoded ``params``)."""
    mapping = CALL_REQUESTS.get((service, operation))
    if mapping is None:
        known = ", ".join(f"{s}.{o}" for s, o in CALL_REQUESTS)
        raise PolicyError(f"no IAM mapping for {service}.{operation}; add it to CALL_REQUESTS (known: {known})")
    return mapping(f"{SERVICE_PREFIXES[service]}:{operation}", params, caller)
