"""Configured audience model associations, as the simulated AWS Clean Rooms (``cleanrooms``) service keeps them.

An association puts a configured audience model into the collaboration of one of the caller's memberships.

* Memberships are not simulated: any membership id is one of this account's, in a collaboration whose id is
  made up from it (stable; ``add_membership`` sets it). The membership ARN is
  ``arn:<partition>:cleanrooms:<region>:<account>:membership/<membership id>``, the association's
  ``<membership ARN>/configuredaudiencemodelassociation/<uuid>``.
* Create: the model must exist on this endpoint when its ARN is of this endpoint's account
  (ResourceNotFoundException); another account's model is taken on trust. Names are unique per membership
  (ConflictException, reason ALREADY_EXISTS, on create and on rename); at most 5 associations per
  membership (ServiceQuotaExceededException, the user guide's quota).
* Timestamps are epoch seconds: the cleanrooms model gives them no ``timestampFormat`` (rest-json's default).
* Delete answers 204 (the model's response code); deleting the configured audience model removes its
  associations too (``configured_models``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .resource_kit import AccountState, ServiceError, Tagging, paginate, quota_error

__all__ = ["ASSOCIATIONS_QUOTA", "Association", "ModelAssociations"]

#: The quota's name (the Clean Rooms user guide: 5 configured audience model associations per membership).
ASSOCIATIONS_QUOTA = "Configured audience model associations per membership"
#: The namespace the made-up collaboration ids come from.
_COLLABORATIONS = uuid.UUID("5c1e0b4e-6d0a-4d1e-9a8f-2b7c3d4e5f60")


@dataclass
class Association:
    """One configured audience model association."""

    id: str
    arn: str
    membership_id: str
    model_arn: str
    name: str
    manage_resource_policies: bool
    created: float
    updated: float
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "id": self.id,
            "name": self.name,
            "membershipId": self.membership_id,
            "configuredAudienceModelArn": self.model_arn,
            "manageResourcePolicies": self.manage_resource_policies,
            "tags": dict(self.tags),
        }


class ModelAssociations:
    """The cleanrooms ...ConfiguredAudienceModelAssociation operations and tags on one account."""

    def __init__(self, state: AccountState, *, per_membership: int, max_tags: int) -> None:
        self.state = state
        self.per_membership = per_membership
        self.max_tags = max_tags
        self.collaborations: dict[str, str] = {}  # membership id -> collaboration id, when set

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "CreateConfiguredAudienceModelAssociation": self.create,
            "GetConfiguredAudienceModelAssociation": self.get,
            "UpdateConfiguredAudienceModelAssociation": self.update,
            "DeleteConfiguredAudienceModelAssociation": self.delete,
            "ListConfiguredAudienceModelAssociations": self.list,
            **Tagging(self.tagged, self.max_tags).operations(),
        }

    def collaboration_of(self, membership_id: str) -> str:
        return self.collaborations.get(membership_id) or str(uuid.uuid5(_COLLABORATIONS, membership_id))

    def _membership_arn(self, membership_id: str) -> str:
        return self.state.arn("cleanrooms", f"membership/{membership_id}")

    def _describe(self, association: Association, *, summary: bool = False) -> dict[str, Any]:
        collaboration = self.collaboration_of(association.membership_id)
        out: dict[str, Any] = {
            "id": association.id,
            "arn": association.arn,
            "configuredAudienceModelArn": association.model_arn,
            "membershipId": association.membership_id,
            "membershipArn": self._membership_arn(association.membership_id),
            "collaborationId": collaboration,
            "collaborationArn": self.state.arn("cleanrooms", f"collaboration/{collaboration}"),
            "name": association.name,
            "description": None if self.state.sparse else association.description,
            "createTime": association.created,
            "updateTime": association.updated,
        }
        if not summary:
            out["manageResourcePolicies"] = association.manage_resource_policies
        return {k: v for k, v in out.items() if v is not None}

    def _in_membership(self, membership_id: str) -> list[Association]:
        return [a for a in self.state.associations.values() if a.membership_id == membership_id]

    def _name_is_free(self, membership_id: str, name: str, other_than: str = "") -> None:
        taken = next((a for a in self._in_membership(membership_id) if a.name == name and a.id != other_than), None)
        if taken is not None:
            raise ServiceError(
                "ConflictException",
                f"A configured audience model association named {name} already exists in membership {membership_id}",
                reason="ALREADY_EXISTS",
                resourceId=taken.id,
            )

    def _find(self, params: dict[str, Any]) -> Association:
        membership_id = params["membershipIdentifier"]
        wanted = params["configuredAudienceModelAssociationIdentifier"]
        found = next((a for a in self._in_membership(membership_id) if a.id == wanted), None)
        if found is None:
            raise _not_found(
                wanted, f"Configured audience model association {wanted} does not exist in membership {membership_id}"
            )
        return found

    # ----------------------------------------------------------------------------------------------
    # The operations

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        membership_id, model_arn = params["membershipIdentifier"], params["configuredAudienceModelArn"]
        name = params["configuredAudienceModelAssociationName"]
        if model_arn.split(":")[4:5] == [self.state.account] and model_arn not in self.state.models:
            raise _not_found(model_arn, f"Configured audience model {model_arn} does not exist")
        self._name_is_free(membership_id, name)
        if len(self._in_membership(membership_id)) >= self.per_membership:
            raise quota_error(ASSOCIATIONS_QUOTA, self.per_membership)
        now = time.time()
        association_id = str(uuid.uuid4())
        association = Association(
            id=association_id,
            arn=f"{self._membership_arn(membership_id)}/configuredaudiencemodelassociation/{association_id}",
            membership_id=membership_id,
            model_arn=model_arn,
            name=name,
            manage_resource_policies=bool(params["manageResourcePolicies"]),
            created=now,
            updated=now,
            description=params.get("description"),
            tags=dict(params.get("tags") or {}),
        )
        self.state.associations[association.arn] = association
        return {"configuredAudienceModelAssociation": self._describe(association)}

    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"configuredAudienceModelAssociation": self._describe(self._find(params))}

    def update(self, params: dict[str, Any]) -> dict[str, Any]:
        association = self._find(params)
        if params.get("name") is not None:
            self._name_is_free(association.membership_id, params["name"], other_than=association.id)
            association.name = params["name"]
        if params.get("description") is not None:
            association.description = params["description"]
        association.updated = time.time()
        return {"configuredAudienceModelAssociation": self._describe(association)}

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        del self.state.associations[self._find(params).arn]
        return {}

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        page, token = paginate(self._in_membership(params["membershipIdentifier"]), params, self.state.page_size)
        out: dict[str, Any] = {
            "configuredAudienceModelAssociationSummaries": [self._describe(a, summary=True) for a in page]
        }
        if token:
            out["nextToken"] = token
        return out

    def tagged(self, arn: str) -> Association:
        """The association an ARN names, for cleanrooms' own tagging operations."""
        association = self.state.associations.get(arn)
        if association is None:
            raise _not_found(arn, f"Resource {arn} does not exist")
        return association


def _not_found(resource_id: str, message: str) -> ServiceError:
    """cleanrooms' ResourceNotFoundException names the resource (``resourceId``; its ``resourceType`` enum has
    no value for models or associations, so it is left out)."""
    return ServiceError("ResourceNotFoundException", message, resourceId=resource_id)
