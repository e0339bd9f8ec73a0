"""The provider's training watcher: what signals a waiting ``AudienceModel``'s WaitCondition.

Training takes hours; a Lambda function runs at most 15 minutes and the Provider framework's waiter at most the
custom resource's hour. A Standard Step Functions workflow may run a year and is billed per state transition, so it
waits for free between reads: Check (the watch function reads the model and, once the outcome is known, signals the
handle) -> Done? -> Wait (``WaitSeconds``, at most 5 minutes) -> Check. Made in the provider's nested stack on the
first waiting model, once per provider; nothing of it exists in a stack without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Acknowledgment, Aws, CfnResource, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn

from .iam_statements import acknowledge_wildcards, log_statement, nag_text, skip_checkov
from .service_model import MODELS_DIR

if TYPE_CHECKING:
    from .provider import CleanRoomsMlProvider

#: The handlers' environment variable holding the watcher's ARN.
WATCHER_ARN_VARIABLE = "CLEANROOMS_ML_WATCHER_ARN"
#: The watch function's entry point (in the handler's asset).
WATCH_ENTRY_POINT = "entrypoints.watch"


def definition(watch_function_arn: Any) -> dict[str, Any]:
    """The state machine's definition (the rehearsal interprets this very shape)."""
    return {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Task",
                "Resource": watch_function_arn,
                # A failed read or signal PUT raises: tried again (30 s, 60 s, ... 8 min), then the execution fails
                # and the WaitCondition times out, failing the deploy.
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "MaxAttempts": 5, "BackoffRate": 2}],
                "Next": "Done?",
            },
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.Done", "BooleanEquals": True, "Next": "Signaled"}],
                "Default": "Wait",
            },
            "Wait": {"Type": "Wait", "SecondsPath": "$.WaitSeconds", "Next": "Check"},
            "Signaled": {"Type": "Succeed"},
        },
    }


def add(provider: CleanRoomsMlProvider, code: lambda_.Code) -> sfn.StateMachine:
    """The watch function (its own role: read audience models of the stack's account and region, write its logs)
    and the state machine that runs it, logging to the provider's log group like the framework's waiter."""
    from .provider import RUNTIME

    stack = Stack.of(provider)
    role = iam.Role(
        provider,
        "WatcherFunctionRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="cdk-cleanrooms-ml: reads audience models in training and signals their WaitConditions",
    )
    role.add_to_policy(log_statement(provider.log_group.log_group_arn))
    models = f"arn:{Aws.PARTITION}:cleanrooms-ml:{Aws.REGION}:{stack.account}:audience-model/*"
    role.add_to_policy(
        iam.PolicyStatement(sid="ReadAudienceModels", actions=["cleanrooms-ml:GetAudienceModel"], resources=[models])
    )
    function = lambda_.Function(
        provider,
        "WatcherFunction",
        runtime=RUNTIME,
        code=code,
        handler=WATCH_ENTRY_POINT,
        role=role,
        log_group=provider.log_group,
        memory_size=256,
        timeout=Duration.minutes(5),  # one read and one PUT, with the client's retries
        environment={"AWS_DATA_PATH": f"/var/task/{MODELS_DIR}"},
        description="cdk-cleanrooms-ml audience model training watcher (watch)",
    )
    state_machine = sfn.StateMachine(
        provider,
        "TrainingWatcher",
        definition_body=sfn.DefinitionBody.from_string(stack.to_json_string(definition(function.function_arn))),
        state_machine_type=sfn.StateMachineType.STANDARD,
        # State transitions only: the execution input holds the handle's presigned URL, a credential.
        logs=sfn.LogOptions(destination=provider.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
    )
    # The function itself, not grant_invoke's '<ARN>:*' (versions and aliases): the definition names the function.
    state_machine.add_to_role_policy(
        iam.PolicyStatement(
            sid="RunTheWatchFunction", actions=["lambda:InvokeFunction"], resources=[function.function_arn]
        )
    )
    for resource in (function.node.default_child, state_machine.node.default_child):
        if isinstance(resource, CfnResource):  # CDK's DependsOn on the role and its policy (see the provider)
            resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
    _acknowledge_findings(provider, role, state_machine, models)
    return state_machine


def _acknowledge_findings(
    provider: CleanRoomsMlProvider, role: iam.Role, state_machine: sfn.StateMachine, models: str
) -> None:
    from .provider import _REASON_JOB_IDS, _REASON_LOG_DELIVERY, _REASON_XRAY

    acknowledge_wildcards(role, lambda: [f"Resource::{nag_text(Stack.of(provider).resolve(models))}"], _REASON_JOB_IDS)
    acknowledge_wildcards(state_machine, ["Resource::*"], _REASON_LOG_DELIVERY)
    policy = state_machine.role.node.try_find_child("DefaultPolicy")
    skip_checkov(policy.node.default_child if policy is not None else None, "CKV_AWS_111", _REASON_LOG_DELIVERY)
    Validations.of(state_machine).acknowledge(Acknowledgment(id="AwsSolutions-SF2", reason=_REASON_XRAY))
