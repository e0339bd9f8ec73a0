"""Builders shared by the tests: stacks with jobs, and CloudFormation-like events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from cdk_cleanrooms_ml import AudienceGenerationJob, CleanRoomsMlProvider, S3DataSource, SeedAudience, ValidationError
from cdk_cleanrooms_ml.rehearsal.iam import paper_resolver
from cdk_cleanrooms_ml.rehearsal.template import StackTemplate, is_nested_stack

ACCOUNT = "111122223333"
REGION = "us-east-1"
MODEL_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:configured-audience-model/abc"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/seed-reader"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Test/11111111-2222-3333-4444-555555555555"
JOB_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/job-1"
COLLABORATION_ID = "0f2a8c1e-5b7d-4c3a-9e6f-1a2b3c4d5e6f"
AUDIENCE_MODEL_ARN = f"arn:aws:cleanrooms-ml:{REGION}:{ACCOUNT}:audience-model/am-1"
MEMBERSHIP_ID = "4d5e6f7a-8b9c-4d0e-8f1a-2b3c4d5e6f70"
SEGMENT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/segment-writer"


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


def of_type(template_json: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template_json["Resources"].items() if r["Type"] == resource_type}


def handler_statements(source: Stack | Synthesized) -> dict[str, dict[str, Any]]:
    """The statements of the handler role policy of the stack's provider (in its nested template), by Sid."""
    scope = source if isinstance(source, Stack) else source.scope
    template_json = provider_template(scope).to_json()
    # What the nested template takes from the stack as a Parameter, read as the stack's value for it.
    (nested,) = of_type(Template.from_stack(scope).to_json(), "AWS::CloudFormation::Stack").values()
    template_json = _with_parameters(template_json, nested["Properties"].get("Parameters") or {})
    policies = [
        r
        for r in of_type(template_json, "AWS::IAM::Policy").values()
        if any("HandlerRole" in str(role.get("Ref", "")) for role in r["Properties"]["Roles"])
    ]
    assert len(policies) == 1, policies
    return {s["Sid"]: s for s in policies[0]["Properties"]["PolicyDocument"]["Statement"]}


def _with_parameters(node: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in parameters:
            return parameters[node["Ref"]]
        return {k: _with_parameters(v, parameters) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_parameters(v, parameters) for v in node]
    return node


def stack_arn(service: str, resource: str, account: str = ACCOUNT) -> dict[str, Any]:
    """An ARN in the stack's partition and region, as CDK writes one (``Fn::Join`` over the pseudo parameters)."""
    return {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, f":{service}:", {"Ref": "AWS::Region"}, f":{account}:{resource}"],
        ]
    }


def resolve_pseudo(value: Any, partition: str = "aws", region: str = REGION, account: str = ACCOUNT) -> Any:
    """``value`` with its pseudo parameters (and nothing else) resolved, as CloudFormation would in that place."""
    from pathlib import Path

    from cdk_cleanrooms_ml.rehearsal.template import Resolver, StackTemplate

    where = StackTemplate("Test", {}, Path("."), account=account, region=region, partition=partition)
    return Resolver(where, {}, {}).resolve(value)


class Synthesized(SimpleNamespace):
    """A stack (``scope``), the constructs a test made in it (any attribute), and, once synthesized, its template."""

    def synthesize(self) -> Synthesized:
        self.template = Template.from_stack(self.scope).to_json()
        return self

    def logical_id(self, construct: Any) -> str:
        """The logical id of a construct's resource (a library construct's ``resource``, else its default child)."""
        resource = construct.resource if hasattr(construct, "resource") else construct.node.default_child
        return str(self.scope.get_logical_id(resource))

    def resource(self, construct: Any) -> dict[str, Any]:
        found: dict[str, Any] = self.template["Resources"][self.logical_id(construct)]
        return found


#: A tag key the library keeps for itself, and the line a ValidationError says about it.
RESERVED_TAG = {"cdk-cleanrooms-ml:owner": "me"}
RESERVED_TAG_LINE = (
    "tags['cdk-cleanrooms-ml:owner'] = 'cdk-cleanrooms-ml:owner': key must not start with 'cdk-cleanrooms-ml:' "
    "(reserved for the library, any case)"
)


def synth_error_with_tags_of(build: Callable[[Stack], Any], tags: dict[str, str]) -> str:
    """The message of the error ``app.synth()`` raises once ``tags`` are applied through ``Tags.of`` to the
    construct ``build`` makes in a stack ``Tagged``: such tags are known, and checked, only at synth."""
    from aws_cdk import Tags

    app = App()
    construct = build(Stack(app, "Tagged", env=Environment(account=ACCOUNT, region=REGION)))
    for key, value in tags.items():
        Tags.of(construct).add(key, value)
    with pytest.raises(Exception) as raised:  # CDK's own error type, through jsii
        app.synth()
    return str(raised.value)


def refused(parent: Any, id: str, build: Callable[[], Any]) -> ValidationError:
    """The ValidationError ``build`` raises for the construct ``id`` of ``parent``, once checked that nothing of
    the construct joined the tree. A construct that is accepted fails the test and is removed (a shared stack
    stays clean for the other cases)."""
    try:
        build()
    except ValidationError as error:
        assert parent.node.try_find_child(id) is None, f"{id} stayed in the tree"
        return error
    parent.node.try_remove_child(id)
    pytest.fail(f"{parent.node.path}/{id} was accepted")


def invalid_props_message(path: str, lines: list[str]) -> str:
    """A ValidationError's whole message: the header, then each line prefixed with the construct path."""
    header = f"{path}: {len(lines)} invalid prop{'s' if len(lines) != 1 else ''}:"
    return "\n".join([header, *(f"  {path}: {line}" for line in lines)])


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
