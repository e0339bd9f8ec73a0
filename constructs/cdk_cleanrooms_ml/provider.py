"""The provider that every resource of the library in a stack shares: two Python handlers behind the CDK
Provider framework.

One provider per stack and poll interval, whatever the number and types of resources: a job, an export, a
configured audience model or an association adds one custom resource and nothing else (the handler picks
the type's spec from the event's ResourceType). Its functions and the framework's waiter state machine share one log
group that the library creates (retention, removal policy and KMS key as the user sets them), named
under ``/aws/vendedlogs/states/``: Step Functions logging to any other name adds to CloudWatch Logs'
one resource policy per account and region (5,120 characters) until deploys fail. The roles write to
it with their own statements, not an AWS-managed policy. What no code can narrow is acknowledged here
for cdk-nag, with the reason (the README's Security section lists the same).
"""

from __future__ import annotations

import jsii
from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnParameter,
    CfnResource,
    Duration,
    Fn,
    NestedStack,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr

from constructs import Construct, IValidation

from . import _watcher
from .handler_asset import staged_asset_dir
from .iam_statements import HandlerStatements, acknowledge_wildcards, log_statement, nag_text, skip_checkov
from .service_model import MODELS_DIR

#: How often is_complete asks for a job's status, unless a job or the stack asks otherwise.
DEFAULT_POLL_INTERVAL = Duration.seconds(30)
#: The Provider framework's waiter runs at most this long; each job enforces its own, shorter timeout.
TOTAL_TIMEOUT = Duration.hours(1)
#: The newest Python runtime aws-cdk-lib knows.
RUNTIME = lambda_.Runtime.PYTHON_3_14

_ID = "CleanRoomsMlProvider"


class CleanRoomsMlProvider(NestedStack):
    """The custom-resource provider of every construct of this library: usually created for you, once per stack.

    A nested stack, so that it costs its parent one CloudFormation resource (an ``AWS::CloudFormation::Stack``),
    whatever it holds: a stack keeps room for 499 of the library's resources (as aws-cdk's EKS cluster keeps its
    providers in nested stacks). Create it yourself (``CleanRoomsMlProvider.of(stack, ...)``) before the
    resources to set the poll interval or the log options for the stack; resources that ask for another poll
    interval get a provider of their own.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        poll_interval: Duration | None = None,
        log_retention: logs.RetentionDays | None = None,
        log_removal_policy: RemovalPolicy | None = None,
        log_encryption_key: kms.IKey | None = None,
    ) -> None:
        """
        :param poll_interval: how often a job's status is read while the deploy waits. Default: 30 seconds.
            Must be a whole number of seconds that divides one hour.
        :param log_retention: how long the handlers' logs are kept. Default: one year.
        :param log_removal_policy: what happens to the log group when the stack goes. Default: RETAIN (the logs
            of the last deploy stay readable; the name carries the stack's id, so a new stack never collides).
        :param log_encryption_key: a customer-managed KMS key for the log group. Default: none (CloudWatch
            Logs encrypts with its own key). A key defined in the app (``kms.Key``) gets the key-policy
            statement CloudWatch Logs needs; an imported key must allow ``logs.<region>.amazonaws.com``
            itself (the README's Security section shows the statement).
        """
        super().__init__(scope, id)
        interval = poll_interval or DEFAULT_POLL_INTERVAL
        self.poll_interval_seconds = int(interval.to_seconds())
        """How often is_complete reads a job's status (the waiter's query interval), in seconds."""

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=_log_group_name(self, id),
            retention=log_retention or logs.RetentionDays.ONE_YEAR,
            removal_policy=log_removal_policy or RemovalPolicy.RETAIN,
            encryption_key=log_encryption_key,
        )
        """The one log group of the provider's five functions and its waiter state machine."""
        if isinstance(log_encryption_key, kms.Key):
            log_encryption_key.add_to_resource_policy(_logs_may_use_key(self))
        if log_encryption_key is None:
            skip_checkov(self.log_group.node.default_child, "CKV_AWS_158", _REASON_NO_LOG_KEY)
        self.handler_role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="cdk-cleanrooms-ml: creates, watches, updates, tags and deletes Clean Rooms ML resources",
        )
        """The role of the two Python handlers (see the README's Security section for its statements)."""
        self.handler_role.add_to_policy(log_statement(self.log_group.log_group_arn))
        self.statements = HandlerStatements(Stack.of(self).account, self.handler_role.add_to_policy)
        """The handler role's statements, widened by ``allow_job`` for each job's model and seed role."""

        self._code = code = lambda_.Code.from_asset(str(staged_asset_dir()), exclude=["__pycache__", "*.pyc"])
        functions = {}
        for entry in ("on_event", "is_complete"):
            functions[entry] = lambda_.Function(
                self,
                "OnEvent" if entry == "on_event" else "IsComplete",
                runtime=RUNTIME,
                code=code,
                handler=f"entrypoints.{entry}",
                role=self.handler_role,
                log_group=self.log_group,
                memory_size=256,
                # Longer than the client's worst case (8 attempts, 30 s reads, backoff): a handler cut off
                # mid-call could leave a started job that CloudFormation never hears of.
                timeout=Duration.minutes(5),
                environment={"AWS_DATA_PATH": f"/var/task/{MODELS_DIR}"},
                description=f"cdk-cleanrooms-ml audience generation job handler ({entry})",
            )
        # The framework's onEvent function starts the waiter that invokes isComplete/onTimeout, so one
        # role for all three would be a dependency cycle: one role for onEvent, one for the other two.
        framework_roles = []
        for role_id, what in (("FrameworkOnEventRole", "onEvent"), ("FrameworkWaiterRole", "isComplete and onTimeout")):
            role = iam.Role(
                self,
                role_id,
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"cdk-cleanrooms-ml: the CDK Provider framework's {what} function(s)",
            )
            role.add_to_policy(log_statement(self.log_group.log_group_arn))
            framework_roles.append(role)
        self.provider = cr.Provider(
            self,
            "Framework",
            on_event_handler=functions["on_event"],
            is_complete_handler=functions["is_complete"],
            query_interval=interval,
            total_timeout=TOTAL_TIMEOUT,
            log_group=self.log_group,
            framework_on_event_role=framework_roles[0],
            framework_complete_and_timeout_role=framework_roles[1],
            # The framework logs whole requests (ResourceProperties included) at INFO: keep it at FATAL.
            framework_lambda_logging_level=lambda_.ApplicationLogLevel.FATAL,
            # The waiter's state transitions go to the shared log group, WITHOUT execution data: the
            # execution input is the CloudFormation event, which carries the (sensitive) SQL parameters.
            waiter_state_machine_log_options=cr.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            disable_waiter_state_machine_logging=False,
        )
        """The aws-cdk-lib ``custom_resources.Provider`` behind the jobs (escape hatch)."""
        self._handler_functions = list(functions.values())
        self.watcher: sfn.StateMachine | None = None
        """The state machine that signals waiting audience models' WaitConditions (made on first use)."""
        self._explain_role_dependencies()
        self._acknowledge_findings(functions)
        self.node.add_validation(_WithinParameterQuota(self))

    def _explain_role_dependencies(self) -> None:
        """CDK makes each function (and the state machine) depend on its role as well as on the role's policy,
        although the role is referenced already (cfn-lint W3005). The DependsOn list stays as CDK and the user
        make it (a dependency added later must survive); cfn-lint is told why on these resources only."""
        for construct in self.node.find_all():
            if isinstance(construct, CfnResource) and construct.cfn_resource_type in _ROLE_USERS:
                construct.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

    def _acknowledge_findings(self, functions: dict[str, lambda_.Function]) -> None:
        """The cdk-nag findings that stay, each with the reason a reviewer needs (the README's Security section)."""
        acknowledge_wildcards(self.handler_role, ["Resource::*"], _REASON_LIST_JOBS)
        acknowledge_wildcards(
            self.handler_role,
            lambda: [f"Resource::{nag_text(Stack.of(self).resolve(p))}" for p in self.statements.patterns()],
            _REASON_JOB_IDS,
        )
        invoked = [
            *functions.values(),
            *(c for c in self.provider.node.find_all() if isinstance(c, lambda_.Function)),
        ]
        for role in [*(r for r in self.node.find_all() if isinstance(r, iam.Role) and r is not self.handler_role)]:
            acknowledge_wildcards(role, lambda: [_invoke_finding(f) for f in invoked], _REASON_INVOKE_VERSIONS)
        state_machine = self.provider.node.try_find_child("waiter-state-machine")
        if state_machine is not None:
            acknowledge_wildcards(state_machine, ["Resource::*"], _REASON_LOG_DELIVERY)
            policy = state_machine.node.try_find_child("Role")
            policy = policy.node.try_find_child("DefaultPolicy") if policy is not None else None
            skip_checkov(policy.node.default_child if policy is not None else None, "CKV_AWS_111", _REASON_LOG_DELIVERY)
            Validations.of(state_machine).acknowledge(Acknowledgment(id="AwsSolutions-SF2", reason=_REASON_XRAY))

    @property
    def service_token(self) -> str:
        """The ARN of the Provider framework's onEvent function: the ServiceToken of every resource it serves."""
        return self.provider.service_token

    def allow_job(
        self, configured_audience_model_arn: str, seed_role_arn: str, collaboration_id: str | None = None
    ) -> None:
        """Let the handlers start jobs from this model (in this collaboration) and pass this seed role."""
        self.statements.add_job(configured_audience_model_arn, seed_role_arn, collaboration_id)

    def allow_export(self, audience_generation_job_arn: str) -> None:
        """Let the handlers start and list exports of this generation job."""
        self.statements.add_export(audience_generation_job_arn)

    def allow_configured_model(self, audience_model_arn: str, output_role_arn: str) -> None:
        """Let the handlers create configured audience models from this audience model, writing with this role."""
        self.statements.add_configured_model(audience_model_arn, output_role_arn)

    def allow_audience_model(self, training_dataset_arn: str) -> None:
        """Let the handlers create, watch, tag and delete audience models trained on this dataset."""
        self.statements.add_audience_model(training_dataset_arn)

    def allow_audience_model_wait(self) -> sfn.StateMachine:
        """The watcher (made on the first audience model that waits for training): a Standard state machine that
        reads the model every few minutes through its own function and signals the model's WaitCondition handle;
        the handlers start it (``CLEANROOMS_ML_WATCHER_ARN``) once training began."""
        if self.watcher is None:
            self.watcher = _watcher.add(self, self._code)
            for function in self._handler_functions:
                function.add_environment(_watcher.WATCHER_ARN_VARIABLE, self.watcher.state_machine_arn)
            self.statements.add_watcher(self.watcher.state_machine_arn)
        return self.watcher

    def allow_association(self, membership_id: str, configured_audience_model_arn: str) -> None:
        """Let the handlers associate configured audience models with this membership."""
        self.statements.add_association(membership_id, configured_audience_model_arn)

    # Shadows Stack.of on purpose (the provider's API since 0.1.0): the library calls Stack.of itself.
    @staticmethod
    def of(  # type: ignore[override]
        scope: Construct,
        *,
        poll_interval: Duration | None = None,
        log_retention: logs.RetentionDays | None = None,
        log_removal_policy: RemovalPolicy | None = None,
        log_encryption_key: kms.IKey | None = None,
    ) -> CleanRoomsMlProvider:
        """The stack's provider for this poll interval, created on first use.

        The log options apply only when this call creates the provider (see the constructor).
        """
        stack = Stack.of(scope)
        seconds = int((poll_interval or DEFAULT_POLL_INTERVAL).to_seconds())
        child_id = _ID if seconds == int(DEFAULT_POLL_INTERVAL.to_seconds()) else f"{_ID}{seconds}s"
        existing = stack.node.try_find_child(child_id)
        if isinstance(existing, CleanRoomsMlProvider):
            return existing
        return CleanRoomsMlProvider(
            stack,
            child_id,
            poll_interval=poll_interval,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
            log_encryption_key=log_encryption_key,
        )


#: CloudFormation's quota of Parameters per template, a nested stack's included.
MAX_PARAMETERS = 200


@jsii.implements(IValidation)
class _WithinParameterQuota:
    """Each value of the parent stack that the provider uses (a seed role of the stack, say) is one Parameter of
    its nested stack, made by CDK at synth: more than CloudFormation's quota would fail only at deploy."""

    def __init__(self, provider: CleanRoomsMlProvider) -> None:
        self.provider = provider

    def validate(self) -> list[str]:
        count = sum(isinstance(child, CfnParameter) for child in self.provider.node.children)
        if count <= MAX_PARAMETERS:
            return []
        return [
            f"{self.provider.node.path}: the provider's nested stack needs {count} Parameters, one per value of "
            f"its parent stack that its policies name (a seed role defined in the stack, say); CloudFormation "
            f"allows {MAX_PARAMETERS} per template. Let jobs share seed roles (one role for several seeds) or "
            "put the jobs in more than one stack."
        ]


#: Resource types whose DependsOn CDK fills with both a role and its default policy.
_ROLE_USERS = frozenset({"AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"})

#: Every log group of this library's providers is named under this prefix.
LOG_GROUP_PREFIX = "/aws/vendedlogs/states/cdk-cleanrooms-ml-"


def _log_group_name(scope: Construct, id: str) -> str:
    """``/aws/vendedlogs/states/cdk-cleanrooms-ml-<stack name>-<provider id>-<stack uuid>``: unique per stack
    (a retained log group of a deleted stack never collides with its successor's)."""
    stack_uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return f"{LOG_GROUP_PREFIX}{Aws.STACK_NAME}-{id}-{stack_uuid}"


def _logs_may_use_key(scope: Construct) -> iam.PolicyStatement:
    """The key-policy statement CloudWatch Logs needs to encrypt this library's log groups with a key."""
    stack = Stack.of(scope)
    return iam.PolicyStatement(
        sid="CloudWatchLogsEncryptsCleanRoomsMlProviderLogs",
        principals=[iam.ServicePrincipal(f"logs.{stack.region}.{Aws.URL_SUFFIX}")],
        actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources=["*"],  # in a key policy, "*" is this key
        conditions={
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": (
                    f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{LOG_GROUP_PREFIX}*"
                )
            }
        },
    )


def _invoke_finding(function: lambda_.Function) -> str:
    """cdk-nag's finding for ``grant_invoke``'s second resource: every version and alias of the function."""
    return f"Resource::{nag_text(Stack.of(function).resolve(function.function_arn))}:*"


_REASON_NO_LOG_KEY = (
    "No log_encryption_key was given: CloudWatch Logs encrypts the log group at rest with its own key. The logs "
    "hold request types, logical ids, ARNs and statuses, never property values; pass log_encryption_key to use a "
    "customer-managed key."
)
_REASON_LIST_JOBS = (
    "cleanrooms-ml:ListAudienceGenerationJobs (and the other List actions the handler uses, such as "
    "ListAudienceModels) has no resource type (Service Authorization Reference): it needs Resource *. The handler "
    "only lists (jobs filtered by the job's configured audience model) to find a resource it created again by its "
    "unique name after a retry."
)
_REASON_JOB_IDS = (
    "A resource's ARN ends in an id the service assigns when it is created, so no narrower ARN can be known at "
    "synth time (and naming a resource of the stack would make the handler depend on what it serves); each "
    "pattern is limited to one resource type of the stack's own partition, region and account. Starting jobs "
    "is further limited to the configured audience models of this stack's jobs."
)
_REASON_INVOKE_VERSIONS = (
    "lambda:InvokeFunction on '<function ARN>:*' is the second resource of aws-cdk-lib's Function.grant_invoke "
    "(every version and alias of that one function), granted by the Provider framework to its own roles; the "
    "functions are this provider's own."
)
_REASON_LOG_DELIVERY = (
    "The waiter state machine logs to the provider's log group; CloudWatch Logs' log-delivery actions "
    "(logs:CreateLogDelivery, GetLogDelivery, ListLogDeliveries, PutResourcePolicy, ...) have no resource-level "
    "permissions, so aws-cdk-lib's WaiterStateMachine grants them on *."
)
_REASON_XRAY = (
    "The waiter state machine only polls one of this provider's Lambda functions; its state transitions are "
    "logged (level ALL, without execution data) to the provider's log group. X-Ray tracing would add "
    "xray:PutTraceSegments on * and trace nothing a reviewer needs."
)


#: The name 0.1.0 gave the provider (it served audience generation jobs only).
AudienceGenerationProvider = CleanRoomsMlProvider
