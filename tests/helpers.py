"""Builders shared by the tests: stacks with jobs, and CloudFormation-like events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from cdk_cleanrooms_ml import AudienceGenerationJob, CleanRoomsMlProvider, S3DataSource, SeedAudience
from cdk_cleanrooms_ml.rehearsal.iam import paper_resolver
from cdk_cleanrooms_ml.rehearsal.template import StackTemplate, is_nested_stack

ACCOUNT = "111122223333"
REGION = "us-east-1"
MODEL_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/abc"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/seed-reader"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Test/11111111-2222-3333-4444-555555555555"
JOB_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/job-1"
COLLABORATION_ID = "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f"


def stack(env: bool = True, **kwargs: Any) -> Stack:
    app = App()
    return Stack(app, "Test", env=Environment(account=ACCOUNT, region=REGION) if env else None, **kwargs)


def s3_seed(role: iam.IRole | str = ROLE_ARN, uri: str = "s3://seed-bucket/seed.jsonl") -> SeedAudience:
    return SeedAudience(role=role, data_source=S3DataSource(s3_uri=uri))


def job(scope: Stack, id: str = "Lookalike", **kwargs: Any) -> AudienceGenerationJob:
    kwargs.setdefault("configured_audience_model_arn", MODEL_ARN)
    kwargs.setdefault("seed_audience", s3_seed())
    return AudienceGenerationJob(scope, id, **kwargs)


def template(scope: Stack) -> Template:
    return Template.from_stack(scope)


def providers(scope: Stack) -> list[CleanRoomsMlProvider]:
    """The stack's providers: nested stacks, each with its handlers, framework, roles and log group."""
    return [child for child in scope.node.children if isinstance(child, CleanRoomsMlProvider)]


def provider_template(scope: Stack) -> Template:
    """The template of the stack's one provider (a nested stack: its resources are not in the stack's template)."""
    (provider,) = providers(scope)
    return Template.from_stack(provider)


def stack_templates(cdk_out: Path, stack_name: str) -> list[StackTemplate]:
    """A synthesized stack and its nested stacks, each nested stack's Parameters resolved on paper in its parent
    (``iam.paper_resolver``), as the rehearsal resolves them without a deploy."""
    found = [StackTemplate.load(cdk_out, stack_name)]
    for stack in found:  # grows while it is walked: nested stacks of nested stacks too
        found += stack.nested_stacks(paper_resolver(stack).resolve).values()
    return found


def nested_template_files(cdk_out: Path, stack_name: str) -> list[Path]:
    """The template files of a synthesized stack's nested stacks (its providers): the file assets their
    resources' TemplateURLs point at, as the rehearsal finds them."""
    stack = StackTemplate.load(cdk_out, stack_name)
    resolve = paper_resolver(stack).resolve
    return [
        stack.assets[str(resolve(resource["Properties"]["TemplateURL"])).rsplit("/", 1)[-1]]
        for resource in stack.resources.values()
        if is_nested_stack(resource["Type"])
    ]


def custom_resources(scope: Stack) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = template(scope).find_resources("Custom::CleanRoomsMlAudienceGenerationJob")
    return resources


def as_cloudformation_delivers(value: Any) -> Any:
    """Every scalar becomes a string, as CloudFormation hands properties to a custom resource."""
    if isinstance(value, dict):
        return {k: as_cloudformation_delivers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_cloudformation_delivers(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def event(request_type: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:111122223333:function:framework-onEvent",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/",
        "StackId": STACK_ID,
        "RequestId": "req-1",
        "LogicalResourceId": "Lookalike1234",
        "ResourceType": "Custom::CleanRoomsMlAudienceGenerationJob",
        "ResourceProperties": as_cloudformation_delivers(properties),
    }
    base.update(extra)
    return json.loads(json.dumps(base))


def run_shared_dir(tmp_path_factory: Any, name: str) -> Any:
    """A directory shared by the xdist workers of THIS test run only (never by a later run).

    Under xdist each worker's base temp is ``<run dir>/popen-gwN``, so the run's directory is its parent;
    without xdist the base temp is the run's own directory (its parent, ``pytest-of-<user>``, outlives runs).
    """
    import os

    basetemp = tmp_path_factory.getbasetemp()
    root = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    directory = root / name
    directory.mkdir(exist_ok=True)
    return directory
