"""Audience models (lookalike models), as the simulated Clean Rooms ML service keeps them.

What the documentation says (``docs/audience_model_research.md`` has the sources):

* Create answers the new ARN (``arn:<partition>:cleanrooms-ml:<region>:<account>:audience-model/<uuid>``).
  Names are unique per account, also while a model is being deleted (ConflictException). A training
  dataset the endpoint knows (``Endpoint.add_training_dataset``: a rehearsal registers the stack's) must be
  ACTIVE (ValidationException otherwise); one it knew and that was removed is ResourceNotFoundException; any
  other ARN is taken on trust.
* A model is CREATE_PENDING, then CREATE_IN_PROGRESS (training), then ACTIVE, or CREATE_FAILED with
  ``statusDetails``. With ``training_seconds`` set, over time (the endpoint's clock, which a rehearsal
  simulates): CREATE_PENDING for the first ``PENDING_SHARE`` of it, then CREATE_IN_PROGRESS until it has
  passed. Otherwise one step per GetAudienceModel read of that model (``reads_until_active`` reads see it
  unfinished; ``set_reads`` and ``fail`` script one model by name or glob pattern). A listing shows the status
  without moving it. A deleted model is DELETE_PENDING, then DELETE_IN_PROGRESS, then gone
  (ResourceNotFoundException) after ``reads_until_deleted`` reads.
* At most ``quota`` models are pending or in progress per account (the quotas page: 2 per Region):
  ServiceQuotaExceededException with ``quotaName``.
* Delete answers ConflictException while a configured audience model on this endpoint uses the model (the API
  reference: "You can't delete an audience model if there are any configured audience models that depend on
  the audience model"), or while ``block_delete`` says so.
* Get echoes what the model was created with (training window, KMS key, description, tags: the model has them
  all); ``echo="sparse"`` leaves out description and tags.

What no source says, taken as an assumption and made a setting:

* Deleting a model that is still training: accepted by default (the model goes to DELETE_PENDING; training is
  abandoned). ``delete_while_training="ConflictException"`` refuses it instead.
* Configuring (CreateConfiguredAudienceModel, or UpdateConfiguredAudienceModel to another model) a model of
  this endpoint that is not ACTIVE: refused with ConflictException by default, as an export of a job that is
  not ACTIVE is (the request conflicts with the model's state, and the same request succeeds once it is
  ACTIVE). ``untrained_configuration`` may be "ValidationException" or "accept". A model this endpoint does not
  hold (another account's, or one made without this endpoint) is taken on trust.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .resource_kit import (
    CREATING,
    DELETING,
    AccountState,
    ScriptedOutcomes,
    ServiceError,
    by_name,
    iso,
    paginate,
    quota_error,
)

__all__ = ["PENDING_MODELS_QUOTA", "UNTRAINED_ANSWERS", "AudienceModel", "AudienceModels"]

#: The quota's name on the Clean Rooms ML quotas page (2 per Region, adjustable).
PENDING_MODELS_QUOTA = "Pending/in progress audience models per customer"
#: What configuring a model that is not ACTIVE answers, and what deleting one in training answers.
UNTRAINED_ANSWERS = ("accept", "ConflictException", "ValidationException")
#: The share of ``training_seconds`` a model is CREATE_PENDING before CREATE_IN_PROGRESS (no source says).
PENDING_SHARE = 0.05
#: Members of the create request that a read echoes as they were given.
_ECHOED = ("trainingDatasetArn", "trainingDataStartTime", "trainingDataEndTime", "kmsKeyArn", "description")


@dataclass
class AudienceModel:
    """One audience model as the simulated service keeps it."""

    arn: str
    name: str
    request: dict[str, Any]
    created: float
    updated: float
    status: str = "CREATE_PENDING"
    reads: int = 0
    reads_until_done: int = 2
    failure: tuple[str, str] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    conflicts_left: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "name": self.name,
            "status": self.status,
            "tags": dict(self.tags),
            "trainingDatasetArn": self.request.get("trainingDatasetArn"),
        }


class AudienceModels(ScriptedOutcomes):
    """CreateAudienceModel, GetAudienceModel, ListAudienceModels, DeleteAudienceModel on one account, the models'
    scripted training (by name or glob pattern, for models created now or later), and the rule configured
    audience models follow."""

    def __init__(
        self,
        state: AccountState,
        conflicts_by_name: dict[str, int],
        *,
        reads_until_active: int,
        reads_until_deleted: int,
        quota: int,
        delete_while_training: str = "accept",
        untrained_configuration: str = "ConflictException",
        training_seconds: float | None = None,
    ) -> None:
        for setting, value in (
            ("delete_while_training", delete_while_training),
            ("untrained_configuration", untrained_configuration),
        ):
            if value not in UNTRAINED_ANSWERS:
                raise ValueError(f"{setting} must be one of {', '.join(UNTRAINED_ANSWERS)}, not {value!r}")
        self.state = state
        self.conflicts_by_name = conflicts_by_name  # block_delete's, shared with the other families
        self.reads_until_active = reads_until_active
        self.reads_until_deleted = reads_until_deleted
        self.quota = quota
        self.delete_while_training = delete_while_training
        self.untrained_configuration = untrained_configuration
        self.training_seconds = training_seconds
        super().__init__()

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "CreateAudienceModel": self.create,
            "GetAudienceModel": self.get,
            "ListAudienceModels": self.list,
            "DeleteAudienceModel": self.delete,
        }

    def matching(self, pattern: str) -> list[AudienceModel]:
        return [m for m in self.state.audience_models.values() if by_name({pattern: True}, m.name, False)]

    # ----------------------------------------------------------------------------------------------
    # Scripting: fail and set_reads come from ScriptedOutcomes

    # ----------------------------------------------------------------------------------------------
    # What configured audience models need to know

    def check_configurable(self, arn: str | None) -> None:
        """Refuse (per ``untrained_configuration``) to configure a model of this endpoint that is not ACTIVE."""
        model = self.state.audience_models.get(arn or "")
        if model is None or model.status == "ACTIVE" or self.untrained_configuration == "accept":
            return
        raise ServiceError(
            self.untrained_configuration,
            f"Audience model {model.arn} is {model.status}: only an ACTIVE audience model can be configured",
        )

    # ----------------------------------------------------------------------------------------------
    # The operations

    def add(self, request: dict[str, Any], arn: str | None = None) -> AudienceModel:
        """A new model from a (validated) create request, without the name and quota checks (``arn``: its ARN, for
        one put in place under an ARN a template names)."""
        name = str(request["name"])
        now = self.state.now()
        model = AudienceModel(
            arn=arn or self.state.arn("cleanrooms-ml", f"audience-model/{uuid.uuid4()}"),
            name=name,
            request={k: copy.deepcopy(v) for k, v in request.items() if k not in ("name", "tags")},
            created=now,
            updated=now,
            reads_until_done=by_name(self.reads_by_name, name, self.reads_until_active),
            failure=by_name(self.failures, name, None),
            tags=dict(request.get("tags") or {}),
            conflicts_left=by_name(self.conflicts_by_name, name, 0),
        )
        self.state.audience_models[model.arn] = model
        return model

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        if any(model.name == name for model in self.state.audience_models.values()):
            raise ServiceError(
                "ConflictException", f"An audience model with name {name} already exists in this account"
            )
        self._check_training_dataset(str(params.get("trainingDatasetArn", "")))
        for model in list(self.state.audience_models.values()):
            self._by_time(model)  # the quota counts the models still training now
        training = sum(1 for model in self.state.audience_models.values() if model.status in CREATING)
        if training >= self.quota:
            raise quota_error(PENDING_MODELS_QUOTA, self.quota)
        return {"audienceModelArn": self.add(params).arn}

    def _check_training_dataset(self, arn: str) -> None:
        status = self.state.training_datasets.get(arn)
        if status is None and arn in self.state.removed_training_datasets:
            raise ServiceError("ResourceNotFoundException", f"Training dataset {arn} does not exist")
        if status is not None and status != "ACTIVE":
            raise ServiceError("ValidationException", f"Training dataset {arn} is {status}: it must be ACTIVE")

    def _by_time(self, model: AudienceModel) -> bool:
        """With ``training_seconds``: the model's training status at the endpoint's time (True: time decides)."""
        if self.training_seconds is None or model.status not in CREATING:
            return self.training_seconds is not None
        elapsed = self.state.now() - model.created
        if elapsed >= self.training_seconds:
            model.status = "CREATE_FAILED" if model.failure else "ACTIVE"
            model.updated = model.created + self.training_seconds
        elif elapsed >= self.training_seconds * PENDING_SHARE:
            model.status = "CREATE_IN_PROGRESS"
        return True

    def find(self, arn: str) -> AudienceModel:
        model = self.state.audience_models.get(arn)
        if model is None:
            raise ServiceError("ResourceNotFoundException", f"Audience model {arn} does not exist")
        return model

    def _advance(self, model: AudienceModel) -> None:
        """One read of the model: it moves one step along its life."""
        model.reads += 1
        if self._by_time(model) and model.status not in DELETING:
            return
        if model.status in CREATING:
            if model.reads > model.reads_until_done:
                model.status, model.updated = ("CREATE_FAILED" if model.failure else "ACTIVE"), self.state.now()
            elif model.reads > 1:
                model.status = "CREATE_IN_PROGRESS"
        elif model.status in DELETING:
            if model.reads > self.reads_until_deleted:
                del self.state.audience_models[model.arn]
                raise ServiceError("ResourceNotFoundException", f"Audience model {model.arn} does not exist")
            if model.reads > 1:
                model.status = "DELETE_IN_PROGRESS"

    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        model = self.find(params["audienceModelArn"])
        self._advance(model)
        out: dict[str, Any] = {
            "createTime": iso(model.created),
            "updateTime": iso(model.updated),
            "audienceModelArn": model.arn,
            "name": model.name,
            "status": model.status,
            **{member: copy.deepcopy(model.request.get(member)) for member in _ECHOED},
            "tags": dict(model.tags),
        }
        if model.status == "CREATE_FAILED" and model.failure:
            out["statusDetails"] = {"statusCode": model.failure[0], "message": model.failure[1]}
        if self.state.sparse:
            for member in ("description", "tags"):
                out.pop(member)
        return {k: v for k, v in out.items() if v is not None}

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        model = self.find(params["audienceModelArn"])
        refusal = f"Audience model {model.arn} cannot be deleted: another resource depends on this resource"
        if model.conflicts_left > 0:
            model.conflicts_left -= 1
            raise ServiceError("ConflictException", refusal)
        users = [m.arn for m in self.state.models.values() if m.settings.get("audienceModelArn") == model.arn]
        if users:
            raise ServiceError("ConflictException", f"{refusal} (configured audience models {', '.join(users)})")
        if model.status in CREATING and self.delete_while_training != "accept":
            raise ServiceError(
                self.delete_while_training, f"Audience model {model.arn} is {model.status}: it is still training"
            )
        if model.status not in DELETING:
            model.status, model.reads, model.updated = "DELETE_PENDING", 0, self.state.now()
        return {}

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        for model in list(self.state.audience_models.values()):
            self._by_time(model)  # a listing shows the status at this time, as reads do
        page, token = paginate(list(self.state.audience_models.values()), params, self.state.page_size)
        summaries = []
        for model in page:
            summary = {
                "createTime": iso(model.created),
                "updateTime": iso(model.updated),
                "audienceModelArn": model.arn,
                "name": model.name,
                "trainingDatasetArn": model.request.get("trainingDatasetArn"),
                "status": model.status,
                "description": None if self.state.sparse else model.request.get("description"),
            }
            summaries.append({k: v for k, v in summary.items() if v is not None})
        out: dict[str, Any] = {"audienceModels": summaries}
        if token:
            out["nextToken"] = token
        return out
