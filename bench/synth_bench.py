"""Synthesis benchmark: ``AudienceGenerationJob`` against aws-cdk-lib's ``AwsCustomResource``, used two ways.

Run it from the repository root (``. .ci/env.sh`` first, or any Python with the dev extras)::

    python bench/synth_bench.py                  # N = 1, 10, 100, 5 rounds, caches, the largest N
    python bench/synth_bench.py --sizes 1,2 --rounds 1 --no-max --caches all --cache-n 2 --out /tmp/bench

Three sides (``bench/stacks.py``), each a stack of one shared seed role and N jobs: ``ours``; ``peer``,
``AwsCustomResource`` as its documentation shows it (a policy per job); ``peer-role``, the same calls
with one shared ``role=`` (the peer at its best: one resource per job). Every synthesis runs in a fresh
``python`` process (``bench/synth_once.py``).

Rounds: each round synthesizes every side at every N once, in an order rotated from round to round, so
load from other processes on the machine falls on every side alike. Reported per side and N: the
median over rounds of each time, with its spread (min-max and quartiles in the JSON); the CPU time of
the process and its node child (much less sensitive to other load than wall time); resources, template
bytes and jsii round trips (the same in every round; the report says if not). The ratio ours / best
peer (the peer with the lower median for that metric) is computed per round and its median reported
(paired: a slow round slows both), beside the ratio of the medians.

Caches: at ``--cache-n`` (100) the rounds also synthesize ``ours`` with each of the library's jsii
caches switched off in the bench process (``bench/uncached.py``), with all of them off, and with each
job's ARN read twice, with and without the attribute cache: jsii calls and CPU time against all caches
on, and a check that the template is byte for byte the same.

The largest N within CloudFormation's limits (500 resources, 1 MB = 1,048,576 bytes of template) is
computed for each side from the per-job and constant costs between the two largest sizes, then
synthesized to confirm it. The handler's import cost and asset size (``bench/import_bench.py``) are
measured in the same run. Outputs: ``synth.md`` (tables, targets, caches, noise), ``synth.png``
(resources and CPU time against N) and ``synth.json`` (every sample) in ``--out`` (default
``docs/benchmarks/``).
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
import uncached

SIDES = ("ours", "peer", "peer-role")
PEERS = ("peer", "peer-role")
LABELS = {
    "ours": "cdk-cleanrooms-ml AudienceGenerationJob",
    "peer": "AwsCustomResource, documented usage (policy per job)",
    "peer-role": "AwsCustomResource with a shared role",
}
MAX_RESOURCES = 500
MAX_TEMPLATE_BYTES = 1_048_576  # 1 MB: CloudFormation's limit for a template uploaded through S3
ONCE = Path(__file__).resolve().parent / "synth_once.py"
ROUND_TRIP = Path(__file__).resolve().parent / "round_trip.py"
#: How often each job's ARN is read in the attribute cache's own measurement.
ARN_READS = 2
#: The cache measurements: every cache alone, all of them, and the ARN reads with and without attributes.
CACHE_CHOICES = (*uncached.CACHES, "all", "reads")

#: Targets (issue 11 §1, against the best peer; issue 6 for the handler), checked in the report.
TARGET_CPU_RATIO = 1.0
TARGET_BYTES_PER_JOB_RATIO = 0.8
TARGET_IMPORT_RATIO = 1.2
TARGET_ASSET_BYTES = 100 * 1024
TARGET_TIME_N = 100


@dataclass(frozen=True)
class Variant:
    """What one synthesis runs: a side, and for ``ours`` the caches switched off and the ARN reads."""

    key: str
    side: str
    uncached: tuple[str, ...] = ()
    arn_reads: int = 0

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "BENCH_UNCACHED": ",".join(self.uncached), "BENCH_ARN_READS": str(self.arn_reads)}


MAIN = tuple(Variant(side, side) for side in SIDES)


def cache_variants(choices: list[str]) -> list[Variant]:
    found: list[Variant] = []
    for choice in choices:
        if choice == "reads":
            found += [
                Variant(f"ours, ARN read {ARN_READS}x", "ours", (), ARN_READS),
                Variant(f"ours, ARN read {ARN_READS}x, without attribute", "ours", ("attribute",), ARN_READS),
            ]
        elif choice == "all":
            found.append(Variant("ours without any cache", "ours", tuple(uncached.CACHES)))
        else:
            found.append(Variant(f"ours without {choice}", "ours", (choice,)))
    return found


def stats(values: list[float]) -> dict[str, float]:
    """Median, min, max and quartiles (the quartiles equal min/max below 4 values)."""
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return {
        "median": float(statistics.median(values)),
        "min": min(values),
        "max": max(values),
        "q1": q1,
        "q3": q3,
    }


#: Values that should be the same in every run (resources, bytes, jsii calls) but were not.
VARIED: set[str] = set()


@dataclass
class Point:
    """Every run of one variant at one N."""

    key: str
    side: str
    n: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    def _same(self, name: str) -> Any:
        """A value every run should share; if one ever differs, the last run's is used and ``varied`` says so."""
        if len({json.dumps(r[name]) for r in self.runs}) > 1:
            VARIED.add(f"{self.key} N={self.n}: {name} {sorted({json.dumps(r[name]) for r in self.runs})}")
        return self.runs[-1][name]

    @property
    def resources(self) -> int:
        return int(self._same("resources"))

    @property
    def template_bytes(self) -> int:
        return int(self._same("template_bytes"))

    @property
    def template_sha256(self) -> str:
        return str(self._same("template_sha256"))

    @property
    def jsii_calls(self) -> int:
        # Deterministic for a given program; the report states it (and fails loudly if that ever breaks).
        return int(self._same("jsii_calls"))

    def values(self, metric: str) -> list[float]:
        return [float(r[metric]) for r in self.runs]

    def median(self, metric: str) -> float:
        return float(statistics.median(self.values(metric)))

    def by_round(self, metric: str) -> dict[int, float]:
        return {int(r["round"]): float(r[metric]) for r in self.runs if "round" in r}

    def within_limits(self) -> bool:
        return self.resources <= MAX_RESOURCES and self.template_bytes <= MAX_TEMPLATE_BYTES

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "side": self.side,
            "n": self.n,
            "resources": self.resources,
            "template_bytes": self.template_bytes,
            "template_sha256": self.template_sha256,
            "jsii_calls": self.jsii_calls,
            **{metric: stats(self.values(metric)) for metric in ("cpu_s", "wall_s", "build_synth_s")},
            "runs": self.runs,
        }


def synth_once(variant: Variant, n: int, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """One synthesis in a fresh process; its output plus the process's wall and CPU time."""
    outdir = tempfile.mkdtemp(prefix=f"{variant.side}-{n}-", dir=workdir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ONCE), variant.side, str(n), outdir],
        env=variant.env(env),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"synthesizing {variant.key} N={n} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    result["build_synth_s"] = result["build_s"] + result["synth_s"]
    result["jsii_calls"] = result["jsii_build_calls"] + result["jsii_synth_calls"]
    # CPU of the process and of node under it (jsii waits for node): less sensitive to other load than wall time.
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def rotated(items: list[Variant], by: int) -> list[Variant]:
    shift = by % len(items)
    return items[shift:] + items[:shift]


def measure(
    sizes: list[int],
    rounds: int,
    extra: dict[int, list[Variant]],
    env: dict[str, str],
    workdir: Path,
    log: Any,
) -> dict[tuple[str, int], Point]:
    """``rounds`` rounds; each synthesizes every side (and at some N the ``extra`` variants) once per N."""
    points: dict[tuple[str, int], Point] = {}
    for round_index in range(rounds):
        for n in sizes:
            for variant in rotated([*MAIN, *extra.get(n, [])], round_index):
                run = synth_once(variant, n, env, workdir)
                run["round"] = round_index
                points.setdefault((variant.key, n), Point(variant.key, variant.side, n)).runs.append(run)
                log(
                    f"  round {round_index + 1}/{rounds} N={n:<4} {variant.key:44} CPU {run['cpu_s']:5.2f} s, "
                    f"process {run['wall_s']:5.2f} s, {run['jsii_calls']} jsii calls, {run['resources']} resources"
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


def confirm_max(computed: dict[str, int], reps: int, env: dict[str, str], workdir: Path, log: Any) -> dict[str, Point]:
    """Synthesize each side's computed largest N (sides interleaved); step a side down if its stack breaks a
    limit after all."""
    current = dict(computed)
    confirmed: dict[str, Point] = {}
    for rep in range(reps):
        for variant in rotated(list(MAIN), rep):
            while True:
                n = current[variant.side]
                point = confirmed.get(variant.side)
                if point is None or point.n != n:
                    point = confirmed[variant.side] = Point(variant.key, variant.side, n)
                run = synth_once(variant, n, env, workdir)
                run["round"] = rep
                point.runs.append(run)
                log(
                    f"  largest N {variant.side:9} N={n:<4}: {point.resources} resources, "
                    f"{point.template_bytes:,} bytes, CPU {run['cpu_s']:.2f} s"
                )
                if point.within_limits() or n <= 1:
                    break
                current[variant.side] = n - 1
    return confirmed


# --------------------------------------------------------------------------------------------------
# Comparisons


def best_peer(points: dict[tuple[str, int], Point], n: int, metric: str) -> str | None:
    """The peer with the lower median of ``metric`` at ``n``."""
    found = [p for p in (points.get((peer, n)) for peer in PEERS) if p is not None]
    return min(found, key=lambda p: p.median(metric)).side if found else None


def paired_ratio(ours: Point, other: Point, metric: str) -> dict[str, Any] | None:
    """Ours / other per round (same round, so the same load), summarized; and the ratio of the medians."""
    mine, theirs = ours.by_round(metric), other.by_round(metric)
    per_round = [mine[r] / theirs[r] for r in sorted(mine) if theirs.get(r)]
    if not per_round:
        return None
    return {**stats(per_round), "of_medians": ours.median(metric) / other.median(metric), "rounds": per_round}


def comparisons(points: dict[tuple[str, int], Point], sizes: list[int]) -> dict[str, Any]:
    """Per N: the best peer of each time metric and ours / it (paired per round)."""
    found: dict[str, Any] = {}
    for n in sizes:
        ours = points.get(("ours", n))
        if ours is None:
            continue
        for metric in ("cpu_s", "wall_s", "build_synth_s"):
            peer = best_peer(points, n, metric)
            if peer is None:
                continue
            ratio = paired_ratio(ours, points[(peer, n)], metric)
            if ratio is not None:
                found.setdefault(str(n), {})[metric] = {"best_peer": peer, **ratio}
    return found


def cache_table(
    points: dict[tuple[str, int], Point], variants: list[Variant], n: int, round_trip_us: float | None
) -> list[dict[str, Any]]:
    """Each cache variant against its baseline (all caches on, same ARN reads), at ``n``."""
    rows: list[dict[str, Any]] = []
    for variant in variants:
        point = points.get((variant.key, n))
        if point is None:
            continue
        base_key = "ours" if not variant.arn_reads else f"ours, ARN read {variant.arn_reads}x"
        base = points[(base_key, n)]
        ratio = paired_ratio(point, base, "cpu_s") if point is not base else None
        extra = point.jsii_calls - base.jsii_calls
        rows.append(
            {
                "variant": variant.key,
                "uncached": list(variant.uncached),
                "arn_reads": variant.arn_reads,
                "baseline": base_key,
                "jsii_calls": point.jsii_calls,
                "extra_jsii_calls": extra,
                "cpu_s": stats(point.values("cpu_s")),
                "cpu_ratio": ratio,
                "cpu_extra_s": point.median("cpu_s") - base.median("cpu_s"),
                # The extra round trips at the measured price of one (whole runs vary by more on a busy machine).
                "estimated_extra_cpu_s": extra * round_trip_us / 1e6 if round_trip_us else None,
                "estimated_share": extra * round_trip_us / 1e6 / base.median("cpu_s") if round_trip_us else None,
                "same_template": point.template_sha256 == points[("ours", n)].template_sha256,
            }
        )
    return rows


#: The Python process's CPU per phase (``synth_once.py``); node's CPU is the rest of the process tree's.
PHASES = ("python_start_cpu_s", "python_import_cpu_s", "python_build_cpu_s", "python_synth_cpu_s")


def cpu_breakdown(points: dict[tuple[str, int], Point], n: int) -> list[dict[str, Any]]:
    """Where each side's CPU goes at ``n``: medians of the Python process's phases, and node (with process
    exits) as the rest of the process tree's CPU."""
    rows = []
    for side in SIDES:
        point = points.get((side, n))
        if point is None or any(phase not in point.runs[0] for phase in PHASES):
            continue
        row: dict[str, Any] = {"side": side, "n": n, "cpu_s": point.median("cpu_s")}
        for phase in PHASES:
            row[phase] = point.median(phase)
        row["node_and_rest_cpu_s"] = statistics.median(
            r["cpu_s"] - sum(r[phase] for phase in PHASES) for r in point.runs
        )
        rows.append(row)
    return rows


def noise(points: dict[tuple[str, int], Point], sizes: list[int]) -> list[dict[str, Any]]:
    """How much each time moved between rounds: (max - min) / median, per main side and N."""
    rows = []
    for (key, n), point in sorted(points.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if key not in SIDES or n not in sizes or len(point.runs) < 2:
            continue
        row: dict[str, Any] = {"side": key, "n": n}
        for metric in ("cpu_s", "wall_s"):
            s = stats(point.values(metric))
            row[metric] = (s["max"] - s["min"]) / s["median"]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# Reporting


def _thousands(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "not run"


def _yes_no(value: Any) -> str:
    return "not run" if value is None else ("yes" if value else "**no**")


def _spread(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


def _per_job(points: list[Point], index: int, attr: str) -> str:
    if index == 0:
        return "-"
    low, high = points[index - 1], points[index]
    return f"{(getattr(high, attr) - getattr(low, attr)) / (high.n - low.n):.1f}"


def _series(points: dict[tuple[str, int], Point], key: str) -> list[Point]:
    return sorted((p for (k, _), p in points.items() if k == key), key=lambda p: p.n)


def render_markdown(report: dict[str, Any], points: dict[tuple[str, int], Point]) -> str:
    lines = [
        "# Synthesis benchmark: AudienceGenerationJob vs. AwsCustomResource",
        "",
        f"Generated by `python bench/synth_bench.py` ({report['rounds']} rounds at N = "
        f"{', '.join(map(str, report['sizes']))}; {report['max_reps']} at the largest N) on {report['machine']}, "
        f"{report['date']}, in {report.get('elapsed_s', 0) / 60:.0f} minutes; load average "
        f"{report['load_before']:.1f} before, {report['load_after']:.1f} after (other work shared the machine). "
        "Each synthesis is a fresh `python` process. A round synthesizes every side at every N once, in an order "
        "rotated from round to round, so other load on the machine falls on every side alike. Times are medians "
        "over the rounds, with the range (min-max) in brackets: *CPU* is the CPU time of the process and its node "
        "child (the figure to compare: much less sensitive to other load than wall time), *process* the whole "
        "wall time (interpreter, imports, jsii's node start, building the constructs, `app.synth()`, what a "
        "user's `cdk synth` waits for). Resources, template bytes and *jsii calls* (round trips from Python to "
        "node) are the same in every round. *ours / best peer* is computed per round (both sides under the "
        "same load) and its median given, with its range and the ratio of the medians; the best peer is the "
        "one with the lower median.",
        "",
        "Sides: every stack holds one shared seed `iam.Role` and N jobs with the same request (model ARN, S3 seed, "
        "role). **peer**: `custom_resources.AwsCustomResource` calling `CleanRoomsML.startAudienceGenerationJob` "
        "(delete: `deleteAudienceGenerationJob`) with `policy=from_sdk_calls(resources=ANY_RESOURCE)`, as its "
        "documentation shows (an `AWS::IAM::Policy` per job). **peer-role**: the same calls with one shared "
        "`role=` (assumed by Lambda, `AWSLambdaBasicExecutionRole`, one policy: start, tag and delete jobs of the "
        "model, pass the seed role), as an engineer with many such resources writes them: one resource per job.",
        "",
        "| N | side | resources | per added job | template bytes | per added job | CPU s | process s | "
        "build+synth s | jsii calls | ours / best peer: CPU | process |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    compared = report.get("comparisons", {})
    for n in sorted({n for (k, n) in points if k in SIDES}):
        for side in SIDES:
            point = points.get((side, n))
            if point is None:
                continue
            series = _series(points, side)
            index = series.index(point)
            ratios = ["", ""]
            if side == "ours":
                for i, metric in enumerate(("cpu_s", "wall_s")):
                    r = compared.get(str(n), {}).get(metric)
                    if r:
                        ratios[i] = (
                            f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}) vs {r['best_peer']}; "
                            f"of medians {r['of_medians']:.2f}"
                        )
            lines.append(
                f"| {n} | {side} | {point.resources} | {_per_job(series, index, 'resources')} | "
                f"{point.template_bytes:,} | {_per_job(series, index, 'template_bytes')} | "
                f"{_spread(stats(point.values('cpu_s')))} | {_spread(stats(point.values('wall_s')))} | "
                f"{_spread(stats(point.values('build_synth_s')))} | {point.jsii_calls} | {ratios[0]} | {ratios[1]} |"
            )
    lines += ["", "## Per-job and constant costs, and the largest stack", ""]
    lines += [
        "| side | resources per job | constant resources | bytes per job | constant bytes | largest N (computed) | "
        "binding limit | confirmed: resources | confirmed: template bytes | confirmed: CPU s | within limits |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for side in SIDES:
        info = report["max"].get(side)
        if info is None:
            continue
        cpu = info.get("confirmed_cpu_s")
        lines.append(
            f"| {side} | {info['resources_per_job']:g} | {info['resources_constant']:g} | "
            f"{info['bytes_per_job']:.1f} | {info['bytes_constant']:,.0f} | {info['computed_n']} | {info['binding']} | "
            f"{info.get('confirmed_resources', 'not run')} | {_thousands(info.get('confirmed_template_bytes'))} | "
            f"{_spread(cpu) if cpu else 'not run'} | {_yes_no(info.get('confirmed_within_limits'))} |"
        )
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for target in report["targets"]:
        lines.append(f"| {target['target']} | {target['measured']} | {'yes' if target['met'] else '**no**'} |")
    breakdown = report.get("cpu_breakdown")
    if breakdown:
        lines += [
            "",
            f"## Where the CPU goes (N = {breakdown[0]['n']})",
            "",
            "Medians of the Python process's CPU time per phase (`time.process_time()` in `bench/synth_once.py`); "
            "*node and the rest* is the process tree's CPU minus the Python process's: jsii's node (loading "
            "aws-cdk-lib, answering the round trips, `app.synth()`'s work) and the exits. The imports hold "
            "`aws_cdk` (which starts jsii's node) for every side and `cdk_cleanrooms_ml` for ours.",
            "",
            "| side | CPU s | Python: start-up | imports | building the constructs | app.synth() | node and the rest |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in breakdown:
            lines.append(
                f"| {row['side']} | {row['cpu_s']:.2f} | {row['python_start_cpu_s']:.2f} | "
                f"{row['python_import_cpu_s']:.2f} | {row['python_build_cpu_s']:.2f} | "
                f"{row['python_synth_cpu_s']:.2f} | {row['node_and_rest_cpu_s']:.2f} |"
            )
    caches = report.get("caches")
    if caches:
        n = report["cache_n"]
        lines += [
            "",
            f"## The library's jsii caches, with and without (N = {n})",
            "",
            "Each row switches caches off in the bench process only (`bench/uncached.py` replaces them with the "
            "uncached calls; the library is unchanged), in the same rounds as the table above. *extra jsii "
            "calls* and *CPU* are against all caches on (the `ours` row above; for the ARN-read rows, `ours` "
            f"with each job's ARN read {ARN_READS} times, as a grant and an output would); the CPU ratio is paired "
            "per round. *same template*: the template's SHA-256 equals `ours`'s.",
        ]
        trip = report.get("round_trip")
        if trip:
            kinds = "; ".join(
                f"{name}: {k['total_us']:.0f} µs ({k['python_us']:.0f} Python + {k['node_us']:.0f} node, "
                f"{k['total_min_us']:.0f}-{k['total_max_us']:.0f})"
                for name, k in trip["kinds"].items()
            )
            lines += [
                "",
                "A few hundred round trips cost less CPU than a synthesis varies by on a busy machine, so one round "
                f"trip is also timed alone (`bench/round_trip.py`: {trip['calls']:,} calls, {trip['reps']} samples "
                f"per kind, CPU of Python and of jsii's node processes): {kinds}. *Estimated CPU* is the extra "
                f"calls at {trip['total_us']:.0f} µs each, and its share of `ours`'s CPU.",
            ]
        same_calls = [row for row in caches if row["extra_jsii_calls"] == 0 and row["uncached"]]
        if same_calls:  # e.g. the attribute cache in a stack that reads no attribute: the program is unchanged
            row = same_calls[0]
            lines += [
                "",
                f"*{row['variant']}* makes exactly the calls `ours` makes: its CPU ratio, "
                f"{row['cpu_ratio']['median']:.3f} ({row['cpu_ratio']['min']:.3f}-{row['cpu_ratio']['max']:.3f}), "
                "is this machine's noise floor for the paired CPU ratios (an A/A comparison).",
            ]
        lines += [
            "",
            "| variant | what the cache keeps | jsii calls | extra jsii calls | per job | estimated CPU | CPU s "
            "| CPU / all caches on | same template |",
            "|---|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for row in caches:
            names = row["uncached"]
            kept = (
                "every cache"
                if len(names) > 1
                else (uncached.CACHES[names[0]] if names else "(baseline for the rows below: all caches on)")
            )
            ratio = row["cpu_ratio"]
            paired = f"{ratio['median']:.3f} ({ratio['min']:.3f}-{ratio['max']:.3f})" if ratio else "-"
            estimate = row.get("estimated_extra_cpu_s")
            estimated = f"{estimate:+.3f} s ({row['estimated_share']:+.1%})" if estimate is not None else "-"
            lines.append(
                f"| {row['variant']} | {kept} | {row['jsii_calls']:,} | {row['extra_jsii_calls']:+,} | "
                f"{row['extra_jsii_calls'] / n:+.2f} | {estimated} | {_spread(row['cpu_s'])} | {paired} | "
                f"{'yes' if row['same_template'] else '**no**'} |"
            )
    rows = report.get("noise")
    if rows:
        lines += [
            "",
            "## What varies between runs",
            "",
            "(max - min) / median over the rounds. "
            + (
                "Resources, template bytes and jsii calls did not vary."
                if not report.get("varied")
                else "Varied although they should not: " + "; ".join(report["varied"]) + "."
            ),
            "",
            "| N | side | CPU | process wall |",
            "|---:|---|---:|---:|",
        ]
        for row in rows:
            lines.append(f"| {row['n']} | {row['side']} | {row['cpu_s']:.0%} | {row['wall_s']:.0%} |")
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
    lines += ["", "![resources and synthesis CPU time against N](synth.png)", ""]
    return "\n".join(lines)


def render_plot(points: dict[tuple[str, int], Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"ours": ("tab:blue", "o"), "peer": ("tab:orange", "s"), "peer-role": ("tab:green", "^")}
    for side in SIDES:
        series = _series(points, side)
        if not series:
            continue
        colour, marker = styles[side]
        ns = [p.n for p in series]
        left.plot(ns, [p.resources for p in series], marker=marker, color=colour, label=LABELS[side])
        # CPU time: it hardly moves with other load on the machine; the bars span the rounds' min to max.
        cpu = [stats(p.values("cpu_s")) for p in series]
        right.errorbar(
            ns,
            [s["median"] for s in cpu],
            yerr=[[s["median"] - s["min"] for s in cpu], [s["max"] - s["median"] for s in cpu]],
            marker=marker,
            color=colour,
            capsize=3,
            label=side,
        )
    left.axhline(MAX_RESOURCES, color="grey", linestyle=":", label="CloudFormation limit (500)")
    left.set(xlabel="jobs in the stack (N)", ylabel="CloudFormation resources", title="Resources")
    right.set(xlabel="jobs in the stack (N)", ylabel="CPU seconds (median, min-max)", title="Synthesis CPU time")
    right.set_ylim(bottom=0)
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def targets(report: dict[str, Any], points: dict[tuple[str, int], Point]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    costs = report["max"]
    ours = costs.get("ours")
    peers = {side: costs[side] for side in PEERS if side in costs}
    if ours and peers:
        best_resources = min(peers, key=lambda s: peers[s]["resources_per_job"])
        found.append(
            {
                "target": "resources per added job <= the best peer's",
                "measured": f"ours {ours['resources_per_job']:g}, "
                + ", ".join(f"{s} {peers[s]['resources_per_job']:g}" for s in peers),
                "met": ours["resources_per_job"] <= peers[best_resources]["resources_per_job"],
            }
        )

        def largest(info: dict[str, Any]) -> int:
            return int(info.get("confirmed_n") or info["computed_n"])

        best_jobs = max(peers, key=lambda s: largest(peers[s]))
        found.append(
            {
                "target": "jobs in one stack (with the seed role, within limits) >= the best peer's",
                "measured": f"ours {largest(ours)} ({ours['resources_constant']:g} constant resources), "
                + ", ".join(f"{s} {largest(peers[s])} ({peers[s]['resources_constant']:g})" for s in peers)
                + ("" if ours.get("confirmed_n") else "; computed only, not synthesized"),
                "met": largest(ours) >= largest(peers[best_jobs]) and ours.get("confirmed_within_limits") is not False,
            }
        )
        best_bytes = min(peers, key=lambda s: peers[s]["bytes_per_job"])
        share = ours["bytes_per_job"] / peers[best_bytes]["bytes_per_job"]
        found.append(
            {
                "target": f"template bytes per added job <= {TARGET_BYTES_PER_JOB_RATIO}x the best peer's",
                "measured": f"ours {ours['bytes_per_job']:.0f}, "
                + ", ".join(f"{s} {peers[s]['bytes_per_job']:.0f}" for s in peers)
                + f" ({share:.2f}x {best_bytes})",
                "met": share <= TARGET_BYTES_PER_JOB_RATIO,
            }
        )
    # At N=100; a run without it (a quick check) compares its largest N instead, and says so.
    time_n = TARGET_TIME_N if TARGET_TIME_N in report["sizes"] else max(report["sizes"])
    cpu = report.get("comparisons", {}).get(str(time_n), {}).get("cpu_s")
    if cpu:
        ours_point = points[("ours", time_n)]
        peer_point = points[(cpu["best_peer"], time_n)]
        found.append(
            {
                "target": f"synthesis CPU at N={time_n} <= {TARGET_CPU_RATIO}x the best peer's",
                "measured": f"ours {ours_point.median('cpu_s'):.2f} s, {cpu['best_peer']} "
                f"{peer_point.median('cpu_s'):.2f} s: {cpu['median']:.2f}x paired "
                f"(rounds {cpu['min']:.2f}-{cpu['max']:.2f}), {cpu['of_medians']:.2f}x of medians",
                "met": cpu["median"] <= TARGET_CPU_RATIO,
            }
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


def analyse(report: dict[str, Any], points: dict[tuple[str, int], Point], variants: list[Variant]) -> None:
    """The comparisons, cache rows, noise and targets of ``report``, from ``points``."""
    report["comparisons"] = comparisons(points, report["sizes"])
    if variants:
        trip = report.get("round_trip")
        report["caches"] = cache_table(points, variants, report["cache_n"], trip["total_us"] if trip else None)
    report["cpu_breakdown"] = cpu_breakdown(points, report.get("cache_n", TARGET_TIME_N))
    report["noise"] = noise(points, report["sizes"])
    for point in points.values():
        point.summary()  # notes any value that should not vary and did
    report["varied"] = sorted(VARIED)
    report["targets"] = targets(report, points)


def write(report: dict[str, Any], points: dict[tuple[str, int], Point], out: Path, with_json: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.md").write_text(render_markdown(report, points))
    render_plot(points, out / "synth.png")
    if with_json:
        (out / "synth.json").write_text(json.dumps(report, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthesis benchmark against AwsCustomResource (see module docstring)")
    parser.add_argument("--sizes", default="1,10,100", help="comma-separated N to measure (default: 1,10,100)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds: every side at every N once each (default: 5)")
    parser.add_argument("--max-reps", type=int, default=1, help="runs of each side at its largest N (default: 1)")
    parser.add_argument("--no-max", action="store_true", help="skip synthesizing the largest N (it is still computed)")
    parser.add_argument(
        "--caches",
        default=",".join(CACHE_CHOICES),
        help=f"cache measurements, comma-separated from {', '.join(CACHE_CHOICES)} ('all': every cache off at "
        "once; 'reads': ARN reads with and without the attribute cache); empty for none (default: every one)",
    )
    parser.add_argument("--cache-n", type=int, default=TARGET_TIME_N, help="N of the cache measurements (default: 100)")
    parser.add_argument("--import-reps", type=int, default=9, help="fresh interpreters per import (default: 9)")
    parser.add_argument("--no-import", action="store_true", help="skip the handler import and asset measurement")
    parser.add_argument(
        "--out", type=Path, default=_env.DEFAULT_OUT, help="output directory (default: docs/benchmarks)"
    )
    parser.add_argument("--render", type=Path, help="only write synth.md and synth.png again from this synth.json")
    args = parser.parse_args(argv)
    choices = [c.strip() for c in args.caches.split(",") if c.strip()]
    if set(choices) - set(CACHE_CHOICES):
        parser.error(f"--caches: unknown {sorted(set(choices) - set(CACHE_CHOICES))}; known: {CACHE_CHOICES}")
    variants = cache_variants(choices)
    if args.render:
        saved: dict[str, Any] = json.loads(args.render.read_text())
        kept = {(p["key"], p["n"]): Point(p["key"], p["side"], p["n"], p["runs"]) for p in saved["points"]}
        analyse(saved, kept, cache_variants(saved.get("cache_choices", [])))
        write(saved, kept, args.out, with_json=args.render.resolve() != (args.out / "synth.json").resolve())
        return 0
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if len(sizes) < 2 or sizes[0] < 1:
        parser.error("--sizes needs at least two sizes, all >= 1 (per-job costs come from the two largest)")
    if variants and args.cache_n not in sizes:
        parser.error(f"--cache-n {args.cache_n} must be one of --sizes {sizes} (its baseline is the ours row)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    env = _env.prepare()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "rounds": args.rounds,
        "max_reps": 0 if args.no_max else args.max_reps,
        "sizes": sizes,
        "cache_n": args.cache_n,
        "cache_choices": choices,
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "load_before": os.getloadavg()[0],
        "max": {},
    }
    with tempfile.TemporaryDirectory(prefix="cdk-cleanrooms-ml-bench-") as tmp:
        workdir = Path(tmp)
        log(f"synthesizing N = {sizes}: {args.rounds} rounds of {', '.join(SIDES)} (+{len(variants)} cache variants)")
        points = measure(sizes, args.rounds, {args.cache_n: variants}, env, workdir, log)
        computed: dict[str, int] = {}
        for side in SIDES:
            costs = Costs.between(points[(side, sizes[-2])], points[(side, sizes[-1])])
            computed[side], binding = costs.max_jobs()
            report["max"][side] = {**costs.__dict__, "computed_n": computed[side], "binding": binding}
        if not args.no_max:
            for side, point in confirm_max(computed, args.max_reps, env, workdir, log).items():
                points.setdefault((side, point.n), point)  # a row of the table and a point of the plot
                report["max"][side].update(
                    confirmed_n=point.n,
                    confirmed_resources=point.resources,
                    confirmed_template_bytes=point.template_bytes,
                    confirmed_within_limits=point.within_limits(),
                    confirmed_cpu_s=stats(point.values("cpu_s")),
                    confirmed_jsii_calls=point.jsii_calls,
                )
    if variants:
        log("timing one jsii round trip")
        proc = subprocess.run([sys.executable, str(ROUND_TRIP)], env=env, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            report["round_trip"] = json.loads(proc.stdout.strip().splitlines()[-1])
        else:  # not Linux, say: the cache rows then give the calls without their estimated CPU
            log(f"  round trip not timed: {proc.stderr.strip().splitlines()[-1:]}")
    if not args.no_import:
        log("timing the handler import and sizing its asset")
        report["import"] = import_bench.import_times(args.import_reps)
        report["asset"] = import_bench.asset_size()
    report["load_after"] = os.getloadavg()[0]
    report["elapsed_s"] = time.perf_counter() - started
    analyse(report, points, variants)
    report["points"] = [p.summary() for p in sorted(points.values(), key=lambda p: (p.n, p.key))]

    write(report, points, args.out)
    log(f"wrote {args.out / 'synth.md'}, synth.png and synth.json in {report['elapsed_s']:.0f} s")
    for target in report["targets"]:
        log(f"  {'MET ' if target['met'] else 'MISS'} {target['target']}: {target['measured']}")
    for row in report.get("caches", []):
        ratio = row["cpu_ratio"]
        log(
            f"  cache {row['variant']:44} {row['extra_jsii_calls']:+6} jsii calls, "
            f"CPU x{ratio['median'] if ratio else 1:.3f}, same template: {row['same_template']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
