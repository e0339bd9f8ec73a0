"""The IAM statements of the handler role: the least that starting, watching and deleting jobs needs.

Resource ARNs are collected as jobs are added (without duplicates), so one statement of each kind
serves every job of the provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import jsii
from aws_cdk import Acknowledgment, Aws, CfnResource, Fn, Stack, Validations
from aws_cdk import aws_iam as iam

from constructs import IConstruct, IValidation

from .references import served_type
from .validation import arn_parts, is_token

SERVICE_PRINCIPAL = "cleanrooms-ml.amazonaws.com"


def cleanrooms_ml_principal(stack: Stack, *resource_types: str) -> iam.ServicePrincipal:
    """Clean Rooms ML, only on behalf of resources of these types in ``stack``'s account and region: the
    confused-deputy conditions of the user guide's trust policies (seed, training-data and segment-writer roles)."""
    arns = [stack.format_arn(service="cleanrooms-ml", resource=kind, resource_name="*") for kind in resource_types]
    return iam.ServicePrincipal(
        SERVICE_PRINCIPAL,
        conditions={
            "StringEqualsIfExists": {"aws:SourceAccount": stack.account},
            "ArnLikeIfExists": {"aws:SourceArn": arns[0] if len(arns) == 1 else arns},
        },
    )


def job_arn_pattern(partition: str = Aws.PARTITION, region: str = Aws.REGION, account: str = Aws.ACCOUNT_ID) -> str:
    """Every audience generation job of an account and region (the stack's by default)."""
    return f"arn:{partition}:cleanrooms-ml:{region}:{account}:audience-generation-job/*"


def model_home(model_arn: str) -> tuple[str, str, str]:
    """Partition, region and account of a configured audience model ARN; for a token, CloudFormation picks
    them out of the resolved ARN (``Fn::Select`` over ``Fn::Split``)."""
    parts = arn_parts(model_arn)
    if parts is not None:
        return parts["partition"], parts["region"], parts["account"]
    fields = Fn.split(":", model_arn)
    return Fn.select(1, fields), Fn.select(3, fields), Fn.select(4, fields)


def arn_pattern(service: str, resource: str, partition: str, region: str, account: str) -> str:
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


#: The actions each statement grants (statements are made on first use, one per Sid, resources accumulated).
_ACTIONS: dict[str, tuple[str, ...]] = {
    "StartJobsFromTheseModels": ("cleanrooms-ml:StartAudienceGenerationJob",),
    "WatchTagAndDeleteJobs": (
        "cleanrooms-ml:GetAudienceGenerationJob",
        "cleanrooms-ml:DeleteAudienceGenerationJob",
        "cleanrooms-ml:TagResource",
        "cleanrooms-ml:UntagResource",
        # Read only when a description leaves out the tags (the request digest tag).
        "cleanrooms-ml:ListTagsForResource",
    ),
    # The List actions with no resource given need *: they find a resource again by its unique name.
    "FindJobsByName": ("cleanrooms-ml:ListAudienceGenerationJobs",),
    "FindConfiguredModelsByName": ("cleanrooms-ml:ListConfiguredAudienceModels",),
    "PassRolesToCleanRoomsMl": ("iam:PassRole",),
    "ExportJobsOfTheseJobs": ("cleanrooms-ml:StartAudienceExportJob", "cleanrooms-ml:ListAudienceExportJobs"),
    "CreateConfiguredModelsFromTheseModels": (
        "cleanrooms-ml:CreateConfiguredAudienceModel",
        "cleanrooms-ml:UpdateConfiguredAudienceModel",
        # The handler reads the audience model first: it must be ACTIVE (specs.Requirement).
        "cleanrooms-ml:GetAudienceModel",
    ),
    "ManageConfiguredModels": (
        "cleanrooms-ml:GetConfiguredAudienceModel",
        "cleanrooms-ml:UpdateConfiguredAudienceModel",
        "cleanrooms-ml:DeleteConfiguredAudienceModel",
        "cleanrooms-ml:PutConfiguredAudienceModelPolicy",
        "cleanrooms-ml:GetConfiguredAudienceModelPolicy",
        "cleanrooms-ml:DeleteConfiguredAudienceModelPolicy",
        "cleanrooms-ml:TagResource",
        "cleanrooms-ml:UntagResource",
        "cleanrooms-ml:ListTagsForResource",
    ),
    "AssociateInTheseMemberships": (
        "cleanrooms:CreateConfiguredAudienceModelAssociation",
        "cleanrooms:ListConfiguredAudienceModelAssociations",
    ),
    "ManageModelAssociations": (
        "cleanrooms:CreateConfiguredAudienceModelAssociation",
        "cleanrooms:GetConfiguredAudienceModelAssociation",
        "cleanrooms:UpdateConfiguredAudienceModelAssociation",
        "cleanrooms:DeleteConfiguredAudienceModelAssociation",
        "cleanrooms:ListConfiguredAudienceModelAssociations",
        "cleanrooms:TagResource",
        "cleanrooms:UntagResource",
        "cleanrooms:ListTagsForResource",
    ),
    # CreateAudienceModel is authorized on the training dataset it names (the Service Authorization Reference);
    # tags given on create are also TagResource on the new model (ManageAudienceModels).
    "CreateAudienceModelsFromTheseDatasets": ("cleanrooms-ml:CreateAudienceModel",),
    "ManageAudienceModels": (
        "cleanrooms-ml:GetAudienceModel",
        "cleanrooms-ml:DeleteAudienceModel",
        "cleanrooms-ml:TagResource",
        "cleanrooms-ml:UntagResource",
        "cleanrooms-ml:ListTagsForResource",
    ),
    "FindAudienceModelsByName": ("cleanrooms-ml:ListAudienceModels",),
    # The provider's watcher state machine, started once a waiting audience model's training began.
    "StartTheTrainingWatcher": ("states:StartExecution",),
    # What creating and deleting an association does to the model's policy on the caller's behalf (the Service
    # Authorization Reference's dependent actions).
    "AssociationsReadAndShareModels": (
        "cleanrooms-ml:GetConfiguredAudienceModel",
        "cleanrooms-ml:GetConfiguredAudienceModelPolicy",
        "cleanrooms-ml:PutConfiguredAudienceModelPolicy",
        "cleanrooms-ml:DeleteConfiguredAudienceModelPolicy",
    ),
}


class HandlerStatements:
    """The handler role's statements, widened as resources are added: the least each type's lifecycle calls need.

    Starting a job from a configured audience model is evaluated on three resources (the Clean Rooms ML
    user guide's IAM behaviours): the model, the caller's new job and, when the model belongs to another
    account, the model owner's copy of the job. Jobs live in the model's region, in the stack's account.
    A resource created in this stack by the provider is granted by the pattern of its type in the stack's
    account and region: referencing its ARN would make the handler depend on the resources it serves
    (``references``). Any other ARN, a parameter's included, is granted as it is.
    """

    def __init__(self, stack_account: str, attach: Callable[[iam.PolicyStatement], Any]) -> None:
        """
        :param stack_account: the account of the stack (its resources are created there).
        :param attach: adds a statement to the handler role's policy; called once per statement, when the
            statement gets its first resource (a statement without resources is not a valid policy).
        """
        self._stack_account = stack_account
        self._attach = attach
        self._statements: dict[str, iam.PolicyStatement] = {}
        self._added: set[tuple[str, str]] = set()

    def all(self) -> list[iam.PolicyStatement]:
        return list(self._statements.values())

    def patterns(self) -> list[str]:
        """The ARN patterns the statements grant (for cdk-nag's findings)."""
        return sorted({r for s in self.all() for r in s.resources if r.endswith("/*")})

    def job_patterns(self) -> list[str]:
        return [p for p in self.patterns() if p.endswith(":audience-generation-job/*")]

    def add_job(
        self, configured_audience_model_arn: str, seed_role_arn: str, collaboration_id: str | None = None
    ) -> None:
        model = configured_audience_model_arn
        if served_type(model) is not None:  # a configured model of this stack: its type's pattern, in its home
            model = self._pattern("configured-audience-model/*")
            partition, region, owner = Aws.PARTITION, Aws.REGION, self._stack_account
        else:
            partition, region, owner = model_home(model)
        caller_jobs = job_arn_pattern(partition, region, self._stack_account)
        start = self._start_statement(collaboration_id)
        self._grant(start, model, caller_jobs)
        if is_token(owner) or is_token(self._stack_account) or owner != self._stack_account:
            self._grant(start, job_arn_pattern(partition, region, owner))
        self._grant("WatchTagAndDeleteJobs", caller_jobs)
        self._grant("FindJobsByName", "*")
        self._pass(seed_role_arn)

    def add_export(self, audience_generation_job_arn: str) -> None:
        """Exports of this job: the stack's jobs for a job of this stack, else the job's own ARN."""
        if served_type(audience_generation_job_arn) is not None:
            self._grant("ExportJobsOfTheseJobs", job_arn_pattern(account=self._stack_account))
        else:
            self._grant("ExportJobsOfTheseJobs", audience_generation_job_arn)

    def add_configured_model(self, audience_model_arn: str, output_role_arn: str) -> None:
        """Configured audience models of this stack, made from this audience model, writing with this role."""
        served = served_type(audience_model_arn) is not None
        source = self._pattern("audience-model/*") if served else audience_model_arn
        self._grant("CreateConfiguredModelsFromTheseModels", source)
        self._grant("ManageConfiguredModels", self._pattern("configured-audience-model/*"))
        self._grant("FindConfiguredModelsByName", "*")
        self._pass(output_role_arn)

    def add_audience_model(self, training_dataset_arn: str) -> None:
        """Audience models of this stack, trained on this dataset (its ARN as given: a TrainingDataset is a native
        resource, not one the provider serves, so naming it makes no cycle)."""
        self._grant("CreateAudienceModelsFromTheseDatasets", training_dataset_arn)
        self._grant("ManageAudienceModels", self._pattern("audience-model/*"))
        self._grant("FindAudienceModelsByName", "*")

    def add_watcher(self, state_machine_arn: str) -> None:
        """Starting the state machine that signals a waiting audience model's WaitCondition."""
        self._grant("StartTheTrainingWatcher", state_machine_arn)

    def add_association(self, membership_id: str, configured_audience_model_arn: str) -> None:
        """Associations of configured audience models with this membership (the stack's own)."""
        membership = arn_pattern(
            "cleanrooms", f"membership/{membership_id}", Aws.PARTITION, Aws.REGION, self._stack_account
        )
        self._grant("AssociateInTheseMemberships", membership)
        self._grant("ManageModelAssociations", f"{membership}/configuredaudiencemodelassociation/*")
        model = configured_audience_model_arn
        if served_type(model) is not None:
            model = self._pattern("configured-audience-model/*")
        self._grant("AssociationsReadAndShareModels", model)

    def _pattern(self, resource: str) -> str:
        return arn_pattern("cleanrooms-ml", resource, Aws.PARTITION, Aws.REGION, self._stack_account)

    def _pass(self, role_arn: str) -> None:
        self._grant(
            "PassRolesToCleanRoomsMl",
            role_arn,
            conditions={"StringEquals": {"iam:PassedToService": SERVICE_PRINCIPAL}},
        )

    def _start_statement(self, collaboration_id: str | None) -> str:
        """One start statement per collaboration, on the ``cleanrooms-ml:CollaborationId`` the request names."""
        if collaboration_id is None:
            return "StartJobsFromTheseModels"
        known = [sid for sid in self._statements if sid.startswith("StartJobsInCollaboration")]
        for sid in known:
            if self._statements[sid].conditions == {
                "StringEquals": {"cleanrooms-ml:CollaborationId": collaboration_id}
            }:
                return sid
        sid = f"StartJobsInCollaboration{len(known) + 1}"
        self._statements[sid] = iam.PolicyStatement(
            sid=sid,
            actions=list(_ACTIONS["StartJobsFromTheseModels"]),
            resources=[],
            conditions={"StringEquals": {"cleanrooms-ml:CollaborationId": collaboration_id}},
        )
        return sid

    def _grant(self, sid: str, *resources: str, conditions: dict[str, Any] | None = None) -> None:
        statement = self._statements.get(sid)
        if statement is None:
            statement = self._statements[sid] = iam.PolicyStatement(
                sid=sid, actions=list(_ACTIONS[sid]), resources=[], conditions=conditions
            )
        fresh = [r for r in resources if (sid, r) not in self._added]
        for resource in fresh:
            self._added.add((sid, resource))
            statement.add_resources(resource)
        if (sid, "") not in self._added:
            self._added.add((sid, ""))
            self._attach(statement)


def log_statement(log_group_arn: str) -> iam.PolicyStatement:
    """Writing to the provider's own log group (instead of the AWS-managed basic execution policy)."""
    return iam.PolicyStatement(
        sid="WriteOwnLogs",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[log_group_arn],  # a LogGroup's ARN ends in ":*", which covers its streams
    )


# --------------------------------------------------------------------------------------------------
# cdk-nag: acknowledging the wildcard findings (AwsSolutions-IAM5) that must stay


#: Finding texts (``Resource::...``), or a function that computes them once references are final.
Findings = Iterable[str] | Callable[[], Iterable[str]]


def acknowledge_wildcards(scope: IConstruct, findings: Findings, reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 findings on ``scope``; ``findings`` may be a callable (computed late)."""
    if callable(findings):
        scope.node.add_validation(_LateAcknowledgment(scope, findings, reason))
        return
    for finding in findings:
        Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason))


@jsii.implements(IValidation)
class _LateAcknowledgment:
    """Acknowledges findings whose text holds logical ids, computed once references are final.

    cdk-nag names a wildcard finding after the resolved resource (``<LogicalId.Arn>/prefix*``); the
    logical id and cross-stack references are settled only when the app is prepared, which is before
    CDK validates the tree and before cdk-nag runs. Validating reports nothing.
    """

    def __init__(self, scope: IConstruct, findings: Callable[[], Iterable[str]], reason: str) -> None:
        self._scope = scope
        self._findings = findings
        self._reason = reason

    def validate(self) -> list[str]:
        acknowledge_wildcards(self._scope, list(self._findings()), self._reason)
        return []


def skip_checkov(resource: IConstruct | None, check_id: str, reason: str) -> None:
    """Skip one checkov check on one resource (template Metadata ``checkov.skip``), with the reason."""
    if not isinstance(resource, CfnResource):
        return
    existing = resource.get_metadata("checkov") or {}
    skips = [s for s in existing.get("skip", []) if s.get("id") != check_id]
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check_id, "comment": reason}]})


def nag_text(node: Any) -> str:
    """A resolved CloudFormation value as cdk-nag spells it in finding ids (its flattenCfnReference)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(nag_text(item) for item in items)
        if "Fn::Sub" in node:
            return nag_text(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{nag_text(resource)}.{nag_text(attribute)}>"
        if "Fn::ImportValue" in node:
            return nag_text(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{nag_text(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
