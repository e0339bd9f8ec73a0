"""``TrainingDataset``: a Clean Rooms ML training dataset (the AWS Glue table a lookalike model learns from).

Built on aws-cdk-lib's ``CfnTrainingDataset`` (``AWS::CleanRoomsML::TrainingDataset``): CloudFormation creates
and deletes it, no custom resource. What the construct adds: the props checked at synth against the service
model and the documented rules (every problem at once), a name derived when none is given, and the role that
reads the data (the user guide's training-data role, ``training_roles``).

The service model is read from the installed botocore (synth time only): the models the library ships in the
handler's asset hold only the operations the handler calls, and the rehearsal endpoint serves every one of them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

import jsii
from aws_cdk import Annotations, CfnTag, IStableStringProducer, Lazy, RemovalPolicy, Stack
from aws_cdk import aws_cleanroomsml as cleanroomsml
from aws_cdk import aws_iam as iam

from constructs import Construct, IValidation

from . import _resource, training_roles, validation
from .service_model import SERVICE_NAME, model_rules
from .validation import Issue, ValidationError

if TYPE_CHECKING:  # only in annotations: importing aws_s3 costs every synth
    from aws_cdk import aws_s3 as s3

__all__ = ["CREATE_OPERATION", "Column", "ColumnType", "TrainingDataset", "create_request_shape"]

#: The API call CloudFormation makes for the resource; its request shape holds the rules the props must meet.
CREATE_OPERATION = "CreateTrainingDataset"
#: The only dataset type the service has (``trainingData[].type``).
DATASET_TYPE = "INTERACTIONS"
#: The column types a training dataset must have, once each (the user guide's training data requirements).
REQUIRED_COLUMN_TYPES = ("USER_ID", "ITEM_ID", "TIMESTAMP")
FEATURE_COLUMN_TYPES = ("CATEGORICAL_FEATURE", "NUMERICAL_FEATURE")
#: "Optionally, you can provide up to 10 total categorical or numerical features" (training data requirements).
MAX_FEATURE_COLUMNS = 10
#: A derived name is ``<construct path>-<digest of this many hex characters>``.
NAME_DIGEST_LENGTH = 10


@dataclass(frozen=True)
class ColumnType:
    """What a column of the training data holds (``schema[].columnTypes``)."""

    value: str
    USER_ID: ClassVar[ColumnType]
    """The user's identifier (string, int or bigint; not personally identifiable). Exactly one column."""
    ITEM_ID: ClassVar[ColumnType]
    """The identifier of the item the user interacted with (string, int or bigint). Exactly one column."""
    TIMESTAMP: ClassVar[ColumnType]
    """When the interaction happened, in Unix epoch seconds (bigint, int or timestamp). Exactly one column."""
    CATEGORICAL_FEATURE: ClassVar[ColumnType]
    """A category of the user or the item (event type, country, brand, ...)."""
    NUMERICAL_FEATURE: ClassVar[ColumnType]
    """A number about the user or the item (price, amount spent, ...)."""


ColumnType.USER_ID = ColumnType("USER_ID")
ColumnType.ITEM_ID = ColumnType("ITEM_ID")
ColumnType.TIMESTAMP = ColumnType("TIMESTAMP")
ColumnType.CATEGORICAL_FEATURE = ColumnType("CATEGORICAL_FEATURE")
ColumnType.NUMERICAL_FEATURE = ColumnType("NUMERICAL_FEATURE")


@dataclass(frozen=True)
class Column:
    """One column of the Glue table, as the training dataset's schema declares it (``schema[]``)."""

    name: str
    """The column's name in the Glue table (``columnName``)."""
    type: ColumnType | str
    """What the column holds (``columnTypes``, one type per column)."""

    def _render(self) -> dict[str, Any]:
        kind = self.type.value if isinstance(self.type, ColumnType) else self.type
        return {"columnName": self.name, "columnTypes": [kind]}


@cache
def create_request_shape() -> Any | None:
    """CreateTrainingDataset's request shape in the installed botocore; None when that botocore has no such model.

    ``create_loader()`` reads botocore's own data (and ``~/.aws/models``), not ``AWS_DATA_PATH``, which may point
    at the handler's trimmed models.
    """
    import botocore.exceptions
    import botocore.loaders
    import botocore.model

    try:
        data = botocore.loaders.create_loader().load_service_model(SERVICE_NAME, "service-2")
        return botocore.model.ServiceModel(data, SERVICE_NAME).operation_model(CREATE_OPERATION).input_shape
    except (botocore.exceptions.DataNotFoundError, botocore.model.OperationNotFoundError):
        return None


class TrainingDataset(Construct):
    """A Clean Rooms ML training dataset: the Glue table of user-item interactions an audience model is trained on.

    One ``AWS::CleanRoomsML::TrainingDataset`` resource (aws-cdk-lib's ``CfnTrainingDataset``), and by default the
    role Clean Rooms ML assumes to read the table (the Clean Rooms user guide's "Create a service role to read
    training data"). Every property but the tags replaces the dataset when it changes; tags change in place.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        database_name: str,
        table_name: str,
        columns: list[Column],
        catalog_id: str | None = None,
        role: iam.IRole | str | None = None,
        data_bucket: s3.IBucket | None = None,
        data_prefix: str | None = None,
        name: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        removal_policy: RemovalPolicy | None = None,
    ) -> None:
        """
        :param database_name: the Glue database of the training data (``glueDataSource.databaseName``).
        :param table_name: the Glue table (``glueDataSource.tableName``). Its data must be in the stack's region.
        :param columns: the table's columns the model uses, 1 to 100: exactly one each of ``ColumnType.USER_ID``,
            ``ITEM_ID`` and ``TIMESTAMP``, and up to 10 features (``schema``). Names as in the Glue table.
        :param catalog_id: the account of the Glue Data Catalog (``glueDataSource.catalogId``). Default: not sent
            (the service's default, the caller's account); the created role reads the stack account's catalog.
        :param role: the role Clean Rooms ML assumes to read the table (``roleArn``): an ``iam.IRole`` or a role
            ARN, of the stack's account. A role of the app (``iam.Role``) gets the read statements (with
            ``data_bucket``, the S3 ones too); an imported role or an ARN is used as it is. Default: a new role,
            the user guide's training-data role (``training_roles``); ``data_bucket`` is then required.
        :param data_bucket: the bucket under the table (its location), so the role may read it, and its KMS key
            (``bucket.encryption_key``) when it has one.
        :param data_prefix: the key prefix of the table's data in ``data_bucket`` (``"interactions/"``).
            Default: the whole bucket.
        :param name: the dataset's name, unique per account and region, 1-63 characters (``name``). Default:
            ``<construct path>-<digest>``, the digest covering the stack name, the path and every property that
            replaces the dataset, so a replacement gets a new name (CloudFormation cannot replace a resource
            under the same name). With a name given, change it whenever another property changes.
        :param description: (``description``), up to 255 characters. Default: none.
        :param tags: (``tags``), merged with ``Tags.of`` tags; at most 50, no ``aws:`` prefix. Default: none.
        :param removal_policy: DESTROY (default) deletes the dataset with the stack (the service refuses while an
            audience model uses it); RETAIN keeps it.
        """
        stack = _resource.stack_of(scope)
        request, issues = _request(
            stack,
            database_name=database_name,
            table_name=table_name,
            catalog_id=catalog_id,
            columns=columns,
            role=role,
            data_bucket=data_bucket,
            data_prefix=data_prefix,
            name=name,
            description=description,
            tags=tags,
        )
        shape = create_request_shape()
        if shape is not None:
            problems = model_rules().check(request, shape, "", validation.is_token)
            issues += [Issue(_prop_name(p.path), p.value, p.rule) for p in problems]
        issues += _resource.removal_policy_issues(removal_policy)
        if issues:
            scope_path = scope.node.path
            raise ValidationError(f"{scope_path}/{id}" if scope_path else id, _in_prop_order(issues))
        super().__init__(scope, id)
        try:
            path = _resource.shared(stack).child_path(scope, id)
            self._build(stack, path, request, name, role, data_bucket, data_prefix or "", removal_policy)
            if shape is None:
                Annotations.of(self).add_warning_v2(
                    "cdk-cleanrooms-ml:trainingDatasetNotModelChecked",
                    f"the installed botocore has no {SERVICE_NAME} {CREATE_OPERATION} model: the props were checked "
                    "against the documented rules only (upgrade botocore for the name, length and pattern checks)",
                )
        except Exception:
            scope.node.try_remove_child(id)
            raise

    def _build(
        self,
        stack: Stack,
        path: str,
        request: dict[str, Any],
        name: str | None,
        role: iam.IRole | str | None,
        data_bucket: s3.IBucket | None,
        data_prefix: str,
        removal_policy: RemovalPolicy | None,
    ) -> None:
        glue = request["trainingData"][0]["inputConfig"]["dataSource"]["glueDataSource"]
        statements = training_roles.training_data_statements(
            self,
            database_name=glue["databaseName"],
            table_name=glue["tableName"],
            catalog_id=glue.get("catalogId"),
            data_bucket=data_bucket,
            data_prefix=data_prefix,
        )
        self._role_arn: str
        self._role: iam.IRole | None = None
        if role is None:
            made = training_roles.training_data_role(
                self,
                training_roles.TRAINING_ROLE_ID,
                statements,
                description=f"cdk-cleanrooms-ml: lets Clean Rooms ML read the training data of {self.node.path}",
            )
            self._role = made
        elif isinstance(role, str):
            self._role_arn = role
        else:
            self._role = role
            training_roles.grant_training_data_read(role, statements)
        if self._role is not None:
            self._role_arn = self._role.role_arn
        if isinstance(self._role, iam.Role) and data_bucket is not None:
            training_roles.acknowledge_data_prefix(self._role, data_bucket, data_prefix)
        request["roleArn"] = self._role_arn
        self._request = request
        self.training_dataset_name: str = name if name is not None else Lazy.string(_DerivedName(self, stack, path))
        """The dataset's name: the one given, or the derived one (a token, resolved at synth)."""
        self.resource = cleanroomsml.CfnTrainingDataset(
            self,
            "Resource",
            name=self.training_dataset_name,
            role_arn=self._role_arn,
            training_data=[_dataset_property(request["trainingData"][0])],
            description=request.get("description"),
            tags=[CfnTag(key=k, value=v) for k, v in (request.get("tags") or {}).items()] or None,
        )
        """The ``CfnTrainingDataset`` (escape hatch)."""
        if role is not None and isinstance(self._role, iam.Role):
            # A role of the app got the statements in its default policy, a resource of its own: the dataset waits
            # for it (the role itself is already referenced, and a role the library makes has them inline).
            policy = self._role.node.try_find_child("DefaultPolicy")
            if policy is not None:
                self.resource.node.add_dependency(policy)
        _resource.apply_removal_policy(self.resource, removal_policy)
        self.node.add_validation(_TagCheck(self))

    @property
    def training_dataset_arn(self) -> str:
        """The dataset's ARN (GetAtt ``TrainingDatasetArn``): an audience model's ``trainingDatasetArn``."""
        return str(self.resource.attr_training_dataset_arn)

    @property
    def role(self) -> iam.IRole:
        """The role Clean Rooms ML assumes to read the data: the one made, the one given, or the ARN given as a role."""
        if self._role is None:
            self._role = iam.Role.from_role_arn(self, "ImportedRole", self._role_arn, mutable=False)
        return self._role

    def _derived_name(self, stack: Stack, path: str) -> str:
        """``<path>-<digest>``: the digest covers what replaces the dataset when it changes (the name aside), as
        CloudFormation will see it (references resolved to their template form), the stack name and the path."""
        replacing = {k: v for k, v in self._request.items() if k not in ("name", "tags")}
        text = json.dumps([stack.stack_name, path, stack.resolve(replacing)], sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(text.encode()).hexdigest()[:NAME_DIGEST_LENGTH]
        prefix = _resource.name_prefix(path, _max_name_length() - NAME_DIGEST_LENGTH - 1)
        return f"{prefix}-{digest}" if prefix else digest


@jsii.implements(IStableStringProducer)
class _DerivedName:
    """The derived name, made at synth: role ARNs and other references are in their final form then."""

    def __init__(self, dataset: TrainingDataset, stack: Stack, path: str) -> None:
        self._dataset, self._stack, self._path = dataset, stack, path
        self._name: str | None = None

    def produce(self) -> str:
        if self._name is None:
            self._name = self._dataset._derived_name(self._stack, self._path)
        return self._name


@jsii.implements(IValidation)
class _TagCheck:
    """The final tags (own ones and ``Tags.of`` ones, known only at synth) against the same rules."""

    def __init__(self, dataset: TrainingDataset) -> None:
        self._dataset = dataset

    def validate(self) -> list[str]:
        rendered = self._dataset.resource.cdk_tag_manager.render_tags() or []
        tags = {str(t.get("key")): t.get("value") for t in rendered if isinstance(t, dict)}
        issues = _tag_issues(tags)
        return validation.format_issues(self._dataset.node.path, issues) if issues else []  # the path only if needed


# --------------------------------------------------------------------------------------------------
# The request, and its problems


#: Stands for the role the construct makes while the props are checked (a token: the model checks skip it).
_ROLE_MADE_LATER = "${Token[cdk-cleanrooms-ml.training-data-role]}"
#: Stands for a derived name while the props are checked (derived names are valid by construction).
_NAME_MADE_LATER = "${Token[cdk-cleanrooms-ml.training-dataset-name]}"


def _request(stack: Stack, **props: Any) -> tuple[dict[str, Any], list[Issue]]:
    """The CreateTrainingDataset request for the props, and the problems the model cannot see."""
    issues: list[Issue] = []
    glue = {"databaseName": props["database_name"], "tableName": props["table_name"]}
    if props["catalog_id"] is not None:
        glue["catalogId"] = props["catalog_id"]
    schema, column_issues = _schema(props["columns"])
    issues += column_issues
    role_arn, role_issues = _role_arn(stack, props["role"], props["data_bucket"])
    issues += role_issues
    issues += _data_issues(stack, props["data_bucket"], props["data_prefix"])
    request: dict[str, Any] = {
        "name": props["name"] if props["name"] is not None else _NAME_MADE_LATER,
        "roleArn": role_arn,
        "trainingData": [
            {"type": DATASET_TYPE, "inputConfig": {"dataSource": {"glueDataSource": glue}, "schema": schema}}
        ],
    }
    if props["description"] is not None:
        request["description"] = props["description"]
    tags = props["tags"]
    if tags is not None:
        if isinstance(tags, dict):
            issues += _tag_issues(tags, model=False)
        request["tags"] = tags
    return request, issues


def _schema(columns: Any) -> tuple[Any, list[Issue]]:
    """The ``schema`` member, and the problems of the columns' Python types and of the documented column rules."""
    if not isinstance(columns, (list, tuple)):
        # Reported: a valid stand-in, so the model checks say nothing more about it.
        return [{"columnName": "unchecked", "columnTypes": ["USER_ID"]}], [
            Issue("columns", columns, "must be a list of Column")
        ]
    issues: list[Issue] = []
    schema: list[Any] = []
    for index, column in enumerate(columns):
        if not isinstance(column, Column):
            issues.append(
                Issue(f"columns[{index}]", column, "must be a Column, e.g. Column('user_id', ColumnType.USER_ID)")
            )
            schema.append({"columnName": "unchecked", "columnTypes": ["USER_ID"]})  # reported: not checked again
            continue
        if not isinstance(column.type, (ColumnType, str)):
            issues.append(Issue(f"columns[{index}].type", column.type, "must be a ColumnType or its name"))
            schema.append({"columnName": column.name, "columnTypes": ["USER_ID"]})
            continue
        schema.append(column._render())
    kinds = [c.type.value if isinstance(c.type, ColumnType) else c.type for c in columns if isinstance(c, Column)]
    for required in REQUIRED_COLUMN_TYPES:
        count = kinds.count(required)
        if count != 1:
            issues.append(
                Issue(
                    "columns",
                    f"{count} {required} columns",
                    f"must have exactly one {required} column (the Clean Rooms ML user guide's training data "
                    "requirements: USER_ID, ITEM_ID and TIMESTAMP are required)",
                )
            )
    features = sum(kinds.count(kind) for kind in FEATURE_COLUMN_TYPES)
    if features > MAX_FEATURE_COLUMNS:
        issues.append(
            Issue(
                "columns",
                f"{features} feature columns",
                f"must have at most {MAX_FEATURE_COLUMNS} CATEGORICAL_FEATURE and NUMERICAL_FEATURE columns in all "
                "(the Clean Rooms ML user guide's training data requirements)",
            )
        )
    seen: dict[str, int] = {}
    for index, column in enumerate(columns):
        if isinstance(column, Column) and isinstance(column.name, str) and not validation.is_token(column.name):
            first = seen.setdefault(column.name.lower(), index)
            if first != index:
                issues.append(
                    Issue(
                        f"columns[{index}].name",
                        column.name,
                        f"must be unique: columns[{first}] has it too (a Glue table's column names are, and Glue "
                        "compares them in lower case)",
                    )
                )
    return schema, issues


def _role_arn(stack: Stack, role: Any, data_bucket: Any) -> tuple[Any, list[Issue]]:
    """The ``roleArn`` as far as known before the role exists, and the problems of the ``role`` prop."""
    if role is None:
        if data_bucket is None:
            return _ROLE_MADE_LATER, [
                Issue(
                    "data_bucket",
                    None,
                    "is required when the library makes the role (role=None): the role must read the table's data "
                    "in S3; give the bucket, or a role of your own",
                )
            ]
        return _ROLE_MADE_LATER, []
    if isinstance(role, str) or validation.is_token(role):
        arn = role
    elif hasattr(type(role), "role_arn") or (hasattr(role, "__jsii_ref__") and hasattr(role, "role_arn")):
        # An iam.IRole: a class of the app's, or a jsii proxy (what iam.Role.from_role_arn returns), asked through jsii.
        arn = role.role_arn
    else:
        return _ROLE_MADE_LATER, [Issue("role", role, "must be an iam.IRole or a role ARN string")]
    parts = validation.arn_parts(arn)
    account = stack.account
    if parts is not None and not validation.is_token(account) and parts["account"] not in ("", account):
        return arn, [
            Issue(
                "role",
                arn,
                f"must be a role of the stack's account {account}: CreateTrainingDataset refuses a role of another "
                "account (AccessDeniedException)",
            )
        ]
    return arn, []


def _data_issues(stack: Stack, data_bucket: Any, data_prefix: Any) -> list[Issue]:
    issues: list[Issue] = []
    if data_bucket is not None and not hasattr(type(data_bucket), "bucket_arn"):
        issues.append(Issue("data_bucket", data_bucket, "must be an s3.IBucket"))
    elif data_bucket is not None:
        region, stack_region = data_bucket.env.region, stack.region
        if not validation.is_token(region) and not validation.is_token(stack_region) and region != stack_region:
            issues.append(
                Issue(
                    "data_bucket",
                    data_bucket.node.path,
                    f"is in region {region} but the stack deploys to {stack_region}: the training data must be in "
                    "the region of the Clean Rooms ML resources (the user guide's training data requirements)",
                )
            )
    if data_prefix is not None:
        if not isinstance(data_prefix, str):
            issues.append(Issue("data_prefix", data_prefix, "must be a string"))
        elif not validation.is_token(data_prefix) and (
            "*" in data_prefix or "?" in data_prefix or data_prefix.startswith("/")
        ):
            issues.append(Issue("data_prefix", data_prefix, "must be a plain key prefix (no '*', '?' or leading '/')"))
        if data_bucket is None:
            issues.append(
                Issue("data_prefix", data_prefix, "only goes with data_bucket (it is a prefix of that bucket)")
            )
    return issues


def _tag_issues(tags: dict[str, Any], *, model: bool = True) -> list[Issue]:
    """The documented tag rules: at most 50 tags, no ``aws:`` keys, and CloudFormation's non-empty values.

    ``model``: also the model's key and value lengths (the construct's own tags get them from the request check).
    """
    rules = model_rules()
    problems = rules.tag_rules(tags, validation.is_token, library=False)
    shape = create_request_shape()
    if model and shape is not None:
        problems += rules.check(tags, shape.members["tags"], "tags", validation.is_token)
    issues = [Issue(p.path, p.value, p.rule) for p in problems]
    for position, (key, value) in enumerate(tags.items(), start=1):
        if value == "":
            issues.append(
                Issue(
                    rules.entry_path("tags", key, position),
                    value,
                    "must not be empty (AWS::CleanRoomsML::TrainingDataset's Tag Value has at least 1 character)",
                )
            )
    return issues


def _max_name_length() -> int:
    shape = create_request_shape()
    return int(shape.members["name"].metadata["max"]) if shape is not None else 63


#: API member paths (regular expressions) and the props they come from, most specific first.
_PROP_NAMES = (
    (r"trainingData\[0\]\.inputConfig\.dataSource\.glueDataSource\.databaseName", "database_name"),
    (r"trainingData\[0\]\.inputConfig\.dataSource\.glueDataSource\.tableName", "table_name"),
    (r"trainingData\[0\]\.inputConfig\.dataSource\.glueDataSource\.catalogId", "catalog_id"),
    (r"trainingData\[0\]\.inputConfig\.schema\[(\d+)\]\.columnName", r"columns[\1].name"),
    (r"trainingData\[0\]\.inputConfig\.schema\[(\d+)\]\.columnTypes(?:\[0\])?", r"columns[\1].type"),
    (r"trainingData\[0\]\.inputConfig\.schema", "columns"),
    (r"roleArn", "role"),
)


def _prop_name(path: str) -> str:
    for pattern, prop in _PROP_NAMES:
        match = re.match(pattern, path)
        if match:
            return match.expand(prop) + path[match.end() :]
    return str(model_rules().python_name(path))


#: The order of the props in the constructor: the message lists problems in it.
_PROP_ORDER = (
    "database_name",
    "table_name",
    "columns",
    "catalog_id",
    "role",
    "data_bucket",
    "data_prefix",
    "name",
    "description",
    "tags",
    "removal_policy",
)


def _in_prop_order(issues: Iterable[Issue]) -> list[Issue]:
    def rank(issue: Issue) -> int:
        head = re.split(r"[.\[]", issue.prop, maxsplit=1)[0]
        return _PROP_ORDER.index(head) if head in _PROP_ORDER else len(_PROP_ORDER)

    return sorted(issues, key=rank)  # stable: the order found within a prop


def _dataset_property(dataset: dict[str, Any]) -> cleanroomsml.CfnTrainingDataset.DatasetProperty:
    glue = dataset["inputConfig"]["dataSource"]["glueDataSource"]
    Cfn = cleanroomsml.CfnTrainingDataset
    return Cfn.DatasetProperty(
        type=dataset["type"],
        input_config=Cfn.DatasetInputConfigProperty(
            data_source=Cfn.DataSourceProperty(
                glue_data_source=Cfn.GlueDataSourceProperty(
                    database_name=glue["databaseName"], table_name=glue["tableName"], catalog_id=glue.get("catalogId")
                )
            ),
            schema=[
                Cfn.ColumnSchemaProperty(column_name=c["columnName"], column_types=list(c["columnTypes"]))
                for c in dataset["inputConfig"]["schema"]
            ],
        ),
    )
