"""``ConfiguredAudienceModelAssociation``: a configured audience model made available in a collaboration."""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Duration, ITaggableV2, RemovalPolicy, TagManager

from constructs import Construct

from . import _resource
from .service_model import request_shape, specs
from .validation import Issue, _Unchecked

_SPEC = specs().CONFIGURED_AUDIENCE_MODEL_ASSOCIATION
#: The CloudFormation type of every association resource.
RESOURCE_TYPE: str = _SPEC.type_name


@jsii.implements(ITaggableV2)
class ConfiguredAudienceModelAssociation(Construct):
    """The association of a configured audience model with a collaboration, through one of its memberships.

    One CloudFormation resource of type ``Custom::CleanRoomsMlConfiguredAudienceModelAssociation`` whose properties
    are the Clean Rooms (``cleanrooms``) CreateConfiguredAudienceModelAssociation request. Its name and
    description change in place; a change of the model or the membership makes a new association. Usually made
    with ``ConfiguredAudienceModel.associate(...)``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        configured_audience_model_arn: str,
        membership_id: str,
        name: str | None = None,
        manage_resource_policies: bool = True,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        removal_policy: RemovalPolicy | None = None,
        timeout: Duration | None = None,
    ) -> None:
        """
        :param configured_audience_model_arn: the configured audience model (``configuredAudienceModelArn``).
        :param membership_id: this account's membership in the collaboration (``membershipIdentifier``, its id).
        :param name: the association's name in the collaboration (``configuredAudienceModelAssociationName``),
            unique per membership; it can change in place. Default: made by the handler from the construct path
            and a digest of the request (a replacement, e.g. for a new configured model, then gets a new name;
            with a name given, a replacement fails as CloudFormation's own named resources do).
        :param manage_resource_policies: whether Clean Rooms updates the model's resource policy so the
            collaboration's members may generate audiences from it (``manageResourcePolicies``). Default: True.
        :param description: (``description``). Default: not sent.
        :param tags: (``tags``), merged with ``Tags.of`` tags. Default: none.
        :param removal_policy: DESTROY (default) deletes the association with the stack; RETAIN keeps it.
        :param timeout: how long the deploy step waits. Default and maximum: 55 minutes.
        """
        issues: list[Issue] = []
        manage: Any = manage_resource_policies
        if not isinstance(manage_resource_policies, bool):  # reported once, not again by the model's checks
            issues.append(Issue("manage_resource_policies", manage_resource_policies, "must be True or False"))
            manage = _Unchecked(manage_resource_policies)
        request: dict[str, Any] = {
            "membershipIdentifier": membership_id,
            "configuredAudienceModelArn": configured_audience_model_arn,
            "manageResourcePolicies": manage,
        }
        optional = (("configuredAudienceModelAssociationName", name), ("description", description), ("tags", tags))
        request.update({k: v for k, v in optional if v is not None})
        options = _resource.Options(True, timeout, removal_policy, None)
        names = {"membershipIdentifier": "membership_id", "configuredAudienceModelAssociationName": "name"}
        prepared = _resource.prepare(scope, id, _SPEC, request, issues, options, names=names)
        super().__init__(scope, id)
        try:
            self.resource, tag_manager, self.provider = _resource.build(
                self,
                prepared,
                _SPEC,
                path=_resource.shared(prepared.stack).child_path(scope, id),
                explicit_name=name is not None,
                name_max_length=int(request_shape(_SPEC.create, _SPEC.service).members[_SPEC.name].metadata["max"]),
                removal_policy=removal_policy,
                poll_interval=None,
            )
            """The ``CfnResource`` of type ``RESOURCE_TYPE`` (escape hatch)."""
            assert tag_manager is not None
            self._tags: TagManager = tag_manager
            self.provider.allow_association(membership_id, configured_audience_model_arn)
            _resource.check_tags_at_synth(prepared.stack, self, _SPEC)
        except Exception:
            scope.node.try_remove_child(id)
            raise

    @property
    def configured_audience_model_association_arn(self) -> str:
        """The association's ARN (GetAtt ``ConfiguredAudienceModelAssociationArn``)."""
        return _resource.attribute(self.resource, "ConfiguredAudienceModelAssociationArn")

    @property
    def configured_audience_model_association_id(self) -> str:
        """The association's id (GetAtt ``ConfiguredAudienceModelAssociationId``)."""
        return _resource.attribute(self.resource, "ConfiguredAudienceModelAssociationId")

    @property
    def collaboration_id(self) -> str:
        """The collaboration of the membership (GetAtt ``CollaborationId``): a job of a partner starts with it."""
        return _resource.attribute(self.resource, "CollaborationId")

    @property
    def cdk_tag_manager(self) -> TagManager:
        return self._tags
