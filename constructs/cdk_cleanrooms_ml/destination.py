"""Where a configured audience model writes the segments, and the role Clean Rooms ML assumes to write them.

The role follows the Clean Rooms user guide ("Create a service role to write a lookalike segment"):
trust ``cleanrooms-ml.amazonaws.com`` for this account's Clean Rooms ML resources only
(``aws:SourceAccount``/``aws:SourceArn``), ``s3:PutObject`` under the destination prefix,
``s3:GetBucketLocation`` and ``s3:ListBucket`` on the bucket, all in the bucket owner's account
(``s3:ResourceAccount``), and, when the bucket is encrypted with a KMS key, ``kms:GenerateDataKey`` and
``kms:Decrypt`` for objects under the prefix (``kms:EncryptionContext:aws:s3:arn``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from constructs import Construct

from .iam_statements import acknowledge_wildcards, cleanrooms_ml_principal, nag_text

if TYPE_CHECKING:  # only in annotations: importing aws_s3/aws_kms costs every synth
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3

#: Construct ids of the roles this module creates: the prefix plus a hash of where they write.
DESTINATION_ROLE_ID_PREFIX = "CleanRoomsMlSegmentWriter"


@dataclass(frozen=True, kw_only=True)
class AudienceDestination:
    """Where the segments of a configured audience model go (``outputConfig``): an S3 location, and the role
    Clean Rooms ML assumes to write there."""

    s3_uri: str
    """The destination, ``s3://<bucket>/<prefix>`` (``outputConfig.destination.s3Destination.s3Uri``). Required."""
    role: iam.IRole | str | None
    """The role that writes the segments (``outputConfig.roleArn``): an ``iam.IRole`` or a role ARN. Required,
    except from ``from_bucket`` without a role: the library then makes one in the model's stack."""

    _role_maker: Callable[[Construct], iam.IRole] | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def from_bucket(
        cls,
        bucket: s3.IBucket,
        *,
        prefix: str = "",
        role: iam.IRole | None = None,
        encryption_key: kms.IKey | str | None = None,
        bucket_owner: str | None = None,
    ) -> AudienceDestination:
        """Segments written under ``prefix`` of ``bucket``, by a role that may write exactly there.

        :param prefix: the key prefix (``"segments/"``). Default: the bucket's root.
        :param role: the role. Default: a new one (the user guide's segment-writer role), made in the stack of
            the configured audience model that uses the destination. A role of the app gets the statements; an
            imported role is used as it is.
        :param encryption_key: the bucket's KMS key (an ``IKey`` or a key ARN). Default: ``bucket.encryption_key``.
        :param bucket_owner: the bucket owner's account. Default: the bucket's account.
        """
        if "*" in prefix or "?" in prefix or prefix.startswith("/"):
            raise ValueError(f"`prefix` must be a plain key prefix (no '*', '?' or leading '/'): {prefix!r}")
        s3_uri = bucket.s3_url_for_object(prefix) if prefix else f"s3://{bucket.bucket_name}/"
        grant: dict[str, Any] = {"prefix": prefix, "encryption_key": encryption_key, "bucket_owner": bucket_owner}
        if role is not None:
            if isinstance(role, iam.Role):
                for statement in segment_write_statements(bucket, **grant):
                    role.add_to_principal_policy(statement)
                _acknowledge_prefix(role, bucket, prefix)
            return cls(s3_uri=s3_uri, role=role)
        return cls(
            s3_uri=s3_uri,
            role=None,
            _role_maker=lambda model: segment_writer_role(Stack.of(model), bucket, **grant),
        )

    @property
    def makes_role(self) -> bool:
        return self.role is None and self._role_maker is not None

    def bound(self, model: Construct) -> AudienceDestination:
        """This destination with its role: made now in ``model``'s stack if the library makes it."""
        if self.role is None and self._role_maker is not None:
            return dataclasses.replace(self, role=self._role_maker(model), _role_maker=None)
        return self

    @property
    def role_arn(self) -> str:
        if self.role is None:
            raise ValueError("the segment-writer role is made when a configured audience model uses this destination")
        return self.role if isinstance(self.role, str) else self.role.role_arn

    def _render(self, role_arn: Any) -> dict[str, Any]:
        return {"destination": {"s3Destination": {"s3Uri": self.s3_uri}}, "roleArn": role_arn}


def segment_write_statements(
    bucket: s3.IBucket,
    *,
    prefix: str = "",
    encryption_key: kms.IKey | str | None = None,
    bucket_owner: str | None = None,
) -> list[iam.PolicyStatement]:
    """Writing segments under ``prefix`` of ``bucket``, and nothing else of it."""
    owner = {"s3:ResourceAccount": bucket_owner or bucket.env.account}
    objects = bucket.arn_for_objects(prefix + "*")
    statements = [
        iam.PolicyStatement(
            sid="WriteSegments", actions=["s3:PutObject"], resources=[objects], conditions={"StringEquals": owner}
        ),
        iam.PolicyStatement(
            sid="LocateDestinationBucket",
            actions=["s3:GetBucketLocation", "s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringEquals": owner},
        ),
    ]
    key = encryption_key if encryption_key is not None else bucket.encryption_key
    if key is not None:
        key_arn = key if isinstance(key, str) else key.key_arn
        statements.append(
            iam.PolicyStatement(
                sid="EncryptSegments",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key_arn],
                conditions={"StringLike": {"kms:EncryptionContext:aws:s3:arn": [objects, bucket.bucket_arn]}},
            )
        )
    return statements


def segment_writer_role(
    scope: Construct,
    bucket: s3.IBucket,
    *,
    prefix: str = "",
    encryption_key: kms.IKey | str | None = None,
    bucket_owner: str | None = None,
) -> iam.Role:
    """The role that writes segments under ``prefix`` of ``bucket``, created once per stack and location
    (construct id ``CleanRoomsMlSegmentWriter<hash>``)."""
    digest = hashlib.sha256(json.dumps([bucket.node.path, prefix]).encode()).hexdigest()[:10]
    stack = Stack.of(scope)
    role_id = f"{DESTINATION_ROLE_ID_PREFIX}{digest}"
    existing = stack.node.try_find_child(role_id)
    if isinstance(existing, iam.Role):
        return existing
    principal = cleanrooms_ml_principal(stack, "configured-audience-model", "audience-generation-job")
    role = iam.Role(
        stack,
        role_id,
        assumed_by=principal,
        description=f"cdk-cleanrooms-ml: lets Clean Rooms ML write lookalike segments under the prefix {prefix!r}",
        inline_policies={
            "WriteSegments": iam.PolicyDocument(
                statements=segment_write_statements(
                    bucket, prefix=prefix, encryption_key=encryption_key, bucket_owner=bucket_owner
                )
            )
        },
    )
    _acknowledge_prefix(role, bucket, prefix)
    return role


def _acknowledge_prefix(role: iam.Role, bucket: s3.IBucket, prefix: str) -> None:
    acknowledge_wildcards(
        role,
        lambda: [f"Resource::{nag_text(Stack.of(role).resolve(bucket.arn_for_objects(prefix + '*')))}"],
        f"segments are written under the destination prefix {prefix!r} with names the service chooses; nothing "
        "else of the bucket is writable",
    )
