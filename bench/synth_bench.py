"""Synthesis benchmark: ``AudienceGenerationJob`` against aws-cdk-lib's ``AwsCustomResource`` peer.

Run it from the repository root (``. .ci/env.sh`` first, or any Python with the dev extras)::

    python bench/synth_bench.py                 # N = 1, 10, 100 and the largest N that fits, 3 runs each
    python bench/synth_bench.py --sizes 1,2 --reps 1 --no-max --out /tmp/bench

For every N and side it synthesizes a stack of one shared seed role and N jobs (``bench/stacks.py``),
each run in a fresh ``python`` process (``bench/synth_once.py``), ours and the peer's interleaved so
that load from other processes hits both alike. Reported per N and side:

- CloudFormation resources in the template, and per job added since the previous N;
- template bytes (the file in the cloud assembly, which ``cdk deploy`` uploads), and per added job;
- synthesis time, median of the runs: the wall time of the whole process (interpreter, imports,
  jsii's node start, building the constructs, ``app.synth()``), which is what a user's ``cdk synth``
  pays; and, inside it, building the constructs plus ``app.synth()`` alone;
- jsii round trips (messages from Python to node) while building and synthesizing;
- the ratio ours / peer of both times.

The largest N within CloudFormation's limits (500 resources, 1 MB = 1,048,576 bytes of template) is
computed for each side from the per-job and constant costs measured between the two largest sizes,
then synthesized to confirm it. The handler's import cost and asset size (``bench/import_bench.py``)
are measured in the same run. Outputs: ``synth.md`` (tables and target checks), ``synth.png``
(resources and synthesis time against N) and ``synth.json`` (every sample) in ``--out``
(default ``docs/benchmarks/``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env
import import_bench

SIDES = ("ours", "peer")
LABELS = {"ours": "cdk-cleanrooms-ml AudienceGenerationJob", "peer": "AwsCustomResource (peer)"}
MAX_RESOURCES = 500
MAX_TEMPLATE_BYTES = 1_048_576  # 1 MB: CloudFormation's limit for a template uploaded through S3
ONCE = Path(__file__).resolve().parent / "synth_once.py"

#: Targets of issue 6, checked in the report.
TARGET_RESOURCES_PER_JOB = 1
TARGET_JOBS_IN_ONE_STACK = 480
TARGET_BYTES_PER_JOB_SHARE = 0.5
TARGET_IMPORT_RATIO = 1.2
TARGET_ASSET_BYTES = 100 * 1024
TARGET_TIME_N = 100


@dataclass
class Point:
    """Every run of one side at one N."""

    side: str
    n: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def resources(self) -> int:
        return int(self.runs[0]["resources"])

    @property
    def template_bytes(self) -> int:
        return int(self.runs[0]["template_bytes"])

    @property
    def wall_s(self) -> float:
        return float(statistics.median(r["wall_s"] for r in self.runs))

    @property
    def inside_s(self) -> float:
        return float(statistics.median(r["build_s"] + r["synth_s"] for r in self.runs))

    @property
    def cpu_s(self) -> float:
        return float(statistics.median(r["cpu_s"] for r in self.runs))

    @property
    def jsii_calls(self) -> int:
        return int(self.runs[0]["jsii_build_calls"] + self.runs[0]["jsii_synth_calls"])

    def within_limits(self) -> bool:
        return self.resources <= MAX_RESOURCES and self.template_bytes <= MAX_TEMPLATE_BYTES


def synth_once(side: str, n: int, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """One synthesis in a fresh process; its output plus the process's wall time."""
    outdir = tempfile.mkdtemp(prefix=f"{side}-{n}-", dir=workdir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ONCE), side, str(n), outdir], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"synthesizing {side} N={n} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    # CPU of the process and of node under it (jsii waits for node): less sensitive to other load than wall time.
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def measure(sizes: list[int], reps: int, env: dict[str, str], workdir: Path, log: Any) -> dict[tuple[str, int], Point]:
    points: dict[tuple[str, int], Point] = {}
    for n in sizes:
        for rep in range(reps):
            order = SIDES if rep % 2 == 0 else tuple(reversed(SIDES))  # alternate who goes first
            for side in order:
                run = synth_once(side, n, env, workdir)
                points.setdefault((side, n), Point(side, n)).runs.append(run)
                log(
                    f"  {side:4} N={n:<4} run {rep + 1}/{reps}: {run['wall_s']:.2f} s process, "
                    f"{run['build_s'] + run['synth_s']:.2f} s build+synth, {run['resources']} resources"
                )
    return points


@dataclass
class Costs:
    """Linear costs of a side: constant part plus a per-job part, from two sizes."""

    resources_per_job: float
    resources_constant: float
    bytes_per_job: float
    bytes_constant: float

    @staticmethod
    def between(low: Point, high: Point) -> Costs:
        jobs = high.n - low.n
        r_job = (high.resources - low.resources) / jobs
        b_job = (high.template_bytes - low.template_bytes) / jobs
        return Costs(r_job, high.resources - r_job * high.n, b_job, high.template_bytes - b_job * high.n)

    def max_jobs(self) -> tuple[int, str]:
        """The largest N within both limits, and which limit binds."""
        by_resources = math.floor((MAX_RESOURCES - self.resources_constant) / self.resources_per_job + 1e-9)
        by_bytes = math.floor((MAX_TEMPLATE_BYTES - self.bytes_constant) / self.bytes_per_job)
        return (by_resources, "resources") if by_resources <= by_bytes else (by_bytes, "template bytes")


def confirm_max(
    side: str, costs: Costs, reps: int, env: dict[str, str], workdir: Path, log: Any
) -> tuple[Point, int, str]:
    """Synthesize the computed largest N; step down if the measured stack breaks a limit after all."""
    n, binding = costs.max_jobs()
    computed = n
    while True:
        point = Point(side, n)
        for _ in range(reps):
            point.runs.append(synth_once(side, n, env, workdir))
        log(
            f"  {side:4} N={n:<4} (computed largest): {point.resources} resources, "
            f"{point.template_bytes} bytes, {point.wall_s:.2f} s process"
        )
        if point.within_limits() or n <= 1:
            return point, computed, binding
        n -= 1


# --------------------------------------------------------------------------------------------------
# Reporting


def _thousands(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "not run"


def _yes_no(value: Any) -> str:
    return "not run" if value is None else ("yes" if value else "**no**")


def _ratio(ours: float, peer: float) -> str:
    return f"{ours / peer:.2f}" if peer else "n/a"


def _per_job(points: list[Point], index: int, attr: str) -> str:
    if index == 0:
        return "-"
    low, high = points[index - 1], points[index]
    return f"{(getattr(high, attr) - getattr(low, attr)) / (high.n - low.n):.1f}"


def render_markdown(report: dict[str, Any], points: dict[tuple[str, int], Point]) -> str:
    lines = [
        "# Synthesis benchmark: AudienceGenerationJob vs. AwsCustomResource",
        "",
        f"Generated by `python bench/synth_bench.py` ({report['reps']} runs per size, "
        f"{report['max_reps']} at the largest N) on {report['machine']}, {report['date']}. "
        "Each run is a fresh `python` process; *process* is its whole wall time (interpreter, imports, jsii's node "
        "start, building the constructs, `app.synth()`), *build+synth* the part after the imports, *CPU* the CPU "
        "time of the process and its node child (less sensitive than wall time to other load on the machine), "
        "*jsii calls* the round trips from Python to node. Medians. "
        "Both stacks hold one shared seed `iam.Role` and N jobs with the same request (model ARN, S3 seed, role); "
        "the peer is `custom_resources.AwsCustomResource` calling `CleanRoomsML.startAudienceGenerationJob` "
        "(delete: `deleteAudienceGenerationJob`, policy `from_sdk_calls(resources=ANY_RESOURCE)`).",
        "",
        "| N | side | resources | per added job | template bytes | per added job | process s | "
        "build+synth s | CPU s | jsii calls | ours/peer: process | build+synth | CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side in SIDES:
        series = sorted((p for (s, _), p in points.items() if s == side), key=lambda p: p.n)
        report.setdefault("series", {})[side] = [p.n for p in series]
    all_ns = sorted({n for (_, n) in points})
    for n in all_ns:
        for side in SIDES:
            point = points.get((side, n))
            if point is None:
                continue
            series = sorted((p for (s, _), p in points.items() if s == side), key=lambda p: p.n)
            index = series.index(point)
            other = points.get(("peer", n))
            ratio_wall = _ratio(point.wall_s, other.wall_s) if side == "ours" and other else ""
            ratio_inside = _ratio(point.inside_s, other.inside_s) if side == "ours" and other else ""
            ratio_cpu = _ratio(point.cpu_s, other.cpu_s) if side == "ours" and other else ""
            lines.append(
                f"| {n} | {side} | {point.resources} | {_per_job(series, index, 'resources')} | "
                f"{point.template_bytes:,} | {_per_job(series, index, 'template_bytes')} | {point.wall_s:.2f} | "
                f"{point.inside_s:.2f} | {point.cpu_s:.2f} | {point.jsii_calls} | {ratio_wall} | {ratio_inside} | "
                f"{ratio_cpu} |"
            )
    lines += ["", "## Per-job and constant costs, and the largest stack", ""]
    lines += [
        "| side | resources per job | constant resources | bytes per job | constant bytes | largest N (computed) | "
        "binding limit | confirmed: resources | confirmed: template bytes | within limits |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for side in SIDES:
        info = report["max"].get(side)
        if info is None:
            continue
        lines.append(
            f"| {side} | {info['resources_per_job']:g} | {info['resources_constant']:g} | "
            f"{info['bytes_per_job']:.1f} | {info['bytes_constant']:,.0f} | {info['computed_n']} | {info['binding']} | "
            f"{info.get('confirmed_resources', 'not run')} | {_thousands(info.get('confirmed_template_bytes'))} | "
            f"{_yes_no(info.get('confirmed_within_limits'))} |"
        )
    lines += ["", "## Targets (issue 6)", "", "| target | measured | met |", "|---|---|---|"]
    for target in report["targets"]:
        lines.append(f"| {target['target']} | {target['measured']} | {'yes' if target['met'] else '**no**'} |")
    imp = report.get("import")
    if imp:
        lines += [
            "",
            f"Handler import: `import entrypoints` from the staged asset {imp['handler_s'] * 1000:.0f} ms, "
            f"`import boto3` alone {imp['boto3_s'] * 1000:.0f} ms (medians of {imp['reps']} fresh interpreters, "
            "no bytecode cache, as on Lambda).",
        ]
    asset = report.get("asset")
    if asset:
        lines += [
            "",
            f"Handler asset: {asset['raw_bytes']:,} bytes in {len(asset['files'])} files, "
            f"{asset['zipped_bytes']:,} bytes zipped; of which the trimmed `cleanroomsml` service model "
            f"{asset['model_raw_bytes']:,} bytes ({asset['model_zipped_bytes']:,} zipped), shipped on purpose so "
            "the deployed handler does not depend on the botocore bundled in the Lambda runtime.",
        ]
    lines += ["", "![resources and synthesis time against N](synth.png)", ""]
    return "\n".join(lines)


def render_plot(points: dict[tuple[str, int], Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"ours": ("tab:blue", "o"), "peer": ("tab:orange", "s")}
    for side in SIDES:
        series = sorted((p for (s, _), p in points.items() if s == side), key=lambda p: p.n)
        if not series:
            continue
        colour, marker = styles[side]
        ns = [p.n for p in series]
        left.plot(ns, [p.resources for p in series], marker=marker, color=colour, label=LABELS[side])
        # CPU time first: it hardly moves with other load on the machine; wall time of the process for reference.
        right.plot(ns, [p.cpu_s for p in series], marker=marker, color=colour, label=f"{side}: CPU")
        right.plot(
            ns,
            [p.wall_s for p in series],
            marker=marker,
            color=colour,
            linestyle=":",
            alpha=0.6,
            label=f"{side}: process wall time",
        )
    left.axhline(MAX_RESOURCES, color="grey", linestyle=":", label="CloudFormation limit (500)")
    left.set(xlabel="jobs in the stack (N)", ylabel="CloudFormation resources", title="Resources")
    right.set(xlabel="jobs in the stack (N)", ylabel="seconds (median, fresh process)", title="Synthesis time")
    right.set_ylim(bottom=0)
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def targets(report: dict[str, Any], points: dict[tuple[str, int], Point]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    ours_max, peer_max = report["max"].get("ours"), report["max"].get("peer")
    if ours_max and peer_max:
        found.append(
            {
                "target": f"resources per added job = {TARGET_RESOURCES_PER_JOB} (peer: 2)",
                "measured": f"ours {ours_max['resources_per_job']:g}, peer {peer_max['resources_per_job']:g}",
                "met": ours_max["resources_per_job"] == TARGET_RESOURCES_PER_JOB,
            }
        )
        confirmed = ours_max.get("confirmed_n")
        found.append(
            {
                "target": f"{TARGET_JOBS_IN_ONE_STACK} jobs + one seed role in one stack, within limits",
                "measured": f"largest N ours {confirmed or ours_max['computed_n']} "
                f"({'synthesized' if confirmed else 'computed only'}), "
                f"peer {peer_max.get('confirmed_n') or peer_max['computed_n']}",
                "met": bool(
                    confirmed and confirmed >= TARGET_JOBS_IN_ONE_STACK and ours_max.get("confirmed_within_limits")
                ),
            }
        )
        share = ours_max["bytes_per_job"] / peer_max["bytes_per_job"]
        found.append(
            {
                "target": "template bytes per added job <= half the peer's",
                "measured": f"ours {ours_max['bytes_per_job']:.0f}, peer {peer_max['bytes_per_job']:.0f} "
                f"({share:.2f}x)",
                "met": share <= TARGET_BYTES_PER_JOB_SHARE,
            }
        )
    ours_t, peer_t = points.get(("ours", TARGET_TIME_N)), points.get(("peer", TARGET_TIME_N))
    if ours_t and peer_t:
        found.extend(
            [
                {
                    "target": f"synthesis at N={TARGET_TIME_N} no slower than the peer's (process wall time)",
                    "measured": f"ours {ours_t.wall_s:.2f} s, peer {peer_t.wall_s:.2f} s "
                    f"({ours_t.wall_s / peer_t.wall_s:.2f}x); build+synth {ours_t.inside_s:.2f} s vs "
                    f"{peer_t.inside_s:.2f} s ({ours_t.inside_s / peer_t.inside_s:.2f}x)",
                    "met": ours_t.wall_s <= peer_t.wall_s,
                },
                {
                    "target": f"synthesis at N={TARGET_TIME_N}: CPU time no more than the peer's",
                    "measured": f"ours {ours_t.cpu_s:.2f} s, peer {peer_t.cpu_s:.2f} s "
                    f"({ours_t.cpu_s / peer_t.cpu_s:.2f}x)",
                    "met": ours_t.cpu_s <= peer_t.cpu_s,
                },
            ]
        )
    imp = report.get("import")
    if imp:
        found.append(
            {
                "target": f"handler import <= {TARGET_IMPORT_RATIO}x importing boto3",
                "measured": f"{imp['ratio']:.2f}x",
                "met": imp["ratio"] <= TARGET_IMPORT_RATIO,
            }
        )
    asset = report.get("asset")
    if asset:
        found.append(
            {
                "target": "handler asset < 100 KB zipped",
                "measured": f"{asset['zipped_bytes'] / 1024:.1f} KB "
                f"(service model {asset['model_zipped_bytes'] / 1024:.1f} KB of it)",
                "met": asset["zipped_bytes"] < TARGET_ASSET_BYTES,
            }
        )
    return found


def write(report: dict[str, Any], points: dict[tuple[str, int], Point], out: Path, with_json: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.md").write_text(render_markdown(report, points))
    render_plot(points, out / "synth.png")
    if with_json:
        (out / "synth.json").write_text(json.dumps(report, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthesis benchmark against AwsCustomResource (see module docstring)")
    parser.add_argument("--sizes", default="1,10,100", help="comma-separated N to measure (default: 1,10,100)")
    parser.add_argument("--reps", type=int, default=3, help="runs per side and N (default: 3)")
    parser.add_argument("--max-reps", type=int, default=1, help="runs at the largest N (default: 1)")
    parser.add_argument("--no-max", action="store_true", help="skip the largest-N computation and synthesis")
    parser.add_argument("--import-reps", type=int, default=9, help="fresh interpreters per import (default: 9)")
    parser.add_argument("--no-import", action="store_true", help="skip the handler import and asset measurement")
    parser.add_argument(
        "--out", type=Path, default=_env.DEFAULT_OUT, help="output directory (default: docs/benchmarks)"
    )
    parser.add_argument("--render", type=Path, help="only write synth.md and synth.png again from this synth.json")
    args = parser.parse_args(argv)
    if args.render:
        saved: dict[str, Any] = json.loads(args.render.read_text())
        kept = {(p["side"], p["n"]): Point(p["side"], p["n"], p["runs"]) for p in saved["points"]}
        saved["targets"] = targets(saved, kept)
        write(saved, kept, args.out, with_json=args.render.resolve() != (args.out / "synth.json").resolve())
        return 0
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if len(sizes) < 2 or sizes[0] < 1:
        parser.error("--sizes needs at least two sizes, all >= 1 (per-job costs come from the two largest)")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    env = _env.prepare()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "reps": args.reps,
        "max_reps": args.max_reps,
        "sizes": sizes,
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "max": {},
    }
    with tempfile.TemporaryDirectory(prefix="cdk-cleanrooms-ml-bench-") as tmp:
        workdir = Path(tmp)
        log(f"synthesizing N = {sizes}, {args.reps} runs each, ours and peer interleaved")
        points = measure(sizes, args.reps, env, workdir, log)
        for side in SIDES:
            costs = Costs.between(points[(side, sizes[-2])], points[(side, sizes[-1])])
            computed, binding = costs.max_jobs()
            info: dict[str, Any] = {**costs.__dict__, "computed_n": computed, "binding": binding}
            if not args.no_max:
                point, computed, binding = confirm_max(side, costs, args.max_reps, env, workdir, log)
                points[(side, point.n)] = point
                info.update(
                    confirmed_n=point.n,
                    confirmed_resources=point.resources,
                    confirmed_template_bytes=point.template_bytes,
                    confirmed_within_limits=point.within_limits(),
                )
            report["max"][side] = info
    if not args.no_import:
        log("timing the handler import and sizing its asset")
        report["import"] = import_bench.import_times(args.import_reps)
        report["asset"] = import_bench.asset_size()
    report["targets"] = targets(report, points)
    report["elapsed_s"] = time.perf_counter() - started
    report["points"] = [
        {
            "side": p.side,
            "n": p.n,
            "resources": p.resources,
            "template_bytes": p.template_bytes,
            "wall_s": p.wall_s,
            "build_synth_s": p.inside_s,
            "cpu_s": p.cpu_s,
            "jsii_calls": p.jsii_calls,
            "runs": p.runs,
        }
        for p in sorted(points.values(), key=lambda p: (p.n, p.side))
    ]

    write(report, points, args.out)
    log(f"wrote {args.out / 'synth.md'}, synth.png and synth.json in {report['elapsed_s']:.0f} s")
    for target in report["targets"]:
        log(f"  {'MET ' if target['met'] else 'MISS'} {target['target']}: {target['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
