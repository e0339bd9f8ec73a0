"""One measured synthesis, in its own process: ``python bench/synth_once.py <ours|peer> <N> <outdir>``.

Prints one JSON line: the stack's CloudFormation resources (total and by type), the template's
bytes as written to the cloud assembly (what ``cdk deploy`` uploads), and the in-process times of
the imports, of building the constructs and of ``app.synth()``. The caller times the whole process.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

START = time.perf_counter()

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env  # noqa: E402

_env.prepare()

#: Messages this process sent to the jsii kernel (node): each is one round trip, the usual cost of a construct.
CALLS = [0]


def _count_jsii_calls() -> None:
    from jsii._kernel.providers import process

    send = process._NodeProcess.send

    def counting_send(self: object, *args: object, **kwargs: object) -> object:
        CALLS[0] += 1
        return send(self, *args, **kwargs)  # type: ignore[arg-type]

    process._NodeProcess.send = counting_send  # type: ignore[method-assign,assignment]


def main(argv: list[str]) -> int:
    side, count, outdir = argv[0], int(argv[1]), argv[2]
    import stacks
    from aws_cdk import App

    if side == "ours":  # the library's import (it reads the botocore model) belongs to its imports
        import cdk_cleanrooms_ml  # noqa: F401
    _count_jsii_calls()
    imported = time.perf_counter()
    app = App(outdir=outdir)
    stack = stacks.build(app, side, count)
    built = time.perf_counter()
    build_calls = CALLS[0]
    assembly = app.synth()
    synthesized = time.perf_counter()
    synth_calls = CALLS[0] - build_calls

    artifact = assembly.get_stack_artifact(stack.artifact_id)
    template_path = Path(artifact.template_full_path)
    template = json.loads(template_path.read_text())
    types = Counter(resource["Type"] for resource in template.get("Resources", {}).values())
    print(
        json.dumps(
            {
                "side": side,
                "n": count,
                "resources": sum(types.values()),
                "types": dict(sorted(types.items())),
                "template_bytes": template_path.stat().st_size,
                "import_s": imported - START,
                "build_s": built - imported,
                "synth_s": synthesized - built,
                "jsii_build_calls": build_calls,
                "jsii_synth_calls": synth_calls,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
