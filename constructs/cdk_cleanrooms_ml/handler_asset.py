"""The handler's code as a Lambda asset: the ``lambda/`` files plus the service models they run against.

The asset carries the models that synthesis validates against (``lambda/models/``, found through
``AWS_DATA_PATH``), so the deployed handler does not depend on the age of the SDK bundled in the
Lambda runtime. Only the handler's ``.py`` files and the models are staged: caches (``__pycache__``,
``*.pyc``) never change the asset hash.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from .service_model import MODELS_DIR, model_files


@lru_cache(maxsize=1)
def handler_source_dir() -> Path:
    """The handler's source: inside the installed package (wheel), or ``lambda/`` of a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_lambda", here.parent.parent / "lambda"):
        if (candidate / "entrypoints.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"the handler code is missing: looked in {here / '_lambda'} and {here.parent.parent / 'lambda'}"
    )


def handler_files() -> list[Path]:
    return sorted(p for p in handler_source_dir().glob("*.py") if p.is_file())


@lru_cache(maxsize=1)
def staged_asset_dir() -> Path:
    """A directory with exactly what the Lambda functions need, staged once per process.

    Its name is the hash of its contents, so the same code gives the same directory and asset hash.
    """
    files: dict[str, bytes] = {p.name: p.read_bytes() for p in handler_files()}
    for relative, content in model_files().items():
        files[f"{MODELS_DIR}/{relative}"] = content
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    target = Path(tempfile.gettempdir()) / f"cdk-cleanrooms-ml-handler-{digest.hexdigest()[:16]}"
    if target.is_dir() and not _holds_exactly(target, files):
        shutil.rmtree(target, ignore_errors=True)  # something wrote into it (a cache, say): stage anew
    if not target.is_dir():
        scratch = Path(tempfile.mkdtemp(prefix="cdk-cleanrooms-ml-staging-"))
        for name, content in files.items():
            path = scratch / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        try:
            scratch.rename(target)
        except OSError:  # another process staged it first: same content
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def _holds_exactly(directory: Path, files: dict[str, bytes]) -> bool:
    found = {str(p.relative_to(directory)): p for p in directory.rglob("*") if p.is_file()}
    return set(found) == set(files) and all(found[name].read_bytes() == files[name] for name in files)
