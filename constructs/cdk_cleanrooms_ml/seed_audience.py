"""The seed audience of a job: where its user ids come from, and the role that reads them.

Each type renders the part of the StartAudienceGenerationJob request it stands for, with the
service's own member names, so the custom resource's properties are the API request itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from constructs import Construct

if TYPE_CHECKING:  # only in annotations: importing aws_s3 costs every synth ~50 ms
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3

from . import seed_roles

__all__ = [
    "S3DataSource",
    "SeedAudience",
    "SqlParameters",
    "WorkerComputeConfiguration",
    "WorkerComputeType",
]


@dataclass(frozen=True)
class WorkerComputeType:
    """The instance type of the workers that run a SQL seed's protected query.

    API field: ``seedAudience.sqlComputeConfiguration.worker.type``. The constants are the types this
    release knows; any type of the installed service model is accepted (``WorkerComputeType.of("CR.8X")``)
    and checked against that model at synth time, so a new type needs no release of this library.
    """

    value: str
    """The type as the API spells it, e.g. ``"CR.4X"``."""

    CR_1X: ClassVar[WorkerComputeType]
    """``CR.1X``: the smallest worker type."""
    CR_4X: ClassVar[WorkerComputeType]
    """``CR.4X``: four times the resources of ``CR.1X``."""
    CR_8X: ClassVar[WorkerComputeType]
    """``CR.8X``: eight times the resources of ``CR.1X`` (newer than the printed API reference)."""

    @classmethod
    def of(cls, value: str) -> WorkerComputeType:
        """A worker type by its API name (checked against the installed service model at synth time)."""
        return cls(value)

    @classmethod
    def all(cls) -> list[WorkerComputeType]:
        """Every worker type the installed botocore service model declares."""
        from .service_model import worker_types

        return [cls(value) for value in worker_types()]

    def __str__(self) -> str:
        return self.value


WorkerComputeType.CR_1X = WorkerComputeType("CR.1X")
WorkerComputeType.CR_4X = WorkerComputeType("CR.4X")
WorkerComputeType.CR_8X = WorkerComputeType("CR.8X")


@dataclass(frozen=True, kw_only=True)
class WorkerComputeConfiguration:
    """The compute that runs a SQL seed's protected query. API field: ``seedAudience.sqlComputeConfiguration``."""

    type: WorkerComputeType | str
    """Worker instance type (``worker.type``). Required."""

    number: int
    """Number of workers (``worker.number``), 2 to 1024 per the service model. Required."""

    spark_properties: dict[str, str] | None = None
    """Spark properties for the workers (``worker.properties.spark``). Default: none."""

    def _render(self) -> dict[str, Any]:
        worker: dict[str, Any] = {"type": str(self.type), "number": self.number}
        if self.spark_properties is not None:
            worker["properties"] = {"spark": dict(self.spark_properties)}
        return {"worker": worker}


@dataclass(frozen=True, kw_only=True)
class S3DataSource:
    """A seed audience in Amazon S3: a JSON-lines file of ``{"user_id": "..."}``.

    API field: ``seedAudience.dataSource``.
    """

    s3_uri: str
    """The seed's location, ``s3://bucket/key`` (``s3Uri``). Required."""

    def _render(self) -> dict[str, Any]:
        return {"s3Uri": self.s3_uri}


@dataclass(frozen=True, kw_only=True)
class SqlParameters:
    """A seed audience produced by a protected SQL query in a collaboration. API field: ``seedAudience.sqlParameters``.

    The service model marks these values sensitive: see the README's Security section for what
    CloudFormation and the Provider framework record of them.
    """

    query_string: str | None = None
    """The SQL query (``queryString``). Default: none; exactly one of this and ``analysis_template_arn``."""

    analysis_template_arn: str | None = None
    """An analysis template of the collaboration (``analysisTemplateArn``). Default: none; exactly one of this and
    ``query_string``."""

    parameters: dict[str, str] | None = None
    """Values for the query's parameters (``parameters``). Default: none. Sensitive: never logged or repeated in
    error messages by this library (see the README's Security section for what CloudFormation records)."""

    def _render(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {}
        if self.query_string is not None:
            rendered["queryString"] = self.query_string
        if self.analysis_template_arn is not None:
            rendered["analysisTemplateArn"] = self.analysis_template_arn
        if self.parameters is not None:
            rendered["parameters"] = dict(self.parameters)
        return rendered


@dataclass(frozen=True, kw_only=True)
class SeedAudience:
    """Where a job's seed audience comes from, and the role Clean Rooms ML assumes to read it.

    API field: ``seedAudience``. Give exactly one of ``data_source`` and ``sql_parameters``.
    """

    role: iam.IRole | str | None
    """The role Clean Rooms ML assumes to read the seed (``roleArn``): an ``iam.IRole`` or a role ARN. Required,
    except from ``from_bucket`` / ``from_sql`` without a role: the library then makes one in the job's stack."""

    data_source: S3DataSource | None = None
    """An S3 seed (``dataSource``). Default: none."""

    sql_parameters: SqlParameters | None = None
    """A protected-query seed (``sqlParameters``). Default: none."""

    sql_compute_configuration: WorkerComputeConfiguration | None = None
    """Compute for a SQL seed (``sqlComputeConfiguration``), only with ``sql_parameters``. Default: none (the
    service's default compute)."""

    _role_maker: Callable[[Construct], iam.IRole] | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def from_bucket(
        cls,
        bucket: s3.IBucket,
        *,
        key: str | None = None,
        prefix: str | None = None,
        role: iam.IRole | None = None,
        encryption_key: kms.IKey | str | None = None,
        bucket_owner: str | None = None,
        scope: Construct | None = None,
    ) -> SeedAudience:
        """A seed in S3, read by a role that may read exactly that seed (the Clean Rooms ML user guide's seed role).

        :param bucket: the bucket that holds the seed. Required. An imported bucket
            (``s3.Bucket.from_bucket_name``) works: give ``encryption_key`` and ``bucket_owner`` when they apply.
        :param key: the seed's JSON-lines object, the usual case; ``dataSource.s3Uri`` is
            ``s3://<bucket>/<key>``. Exactly one of ``key`` and ``prefix``.
        :param prefix: a key prefix instead: ``s3Uri`` is ``s3://<bucket>/<prefix>`` as given and the
            role may read every object under it. Whether the service accepts a prefix for a seed is
            up to the service (the API asks for "the Amazon S3 location"); prefer ``key``.
        :param role: the seed role. Default: a new role (see ``seed_roles.seed_role_for_bucket``),
            trusted by Clean Rooms ML for this account's audience generation jobs only, made in the stack of
            the job that uses the seed. A role defined in the app (``iam.Role``) is granted the read; an
            imported role is used as it is.
        :param encryption_key: the KMS key the seed is encrypted with (an ``IKey`` or a key ARN); the role may
            decrypt with it for the seed objects only. Default: the bucket's own ``encryption_key``, if any.
        :param bucket_owner: the account that owns the bucket (``s3:ResourceAccount`` of the role's statements).
            Default: the bucket's account (for an imported bucket, the importing stack's account).
        :param scope: where the default role is created, when it must be somewhere else than the job's stack.
            Default: the stack of the job that uses the seed.
        """
        _kind, location = seed_roles.seed_location(key, prefix)
        data_source = S3DataSource(s3_uri=bucket.s3_url_for_object(location))
        seed: dict[str, Any] = {
            "key": key,
            "prefix": prefix,
            "encryption_key": encryption_key,
            "bucket_owner": bucket_owner,
        }
        if role is not None:
            seed_roles.grant_seed_read(role, bucket, **seed)
            return cls(role=role, data_source=data_source)
        if scope is not None:
            return cls(role=seed_roles.seed_role_for_bucket(bucket, scope=scope, **seed), data_source=data_source)
        return cls(
            role=None,
            data_source=data_source,
            _role_maker=lambda job: seed_roles.seed_role_for_bucket(bucket, scope=Stack.of(job), **seed),
        )

    @classmethod
    def from_sql(
        cls,
        *,
        membership_arn: str,
        query_string: str | None = None,
        analysis_template_arn: str | None = None,
        parameters: dict[str, str] | None = None,
        sql_compute_configuration: WorkerComputeConfiguration | None = None,
        role: iam.IRole | None = None,
        scope: Construct | None = None,
    ) -> SeedAudience:
        """A seed produced by a protected query, run by a role allowed to query in this membership.

        :param membership_arn: the Clean Rooms membership the query runs in
            (``arn:aws:cleanrooms:<region>:<account>:membership/<id>``). Required: the role's
            protected-query permissions are scoped to it.
        :param query_string: the SQL query. Exactly one of this and ``analysis_template_arn``.
        :param analysis_template_arn: an analysis template of the collaboration.
        :param parameters: values of the query's parameters. Default: none. Sensitive: see the README's
            Security section for what CloudFormation records of them.
        :param sql_compute_configuration: the query's compute. Default: the service's.
        :param role: the seed role. Default: a new role, made in the stack of the job that uses the seed; a
            role defined in the app is granted the permissions, an imported role is used as it is.
        :param scope: where the default role is created, when it must be somewhere else than the job's stack.
        """
        sql = SqlParameters(
            query_string=query_string, analysis_template_arn=analysis_template_arn, parameters=parameters
        )
        maker: Callable[[Construct], iam.IRole] | None = None
        if role is not None:
            seed_roles.grant_protected_query(role, membership_arn)
        elif scope is not None:
            role = seed_roles.seed_role_for_sql(scope, membership_arn)
        else:
            maker = lambda job: seed_roles.seed_role_for_sql(Stack.of(job), membership_arn)  # noqa: E731
        return cls(
            role=role, sql_parameters=sql, sql_compute_configuration=sql_compute_configuration, _role_maker=maker
        )

    @property
    def makes_role(self) -> bool:
        """Whether the library makes the seed role when a job uses this seed (``role`` is None until then)."""
        return self.role is None and self._role_maker is not None

    def bound(self, job: Construct) -> SeedAudience:
        """This seed with its role: made now in ``job``'s stack if the library makes it (same seed, same role)."""
        if self.role is None and self._role_maker is not None:
            return dataclasses.replace(self, role=self._role_maker(job), _role_maker=None)
        return self

    @property
    def role_arn(self) -> str:
        """The seed role's ARN (a token when the role is defined in the app)."""
        if self.role is None:
            raise ValueError("the seed role is made when a job uses this seed: read the job's seed role instead")
        return self.role if isinstance(self.role, str) else self.role.role_arn

    def _render(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {"roleArn": self.role_arn}
        if self.data_source is not None:
            rendered["dataSource"] = self.data_source._render()
        if self.sql_parameters is not None:
            rendered["sqlParameters"] = self.sql_parameters._render()
        if self.sql_compute_configuration is not None:
            rendered["sqlComputeConfiguration"] = self.sql_compute_configuration._render()
        return rendered
