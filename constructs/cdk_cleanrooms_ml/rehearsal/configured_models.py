"""Configured audience models and their resource policies, as the simulated Clean Rooms ML service keeps them.

* Create answers the new ARN (``arn:<partition>:cleanrooms-ml:<region>:<account>:configured-audience-model/<uuid>``)
  and the model is ACTIVE at once (the model's only status). Names are unique per account (ConflictException).
* Get fills in the service's defaults for members the request left out (``minMatchingSeedSize: 500``, the API
  reference's default; ``childResourceTagOnCreatePolicy: NONE``, an assumption); ``echo="sparse"`` leaves
  out the optional members (description, minMatchingSeedSize, childResourceTagOnCreatePolicy, tags).
* Update is a PATCH: only the members the request gives change. It applies to jobs started afterwards only
  (API reference): a job keeps the settings it started with.
* The audience model a create (or an update to another one) names, when it is one of this endpoint's, must be
  ACTIVE unless the endpoint says otherwise (``audience_models``: no source says what the service does).
* Delete answers ConflictException while an audience generation job that is not being deleted uses the
  model ("another resource depends on this resource"), or while ``block_delete`` says so. It deletes the
  model's policy and removes the model from every collaboration it is associated to (API reference: the
  model's associations go with it).
* The policy: Put answers the policy and its ``policyHash`` (SHA-256 of the policy text, hex); it honours
  ``previousPolicyHash`` and ``policyExistenceCondition`` with ConflictException (the API reference lists no
  error for a failed precondition: ConflictException, 409, is the service's error for a request that
  conflicts with the resource's current state); the text must be a JSON object (ValidationException).
  Get and Delete answer ResourceNotFoundException when the model has no policy.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .resource_kit import DELETING, AccountState, ServiceError, by_name, iso, paginate

__all__ = [
    "DEFAULT_MIN_MATCHING_SEED_SIZE",
    "ConfiguredModel",
    "ConfiguredModels",
    "output_destination",
    "policy_hash",
]

#: The API reference: "The default value is 500."
DEFAULT_MIN_MATCHING_SEED_SIZE = 500
#: Not documented: a model created without a policy for its jobs' tags is taken to tag nothing.
DEFAULT_TAG_ON_CREATE = "NONE"
#: The members UpdateConfiguredAudienceModel may change.
UPDATABLE = (
    "outputConfig",
    "audienceModelArn",
    "sharedAudienceMetrics",
    "minMatchingSeedSize",
    "audienceSizeConfig",
    "description",
)


def policy_hash(policy: str) -> str:
    """The hash the service answers for a policy: stable for the same text, 64 hex digits (the model's Hash)."""
    return hashlib.sha256(policy.encode()).hexdigest()


def output_destination(settings: dict[str, Any] | None) -> str | None:
    """Where a configured model's audiences go (``outputConfig.destination.s3Destination.s3Uri``)."""
    destination = ((settings or {}).get("outputConfig") or {}).get("destination") or {}
    uri = (destination.get("s3Destination") or {}).get("s3Uri")
    return str(uri) if uri else None


@dataclass
class ConfiguredModel:
    """One configured audience model: its settings (the create request, patched by updates) and its policy."""

    arn: str
    name: str
    settings: dict[str, Any]
    created: float
    updated: float
    tags: dict[str, str] = field(default_factory=dict)
    policy: str | None = None
    conflicts_left: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "name": self.name,
            "status": "ACTIVE",
            **copy.deepcopy(self.settings),
            "tags": dict(self.tags),
            "policy": self.policy,
            "policyHash": None if self.policy is None else policy_hash(self.policy),
        }


class ConfiguredModels:
    """The CreateConfiguredAudienceModel... and ...ConfiguredAudienceModelPolicy operations on one account."""

    def __init__(
        self,
        state: AccountState,
        conflicts_by_name: dict[str, int],
        check_audience_model: Callable[[str | None], None] = lambda _arn: None,
    ) -> None:
        """
        :param check_audience_model: raises a ServiceError when the audience model (ARN) may not be configured
            (``audience_models.AudienceModels.check_configurable``).
        """
        self.state = state
        self._conflicts_by_name = conflicts_by_name  # block_delete's, shared with the jobs
        self._check_audience_model = check_audience_model

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "CreateConfiguredAudienceModel": self.create,
            "GetConfiguredAudienceModel": self.get,
            "UpdateConfiguredAudienceModel": self.update,
            "DeleteConfiguredAudienceModel": self.delete,
            "ListConfiguredAudienceModels": self.list,
            "PutConfiguredAudienceModelPolicy": self.put_policy,
            "GetConfiguredAudienceModelPolicy": self.get_policy,
            "DeleteConfiguredAudienceModelPolicy": self.delete_policy,
        }

    # ----------------------------------------------------------------------------------------------
    # The model

    def add(self, request: dict[str, Any]) -> ConfiguredModel:
        """A new model from a (validated) create request, without the name check."""
        name = str(request["name"])
        now = time.time()
        settings = {k: copy.deepcopy(v) for k, v in request.items() if k not in ("name", "tags")}
        model = ConfiguredModel(
            arn=self.state.arn("cleanrooms-ml", f"configured-audience-model/{uuid.uuid4()}"),
            name=name,
            settings=settings,
            created=now,
            updated=now,
            tags=dict(request.get("tags") or {}),
            conflicts_left=by_name(self._conflicts_by_name, name, 0),
        )
        self.state.models[model.arn] = model
        return model

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        if any(model.name == name for model in self.state.models.values()):
            raise ServiceError(
                "ConflictException", f"A configured audience model with name {name} already exists in this account"
            )
        self._check_audience_model(params["audienceModelArn"])
        return {"configuredAudienceModelArn": self.add(params).arn}

    def find(self, arn: str) -> ConfiguredModel:
        model = self.state.models.get(arn)
        if model is None:
            raise ServiceError("ResourceNotFoundException", f"Configured audience model {arn} does not exist")
        return model

    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        model = self.find(params["configuredAudienceModelArn"])
        settings = model.settings
        out: dict[str, Any] = {
            "createTime": iso(model.created),
            "updateTime": iso(model.updated),
            "configuredAudienceModelArn": model.arn,
            "name": model.name,
            "audienceModelArn": settings.get("audienceModelArn"),
            "outputConfig": settings.get("outputConfig"),
            "status": "ACTIVE",
            "sharedAudienceMetrics": settings.get("sharedAudienceMetrics"),
            "audienceSizeConfig": settings.get("audienceSizeConfig"),
            "description": settings.get("description"),
            "minMatchingSeedSize": settings.get("minMatchingSeedSize", DEFAULT_MIN_MATCHING_SEED_SIZE),
            "childResourceTagOnCreatePolicy": settings.get("childResourceTagOnCreatePolicy", DEFAULT_TAG_ON_CREATE),
            "tags": dict(model.tags),
        }
        if self.state.sparse:
            for key in ("description", "minMatchingSeedSize", "childResourceTagOnCreatePolicy", "tags"):
                out.pop(key)
        return {k: copy.deepcopy(v) for k, v in out.items() if v is not None}

    def update(self, params: dict[str, Any]) -> dict[str, Any]:
        model = self.find(params["configuredAudienceModelArn"])
        if params.get("audienceModelArn") not in (None, model.settings.get("audienceModelArn")):
            self._check_audience_model(params["audienceModelArn"])
        changes = {k: copy.deepcopy(params[k]) for k in UPDATABLE if params.get(k) is not None}
        if changes:
            model.settings.update(changes)
            model.updated = time.time()
        return {"configuredAudienceModelArn": model.arn}

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        model = self.find(params["configuredAudienceModelArn"])
        refusal = f"Configured audience model {model.arn} cannot be deleted: another resource depends on this resource"
        if model.conflicts_left > 0:
            model.conflicts_left -= 1
            raise ServiceError("ConflictException", refusal)
        users = [j.arn for j in self.state.jobs.values() if j.model_arn == model.arn and j.status not in DELETING]
        if users:
            raise ServiceError("ConflictException", f"{refusal} (audience generation jobs {', '.join(users)})")
        del self.state.models[model.arn]
        for association in [a for a in self.state.associations.values() if a.model_arn == model.arn]:
            del self.state.associations[association.arn]
        return {}

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        page, token = paginate(list(self.state.models.values()), params, self.state.page_size)
        summaries = []
        for model in page:
            summary = {
                "createTime": iso(model.created),
                "updateTime": iso(model.updated),
                "name": model.name,
                "audienceModelArn": model.settings.get("audienceModelArn"),
                "outputConfig": copy.deepcopy(model.settings.get("outputConfig")),
                "description": None if self.state.sparse else model.settings.get("description"),
                "configuredAudienceModelArn": model.arn,
                "status": "ACTIVE",
            }
            summaries.append({k: v for k, v in summary.items() if v is not None})
        out: dict[str, Any] = {"configuredAudienceModels": summaries}
        if token:
            out["nextToken"] = token
        return out

    def child_tags(self, model_arn: str | None, request_tags: dict[str, str]) -> dict[str, str]:
        """A new job's tags: the model's first when its childResourceTagOnCreatePolicy is FROM_PARENT_RESOURCE,
        the request's override them (API reference)."""
        model = self.state.models.get(model_arn or "")
        if model is None or model.settings.get("childResourceTagOnCreatePolicy") != "FROM_PARENT_RESOURCE":
            return dict(request_tags)
        return {**model.tags, **request_tags}

    # ----------------------------------------------------------------------------------------------
    # The policy

    def put_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params["configuredAudienceModelPolicy"]
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ServiceError(
                "ValidationException", "configuredAudienceModelPolicy must be a policy document (a JSON object)"
            )
        model = self.find(params["configuredAudienceModelArn"])
        condition = params.get("policyExistenceCondition")
        if condition == "POLICY_MUST_EXIST" and model.policy is None:
            raise ServiceError(
                "ConflictException", f"Configured audience model {model.arn} has no policy (POLICY_MUST_EXIST)"
            )
        if condition == "POLICY_MUST_NOT_EXIST" and model.policy is not None:
            raise ServiceError(
                "ConflictException",
                f"Configured audience model {model.arn} already has a policy (POLICY_MUST_NOT_EXIST)",
            )
        previous = params.get("previousPolicyHash")
        if previous is not None and (model.policy is None or policy_hash(model.policy) != previous):
            raise ServiceError(
                "ConflictException",
                f"previousPolicyHash {previous} does not match the current policy of configured audience model "
                f"{model.arn}: it was changed since it was read",
            )
        model.policy = text
        return {"configuredAudienceModelPolicy": text, "policyHash": policy_hash(text)}

    def _policy_of(self, arn: str) -> tuple[ConfiguredModel, str]:
        model = self.find(arn)
        if model.policy is None:
            raise ServiceError("ResourceNotFoundException", f"Configured audience model {arn} has no policy")
        return model, model.policy

    def get_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        model, policy = self._policy_of(params["configuredAudienceModelArn"])
        return {
            "configuredAudienceModelArn": model.arn,
            "configuredAudienceModelPolicy": policy,
            "policyHash": policy_hash(policy),
        }

    def delete_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        model, _ = self._policy_of(params["configuredAudienceModelArn"])
        model.policy = None
        return {}
