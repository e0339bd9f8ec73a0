"""The Clean Rooms ML client and what the handler asks of it beyond single calls.

The client is created on first use, not at import: a cold start then costs no more than importing
boto3. Throttling and 5xx answers are retried by botocore's standard retry mode with backoff;
errors that a retry cannot fix (AccessDenied, Validation) come back at once.
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_client: Any = None

#: botocore's standard mode retries throttling and 5xx errors with exponential backoff and jitter.
RETRY_ATTEMPTS = int(os.environ.get("CLEANROOMSML_MAX_ATTEMPTS", "8"))

_JOB_ARN = re.compile(
    r"arn:(?P<partition>aws[-a-z]*):cleanrooms-ml:(?P<region>[-a-z0-9]+):(?P<account>[0-9]{12})"
    r":audience-generation-job/[-a-zA-Z0-9_/.]+"
)
_STACK_ARN = re.compile(
    r"arn:(?P<partition>aws[-a-z]*):cloudformation:(?P<region>[-a-z0-9]+):(?P<account>[0-9]{12}):stack/.+"
)


def client() -> Any:
    """The shared cleanroomsml client (honours AWS_ENDPOINT_URL_CLEANROOMSML like any boto3 client)."""
    global _client
    if _client is None:
        _client = boto3.client(
            "cleanroomsml",
            config=Config(
                retries={"mode": "standard", "max_attempts": RETRY_ATTEMPTS},
                connect_timeout=5,
                read_timeout=20,  # 8 x (5 s + 20 s) + backoff stays under the functions' 5-minute timeout
                user_agent_extra="cdk-cleanrooms-ml",
            ),
        )
    return _client


def input_shape(operation: str) -> Any:
    """The request shape of an operation, from the model the client itself loaded."""
    return client().meta.service_model.operation_model(operation).input_shape


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: ClientError) -> str:
    err = error.response.get("Error", {})
    return f"{err.get('Code', 'Error')}: {err.get('Message', '') or str(error)}"


class Home(NamedTuple):
    """The partition, region and account that the stack (and so every job it owns) lives in."""

    partition: str
    region: str
    account: str

    @staticmethod
    def of_stack(stack_id: Any) -> Home:
        match = _STACK_ARN.fullmatch(stack_id) if isinstance(stack_id, str) else None
        if not match:
            raise ValueError("the event's StackId is not a CloudFormation stack ARN")
        return Home(match["partition"], match["region"], match["account"])

    def owns_job_arn(self, arn: str) -> bool:
        match = _JOB_ARN.fullmatch(arn)
        if match is None:
            return False
        return (match["partition"], match["region"], match["account"]) == self


def looks_like_job_arn(value: str) -> bool:
    return bool(_JOB_ARN.fullmatch(value))


def find_job_by_name(name: str, configured_audience_model_arn: str, collaboration_id: str | None) -> str | None:
    """The ARN of the job called ``name`` (names are unique per account), or None.

    Narrowed by the configured audience model so the listing stays short; read-only.
    """
    request: dict[str, Any] = {"configuredAudienceModelArn": configured_audience_model_arn, "maxResults": 100}
    if collaboration_id:
        request["collaborationId"] = collaboration_id
    while True:
        page = client().list_audience_generation_jobs(**request)
        for job in page.get("audienceGenerationJobs", []):
            if job.get("name") == name:
                return str(job["audienceGenerationJobArn"])
        if not page.get("nextToken"):
            return None
        request["nextToken"] = page["nextToken"]


def get_job(arn: str) -> dict[str, Any] | None:
    """The job's description, or None when it does not exist (any more)."""
    try:
        return dict(client().get_audience_generation_job(audienceGenerationJobArn=arn))
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
