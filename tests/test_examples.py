"""Every example synthesizes, and its template shows what the example claims to show.

Each example's ``main()`` runs in this process (jsii starts once) with a temporary output directory,
as ``python examples/<name>.py`` would with ``CDK_OUTDIR`` set; one example also runs as a separate
process to prove the files work as plain scripts.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cdk_cleanrooms_ml import RESOURCE_TYPE
from tests.helpers import nested_template_files, run_shared_dir

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NAMES = ("app", "sql_seed", "cross_account", "many_jobs", "seed_provider", "training_provider", "full_pipeline")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"cdk_cleanrooms_ml_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stack_names(module: ModuleType) -> tuple[str, ...]:
    """The stacks of an example's app: its ``STACK_NAMES`` when it has several (``STACK_NAME`` among them),
    else its one ``STACK_NAME``."""
    names = tuple(getattr(module, "STACK_NAMES", (module.STACK_NAME,)))
    assert module.STACK_NAME in names
    return names


def _templates(outdir: Path, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``{stack: template}`` of a synthesized app that holds exactly the stacks ``names``."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = [
        name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"
    ]
    assert sorted(stacks) == sorted(names)
    return {name: json.loads((outdir / f"{name}.template.json").read_text()) for name in names}


def _template(outdir: Path, stack_name: str) -> dict[str, Any]:
    return _templates(outdir, (stack_name,))[stack_name]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ModuleType, dict[str, Any]]]:
    """``{example: (module, template)}``, each synthesized by the example's own ``main()``.

    Synthesized once per test run: pytest-xdist workers share the cloud assemblies through the
    run's common temporary directory (the first worker writes them under a lock, the others read).
    """
    shared = run_shared_dir(tmp_path_factory, "examples-cdk-out")
    modules = {name: _load(name) for name in NAMES}
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "done").exists():
            for name, module in modules.items():
                module.main(str(shared / name))  # the CDK_OUTDIR of a script run (jsii's node already runs)
            (shared / "done").write_text("")
    return {
        name: (module, _templates(shared / name, stack_names(module))[module.STACK_NAME])
        for name, module in modules.items()
    }


@pytest.fixture(scope="module")
def providers(synthesized: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """``{example: template}`` of each example's provider: the stack's one nested stack."""
    shared = run_shared_dir(tmp_path_factory, "examples-cdk-out")
    found = {}
    for name, (module, _) in synthesized.items():
        (nested,) = nested_template_files(shared / name, module.STACK_NAME)
        found[name] = json.loads(nested.read_text())
    return found


def _jobs(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == RESOURCE_TYPE}


def _count(template: dict[str, Any], type_: str) -> int:
    return sum(1 for r in template["Resources"].values() if r["Type"] == type_)


def _getatt_output(template: dict[str, Any], output: str) -> list[str]:
    value = template["Outputs"][output]["Value"]
    assert "Fn::GetAtt" in value, f"{output} is not a job attribute: {value}"
    return list(value["Fn::GetAtt"])


def test_every_example_file_is_covered() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(NAMES)


def test_app_is_the_s3_seeded_job_that_cdk_json_runs(synthesized: dict[str, Any]) -> None:
    assert json.loads((ROOT / "cdk.json").read_text())["app"] == "python examples/app.py"
    module, template = synthesized["app"]
    assert module.STACK_NAME == "CleanRoomsMlExample"
    jobs = _jobs(template)
    assert len(jobs) == 1
    ((logical_id, props),) = jobs.items()
    seed = props["seedAudience"]
    assert set(seed) == {"roleArn", "dataSource"}
    role_id = seed["roleArn"]["Fn::GetAtt"][0]
    assert role_id.startswith("CleanRoomsMlSeedRole")  # made by SeedAudience.from_bucket, not by hand
    assert template["Resources"][role_id]["Type"] == "AWS::IAM::Role"
    assert _getatt_output(template, "JobArn") == [logical_id, "AudienceGenerationJobArn"]
    assert _getatt_output(template, "JobStatus") == [logical_id, "Status"]


def test_sql_seed_example_has_a_query_job_and_a_template_job_with_compute(
    synthesized: dict[str, Any], providers: dict[str, dict[str, Any]]
) -> None:
    module, template = synthesized["sql_seed"]
    jobs = list(_jobs(template).values())
    assert len(jobs) == 2
    by_kind = {("queryString" in j["seedAudience"]["sqlParameters"]): j for j in jobs}
    query, from_template = by_kind[True], by_kind[False]
    assert query["seedAudience"]["sqlParameters"]["parameters"] == {"category": "garden", "since": "2025-03-01"}
    assert "analysisTemplateArn" in from_template["seedAudience"]["sqlParameters"]
    for job in jobs:
        assert job["collaborationId"] == module.DEFAULTS["collaborationId"]
        assert "dataSource" not in job["seedAudience"]
        worker = job["seedAudience"]["sqlComputeConfiguration"]["worker"]
        assert worker["type"] in ("CR.1X", "CR.4X") and isinstance(worker["number"], int)
        assert worker["properties"]["spark"]  # Spark properties reach the request
    assert _count(template, "AWS::CloudFormation::Stack") == 1  # one shared provider, a nested stack
    assert _count(providers["sql_seed"], "AWS::StepFunctions::StateMachine") == 1
    # Both jobs use the one seed role SeedAudience.from_sql made for the membership.
    (role_arn,) = {json.dumps(job["seedAudience"]["roleArn"]) for job in jobs}
    role = template["Resources"][json.loads(role_arn)["Fn::GetAtt"][0]]
    actions = json.dumps(role["Properties"]["Policies"])
    assert "cleanrooms:StartProtectedQuery" in actions and "cleanrooms:GetProtectedQuery" in actions


def test_cross_account_example_targets_another_accounts_model(
    synthesized: dict[str, Any], providers: dict[str, dict[str, Any]]
) -> None:
    module, template = synthesized["cross_account"]
    (props,) = _jobs(template).values()
    assert props["configuredAudienceModelArn"].split(":")[4] == module.MODEL_OWNER_ACCOUNT
    assert props["collaborationId"] == module.DEFAULTS["collaborationId"]
    # The handler may start jobs from exactly that model (besides its own account's job ARNs): in the provider.
    policies = [
        r
        for t in (template, providers["cross_account"])
        for r in t["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
    ]
    start_resources = [
        s["Resource"]
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "cleanrooms-ml:StartAudienceGenerationJob"
    ]
    assert len(start_resources) == 1
    assert props["configuredAudienceModelArn"] in start_resources[0]


def test_many_jobs_example_stack_tags_reach_every_job(
    synthesized: dict[str, Any], providers: dict[str, dict[str, Any]]
) -> None:
    module, template = synthesized["many_jobs"]
    jobs = _jobs(template)
    assert len(jobs) == len(module.SEGMENTS) == 3
    for props in jobs.values():
        tags = props["tags"]
        assert {k: tags.get(k) for k in module.STACK_TAGS} == module.STACK_TAGS
        assert tags["segment"] in {s.lower() for s in module.SEGMENTS}  # the job's own tags stay
    # ... the same way they reach the native resources of the stack
    bucket = next(r for r in template["Resources"].values() if r["Type"] == "AWS::S3::Bucket")
    assert {t["Key"]: t["Value"] for t in bucket["Properties"]["Tags"]} == module.STACK_TAGS
    assert len({p["NamePrefix"] for p in jobs.values()}) == 3
    assert _count(template, "AWS::CloudFormation::Stack") == 1  # the provider, for all jobs
    assert _count(template, "AWS::Lambda::Function") == 0
    provider = providers["many_jobs"]
    assert _count(provider, "AWS::StepFunctions::StateMachine") == 1
    assert _count(provider, "AWS::Lambda::Function") == 5  # 2 handlers + 3 framework functions, for all jobs


def test_many_jobs_example_outputs_arns_status_and_metrics(synthesized: dict[str, Any]) -> None:
    module, template = synthesized["many_jobs"]
    jobs = _jobs(template)
    attributes = {
        "JobArn": "AudienceGenerationJobArn",
        "Status": "Status",
        "RecallMetric": "RecallMetric",
        "RelevanceMetrics": "RelevanceMetrics",
    }
    seen = set()
    for segment in module.SEGMENTS:
        for suffix, attribute in attributes.items():
            logical_id, got = _getatt_output(template, f"{segment}{suffix}")
            assert got == attribute and logical_id in jobs
            seen.add(logical_id)
    assert seen == set(jobs)


def _of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def test_seed_provider_example_exports_the_jobs_segment_twice(synthesized: dict[str, Any]) -> None:
    module, template = synthesized["seed_provider"]
    ((job_id, job),) = _jobs(template).items()
    assert job["collaborationId"] == module.DEFAULT_COLLABORATION_ID
    exports = _of_type(template, "Custom::CleanRoomsMlAudienceExportJob")
    sizes = sorted(
        (e["Properties"]["audienceSize"]["type"], e["Properties"]["audienceSize"]["value"]) for e in exports.values()
    )
    assert sizes == [("ABSOLUTE", 50_000), ("PERCENTAGE", 10)]
    for export in exports.values():  # each depends on the job through its ARN
        assert export["Properties"]["audienceGenerationJobArn"] == {"Fn::GetAtt": [job_id, "AudienceGenerationJobArn"]}
    for output in ("Top10PercentLocation", "Top50kLocation"):
        logical_id, attribute = _getatt_output(template, output)
        assert logical_id in exports and attribute == "OutputLocation"


def test_training_provider_example_configures_shares_and_associates_the_model(synthesized: dict[str, Any]) -> None:
    module, template = synthesized["training_provider"]
    ((model_id, model),) = _of_type(template, "Custom::CleanRoomsMlConfiguredAudienceModel").items()
    props = model["Properties"]
    assert props["audienceModelArn"] == module.DEFAULT_AUDIENCE_MODEL_ARN
    assert props["sharedAudienceMetrics"] == ["ALL"]
    assert props["audienceSizeConfig"] == {"audienceSizeType": "PERCENTAGE", "audienceSizeBins": [5, 10, 20]}
    # The segment-writer role, made by AudienceDestination.from_bucket: trusted by Clean Rooms ML, writing
    # under the prefix only.
    role_id = props["outputConfig"]["roleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]
    assert role_id.startswith("CleanRoomsMlSegmentWriter")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cleanrooms-ml.amazonaws.com"}
    assert set(trust["Condition"]) == {"StringEqualsIfExists", "ArnLikeIfExists"}
    write = next(
        s
        for p in role["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Sid"] == "WriteSegments"
    )
    assert write["Action"] == "s3:PutObject" and write["Resource"]["Fn::Join"][1][-1] == "/segments/*"
    # The partner's account may start jobs from the model: the resource policy names it and the model itself.
    policy = json.dumps(props["configuredAudienceModelPolicy"])
    assert module.DEFAULT_PARTNER_ACCOUNT in policy and "cleanrooms-ml:StartAudienceGenerationJob" in policy
    assert "${cdk-cleanrooms-ml:self-arn}" in policy  # the handler writes the model's ARN there
    ((_id, association),) = _of_type(template, "Custom::CleanRoomsMlConfiguredAudienceModelAssociation").items()
    assert association["Properties"]["configuredAudienceModelArn"] == {
        "Fn::GetAtt": [model_id, "ConfiguredAudienceModelArn"]
    }
    assert association["Properties"]["membershipIdentifier"] == module.DEFAULT_MEMBERSHIP_ID
    assert association["Properties"]["manageResourcePolicies"] is True


def test_full_pipeline_example_is_two_stacks_of_two_accounts(
    synthesized: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    module, _ = synthesized["full_pipeline"]
    shared = run_shared_dir(tmp_path_factory, "examples-cdk-out")
    training, seed = _templates(shared / "full_pipeline", stack_names(module)).values()
    environments = {
        name: artifact["environment"]
        for name, artifact in json.loads((shared / "full_pipeline" / "manifest.json").read_text())["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert environments == {
        module.TRAINING_STACK_NAME: f"aws://{module.TRAINING_ACCOUNT}/{module.REGION}",
        module.SEED_STACK_NAME: f"aws://{module.SEED_ACCOUNT}/{module.REGION}",
    }
    # The training-data provider: dataset -> model -> (its WaitCondition) -> configured model -> association.
    ((dataset_id, _),) = _of_type(training, "AWS::CleanRoomsML::TrainingDataset").items()
    ((model_id, model),) = _of_type(training, "Custom::CleanRoomsMlAudienceModel").items()
    ((wait_id, wait),) = _of_type(training, "AWS::CloudFormation::WaitCondition").items()
    ((configured_id, configured),) = _of_type(training, "Custom::CleanRoomsMlConfiguredAudienceModel").items()
    ((_id, association),) = _of_type(training, "Custom::CleanRoomsMlConfiguredAudienceModelAssociation").items()
    assert model["Properties"]["trainingDatasetArn"] == {"Fn::GetAtt": [dataset_id, "TrainingDatasetArn"]}
    assert model["Properties"]["SignalUrl"] == wait["Properties"]["Handle"] and wait["DependsOn"] == [model_id]
    assert configured["Properties"]["audienceModelArn"] == {"Fn::GetAtt": [model_id, "AudienceModelArn"]}
    assert configured["DependsOn"] == [wait_id]  # created once the model is ACTIVE, not before
    policy = json.dumps(configured["Properties"]["configuredAudienceModelPolicy"])
    assert f'\\"AWS\\":\\"{module.SEED_ACCOUNT}\\"' in policy  # the partner's account may start jobs on it
    assert association["Properties"]["configuredAudienceModelArn"] == {
        "Fn::GetAtt": [configured_id, "ConfiguredAudienceModelArn"]
    }
    assert set(training["Outputs"]) >= {"ConfiguredAudienceModelArn", "CollaborationId"}
    # The seed-data provider: no reference to the other account's stack, the ARN from context (a placeholder here).
    ((job_id, job),) = _jobs(seed).items()
    assert job["configuredAudienceModelArn"] == module.DEFAULT_CONFIGURED_MODEL_ARN
    assert job["collaborationId"] == module.DEFAULT_COLLABORATION_ID
    ((_id, export),) = _of_type(seed, "Custom::CleanRoomsMlAudienceExportJob").items()
    assert export["Properties"]["audienceGenerationJobArn"] == {"Fn::GetAtt": [job_id, "AudienceGenerationJobArn"]}
    assert "Fn::ImportValue" not in json.dumps(seed)


def test_full_pipeline_example_takes_the_training_stacks_outputs_as_context(tmp_path: Path) -> None:
    from aws_cdk import App

    module = _load("full_pipeline")
    arn = f"arn:aws:cleanrooms-ml:us-east-1:{module.TRAINING_ACCOUNT}:configured-audience-model/1a2b3c4d"
    context = {"configuredAudienceModelArn": arn, "collaborationId": "9e6f1a2b-3c4d-4c3a-8c1e-5b7d0f2a8c1e"}
    app = App(outdir=str(tmp_path), context=context)
    module.build(app)
    app.synth()
    seed = _templates(tmp_path, stack_names(module))[module.SEED_STACK_NAME]
    ((_id, job),) = _jobs(seed).items()
    assert job["configuredAudienceModelArn"] == arn
    assert job["collaborationId"] == context["collaborationId"]


def test_an_example_runs_as_a_plain_script(tmp_path: Path) -> None:
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path / "out")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "constructs"), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "cross_account.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    template = _template(tmp_path / "out", "CleanRoomsMlCrossAccountExample")
    assert len(_jobs(template)) == 1
