"""Wait conditions and the local Step Functions in a rehearsal: a custom resource whose handler starts a watcher
state machine (the contract's shape: Check -> Done? -> Wait -> Check ... -> Signaled) whose Task is a tiny Lambda
that PUTs a signal to a WaitConditionHandle's URL; the WaitCondition waits for it in simulated time.

The handler and the watch function are this test's own (written to a temporary directory), so each stack's Mode
makes the watcher do one thing: signal SUCCESS, signal FAILURE, never signal (the 12 h timeout), or signal from
on_event before the wait condition even starts.
"""

from __future__ import annotations

import copy
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import App, CfnWaitCondition, CfnWaitConditionHandle, CustomResource, Duration, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from botocore.config import Config
from botocore.exceptions import ClientError

from cdk_cleanrooms_ml._watcher import definition as watcher_definition
from cdk_cleanrooms_ml.rehearsal.driver import Rehearsal
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from cdk_cleanrooms_ml.rehearsal.wait_conditions import Handles
from tests.helpers import ACCOUNT, REGION

HANDLER = textwrap.dedent(
    """
    import hashlib
    import json
    import os
    import time
    import urllib.request

    import boto3


    def put(url, body):
        data = json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": ""})
        urllib.request.urlopen(request, timeout=10).read()


    def on_event(event, context):
        props = event["ResourceProperties"]
        if event["RequestType"] != "Create":
            return {"PhysicalResourceId": event["PhysicalResourceId"]}
        url = props["SignalUrl"]
        if props["Mode"] == "Early":  # before the wait condition starts waiting
            put(url, {"Status": "SUCCESS", "Reason": "early", "UniqueId": "early", "Data": "from on_event"})
            return {"PhysicalResourceId": "model-1"}
        client = boto3.client("stepfunctions")
        name = "am-" + hashlib.sha256(url.encode()).hexdigest()[:60]
        started = {
            "Mode": props["Mode"], "SignalUrl": url, "UniqueId": event["LogicalResourceId"],
            "Deadline": time.time() + 2 * 43200,
        }
        first = client.start_execution(stateMachineArn=os.environ["WATCHER_ARN"], name=name, input=json.dumps(started))
        again = client.start_execution(stateMachineArn=os.environ["WATCHER_ARN"], name=name, input=json.dumps(started))
        try:
            client.start_execution(stateMachineArn=os.environ["WATCHER_ARN"], name=name, input="{}")
            conflict = "none"
        except client.exceptions.ExecutionAlreadyExists:
            conflict = "ExecutionAlreadyExists"
        same = first["executionArn"] == again["executionArn"]
        return {"PhysicalResourceId": "model-1", "Data": {"Same": str(same), "Conflict": conflict}}


    def watch(event, context):
        checks = event.get("Checks", 0) + 1
        out = {**event, "Checks": checks, "At": time.time()}
        signal = {"UniqueId": event["UniqueId"]}
        if event["Mode"] == "Success" and checks >= 3:
            put(event["SignalUrl"], {**signal, "Status": "SUCCESS", "Reason": "ACTIVE", "Data": "ACTIVE"})
            return {**out, "Done": True}
        if event["Mode"] == "Failure" and checks >= 2:
            put(event["SignalUrl"], {**signal, "Status": "FAILURE", "Reason": "model is CREATE_FAILED", "Data": ""})
            return {**out, "Done": True}
        if time.time() > event["Deadline"]:
            return {**out, "Done": True}
        return {**out, "Done": False, "WaitSeconds": 300}
    """
)
MODES = ("Success", "Failure", "Timeout", "Early", "Denied")
TWELVE_HOURS = 43_200


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    code = tmp_path_factory.mktemp("wait-handler")
    (code / "handler.py").write_text(HANDLER)
    out = tmp_path_factory.mktemp("wait-cdk-out")
    app = App(outdir=str(out))
    for mode in MODES:
        stack = Stack(app, mode, env=Environment(account=ACCOUNT, region=REGION))

        def function(entry: str, scope: Stack = stack) -> lambda_.Function:
            return lambda_.Function(
                scope,
                entry,
                runtime=lambda_.Runtime.PYTHON_3_12,
                code=lambda_.Code.from_asset(str(code)),
                handler=f"handler.{entry}",
                timeout=Duration.seconds(30),
                # A role without AWS-managed policies: the rehearsal can judge its calls (iam.role_statements).
                role=iam.Role(scope, f"{entry}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")),
            )

        watch, on_event = function("watch"), function("on_event")
        role = iam.Role(stack, "WatcherRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        machine = sfn.CfnStateMachine(
            stack, "Watcher", role_arn=role.role_arn, definition=watcher_definition(watch.function_arn)
        )
        on_event.add_environment("WATCHER_ARN", machine.attr_arn)
        if mode != "Denied":
            on_event.add_to_role_policy(
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine.attr_arn])
            )
        provider = cr.Provider(stack, "Provider", on_event_handler=on_event)
        handle = CfnWaitConditionHandle(stack, "Handle")
        model = CustomResource(
            stack, "Model", service_token=provider.service_token, properties={"SignalUrl": handle.ref, "Mode": mode}
        )
        condition = CfnWaitCondition(
            stack, "Trained", handle=handle.ref, count=1, timeout=str(TWELVE_HOURS if mode == "Timeout" else 3600)
        )
        condition.node.add_dependency(model)
    app.synth()
    return out


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as started:
        yield started


def logical_id(rehearsal: Rehearsal, resource_type: str) -> str:
    (found,) = rehearsal.logical_ids(resource_type)
    return found


def test_a_success_signal_completes_the_wait_condition_after_the_watchers_checks(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "Success", endpoint=endpoint) as stack:
        created = stack.create()
        assert created.status == "CREATE_COMPLETE", created.reason
        model = created.result(logical_id(stack, "AWS::CloudFormation::CustomResource"), "Create")
        # StartExecution is idempotent by name and input; another input under the name is refused.
        assert model.data == {"Same": "True", "Conflict": "ExecutionAlreadyExists"}
        # The handler's StartExecution was judged against its role (which grants it), not waved through.
        assert not [step for step in stack.steps if step.kind == "iam" and "StartExecution" in step.message]
        condition = created.result(logical_id(stack, "AWS::CloudFormation::WaitCondition"), "Create")
        assert json.loads(condition.data["Data"]) == {model.logical_id: "ACTIVE"}
        assert stack.settle_executions()
        (execution,) = stack.executions()
        assert execution.status == "SUCCEEDED" and execution.result is not None
        assert execution.result.output["Checks"] == 3
        # Three checks, 300 simulated seconds apart, before the signal: the stack waited ~600 s of simulated time.
        assert 600 <= created.seconds < 700
        assert stack.delete().status == "DELETE_COMPLETE"
        # The handle went with the stack: its URL takes no more signals.
        assert stack.cloud.handles.by_url(str(condition.data)) is None


def test_a_failure_signal_fails_the_wait_condition_with_its_reason_and_rolls_back(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "Failure", endpoint=endpoint) as stack:
        created = stack.create()
        assert created.status == "ROLLBACK_COMPLETE"
        model_id = logical_id(stack, "AWS::CloudFormation::CustomResource")
        assert "WaitCondition received failed message: 'model is CREATE_FAILED' for uniqueId: " + model_id in (
            created.reason
        )
        assert created.result(model_id, "Delete", rollback=True).status == "SUCCESS"
        assert not stack.deployed


def test_a_twelve_hour_timeout_passes_in_simulated_time_and_rolls_back(cdk_out: Path, endpoint: Endpoint) -> None:
    began = time.monotonic()
    with Rehearsal(cdk_out, "Timeout", endpoint=endpoint) as stack:
        created = stack.create()
        assert created.status == "ROLLBACK_COMPLETE"
        assert "WaitCondition timed out. Received 0 conditions when expecting 1" in created.reason
        assert created.seconds >= TWELVE_HOURS
        # The watcher went on after the stack gave up, until the rollback had deleted its function.
        assert stack.settle_executions()
        (execution,) = stack.executions()
        assert execution.result is not None
        assert (execution.status, execution.result.error) == ("FAILED", "Lambda.ResourceNotFoundException")
    assert time.monotonic() - began < 120  # 12 h (and 288 checks) cost seconds, not hours


def test_a_signal_sent_before_the_wait_condition_starts_counts(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Early", endpoint=endpoint) as stack:
        created = stack.create()
        assert created.status == "CREATE_COMPLETE", created.reason
        condition = created.result(logical_id(stack, "AWS::CloudFormation::WaitCondition"), "Create")
        assert json.loads(condition.data["Data"]) == {"early": "from on_event"}
        assert not stack.executions()


def test_start_execution_is_judged_against_the_calling_functions_role(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Denied", endpoint=endpoint) as stack:
        created = stack.create()
        assert created.status == "ROLLBACK_COMPLETE"
        assert "AccessDeniedException" in created.reason and "states:StartExecution" in created.reason
        assert not stack.executions()


def test_an_update_that_changes_a_wait_conditions_properties_fails_and_rolls_back(
    cdk_out: Path, endpoint: Endpoint
) -> None:
    with Rehearsal(cdk_out, "Early", endpoint=endpoint) as stack:
        assert stack.create().status == "CREATE_COMPLETE"
        template = copy.deepcopy(stack.template)
        template["Resources"][logical_id(stack, "AWS::CloudFormation::WaitCondition")]["Properties"]["Timeout"] = "60"
        updated = stack.update(template)
        assert updated.status == "UPDATE_ROLLBACK_COMPLETE"
        assert "Timeout changed" in updated.reason and "Updates aren't supported" in updated.reason


def test_the_local_step_functions_refuses_as_the_service_does(cdk_out: Path, endpoint: Endpoint) -> None:
    with Rehearsal(cdk_out, "Early", endpoint=endpoint) as stack:
        assert stack.create().status == "CREATE_COMPLETE"
        client = boto3.client(
            "stepfunctions",
            endpoint_url=stack.cloud.url,
            region_name=REGION,
            aws_access_key_id="AKIATEST",
            aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 1}),
        )
        machine = stack.deployed[logical_id(stack, "AWS::StepFunctions::StateMachine")].physical_id
        unknown = machine + "-gone"
        with pytest.raises(ClientError) as missing:
            client.start_execution(stateMachineArn=unknown, input="{}")
        assert missing.value.response["Error"]["Code"] == "StateMachineDoesNotExist"
        with pytest.raises(ClientError) as large:
            client.start_execution(stateMachineArn=machine, input=json.dumps({"x": "y" * 262_144}))
        assert large.value.response["Error"]["Code"] == "ValidationException"
        with pytest.raises(ClientError) as bad_name:
            client.start_execution(stateMachineArn=machine, name="a/b", input="{}")
        assert bad_name.value.response["Error"]["Code"] == "InvalidName"
        # A closed execution's name is taken, even with the same input.
        given = json.dumps({"Mode": "Timeout", "SignalUrl": "http://x", "UniqueId": "u", "Deadline": 0})
        started = client.start_execution(stateMachineArn=machine, name="once", input=given)
        assert stack.settle_executions()
        described = client.describe_execution(executionArn=started["executionArn"])
        assert described["status"] == "SUCCEEDED" and json.loads(described["output"])["Checks"] == 1
        with pytest.raises(ClientError) as taken:
            client.start_execution(stateMachineArn=machine, name="once", input=given)
        assert taken.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
        assert taken.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_close_aborts_a_running_execution_and_leaves_no_thread(cdk_out: Path, endpoint: Endpoint) -> None:
    stack = Rehearsal(cdk_out, "Early", endpoint=endpoint)
    try:
        assert stack.create().status == "CREATE_COMPLETE"
        client = boto3.client(
            "stepfunctions",
            endpoint_url=stack.cloud.url,
            region_name=REGION,
            aws_access_key_id="AKIATEST",
            aws_secret_access_key="x",
        )
        machine = stack.deployed[logical_id(stack, "AWS::StepFunctions::StateMachine")].physical_id
        # A watcher whose deadline is far away: in real time it would loop for a day.
        stack.real_time = True
        stack._begin("IDLE")  # a real clock: the execution's waits are real (300 s each)
        given = json.dumps({"Mode": "Timeout", "SignalUrl": "http://x", "UniqueId": "u", "Deadline": 4e9})
        client.start_execution(stateMachineArn=machine, name="long", input=given)
        time.sleep(0.5)
        (running,) = stack.cloud.running()
    finally:
        began = time.monotonic()
        stack.close()
    assert time.monotonic() - began < 10
    assert running.status == "ABORTED" and running.thread is not None and not running.thread.is_alive()


def test_count_distinct_unique_ids_and_a_resent_id_replaces() -> None:
    handles = Handles()
    handle = handles.create("Stack/Handle")
    path = handle.url.removeprefix(handles.base_url)

    def put(body: Any) -> None:
        handles.put(path, json.dumps(body).encode())

    put({"Status": "SUCCESS", "UniqueId": "a", "Data": "1", "Reason": ""})
    put({"Status": "SUCCESS", "UniqueId": "a", "Data": "2", "Reason": ""})
    assert handles.verdict(handle, 2).status == "WAITING"
    handles.put(path, b"not json")  # no signal: ignored
    put({"Status": "SUCCESS", "UniqueId": "b", "Data": "3", "Reason": ""})
    verdict = handles.verdict(handle, 2)
    assert verdict.status == "SUCCESS" and json.loads(verdict.data) == {"a": "2", "b": "3"} and handle.ignored == 1
    put({"Status": "FAILURE", "UniqueId": "c", "Reason": "broken"})
    assert handles.verdict(handle, 2).reason == "WaitCondition received failed message: 'broken' for uniqueId: c"
