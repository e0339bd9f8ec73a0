"""Packaging gates: the sdist and wheel build, pass ``twine check``, carry the handler, and the wheel
installed into a fresh virtual environment outside the repository synthesizes a complete Lambda asset.

The fresh environment borrows the repository environment's third-party packages (aws-cdk-lib is
large) through a ``.pth`` file holding a plain path line: site-packages added that way do not have
their own ``.pth`` files processed, so an editable install of ``cdk_cleanrooms_ml`` there stays
invisible and the import must come from the installed wheel.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

from tests.helpers import nested_template_files, run_shared_dir

ROOT = Path(__file__).resolve().parent.parent
HANDLER_MODULES = ("engine.py", "entrypoints.py", "model_rules.py", "properties.py", "service.py", "specs.py")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build`` (sdist, then the wheel built from that sdist) into a temporary directory.

    Built once per test run: pytest-xdist workers share it through the run's common temporary
    directory (the first worker builds under a lock, the others reuse the result).
    """
    outdir = run_shared_dir(tmp_path_factory, "packaging-dist")
    with open(outdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not list(outdir.glob("*.whl")):
            result = subprocess.run(
                [sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels, sdists = list(outdir.glob("*.whl")), list(outdir.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in outdir.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_twine_accepts_the_wheel_and_the_sdist(dist: dict[str, Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist["wheel"]), str(dist["sdist"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_the_version_comes_from_the_package(dist: dict[str, Path]) -> None:
    from cdk_cleanrooms_ml import __version__

    assert dist["wheel"].name == f"cdk_cleanrooms_ml-{__version__}-py3-none-any.whl"
    assert dist["sdist"].name == f"cdk_cleanrooms_ml-{__version__}.tar.gz"


def test_the_wheel_carries_the_handler_and_no_caches(dist: dict[str, Path]) -> None:
    names = zipfile.ZipFile(dist["wheel"]).namelist()
    for module in HANDLER_MODULES:
        assert f"cdk_cleanrooms_ml/_lambda/{module}" in names
    assert "cdk_cleanrooms_ml/py.typed" in names
    assert "cdk_cleanrooms_ml/rehearsal/framework_host.js" in names  # the rehearsal's Node.js host
    assert "cdk_cleanrooms_ml/__init__.py" in names
    unwanted = [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo")) or "/." in n]
    assert unwanted == []
    assert not any(n.startswith(("tests/", "examples/", "constructs/")) for n in names)


def test_the_sdist_carries_sources_and_changelog(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for module in HANDLER_MODULES:
        assert f"lambda/{module}" in names
    assert {"README.md", "CHANGELOG.md", "pyproject.toml", "constructs/cdk_cleanrooms_ml/__init__.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


_SYNTH_APP = textwrap.dedent(
    """
    import json, sys
    from aws_cdk import App, Environment, Stack
    import cdk_cleanrooms_ml
    from cdk_cleanrooms_ml import AudienceGenerationJob, S3DataSource, SeedAudience
    from cdk_cleanrooms_ml.handler_asset import handler_source_dir

    app = App(outdir=sys.argv[1])
    stack = Stack(app, "Installed", env=Environment(account="111122223333", region="us-east-1"))
    AudienceGenerationJob(
        stack,
        "Job",
        configured_audience_model_arn="arn:aws:cleanrooms-ml:us-east-1:111122223333:configured-audience-model/abc",
        seed_audience=SeedAudience(
            role="arn:aws:iam::111122223333:role/seed-reader",
            data_source=S3DataSource(s3_uri="s3://seed-bucket/seed.jsonl"),
        ),
    )
    app.synth()
    print(json.dumps({"package": cdk_cleanrooms_ml.__file__, "handler": str(handler_source_dir())}))
    """
)


def venv_with_the_wheel(env_dir: Path, wheel: Path) -> Path:
    """A new virtual environment with ``wheel`` installed (no index), borrowing the repository's other packages;
    returns its python."""
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The repository environment's packages (aws-cdk-lib, jsii, boto3), behind the new environment's own.
    (site_packages / "zz_repo_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    return python


def test_the_installed_wheel_synthesizes_a_complete_handler_asset(dist: dict[str, Path], tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    python = venv_with_the_wheel(env_dir, dist["wheel"])
    work = tmp_path / "app"
    work.mkdir()
    (work / "app.py").write_text(_SYNTH_APP)
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    result = subprocess.run(
        [str(python), "app.py", str(work / "cdk.out")],
        cwd=work,  # outside the repository: nothing can be imported from the checkout
        env=environment,  # PATH keeps Node 24 first (tests/conftest.py)
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    where = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(where["package"]).is_relative_to(env_dir)
    assert Path(where["handler"]) == Path(where["package"]).parent / "_lambda"

    (provider,) = nested_template_files(work / "cdk.out", "Installed")  # the handlers are in the provider's
    functions = [
        r
        for file in (work / "cdk.out" / "Installed.template.json", provider)
        for r in json.loads(file.read_text())["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler", "").startswith("entrypoints.")
    ]
    assert len(functions) == 2
    assets = json.loads((work / "cdk.out" / "Installed.assets.json").read_text())["files"]
    keys = {f["Properties"]["Code"]["S3Key"] for f in functions}
    assert len(keys) == 1  # both handlers run from one asset
    asset_dirs = {work / "cdk.out" / assets[k.removesuffix(".zip")]["source"]["path"] for k in keys}
    (asset,) = asset_dirs
    files = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
    for module in HANDLER_MODULES:
        assert module in files
    models = [f for f in files if f.startswith("models/cleanroomsml/") and f.endswith("/service-2.json")]
    assert len(models) == 1, files
    json.loads((asset / models[0]).read_text())  # a readable model
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
