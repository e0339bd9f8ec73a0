"""Deploy-time cost in the local rehearsal: polls, Lambda invocations and API calls per job.

``python bench/deploy_bench.py [--out docs/benchmarks] [--reads 1,3,10] [--jobs 50]``

It synthesizes the bench stacks (``bench/stacks.py``: one shared seed role and N jobs with the
library's defaults, so the default 30-second poll interval), then rehearses their deploy with
``cdk_cleanrooms_ml.rehearsal`` (the handlers from the cloud assembly, run by a local model of
CloudFormation and the CDK Provider framework, against the local Clean Rooms ML endpoint, in
simulated time). It is a local simulation, not AWS: the endpoint's job becomes ACTIVE on its
(K+1)-th GetAudienceGenerationJob read ("ACTIVE after K reads"), whatever the time.

Measured:

- one job, for each K: on_event and is_complete invocations, the API calls by operation, the
  simulated create time, and how many poll intervals pass between the poll whose read first sees
  the job ACTIVE and the resource's completion; then the delete's polls and calls;
- ``--jobs`` jobs (default 50) against the service quota of 10 jobs pending or in progress: total
  polls, invocations and API calls, quota rejections and throttles met, and the simulated time
  until the stack is complete.

Writes ``deploy.md`` and ``deploy.json`` to ``--out``. It also prints the poll-interval trade-off
(computed from the measured per-poll cost) that ``deploy.md`` explains.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

STACK = "Bench"
JOB_TYPE = "Custom::CleanRoomsMlAudienceGenerationJob"
GET = "GetAudienceGenerationJob"
#: Intervals and job durations for the computed trade-off table.
TRADE_OFF_INTERVALS = (5, 10, 15, 30, 60, 120)
TRADE_OFF_DURATIONS_MIN = (5, 20)


def synthesize(count: int, outdir: Path) -> Path:
    """A cloud assembly with the bench stack of ``count`` jobs (the library's defaults)."""
    import stacks
    from aws_cdk import App

    app = App(outdir=str(outdir))
    stacks.build(app, "ours", count)
    app.synth()
    return outdir


class _Recorder:
    """Every rehearsal step with the real time it happened, to line the endpoint's calls up with the polls."""

    def __init__(self) -> None:
        self.steps: list[tuple[float, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, step: Any) -> None:
        with self._lock:
            self.steps.append((time.time(), step))


def _calls_by_operation(calls: list[Any]) -> dict[str, int]:
    return dict(sorted(Counter(c.operation for c in calls).items()))


def one_job(cdk_out: Path, reads: int) -> dict[str, Any]:
    """Create then delete a one-job stack whose job is ACTIVE after ``reads`` reads."""
    from cdk_cleanrooms_ml.rehearsal.driver import Rehearsal
    from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint

    recorder = _Recorder()
    with (
        Endpoint(reads_until_active=reads) as endpoint,
        Rehearsal(cdk_out, STACK, endpoint=endpoint, on_step=recorder) as rehearsal,
    ):
        (logical_id,) = rehearsal.logical_ids(JOB_TYPE)
        created = rehearsal.create()
        if not created.ok:
            raise RuntimeError(f"the rehearsed create failed: {created.reason}")
        create_calls = list(endpoint.calls)
        result = created.result(logical_id, "Create")
        arn = result.physical_id
        invocations = [
            (t, s) for t, s in recorder.steps if s.logical_id == logical_id and s.kind in ("on_event", "is_complete")
        ]
        # Each handler call's API calls happened before the step that reports its return value.
        gets_seen = 0
        active_poll = done_poll = None
        poll = 0
        boundary = 0.0
        for when, step in invocations:
            gets = [
                c
                for c in create_calls
                if c.operation == GET and boundary < c.at <= when and c.params.get("audienceGenerationJobArn") == arn
            ]
            boundary = when
            if step.kind == "is_complete":
                poll += 1
            gets_seen += len(gets)
            if active_poll is None and gets_seen > reads:
                active_poll = (poll, step.at)
            if step.kind == "is_complete" and '"IsComplete": true' in step.message:
                done_poll = (poll, step.at)
        poll_times = [s.at for _, s in invocations if s.kind == "is_complete"]
        intervals = sorted({round(b - a, 3) for a, b in itertools.pairwise(poll_times)})
        before_delete = len(endpoint.calls)
        deleted = rehearsal.delete()
        if not deleted.ok:
            raise RuntimeError(f"the rehearsed delete failed: {deleted.reason}")
        delete_result = deleted.result(logical_id, "Delete")
        delete_calls = endpoint.calls[before_delete:]
    on_event_calls = sum(1 for _, s in invocations if s.kind == "on_event")
    return {
        "reads_until_active": reads,
        "poll_intervals_s": intervals,
        "on_event_invocations": on_event_calls,
        "is_complete_invocations": result.polls,
        "api_calls": len(create_calls),
        "api_calls_by_operation": _calls_by_operation(create_calls),
        "create_seconds_simulated": created.seconds,
        "active_seen_at_poll": active_poll[0] if active_poll else None,
        "completed_at_poll": done_poll[0] if done_poll else None,
        "polls_between_active_and_complete": (done_poll[0] - active_poll[0]) if active_poll and done_poll else None,
        "seconds_between_active_and_complete": (done_poll[1] - active_poll[1]) if active_poll and done_poll else None,
        "status": result.data.get("Status"),
        "delete_is_complete_invocations": delete_result.polls,
        "delete_api_calls": len(delete_calls),
        "delete_api_calls_by_operation": _calls_by_operation(delete_calls),
        "delete_seconds_simulated": deleted.seconds,
    }


def many_jobs(cdk_out: Path, reads: int, quota: int) -> dict[str, Any]:
    """Create then delete the many-job stack against the endpoint's quota of jobs pending or in progress."""
    from cdk_cleanrooms_ml.rehearsal.driver import Rehearsal
    from cdk_cleanrooms_ml.rehearsal.endpoint import Endpoint

    with (
        Endpoint(reads_until_active=reads, quota=quota) as endpoint,
        Rehearsal(cdk_out, STACK, endpoint=endpoint) as rehearsal,
    ):
        jobs = rehearsal.logical_ids(JOB_TYPE)
        created = rehearsal.create()
        if not created.ok:
            raise RuntimeError(f"the rehearsed create failed: {created.reason}")
        create_calls = list(endpoint.calls)
        results = [created.result(logical_id, "Create") for logical_id in jobs]
        invocations = rehearsal.invocation_count()
        statuses = Counter(r.data.get("Status") for r in results)
        before_delete = len(endpoint.calls)
        deleted = rehearsal.delete()
        if not deleted.ok:
            raise RuntimeError(f"the rehearsed delete failed: {deleted.reason}")
        delete_calls = endpoint.calls[before_delete:]
        delete_polls = sum(deleted.result(logical_id, "Delete").polls for logical_id in jobs)
        left = endpoint.jobs()
    polls = [r.polls for r in results]
    return {
        "jobs": len(jobs),
        "quota": quota,
        "reads_until_active": reads,
        "statuses": dict(statuses),
        "is_complete_invocations": sum(polls),
        "is_complete_per_job_min_max": [min(polls), max(polls)],
        "handler_invocations": invocations,
        "api_calls": len(create_calls),
        "api_calls_by_operation": _calls_by_operation(create_calls),
        "quota_rejections": sum(1 for c in create_calls if c.error == "ServiceQuotaExceededException"),
        "throttles": sum(1 for c in create_calls if c.error == "ThrottlingException"),
        "create_seconds_simulated": created.seconds,
        "delete_is_complete_invocations": delete_polls,
        "delete_api_calls": len(delete_calls),
        "delete_api_calls_by_operation": _calls_by_operation(delete_calls),
        "jobs_left_after_delete": len(left),
    }


def trade_off() -> list[dict[str, Any]]:
    """Polls and latency of one job per poll interval, for jobs that take a given time to become ACTIVE.

    is_complete runs once right after on_event, then every interval (the Provider framework's waiter):
    a job ACTIVE after D seconds completes at the first poll at or after D.
    """
    rows = []
    for minutes in TRADE_OFF_DURATIONS_MIN:
        duration = minutes * 60
        for interval in TRADE_OFF_INTERVALS:
            polls = -(-duration // interval) + 1  # polls at 0, I, 2I, ... up to the first at or after D
            rows.append(
                {
                    "job_minutes": minutes,
                    "interval_s": interval,
                    "is_complete_polls": polls,
                    # Each poll is one retry of the waiter's task (a billed state transition) that runs the
                    # framework's isComplete function, which invokes the handler's: two Lambda invocations.
                    "lambda_invocations": 2 + 2 * polls,
                    "state_transitions_approx": polls + 2,
                    "latency_after_active_worst_s": interval,
                    "latency_after_active_mean_s": interval / 2,
                }
            )
    return rows


def _short(operation: str) -> str:
    return operation.replace("AudienceGenerationJobs", "").replace("AudienceGenerationJob", "")


def render(report: dict[str, Any]) -> str:
    lines = [
        "# Deploy-time cost (local rehearsal)",
        "",
        f"Generated by `python bench/deploy_bench.py` on {report['date']}. A LOCAL REHEARSAL: the handlers from the "
        "cloud assembly run against the local Clean Rooms ML endpoint (`cdk_cleanrooms_ml.rehearsal`), with "
        "CloudFormation and the CDK Provider framework played locally in simulated time; not AWS. The endpoint's job "
        "is ACTIVE on its (K+1)-th `GetAudienceGenerationJob` read. Default poll interval: "
        f"{', '.join(f'{i:g}' for i in report['one_job'][-1]['poll_intervals_s'])} s (measured between polls).",
        "",
        "## One job",
        "",
        "| K (reads until ACTIVE) | on_event | is_complete | API calls (create) | by operation | "
        "simulated create s | polls from first ACTIVE read to complete | delete: is_complete | delete: API calls |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in report["one_job"]:
        ops = ", ".join(f"{_short(k)} {v}" for k, v in row["api_calls_by_operation"].items())
        lines.append(
            f"| {row['reads_until_active']} | {row['on_event_invocations']} | {row['is_complete_invocations']} | "
            f"{row['api_calls']} | {ops} | {row['create_seconds_simulated']:g} | "
            f"{row['polls_between_active_and_complete']} | {row['delete_is_complete_invocations']} | "
            f"{row['delete_api_calls']} |"
        )
    lines += [
        "",
        "The resource completes on the poll whose read first sees ACTIVE (0 extra polls). In real time the job "
        "turns ACTIVE somewhere in the interval before that poll, so the delay between ACTIVE and the resource "
        "completing is at most one poll interval, half of one on average.",
    ]
    many = report.get("many_jobs")
    if many:
        ops = ", ".join(f"{_short(k)} {v}" for k, v in many["api_calls_by_operation"].items())
        lines += [
            "",
            f"## {many['jobs']} jobs against the quota of {many['quota']} jobs pending or in progress",
            "",
            f"K = {many['reads_until_active']}. Jobs by final status: "
            f"{', '.join(f'{k}: {v}' for k, v in many['statuses'].items())}.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| is_complete polls, total (per job min-max) | {many['is_complete_invocations']} "
            f"({many['is_complete_per_job_min_max'][0]}-{many['is_complete_per_job_min_max'][1]}) |",
            f"| handler invocations (on_event + is_complete) | {many['handler_invocations']} |",
            f"| API calls during create | {many['api_calls']} ({ops}) |",
            f"| quota rejections met (ServiceQuotaExceededException) | {many['quota_rejections']} |",
            f"| throttles met (ThrottlingException) | {many['throttles']} |",
            f"| simulated time until the stack is complete | {many['create_seconds_simulated']:g} s |",
            f"| delete: is_complete polls / API calls | {many['delete_is_complete_invocations']} / "
            f"{many['delete_api_calls']} |",
            f"| jobs left after delete | {many['jobs_left_after_delete']} |",
            "",
            "A job that meets the quota gets a pending physical id; each of its polls tries Start again and, as the "
            "service may check its quota before the name, looks the job up by name (one List call, pages of 100). "
            "Once a poll has started it, the next Start meets the job's name (ConflictException) and the job is "
            "found by name: one List call and a Get.",
        ]
    lines += [
        "",
        "## Poll interval trade-off (computed)",
        "",
        "is_complete runs right after on_event, then once per interval until the job is ACTIVE. Each poll is a "
        "retry of the Provider framework's waiter task (a billed Step Functions state transition) that runs the "
        "framework's isComplete function, which invokes the handler's: two Lambda invocations and one "
        "GetAudienceGenerationJob per poll. A longer interval costs fewer invocations and transitions but adds up "
        "to one interval of latency after the job is ACTIVE.",
        "",
        "| job takes | interval s | is_complete polls | Lambda invocations | ~state transitions | "
        "added latency: worst / mean s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["trade_off"]:
        lines.append(
            f"| {row['job_minutes']} min | {row['interval_s']} | {row['is_complete_polls']} | "
            f"{row['lambda_invocations']} | {row['state_transitions_approx']} | "
            f"{row['latency_after_active_worst_s']} / {row['latency_after_active_mean_s']:g} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy-time cost in the local rehearsal (see module docstring)")
    parser.add_argument("--reads", default="1,3,10", help="K values for the one-job rehearsal (default: 1,3,10)")
    parser.add_argument("--jobs", type=int, default=50, help="jobs in the quota rehearsal, 0 to skip (default: 50)")
    parser.add_argument("--jobs-reads", type=int, default=3, help="K for the quota rehearsal (default: 3)")
    parser.add_argument("--quota", type=int, default=10, help="the endpoint's quota (default: 10, the service's)")
    parser.add_argument(
        "--out", type=Path, default=_env.DEFAULT_OUT, help="output directory (default: docs/benchmarks)"
    )
    args = parser.parse_args(argv)
    _env.prepare()
    started = time.perf_counter()
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory(prefix="cdk-cleanrooms-ml-deploy-bench-") as tmp:
        one = synthesize(1, Path(tmp) / "one")
        report["one_job"] = [one_job(one, int(k)) for k in args.reads.split(",") if k.strip()]
        if args.jobs:
            many = synthesize(args.jobs, Path(tmp) / "many")
            report["many_jobs"] = many_jobs(many, args.jobs_reads, args.quota)
    report["trade_off"] = trade_off()
    report["elapsed_s"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "deploy.md").write_text(render(report))
    (args.out / "deploy.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "trade_off"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
