"""The handler's cold-start import cost and the size of its Lambda asset.

``python bench/import_bench.py [--reps 9]`` prints JSON. Each sample is a fresh interpreter that
times one ``import`` statement (``time.perf_counter`` around it, so interpreter start-up is not
counted): ``import boto3`` alone, and ``import entrypoints`` from the staged asset directory (with
``AWS_DATA_PATH`` pointing at its ``models/`` as on Lambda). The two are interleaved and the
medians compared. No bytecode is written, so the handler's modules are compiled on each import,
as they are on Lambda, whose code directory is read-only and whose asset carries no ``.pyc``.

The asset size is the staged directory (``cdk_cleanrooms_ml.handler_asset.staged_asset_dir()``)
zipped with deflate, which is how the CDK uploads a directory asset.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

_TIMED_IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def _import_seconds(module: str, cwd: Path | None, env: dict[str, str]) -> float:
    code = _TIMED_IMPORT.format(module=module)
    if cwd is not None:  # the Lambda runtime puts the code directory first on sys.path
        code = f"import sys; sys.path.insert(0, {str(cwd)!r}); " + code
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def import_times(reps: int = 9) -> dict[str, Any]:
    """Median seconds of ``import boto3`` and of ``import entrypoints`` (fresh interpreters, interleaved)."""
    env = _env.prepare()
    from cdk_cleanrooms_ml.handler_asset import MODELS_DIR, staged_asset_dir

    asset = staged_asset_dir()
    env = {**env, "AWS_DATA_PATH": str(asset / MODELS_DIR), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)  # the handler sees boto3 and its own directory, nothing of the library
    boto3_s: list[float] = []
    handler_s: list[float] = []
    _import_seconds("boto3", None, env)  # warm the disk cache once for both
    for _ in range(reps):
        boto3_s.append(_import_seconds("boto3", None, env))
        handler_s.append(_import_seconds("entrypoints", asset, env))
    boto3_median = statistics.median(boto3_s)
    handler_median = statistics.median(handler_s)
    return {
        "reps": reps,
        "boto3_s": boto3_median,
        "handler_s": handler_median,
        "ratio": handler_median / boto3_median,
        "boto3_samples": boto3_s,
        "handler_samples": handler_s,
    }


def asset_size() -> dict[str, Any]:
    """Bytes of the staged handler asset, raw and zipped, in total and for the service model alone."""
    _env.prepare()
    from cdk_cleanrooms_ml.handler_asset import MODELS_DIR, staged_asset_dir

    asset = staged_asset_dir()
    files = sorted(p for p in asset.rglob("*") if p.is_file())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            archive.write(path, path.relative_to(asset).as_posix())
    models = [p for p in files if p.relative_to(asset).parts[0] == MODELS_DIR]
    model_buffer = io.BytesIO()
    with zipfile.ZipFile(model_buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in models:
            archive.write(path, path.relative_to(asset).as_posix())
    return {
        "files": [p.relative_to(asset).as_posix() for p in files],
        "raw_bytes": sum(p.stat().st_size for p in files),
        "zipped_bytes": len(buffer.getvalue()),
        "model_raw_bytes": sum(p.stat().st_size for p in models),
        "model_zipped_bytes": len(model_buffer.getvalue()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9, help="fresh interpreters per import (default: 9)")
    args = parser.parse_args(argv)
    print(json.dumps({"import": import_times(args.reps), "asset": asset_size()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
