"""The synth benchmark runs end to end on a tiny N (one round, three sides, the every-cache-off variant) and writes
its table, plot and data. No timing is asserted: only what does not depend on the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "synth_bench.py"
SIDES = {"ours", "peer", "peer-role"}


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--sizes",
            "1,2",
            "--rounds",
            "1",
            "--no-max",
            "--caches",
            "all",
            "--cache-n",
            "2",
            "--import-reps",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def report(bench_out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((bench_out / "synth.json").read_text())
    return loaded


def test_writes_the_markdown_table_with_every_side(bench_out: Path) -> None:
    table = (bench_out / "synth.md").read_text()
    assert "| N | side | resources |" in table
    rows = [line for line in table.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert {tuple(cell.strip() for cell in row.split("|")[1:3]) for row in rows} == {
        (n, side) for n in ("1", "2") for side in SIDES
    }
    assert "## Targets" in table and "## The library's jsii caches" in table
    assert "![resources and synthesis CPU time against N](synth.png)" in table


def test_counts_resources_per_job_for_each_side(report: dict[str, Any]) -> None:
    points = {(p["key"], p["n"]): p for p in report["points"]}
    assert {key for key, _ in points} >= SIDES
    added = {side: points[(side, 2)]["resources"] - points[(side, 1)]["resources"] for side in SIDES}
    assert added == {"ours": 1, "peer": 2, "peer-role": 1}  # the documented peer adds a policy per job
    assert report["max"]["peer-role"]["resources_per_job"] == 1
    assert report["max"]["ours"]["resources_per_job"] == 1
    assert report["max"]["ours"]["computed_n"] >= 480
    # The peer at its best: its constant part is the seed role, the shared role, its policy and one function.
    assert report["max"]["peer-role"]["resources_constant"] == 4
    assert points[("peer-role", 1)]["template_sha256"] != points[("peer", 1)]["template_sha256"]


def test_states_every_target_against_the_best_peer(report: dict[str, Any]) -> None:
    names = [t["target"] for t in report["targets"]]
    for needle in ("resources per added job", "jobs in one stack", "bytes per added job", "synthesis CPU at N="):
        assert any(needle in name for name in names), (needle, names)
    assert any("import" in name for name in names) and any("asset" in name for name in names)
    assert all(isinstance(t["met"], bool) for t in report["targets"])
    assert any(name.startswith("synthesis CPU at N=2 ") for name in names)  # N=100 was not measured: the largest
    assert report["comparisons"]["2"]["cpu_s"]["best_peer"] in {"peer", "peer-role"}


def test_the_uncached_variant_makes_the_same_template_with_more_jsii_calls(report: dict[str, Any]) -> None:
    (row,) = report["caches"]
    assert row["variant"] == "ours without any cache"
    assert row["same_template"] is True
    assert row["extra_jsii_calls"] > 0


def test_writes_a_png_plot(bench_out: Path) -> None:
    plot = (bench_out / "synth.png").read_bytes()
    assert plot.startswith(b"\x89PNG\r\n\x1a\n") and len(plot) > 10_000
