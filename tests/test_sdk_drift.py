"""The deployed handler does not depend on the age of the SDK in the Lambda runtime.

The asset ships the ``cleanroomsml`` service model that synthesis validated against, and the
functions set ``AWS_DATA_PATH`` to it. Proof: the handler runs from the staged asset directory under
boto3/botocore 1.34.4 (December 2023, whose model knows no ``sqlParameters`` or
``sqlComputeConfiguration``), in a separate virtual environment (``.venv-old-boto3``, created once and
reused), and a SQL-seeded request with a worker compute configuration reaches the local endpoint
intact. The control: the same run without ``AWS_DATA_PATH`` fails before anything is sent.

``python tests/test_sdk_drift.py`` prints the asset-size and cold-import measurements of the README's SDK-drift section.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "constructs") not in sys.path:  # also runnable as a script (measurements)
    sys.path.insert(0, str(ROOT / "constructs"))

from cdk_cleanrooms_ml.handler_asset import MODELS_DIR, staged_asset_dir  # noqa: E402
from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint  # noqa: E402
from cdk_cleanrooms_ml.service_model import specs  # noqa: E402

REQUEST_TAG = specs().REQUEST_TAG

OLD_BOTO3 = "1.34.4"
OLD_ENV = ROOT / ".venv-old-boto3"
STACK_ID = "arn:aws:cloudformation:us-east-1:111122223333:stack/Drift/11111111-2222-3333-4444-555555555555"
MODEL_ARN = "arn:aws:cleanrooms-ml:us-east-1:111122223333:configured-audience-model/abc"
TEMPLATE_ARN = (
    "arn:aws:cleanrooms:us-east-1:111122223333:membership/7c9d2e4f-1a3b-4c5d-8e6f-0a1b2c3d4e5f"
    "/analysistemplate/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
)

#: The request as the template holds it (the API's own member names and types).
REQUEST: dict[str, Any] = {
    "name": "drift-sql-seed",
    "configuredAudienceModelArn": MODEL_ARN,
    "collaborationId": "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f",
    "includeSeedInOutput": False,
    "seedAudience": {
        "roleArn": "arn:aws:iam::111122223333:role/seed-query",
        "sqlParameters": {"analysisTemplateArn": TEMPLATE_ARN, "parameters": {"category": "garden"}},
        "sqlComputeConfiguration": {
            "worker": {"type": "CR.4X", "number": 4, "properties": {"spark": {"spark.executor.memory": "8g"}}}
        },
    },
    "tags": {"team": "ads"},
}

#: Runs in the old environment, from the asset directory: Create through on_event, then is_complete
#: until the job is ACTIVE, exactly as the Provider framework drives the two functions.
DRIVER = """
import json, sys
sys.path.insert(0, ".")
import botocore, entrypoints
event = json.load(sys.stdin)
result = entrypoints.on_event(event)
polled = {**event, **result}
for _ in range(10):
    done = entrypoints.is_complete(polled)
    if done["IsComplete"]:
        break
print(json.dumps({"botocore": botocore.__version__, "on_event": result, "is_complete": done}))
"""


def _stringified(value: Any) -> Any:
    """Every scalar as a string: how CloudFormation hands properties to a custom resource."""
    if isinstance(value, dict):
        return {k: _stringified(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def create_event() -> dict[str, Any]:
    return {
        "RequestType": "Create",
        "ServiceToken": "arn:aws:lambda:us-east-1:111122223333:function:framework-onEvent",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/",
        "StackId": STACK_ID,
        "RequestId": "req-1",
        "LogicalResourceId": "FromTemplate1234",
        "ResourceType": "Custom::CleanRoomsMlAudienceGenerationJob",
        "ResourceProperties": _stringified({"ServiceToken": "token", **REQUEST}),
    }


def old_python() -> Path:
    """The old-SDK environment's interpreter, created on first use (under a lock: xdist workers share it)."""
    python = OLD_ENV / "bin" / "python"
    marker = OLD_ENV / f"boto3-{OLD_BOTO3}.ok"
    with open(Path(tempfile.gettempdir()) / "cdk-cleanrooms-ml-old-boto3.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            venv.EnvBuilder(with_pip=False, clear=True).create(OLD_ENV)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "--python",
                    str(python),
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    f"boto3=={OLD_BOTO3}",
                    f"botocore=={OLD_BOTO3}",
                ],
                check=True,
                timeout=600,
            )
            marker.write_text("")
    return python


def run_handler(asset: Path, env_extra: dict[str, str], *, shipped_model: bool) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",  # the asset directory stays as staged
        "HOME": "/nonexistent",  # no ~/.aws of the machine
        **env_extra,
    }
    if shipped_model:
        env["AWS_DATA_PATH"] = str(asset / MODELS_DIR)  # what the Lambda functions set (/var/task/models)
    return subprocess.run(
        [str(old_python()), "-B", "-c", DRIVER],
        cwd=asset,
        env=env,
        input=json.dumps(create_event()),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def asset() -> Iterator[Path]:
    path = staged_asset_dir()
    assert (path / "entrypoints.py").is_file()
    yield path
    # Running the handler from the staged directory must leave it as staged: it is the Lambda asset
    # of every later synth in this machine's temp dir.
    assert not [p for p in path.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]


@pytest.fixture()
def endpoint() -> Iterator[Endpoint]:
    with Endpoint(reads_until_active=2) as running:
        yield running


def test_the_old_sdk_really_lacks_the_sql_seed_members() -> None:
    probe = (
        "import botocore, botocore.session; "
        "s = botocore.session.get_session().get_service_model('cleanroomsml')"
        ".operation_model('StartAudienceGenerationJob').input_shape.members['seedAudience']; "
        "print(botocore.__version__, sorted(s.members))"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent"}
    out = subprocess.run([str(old_python()), "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == OLD_BOTO3
    assert "sqlParameters" not in out.stdout and "sqlComputeConfiguration" not in out.stdout


def test_with_the_shipped_model_the_old_sdk_sends_the_sql_seed_intact(asset: Path, endpoint: Endpoint) -> None:
    result = run_handler(asset, endpoint.environment(), shipped_model=True)
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["botocore"] == OLD_BOTO3
    starts = [c for c in endpoint.calls if c.operation == "StartAudienceGenerationJob"]
    assert len(starts) == 1 and starts[0].status == 200
    sent = starts[0].params
    # Every member, with the API's types, as the template holds it (plus the handler's request tag).
    assert {**sent, "tags": {k: v for k, v in sent["tags"].items() if k != REQUEST_TAG}} == REQUEST
    assert REQUEST_TAG in sent["tags"]
    assert output["is_complete"]["IsComplete"] is True
    data = output["is_complete"]["Data"]
    assert data["Status"] == "ACTIVE"
    assert data["AudienceGenerationJobArn"] == output["on_event"]["PhysicalResourceId"]
    assert data["RecallMetric"] not in ("", None)  # the old SDK parsed the metrics through the shipped model


def test_without_the_shipped_model_the_old_sdk_cannot_send_it(asset: Path, endpoint: Endpoint) -> None:
    result = run_handler(asset, endpoint.environment(), shipped_model=False)
    assert result.returncode != 0
    assert "sqlParameters" in result.stderr or "sqlComputeConfiguration" in result.stderr, result.stderr[-3000:]
    assert endpoint.count("StartAudienceGenerationJob") == 0


def test_the_old_botocore_itself_rejects_the_members_without_the_model(endpoint: Endpoint) -> None:
    """Not only the handler's own decoding: botocore 1.34.4's parameter validation refuses the request."""
    script = (
        "import json, sys, boto3\n"
        "from botocore.exceptions import ParamValidationError\n"
        "try:\n"
        "    boto3.client('cleanroomsml').start_audience_generation_job(**json.load(sys.stdin))\n"
        "except ParamValidationError as error:\n"
        "    print('REJECTED', error)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", **endpoint.environment()}
    out = subprocess.run(
        [str(old_python()), "-c", script],
        env=env,
        input=json.dumps(REQUEST),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.startswith("REJECTED"), out.stdout + out.stderr
    assert "sqlParameters" in out.stdout and "sqlComputeConfiguration" in out.stdout
    assert endpoint.count() == 0


# --------------------------------------------------------------------------------------------------
# Measurements (the README's SDK-drift section)


def zipped_size(directory: Path, *, with_models: bool) -> int:
    """The asset's size as CDK uploads it (a deflated zip), with or without the shipped model."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if path.is_file() and (with_models or relative.parts[0] != MODELS_DIR):
                archive.write(path, relative.as_posix())
    return len(buffer.getvalue())


COLD_START = """
import sys, time
sys.path.insert(0, ".")
t0 = time.perf_counter()
import entrypoints, service
t1 = time.perf_counter()
service.input_shape("StartAudienceGenerationJob")  # creates the client: loads the model
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def cold_start(python: Path, asset: Path, *, shipped_model: bool, runs: int = 7) -> tuple[float, float]:
    """Median seconds of (import of the handler incl. boto3, first client creation incl. model loading)."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
    if shipped_model:
        env["AWS_DATA_PATH"] = str(asset / MODELS_DIR)
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [str(python), "-B", "-c", COLD_START], cwd=asset, env=env, capture_output=True, text=True, check=True
        )
        samples.append(tuple(float(x) for x in out.stdout.split()))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def test_the_shipped_model_adds_little_to_the_asset(asset: Path) -> None:
    with_models, without = zipped_size(asset, with_models=True), zipped_size(asset, with_models=False)
    assert 0 < with_models - without < 20_000  # the trimmed model, zipped
    assert with_models < 60_000


def test_the_client_loads_the_shipped_model_when_aws_data_path_points_to_it(asset: Path) -> None:
    """The shipped model has no documentation strings: a client that reports none loaded it, not botocore's own."""
    probe = (
        "import sys; sys.path.insert(0, '.'); import service; "
        "print(repr(service.client('cleanroomsml').meta.service_model.operation_model('StartAudienceGenerationJob').documentation))"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "AWS_DEFAULT_REGION": "us-east-1"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for shipped, expect_docs in ((True, False), (False, True)):
        run_env = {**env, "AWS_DATA_PATH": str(asset / MODELS_DIR)} if shipped else env
        out = subprocess.run(
            [sys.executable, "-B", "-c", probe], cwd=asset, env=run_env, capture_output=True, text=True, check=True
        )
        assert (out.stdout.strip() not in ("''", "None")) is expect_docs, out.stdout


def main() -> None:
    asset = staged_asset_dir()
    model = next((asset / MODELS_DIR).rglob("service-2.json"))
    print(f"asset dir: {asset}")
    print(f"shipped model: {model.relative_to(asset)} {model.stat().st_size} bytes")
    print(
        f"asset zipped: {zipped_size(asset, with_models=True)} bytes with the model, "
        f"{zipped_size(asset, with_models=False)} without"
    )
    for label, python in (("current", Path(sys.executable)), (f"boto3 {OLD_BOTO3}", old_python())):
        for shipped in (False, True):
            imp, client = cold_start(python, asset, shipped_model=shipped)
            print(
                f"{label:14} AWS_DATA_PATH={'asset' if shipped else 'unset':5}  import {imp * 1000:6.1f} ms  "
                f"first client {client * 1000:6.1f} ms"
            )


if __name__ == "__main__":
    main()


#: A SQL seed with compute configuration, synthesized in a process whose botocore is the old one.
SYNTH_WITH_OLD_BOTOCORE = """
import botocore
from aws_cdk import App, Environment, Stack
from cdk_cleanrooms_ml import AudienceGenerationJob, SeedAudience, SqlParameters, WorkerComputeConfiguration
app = App()
stack = Stack(app, "OldBotocore", env=Environment(account="111122223333", region="us-east-1"))
AudienceGenerationJob(
    stack,
    "Sql",
    configured_audience_model_arn="arn:aws:cleanrooms-ml:us-east-1:111122223333:configured-audience-model/abc",
    seed_audience=SeedAudience(
        role="arn:aws:iam::111122223333:role/seed",
        sql_parameters=SqlParameters(query_string="SELECT user_id FROM t"),
        sql_compute_configuration=WorkerComputeConfiguration(type="CR.8X", number=4),
    ),
)
app.synth()
print(botocore.__version__)
"""


def test_synth_validates_with_the_shipped_model_whatever_botocore_is_installed() -> None:
    """One model: under botocore 1.34.4 (no SQL seed members, no CR.8X), synth accepts the SQL seed the handler
    accepts, because validation reads the model the asset ships, not the installed one."""
    old_site = next((OLD_ENV / "lib").glob("python3*/site-packages"), None) if old_python() else None
    assert old_site is not None
    env = {
        **os.environ,
        # The old botocore (and boto3) shadow the project environment's; aws-cdk-lib still comes from it.
        "PYTHONPATH": os.pathsep.join([str(old_site), str(ROOT / "constructs")]),
        "CDK_OUTDIR": tempfile.mkdtemp(prefix="old-botocore-synth-"),
    }
    result = subprocess.run(
        [sys.executable, "-c", SYNTH_WITH_OLD_BOTOCORE], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == OLD_BOTO3
