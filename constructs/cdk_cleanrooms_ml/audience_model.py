"""``AudienceModel``: a Clean Rooms ML audience (lookalike) model, trained on a training dataset during ``cdk deploy``.

Training takes hours (the user guide: "up to 24 hours", "several hours to 2 days"); CloudFormation waits at most one
hour for a custom resource. So the model's own resource never waits for training: it answers once
CreateAudienceModel succeeded (status CREATE_PENDING or CREATE_IN_PROGRESS). With ``wait_for_completion=True`` the
construct adds an ``AWS::CloudFormation::WaitCondition`` (at most 12 hours), signaled by the provider's watcher state
machine when the model is ACTIVE, or failed when training fails, so the deploy never reports a model ready before it
is.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from datetime import datetime, timezone
from typing import Any

import jsii
from aws_cdk import CfnWaitCondition, CfnWaitConditionHandle, Duration, ITaggableV2, RemovalPolicy, Stack, TagManager

from constructs import Construct

from . import _resource, validation
from .service_model import request_shape, specs
from .validation import Issue, _Unchecked

_SPEC = specs().AUDIENCE_MODEL
#: The CloudFormation type of every audience model resource.
RESOURCE_TYPE: str = _SPEC.type_name
#: The longest an ``AWS::CloudFormation::WaitCondition`` waits (its ``Timeout``'s maximum): 12 hours.
MAX_WAIT_SECONDS = 43_200
#: Control properties of a waiting model (never API members): the handle's presigned URL, and how long it is valid.
SIGNAL_URL = "SignalUrl"
SIGNAL_TIMEOUT_SECONDS = "SignalTimeoutSeconds"
#: Hex characters of the digest the wait resources' ids end in.
WAIT_DIGEST_LENGTH = 8


@jsii.implements(ITaggableV2)
class AudienceModel(Construct):
    """An audience model trained on a training dataset, created by ``cdk deploy`` and deleted with the stack.

    One CloudFormation resource of type ``Custom::CleanRoomsMlAudienceModel`` whose properties are the
    CreateAudienceModel request. There is no update call: any change but the tags makes a new model (trained again).
    With ``wait_for_completion=True``, also an ``AWS::CloudFormation::WaitConditionHandle`` and an
    ``AWS::CloudFormation::WaitCondition`` that completes when the model is ACTIVE.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        training_dataset: Any,
        training_data_start_time: datetime | None = None,
        training_data_end_time: datetime | None = None,
        kms_key: Any = None,
        name: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        wait_for_completion: bool = False,
        timeout: Duration | None = None,
        removal_policy: RemovalPolicy | None = None,
    ) -> None:
        """
        :param training_dataset: what the model is trained on (``trainingDatasetArn``): a ``TrainingDataset`` of the
            app (the model then depends on it), or a training dataset ARN.
        :param training_data_start_time: the start of the training window (``trainingDataStartTime``), a
            timezone-aware ``datetime`` (sent in UTC). Default: not sent (the service's: all the data).
        :param training_data_end_time: the end of the training window (``trainingDataEndTime``), after the start.
            Default: not sent.
        :param kms_key: the key that encrypts the trained model and its data (``kmsKeyArn``): an ``aws_kms.IKey`` or
            a key ARN. Its key policy must let Clean Rooms ML use it (the library adds no statement: the service's
            needs are not documented). Default: not sent (the service's own encryption).
        :param name: unique per account, 1-63 characters. Default: made at deploy time (``<path>-<digest>``), so any
            change that replaces the model gets a new name.
        :param description: (``description``), up to 255 characters. Default: not sent.
        :param tags: (``tags``), merged with ``Tags.of`` tags; they change in place. Default: none.
        :param wait_for_completion: whether the deploy waits until the model is trained (ACTIVE), through a
            WaitCondition signaled by the provider's watcher. Default: False (the deploy step ends once training
            started; configure the model in a later deploy, from its ARN, once it is ACTIVE).
        :param timeout: with ``wait_for_completion``, how long the WaitCondition waits for training, whole seconds
            from 1 second to 12 hours. Default and maximum: 12 hours (CloudFormation's limit for a WaitCondition).
        :param removal_policy: DESTROY (default) deletes the model with the stack (refused by the service while
            configured audience models use it); RETAIN keeps it (except when its own Create is rolled back).
        """
        dataset, dataset_arn, issues = _training_dataset(training_dataset)
        start, more = _timestamp("training_data_start_time", training_data_start_time)
        issues += more
        end, more = _timestamp("training_data_end_time", training_data_end_time)
        issues += more
        if isinstance(start, str) and isinstance(end, str) and start >= end:  # both UTC, in one format: text order
            issues.append(Issue("training_data_end_time", end, f"must be after training_data_start_time ({start})"))
        key_arn, more = _key_arn(kms_key)
        issues += more
        wait_seconds, more = _wait_seconds(wait_for_completion, timeout)
        issues += more
        request: dict[str, Any] = {
            "trainingDatasetArn": dataset_arn,
            "trainingDataStartTime": start,
            "trainingDataEndTime": end,
            "kmsKeyArn": key_arn,
            "name": name,
            "description": description,
            "tags": tags,
        }
        request = {k: v for k, v in request.items() if v is not None}
        # The model's own step never waits for training (CloudFormation's hour is too short): WaitForCompletion
        # "false", and the default step timeout (it may still wait out the quota of models in training).
        options = _resource.Options(False, None, removal_policy, None)
        prepared = _resource.prepare(scope, id, _SPEC, request, issues, options, names=_PYTHON_NAMES)
        super().__init__(scope, id)
        try:
            self._explicit_name = name
            self._waits = wait_for_completion
            path = _resource.shared(prepared.stack).child_path(scope, id)
            name_max = int(request_shape(_SPEC.create).members["name"].metadata["max"])
            self.wait_condition: CfnWaitCondition | None = None
            """The WaitCondition that completes when the model is ACTIVE (None without ``wait_for_completion``)."""
            self.wait_condition_handle: CfnWaitConditionHandle | None = None
            """The WaitCondition's handle (its Ref is the presigned URL the watcher signals)."""
            digest = ""
            if wait_for_completion:
                prepared.control[SIGNAL_TIMEOUT_SECONDS] = str(wait_seconds)
                digest = _replacement_digest(prepared, dataset, path, name is not None, name_max)
            self.resource, tag_manager, self.provider = _resource.build(
                self,
                prepared,
                _SPEC,
                path=path,
                explicit_name=name is not None,
                name_max_length=name_max,
                removal_policy=removal_policy,
                poll_interval=None,
            )
            """The ``CfnResource`` of type ``RESOURCE_TYPE`` (escape hatch)."""
            assert tag_manager is not None
            self._tags: TagManager = tag_manager
            self.provider.allow_audience_model(dataset_arn)
            if wait_for_completion:
                self._add_wait(digest, wait_seconds)
            _resource.check_tags_at_synth(prepared.stack, self, _SPEC)
            _MODELS_BY_ARN[self.audience_model_arn] = self
        except Exception:
            scope.node.try_remove_child(id)
            raise

    def _add_wait(self, digest: str, seconds: int) -> None:
        """The handle and the WaitCondition, their ids ending in the digest of what replaces the model: a new model
        gets a new handle and condition (CloudFormation updates neither, and a handle must never be reused)."""
        handle = CfnWaitConditionHandle(self, f"TrainedHandle{digest}")
        condition = CfnWaitCondition(self, f"Trained{digest}", handle=handle.ref, count=1, timeout=str(seconds))
        condition.node.add_dependency(self.resource)
        self.resource.add_property_override(SIGNAL_URL, handle.ref)
        self.provider.allow_audience_model_wait()
        self.wait_condition_handle, self.wait_condition = handle, condition

    @property
    def audience_model_arn(self) -> str:
        """The model's ARN (GetAtt ``AudienceModelArn``): a ``ConfiguredAudienceModel``'s ``audience_model``."""
        return _resource.attribute(self.resource, "AudienceModelArn")

    @property
    def status(self) -> str:
        """The model's status when its deploy step ended (GetAtt ``Status``): CREATE_PENDING or CREATE_IN_PROGRESS,
        also with ``wait_for_completion=True`` (ACTIVE is what the WaitCondition's success means)."""
        return _resource.attribute(self.resource, "Status")

    @property
    def name(self) -> str:
        """The model's name: the one given, or a token for the one made at deploy time (GetAtt ``Name``)."""
        return self._explicit_name if self._explicit_name is not None else _resource.attribute(self.resource, "Name")

    @property
    def waits_for_completion(self) -> bool:
        """Whether the deploy waits until the model is ACTIVE (``wait_for_completion``)."""
        return self._waits

    @property
    def cdk_tag_manager(self) -> TagManager:
        return self._tags


_MODELS_BY_ARN: weakref.WeakValueDictionary[str, AudienceModel] = weakref.WeakValueDictionary()


def model_of_arn(arn: Any) -> AudienceModel | None:
    """The audience model of the app whose ARN token ``arn`` is (None for any other value)."""
    return _MODELS_BY_ARN.get(arn) if isinstance(arn, str) else None


#: Where the props' Python names differ from the API member names by more than snake_case.
_PYTHON_NAMES = {"trainingDatasetArn": "training_dataset", "kmsKeyArn": "kms_key"}


def _training_dataset(training_dataset: Any) -> tuple[Any, Any, list[Issue]]:
    """The TrainingDataset of the app (or None), the ARN for the request, and the problems."""
    from .training_dataset import TrainingDataset

    if isinstance(training_dataset, TrainingDataset):
        return training_dataset, training_dataset.training_dataset_arn, []
    if isinstance(training_dataset, str):  # checked against the model's pattern, unless a token
        return None, training_dataset, []
    return (
        None,
        _Unchecked(training_dataset),
        [Issue("training_dataset", training_dataset, "must be a TrainingDataset or a training dataset ARN string")],
    )


def _timestamp(prop: str, value: Any) -> tuple[Any, list[Issue]]:
    """A timestamp member as the API takes it (UTC, ISO 8601), and the problems."""
    if value is None:
        return None, []
    if not isinstance(value, datetime):
        return _Unchecked(value), [
            Issue(prop, value, "must be a datetime, e.g. datetime(2024, 1, 1, tzinfo=timezone.utc)")
        ]
    if value.tzinfo is None or value.utcoffset() is None:
        return _Unchecked(value), [
            Issue(
                prop,
                value.isoformat(),
                "must be timezone-aware (a naive datetime's time zone is unknown): pass "
                "tzinfo, e.g. datetime(2024, 1, 1, tzinfo=timezone.utc)",
            )
        ]
    utc = value.astimezone(timezone.utc)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z", []


def _key_arn(kms_key: Any) -> tuple[Any, list[Issue]]:
    if kms_key is None or isinstance(kms_key, str):
        return kms_key, []
    if hasattr(type(kms_key), "key_arn") or (hasattr(kms_key, "__jsii_ref__") and hasattr(kms_key, "key_arn")):
        return kms_key.key_arn, []
    return _Unchecked(kms_key), [Issue("kms_key", kms_key, "must be an aws_kms.IKey or a KMS key ARN string")]


def _wait_seconds(wait_for_completion: Any, timeout: Any) -> tuple[int, list[Issue]]:
    """The WaitCondition's timeout in seconds, and the problems of the wait props."""
    if not isinstance(wait_for_completion, bool):
        return MAX_WAIT_SECONDS, [Issue("wait_for_completion", wait_for_completion, "must be True or False")]
    if timeout is None:
        return MAX_WAIT_SECONDS, []
    if not wait_for_completion:
        return MAX_WAIT_SECONDS, [
            Issue(
                "timeout",
                timeout,
                "applies only with wait_for_completion=True (how long the deploy waits for "
                "training); the model's own deploy step has CloudFormation's hour",
            )
        ]
    seconds = validation.duration_seconds(timeout)
    if seconds is None:
        return MAX_WAIT_SECONDS, [Issue("timeout", timeout, "must be a Duration, e.g. Duration.hours(6)")]
    if seconds != int(seconds) or not 1 <= seconds <= MAX_WAIT_SECONDS:
        return MAX_WAIT_SECONDS, [
            Issue(
                "timeout",
                f"{seconds:g} seconds",
                f"must be a whole number of seconds from 1 to {MAX_WAIT_SECONDS:,} (12 hours: the longest an "
                "AWS::CloudFormation::WaitCondition waits)",
            )
        ]
    return int(seconds), []


def _replacement_digest(prepared: Any, dataset: Any, path: str, explicit_name: bool, name_max: int) -> str:
    """8 hex characters of what makes a new model (or a new wait) when it changes: the properties as CloudFormation
    will see them, tags aside (they change in place), and a TrainingDataset of the app's own properties (a new
    dataset keeps its logical id, so the model's GetAtt of it would not change)."""
    request = {k: v for k, v in prepared.request.items() if k != _SPEC.tags}
    control = dict(prepared.control)
    if not explicit_name:
        control["NamePrefix"] = _resource.name_prefix(path, name_max - _resource.NAME_DIGEST_LENGTH - 1)
    described: dict[str, Any] = {"properties": prepared.stack.resolve({**request, **control})}
    if dataset is not None:
        cfn = dataset.resource
        properties = {k: v for k, v in dict(cfn._cfn_properties).items() if k != "tags"}
        described["trainingDataset"] = Stack.of(cfn).resolve(properties)
    text = json.dumps(described, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:WAIT_DIGEST_LENGTH]
