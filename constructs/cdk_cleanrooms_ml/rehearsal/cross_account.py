"""A job started in one account on another account's configured audience model, as the simulated service judges it.

An endpoint holds one account. ``Endpoint.share_models_of(owner)`` links it to the endpoint of another account
(the model owner's): a StartAudienceGenerationJob here whose ``configuredAudienceModelArn`` is in the owner's
account then needs that model to exist there (ResourceNotFoundException otherwise) and its resource policy
(PutConfiguredAudienceModelPolicy) to let this account start jobs on it (AccessDeniedException otherwise); the
job takes the model's settings (its sizes) as a job on a model of this endpoint does. The policy is judged as
the user guide's IAM behaviours describe a start: on the configured model and on the new job's ARN in the
owner's account. Jobs on a model of an account no endpoint here is linked to are taken on trust, as before.

What is not modelled: the owner's endpoint does not see the partner's jobs (deleting the configured model while
a partner's job uses it is not refused across endpoints), and a policy's Condition keys are not judged here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .configured_models import ConfiguredModel
from .iam import PolicyError, Request, evaluate
from .resource_kit import ServiceError

__all__ = ["START", "ModelOwners"]

START = "cleanrooms-ml:StartAudienceGenerationJob"


def _names(principal: Any, account: str, partition: str) -> bool:
    """Whether a statement's Principal names ``account`` (its id, its root ARN, or ``*``)."""
    if principal == "*":
        return True
    values = principal.get("AWS", []) if isinstance(principal, Mapping) else []
    values = values if isinstance(values, list) else [values]
    return any(v in ("*", account, f"arn:{partition}:iam::{account}:root") for v in values)


def policy_allows(policy: str | None, caller: str, partition: str, resources: list[str]) -> str | None:
    """Why the model's resource policy refuses a start by account ``caller`` on ``resources`` (None: allowed)."""
    if policy is None:
        return "the configured audience model has no resource policy"
    try:
        statements = json.loads(policy)["Statement"]
    except (ValueError, KeyError, TypeError):
        return "its resource policy is not a policy document"
    statements = statements if isinstance(statements, list) else [statements]
    for_caller = [
        {k: v for k, v in s.items() if k not in ("Principal", "Condition")}
        for s in statements
        if isinstance(s, Mapping) and _names(s.get("Principal"), caller, partition)
    ]
    if not for_caller:
        return f"its resource policy names no statement for account {caller}"
    for resource in resources:
        try:
            decision = evaluate(for_caller, Request(START, resource))
        except PolicyError as error:
            return f"its resource policy cannot be judged: {error}"
        if not decision.allowed:
            return f"its resource policy does not allow {START} on {resource} ({decision.reason})"
    return None


class ModelOwners:
    """The endpoints of other accounts whose configured audience models this account's jobs may use."""

    def __init__(self, account: str, partition: str) -> None:
        self.account, self.partition = account, partition
        self._lookups: dict[str, Callable[[str], ConfiguredModel | None]] = {}

    def add(self, owner_account: str, lookup: Callable[[str], ConfiguredModel | None]) -> None:
        self._lookups[owner_account] = lookup

    def model_for_start(self, model_arn: str) -> ConfiguredModel | None:
        """The other account's model a start names, once its policy allows the start (None: not a linked account's
        model). Raises the service's refusal otherwise."""
        parts = model_arn.split(":", 5)
        owner = parts[4] if len(parts) == 6 else ""
        lookup = self._lookups.get(owner)
        if owner == self.account or lookup is None:
            return None
        model = lookup(model_arn)
        if model is None:
            raise ServiceError("ResourceNotFoundException", f"Configured audience model {model_arn} does not exist")
        owners_job = f"{':'.join(parts[:5])}:audience-generation-job/{uuid.uuid4()}"  # the new job, owner's side
        why = policy_allows(model.policy, self.account, self.partition, [model_arn, owners_job])
        if why is not None:
            raise ServiceError(
                "AccessDeniedException",
                f"User: arn:{self.partition}:iam::{self.account}:root is not authorized to perform: {START} on "
                f"resource: {model_arn}: {why}",
            )
        return model
