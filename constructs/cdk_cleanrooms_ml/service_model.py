"""The service models the library ships, and the handler's own modules that read them at synth time.

Synth-time validation and the deployed handler read the same model: the one in the handler's asset
(``lambda/models/``, found by the Lambda functions through ``AWS_DATA_PATH``). Neither depends on the
botocore that happens to be installed where ``cdk synth`` runs or in the Lambda runtime; the models
are refreshed from botocore by ``.ci/refresh_service_model.py``. The model-walking rules
(``lambda/model_rules.py``) and the resource specs (``lambda/specs.py``) are loaded from the handler's
source too: one implementation for both sides.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

# The model classes only: botocore.session would also import the client machinery, which synthesis
# never uses (about 0.1 s per `cdk synth`).
import botocore.model

SERVICE_NAME = "cleanroomsml"
START_OPERATION = "StartAudienceGenerationJob"
#: Where the handler's asset keeps the models; the Lambda functions' AWS_DATA_PATH points here.
MODELS_DIR = "models"


def models_dir() -> Path:
    from .handler_asset import handler_source_dir

    return handler_source_dir() / MODELS_DIR


@cache
def service_model(service: str = SERVICE_NAME) -> Any:
    """The shipped model of ``service`` (one API version per service)."""
    (path,) = sorted((models_dir() / service).glob("*/service-2.json"))
    return botocore.model.ServiceModel(json.loads(path.read_text()), service)


def operation_names(service: str = SERVICE_NAME) -> list[str]:
    """The operations the shipped model keeps: the ones the handler calls."""
    return list(service_model(service).operation_names)


def request_shape(operation: str, service: str = SERVICE_NAME) -> Any:
    return service_model(service).operation_model(operation).input_shape


def start_request_shape() -> Any:
    return request_shape(START_OPERATION)


def worker_types() -> list[str]:
    """The worker types the shipped model declares (e.g. CR.1X, CR.4X, CR.8X)."""
    worker = start_request_shape().members["seedAudience"].members["sqlComputeConfiguration"].members["worker"]
    return list(worker.members["type"].enum)


def model_files() -> dict[str, bytes]:
    """Every file under the shipped models directory, by path relative to it."""
    root = models_dir()
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _handler_module(name: str) -> ModuleType:
    """A module of the handler's source, loaded under a private name (its own name stays free)."""
    from .handler_asset import handler_source_dir

    qualified = f"cdk_cleanrooms_ml._{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    path = Path(handler_source_dir()) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is part of the package
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


def model_rules() -> ModuleType:
    """The handler's ``model_rules`` module (standard library only)."""
    return _handler_module("model_rules")


def specs() -> ModuleType:
    """The handler's ``specs`` module: the resource types, declared once for the construct and the handler."""
    return _handler_module("specs")


__all__ = [
    "MODELS_DIR",
    "SERVICE_NAME",
    "model_files",
    "model_rules",
    "operation_names",
    "request_shape",
    "service_model",
    "specs",
    "start_request_shape",
    "worker_types",
]
