"""Refresh the service models the library ships (lambda/models/), from the installed botocore.

    python .ci/refresh_service_model.py          # rewrite the shipped files
    python .ci/refresh_service_model.py --check  # exit 1 if they differ from what the installed botocore gives

The handler's Lambda asset and synth-time validation both read these files, so the library behaves the
same whatever botocore the user's environment or the Lambda runtime has. Each file keeps the operations
the handler calls and the shapes they reach, without documentation strings, as sorted, minified JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import botocore.loaders

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "lambda" / "models"

#: service -> the operations the handler calls.
OPERATIONS = {
    "cleanroomsml": (
        "StartAudienceGenerationJob",
        "GetAudienceGenerationJob",
        "DeleteAudienceGenerationJob",
        "ListAudienceGenerationJobs",
        "StartAudienceExportJob",
        "ListAudienceExportJobs",
        "CreateConfiguredAudienceModel",
        "GetConfiguredAudienceModel",
        "UpdateConfiguredAudienceModel",
        "DeleteConfiguredAudienceModel",
        "ListConfiguredAudienceModels",
        "CreateAudienceModel",
        "GetAudienceModel",
        "ListAudienceModels",
        "DeleteAudienceModel",
        "PutConfiguredAudienceModelPolicy",
        "GetConfiguredAudienceModelPolicy",
        "DeleteConfiguredAudienceModelPolicy",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
    ),
    "cleanrooms": (
        "CreateConfiguredAudienceModelAssociation",
        "GetConfiguredAudienceModelAssociation",
        "UpdateConfiguredAudienceModelAssociation",
        "DeleteConfiguredAudienceModelAssociation",
        "ListConfiguredAudienceModelAssociations",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
    ),
}


def trimmed(service: str, operations: tuple[str, ...]) -> tuple[str, bytes]:
    loader = botocore.loaders.create_loader()
    data = loader.load_service_model(service, "service-2")
    version = data["metadata"]["apiVersion"]
    kept = {name: data["operations"][name] for name in operations}
    shapes: dict[str, Any] = {}
    pending = [ref["shape"] for op in kept.values() for ref in _shape_refs(op)]
    while pending:
        name = pending.pop()
        if name not in shapes:
            shapes[name] = data["shapes"][name]
            pending.extend(ref["shape"] for ref in _shape_refs(shapes[name]))
    model = _without_docs({**data, "operations": kept, "shapes": shapes})
    return f"{service}/{version}/service-2.json", json.dumps(model, separators=(",", ":"), sort_keys=True).encode()


def _shape_refs(node: Any) -> list[dict[str, Any]]:
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


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for service, operations in OPERATIONS.items():
        relative, content = trimmed(service, operations)
        path = MODELS / relative
        if check:
            if not path.is_file() or path.read_bytes() != content:
                stale.append(relative)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        print(f"wrote {path.relative_to(ROOT)} ({len(content):,} bytes)")
    if stale:
        print("stale shipped models (run python .ci/refresh_service_model.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
