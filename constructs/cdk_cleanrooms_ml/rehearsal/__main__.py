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
from collections.abc import Callable
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


def _library_types() -> dict[str, Any]:
    """The custom resource types of this library, by CloudFormation type name: their resource specs."""
    from ..service_model import specs

    return dict(specs().SPECS)


def _unless_deleting(held: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if held is None or str(held.get("status", "")).startswith("DELETE") else held


def _exists(endpoint: Any, spec: Any, physical_id: str) -> dict[str, Any] | None:
    """The resource as the endpoint keeps it (None when gone)."""
    job_arn, _, export_name = physical_id.partition("|")  # an export's physical id: <job ARN>|<its name>
    lookups: dict[str, Callable[[], dict[str, Any] | None]] = {
        "audience generation job": lambda: endpoint.job(physical_id),
        "audience export job": lambda: next((e for e in endpoint.exports(job_arn) if e["name"] == export_name), None),
        "configured audience model": lambda: endpoint.configured_model(physical_id),
        # A deleted model is DELETE_PENDING first, and its delete step ends then (the service took the delete).
        "audience model": lambda: _unless_deleting(endpoint.audience_model(physical_id)),
        "configured audience model association": lambda: endpoint.association(physical_id),
    }
    return lookups[spec.noun]()


#: What an audience model may be after its create when the stack does not wait for its training (the custom
#: resource answers once CreateAudienceModel succeeded; a WaitCondition, when there is one, waits for ACTIVE).
_TRAINING = ("CREATE_PENDING", "CREATE_IN_PROGRESS")
WAIT_CONDITION = "AWS::CloudFormation::WaitCondition"


def _wait_conditions(outcome: Outcome) -> list[str]:
    """One line per wait condition of the operation: how it ended (its Data, or its failure's reason)."""
    lines = []
    for result in outcome.results:
        if result.resource_type == WAIT_CONDITION and not result.rollback:
            how = f"Data={result.data.get('Data')}" if result.status == "SUCCESS" else result.reason
            lines.append(f"    {result.logical_id}: wait condition {result.action} {result.status}: {how}")
    return lines


def _read_back(endpoint: Any, spec: Any, physical_id: str) -> str:
    """Read the resource through the service's API, as its handler does: "Found", or the error code without its
    ``Exception`` suffix (``ResourceNotFound`` once it is gone)."""
    import re

    from botocore.exceptions import ClientError

    params = {spec.key: physical_id} if spec.key else {}
    if not spec.key:  # named by its ARN's parts (an association: its membership and its id)
        match = re.fullmatch(spec.arn_resource, physical_id.split(":", 5)[-1])
        params = match.groupdict() if match else {}
    client = endpoint.client(service=spec.service)
    try:
        getattr(client, _snake(spec.read))(**params)
        return "Found"
    except ClientError as error:
        return str(error.response["Error"]["Code"]).removesuffix("Exception")


def _snake(operation: str) -> str:
    from botocore import xform_name

    return str(xform_name(operation))


def rehearse(cdk_out: str, stack: str | None, reads: int, real_time: bool) -> int:
    from .driver import Rehearsal
    from .endpoint import Endpoint

    kinds = _library_types()
    print(BANNER, flush=True)
    from .template import StackTemplate

    # The endpoint plays the stack's own account and region: the handlers refuse ARNs of another account.
    where = StackTemplate.load(cdk_out, stack)
    with Endpoint(
        reads_until_active=reads, account=where.account, region=where.region, partition=where.partition
    ) as endpoint:
        print(f"endpoint: {endpoint.url} (AWS_ENDPOINT_URL_CLEANROOMSML and _CLEANROOMS for the handlers)", flush=True)
        with Rehearsal(cdk_out, stack, endpoint=endpoint, real_time=real_time, on_step=_print_step) as rehearsal:
            ours = {t: rehearsal.logical_ids(t) for t in kinds if rehearsal.logical_ids(t)}
            if not ours:
                print(f"stack {rehearsal.stack.name} has no resource of cdk-cleanrooms-ml", flush=True)
                return 1
            listed = "; ".join(f"{kinds[t].noun}: {', '.join(ids)}" for t, ids in ours.items())
            print(f"stack {rehearsal.stack.name}: {listed}", flush=True)
            type_of = {logical_id: t for t, ids in ours.items() for logical_id in ids}

            print("\n--- 1. create, in dependency order (is_complete polls until each is ready) ---", flush=True)
            created = rehearsal.create()
            for line in _wait_conditions(created):
                print(line, flush=True)
            if not _check(created, "create"):
                return 1
            waits = bool(rehearsal.logical_ids(WAIT_CONDITION))
            physical: dict[str, str] = {}
            for logical_id, type_name in type_of.items():
                result = created.result(logical_id, "Create")
                physical[logical_id] = result.physical_id
                status = result.data.get("Status")
                print(f"    {logical_id}: {kinds[type_name].noun} {result.physical_id} {status or ''}", flush=True)
                for metric in ("RecallMetric", "RelevanceMetrics", "OutputLocation", "CollaborationId"):
                    if metric in result.data:
                        print(f"      {metric}={result.data[metric]}", flush=True)
                held = _exists(endpoint, kinds[type_name], result.physical_id)
                missing = held is None
                if kinds[type_name].noun == "audience model":
                    # Its Status is what it was when the create answered; a wait condition waited for ACTIVE since.
                    status = str((held or {}).get("status"))
                    ready = status == "ACTIVE" or (not waits and status in _TRAINING)
                else:
                    ready = status in (None, "ACTIVE")
                if missing or not ready:
                    print(f"==> the {kinds[type_name].noun} {logical_id} is not ready after create", flush=True)
                    return 1

            print("\n--- 2. tags-only update (the same resources, tags changed in place, where the type has tags) ---")
            taggable = {logical_id for logical_id, t in type_of.items() if kinds[t].tags is not None}

            def retag(logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
                if logical_id not in taggable:
                    return properties
                member = kinds[type_of[logical_id]].tags
                return {**properties, member: {**(properties.get(member) or {}), "rehearsal": "tags-update"}}

            updated = rehearsal.update(change=retag)
            for line in _wait_conditions(updated):
                print(line, flush=True)
            if not _check(updated, "update"):
                return 1
            for logical_id, type_name in type_of.items():
                if logical_id not in taggable:
                    print(f"    {logical_id}: {kinds[type_name].noun}s take no tags: not updated", flush=True)
                    continue
                now = _exists(endpoint, kinds[type_name], physical[logical_id]) or {}
                same = updated.result(logical_id, "Update").physical_id == physical[logical_id]
                tags = now.get("tags") or {}
                print(f"    {logical_id}: same resource: {same}; tags now {tags}", flush=True)
                if not same or tags.get("rehearsal") != "tags-update":
                    print("==> the tags-only update did not update the resource in place", flush=True)
                    return 1

            print("\n--- 3. delete, dependents first (is_complete polls until each is gone) ---", flush=True)
            deleted = rehearsal.delete()
            if not _check(deleted, "delete"):
                return 1
            left = []
            for logical_id, type_name in type_of.items():
                spec, still = kinds[type_name], _exists(endpoint, kinds[type_name], physical[logical_id])
                if spec.delete is None:
                    why = "gone with its generation job" if still is None else "kept: the API has no delete"
                    print(f"    {logical_id}: {spec.noun} {why}", flush=True)
                    continue
                answer = _read_back(endpoint, spec, physical[logical_id])
                if still is None and answer == "ResourceNotFound":
                    print(f"    {logical_id}: {spec.noun} gone ({spec.read} -> {answer}Exception)", flush=True)
                else:
                    left.append(logical_id)
                    print(f"    {logical_id}: {spec.noun} STILL THERE ({spec.read} -> {answer})", flush=True)
            if left:
                return 1
            print(
                f"\nrehearsed create -> ready -> tags update -> delete -> gone: {len(endpoint.calls)} API calls, "
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
