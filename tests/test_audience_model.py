"""``AudienceModel`` at synth: one resource whose properties are the CreateAudienceModel request; the opt-in wait for
training (a WaitConditionHandle and a WaitCondition named after what replaces the model); the provider's watcher
state machine, made only for a waiting model; the configured model that depends on the wait, or refuses a model
that does not wait."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from cdk_cleanrooms_ml import (
    AudienceDestination,
    AudienceModel,
    ConfiguredAudienceModel,
    SharedAudienceMetrics,
    ValidationError,
)
from cdk_cleanrooms_ml._watcher import WATCHER_ARN_VARIABLE, definition
from tests.helpers import (
    ACCOUNT,
    AUDIENCE_MODEL_ARN,
    REGION,
    SEGMENT_ROLE_ARN,
    handler_statements,
    of_type,
    provider_template,
    refused,
    stack,
    stack_arn,
)
from tests.test_training_dataset import dataset

MODEL_TYPE = "Custom::CleanRoomsMlAudienceModel"
DATASET_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:training-dataset/td-1"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
JAN = datetime(2024, 1, 1, tzinfo=timezone.utc)
WAIT_TYPES = ("AWS::CloudFormation::WaitConditionHandle", "AWS::CloudFormation::WaitCondition")


def model(scope: Stack, id: str = "Model", **kwargs: Any) -> AudienceModel:
    kwargs.setdefault("training_dataset", DATASET_ARN)
    return AudienceModel(scope, id, **kwargs)


def only(template_json: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = of_type(template_json, resource_type).items()
    return found


def model_properties(scope: Stack) -> dict[str, Any]:
    properties: dict[str, Any] = only(Template.from_stack(scope).to_json(), MODEL_TYPE)[1]["Properties"]
    return properties


def wait_ids(scope: Stack) -> list[str]:
    template_json = Template.from_stack(scope).to_json()
    return sorted(k for t in WAIT_TYPES for k in of_type(template_json, t))


def configured(scope: Stack, audience_model: Any, id: str = "Configured") -> ConfiguredAudienceModel:
    return ConfiguredAudienceModel(
        scope,
        id,
        audience_model=audience_model,
        destination=AudienceDestination(s3_uri="s3://partner-segments/out/", role=SEGMENT_ROLE_ARN),
        shared_audience_metrics=[SharedAudienceMetrics.ALL],
    )


# --------------------------------------------------------------------------------------------------
# The request


def test_the_properties_are_the_create_request_and_the_model_never_waits_itself() -> None:
    scope = stack()
    start, end = (
        datetime(2024, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 6, 30, tzinfo=timezone.utc),
    )
    model(
        scope,
        training_data_start_time=start,
        training_data_end_time=end,
        kms_key=KEY_ARN,
        name="lookalike",
        description="weekly",
        tags={"team": "ads"},
    )
    properties = model_properties(scope)
    assert properties.pop("ServiceToken")
    assert properties == {
        "trainingDatasetArn": DATASET_ARN,
        "trainingDataStartTime": "2024-01-01T07:30:00Z",  # converted to UTC
        "trainingDataEndTime": "2024-06-30T00:00:00Z",
        "kmsKeyArn": KEY_ARN,
        "name": "lookalike",
        "description": "weekly",
        "tags": {"team": "ads"},
        "WaitForCompletion": "false",
    }
    assert wait_ids(scope) == []


def test_the_sent_times_are_what_the_handler_accepts_and_fractions_are_kept() -> None:
    from cdk_cleanrooms_ml.service_model import model_rules

    scope = stack()
    model(scope, training_data_start_time=JAN.replace(microsecond=250000))
    sent = model_properties(scope)["trainingDataStartTime"]
    assert sent == "2024-01-01T00:00:00.250000Z"
    assert model_rules().is_iso_8601(sent)


def test_a_training_dataset_of_the_app_is_referenced_and_a_key_of_the_app_gives_its_arn() -> None:
    scope = stack()
    data = dataset(scope)
    key = kms.Key(scope, "Key")
    made = model(scope, training_dataset=data, kms_key=key)
    properties = model_properties(scope)
    assert properties["trainingDatasetArn"] == {
        "Fn::GetAtt": [scope.get_logical_id(data.resource), "TrainingDatasetArn"]
    }
    assert properties["kmsKeyArn"] == {"Fn::GetAtt": [scope.get_logical_id(key.node.default_child), "Arn"]}
    assert properties["NamePrefix"] == "Test-Model"
    assert made.waits_for_completion is False and made.wait_condition is None
    assert scope.resolve(made.audience_model_arn) == {
        "Fn::GetAtt": [scope.get_logical_id(made.resource), "AudienceModelArn"]
    }
    assert scope.resolve(made.status) == {"Fn::GetAtt": [scope.get_logical_id(made.resource), "Status"]}


def test_every_problem_is_reported_at_once_naming_the_construct_and_nothing_stays() -> None:
    scope = stack()
    error = refused(
        scope,
        "Bad",
        lambda: model(
            scope,
            "Bad",
            training_dataset="arn:aws:s3:::not-a-dataset",
            training_data_start_time=datetime(2024, 1, 1),
            training_data_end_time="2024-02-01",
            kms_key="alias/mine",
            name="x" * 64,
            wait_for_completion=True,
            timeout=Duration.hours(13),
            removal_policy=RemovalPolicy.SNAPSHOT,
        ),
    )
    assert len(error.issues) == 8, str(error)
    text = str(error)
    assert text.startswith("Test/Bad: 8 invalid props:")
    for expected in (
        "training_dataset = 'arn:aws:s3:::not-a-dataset': must match the pattern",
        "training_data_start_time = '2024-01-01T00:00:00': must be timezone-aware",
        "training_data_end_time = '2024-02-01': must be a datetime",
        "kms_key = 'alias/mine': must match the pattern",
        "name = ",
        "timeout = '46800 seconds': must be a whole number of seconds from 1 to 43,200",
        "removal_policy = ",
    ):
        assert f"Test/Bad: {expected}" in text, (expected, text)
    assert scope.node.try_find_child("Bad") is None


def test_the_window_must_run_forward_and_a_wait_timeout_needs_the_wait() -> None:
    scope = stack()
    error = refused(
        scope,
        "Backwards",
        lambda: model(
            scope,
            "Backwards",
            training_data_start_time=JAN,
            training_data_end_time=JAN,
            timeout=Duration.hours(1),
            training_dataset=object(),
        ),
    )
    text = str(error)
    assert text.startswith("Test/Backwards: 3 invalid props:")
    assert "must be a TrainingDataset or a training dataset ARN string" in text
    assert (
        "Test/Backwards: training_data_end_time = '2024-01-01T00:00:00Z': must be after training_data_start_time "
        "(2024-01-01T00:00:00Z)" in text
    )
    assert "timeout = Duration.hours(1): applies only with wait_for_completion=True" in text or "applies only" in text
    assert [i.prop for i in error.issues] == ["training_dataset", "training_data_end_time", "timeout"]


@pytest.mark.parametrize(
    ("timeout", "accepted"),
    [
        (Duration.seconds(1), True),
        (Duration.hours(12), True),
        (Duration.millis(1500), False),
        (Duration.millis(500), False),
        (Duration.hours(12).plus(Duration.seconds(1)), False),
    ],
)
def test_the_wait_timeout_is_whole_seconds_from_one_second_to_twelve_hours(timeout: Duration, accepted: bool) -> None:
    scope = stack()
    if accepted:
        made = model(scope, wait_for_completion=True, timeout=timeout)
        assert made.wait_condition is not None
        assert scope.resolve(made.wait_condition.timeout) == str(int(timeout.to_seconds()))
    else:
        with pytest.raises(ValidationError, match="timeout = .*: must be a whole number of seconds from 1 to 43,200"):
            model(scope, wait_for_completion=True, timeout=timeout)


# --------------------------------------------------------------------------------------------------
# The wait


def test_without_the_wait_the_provider_has_no_watcher() -> None:
    scope = stack()
    model(scope)
    nested = provider_template(scope).to_json()
    assert of_type(nested, "AWS::StepFunctions::StateMachine").keys() == {
        k for k in of_type(nested, "AWS::StepFunctions::StateMachine") if k.startswith("Frameworkwaiter")
    }
    assert len(of_type(nested, "AWS::StepFunctions::StateMachine")) == 1
    handlers = [f["Properties"].get("Handler") for f in of_type(nested, "AWS::Lambda::Function").values()]
    assert "entrypoints.watch" not in handlers
    assert WATCHER_ARN_VARIABLE not in json.dumps(nested)
    assert "states:StartExecution" not in json.dumps(handler_statements(scope))


def test_the_wait_is_a_handle_and_a_condition_after_the_model_and_the_handle_is_the_signal_url() -> None:
    scope = stack()
    made = model(scope, wait_for_completion=True, timeout=Duration.hours(6))
    template_json = Template.from_stack(scope).to_json()
    model_id, resource = only(template_json, MODEL_TYPE)
    handle_id, handle = only(template_json, WAIT_TYPES[0])
    condition_id, condition = only(template_json, WAIT_TYPES[1])
    assert handle == {"Type": WAIT_TYPES[0]}
    assert condition["Properties"] == {"Handle": {"Ref": handle_id}, "Count": 1, "Timeout": "21600"}
    assert condition["DependsOn"] == [model_id]
    assert resource["Properties"]["SignalUrl"] == {"Ref": handle_id}
    assert resource["Properties"]["SignalTimeoutSeconds"] == "21600"
    assert resource["Properties"]["WaitForCompletion"] == "false"  # the model's own step never waits for training
    assert "ServiceTimeout" not in resource["Properties"]  # CloudFormation's default hour (the quota may be waited)
    assert made.waits_for_completion and made.wait_condition is not None
    assert scope.get_logical_id(made.wait_condition) == condition_id
    digest = handle_id.removeprefix("ModelTrainedHandle")[:8]
    assert condition_id.startswith(f"ModelTrained{digest}")
    assert made.wait_condition.node.id == f"Trained{digest}"


def test_the_default_timeout_is_twelve_hours() -> None:
    scope = stack()
    model(scope, wait_for_completion=True)
    template_json = Template.from_stack(scope).to_json()
    assert only(template_json, WAIT_TYPES[1])[1]["Properties"]["Timeout"] == "43200"
    assert model_properties(scope)["SignalTimeoutSeconds"] == "43200"


def _wait_digest(**kwargs: Any) -> str:
    scope = stack()
    made = model(scope, wait_for_completion=True, **kwargs)
    assert made.wait_condition is not None
    return made.wait_condition.node.id.removeprefix("Trained")


def test_a_change_that_replaces_the_model_or_the_wait_makes_a_new_wait_and_tags_do_not() -> None:
    base = _wait_digest(description="weekly", tags={"team": "ads"})
    assert _wait_digest(description="weekly", tags={"team": "growth"}) == base
    assert _wait_digest(description="weekly") == base
    assert _wait_digest(description="monthly", tags={"team": "ads"}) != base
    assert _wait_digest(description="weekly", training_data_start_time=JAN) != base
    assert _wait_digest(description="weekly", timeout=Duration.hours(11)) != base  # a WaitCondition never updates
    assert _wait_digest(description="weekly", name="named") != base


def test_a_replaced_training_dataset_of_the_app_makes_a_new_wait() -> None:
    def digest(table: str, tags: dict[str, str] | None = None) -> str:
        scope = stack()
        made = model(scope, training_dataset=dataset(scope, table_name=table, tags=tags), wait_for_completion=True)
        assert made.wait_condition is not None
        return made.wait_condition.node.id

    assert digest("interactions") == digest("interactions", {"team": "data"})  # the dataset's tags: in place
    assert digest("interactions") != digest("clicks")  # the model's GetAtt is the same; the dataset is new


def test_the_watcher_is_made_once_per_provider_with_the_contracts_definition() -> None:
    scope = stack()
    model(scope, "First", wait_for_completion=True)
    model(scope, "Second", wait_for_completion=True)
    model(scope, "NotWaiting")
    nested = provider_template(scope).to_json()
    machines = {k: v for k, v in of_type(nested, "AWS::StepFunctions::StateMachine").items() if "Framework" not in k}
    ((machine_id, machine),) = machines.items()
    (function_id,) = [
        k
        for k, f in of_type(nested, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == "entrypoints.watch"
    ]
    delimiter, parts = machine["Properties"]["DefinitionString"]["Fn::Join"]
    arn = "arn:aws:lambda:us-east-1:111122223333:function:watch"
    text = delimiter.join(arn if p == {"Fn::GetAtt": [function_id, "Arn"]} else p for p in parts)
    assert json.loads(text) == definition(arn)
    assert json.loads(text)["States"]["Check"]["Retry"] == [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "MaxAttempts": 5, "BackoffRate": 2}
    ]
    assert set(json.loads(text)["States"]) == {"Check", "Done?", "Wait", "Signaled"}
    properties = machine["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    (log_group_id,) = of_type(nested, "AWS::Logs::LogGroup")
    assert properties["LoggingConfiguration"] == {
        "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_group_id, "Arn"]}}}],
        "IncludeExecutionData": False,
        "Level": "ALL",
    }
    # The handlers know where it is and may start it; nothing else may.
    for function in of_type(nested, "AWS::Lambda::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        if str(function["Properties"]["Handler"]) in ("entrypoints.on_event", "entrypoints.is_complete"):
            assert variables[WATCHER_ARN_VARIABLE] == {"Ref": machine_id}
        else:
            assert WATCHER_ARN_VARIABLE not in variables
    start = handler_statements(scope)["StartTheTrainingWatcher"]
    assert start["Action"] == "states:StartExecution" and start["Resource"] == {"Ref": machine_id}


def _policy_statements(template_json: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        s
        for p in of_type(template_json, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_watch_function_and_the_state_machine_have_the_least_they_need() -> None:
    scope = stack()
    model(scope, wait_for_completion=True)
    nested = provider_template(scope).to_json()
    (function_id, function) = next(
        (k, f)
        for k, f in of_type(nested, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == "entrypoints.watch"
    )
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert "HandlerRole" not in role_id
    (log_group_id,) = of_type(nested, "AWS::Logs::LogGroup")
    assert _policy_statements(nested, role_id) == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group_id, "Arn"]},
            "Sid": "WriteOwnLogs",
        },
        {
            "Action": "cleanrooms-ml:GetAudienceModel",
            "Effect": "Allow",
            "Resource": stack_arn("cleanrooms-ml", "audience-model/*"),
            "Sid": "ReadAudienceModels",
        },
    ]
    assert not of_type(nested, "AWS::IAM::Role")[role_id]["Properties"].get("ManagedPolicyArns")
    machine = next(v for k, v in of_type(nested, "AWS::StepFunctions::StateMachine").items() if "Framework" not in k)
    machine_role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invoke = [s for s in _policy_statements(nested, machine_role) if "lambda:InvokeFunction" in str(s["Action"])]
    assert invoke == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [function_id, "Arn"]},
            "Sid": "RunTheWatchFunction",
        }
    ]


def test_the_handler_may_create_models_on_the_dataset_only_and_manage_the_stacks_models() -> None:
    scope = stack()
    model(scope, tags={"team": "ads"})
    statements = handler_statements(scope)
    assert statements["CreateAudienceModelsFromTheseDatasets"]["Resource"] == DATASET_ARN
    assert statements["CreateAudienceModelsFromTheseDatasets"]["Action"] == "cleanrooms-ml:CreateAudienceModel"
    manage = statements["ManageAudienceModels"]
    assert manage["Resource"] == stack_arn("cleanrooms-ml", "audience-model/*")
    assert set(manage["Action"]) == {
        f"cleanrooms-ml:{a}"
        for a in ("GetAudienceModel", "DeleteAudienceModel", "TagResource", "UntagResource", "ListTagsForResource")
    }
    assert statements["FindAudienceModelsByName"] == {
        "Action": "cleanrooms-ml:ListAudienceModels",
        "Effect": "Allow",
        "Resource": "*",
        "Sid": "FindAudienceModelsByName",
    }


# --------------------------------------------------------------------------------------------------
# The configured model


def test_a_configured_model_of_a_waiting_model_waits_for_its_wait_condition() -> None:
    scope = stack()
    made = model(scope, wait_for_completion=True)
    configured(scope, made)
    template_json = Template.from_stack(scope).to_json()
    condition_id, _ = only(template_json, WAIT_TYPES[1])
    _, resource = only(template_json, "Custom::CleanRoomsMlConfiguredAudienceModel")
    assert condition_id in resource["DependsOn"]
    assert resource["Properties"]["audienceModelArn"] == {
        "Fn::GetAtt": [scope.get_logical_id(made.resource), "AudienceModelArn"]
    }
    # The model of the stack is granted by its type's pattern (its ARN would make the provider depend on it).
    create = handler_statements(scope)["CreateConfiguredModelsFromTheseModels"]
    assert create["Resource"] == stack_arn("cleanrooms-ml", "audience-model/*")


@pytest.mark.parametrize("as_arn", [False, True])
def test_a_model_that_does_not_wait_is_refused_saying_why_and_what_to_do(as_arn: bool) -> None:
    scope = stack()
    made = model(scope)
    given = made.audience_model_arn if as_arn else made
    error = refused(scope, "Configured", lambda: configured(scope, given))
    (issue,) = error.issues
    assert issue.prop == "audience_model" and issue.value == "Test/Model"
    assert "is declared with wait_for_completion=False: its deploy step ends while the model is still training" in str(
        error
    )
    assert "give the AudienceModel wait_for_completion=True" in str(error)
    assert "from the model's ARN string once it is ACTIVE" in str(error)


def test_a_model_of_another_stack_of_the_app_that_does_not_wait_is_refused_too() -> None:
    app = App()
    env = Environment(account=ACCOUNT, region=REGION)
    training, configuring = Stack(app, "Training", env=env), Stack(app, "Configuring", env=env)
    made = model(training)
    with pytest.raises(ValidationError, match="wait_for_completion=False"):
        configured(configuring, made)
    assert configuring.node.try_find_child("Configured") is None


def test_an_audience_model_arn_string_is_taken_as_today() -> None:
    scope = stack()
    configured(scope, AUDIENCE_MODEL_ARN)
    _, resource = only(Template.from_stack(scope).to_json(), "Custom::CleanRoomsMlConfiguredAudienceModel")
    assert resource["Properties"]["audienceModelArn"] == AUDIENCE_MODEL_ARN


def test_exactly_one_way_to_name_the_audience_model() -> None:
    scope = stack()
    for kwargs, message in (
        ({}, "audience_model_arn = None: is required"),
        (
            {"audience_model": AUDIENCE_MODEL_ARN, "audience_model_arn": AUDIENCE_MODEL_ARN},
            "give exactly one of audience_model and audience_model_arn",
        ),
    ):
        error = refused(
            scope,
            "Configured",
            lambda kwargs=kwargs: ConfiguredAudienceModel(  # type: ignore[misc]
                scope,
                "Configured",
                destination=AudienceDestination(s3_uri="s3://partner-segments/out/", role=SEGMENT_ROLE_ARN),
                shared_audience_metrics=[SharedAudienceMetrics.ALL],
                **kwargs,
            ),
        )
        assert message in str(error), str(error)
