"""The synth benchmark runs end to end on a tiny N and writes its table, plot and data (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "synth_bench.py"


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--sizes",
            "1,2",
            "--reps",
            "1",
            "--no-max",
            "--import-reps",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_writes_the_markdown_table_with_both_sides(bench_out: Path) -> None:
    table = (bench_out / "synth.md").read_text()
    assert "| N | side | resources |" in table
    rows = [line for line in table.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert {tuple(cell.strip() for cell in row.split("|")[1:3]) for row in rows} == {
        ("1", "ours"),
        ("1", "peer"),
        ("2", "ours"),
        ("2", "peer"),
    }
    assert "![resources and synthesis time against N](synth.png)" in table


def test_counts_one_resource_per_added_job_and_two_for_the_peer(bench_out: Path) -> None:
    report = json.loads((bench_out / "synth.json").read_text())
    points = {(p["side"], p["n"]): p for p in report["points"]}
    assert points[("ours", 2)]["resources"] - points[("ours", 1)]["resources"] == 1
    assert points[("peer", 2)]["resources"] - points[("peer", 1)]["resources"] == 2
    assert report["max"]["ours"]["resources_per_job"] == 1
    assert report["max"]["ours"]["computed_n"] >= 480
    targets = {t["target"]: t for t in report["targets"]}
    assert any("asset" in name for name in targets) and any("import" in name for name in targets)


def test_writes_a_png_plot(bench_out: Path) -> None:
    plot = (bench_out / "synth.png").read_bytes()
    assert plot.startswith(b"\x89PNG\r\n\x1a\n") and len(plot) > 10_000
