"""The installed botocore ``cleanroomsml`` model, and the handler's model-walking rules that read it.

Validation at synth time and the deployed handler read the same model (the asset ships it) through
the same code (``lambda/model_rules.py``, loaded from the handler's source).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

# The loader and the model classes only: botocore.session would also import the client machinery,
# which synthesis never uses (about 0.1 s per `cdk synth`).
import botocore.loaders
import botocore.model

SERVICE_NAME = "cleanroomsml"
START_OPERATION = "StartAudienceGenerationJob"


@lru_cache(maxsize=1)
def _loader() -> Any:
    # Honours AWS_DATA_PATH like a botocore session does.
    return botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH"))


@lru_cache(maxsize=1)
def service_model() -> Any:
    """The installed ``cleanroomsml`` model (the newest API version botocore has)."""
    return botocore.model.ServiceModel(_loader().load_service_model(SERVICE_NAME, "service-2"), SERVICE_NAME)


def start_request_shape() -> Any:
    return service_model().operation_model(START_OPERATION).input_shape


def worker_types() -> list[str]:
    """The worker types the installed model declares (e.g. CR.1X, CR.4X, CR.8X)."""
    worker = start_request_shape().members["seedAudience"].members["sqlComputeConfiguration"].members["worker"]
    return list(worker.members["type"].enum)


#: The operations the handler calls; the shipped model keeps these and the shapes they reach.
HANDLER_OPERATIONS = (
    "StartAudienceGenerationJob",
    "GetAudienceGenerationJob",
    "DeleteAudienceGenerationJob",
    "ListAudienceGenerationJobs",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
)


@lru_cache(maxsize=1)
def model_files() -> dict[str, bytes]:
    """``<api-version>/service-2.json`` for the Lambda's AWS_DATA_PATH: the installed model, cut down.

    It keeps the handler's operations and the shapes they reach, drops the documentation strings
    (most of the file's size), and is written as plain JSON (older botocore releases read no
    compressed models), minified with sorted keys so the bytes depend on the model alone.
    """
    loader = _loader()
    version = service_model().api_version
    data = loader.load_service_model(SERVICE_NAME, "service-2", version)
    operations = {name: data["operations"][name] for name in HANDLER_OPERATIONS}
    shapes: dict[str, Any] = {}
    pending = [ref["shape"] for op in operations.values() for ref in _shape_refs(op)]
    while pending:
        name = pending.pop()
        if name in shapes:
            continue
        shapes[name] = data["shapes"][name]
        pending.extend(ref["shape"] for ref in _shape_refs(shapes[name]))
    trimmed = _without_docs({**data, "operations": operations, "shapes": shapes})
    text = json.dumps(trimmed, separators=(",", ":"), sort_keys=True)
    return {f"{version}/service-2.json": text.encode()}


def _shape_refs(node: Any) -> list[dict[str, Any]]:
    """Every ``{"shape": name}`` reference directly inside an operation or a shape."""
    refs: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "shape" and isinstance(value, str):
                refs.append(node)
            elif key != "documentation":
                refs.extend(_shape_refs(value))
    elif isinstance(node, list):
        for item in node:
            refs.extend(_shape_refs(item))
    return refs


def _without_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_docs(v) for k, v in node.items() if k not in ("documentation", "documentationUrl")}
    if isinstance(node, list):
        return [_without_docs(item) for item in node]
    return node


@lru_cache(maxsize=1)
def model_rules() -> ModuleType:
    """The handler's ``model_rules`` module, loaded from the handler source (one implementation for both sides)."""
    from .handler_asset import handler_source_dir

    path = Path(handler_source_dir()) / "model_rules.py"
    name = "cdk_cleanrooms_ml._model_rules"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is part of the package
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


__all__ = ["SERVICE_NAME", "model_files", "model_rules", "service_model", "start_request_shape", "worker_types"]
