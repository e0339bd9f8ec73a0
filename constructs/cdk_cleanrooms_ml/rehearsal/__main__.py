"""``python -m cdk_cleanrooms_ml.rehearsal --cdk-out cdk.out [--stack NAME]``: rehearse a deploy locally.

Starts the local Clean Rooms ML endpoint and plays the stack's lifecycle through the handlers in the
cloud assembly: create -> polls -> ACTIVE (job ARN and metrics) -> a tags-only update -> delete -> gone.
Every step is printed as it happens. It is a LOCAL REHEARSAL against a simulated endpoint, not AWS:
nothing is deployed anywhere. Exit status 0 when every step did what a deploy should, 1 otherwise.
What the rehearsal proves, and what it cannot, is in the README's section "Deploy rehearsal".
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a rehearsal starts, so that --help answers at once
    from .driver import Outcome, Step

BANNER = (
    "LOCAL REHEARSAL against a simulated Clean Rooms ML endpoint on 127.0.0.1 -- this is NOT AWS; nothing is deployed."
)
WHAT_IT_PROVES = (
    'What this rehearsal proves, and what it cannot: the README of cdk-cleanrooms-ml, section "Deploy rehearsal".'
)


def _print_step(step: Step) -> None:
    if step.kind == "log":
        print(f"           {step.logical_id}: handler log: {step.message}", flush=True)
    else:
        print(str(step), flush=True)


def _check(outcome: Outcome, what: str) -> bool:
    if outcome.ok:
        print(f"==> {what}: {outcome.status}", flush=True)
        return True
    print(f"==> {what} FAILED: {outcome.status}: {outcome.reason}", flush=True)
    return False


def rehearse(cdk_out: str, stack: str | None, reads: int, real_time: bool) -> int:
    from .driver import Rehearsal
    from .endpoint import Endpoint

    print(BANNER, flush=True)
    with Endpoint(reads_until_active=reads) as endpoint:
        print(f"endpoint: {endpoint.url} (AWS_ENDPOINT_URL_CLEANROOMSML for the handlers)", flush=True)
        with Rehearsal(cdk_out, stack, endpoint=endpoint, real_time=real_time, on_step=_print_step) as rehearsal:
            jobs = rehearsal.logical_ids()
            if not jobs:
                print(f"stack {rehearsal.stack.name} has no audience generation job", flush=True)
                return 1
            print(f"stack {rehearsal.stack.name}: {len(jobs)} job(s): {', '.join(jobs)}", flush=True)

            print("\n--- 1. create (is_complete polls until the job is ACTIVE) ---", flush=True)
            created = rehearsal.create()
            if not _check(created, "create"):
                return 1
            arns = {}
            for logical_id in jobs:
                data = created.result(logical_id, "Create").data
                arns[logical_id] = data.get("AudienceGenerationJobArn", "")
                print(f"    {logical_id}: {data.get('Status')} {arns[logical_id]}", flush=True)
                print(f"      RecallMetric={data.get('RecallMetric')} RelevanceMetrics={data.get('RelevanceMetrics')}")
                if data.get("Status") != "ACTIVE" or not arns[logical_id]:
                    print("==> the job is not ACTIVE after create", flush=True)
                    return 1

            print("\n--- 2. tags-only update (the same job, tags changed in place) ---", flush=True)

            def retag(_logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
                return {**properties, "tags": {**(properties.get("tags") or {}), "rehearsal": "tags-update"}}

            updated = rehearsal.update(change=retag)
            if not _check(updated, "update"):
                return 1
            for logical_id in jobs:
                job = endpoint.job(arns[logical_id])
                same = updated.result(logical_id, "Update").physical_id == arns[logical_id]
                tags = (job or {}).get("tags")
                print(f"    {logical_id}: same job: {same}; tags now {tags}", flush=True)
                if not same or not tags or tags.get("rehearsal") != "tags-update":
                    print("==> the tags-only update did not update the job in place", flush=True)
                    return 1

            print("\n--- 3. delete (is_complete polls until the job is gone) ---", flush=True)
            deleted = rehearsal.delete()
            if not _check(deleted, "delete"):
                return 1
            client = endpoint.client()
            left = []
            for arn in arns.values():
                try:
                    status = client.get_audience_generation_job(audienceGenerationJobArn=arn)["status"]
                    left.append(arn)
                    print(f"    {arn}: STILL THERE ({status})", flush=True)
                except client.exceptions.ResourceNotFoundException:
                    print(f"    {arn}: gone (GetAudienceGenerationJob -> ResourceNotFoundException)", flush=True)
            if left:
                return 1
            calls = len(endpoint.calls)
            print(
                f"\nrehearsed create -> ACTIVE -> tags update -> delete -> gone: {calls} API calls, "
                f"{rehearsal.invocation_count()} handler invocations",
                flush=True,
            )
    print(WHAT_IT_PROVES, flush=True)
    print(BANNER.replace("LOCAL REHEARSAL", "That was a LOCAL REHEARSAL"), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cdk_cleanrooms_ml.rehearsal",
        description="Rehearse a stack's audience generation jobs against a local, simulated Clean Rooms ML "
        "endpoint (not AWS): create, tags update, delete.",
        epilog=WHAT_IT_PROVES,
    )
    parser.add_argument("--cdk-out", required=True, help="the cloud assembly directory (cdk synth output)")
    parser.add_argument("--stack", default=None, help="the stack to rehearse. Default: the only stack")
    parser.add_argument("--reads", type=int, default=2, help="status reads before a job is ACTIVE. Default: 2")
    parser.add_argument("--real-time", action="store_true", help="really wait the poll interval between polls")
    args = parser.parse_args(argv)
    try:
        code = rehearse(args.cdk_out, args.stack, args.reads, args.real_time)
    except Exception as error:  # a broken assembly: say so plainly, no traceback wall
        print(f"rehearsal failed: {type(error).__name__}: {error}", file=sys.stderr)
        code = 1
    if code:
        print(WHAT_IT_PROVES, flush=True)
        print("LOCAL REHEARSAL FAILED (simulated endpoint, not AWS).", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
