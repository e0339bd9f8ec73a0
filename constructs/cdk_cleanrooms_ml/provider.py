"""The provider that every job of a stack shares: two Python handlers behind the CDK Provider framework.

One provider per stack and poll interval, whatever the number of jobs: a job adds one custom
resource and nothing else. Its functions share one log group that the library creates (with a
retention the user sets) and write to it with their own statements, not an AWS-managed policy.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr

from constructs import Construct

from .handler_asset import MODELS_DIR, staged_asset_dir
from .iam_statements import HandlerStatements, log_statement

#: How often is_complete asks for a job's status, unless a job or the stack asks otherwise.
DEFAULT_POLL_INTERVAL = Duration.seconds(30)
#: The Provider framework's waiter runs at most this long; each job enforces its own, shorter timeout.
TOTAL_TIMEOUT = Duration.hours(1)
#: The newest Python runtime aws-cdk-lib knows.
RUNTIME = lambda_.Runtime.PYTHON_3_14

_ID = "CleanRoomsMlAudienceGenerationProvider"


class AudienceGenerationProvider(Construct):
    """The custom-resource provider of ``AudienceGenerationJob``: usually created for you, once per stack.

    Create it yourself (``AudienceGenerationProvider.of(stack, ...)``) before the jobs to set the
    poll interval or the log retention for the stack; jobs that ask for another poll interval get a
    provider of their own.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        poll_interval: Duration | None = None,
        log_retention: logs.RetentionDays | None = None,
    ) -> None:
        """
        :param poll_interval: how often a job's status is read while the deploy waits. Default: 30 seconds.
            Must be a whole number of seconds that divides one hour.
        :param log_retention: how long the handlers' logs are kept. Default: one year.
        """
        super().__init__(scope, id)
        interval = poll_interval or DEFAULT_POLL_INTERVAL
        self.poll_interval_seconds = int(interval.to_seconds())
        self.statements = HandlerStatements()

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention or logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.handler_role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="cdk-cleanrooms-ml: starts, watches, tags and deletes audience generation jobs",
        )
        for statement in [*self.statements.all(), log_statement(self.log_group.log_group_arn)]:
            self.handler_role.add_to_policy(statement)

        code = lambda_.Code.from_asset(str(staged_asset_dir()))
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
                timeout=Duration.minutes(2),
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
        )

    @property
    def service_token(self) -> str:
        return self.provider.service_token

    def allow_job(self, configured_audience_model_arn: str, seed_role_arn: str) -> None:
        """Let the handlers start jobs from this model and pass this seed role."""
        self.statements.add_job(configured_audience_model_arn, seed_role_arn)

    @staticmethod
    def of(
        scope: Construct,
        *,
        poll_interval: Duration | None = None,
        log_retention: logs.RetentionDays | None = None,
    ) -> AudienceGenerationProvider:
        """The stack's provider for this poll interval, created on first use."""
        stack = Stack.of(scope)
        seconds = int((poll_interval or DEFAULT_POLL_INTERVAL).to_seconds())
        child_id = _ID if seconds == int(DEFAULT_POLL_INTERVAL.to_seconds()) else f"{_ID}{seconds}s"
        existing = stack.node.try_find_child(child_id)
        if isinstance(existing, AudienceGenerationProvider):
            return existing
        return AudienceGenerationProvider(stack, child_id, poll_interval=poll_interval, log_retention=log_retention)
