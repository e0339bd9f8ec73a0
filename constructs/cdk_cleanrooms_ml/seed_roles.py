"""Seed roles: the IAM role Clean Rooms ML assumes to read a job's seed audience, with the least it needs.

Follows the Clean Rooms user guide ("Create a service role to read seed data"):

* trust: ``cleanrooms-ml.amazonaws.com`` may assume the role only for audience generation jobs of
  the role's own account and region (``aws:SourceAccount``/``aws:SourceArn``, the confused-deputy
  conditions, written ``...IfExists`` as the guide does);
* an S3 seed: ``s3:GetObject`` on exactly the seed object (or the objects under the seed prefix) and
  ``s3:ListBucket`` on the bucket, both only in the bucket owner's account (``s3:ResourceAccount``), as
  the guide has them; and, when the seed is encrypted with a KMS key, ``kms:Decrypt`` for the seed
  objects only (``kms:EncryptionContext:aws:s3:arn``) and ``kms:DescribeKey`` on that key. Nothing
  stricter than the guide: a condition nobody can test against the service would fail a job at run
  time (CREATE_FAILED), not at synth;
* a SQL seed: the Clean Rooms protected-query permissions, the query ones on the membership.

Roles this module creates carry their statements inline (one CloudFormation resource per role).
A role the caller passes in gets the same statements when it is defined in the app (``iam.Role``)
and is left untouched otherwise (imported roles, ``without_policy_updates()``): its owner manages it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from constructs import Construct

if TYPE_CHECKING:  # only in annotations: importing aws_s3 costs every synth ~50 ms
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3

from .iam_statements import acknowledge_wildcards, cleanrooms_ml_principal, nag_text, skip_checkov

__all__ = [
    "SEED_ROLE_ID_PREFIX",
    "create_seed_role",
    "grant_protected_query",
    "grant_seed_read",
    "protected_query_statements",
    "seed_location",
    "seed_read_statements",
    "seed_role_for_bucket",
    "seed_role_for_sql",
    "seed_role_principal",
]

#: Construct ids of the roles this module creates: the prefix plus a hash of what the role reads.
SEED_ROLE_ID_PREFIX = "CleanRoomsMlSeedRole"

#: The protected-query actions the user guide grants the seed role of a SQL seed on ``*``: they act on
#: collaboration resources (analysis templates, schemas) named only at run time.
PROTECTED_QUERY_START_ACTIONS = (
    "cleanrooms:GetCollaborationAnalysisTemplate",
    "cleanrooms:GetSchema",
    "cleanrooms:StartProtectedQuery",
)
#: The protected-query actions the user guide scopes to the membership.
PROTECTED_QUERY_MEMBERSHIP_ACTIONS = ("cleanrooms:GetProtectedQuery", "cleanrooms:UpdateProtectedQuery")


def seed_location(key: str | None, prefix: str | None) -> tuple[str, str]:
    """``("key", key)`` or ``("prefix", prefix)``; raises ValueError unless exactly one is a non-empty string."""
    given = [(kind, value) for kind, value in (("key", key), ("prefix", prefix)) if value is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of `key` (the seed's JSON-lines object) and `prefix`")
    kind, value = given[0]
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{kind}` must be a non-empty string, got {value!r}")
    if value.startswith("/"):
        raise ValueError(f"`{kind}` must not start with '/' (S3 keys are relative to the bucket): {value!r}")
    if "*" in value or "?" in value:
        raise ValueError(f"`{kind}` must not contain IAM wildcards ('*', '?'): {value!r}")
    return kind, value


def seed_role_principal(scope: Construct) -> iam.ServicePrincipal:
    """Clean Rooms ML, for audience generation jobs of ``scope``'s stack account and region only."""
    return cleanrooms_ml_principal(Stack.of(scope), "audience-generation-job")


def create_seed_role(
    scope: Construct,
    id: str,
    statements: list[iam.PolicyStatement],
    *,
    description: str | None = None,
) -> iam.Role:
    """A role Clean Rooms ML may assume (``seed_role_principal``) with ``statements`` as its inline policy."""
    return iam.Role(
        scope,
        id,
        assumed_by=seed_role_principal(scope),
        description=description or "cdk-cleanrooms-ml: lets Clean Rooms ML read a seed audience",
        inline_policies={"ReadSeed": iam.PolicyDocument(statements=statements)},
    )


# --------------------------------------------------------------------------------------------------
# S3 seeds


def seed_read_statements(
    bucket: s3.IBucket,
    *,
    key: str | None = None,
    prefix: str | None = None,
    encryption_key: kms.IKey | str | None = None,
    bucket_owner: str | None = None,
) -> list[iam.PolicyStatement]:
    """Reading one seed object (``key``) or the objects under ``prefix``, as the user guide's seed role does.

    :param encryption_key: the seed's KMS key (``IKey`` or key ARN). Default: the bucket's ``encryption_key``.
    :param bucket_owner: the bucket owner's account. Default: the bucket's account.
    """
    kind, location = seed_location(key, prefix)
    pattern = location if kind == "key" else location + "*"
    objects = bucket.arn_for_objects(pattern)
    owner = {"s3:ResourceAccount": bucket_owner or bucket.env.account}
    statements = [
        iam.PolicyStatement(
            sid="ReadSeedObjects",
            actions=["s3:GetObject"],
            resources=[objects],
            conditions={"StringEquals": owner},
        ),
        iam.PolicyStatement(
            sid="ListSeedBucket",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringEquals": owner},
        ),
    ]
    key_arn = _key_arn(encryption_key if encryption_key is not None else bucket.encryption_key)
    if key_arn is not None:
        statements += [
            # Decrypt only for the seed: an object's encryption context is its ARN, or the bucket's ARN
            # when the bucket uses S3 Bucket Keys. s3:GetObject above still limits which objects are read.
            iam.PolicyStatement(
                sid="DecryptSeedObjects",
                actions=["kms:Decrypt"],
                resources=[key_arn],
                conditions={"StringLike": {"kms:EncryptionContext:aws:s3:arn": [objects, bucket.bucket_arn]}},
            ),
            # DescribeKey carries no encryption context: a condition on it would never match.
            iam.PolicyStatement(sid="DescribeSeedKey", actions=["kms:DescribeKey"], resources=[key_arn]),
        ]
    return statements


def _key_arn(key: kms.IKey | str | None) -> str | None:
    if key is None or isinstance(key, str):
        return key
    return key.key_arn


def grant_seed_read(
    role: iam.IRole,
    bucket: s3.IBucket,
    *,
    key: str | None = None,
    prefix: str | None = None,
    encryption_key: kms.IKey | str | None = None,
    bucket_owner: str | None = None,
) -> bool:
    """Let ``role`` read the seed if the role is defined in the app; True when statements were added.

    An imported role (``iam.Role.from_role_arn``, ``without_policy_updates()``) is left as it is:
    whoever manages it grants the read (see ``seed_read_statements`` for what it needs).
    """
    statements = seed_read_statements(
        bucket, key=key, prefix=prefix, encryption_key=encryption_key, bucket_owner=bucket_owner
    )
    if not isinstance(role, iam.Role):
        return False
    for statement in statements:
        role.add_to_principal_policy(statement)
    if prefix is not None:
        _acknowledge_prefix_wildcard(role, bucket, prefix)
    return True


def seed_role_for_bucket(
    bucket: s3.IBucket,
    *,
    key: str | None = None,
    prefix: str | None = None,
    encryption_key: kms.IKey | str | None = None,
    bucket_owner: str | None = None,
    scope: Construct | None = None,
) -> iam.Role:
    """The seed role that reads exactly this seed, created on first use.

    :param scope: where the role is created. Default: the bucket's stack (``SeedAudience.from_bucket``
        passes the job's stack). Its construct id is ``CleanRoomsMlSeedRole<hash>``, the hash covering the
        bucket's construct path and the key or prefix: the same seed always gets the same role (jobs
        sharing a seed share its role), and a new seed location gets a new role.
    """
    kind, location = seed_location(key, prefix)
    role, created = _seed_role_once(
        scope if scope is not None else Stack.of(bucket),
        _digest(bucket.node.path, kind, location),
        lambda: seed_read_statements(
            bucket, key=key, prefix=prefix, encryption_key=encryption_key, bucket_owner=bucket_owner
        ),
        f"cdk-cleanrooms-ml: lets Clean Rooms ML read the seed audience at the {kind} {location}",
    )
    if created and prefix is not None:
        _acknowledge_prefix_wildcard(role, bucket, prefix)
    return role


def _seed_role_once(
    parent: Construct, digest: str, statements: Callable[[], list[iam.PolicyStatement]], description: str
) -> tuple[iam.Role, bool]:
    """The seed role ``CleanRoomsMlSeedRole<digest>`` of ``parent``, and whether this call created it."""
    role_id = f"{SEED_ROLE_ID_PREFIX}{digest}"
    existing = parent.node.try_find_child(role_id)
    if isinstance(existing, iam.Role):
        return existing, False
    return create_seed_role(parent, role_id, statements(), description=description), True


# --------------------------------------------------------------------------------------------------
# SQL seeds


def protected_query_statements(membership_arn: str) -> list[iam.PolicyStatement]:
    """What the seed role of a SQL seed needs (Clean Rooms user guide): queries of this membership."""
    return [
        iam.PolicyStatement(
            sid="StartProtectedQueries",
            actions=list(PROTECTED_QUERY_START_ACTIONS),
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="FollowProtectedQueriesOfMembership",
            actions=list(PROTECTED_QUERY_MEMBERSHIP_ACTIONS),
            resources=[membership_arn],
        ),
    ]


def grant_protected_query(role: iam.IRole, membership_arn: str) -> bool:
    """Let ``role`` run the seed's protected query if the role is defined in the app; True when granted."""
    if not isinstance(role, iam.Role):
        return False
    # A policy of its own (one per role and membership), so the acknowledgement of its `*` covers these
    # statements only and not whatever else the role is given.
    digest = _digest("sql", membership_arn)
    policy_id = f"CleanRoomsMlProtectedQuery{digest}"
    if role.node.try_find_child(policy_id) is None:
        policy = iam.Policy(role, policy_id, statements=protected_query_statements(membership_arn), roles=[role])
        acknowledge_wildcards(policy, ["Resource::*"], _PROTECTED_QUERY_REASON)
        skip_checkov(policy.node.default_child, "CKV_AWS_111", _PROTECTED_QUERY_REASON)
    return True


def seed_role_for_sql(scope: Construct, membership_arn: str) -> iam.Role:
    """The seed role of SQL seeds of this membership in ``scope``, created on first use.

    Its construct id is ``CleanRoomsMlSeedRole<hash of the membership ARN>``.
    """
    role, created = _seed_role_once(
        scope,
        _digest("sql", membership_arn),
        lambda: protected_query_statements(membership_arn),
        "cdk-cleanrooms-ml: lets Clean Rooms ML run a seed audience's protected query",
    )
    if created:
        acknowledge_wildcards(role, ["Resource::*"], _PROTECTED_QUERY_REASON)
        skip_checkov(role.node.default_child, "CKV_AWS_111", _PROTECTED_QUERY_REASON)
    return role


# --------------------------------------------------------------------------------------------------
# cdk-nag acknowledgements of the wildcards that must stay

_PROTECTED_QUERY_REASON = (
    "cleanrooms:StartProtectedQuery, GetSchema and GetCollaborationAnalysisTemplate are granted on * as the "
    "Clean Rooms user guide's seed-role policy does: the analysis template and schemas are collaboration "
    "resources chosen by the query at run time. Reading and updating queries is limited to the membership."
)


def _acknowledge_prefix_wildcard(role: iam.Role, bucket: s3.IBucket, prefix: str) -> None:
    acknowledge_wildcards(
        role,
        lambda: [f"Resource::{nag_text(Stack.of(role).resolve(bucket.arn_for_objects(prefix + '*')))}"],
        f"the seed is every object under the prefix {prefix!r} that the user gave; nothing else of the bucket "
        "is readable",
    )


def _digest(*parts: str) -> str:
    """A short, stable hash for construct ids (the same inputs give the same id in every synth)."""
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:10]
