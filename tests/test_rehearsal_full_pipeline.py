"""examples/full_pipeline.py rehearsed end to end, as its two accounts deploy it (a LOCAL rehearsal, not AWS).

The training-data provider's stack is created first: its training dataset (on paper, as CloudFormation would
make it), the audience model (CreateAudienceModel; its step ends while the model trains), the WaitCondition
signaled by the provider's watcher state machine once the model is ACTIVE, then the configured audience model
with its destination and its partner policy, then the association. **Training is compressed**: the endpoint
trains each model for ``TRAINING_SECONDS`` (6 hours) of the rehearsal's simulated clock, and the watcher's
5-minute waits pass in simulated time too, so the whole flow takes seconds. The stack's
``ConfiguredAudienceModelArn`` and ``CollaborationId`` outputs are then given as context to a new synthesis of
the app, and the seed-data provider's stack is created from it: seed -> generation job -> export.

Two accounts, two endpoints: the partner's endpoint (account 111122223333) is linked to the model owner's
(444455556666) with ``Endpoint.share_models_of``, so its StartAudienceGenerationJob on the owner's configured
model is judged by that model's resource policy (the one the training stack wrote), and refused without it.
Every handler call is judged against the handler role of the stack that makes it (``enforce_iam``).

Each flow ends with: the seed stack deleted, then the training stack; nothing left that no stack owns; no
operation wedged. The API calls of each step are counted and printed (run the module alone, ``pytest -s
tests/test_rehearsal_full_pipeline.py``); set ``FULL_PIPELINE_REPORT=<file>`` to write the table to a file too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from aws_cdk import App

from cdk_cleanrooms_ml.rehearsal import __main__ as cli
from cdk_cleanrooms_ml.rehearsal.driver import Outcome, Rehearsal
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "full_pipeline.py"
#: How long the endpoint trains an audience model, in the rehearsal's simulated clock (the user guide: hours to
#: 2 days). 6 hours: 73 reads by the watcher, 5 minutes apart (at 0 s, 300 s, ... 21,600 s).
TRAINING_SECONDS = 6 * 3600
AUDIENCE_MODEL = "Custom::CleanRoomsMlAudienceModel"
CONFIGURED = "Custom::CleanRoomsMlConfiguredAudienceModel"
ASSOCIATION = "Custom::CleanRoomsMlConfiguredAudienceModelAssociation"
JOB = "Custom::CleanRoomsMlAudienceGenerationJob"
EXPORT = "Custom::CleanRoomsMlAudienceExportJob"
WAIT_CONDITION = "AWS::CloudFormation::WaitCondition"
LIBRARY_TYPES = (AUDIENCE_MODEL, CONFIGURED, ASSOCIATION, JOB, EXPORT)

#: step -> "service:operation" -> calls; printed when the module ends.
LEDGER: dict[str, Counter[str]] = {}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cdk_cleanrooms_ml_example_full_pipeline_rehearsed", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load()


def synthesize(outdir: Path, context: dict[str, str] | None = None) -> Path:
    """The example app (both stacks), synthesized as ``cdk synth -c ...`` would with this context."""
    app = App(outdir=str(outdir), context=context or {})
    example.build(app)
    app.synth()
    return outdir


@pytest.fixture(scope="module")
def training_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield synthesize(tmp_path_factory.mktemp("full-pipeline-cdk-out"))
    if LEDGER:
        table = ledger_table()
        print("\n" + table)
        report = os.environ.get("FULL_PIPELINE_REPORT")
        if report:
            Path(report).write_text(table + "\n")


@pytest.fixture
def accounts() -> Iterator[tuple[Endpoint, Endpoint]]:
    """(the model owner's endpoint, the partner's), the partner's jobs judged by the owner's model policies."""
    with (
        Endpoint(account=example.TRAINING_ACCOUNT, region=example.REGION, training_seconds=TRAINING_SECONDS) as owner,
        Endpoint(account=example.SEED_ACCOUNT, region=example.REGION) as partner,
    ):
        partner.share_models_of(owner)
        yield owner, partner


# --------------------------------------------------------------------------------------------------
# What exists, what the stacks own, and the calls of each step


def owned(*stacks: Rehearsal) -> set[str]:
    """The physical ids of the library's resources the stacks hold."""
    return {
        deployed.physical_id
        for stack in stacks
        for deployed in stack.deployed.values()
        if deployed.resource.get("Type") in LIBRARY_TYPES and deployed.physical_id.startswith("arn:")
    }


def existing(*endpoints: Endpoint) -> set[str]:
    """What exists at the endpoints, in the physical ids' terms: resources on their way out (DELETE_*), and failed
    exports (the API has no delete; nothing runs), are not counted."""
    found: set[str] = set()
    for endpoint in endpoints:
        inventory = endpoint.inventory()
        found |= {m["arn"] for m in endpoint.audience_models() if not m["status"].startswith("DELETE")}
        found |= {m["arn"] for m in inventory["configured_models"]}
        found |= {a["arn"] for a in inventory["associations"]}
        found |= {j["arn"] for j in inventory["jobs"] if not j["status"].startswith("DELETE")}
        exports = [e for e in inventory["exports"] if e["status"] != "CREATE_FAILED"]
        found |= {f"{e['audienceGenerationJobArn']}|{e['name']}" for e in exports}
    return found


def sound(endpoints: tuple[Endpoint, ...], *stacks: Rehearsal) -> None:
    """Nothing wedged, nothing orphaned: everything that exists is one of the stacks'."""
    for stack in stacks:
        assert stack.wedged() == [], [o.reason for o in stack.wedged()]
    assert existing(*endpoints) == owned(*stacks)


class Step:
    """Counts the calls an operation makes: the endpoint's, Step Functions' StartExecution, the watcher's runs."""

    def __init__(self, name: str, endpoint: Endpoint, stack: Rehearsal) -> None:
        self.name, self.endpoint, self.stack = name, endpoint, stack

    def __enter__(self) -> Step:
        self.first = len(self.endpoint.calls)
        self.executions = len(self.stack.executions())
        self.invocations = self._invocations()
        return self

    def _invocations(self) -> Counter[str]:
        return Counter({f.spec.logical_id: f.invocations for f in self.stack.functions.values()})

    def __exit__(self, *exc: object) -> None:
        self.stack.settle_executions()
        calls = Counter(f"{c.service}:{c.operation}" for c in self.endpoint.calls[self.first :])
        started = len(self.stack.executions()) - self.executions
        if started:
            calls["states:StartExecution (executions started)"] = started
        ran = self._invocations() - self.invocations
        for function, count in ran.items():
            if function.rsplit("/", 1)[-1].startswith("WatcherFunction"):
                calls["lambda:Invoke (the watch task)"] += count
        LEDGER[self.name] = calls


def ledger_table() -> str:
    steps = list(LEDGER)
    rows = sorted({call for calls in LEDGER.values() for call in calls})
    lines = ["| call | " + " | ".join(steps) + " |", "|---" * (len(steps) + 1) + "|"]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(str(LEDGER[s].get(row, "-")) for s in steps) + " |")
    api = [sum(n for call, n in LEDGER[s].items() if not call.startswith("lambda:")) for s in steps]
    lines.append("| **API calls** (the watch task's invocations aside) | " + " | ".join(map(str, api)) + " |")
    return (
        "examples/full_pipeline.py rehearsed (LOCAL endpoints, not AWS; training compressed to "
        f"{TRAINING_SECONDS // 3600} h of simulated time), calls per step:\n" + "\n".join(lines)
    )


def only(stack: Rehearsal, resource_type: str) -> str:
    (logical_id,) = stack.logical_ids(resource_type)
    return logical_id


def created_at(stack: Rehearsal, logical_id: str) -> float:
    """The simulated second the resource's create began."""
    return next(s.at for s in stack.steps if s.logical_id == logical_id and s.message == "CREATE_IN_PROGRESS")


def completed(outcome: Outcome, stack: Rehearsal, resource_type: str) -> float:
    logical_id = only(stack, resource_type)
    return next(s.at for s in stack.steps if s.logical_id == logical_id and s.message.startswith("CREATE_COMPLETE"))


# --------------------------------------------------------------------------------------------------
# The whole flow


def test_the_whole_flow_two_deploys_two_accounts_then_both_deleted(
    training_out: Path, accounts: tuple[Endpoint, Endpoint], tmp_path: Path
) -> None:
    owner, partner = accounts
    with Rehearsal(training_out, example.TRAINING_STACK_NAME, endpoint=owner) as training:
        with Step("1. training stack: create", owner, training):
            created = training.create()
        assert created.status == "CREATE_COMPLETE", created.reason
        # The model's own step answered while it trained; the WaitCondition held the stack until it was ACTIVE.
        model = created.result(only(training, AUDIENCE_MODEL), "Create")
        assert model.data["Status"] in ("CREATE_PENDING", "CREATE_IN_PROGRESS")
        assert owner.audience_model(model.physical_id)["status"] == "ACTIVE"  # type: ignore[index]
        condition = created.result(only(training, WAIT_CONDITION), "Create")
        assert json.loads(condition.data["Data"]) == {only(training, AUDIENCE_MODEL): "ACTIVE"}
        (watcher,) = training.executions()
        assert watcher.status == "SUCCEEDED"
        # The configured model was created only after the WaitCondition completed: after the training.
        assert completed(created, training, WAIT_CONDITION) >= TRAINING_SECONDS
        assert created_at(training, only(training, CONFIGURED)) >= completed(created, training, WAIT_CONDITION)
        assert TRAINING_SECONDS <= created.seconds < TRAINING_SECONDS + 3600
        outputs = training.outputs()
        configured_arn, collaboration_id = outputs["ConfiguredAudienceModelArn"], outputs["CollaborationId"]
        assert configured_arn.split(":")[4] == example.TRAINING_ACCOUNT
        policy = owner.configured_model(configured_arn)["policy"]  # type: ignore[index]
        assert example.SEED_ACCOUNT in policy
        sound((owner, partner), training)

        # The partner's deploy: the same app synthesized with the training stack's outputs as context.
        context = {"configuredAudienceModelArn": configured_arn, "collaborationId": collaboration_id}
        seed_out = synthesize(tmp_path / "seed-cdk-out", context)
        with Rehearsal(seed_out, example.SEED_STACK_NAME, endpoint=partner) as seed:
            with Step("2. seed stack: create", partner, seed):
                seeded = seed.create()
            assert seeded.status == "CREATE_COMPLETE", seeded.reason
            job_arn = seeded.result(only(seed, JOB), "Create").physical_id
            assert job_arn.split(":")[4] == example.SEED_ACCOUNT  # the job runs in the partner's account
            job = partner.job(job_arn)
            assert job is not None and job["configuredAudienceModelArn"] == configured_arn
            (start,) = [c for c in partner.calls if c.operation == "StartAudienceGenerationJob"]
            assert start.params["collaborationId"] == collaboration_id
            # The job's metrics are for the sizes the owner's configured model offers (percentages 5, 10, 20).
            metrics = partner.client().get_audience_generation_job(audienceGenerationJobArn=job_arn)["metrics"]
            assert {m["audienceSize"]["type"] for m in metrics["relevanceMetrics"]} == {"PERCENTAGE"}
            (export,) = partner.exports(job_arn)
            assert export["status"] == "ACTIVE"
            assert seeded.result(only(seed, EXPORT), "Create").data["OutputLocation"]
            sound((owner, partner), training, seed)

            with Step("3. seed stack: delete", partner, seed):
                assert seed.delete().status == "DELETE_COMPLETE"
            sound((owner, partner), training, seed)
        with Step("4. training stack: delete", owner, training):
            deleted = training.delete()
        assert deleted.status == "DELETE_COMPLETE", deleted.reason
        sound((owner, partner), training)
        assert existing(owner, partner) == set()
    # Every call judged against its stack's handler role, none refused.
    for endpoint in (owner, partner):
        assert endpoint.count(error="AccessDeniedException") == 0
    assert LEDGER["1. training stack: create"]["cleanroomsml:GetAudienceModel"] >= TRAINING_SECONDS // 300


def test_the_partners_start_is_refused_without_the_models_policy_for_its_account(
    training_out: Path, accounts: tuple[Endpoint, Endpoint], tmp_path: Path
) -> None:
    """The cross-account start is judged, not waved through: the policy removed, the seed stack rolls back."""
    owner, partner = accounts
    with Rehearsal(training_out, example.TRAINING_STACK_NAME, endpoint=owner) as training:
        assert training.create().ok
        outputs = training.outputs()
        owner.client().delete_configured_audience_model_policy(
            configuredAudienceModelArn=outputs["ConfiguredAudienceModelArn"]
        )
        context = {
            "configuredAudienceModelArn": outputs["ConfiguredAudienceModelArn"],
            "collaborationId": outputs["CollaborationId"],
        }
        with Rehearsal(
            synthesize(tmp_path / "seed-cdk-out", context), example.SEED_STACK_NAME, endpoint=partner
        ) as seed:
            seeded = seed.create()
            assert seeded.status == "ROLLBACK_COMPLETE"
            assert "AccessDeniedException" in seeded.reason and "no resource policy" in seeded.reason
            assert partner.jobs() == []
            sound((owner, partner), training, seed)
        assert training.delete().ok
        sound((owner, partner), training)


# --------------------------------------------------------------------------------------------------
# The training stack when the training does not end well


def test_a_failed_training_signals_failure_and_the_training_stack_rolls_back(
    training_out: Path, accounts: tuple[Endpoint, Endpoint]
) -> None:
    owner, partner = accounts
    owner.fail_training(f"{example.TRAINING_STACK_NAME}-Model*", "not enough interactions per user", "400")
    with Rehearsal(training_out, example.TRAINING_STACK_NAME, endpoint=owner) as training:
        with Step("training fails: create, rollback", owner, training):
            created = training.create()
        assert created.status == "ROLLBACK_COMPLETE"
        assert "WaitCondition received failed message" in created.reason
        assert "CREATE_FAILED (400): not enough interactions per user" in created.reason
        model_id = only(training, AUDIENCE_MODEL)
        assert created.result(model_id, "Delete", rollback=True).status == "SUCCESS"
        assert not any(r.logical_id == only(training, CONFIGURED) and r.action == "Create" for r in created.results)
        assert owner.count("CreateConfiguredAudienceModel") == 0
        (watcher,) = training.executions()
        assert watcher.status == "SUCCEEDED"  # it signaled the failure, then ended
        assert not training.deployed
        sound((owner, partner), training)


def test_a_wait_condition_timeout_rolls_back_deletes_the_model_and_the_watcher_stops(
    training_out: Path, accounts: tuple[Endpoint, Endpoint], tmp_path: Path
) -> None:
    """SIMULATED: no signal comes before the WaitCondition's Timeout.

    The construct gives the watcher the WaitCondition's own deadline, so a live watcher signals FAILURE at the
    deadline before the timeout could; a timeout happens when the watcher is not running (stopped, or its function
    failing). To get one, this test cuts the WaitCondition's Timeout in a copy of the synthesized template to
    2 hours, while training takes 6 and the watcher waits up to 12."""
    owner, partner = accounts
    out = tmp_path / "timeout-cdk-out"
    shutil.copytree(training_out, out)
    template_file = out / f"{example.TRAINING_STACK_NAME}.template.json"
    template = json.loads(template_file.read_text())
    (condition,) = [r for r in template["Resources"].values() if r["Type"] == WAIT_CONDITION]
    condition["Properties"]["Timeout"] = "7200"
    template_file.write_text(json.dumps(template))
    with Rehearsal(out, example.TRAINING_STACK_NAME, endpoint=owner) as training:
        with Step("no signal: timeout, rollback", owner, training):
            created = training.create()
        assert created.status == "ROLLBACK_COMPLETE"
        assert "WaitCondition timed out. Received 0 conditions when expecting 1" in created.reason
        assert 7200 <= created.seconds < TRAINING_SECONDS
        model_id = only(training, AUDIENCE_MODEL)
        model_arn = created.result(model_id, "Create").physical_id
        assert created.result(model_id, "Delete", rollback=True).status == "SUCCESS"
        assert owner.count("DeleteAudienceModel") == 1 and owner.count("CreateConfiguredAudienceModel") == 0
        held = owner.audience_model(model_arn)
        assert held is None or held["status"].startswith("DELETE")  # deleted while it trained
        # The watcher stopped: its execution ended (the model deleted, or its function gone with the rollback).
        assert training.settle_executions()
        (watcher,) = training.executions()
        assert watcher.status in ("SUCCEEDED", "FAILED"), watcher.status
        assert not training.deployed
        sound((owner, partner), training)


# --------------------------------------------------------------------------------------------------
# The rehearsal CLI on the training stack


def test_the_cli_rehearses_the_training_stack(training_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--cdk-out", str(training_out), "--stack", example.TRAINING_STACK_NAME])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert "==> create: CREATE_COMPLETE" in out and "==> delete: DELETE_COMPLETE" in out
    assert "wait condition Create SUCCESS" in out and "STILL THERE" not in out


def test_the_partners_endpoint_judges_the_owners_policy_by_account_action_and_resource(
    accounts: tuple[Endpoint, Endpoint],
) -> None:
    owner, partner = accounts
    model = owner.add_configured_model("shared")
    seed = {"dataSource": {"s3Uri": "s3://seeds/users.jsonl"}, "roleArn": f"arn:aws:iam::{partner.account}:role/seed"}

    def start(name: str, model_arn: str = model) -> str:
        try:
            client = partner.client()
            client.start_audience_generation_job(name=name, configuredAudienceModelArn=model_arn, seedAudience=seed)
            return "started"
        except client.exceptions.ClientError as error:
            return str(error.response["Error"]["Code"])

    def grant(principal: str, resources: list[str], action: str = "cleanrooms-ml:StartAudienceGenerationJob") -> None:
        statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": resources}
        owner.client().put_configured_audience_model_policy(
            configuredAudienceModelArn=model,
            configuredAudienceModelPolicy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )

    owners_jobs = f"arn:aws:cleanrooms-ml:{owner.region}:{owner.account}:audience-generation-job/*"
    assert start("no-policy") == "AccessDeniedException"
    grant("999988887777", [model, owners_jobs])
    assert start("another-account") == "AccessDeniedException"
    grant(partner.account, [owners_jobs])
    assert start("not-on-the-model") == "AccessDeniedException"
    grant(partner.account, [model, owners_jobs], action="cleanrooms-ml:GetConfiguredAudienceModel")
    assert start("another-action") == "AccessDeniedException"
    assert start("missing", model.replace(model.rsplit("/", 1)[-1], "gone")) == "ResourceNotFoundException"
    grant(f"arn:aws:iam::{partner.account}:root", [model, owners_jobs])
    assert start("granted") == "started"
    assert [j["name"] for j in partner.jobs()] == ["granted"] and owner.jobs() == []
