"""``ConfiguredAudienceModelAssociation`` (and ``ConfiguredAudienceModel.associate``) at synth: one resource whose
properties are the Clean Rooms CreateConfiguredAudienceModelAssociation request, a dependency on its model, the
handler granted on the membership only, and every bad prop refused with path, prop, value and rule."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aws_cdk import App, CfnResource, RemovalPolicy, Stack, Tags

from cdk_cleanrooms_ml import (
    AudienceDestination,
    ConfiguredAudienceModel,
    ConfiguredAudienceModelAssociation,
    SharedAudienceMetrics,
)
from cdk_cleanrooms_ml.rehearsal.template import dependencies, order
from cdk_cleanrooms_ml.service_model import specs
from tests.helpers import (
    ACCOUNT,
    AUDIENCE_MODEL_ARN,
    MEMBERSHIP_ID,
    MODEL_ARN,
    REGION,
    RESERVED_TAG,
    RESERVED_TAG_LINE,
    SEGMENT_ROLE_ARN,
    Synthesized,
    handler_statements,
    invalid_props_message,
    of_type,
    refused,
    stack,
    stack_arn,
    synth_error_with_tags_of,
)

ASSOCIATION_TYPE = "Custom::CleanRoomsMlConfiguredAudienceModelAssociation"
OTHER_MEMBERSHIP_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
STACK_MODELS = stack_arn("cleanrooms-ml", "configured-audience-model/*")


def configured(scope: Stack) -> ConfiguredAudienceModel:
    return ConfiguredAudienceModel(
        scope,
        "Configured",
        audience_model_arn=AUDIENCE_MODEL_ARN,
        destination=AudienceDestination(s3_uri="s3://partner-segments/out/", role=SEGMENT_ROLE_ARN),
        shared_audience_metrics=[SharedAudienceMetrics.ALL],
    )


def membership(id: str, account: str = ACCOUNT) -> dict[str, Any]:
    return stack_arn("cleanrooms", f"membership/{id}", account)


@pytest.fixture(scope="module")
def app() -> Synthesized:
    """A configured model associated by ``associate``, and an association of an imported model's ARN."""
    scope = stack()
    made = Synthesized(scope=scope, model=configured(scope))
    made.assoc = made.model.associate(
        "InCollaboration",
        membership_id=MEMBERSHIP_ID,
        name="lookalike",
        description="our buyers' lookalikes",
        tags={"team": "ads"},
    )
    made.imported = ConfiguredAudienceModelAssociation(
        scope,
        "Imported",
        configured_audience_model_arn=MODEL_ARN,
        membership_id=OTHER_MEMBERSHIP_ID,
        manage_resource_policies=False,
        removal_policy=RemovalPolicy.RETAIN,
    )
    Tags.of(made.assoc).add("cost-center", "42")
    return made.synthesize()


def _model_arn(app: Synthesized) -> dict[str, Any]:
    return {"Fn::GetAtt": [app.logical_id(app.model), "ConfiguredAudienceModelArn"]}


def test_an_association_is_one_resource_whose_properties_are_the_create_request(app: Synthesized) -> None:
    resource = app.resource(app.assoc)
    assert resource["Type"] == ASSOCIATION_TYPE
    assert resource["Properties"] == {
        "ServiceToken": app.resource(app.model)["Properties"]["ServiceToken"],
        "membershipIdentifier": MEMBERSHIP_ID,
        "configuredAudienceModelArn": _model_arn(app),
        "manageResourcePolicies": True,
        "configuredAudienceModelAssociationName": "lookalike",
        "description": "our buyers' lookalikes",
        "tags": {"team": "ads", "cost-center": "42"},  # its own and those of Tags.of
    }
    assert resource["DeletionPolicy"] == "Delete" and resource["UpdateReplacePolicy"] == "Delete"
    assert app.assoc.node.path == "Test/Configured/InCollaboration"  # associate() makes a child of the model
    assert [c for c in app.assoc.node.find_all() if isinstance(c, CfnResource)] == [app.assoc.resource]
    assert len(of_type(app.template, ASSOCIATION_TYPE)) == 2


def test_without_a_name_the_handler_derives_one_and_retain_keeps_it(app: Synthesized) -> None:
    resource = app.resource(app.imported)
    assert resource["Properties"] == {
        "ServiceToken": app.resource(app.model)["Properties"]["ServiceToken"],
        "membershipIdentifier": OTHER_MEMBERSHIP_ID,
        "configuredAudienceModelArn": MODEL_ARN,
        "manageResourcePolicies": False,
        "NamePrefix": "Test-Imported",
    }
    assert resource["DeletionPolicy"] == "RetainExceptOnCreate" and resource["UpdateReplacePolicy"] == "Retain"


def test_an_association_depends_on_its_model_of_the_stack(app: Synthesized) -> None:
    graph = dependencies(app.template)
    assert app.logical_id(app.model) in graph[app.logical_id(app.assoc)]
    creation = order(graph)  # raises on a cycle
    assert creation.index(app.logical_id(app.model)) < creation.index(app.logical_id(app.assoc))
    assert app.logical_id(app.model) not in graph[app.logical_id(app.imported)]


def test_the_handler_may_associate_in_the_given_memberships_only(app: Synthesized) -> None:
    statements = handler_statements(app)
    memberships = [membership(MEMBERSHIP_ID), membership(OTHER_MEMBERSHIP_ID)]
    associate = statements["AssociateInTheseMemberships"]
    assert associate["Action"] == [
        "cleanrooms:CreateConfiguredAudienceModelAssociation",
        "cleanrooms:ListConfiguredAudienceModelAssociations",
    ]
    assert associate["Resource"] == memberships
    manage = statements["ManageModelAssociations"]
    assert manage["Resource"] == [
        membership(f"{id}/configuredaudiencemodelassociation/*") for id in (MEMBERSHIP_ID, OTHER_MEMBERSHIP_ID)
    ]
    assert sorted(manage["Action"]) == sorted(
        f"cleanrooms:{a}"
        for a in (
            "CreateConfiguredAudienceModelAssociation",
            "GetConfiguredAudienceModelAssociation",
            "UpdateConfiguredAudienceModelAssociation",
            "DeleteConfiguredAudienceModelAssociation",
            "ListConfiguredAudienceModelAssociations",
            "TagResource",
            "UntagResource",
            "ListTagsForResource",
        )
    )
    # What Clean Rooms does to the model's policy on the caller's behalf: on the stack's models (by pattern,
    # never by the model's ARN attribute) and on the imported model's ARN.
    share = statements["AssociationsReadAndShareModels"]
    assert share["Resource"] == [STACK_MODELS, MODEL_ARN]
    assert sorted(share["Action"]) == [
        "cleanrooms-ml:DeleteConfiguredAudienceModelPolicy",
        "cleanrooms-ml:GetConfiguredAudienceModel",
        "cleanrooms-ml:GetConfiguredAudienceModelPolicy",
        "cleanrooms-ml:PutConfiguredAudienceModelPolicy",
    ]


def test_an_env_agnostic_stack_grants_the_membership_in_its_deploy_account() -> None:
    scope = Stack(App(), "Agnostic")
    ConfiguredAudienceModelAssociation(
        scope, "Assoc", configured_audience_model_arn=MODEL_ARN, membership_id=MEMBERSHIP_ID
    )
    statements = handler_statements(scope)
    arn = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":cleanrooms:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":membership/{MEMBERSHIP_ID}",
            ],
        ]
    }
    assert statements["AssociateInTheseMemberships"]["Resource"] == arn


def test_attributes_are_getatts_of_the_spec_attributes(app: Synthesized) -> None:
    known = {name for name, _member in specs().CONFIGURED_AUDIENCE_MODEL_ASSOCIATION.attributes}
    for token, attribute in [
        (app.assoc.configured_audience_model_association_arn, "ConfiguredAudienceModelAssociationArn"),
        (app.assoc.configured_audience_model_association_id, "ConfiguredAudienceModelAssociationId"),
        (app.assoc.collaboration_id, "CollaborationId"),
    ]:
        assert app.scope.resolve(token) == {"Fn::GetAtt": [app.logical_id(app.assoc), attribute]}
        assert attribute in known


# --------------------------------------------------------------------------------------------------
# Validation at synth


@pytest.fixture(scope="module")
def scope() -> SimpleNamespace:
    """A stack with a configured model; rejected associations add nothing to it."""
    where = stack()
    return SimpleNamespace(stack=where, model=configured(where))


UUID_PATTERN = "'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'"
MODEL_PATTERN = "'arn:aws[-a-z]*:cleanrooms-ml:[-a-z0-9]+:[0-9]{12}:configured-audience-model/[-a-zA-Z0-9_/.]+'"
BAD = [
    pytest.param(
        {"membership_id": "m-1"},
        [
            "membership_id = 'm-1': must be between 36 and 36 characters long",
            f"membership_id = 'm-1': must match the pattern {UUID_PATTERN}",
        ],
        id="membership-short",
    ),
    pytest.param(
        {"membership_id": MEMBERSHIP_ID.upper()},
        [f"membership_id = {MEMBERSHIP_ID.upper()!r}: must match the pattern {UUID_PATTERN}"],
        id="membership-upper-case",
    ),
    pytest.param(
        {"membership_id": f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{MEMBERSHIP_ID}"},
        [
            f"membership_id = 'arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{MEMBERSHIP_ID}': must be between 36 "
            "and 36 characters long",
            f"membership_id = 'arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{MEMBERSHIP_ID}': must match the "
            f"pattern {UUID_PATTERN}",
        ],
        id="membership-arn-not-id",
    ),
    pytest.param(
        {"manage_resource_policies": "yes"},
        ["manage_resource_policies = 'yes': must be True or False"],
        id="manage-not-bool",
    ),
    pytest.param(
        {"manage_resource_policies": 1},
        ["manage_resource_policies = 1: must be True or False"],
        id="manage-one",
    ),
    pytest.param(
        {"configured_audience_model_arn": AUDIENCE_MODEL_ARN},
        [f"configured_audience_model_arn = {AUDIENCE_MODEL_ARN!r}: must match the pattern {MODEL_PATTERN}"],
        id="model-arn-of-an-audience-model",
    ),
    pytest.param(
        {"name": "n" * 101},
        [f"name = {'n' * 101!r}: must be between 1 and 100 characters long"],
        id="name-101",
    ),
    pytest.param({"tags": RESERVED_TAG}, [RESERVED_TAG_LINE], id="reserved-tag"),
    pytest.param(
        {"removal_policy": "RETAIN"},
        ["removal_policy = 'RETAIN': must be a RemovalPolicy"],
        id="removal-policy-string",
    ),
]


@pytest.mark.parametrize(("props", "lines"), BAD)
def test_a_bad_prop_is_refused_naming_path_prop_value_and_rule(
    scope: SimpleNamespace, props: dict[str, Any], lines: list[str]
) -> None:
    given = {"configured_audience_model_arn": MODEL_ARN, "membership_id": MEMBERSHIP_ID, **props}
    error = refused(scope.stack, "Bad", lambda: ConfiguredAudienceModelAssociation(scope.stack, "Bad", **given))
    assert str(error) == invalid_props_message("Test/Bad", lines)


def test_several_problems_of_associate_come_in_one_error_and_nothing_joins_the_tree(scope: SimpleNamespace) -> None:
    before = sorted(c.node.path for c in scope.stack.node.find_all())
    error = refused(
        scope.model,
        "Bad",
        lambda: scope.model.associate("Bad", membership_id="m-1", name="n" * 101, manage_resource_policies=None),
    )
    assert str(error) == invalid_props_message(
        "Test/Configured/Bad",
        [
            "manage_resource_policies = None: must be True or False",
            f"name = {'n' * 101!r}: must be between 1 and 100 characters long",
            "membership_id = 'm-1': must be between 36 and 36 characters long",
            f"membership_id = 'm-1': must match the pattern {UUID_PATTERN}",
        ],
    )
    assert sorted(c.node.path for c in scope.stack.node.find_all()) == before
    # Nor did the handler role get the right to associate: a rejected association grants nothing.
    assert "AssociateInTheseMemberships" not in {s.sid for s in scope.model.provider.statements.all()}


def test_a_reserved_tag_from_tags_of_is_refused_at_synth() -> None:
    def build(scope: Stack) -> ConfiguredAudienceModelAssociation:
        return ConfiguredAudienceModelAssociation(
            scope, "Assoc", configured_audience_model_arn=MODEL_ARN, membership_id=MEMBERSHIP_ID
        )

    assert f"Tagged/Assoc: {RESERVED_TAG_LINE}" in synth_error_with_tags_of(build, RESERVED_TAG)
