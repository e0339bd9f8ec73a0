"""The audience model's wait beyond a custom resource's hour, handler side: the watcher start when a step completes,
and the watch task that signals the WaitCondition.

The model is served by the local endpoint (real boto3 clients, real HTTP); Step Functions' StartExecution is
scripted with botocore's Stubber on the handler's real client (the local Step Functions stand-in belongs to the
rehearsal); the WaitCondition's presigned URL is a local HTTP server that records each PUT.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import engine
import pytest
import watcher
from botocore.stub import ANY, Stubber

import entrypoints
import properties
import service
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint
from tests.helpers import ACCOUNT, REGION
from tests.test_engine_audience_model import AUDIENCE_MODEL, PREFIX, props, started, train
from tests.test_engine_pipeline import MODEL, deploy, local_endpoint, model_props, typed, update

WATCHER_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:CleanRoomsMlAudienceModelWatcher"
SIGNAL_URL = (
    "https://cloudformation-waitcondition-us-east-1.s3.amazonaws.com/arn%3Aaws%3Acloudformation?X-Amz-Signature=s3cr3t"
)
OTHER_SIGNAL_URL = SIGNAL_URL.replace("s3cr3t", "an0ther")


# --------------------------------------------------------------------------------------------------
# Fixtures: the endpoint, Step Functions stubbed, a signal receiver


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    with local_endpoint(monkeypatch) as started_endpoint:
        monkeypatch.setenv(watcher.WATCHER_ARN_ENV, WATCHER_ARN)
        yield started_endpoint


class StepFunctions:
    """The handler's Step Functions client, stubbed; ``started`` holds each StartExecution's parameters."""

    def __init__(self, stubber: Stubber) -> None:
        self.stubber = stubber
        self.started: list[dict[str, Any]] = []

    def accepts(self) -> None:
        self.stubber.add_response(
            "start_execution",
            {"executionArn": WATCHER_ARN.replace("stateMachine", "execution") + ":x", "startDate": datetime.now()},
            {"stateMachineArn": WATCHER_ARN, "name": ANY, "input": ANY},
        )

    def refuses(self, code: str, status: int = 400) -> None:
        self.stubber.add_client_error("start_execution", code, f"{code} (scripted)", status)

    def input(self, index: int = -1) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.started[index]["input"])
        return loaded


@pytest.fixture
def sfn(endpoint: Endpoint) -> Iterator[StepFunctions]:
    client = service.client("stepfunctions", REGION)
    stubbed = StepFunctions(Stubber(client))
    client.meta.events.register(
        "before-parameter-build.sfn.StartExecution", lambda params, **_: stubbed.started.append(dict(params))
    )
    with stubbed.stubber:
        yield stubbed
        stubbed.stubber.assert_no_pending_responses()


class SignalReceiver:
    """A WaitConditionHandle's URL, locally: records each PUT (headers and JSON body), answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append((dict(self.headers.items()), json.loads(body)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/signal?X-Amz-Signature=s3cr3t"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for _headers, body in self.received]


@pytest.fixture
def signals() -> Iterator[SignalReceiver]:
    receiver = SignalReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def waiting(**changes: Any) -> dict[str, Any]:
    """An audience model's properties as a construct with wait_for_completion=True writes them."""
    return props(**{"WaitForCompletion": "false", "SignalUrl": SIGNAL_URL, "SignalTimeoutSeconds": "43200", **changes})


# --------------------------------------------------------------------------------------------------
# The start, when a step completes


def test_a_create_with_a_signal_url_starts_the_watcher_once_and_answers_while_the_model_trains(
    endpoint: Endpoint, sfn: StepFunctions
) -> None:
    endpoint.set_training_reads(f"{PREFIX}-*", 50)
    sfn.accepts()
    before = time.time()
    done = deploy(typed(AUDIENCE_MODEL, "Create", waiting(SignalTimeoutSeconds="7200")), polls=1)
    arn = done["PhysicalResourceId"]
    assert done["Data"]["Status"] in ("CREATE_PENDING", "CREATE_IN_PROGRESS")  # the step never waits for training
    (start,) = sfn.started
    assert start["stateMachineArn"] == WATCHER_ARN
    assert start["name"] == "am-" + hashlib.sha256(f"{arn}|{SIGNAL_URL}".encode()).hexdigest()[:60]
    watch_input = sfn.input()
    assert {k: v for k, v in watch_input.items() if k != "Deadline"} == {
        "Arn": arn,
        "Region": REGION,
        "SignalUrl": SIGNAL_URL,
        "UniqueId": "Thing1234",
    }
    assert int(before) + 7200 <= watch_input["Deadline"] <= time.time() + 7200


def test_a_create_without_a_signal_url_starts_nothing(endpoint: Endpoint, sfn: StepFunctions) -> None:
    done = deploy(typed(AUDIENCE_MODEL, "Create", props(WaitForCompletion="false")), polls=1)
    assert done["IsComplete"] and sfn.started == []  # the Stubber would refuse an unscripted call


def test_a_repeated_start_has_the_same_name_and_an_existing_execution_is_success(
    endpoint: Endpoint, sfn: StepFunctions
) -> None:
    """Step Functions answers ExecutionAlreadyExists for a name it ran with another input (the deadline moved)."""
    sfn.accepts()
    sfn.refuses("ExecutionAlreadyExists")
    merged = started(typed(AUDIENCE_MODEL, "Create", waiting()))
    first, again = entrypoints.is_complete(merged), entrypoints.is_complete(merged)  # a poll the framework retried
    assert first["IsComplete"] and again["IsComplete"]
    assert first["PhysicalResourceId"] == again["PhysicalResourceId"] == merged["PhysicalResourceId"]
    assert sfn.started[0]["name"] == sfn.started[1]["name"]


def test_a_transient_start_error_polls_again_until_it_goes_through(endpoint: Endpoint, sfn: StepFunctions) -> None:
    sfn.refuses("ThrottlingException")
    sfn.refuses("ServiceUnavailable", 503)
    sfn.accepts()
    merged = started(typed(AUDIENCE_MODEL, "Create", waiting()))
    assert [entrypoints.is_complete(merged)["IsComplete"] for _ in range(3)] == [False, False, True]
    assert len(sfn.started) == 3 and len({s["name"] for s in sfn.started}) == 1


def test_a_start_throttled_until_the_deadline_fails_the_step(endpoint: Endpoint, sfn: StepFunctions) -> None:
    sfn.refuses("ThrottlingException")
    merged = started(typed(AUDIENCE_MODEL, "Create", waiting(TimeoutSeconds="60")))
    merged[engine.STARTED_AT] -= 61
    with pytest.raises(engine.ResourceError, match="timed out after waiting .* kept answering ThrottlingException"):
        entrypoints.is_complete(merged)


def test_without_a_watcher_the_step_fails_saying_so(
    endpoint: Endpoint, sfn: StepFunctions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(watcher.WATCHER_ARN_ENV)
    merged = started(typed(AUDIENCE_MODEL, "Create", waiting()))
    with pytest.raises(engine.ResourceError, match=f"no state machine ARN in {watcher.WATCHER_ARN_ENV}: the provider"):
        entrypoints.is_complete(merged)
    assert sfn.started == []


def test_a_start_refused_on_a_replacing_update_discards_the_new_model(endpoint: Endpoint, sfn: StepFunctions) -> None:
    sfn.accepts()
    old = waiting()
    arn = deploy(typed(AUDIENCE_MODEL, "Create", old))["PhysicalResourceId"]
    sfn.refuses("AccessDeniedException")
    new = waiting(description="another window", SignalUrl=OTHER_SIGNAL_URL)  # a new model: a new handle
    merged = started(update(AUDIENCE_MODEL, new, old, arn))
    replacement = merged["PhysicalResourceId"]
    assert replacement != arn
    with pytest.raises(engine.ResourceError, match="AccessDeniedException: .* the handler role needs states:StartExec"):
        entrypoints.is_complete(merged)
    assert sfn.input()["Arn"] == replacement and sfn.input()["SignalUrl"] == OTHER_SIGNAL_URL
    assert endpoint.audience_model(replacement)["status"].startswith("DELETE")  # type: ignore[index]
    assert not endpoint.audience_model(arn)["status"].startswith("DELETE")  # type: ignore[index]


def test_a_replacing_update_starts_the_watcher_of_the_new_model(endpoint: Endpoint, sfn: StepFunctions) -> None:
    sfn.accepts()
    old = waiting()
    arn = deploy(typed(AUDIENCE_MODEL, "Create", old))["PhysicalResourceId"]
    sfn.accepts()
    new = waiting(trainingDataStartTime="2026-02-01T00:00:00Z", SignalUrl=OTHER_SIGNAL_URL)
    replacement = deploy(update(AUDIENCE_MODEL, new, old, arn))["PhysicalResourceId"]
    assert replacement != arn and [s["Arn"] for s in map(json.loads, (s["input"] for s in sfn.started))] == [
        arn,
        replacement,
    ]


def test_a_tags_only_update_starts_nothing_and_a_new_signal_url_in_place_starts_the_watcher(
    endpoint: Endpoint, sfn: StepFunctions
) -> None:
    sfn.accepts()
    old = waiting()
    arn = deploy(typed(AUDIENCE_MODEL, "Create", old))["PhysicalResourceId"]
    retagged = waiting(tags={"team": "ads"})
    assert deploy(update(AUDIENCE_MODEL, retagged, old, arn))["PhysicalResourceId"] == arn
    assert len(sfn.started) == 1
    # wait_for_completion turned on for a model that exists: the same model, a new WaitCondition to signal.
    plain = props(WaitForCompletion="false")
    arn2 = deploy({**typed(AUDIENCE_MODEL, "Create", plain), "LogicalResourceId": "Other5678"})["PhysicalResourceId"]
    sfn.accepts()
    deploy({**update(AUDIENCE_MODEL, waiting(), plain, arn2), "LogicalResourceId": "Other5678"})
    assert len(sfn.started) == 2 and sfn.input()["Arn"] == arn2 and sfn.input()["UniqueId"] == "Other5678"


def test_an_update_of_a_model_deleted_meanwhile_starts_the_watcher_only_for_a_new_signal_url(
    endpoint: Endpoint, sfn: StepFunctions
) -> None:
    """The watcher then signals the new WaitCondition FAILURE (NOT_FOUND) at once, rather than letting it time out."""
    plain = props(WaitForCompletion="false")
    arn = deploy(typed(AUDIENCE_MODEL, "Create", plain))["PhysicalResourceId"]
    endpoint.remove_audience_model(arn)
    sfn.accepts()
    done = deploy(update(AUDIENCE_MODEL, waiting(), plain, arn))
    assert done["PhysicalResourceId"] == arn and done["Data"]["Status"] == "NOT_FOUND"
    assert [json.loads(s["input"])["Arn"] for s in sfn.started] == [arn]
    # The same SignalUrl as before (a tags-only update): its watcher was started with it; nothing new to start.
    done = deploy(update(AUDIENCE_MODEL, waiting(tags={"team": "ads"}), waiting(), arn))
    assert done["Data"]["Status"] == "NOT_FOUND" and len(sfn.started) == 1


def test_a_delete_starts_nothing(endpoint: Endpoint, sfn: StepFunctions) -> None:
    sfn.accepts()
    arn = deploy(typed(AUDIENCE_MODEL, "Create", waiting()))["PhysicalResourceId"]
    deploy(typed(AUDIENCE_MODEL, "Delete", waiting(), PhysicalResourceId=arn))
    assert len(sfn.started) == 1 and endpoint.audience_model(arn)["status"].startswith("DELETE")  # type: ignore[index]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"SignalUrl": "http://example.com/signal"}, "SignalUrl must be an https URL"),
        ({"SignalUrl": "ftp://example.com/signal"}, "SignalUrl must be an https URL"),
        ({"SignalUrl": "https:///no-host"}, "SignalUrl must be an https URL"),
        ({"SignalUrl": ["https://example.com"]}, "SignalUrl must be a URL string"),
        ({"SignalTimeoutSeconds": "0"}, "SignalTimeoutSeconds must be between 1 and 43200"),
        ({"SignalTimeoutSeconds": "43201"}, "SignalTimeoutSeconds must be between 1 and 43200"),
        ({"SignalTimeoutSeconds": "12h"}, "SignalTimeoutSeconds must be a whole number of seconds"),
    ],
)
def test_malformed_signal_properties_are_refused_before_any_call(
    endpoint: Endpoint, given: dict[str, Any], message: str
) -> None:
    with pytest.raises(properties.PropertyError, match=message) as raised:
        entrypoints.on_event(typed(AUDIENCE_MODEL, "Create", {**waiting(), **given}))
    assert "example.com" not in str(raised.value) and endpoint.calls == []  # the URL is a credential


def test_signal_properties_are_control_properties_never_sent(endpoint: Endpoint, sfn: StepFunctions) -> None:
    sfn.accepts()
    deploy(typed(AUDIENCE_MODEL, "Create", waiting()))
    (create,) = [c for c in endpoint.calls if c.operation == "CreateAudienceModel"]
    assert not {"SignalUrl", "SignalTimeoutSeconds"} & set(create.params)
    _, control = properties.split(waiting())
    assert control.signal_url == SIGNAL_URL and control.signal_timeout_seconds == 43200


def test_a_signal_url_on_another_type_is_refused(endpoint: Endpoint) -> None:
    trained = endpoint.add_audience_model("trained")
    with pytest.raises(properties.PropertyError, match="SignalUrl is for resources a WaitCondition waits for"):
        entrypoints.on_event(typed(MODEL, "Create", model_props(audienceModelArn=trained, SignalUrl=SIGNAL_URL)))
    assert endpoint.count("CreateConfiguredAudienceModel") == 0


# --------------------------------------------------------------------------------------------------
# The watch task


def watch_event(arn: str, url: str, deadline: float | None = None, **changes: Any) -> dict[str, Any]:
    base = {
        "Arn": arn,
        "Region": REGION,
        "SignalUrl": url,
        "UniqueId": "Lookalike1234",
        "Deadline": int(time.time()) + 3600 if deadline is None else deadline,
    }
    return {**base, **changes}


def test_an_active_model_is_signaled_success(endpoint: Endpoint, signals: SignalReceiver) -> None:
    arn = endpoint.add_audience_model("trained")
    event = watch_event(arn, signals.url)
    answer = entrypoints.watch(event, None)
    assert answer == {**event, "Done": True, "WaitSeconds": 0}
    ((headers, body),) = signals.received
    assert body == {
        "Status": "SUCCESS",
        "Reason": f"audience model {arn} is ACTIVE",
        "UniqueId": "Lookalike1234",
        "Data": "ACTIVE",
    }
    assert headers.get("Content-Type") == ""  # as cfn-response sends it: the presigned signature covers none


def test_a_failed_training_is_signaled_failure_with_the_services_details(
    endpoint: Endpoint, signals: SignalReceiver
) -> None:
    endpoint.fail_training("failing", "fewer than 100,000 users have 2 or more interactions", "400")
    arn = endpoint.add_audience_model("failing", status="CREATE_IN_PROGRESS")
    event = watch_event(arn, signals.url)
    answers = [watcher.watch(event) for _ in range(2)]
    assert [a["Done"] for a in answers] == [False, True]
    (body,) = signals.bodies
    assert body["Status"] == "FAILURE" and body["Data"] == "CREATE_FAILED"
    assert body["Reason"] == (
        f"audience model {arn} is CREATE_FAILED (400): fewer than 100,000 users have 2 or more interactions"
    )


def test_a_model_that_is_gone_is_signaled_failure(endpoint: Endpoint, signals: SignalReceiver) -> None:
    arn = endpoint.add_audience_model("gone")
    endpoint.remove_audience_model(arn)
    assert watcher.watch(watch_event(arn, signals.url))["Done"]
    (body,) = signals.bodies
    assert body["Status"] == "FAILURE" and body["Reason"] == f"audience model {arn} is NOT_FOUND: it was deleted"


def test_a_model_being_deleted_is_signaled_failure(endpoint: Endpoint, signals: SignalReceiver) -> None:
    arn = endpoint.add_audience_model("leaving", status="DELETE_PENDING")
    assert watcher.watch(watch_event(arn, signals.url))["Done"]
    assert [(b["Status"], b["Data"]) for b in signals.bodies] == [("FAILURE", "DELETE_PENDING")]


def test_a_model_still_training_waits_five_minutes_or_until_the_deadline(
    endpoint: Endpoint, signals: SignalReceiver
) -> None:
    endpoint.set_training_reads("training", 50)
    arn = endpoint.add_audience_model("training", status="CREATE_IN_PROGRESS")
    far = watcher.watch(watch_event(arn, signals.url))
    assert far["Done"] is False and far["WaitSeconds"] == watcher.POLL_SECONDS
    near = watcher.watch(watch_event(arn, signals.url, deadline=time.time() + 41.5))
    assert near["Done"] is False and near["WaitSeconds"] == 42
    almost = watcher.watch(watch_event(arn, signals.url, deadline=time.time() + 0.2))
    assert almost["WaitSeconds"] == 1
    assert signals.received == []


def test_a_model_still_training_at_the_deadline_is_signaled_failure(
    endpoint: Endpoint, signals: SignalReceiver
) -> None:
    endpoint.set_training_reads("slow", 50)
    arn = endpoint.add_audience_model("slow", status="CREATE_IN_PROGRESS")
    assert watcher.watch(watch_event(arn, signals.url, deadline=time.time() - 1))["Done"]
    (body,) = signals.bodies
    assert body["Status"] == "FAILURE" and body["Data"] == "CREATE_IN_PROGRESS"
    assert body["Reason"].startswith(f"audience model {arn} is still CREATE_IN_PROGRESS at the deadline (")


def test_a_throttled_read_waits_and_reads_again(endpoint: Endpoint, signals: SignalReceiver) -> None:
    arn = endpoint.add_audience_model("trained")
    endpoint.throttle("GetAudienceModel", 1)
    event = watch_event(arn, signals.url)
    first = watcher.watch(event)
    assert first["Done"] is False and 1 <= first["WaitSeconds"] <= watcher.POLL_SECONDS and signals.received == []
    assert watcher.watch(first)["Done"] and [b["Status"] for b in signals.bodies] == ["SUCCESS"]


def test_a_read_refused_for_good_is_signaled_failure_at_once(endpoint: Endpoint, signals: SignalReceiver) -> None:
    arn = endpoint.add_audience_model("trained")
    endpoint.deny("GetAudienceModel")
    assert watcher.watch(watch_event(arn, signals.url))["Done"]
    (body,) = signals.bodies
    assert body["Status"] == "FAILURE" and body["Reason"].startswith(f"audience model {arn} cannot be read: Access")


def test_a_failed_put_raises_without_naming_the_url(endpoint: Endpoint, signals: SignalReceiver) -> None:
    arn = endpoint.add_audience_model("trained")
    signals.status = 403
    with pytest.raises(watcher.SignalError, match="HTTP 403") as raised:
        watcher.watch(watch_event(arn, signals.url))
    assert "s3cr3t" not in str(raised.value) and "127.0.0.1" not in str(raised.value)
    signals.server.shutdown()
    signals.server.server_close()
    with pytest.raises(watcher.SignalError, match="could not be sent") as raised:
        watcher.watch(watch_event(arn, signals.url))
    assert "s3cr3t" not in str(raised.value)


def test_the_state_machine_loop_signals_once_the_model_is_trained_and_logs_never_hold_the_url(
    endpoint: Endpoint, sfn: StepFunctions, signals: SignalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Start on Create, then the Check/Wait loop as the state machine runs it (its waits not waited)."""
    caplog.set_level(logging.DEBUG, logger="cdk_cleanrooms_ml")
    endpoint.set_training_reads(f"{PREFIX}-*", 3)
    sfn.accepts()
    merged = started(typed(AUDIENCE_MODEL, "Create", waiting(SignalUrl=signals.url)))
    assert entrypoints.is_complete(merged)["IsComplete"]
    state = sfn.input()
    checks = 0
    while True:
        checks += 1
        state = entrypoints.watch(state, None)
        if state["Done"]:
            break
        assert state["WaitSeconds"] == watcher.POLL_SECONDS and checks < 10
    assert checks >= 2 and [b["Status"] for b in signals.bodies] == ["SUCCESS"]
    assert signals.bodies[0]["UniqueId"] == "Thing1234"
    logged = [r.getMessage() for r in caplog.records if r.name == "cdk_cleanrooms_ml"]
    assert any("signaled SUCCESS" in line for line in logged)
    assert not any("s3cr3t" in line or str(signals.server.server_address[1]) in line for line in logged)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Arn": f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/x"}, "Arn must be an audience"),
        ({"Arn": "not an arn"}, "Arn must be an audience model ARN"),
        ({"Region": "eu-west-1"}, r"Region must be the region of its Arn \(us-east-1\)"),
        ({"SignalUrl": "http://example.com/x"}, "SignalUrl must be an https URL"),
        ({"SignalUrl": None}, "SignalUrl must be a URL string"),
        ({"Deadline": "tomorrow"}, "Deadline must be a number"),
        ({"Deadline": True}, "Deadline must be a number"),
        ({"UniqueId": ""}, "UniqueId must be a non-empty string"),
    ],
)
def test_a_malformed_watch_event_fails_before_any_call(
    endpoint: Endpoint, signals: SignalReceiver, changes: dict[str, Any], message: str
) -> None:
    arn = endpoint.add_audience_model("trained")
    with pytest.raises(watcher.WatchEventError, match=message):
        watcher.watch(watch_event(arn, signals.url, **changes))
    assert endpoint.calls == [] and signals.received == []


def test_a_watch_event_that_is_not_an_object_fails(endpoint: Endpoint) -> None:
    with pytest.raises(watcher.WatchEventError, match="must be an object"):
        entrypoints.watch(["Arn"], None)


def test_a_model_trained_after_the_start_is_seen_by_the_configured_model(
    endpoint: Endpoint, sfn: StepFunctions, signals: SignalReceiver
) -> None:
    """The order a stack with a waiting model runs: model (start), WaitCondition (signal), configured model."""
    endpoint.set_training_reads(f"{PREFIX}-*", 2)
    sfn.accepts()
    arn = deploy(typed(AUDIENCE_MODEL, "Create", waiting(SignalUrl=signals.url)))["PhysicalResourceId"]
    train(endpoint, arn)
    assert watcher.watch(sfn.input())["Done"] and signals.bodies[0]["Status"] == "SUCCESS"
    done = deploy(typed(MODEL, "Create", model_props(audienceModelArn=arn)))
    assert endpoint.configured_model(done["PhysicalResourceId"])["audienceModelArn"] == arn  # type: ignore[index]


# --------------------------------------------------------------------------------------------------
# What the watcher says: its messages, its signals' Data, its logs (mutation testing asked for each)


A_MODEL = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/model"
NO_WATCHER = (
    ": the provider was made without the audience model watcher. Deploy the stack with this library's "
    "AudienceModel construct (it adds the watcher to its provider), or set wait_for_completion=False."
)


@pytest.mark.parametrize(
    ("value", "detail"), [(None, ""), ("CleanRoomsMlAudienceModelWatcher", " (its value is not a state machine ARN)")]
)
def test_without_a_state_machine_arn_the_start_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, value: str | None, detail: str
) -> None:
    if value is None:
        monkeypatch.delenv(watcher.WATCHER_ARN_ENV, raising=False)
    else:
        monkeypatch.setenv(watcher.WATCHER_ARN_ENV, value)
    with pytest.raises(watcher.WatcherError) as raised:
        watcher.start(A_MODEL, SIGNAL_URL, "Thing1234", 3600)
    assert str(raised.value) == (
        f"the audience model {A_MODEL} is waited for (SignalUrl is set: wait_for_completion=True), but the "
        f"handler's environment has no state machine ARN in {watcher.WATCHER_ARN_ENV}{detail}{NO_WATCHER}"
    )


@pytest.mark.parametrize(
    ("code", "needs"),
    [("AccessDeniedException", " -- the handler role needs states:StartExecution on it"), ("InvalidName", "")],
)
def test_a_start_refused_for_good_names_the_state_machine_and_what_the_role_needs(
    sfn: StepFunctions, code: str, needs: str
) -> None:
    sfn.refuses(code)
    model = A_MODEL
    with pytest.raises(watcher.WatcherError) as raised:
        watcher.start(model, SIGNAL_URL, "Thing1234", 3600)
    assert str(raised.value) == (
        f"starting the watcher of audience model {model} ({WATCHER_ARN}) failed: {code}: {code} (scripted){needs}"
    )


def test_a_start_and_a_repeated_one_are_logged_with_the_execution_name(
    sfn: StepFunctions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdk_cleanrooms_ml")
    sfn.accepts()
    sfn.refuses("ExecutionAlreadyExists")
    model = A_MODEL
    name = watcher.execution_name(model, SIGNAL_URL)
    watcher.start(model, SIGNAL_URL, "Thing1234", 3600)
    watcher.start(model, SIGNAL_URL, "Thing1234", 3600)
    assert caplog.messages[-2:] == [
        f"started the watcher of {model} (execution {name}, deadline in 3600 s)",
        f"the watcher of {model} is started already (execution {name})",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Arn": "not an arn"}, "the watch event's Arn must be an audience model ARN, not 'not an arn'"),
        (
            {"Region": "eu-west-1"},
            "the watch event's Region must be the region of its Arn (us-east-1), not 'eu-west-1'",
        ),
        ({"Region": 5}, "the watch event's Region must be the region of its Arn (us-east-1), not 5"),
        ({"UniqueId": ""}, "the watch event's UniqueId must be a non-empty string"),
        ({"Deadline": "soon"}, "the watch event's Deadline must be a number (epoch seconds), not 'soon'"),
        # A value is shown whole up to 80 characters of its repr, else by its first 77 and "...".
        ({"Arn": "a" * 78}, f"the watch event's Arn must be an audience model ARN, not '{'a' * 78}'"),
        ({"Arn": "a" * 79}, f"the watch event's Arn must be an audience model ARN, not '{'a' * 76}..."),
    ],
)
def test_a_malformed_watch_event_is_named_exactly(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(watcher.WatchEventError) as raised:
        watcher.checked(watch_event(A_MODEL, SIGNAL_URL, **changes))
    assert str(raised.value) == message
    with pytest.raises(watcher.WatchEventError) as raised:
        watcher.checked(["Arn"])
    assert str(raised.value) == "the watch event must be an object"


def test_each_signal_carries_the_status_or_error_code_as_its_data(
    endpoint: Endpoint, signals: SignalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdk_cleanrooms_ml")
    arn = endpoint.add_audience_model("trained")
    watcher.watch(watch_event(arn, signals.url))
    assert f"audience model {arn} is ACTIVE" in caplog.messages
    assert f"signaled SUCCESS for audience model {arn}" in caplog.messages
    gone = endpoint.add_audience_model("gone")
    endpoint.remove_audience_model(gone)
    watcher.watch(watch_event(gone, signals.url))
    endpoint.deny("GetAudienceModel")
    watcher.watch(watch_event(arn, signals.url))
    assert [(b["Status"], b["Data"]) for b in signals.bodies] == [
        ("SUCCESS", "ACTIVE"),
        ("FAILURE", "NOT_FOUND"),
        ("FAILURE", "AccessDeniedException"),
    ]


def test_a_read_still_throttled_at_the_deadline_is_signaled_failure_naming_the_error(
    endpoint: Endpoint, signals: SignalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdk_cleanrooms_ml")
    arn = endpoint.add_audience_model("trained")
    endpoint.throttle("GetAudienceModel", 2)
    assert watcher.watch(watch_event(arn, signals.url))["Done"] is False
    assert f"reading audience model {arn}: ThrottlingException; reading it again later" in caplog.messages
    event = watch_event(arn, signals.url, deadline=time.time() - 1)
    assert watcher.watch(event) == {**event, "Done": True, "WaitSeconds": 0}
    (body,) = signals.bodies
    assert body["Status"] == "FAILURE" and body["Data"] == "ThrottlingException"
    assert body["Reason"].startswith(f"audience model {arn} could not be read by the deadline: ThrottlingException: ")


def test_a_signal_that_cannot_be_sent_names_the_kind_of_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"Status": "SUCCESS", "Reason": "r", "UniqueId": "u", "Data": "ACTIVE"}
    with socket.socket() as closed:  # a port nobody listens on: the connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(watcher.SignalError) as raised:
        watcher.put_signal(f"http://127.0.0.1:{port}/signal?X-Amz-Signature=s3cr3t", body)
    assert str(raised.value) == "the signal could not be sent: ConnectionRefusedError"
    # A receiver that accepts the connection and never answers: the PUT gives up after its timeout (shortened here).
    monkeypatch.setattr(watcher, "PUT_TIMEOUT_SECONDS", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(watcher.SignalError) as raised:
            watcher.put_signal(f"http://127.0.0.1:{silent.getsockname()[1]}/signal", body)
    assert str(raised.value) == "the signal could not be sent: TimeoutError"


def test_the_reasons_of_a_model_leaving_and_of_the_deadline_are_exact(
    endpoint: Endpoint, signals: SignalReceiver
) -> None:
    leaving = endpoint.add_audience_model("leaving", status="DELETE_PENDING")  # no status details to add
    watcher.watch(watch_event(leaving, signals.url))
    endpoint.set_training_reads("slow", 50)
    slow = endpoint.add_audience_model("slow", status="CREATE_IN_PROGRESS")
    watcher.watch(watch_event(slow, signals.url, deadline=1_700_000_000))
    assert [b["Reason"] for b in signals.bodies] == [
        f"audience model {leaving} is DELETE_PENDING",
        f"audience model {slow} is still CREATE_IN_PROGRESS at the deadline (2023-11-14T22:13:20+00:00, "
        "SignalTimeoutSeconds after its deploy step): deploy again to wait again, or give the AudienceModel a longer "
        "timeout",
    ]
