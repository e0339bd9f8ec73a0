"""One measured synthesis, in its own process: ``python bench/synth_once.py <ours|peer|peer-role> <N> <outdir>``.

Prints one JSON line: the stack's CloudFormation resources (total and by type), the template's
bytes as written to the cloud assembly (what ``cdk deploy`` uploads) and their SHA-256, and the
in-process times of the imports, of building the constructs and of ``app.synth()``, and the jsii
round trips of each. The caller times the whole process.

Benchmark-only switches, read from the environment (``ours`` only): ``BENCH_UNCACHED`` names library
caches to switch off (``bench/uncached.py``); ``BENCH_ARN_READS=K`` reads each job's ARN K times.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

START = time.perf_counter()
#: CPU time of this Python process so far (interpreter start-up), then per phase: node's is not in it.
START_CPU = time.process_time()

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

    uncached: list[str] = []
    arn_reads = 0
    if side == "ours":  # the library's import (it reads the botocore model) belongs to its imports
        import uncached as switches

        import cdk_cleanrooms_ml  # noqa: F401

        uncached = switches.parse(os.environ.get("BENCH_UNCACHED"))
        switches.disable(uncached)
        arn_reads = int(os.environ.get("BENCH_ARN_READS") or 0)
    _count_jsii_calls()
    imported, imported_cpu = time.perf_counter(), time.process_time()
    app = App(outdir=outdir)
    stack = stacks.build(app, side, count, arn_reads)
    built, built_cpu = time.perf_counter(), time.process_time()
    build_calls = CALLS[0]
    assembly = app.synth()
    synthesized, synthesized_cpu = time.perf_counter(), time.process_time()
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
                "template_sha256": hashlib.sha256(template_path.read_bytes()).hexdigest(),
                "uncached": uncached,
                "arn_reads": arn_reads,
                "import_s": imported - START,
                "build_s": built - imported,
                "synth_s": synthesized - built,
                "python_start_cpu_s": START_CPU,
                "python_import_cpu_s": imported_cpu - START_CPU,
                "python_build_cpu_s": built_cpu - imported_cpu,
                "python_synth_cpu_s": synthesized_cpu - built_cpu,
                "jsii_build_calls": build_calls,
                "jsii_synth_calls": synth_calls,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
