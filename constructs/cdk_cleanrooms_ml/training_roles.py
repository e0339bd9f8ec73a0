"""The role Clean Rooms ML assumes to read a training dataset: its AWS Glue table and the S3 data under it.

Follows the Clean Rooms user guide, "Create a service role to read training data"
(https://docs.aws.amazon.com/clean-rooms/latest/userguide/ml-roles.html#ml-create-role-training):

* trust: ``cleanrooms-ml.amazonaws.com`` may assume the role only for training datasets of the role's own
  account and region (``aws:SourceAccount``/``aws:SourceArn``, written ``...IfExists`` as the guide does; the
  guide's ``training-dataset/*``, since a dataset's ARN is known only once the dataset exists);
* Glue: the guide's read actions on the catalog, the database, the table and the ``default`` database, and
  ``glue:CreateDatabase`` on the ``default`` database, in the catalog's account;
* S3: ``s3:ListBucket`` and ``s3:GetBucketLocation`` on the bucket, ``s3:GetObject`` on the objects under the
  data prefix, all only in the bucket owner's account (``s3:ResourceAccount``);
* KMS, when the bucket is encrypted with a KMS key: ``kms:Decrypt`` for the data's objects only
  (``kms:EncryptionContext:aws:s3:arn``, ``ArnLike`` as the guide has it; the bucket's ARN too, which is the
  context when the bucket uses S3 Bucket Keys).

Nothing stricter than the guide: a condition nobody can test against the service would fail the audience
model's training at run time, not at synth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam

from constructs import Construct

from .iam_statements import acknowledge_wildcards, cleanrooms_ml_principal, nag_text

if TYPE_CHECKING:  # only in annotations: importing aws_s3/aws_kms costs every synth
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3

__all__ = [
    "GLUE_READ_ACTIONS",
    "TRAINING_ROLE_ID",
    "acknowledge_data_prefix",
    "grant_training_data_read",
    "training_data_role",
    "training_data_statements",
    "training_role_principal",
]

#: The construct id of the role a ``TrainingDataset`` makes (a child of the dataset).
TRAINING_ROLE_ID = "CleanRoomsMlTrainingDataRole"

#: The Glue actions of the user guide's training-data role, in its order.
GLUE_READ_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetDatabases",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartitions",
    "glue:GetPartition",
    "glue:BatchGetPartition",
    "glue:GetUserDefinedFunctions",
)


def training_role_principal(scope: Construct) -> iam.ServicePrincipal:
    """Clean Rooms ML, for training datasets of ``scope``'s stack account and region only."""
    return cleanrooms_ml_principal(Stack.of(scope), "training-dataset")


def training_data_statements(
    scope: Construct,
    *,
    database_name: str,
    table_name: str,
    catalog_id: str | None = None,
    data_bucket: s3.IBucket | None = None,
    data_prefix: str = "",
    encryption_key: kms.IKey | str | None = None,
    bucket_owner: str | None = None,
) -> list[iam.PolicyStatement]:
    """What reading the training data needs, as the user guide's training-data role has it.

    :param scope: a construct of the stack whose region the Glue table is in.
    :param catalog_id: the Glue Data Catalog's account. Default: the stack's account.
    :param data_bucket: the bucket under the table. Default: no S3 statement (grant the read yourself).
    :param data_prefix: the key prefix of the table's data. Default: the whole bucket.
    :param encryption_key: the data's KMS key (``IKey`` or key ARN). Default: the bucket's ``encryption_key``.
    :param bucket_owner: the bucket owner's account. Default: the bucket's account.
    """
    stack = Stack.of(scope)
    account = catalog_id if catalog_id is not None else stack.account

    def glue(resource: str, name: str | None = None) -> str:
        if name is None:
            return stack.format_arn(
                service="glue", resource=resource, account=account, arn_format=ArnFormat.NO_RESOURCE_NAME
            )
        return stack.format_arn(service="glue", resource=resource, resource_name=name, account=account)

    default_database = glue("database", "default")
    # The guide's order: the database, the table, the catalog, the default database (once, if it is the table's).
    read_on = [glue("database", database_name), glue("table", f"{database_name}/{table_name}"), glue("catalog")]
    if database_name != "default":
        read_on.append(default_database)
    statements = [
        iam.PolicyStatement(sid="ReadGlueTable", actions=list(GLUE_READ_ACTIONS), resources=read_on),
        iam.PolicyStatement(
            sid="CreateDefaultGlueDatabase", actions=["glue:CreateDatabase"], resources=[default_database]
        ),
    ]
    if data_bucket is None:
        return statements
    owner = {"s3:ResourceAccount": bucket_owner or data_bucket.env.account}
    objects = data_bucket.arn_for_objects(data_prefix + "*")
    statements += [
        iam.PolicyStatement(
            sid="LocateTrainingDataBucket",
            actions=["s3:ListBucket", "s3:GetBucketLocation"],
            resources=[data_bucket.bucket_arn],
            conditions={"StringEquals": owner},
        ),
        iam.PolicyStatement(
            sid="ReadTrainingDataObjects",
            actions=["s3:GetObject"],
            resources=[objects],
            conditions={"StringEquals": owner},
        ),
    ]
    key = encryption_key if encryption_key is not None else data_bucket.encryption_key
    if key is not None:
        statements.append(
            iam.PolicyStatement(
                sid="DecryptTrainingDataObjects",
                actions=["kms:Decrypt"],
                resources=[key if isinstance(key, str) else key.key_arn],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:s3:arn": [objects, data_bucket.bucket_arn]}},
            )
        )
    return statements


def training_data_role(
    scope: Construct, id: str, statements: list[iam.PolicyStatement], *, description: str | None = None
) -> iam.Role:
    """A role Clean Rooms ML may assume for training datasets (``training_role_principal``), with ``statements``
    as its inline policy (one CloudFormation resource)."""
    return iam.Role(
        scope,
        id,
        assumed_by=training_role_principal(scope),
        description=description or "cdk-cleanrooms-ml: lets Clean Rooms ML read a training dataset",
        inline_policies={"ReadTrainingData": iam.PolicyDocument(statements=statements)},
    )


def grant_training_data_read(role: iam.IRole, statements: list[iam.PolicyStatement]) -> bool:
    """Add ``statements`` to ``role`` if the role is defined in the app; True when added.

    An imported role (``iam.Role.from_role_arn``, ``without_policy_updates()``) is left as it is: whoever manages
    it grants the read (``training_data_statements`` says what it needs).
    """
    if not isinstance(role, iam.Role):
        return False
    for statement in statements:
        role.add_to_principal_policy(statement)
    return True


def acknowledge_data_prefix(role: iam.Role, data_bucket: s3.IBucket, data_prefix: str) -> None:
    """cdk-nag's AwsSolutions-IAM5 finding on the objects under the prefix: the table's data, named by the
    writer of the table (the service reads what the Glue table's location holds)."""
    acknowledge_wildcards(
        role,
        lambda: [f"Resource::{nag_text(Stack.of(role).resolve(data_bucket.arn_for_objects(data_prefix + '*')))}"],
        f"the training data is every object under the prefix {data_prefix!r} (the Glue table's location) that "
        "the user gave; nothing else of the bucket is readable",
    )
