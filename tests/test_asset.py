"""The handler asset: complete, free of caches, and stable across synths and test runs."""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

from cdk_cleanrooms_ml import handler_asset
from tests.helpers import job, provider_template, stack

ROOT = Path(__file__).resolve().parent.parent
HANDLER_FILES = {
    "engine.py",
    "entrypoints.py",
    "model_rules.py",
    "properties.py",
    "service.py",
    "specs.py",
    "watcher.py",
}


def _asset_keys() -> set[str]:
    scope = stack()
    job(scope)
    functions = provider_template(scope).find_resources(
        "AWS::Lambda::Function", {"Properties": {"Runtime": "python3.14"}}
    )
    return {f["Properties"]["Code"]["S3Key"] for f in functions.values()}


def test_asset_holds_the_handler_and_the_service_model_and_nothing_else() -> None:
    staged = handler_asset.staged_asset_dir()
    files = {str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()}
    models = {f for f in files if f.startswith("models/")}
    assert files - models == HANDLER_FILES
    # One model per service the handler calls: Clean Rooms ML, and Clean Rooms for model associations (Step Functions'
    # StartExecution, which starts the audience model watcher, is in every runtime's boto3).
    assert {m.split("/")[1] for m in models} == {"cleanroomsml", "cleanrooms"} and len(models) == 2
    assert all(m.endswith("/service-2.json") for m in models)
    (model,) = [m for m in models if m.startswith("models/cleanroomsml/")]
    shapes = json.loads((staged / model).read_text())
    assert "StartAudienceGenerationJob" in shapes["operations"]
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def test_asset_hash_is_the_same_after_caches_appear_in_the_handler_dir() -> None:
    before = _asset_keys()
    assert len(before) == 1  # both handlers share one asset
    cache = ROOT / "lambda" / "__pycache__"
    existed = cache.exists()
    try:
        for source in (ROOT / "lambda").glob("*.py"):
            py_compile.compile(str(source), cfile=str(cache / f"{source.stem}.cpython-311.pyc"))
        handler_asset.staged_asset_dir.cache_clear()
        handler_asset.handler_source_dir.cache_clear()
        assert _asset_keys() == before
    finally:
        if not existed:
            shutil.rmtree(cache, ignore_errors=True)


def test_example_synthesizes_with_the_real_cdk_cli_on_a_supported_node(tmp_path: Path) -> None:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "run .ci/setup first: it installs the pinned CDK CLI"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "--output", str(tmp_path / "cdk.out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "end-of-life" not in result.stderr.lower() and "not supported" not in result.stderr.lower()
    assert "feature flags are not configured" not in result.stderr  # cdk.json sets the recommended flags
    template_json = json.loads((tmp_path / "cdk.out" / "CleanRoomsMlExample.template.json").read_text())
    types = [r["Type"] for r in template_json["Resources"].values()]
    assert types.count("Custom::CleanRoomsMlAudienceGenerationJob") == 1
    assert {"JobArn", "JobStatus"} <= set(template_json["Outputs"])


def test_the_shipped_service_model_is_the_pinned_botocores_trimmed() -> None:
    """The model synth and the handler read is what `.ci/refresh_service_model.py` makes of the installed botocore."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, str(root / ".ci" / "refresh_service_model.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
