"""The AWS clients, and what the handler asks of a service beyond single calls.

Clients are created on first use, not at import: a cold start then costs no more than importing
boto3. Throttling and 5xx answers are retried by botocore's standard retry mode with backoff; an
error that outlasts those retries is *transient* for the engine (it tries again on a later poll),
while errors a retry cannot fix (AccessDenied, Validation) come back at once.
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from specs import REQUEST_TAG, ResourceSpec

_clients: dict[tuple[str, str | None], Any] = {}

#: botocore's standard mode retries throttling and 5xx errors with exponential backoff and jitter, this many
#: attempts in all (CLEANROOMSML_MAX_ATTEMPTS overrides it, e.g. for a rehearsal that compresses time).
DEFAULT_ATTEMPTS = 8

#: Error codes that say "not now" rather than "no": botocore retries them; the engine polls again.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

_ARN = re.compile(
    r"arn:(?P<partition>aws[-a-z]*):(?P<service>[-a-z0-9]+):(?P<region>[-a-z0-9]*):(?P<account>[0-9]{12}):"
    r"(?P<resource>.+)"
)
_STACK_ARN = re.compile(
    r"arn:(?P<partition>aws[-a-z]*):cloudformation:(?P<region>[-a-z0-9]+):(?P<account>[0-9]{12}):stack/.+"
)
#: The separator of a compound physical id (``<parent ARN>|<name>``), as Cloud Control writes one.
COMPOUND = "|"
#: The IAM prefix of the cleanroomsml client's service (ARNs and actions say ``cleanrooms-ml``).
ARN_SERVICE = {"cleanroomsml": "cleanrooms-ml", "cleanrooms": "cleanrooms"}


def client(service: str, region: str | None = None) -> Any:
    """The shared client of ``service`` in ``region`` (honours AWS_ENDPOINT_URL_<SERVICE> like any boto3 client).

    No region: the function's own (AWS_REGION).
    """
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    key = (service, region)
    if key not in _clients:
        _clients[key] = boto3.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            config=Config(
                retries={
                    "mode": "standard",
                    "total_max_attempts": int(os.environ.get("CLEANROOMSML_MAX_ATTEMPTS", DEFAULT_ATTEMPTS)),
                },
                connect_timeout=5,
                read_timeout=20,  # 8 x (5 s + 20 s) + backoff stays under the functions' 5-minute timeout
                user_agent_extra="cdk-cleanrooms-ml",
            ),
        )
    return _clients[key]


def reset_clients() -> None:
    """Forget the clients (tests that bind a Stubber to a fresh client)."""
    _clients.clear()


def call(service: str, region: str | None, operation: str, **params: Any) -> dict[str, Any]:
    """One API call by its model name (``StartAudienceGenerationJob``)."""
    return dict(getattr(client(service, region), _snake(operation))(**params))


def _snake(operation: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", operation).lower()


def input_shape(service: str, operation: str) -> Any:
    """The request shape of an operation, from the model the client itself loaded."""
    return client(service).meta.service_model.operation_model(operation).input_shape


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return type(error).__name__


def error_message(error: Exception) -> str:
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '') or str(error)}"
    return f"{type(error).__name__}: {error}"


def is_transient(error: Exception) -> bool:
    """Throttling, a 5xx, or no answer at all (connection and read timeouts) after the client's own retries."""
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error_code(error) in TRANSIENT_CODES or status >= 500
    return isinstance(error, (BotoConnectionError, HTTPClientError))


def quota_detail(error: ClientError) -> str:
    """The quota a ServiceQuotaExceededException names (its quotaName, else its message), lower case."""
    body = error.response.get("Error", {})
    return str(body.get("quotaName") or error.response.get("quotaName") or body.get("Message") or "").lower()


class Arn(NamedTuple):
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @staticmethod
    def parse(value: Any) -> Arn | None:
        match = _ARN.fullmatch(value) if isinstance(value, str) else None
        return Arn(**match.groupdict()) if match else None


def region_of(arn: str) -> str | None:
    parsed = Arn.parse(arn)
    return parsed.region if parsed is not None and parsed.region else None


class Home(NamedTuple):
    """The partition, region and account of the stack: every resource it owns is in its partition and account."""

    partition: str
    region: str
    account: str

    @staticmethod
    def of_stack(stack_id: Any) -> Home:
        match = _STACK_ARN.fullmatch(stack_id) if isinstance(stack_id, str) else None
        if not match:
            raise ValueError("the event's StackId is not a CloudFormation stack ARN")
        return Home(match["partition"], match["region"], match["account"])

    def owns(self, spec: ResourceSpec, physical_id: str, region: str | None) -> bool:
        """Whether ``physical_id`` names a resource of this type in the stack's partition and account, and in
        ``region`` (where the request says the resource lives: a job lives in its model's region; None when
        the request is unknown, e.g. a Delete whose properties no longer decode). A compound id
        (``<parent ARN>|<name>``) is judged by its parent ARN."""
        arn = Arn.parse(physical_id.split(COMPOUND, 1)[0] if spec.physical_id != "arn" else physical_id)
        if spec.physical_id != "arn" and COMPOUND not in physical_id:
            return False
        return (
            arn is not None
            and arn.service == ARN_SERVICE.get(spec.service, spec.service)
            and re.fullmatch(spec.arn_resource, arn.resource) is not None
            and (arn.partition, arn.account) == (self.partition, self.account)
            and (region is None or arn.region == region)
        )

    def region_for(self, spec: ResourceSpec, request: dict[str, Any] | None) -> str:
        """The region a resource of this request lives in: the region of its ``region_from`` ARN, or the stack's."""
        source = region_of((request or {}).get(spec.region_from, "")) if spec.region_from else None
        return source or self.region


def dig(value: Any, path: str) -> Any:
    """The member at a dotted ``path`` ("" for the value itself); None where a level is missing."""
    for part in path.split(".") if path else ():
        value = value.get(part) if isinstance(value, dict) else None
    return value


def key_params(spec: ResourceSpec, arn: str) -> dict[str, str]:
    """The parameters that name the resource in read/update/delete calls: its ARN, or its ARN's parts."""
    if spec.key is not None:
        return {spec.key: arn}
    parsed = Arn.parse(arn)
    match = re.fullmatch(spec.arn_resource, parsed.resource) if parsed is not None else None
    if match is None:
        raise ValueError(f"{arn!r} is not an ARN of a {spec.noun}")
    return dict(match.groupdict())


def find_by_name(spec: ResourceSpec, region: str, name: str, request: dict[str, Any] | None) -> dict[str, Any] | None:
    """The list item of the resource called ``name`` (names are unique per account, or per parent), or None.

    Narrowed by the request's filter members (a job's configured audience model) so the listing stays short.
    Read-only.
    """
    params: dict[str, Any] = {"maxResults": 100}
    for member in spec.find.filters:
        if (request or {}).get(member) is not None:
            params[member] = request[member]  # type: ignore[index]
    while True:
        page = call(spec.service, region, spec.find.operation, **params)
        for item in page.get(spec.find.items, []):
            if item.get(spec.described_name) == name:
                return dict(item)
        if not page.get("nextToken"):
            return None
        params["nextToken"] = page["nextToken"]


def describe(spec: ResourceSpec, handle: str, request: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The resource's description, or None when it does not exist (any more).

    ``handle`` is its ARN, or for a type without a read call its compound id (found through its listing).
    """
    if spec.read is None:
        parent, _, name = handle.partition(COMPOUND)
        return find_by_name(spec, region_of(parent) or "", name, {**(request or {}), spec.physical_id: parent})
    try:
        answer = call(spec.service, region_of(handle), spec.read, **key_params(spec, handle))
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
    description = dig(answer, spec.described)
    return dict(description) if isinstance(description, dict) else None


def request_tag(spec: ResourceSpec, description: dict[str, Any]) -> str | None:
    """The library's request digest tag of a resource: from its description, else from ListTagsForResource."""
    if spec.tags is None:
        return None
    tags = description.get(spec.tags)
    if not isinstance(tags, dict):
        arn = str(description.get(spec.arn_member, ""))
        tags = call(spec.service, region_of(arn), "ListTagsForResource", resourceArn=arn).get("tags")
    value = (tags or {}).get(REQUEST_TAG)
    return str(value) if value is not None else None
