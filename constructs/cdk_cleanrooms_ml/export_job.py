"""``AudienceExportJob``: the export of a generated audience segment to S3, as one CloudFormation resource."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration

from constructs import Construct

from . import _resource
from .service_model import request_shape, specs
from .validation import Issue, _Unchecked

if TYPE_CHECKING:
    from .job import IAudienceGenerationJob

_SPEC = specs().AUDIENCE_EXPORT_JOB
#: The CloudFormation type of every export resource.
RESOURCE_TYPE: str = _SPEC.type_name


@dataclass(frozen=True)
class AudienceSize:
    """How much of the generated audience to export (``audienceSize``): a share of it, or a number of users.

    It must be one of the sizes the configured audience model offers (its ``audience_size_config``).
    """

    type: str
    """``PERCENTAGE`` or ``ABSOLUTE`` (``audienceSize.type``)."""
    value: int
    """The percentage or the number of users (``audienceSize.value``)."""

    @classmethod
    def percentage(cls, value: int) -> AudienceSize:
        """The top ``value`` percent of the generated audience."""
        return cls("PERCENTAGE", value)

    @classmethod
    def absolute(cls, value: int) -> AudienceSize:
        """The ``value`` most relevant users of the generated audience."""
        return cls("ABSOLUTE", value)

    def _render(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value}


class AudienceExportJob(Construct):
    """An export of an audience generation job's segment, started by ``cdk deploy``.

    One CloudFormation resource of type ``Custom::CleanRoomsMlAudienceExportJob`` whose properties are the
    StartAudienceExportJob request. The API has no Get and no Delete: the export is found again through
    ListAudienceExportJobs (by its job and its unique name), any change starts a new export, and deleting the
    resource makes no call: **the exported segment stays where the service wrote it** (the configured audience
    model's destination).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        audience_generation_job: IAudienceGenerationJob | str,
        audience_size: AudienceSize,
        name: str | None = None,
        description: str | None = None,
        wait_for_completion: bool = True,
        timeout: Duration | None = None,
        poll_interval: Duration | None = None,
    ) -> None:
        """
        :param audience_generation_job: the job whose audience is exported (``audienceGenerationJobArn``): an
            ``AudienceGenerationJob`` of the app (the export then depends on it), an imported one, or a job ARN.
            The job must be ACTIVE: a job of the app declared with ``wait_for_completion=False`` is refused.
        :param audience_size: how much to export (``audienceSize``). Required.
        :param name: the export's name (``name``), unique per generation job, 1-63 characters. Default: made at
            deploy time like a job's (``<construct path>-<digest of the request>``), so any change gets a new one.
        :param description: the export's description (``description``). Default: not sent.
        :param wait_for_completion: whether the deploy step waits until the export is ACTIVE. Default: True.
        :param timeout: how long the deploy step waits. Default and maximum: 55 minutes.
        :param poll_interval: how often the export's status is read. Default: the stack provider's (30 seconds).
        """
        job_arn, issues = _job_arn(audience_generation_job)
        request: dict[str, Any] = {"audienceGenerationJobArn": job_arn}
        if isinstance(audience_size, AudienceSize):
            request["audienceSize"] = audience_size._render()
        else:  # reported here, and left out of the model's checks (one line, not two)
            request["audienceSize"] = _Unchecked(audience_size)
            issues.append(
                Issue("audience_size", audience_size, "must be an AudienceSize, e.g. AudienceSize.percentage(10)")
            )
        request.update({k: v for k, v in (("name", name), ("description", description)) if v is not None})
        options = _resource.Options(wait_for_completion, timeout, None, poll_interval)
        names = {"audienceGenerationJobArn": "audience_generation_job"}
        prepared = _resource.prepare(scope, id, _SPEC, request, issues, options, names=names)
        super().__init__(scope, id)
        try:
            self._explicit_name = name
            self.resource, _tags, self.provider = _resource.build(
                self,
                prepared,
                _SPEC,
                path=_resource.shared(prepared.stack).child_path(scope, id),
                explicit_name=name is not None,
                name_max_length=int(request_shape(_SPEC.create).members["name"].metadata["max"]),
                removal_policy=None,
                poll_interval=poll_interval,
            )
            """The ``CfnResource`` of type ``RESOURCE_TYPE`` (escape hatch)."""
            self.provider.allow_export(job_arn)
        except Exception:
            scope.node.try_remove_child(id)
            raise

    @property
    def name(self) -> str:
        """The export's name: the one given, or a token for the one made at deploy time (GetAtt ``Name``)."""
        return self._explicit_name if self._explicit_name is not None else self._attribute("Name")

    @property
    def status(self) -> str:
        """The export's status when its deploy step ended (GetAtt ``Status``): ACTIVE, or with
        ``wait_for_completion=False`` the status right after the start."""
        return self._attribute("Status")

    @property
    def output_location(self) -> str:
        """Where the service wrote the segment, an S3 location (GetAtt ``OutputLocation``; ``outputLocation``).
        Empty until the export is ACTIVE."""
        return self._attribute("OutputLocation")

    def _attribute(self, attribute: str) -> str:
        return _resource.attribute(self.resource, attribute)


def _job_arn(job: Any) -> tuple[Any, list[Issue]]:
    """The job's ARN (a token for a job of the app), and the problems: a job that is not ACTIVE when its deploy
    step ends cannot be exported in the same deploy."""
    if isinstance(job, str):
        from .job import job_of_arn

        found = job_of_arn(job)  # the ARN of a job of the app: the same rule as for the job itself
        if found is None:
            return job, []
        job = found
    arn = getattr(job, "audience_generation_job_arn", None)
    if arn is None:
        return _Unchecked(job), [
            Issue("audience_generation_job", job, "must be an IAudienceGenerationJob or a job ARN string")
        ]
    if not getattr(job, "waits_for_completion", True):
        return arn, [
            Issue(
                "audience_generation_job",
                job.node.path,
                "is declared with wait_for_completion=False: its deploy step ends before the job is ACTIVE, and an "
                "export needs an ACTIVE job (give the job wait_for_completion=True, or export in a later deploy "
                "from its ARN)",
            )
        ]
    return arn, []
