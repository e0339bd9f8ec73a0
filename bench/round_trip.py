"""The CPU cost of one jsii round trip: ``python bench/round_trip.py [--calls 3000] [--reps 5]`` prints JSON.

A cache in the constructs saves round trips; whether that is worth its lines depends on what one costs. A
whole synthesis varies by more than a few hundred round trips cost on a busy machine, so this measures the
cost alone, in one process: the same cheap call repeated ``calls`` times, ``reps`` times per kind, with the
CPU of this Python process (``time.process_time``) and of jsii's node processes (the runtime and the
kernel it starts, read from ``/proc/<pid>/stat``: Linux only). Kinds: a property read (``stack.region``)
and a static call (``Stack.of(stack)``), the commonest calls the caches save.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env


def _node_pids() -> list[int]:
    """jsii's node runtime process and its children (the kernel)."""
    from jsii._kernel.providers import process

    runtimes = [o for o in gc.get_objects() if isinstance(o, process._NodeProcess)]
    pids: list[int] = []
    for runtime in runtimes:
        pid = runtime._process.pid
        pids.append(pid)
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if children.exists():
            pids += [int(c) for c in children.read_text().split()]
    return pids


def _cpu_of(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(calls: int, reps: int) -> dict[str, Any]:
    _env.prepare()
    from aws_cdk import App, Stack

    stack = Stack(App(), "RoundTrips")
    pids = _node_pids()
    if not pids or not Path(f"/proc/{pids[0]}/stat").exists():
        raise RuntimeError("needs Linux's /proc to read node's CPU time")
    kinds: dict[str, Callable[[], object]] = {
        "property read (stack.region)": lambda: stack.region,
        "static call (Stack.of)": lambda: Stack.of(stack),
    }
    result: dict[str, Any] = {"calls": calls, "reps": reps, "kinds": {}}
    for name, call in kinds.items():
        python_us: list[float] = []
        node_us: list[float] = []
        for _ in range(reps):
            node_before, python_before = _cpu_of(pids), time.process_time()
            for _ in range(calls):
                call()
            node_after, python_after = _cpu_of(pids), time.process_time()
            python_us.append((python_after - python_before) / calls * 1e6)
            node_us.append((node_after - node_before) / calls * 1e6)
        totals = [p + n for p, n in zip(python_us, node_us, strict=True)]
        result["kinds"][name] = {
            "python_us": statistics.median(python_us),
            "node_us": statistics.median(node_us),
            "total_us": statistics.median(totals),
            "total_min_us": min(totals),
            "total_max_us": max(totals),
        }
    result["total_us"] = statistics.median(k["total_us"] for k in result["kinds"].values())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="round trips per sample (default: 3000)")
    parser.add_argument("--reps", type=int, default=5, help="samples per kind (default: 5)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.calls, args.reps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
