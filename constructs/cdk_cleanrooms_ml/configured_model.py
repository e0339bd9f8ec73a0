"""``ConfiguredAudienceModel``: an audience (lookalike) model configured for partners to generate from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jsii
from aws_cdk import Aws, Duration, IStableStringProducer, ITaggableV2, Lazy, RemovalPolicy, Stack, TagManager

from constructs import Construct

from . import _resource, validation
from .association import ConfiguredAudienceModelAssociation
from .destination import AudienceDestination
from .service_model import request_shape, specs
from .validation import Issue, _Unchecked

_SPEC = specs().CONFIGURED_AUDIENCE_MODEL
#: The CloudFormation type of every configured audience model resource.
RESOURCE_TYPE: str = _SPEC.type_name


@dataclass(frozen=True)
class SharedAudienceMetrics:
    """Which metrics partners see of the audiences they generate (``sharedAudienceMetrics``)."""

    value: str
    ALL: ClassVar[SharedAudienceMetrics]
    """Every metric (relevance and recall)."""
    NONE: ClassVar[SharedAudienceMetrics]
    """No metric."""


SharedAudienceMetrics.ALL = SharedAudienceMetrics("ALL")
SharedAudienceMetrics.NONE = SharedAudienceMetrics("NONE")


@dataclass(frozen=True)
class AudienceSizeType:
    """How audience sizes are counted (``audienceSizeConfig.audienceSizeType``)."""

    value: str
    ABSOLUTE: ClassVar[AudienceSizeType]
    """A number of users."""
    PERCENTAGE: ClassVar[AudienceSizeType]
    """A share of the generated audience."""


AudienceSizeType.ABSOLUTE = AudienceSizeType("ABSOLUTE")
AudienceSizeType.PERCENTAGE = AudienceSizeType("PERCENTAGE")


@dataclass(frozen=True, kw_only=True)
class AudienceSizeConfig:
    """The sizes partners may generate and export (``audienceSizeConfig``)."""

    type: AudienceSizeType | str
    """``audienceSizeType``."""
    bins: list[int]
    """``audienceSizeBins``: the sizes offered, 1 to 25 of them."""

    def _render(self) -> dict[str, Any]:
        kind = self.type.value if isinstance(self.type, AudienceSizeType) else self.type
        bins = list(self.bins) if isinstance(self.bins, (list, tuple)) else self.bins  # else the checks report it
        return {"audienceSizeType": kind, "audienceSizeBins": bins}


@jsii.implements(ITaggableV2)
class ConfiguredAudienceModel(Construct):
    """A configured audience model: an audience model made available, with its output destination and the sizes
    and metrics partners get, created by ``cdk deploy`` and deleted with the stack.

    One CloudFormation resource of type ``Custom::CleanRoomsMlConfiguredAudienceModel`` whose properties are the
    CreateConfiguredAudienceModel request, plus its resource policy (``configuredAudienceModelPolicy``, set with
    PutConfiguredAudienceModelPolicy). Members UpdateConfiguredAudienceModel takes change in place; the name and
    ``child_resource_tag_on_create_policy`` make a new model (and so does unsetting a member).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        audience_model_arn: str | None = None,
        audience_model: Any = None,
        destination: AudienceDestination,
        shared_audience_metrics: list[SharedAudienceMetrics | str],
        audience_size_config: AudienceSizeConfig | None = None,
        min_matching_seed_size: int | None = None,
        child_resource_tag_on_create_policy: str | None = None,
        name: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        removal_policy: RemovalPolicy | None = None,
        timeout: Duration | None = None,
    ) -> None:
        """
        :param audience_model_arn: the trained audience model's ARN (``audienceModelArn``); give it or
            ``audience_model``.
        :param audience_model: the trained audience model: an ``AudienceModel`` of the app (the configured model
            then depends on its WaitCondition), or its ARN. An ``AudienceModel`` of the app must be declared with
            ``wait_for_completion=True``: without it its deploy ends while it is still training.
        :param destination: where segments are written, and the role that writes them (``outputConfig``);
            ``AudienceDestination.from_bucket(bucket, prefix=...)`` makes the role.
        :param shared_audience_metrics: ``[SharedAudienceMetrics.ALL]`` or ``[SharedAudienceMetrics.NONE]``
            (``sharedAudienceMetrics``).
        :param audience_size_config: the sizes offered (``audienceSizeConfig``). Default: not sent.
        :param min_matching_seed_size: the fewest seed users that must match (``minMatchingSeedSize``), 25 to
            500,000. Default: the service's.
        :param child_resource_tag_on_create_policy: ``FROM_PARENT_RESOURCE`` or ``NONE``. Default: not sent.
        :param name: unique per account, 1-63 characters. Default: made at deploy time (``<path>-<digest>``).
        :param description: (``description``). Default: not sent.
        :param tags: (``tags``), merged with ``Tags.of`` tags; at most 49. Default: none.
        :param removal_policy: DESTROY (default) deletes the model with the stack (refused by the service while
            jobs use it: the delete then fails after 10 minutes saying so); RETAIN keeps it.
        :param timeout: how long the deploy step waits. Default and maximum: 55 minutes.
        """
        audience_model_arn, waited, issues = _audience_model(audience_model_arn, audience_model)
        if not isinstance(destination, AudienceDestination):
            issues.append(Issue("destination", destination, "must be an AudienceDestination"))
            output: Any = _Unchecked(destination)
        else:
            # A role the library makes is made once the props passed: until then, a value the checks skip.
            output = destination._render(_ROLE_MADE_LATER if destination.makes_role else destination.role_arn)
        metrics: Any = shared_audience_metrics
        if isinstance(shared_audience_metrics, (list, tuple)):
            metrics = [m.value if isinstance(m, SharedAudienceMetrics) else m for m in shared_audience_metrics]
        elif shared_audience_metrics is not None:
            issues.append(
                Issue("shared_audience_metrics", shared_audience_metrics, "must be a list: [SharedAudienceMetrics.ALL]")
            )
            metrics = _Unchecked(shared_audience_metrics)
        size_config: Any = audience_size_config
        if isinstance(audience_size_config, AudienceSizeConfig):
            size_config = audience_size_config._render()
        elif audience_size_config is not None:
            issues.append(Issue("audience_size_config", audience_size_config, "must be an AudienceSizeConfig"))
            size_config = _Unchecked(audience_size_config)
        request: dict[str, Any] = {
            "audienceModelArn": audience_model_arn,
            "outputConfig": output,
            "sharedAudienceMetrics": metrics,
            "audienceSizeConfig": size_config,
            "minMatchingSeedSize": min_matching_seed_size,
            "childResourceTagOnCreatePolicy": child_resource_tag_on_create_policy,
            "name": name,
            "description": description,
            "tags": tags,
        }
        request = {k: v for k, v in request.items() if v is not None}
        options = _resource.Options(True, timeout, removal_policy, None)
        prepared = _resource.prepare(scope, id, _SPEC, request, issues, options, names=_PYTHON_NAMES)
        super().__init__(scope, id)
        try:
            destination = destination.bound(self)
            prepared.request["outputConfig"] = destination._render(destination.role_arn)
            self._grants: list[str] = []
            prepared.request["configuredAudienceModelPolicy"] = Lazy.string(_PolicyProducer(self))
            self._explicit_name = name
            self.resource, tag_manager, self.provider = _resource.build(
                self,
                prepared,
                _SPEC,
                path=_resource.shared(prepared.stack).child_path(scope, id),
                explicit_name=name is not None,
                name_max_length=int(request_shape(_SPEC.create).members["name"].metadata["max"]),
                removal_policy=removal_policy,
                poll_interval=None,
            )
            """The ``CfnResource`` of type ``RESOURCE_TYPE`` (escape hatch)."""
            assert tag_manager is not None
            self._tags: TagManager = tag_manager
            if waited is not None:  # created only once the model is ACTIVE
                self.resource.node.add_dependency(waited)
            self.provider.allow_configured_model(audience_model_arn, destination.role_arn)
            _resource.check_tags_at_synth(prepared.stack, self, _SPEC)
        except Exception:
            scope.node.try_remove_child(id)
            raise

    @property
    def configured_audience_model_arn(self) -> str:
        """The model's ARN (GetAtt ``ConfiguredAudienceModelArn``): a job of this app may take it as its
        ``configured_audience_model_arn`` (the job then depends on the model)."""
        return _resource.attribute(self.resource, "ConfiguredAudienceModelArn")

    @property
    def name(self) -> str:
        """The model's name: the one given, or a token for the one made at deploy time (GetAtt ``Name``)."""
        return self._explicit_name if self._explicit_name is not None else _resource.attribute(self.resource, "Name")

    @property
    def cdk_tag_manager(self) -> TagManager:
        return self._tags

    def grant_start_audience_generation(self, account: str) -> None:
        """Let ``account`` generate audiences from this model: a statement of the model's resource policy
        (``configuredAudienceModelPolicy``), as the Clean Rooms ML user guide's cross-account example has it --
        ``cleanrooms-ml:StartAudienceGenerationJob`` on the model and on this account's copies of the jobs
        (``audience-generation-job/*``)."""
        if not validation.is_token(account) and not (
            isinstance(account, str) and account.isdigit() and len(account) == 12
        ):
            raise validation.ValidationError(
                self.node.path, [Issue("account", account, "must be a 12-digit AWS account id")]
            )
        if account not in self._grants:
            self._grants.append(account)

    def associate(
        self,
        id: str,
        *,
        membership_id: str,
        name: str | None = None,
        manage_resource_policies: bool = True,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        removal_policy: RemovalPolicy | None = None,
    ) -> ConfiguredAudienceModelAssociation:
        """Associate the model with a collaboration through this account's membership (the Clean Rooms
        ``CreateConfiguredAudienceModelAssociation`` call), as a child construct of the model."""
        return ConfiguredAudienceModelAssociation(
            self,
            id,
            configured_audience_model_arn=self.configured_audience_model_arn,
            membership_id=membership_id,
            name=name,
            manage_resource_policies=manage_resource_policies,
            description=description,
            tags=tags,
            removal_policy=removal_policy,
        )

    def _policy(self) -> str | None:
        """The resource policy's JSON, the model's own ARN written as the handler fills it in (``SELF_ARN``)."""
        if not self._grants:
            return None
        stack = Stack.of(self)
        jobs = f"arn:{Aws.PARTITION}:cleanrooms-ml:{Aws.REGION}:{Aws.ACCOUNT_ID}:audience-generation-job/*"
        statements = [
            {
                "Sid": f"StartAudienceGeneration{index}",
                "Effect": "Allow",
                "Principal": {"AWS": account},
                "Action": ["cleanrooms-ml:StartAudienceGenerationJob"],
                "Resource": [specs().SELF_ARN, jobs],
            }
            for index, account in enumerate(self._grants, start=1)
        ]
        return str(stack.to_json_string({"Version": "2012-10-17", "Statement": statements}))


def _audience_model(audience_model_arn: Any, audience_model: Any) -> tuple[Any, Any, list[Issue]]:
    """The audience model's ARN, the WaitCondition to depend on (for an AudienceModel of the app), and the problems:
    exactly one of the two props; an AudienceModel of the app that does not wait for training is refused."""
    from .audience_model import AudienceModel, model_of_arn

    if audience_model_arn is None and audience_model is None:
        return None, None, []  # the model's rule says it: audience_model_arn is required
    if audience_model_arn is not None and audience_model is not None:
        return (
            _Unchecked(audience_model),
            None,
            [Issue("audience_model", audience_model, "give exactly one of audience_model and audience_model_arn")],
        )
    prop = "audience_model_arn" if audience_model is None else "audience_model"
    value = audience_model if audience_model is not None else audience_model_arn
    model = value if isinstance(value, AudienceModel) else model_of_arn(value)
    if model is None:
        if isinstance(value, str):
            return value, None, []
        return _Unchecked(value), None, [Issue(prop, value, "must be an AudienceModel or an audience model ARN string")]
    if not model.waits_for_completion:
        return (
            model.audience_model_arn,
            None,
            [
                Issue(
                    prop,
                    model.node.path,
                    "is declared with wait_for_completion=False: its deploy step ends while the model is still "
                    "training (hours to 2 days), and a configured model needs an ACTIVE one (give the AudienceModel "
                    "wait_for_completion=True, or configure it in a later deploy or another app from the model's ARN "
                    "string once it is ACTIVE)",
                )
            ],
        )
    return model.audience_model_arn, model.wait_condition, []


#: Where the props' Python names do not follow the API member names by snake_case alone.
_PYTHON_NAMES = {
    "outputConfig.roleArn": "destination.role",
    "outputConfig.destination.s3Destination.s3Uri": "destination.s3_uri",
    "outputConfig": "destination",
    "audienceSizeConfig.audienceSizeBins": "audience_size_config.bins",
    "audienceSizeConfig.audienceSizeType": "audience_size_config.type",
    "configuredAudienceModelPolicy": "grant_start_audience_generation",
}
#: Stands for the segment-writer role's ARN while the props are checked (a token: the checks skip it).
_ROLE_MADE_LATER = "${Token[cdk-cleanrooms-ml.segment-writer-role]}"


@jsii.implements(IStableStringProducer)
class _PolicyProducer:
    """The model's resource policy, known once every grant was made (at synth)."""

    def __init__(self, model: ConfiguredAudienceModel) -> None:
        self._model = model

    def produce(self) -> str | None:
        return self._model._policy()
