"""Independent scanners on the example app and on a stack with one job of each seed kind.

One app (both stacks) is synthesized once for the module with cdk-nag's AwsSolutionsChecks applied
the cdk-nag 3 way (it walks the construct tree, the providers' nested stacks included); cfn-lint and checkov
then read the same cloud assembly: each stack's template and its provider's nested template. A finding fails the suite:
what must stay is acknowledged in the library's code, with the reasons the README's Security section lists.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Acknowledgment, App, CfnResource, Environment, Stack, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from cdk_cleanrooms_ml import AudienceGenerationJob, AudienceGenerationProvider, AudienceModel, SeedAudience
from tests.helpers import ACCOUNT, COLLABORATION_ID, MODEL_ARN, REGION, nested_template_files
from tests.test_examples import NAMES, _load, stack_names

ROOT = Path(__file__).resolve().parent.parent
MEMBERSHIP_ARN = f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{COLLABORATION_ID}"
TRAINING_DATASET_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:training-dataset/td-1"
TEMPLATE_ARN = f"{MEMBERSHIP_ARN}/analysistemplate/1a2b3c4d-5e6f-4a3b-8c9d-0e1f2a3b4c5d"
#: The only checks the checkov script skips for every resource (the README's Security section says why).
GLOBAL_CHECKOV_SKIPS = {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}


def seed_kinds_stack(app: App) -> Stack:
    """One job of each seed kind: an S3 object (KMS bucket) via from_bucket, a SQL query, an analysis template."""
    stack = Stack(app, "SeedKinds", env=Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "SeedKey", enable_key_rotation=True)
    # The provider's logs encrypted with a customer-managed key (checkov's CKV_AWS_158 then passes).
    AudienceGenerationProvider.of(stack, log_encryption_key=key)
    bucket = s3.Bucket(
        stack,
        "Seeds",
        encryption_key=key,
        enforce_ssl=True,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
    )
    reason = "test fixture bucket: the library creates no bucket"
    Validations.of(bucket).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=reason))
    resource = bucket.node.default_child
    assert isinstance(resource, CfnResource)
    resource.add_metadata("checkov", {"skip": [{"id": "CKV_AWS_18", "comment": reason}]})
    AudienceGenerationJob(
        stack,
        "FromS3",
        configured_audience_model_arn=MODEL_ARN,
        seed_audience=SeedAudience.from_bucket(bucket, key="seed/users.jsonl"),
    )
    AudienceGenerationJob(
        stack,
        "FromPrefix",
        configured_audience_model_arn=MODEL_ARN,
        seed_audience=SeedAudience.from_bucket(bucket, prefix="seeds/"),
    )
    AudienceGenerationJob(
        stack,
        "FromSql",
        configured_audience_model_arn=MODEL_ARN,
        collaboration_id=COLLABORATION_ID,
        seed_audience=SeedAudience.from_sql(
            scope=stack,
            membership_arn=MEMBERSHIP_ARN,
            query_string="SELECT user_id FROM converters WHERE campaign = :campaign",
            parameters={"campaign": "spring"},
        ),
    )
    AudienceGenerationJob(
        stack,
        "FromTemplate",
        configured_audience_model_arn=MODEL_ARN,
        collaboration_id=COLLABORATION_ID,
        seed_audience=SeedAudience.from_sql(
            scope=stack, membership_arn=MEMBERSHIP_ARN, analysis_template_arn=TEMPLATE_ARN
        ),
    )
    # An audience model that waits for training: the provider's watcher (function, role, state machine) is scanned.
    AudienceModel(stack, "Trained", training_dataset=TRAINING_DATASET_ARN, kms_key=key, wait_for_completion=True)
    return stack


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Exception | None, App]]:
    out = tmp_path_factory.mktemp("scanned-cdk-out")
    app = App(outdir=str(out))
    for name in NAMES:  # every example
        _load(name).build(app)
    seed_kinds_stack(app)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    error: Exception | None = None
    try:
        app.synth()
    except Exception as raised:  # the validation report says which findings
        error = raised
    yield out, error, app


EXAMPLE_STACKS = tuple(stack for name in NAMES for stack in stack_names(_load(name)))
STACKS = (*EXAMPLE_STACKS, "SeedKinds")


def templates(out: Path) -> list[Path]:
    """Every template of the assembly: the stacks' and their providers' (``*.nested.template.json``)."""
    found = sorted(out.glob("*.template.json"))
    assert {p.name for p in found if not p.name.endswith(".nested.template.json")} == {
        f"{stack}.template.json" for stack in STACKS
    }
    assert {stack: len(nested_templates(found, stack)) for stack in STACKS} == dict.fromkeys(STACKS, 1)
    return found


def nested_templates(found: list[Path], stack: str) -> list[str]:
    """The file names of a stack's providers (nested stacks, named ``<stack>CleanRoomsMlProvider<hash>``)."""
    return [p.name for p in found if p.name.startswith(f"{stack}CleanRoomsMlProvider") and ".nested." in p.name]


def violations(out: Path) -> list[str]:
    report_file = out / "validation-report.json"
    if not report_file.exists():
        return []
    report = json.loads(report_file.read_text())
    return [
        f"{v['ruleName']} at {c['constructPath']}"
        for plugin in report.get("pluginReports", [])
        for v in plugin.get("violations", [])
        for c in v.get("violatingConstructs", [])
    ]


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(assembly: tuple[Path, Exception | None, App]) -> None:
    out, error, _app = assembly
    assert violations(out) == []
    assert error is None, str(error)


def test_what_stays_is_acknowledged_in_the_library_with_a_reason(
    assembly: tuple[Path, Exception | None, App],
) -> None:
    _out, _error, app = assembly
    acknowledged: dict[str, str] = {}
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in dict(entry.data).items():
                    acknowledged[f"{construct.node.path} {rule.split('::', 1)[-1]}"] = reason
    library = {k: v for k, v in acknowledged.items() if "/CleanRoomsMl" in k}
    # Each stays for a reason the README's Security section gives: no other rule may be acknowledged by the library.
    assert sorted({k.split(" ", 1)[1].split("[")[0] for k in library}) == ["AwsSolutions-IAM5", "AwsSolutions-SF2"]
    assert all(len(reason) > 80 for reason in library.values()), library
    findings = sorted({k.split(" ", 1)[1] for k in library})
    docs = (ROOT / "README.md").read_text()
    for finding in findings:
        assert finding.split("[")[0] in docs
    assert "AwsSolutions-IAM5[Resource::*]" in findings
    assert any(f.endswith(":audience-generation-job/*]") for f in findings)


def test_cfn_lint_reports_no_error_or_warning(assembly: tuple[Path, Exception | None, App]) -> None:
    from cfnlint.api import lint_all

    out, _error, _app = assembly
    linted = templates(out)
    assert sum(".nested." in path.name for path in linted) == len(STACKS)  # the providers' templates are linted too
    regions = deploy_regions(out)
    elsewhere: list[str] = []
    matches = []
    for path in linted:
        for m in lint_all(path.read_text()):  # in every region
            if only_in_another_region(m, regions[path.name]):
                elsewhere.append(f"{path.name}: {m}")
            else:
                matches.append(f"{path.name}: {m}")
    # full_pipeline.py's training dataset type exists in fewer regions than cfn-lint knows; its stack is us-east-1's.
    assert elsewhere and all("AWS::CleanRoomsML::TrainingDataset" in m for m in elsewhere), elsewhere
    # Errors (E) and warnings (W) fail; informational notes (I) are not reported by the CLI either.
    assert [m for m in matches if m.split("[", 1)[1][0] in "EW"] == []
    assert matches == [m for m in matches if "[I" in m]


def deploy_regions(out: Path) -> dict[str, str | None]:
    """``{template file: region}``: the region of the stack's environment (a nested template: its parent's),
    None for an environment-agnostic stack, which may deploy in any region."""
    artifacts = json.loads((out / "manifest.json").read_text())["artifacts"]
    regions: dict[str, str | None] = {}
    for stack, artifact in artifacts.items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        region = artifact["environment"].rsplit("/", 1)[-1]
        region = None if region == "unknown-region" else region
        for path in [out / f"{stack}.template.json", *nested_template_files(out, stack)]:
            regions[path.name] = region
    return regions


def only_in_another_region(match: Any, region: str | None) -> bool:
    """An E3006 (resource type unknown in a region) for a region the template's stack is not deployed to.

    cfn-lint's ``lint_all`` lints every template in every region it knows; a stack whose environment names a
    region deploys there only, so a resource type missing elsewhere is no finding for it (in its own region
    E3006 still fails)."""
    return (
        match.rule.id == "E3006"
        and region is not None
        and re.search(r"does not exist in '([a-z0-9-]+)'", match.message) is not None
        and f"in '{region}'" not in match.message
    )


def checkov(out: Path) -> dict[str, Any]:
    scanned = out.parent / f"{out.name}-templates"
    scanned.mkdir(exist_ok=True)
    for path in templates(out):  # only the templates (nested ones too): checkov would also scan the handler's asset
        (scanned / path.name).write_text(path.read_text())
    result = subprocess.run(
        ["bash", str(ROOT / ".ci" / "checkov.sh"), str(scanned)], capture_output=True, text=True, timeout=900
    )
    # 0: no failed check; 1: failed checks (the report says which). Anything else: checkov did not run
    # (no network to build its environment, say) -- a failure, never a skip.
    assert result.returncode in (0, 1), f"checkov did not run (exit {result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    (cloudformation,) = [r for r in reports if r.get("check_type") == "cloudformation"]
    return dict(cloudformation)


def test_checkov_has_no_failed_check_except_the_documented_skips(assembly: tuple[Path, Exception | None, App]) -> None:
    out, _error, _app = assembly
    report = checkov(out)
    failed = [f"{f['check_id']} {f['resource']} ({f['file_path']})" for f in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 100
    assert report["summary"]["resource_count"] >= 40
    # Resource-level skips carry their reason in the template; each is documented.
    skipped = {(s["check_id"], s["resource"].split(".")[0]) for s in report["results"]["skipped_checks"]}
    assert {check for check, _type in skipped} <= {"CKV_AWS_18", "CKV_AWS_111", "CKV_AWS_158"}
    assert len(report["results"]["skipped_checks"]) == report["summary"]["skipped"] > 0  # the report lists them
    # The log group KMS check: skipped, with the reason, where no key was given; passed where one was. The log
    # groups are in the providers' nested templates.
    (seed_kinds,) = nested_templates(templates(out), "SeedKinds")
    examples = {nested_templates(templates(out), stack)[0] for stack in EXAMPLE_STACKS}
    key_checks = {
        (c["file_path"].rsplit("/", 1)[-1], outcome)
        for outcome in ("passed_checks", "failed_checks", "skipped_checks")
        for c in report["results"][outcome]
        if c["check_id"] == "CKV_AWS_158"
    }
    assert key_checks == {(seed_kinds, "passed_checks")} | {(example, "skipped_checks") for example in examples}
    scanned = {
        c["file_path"].rsplit("/", 1)[-1] for o in ("passed_checks", "skipped_checks") for c in report["results"][o]
    }
    assert {seed_kinds, *examples} < scanned  # the nested templates were scanned
    script = (ROOT / ".ci" / "checkov.sh").read_text()
    docs = (ROOT / "README.md").read_text()
    for check in GLOBAL_CHECKOV_SKIPS | {"CKV_AWS_111", "CKV_AWS_158"}:
        assert check in docs
    for check in GLOBAL_CHECKOV_SKIPS:
        assert f"  {check} #" in script
