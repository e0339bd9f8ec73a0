"""A synthesized stack as CloudFormation reads it: the template, its assets, intrinsic functions, dependencies,
and its nested stacks (``AWS::CloudFormation::Stack`` resources whose template is a file asset of the assembly).

Resources that are not custom resources are "created" on paper only: each gets a fake physical id and
the attributes other resources refer to (ARNs in the stack's fake account), which is all the custom
resources and the Lambda functions need. Supported intrinsics: Ref, Fn::GetAtt, Fn::Join, Fn::Sub,
Fn::Select, Fn::Split, Fn::If/conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or), Fn::Base64 and the
pseudo parameters; anything else fails loudly rather than being guessed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

#: The fake account and default region of a rehearsal.
ACCOUNT = "111122223333"
REGION = "us-east-1"

NO_VALUE = object()
_CUSTOM = re.compile(r"^(Custom::.+|AWS::CloudFormation::CustomResource)$")
NESTED_STACK = "AWS::CloudFormation::Stack"
TRAINING_DATASET = "AWS::CleanRoomsML::TrainingDataset"
#: CloudFormation's limit on a stack name, nested stacks' included.
MAX_STACK_NAME = 128


class TemplateError(ValueError):
    """The template uses something the rehearsal cannot resolve, or the assembly is incomplete."""


def is_custom(resource_type: str) -> bool:
    return bool(_CUSTOM.match(resource_type))


def is_nested_stack(resource_type: str) -> bool:
    return resource_type == NESTED_STACK


@dataclass
class StackTemplate:
    """One stack of a cloud assembly: its template, environment and assets (a nested stack shares its parent's)."""

    name: str
    template: dict[str, Any]
    cdk_out: Path
    account: str = ACCOUNT
    region: str = REGION
    partition: str = "aws"
    assets: dict[str, Path] = field(default_factory=dict)
    """Object key (``<hash>.zip``, ``<hash>.json``) -> the asset's directory (zip) or file, as staged."""
    stack_id: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    """The values given for the template's Parameters (a nested stack's, by its parent); the rest take Default."""

    @staticmethod
    def load(cdk_out: str | Path, stack: str | None = None) -> StackTemplate:
        """Read ``manifest.json``, the stack's template and its asset manifest from a cloud assembly."""
        root = Path(cdk_out)
        manifest = json.loads((root / "manifest.json").read_text())
        stacks = {
            name: artifact
            for name, artifact in manifest.get("artifacts", {}).items()
            if artifact.get("type") == "aws:cloudformation:stack"
        }
        if not stacks:
            raise TemplateError(f"{root} holds no stack")
        if stack is None:
            if len(stacks) != 1:
                raise TemplateError(f"{root} holds several stacks ({', '.join(sorted(stacks))}): name one")
            stack = next(iter(stacks))
        if stack not in stacks:
            raise TemplateError(f"no stack {stack!r} in {root}; stacks: {', '.join(sorted(stacks))}")
        artifact = stacks[stack]
        props = artifact.get("properties", {})
        template = json.loads((root / props["templateFile"]).read_text())
        env = str(artifact.get("environment", "aws://unknown-account/unknown-region"))
        account, region = env.removeprefix("aws://").split("/", 1)
        account = account if re.fullmatch(r"[0-9]{12}", account) else ACCOUNT
        region = region if re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", region) else REGION
        partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        assets: dict[str, Path] = {}
        for dependency in artifact.get("dependencies", []):
            dep = manifest["artifacts"].get(dependency, {})
            if dep.get("type") == "cdk:asset-manifest":
                assets.update(_assets(root, root / dep["properties"]["file"]))
        stack_name = str(props.get("stackName") or stack)
        stack_id = _stack_id(partition, region, account, stack_name)
        return StackTemplate(stack_name, template, root, account, region, partition, assets, stack_id)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        return resources

    def nested(
        self, logical_id: str, properties: dict[str, Any], *, existing: StackTemplate | None = None
    ) -> StackTemplate:
        """The nested stack that this stack's ``AWS::CloudFormation::Stack`` resource ``logical_id`` creates (or,
        given the ``existing`` one, updates to), from its resolved properties: the template its ``TemplateURL``
        points at (a file asset of the same assembly) and its ``Parameters``, checked as CloudFormation checks them.

        A new nested stack gets a new name and id: CloudFormation names it ``<parent name>-<logical id>-<random
        suffix>``; the rehearsal does the same (12 upper-case letters and digits), shortening the logical id when
        the name would pass 128 characters. An updated one keeps its own.
        """
        where = f"{self.name}/{logical_id} ({NESTED_STACK})"
        url = str(properties.get("TemplateURL", ""))
        path = url.split("?", 1)[0]
        key = next((k for k in self.assets if path.endswith(f"/{k}")), None)
        if key is None or not self.assets[key].is_file():
            raise TemplateError(f"{where}: its TemplateURL {url!r} is not a file asset of {self.cdk_out}")
        template = json.loads(self.assets[key].read_text())
        given = properties.get("Parameters") or {}
        declared = template.get("Parameters", {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise TemplateError(f"{where}: Parameters {unknown} do not exist in the nested template")
        missing = sorted(p for p, spec in declared.items() if p not in given and "Default" not in spec)
        if missing:
            raise TemplateError(f"{where}: Parameters {missing} must have values")
        not_strings = sorted(p for p, v in given.items() if isinstance(v, (dict, list)) or v is None)
        if not_strings:
            raise TemplateError(f"{where}: Parameters {not_strings} must be strings (a nested stack's parameters are)")
        parameters = {p: as_strings(v) for p, v in given.items()}
        if existing is not None:
            return replace(existing, template=template, parameters=parameters)
        suffix = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
        name = f"{f'{self.name}-{logical_id}'[: MAX_STACK_NAME - len(suffix) - 1]}-{suffix}"
        stack_id = _stack_id(self.partition, self.region, self.account, name)
        return StackTemplate(
            name, template, self.cdk_out, self.account, self.region, self.partition, self.assets, stack_id, parameters
        )

    def nested_stacks(self, resolve: Callable[[Any], Any]) -> dict[str, StackTemplate]:
        """Every nested stack of this stack by the logical id of its resource, properties resolved by ``resolve``
        (e.g. ``iam.paper_resolver(stack).resolve``, to read a nested stack's template without a rehearsal)."""
        return {
            logical_id: self.nested(logical_id, resolve(resource.get("Properties", {})))
            for logical_id, resource in self.resources.items()
            if is_nested_stack(str(resource.get("Type", "")))
        }


def _stack_id(partition: str, region: str, account: str, name: str) -> str:
    return f"arn:{partition}:cloudformation:{region}:{account}:stack/{name}/{uuid.uuid4()}"


def _assets(root: Path, manifest_file: Path) -> dict[str, Path]:
    """Object key (``<hash>.zip``, ``<hash>.json``) -> the directory (zip) or file the asset is staged in."""
    data = json.loads(manifest_file.read_text())
    found: dict[str, Path] = {}
    for asset_hash, asset in data.get("files", {}).items():
        source = asset.get("source", {})
        if source.get("packaging", "file") not in ("zip", "file") or "path" not in source:
            continue
        extension = ".zip" if source.get("packaging") == "zip" else Path(str(source["path"])).suffix
        for destination in asset.get("destinations", {}).values():
            found[str(destination.get("objectKey", f"{asset_hash}{extension}"))] = root / source["path"]
    return found


def dependencies(template: dict[str, Any]) -> dict[str, set[str]]:
    """Each resource's direct dependencies: DependsOn, Ref, GetAtt and ${...} in Fn::Sub."""
    resources = template.get("Resources", {})
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        refs: set[str] = set()
        _collect(resource.get("Properties", {}), refs)
        depends = resource.get("DependsOn", [])
        refs.update([depends] if isinstance(depends, str) else depends)
        graph[logical_id] = {r for r in refs if r in resources and r != logical_id}
    return graph


def _collect(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        if "Ref" in node and isinstance(node["Ref"], str):
            out.add(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            out.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Fn::Sub" in node:
            text = node["Fn::Sub"][0] if isinstance(node["Fn::Sub"], list) else node["Fn::Sub"]
            if isinstance(text, str):
                out.update(m.split(".")[0] for m in re.findall(r"\$\{([^!][^}]*)\}", text))
        for value in node.values():
            _collect(value, out)
    elif isinstance(node, list):
        for item in node:
            _collect(item, out)


def order(graph: dict[str, set[str]]) -> list[str]:
    """A creation order (dependencies first); raises on a cycle."""
    done: list[str] = []
    seen: set[str] = set()
    visiting: set[str] = set()

    def visit(node: str) -> None:
        if node in seen:
            return
        if node in visiting:
            raise TemplateError(f"dependency cycle through {node}")
        visiting.add(node)
        for dep in sorted(graph.get(node, ())):
            visit(dep)
        visiting.discard(node)
        seen.add(node)
        done.append(node)

    for node in sorted(graph):
        visit(node)
    return done


# --------------------------------------------------------------------------------------------------
# Fake physical resources


def _short(logical_id: str, stack_name: str) -> str:
    digest = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    return f"{stack_name}-{logical_id}"[:50] + f"-{digest}"


def fake_physical(stack: StackTemplate, logical_id: str, resource: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """A physical id (what Ref gives) and the attributes (GetAtt) of a resource that is not custom."""
    kind = str(resource.get("Type", ""))
    name = _short(logical_id, stack.name)
    p, r, a = stack.partition, stack.region, stack.account
    if kind == "AWS::S3::Bucket":
        bucket = name.lower()[:63]
        return bucket, {
            "Arn": f"arn:{p}:s3:::{bucket}",
            "DomainName": f"{bucket}.s3.amazonaws.com",
            "RegionalDomainName": f"{bucket}.s3.{r}.amazonaws.com",
        }
    if kind == "AWS::IAM::Role":
        return name, {"Arn": f"arn:{p}:iam::{a}:role/{name}", "RoleId": "AROA" + name[-12:]}
    if kind == "AWS::Lambda::Function":
        return name, {"Arn": f"arn:{p}:lambda:{r}:{a}:function:{name}"}
    if kind == "AWS::Logs::LogGroup":
        return name, {"Arn": f"arn:{p}:logs:{r}:{a}:log-group:{name}:*"}
    if kind == TRAINING_DATASET:
        # The service gives a new id to each dataset; derived from the properties here, so that the ARN is the
        # same on paper (iam.paper_resolver) and in a rehearsal, and a changed dataset (a replacement) gets another.
        digest = json.dumps([stack.name, logical_id, resource.get("Properties")], sort_keys=True)
        arn = f"arn:{p}:cleanrooms-ml:{r}:{a}:training-dataset/{uuid.uuid5(uuid.NAMESPACE_URL, digest)}"
        return arn, {"TrainingDatasetArn": arn, "Status": "ACTIVE"}
    if kind == "AWS::StepFunctions::StateMachine":
        arn = f"arn:{p}:states:{r}:{a}:stateMachine:{name}"
        return arn, {"Arn": arn, "Name": name}
    service = kind.split("::")[1].lower() if kind.count("::") >= 2 else "resource"
    return name, {"Arn": f"arn:{p}:{service}:{r}:{a}:{logical_id.lower()}/{name}"}


# --------------------------------------------------------------------------------------------------
# Intrinsic functions


class Resolver:
    """Resolves intrinsic functions against the physical ids and attributes known so far."""

    def __init__(self, stack: StackTemplate, physical: dict[str, str], attributes: dict[str, dict[str, Any]]) -> None:
        self.stack = stack
        self.physical = physical
        self.attributes = attributes
        self.pseudo: dict[str, Any] = {
            "AWS::AccountId": stack.account,
            "AWS::Region": stack.region,
            "AWS::Partition": stack.partition,
            "AWS::StackName": stack.name,
            "AWS::StackId": stack.stack_id,
            "AWS::URLSuffix": "amazonaws.com.cn" if stack.partition == "aws-cn" else "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        self.parameters = {
            name: _parameter_value(spec, stack.parameters.get(name, spec.get("Default")))
            for name, spec in stack.template.get("Parameters", {}).items()
        }

    def resolve(self, node: Any) -> Any:
        value = self._resolve(node)
        return None if value is NO_VALUE else value

    def outputs(self) -> dict[str, Any]:
        """The template's Outputs (those whose Condition holds), resolved: what a nested stack gives its parent."""
        return {
            name: self.resolve(output.get("Value"))
            for name, output in self.stack.template.get("Outputs", {}).items()
            if "Condition" not in output or self.condition(str(output["Condition"]))
        }

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self._resolve(i) for i in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(str(arg))
            if key == "Fn::GetAtt":
                target, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._getatt(str(target), str(self._resolve(attribute)))
            if key == "Fn::Join":
                separator, items = arg
                return str(separator).join(str(i) for i in self._resolve(items))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Select":
                index, items = self._resolve(arg)
                return items[int(index)]
            if key == "Fn::Split":
                separator, text = self._resolve(arg)
                return str(text).split(str(separator))
            if key == "Fn::Base64":
                return base64.b64encode(str(self._resolve(arg)).encode()).decode()
            if key == "Fn::If":
                condition, yes, no = arg
                return self._resolve(yes if self.condition(str(condition)) else no)
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"the rehearsal does not support {key}")
        return {k: v for k, v in ((k, self._resolve(v)) for k, v in node.items()) if v is not NO_VALUE}

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.stack.template.get("Conditions", {})[name]))

    def _evaluate(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Fn::Equals":
                left, right = (self._evaluate(i) for i in arg)
                return left == right
            if key == "Fn::Not":
                return not self._evaluate(arg[0])
            if key == "Fn::And":
                return all(self._evaluate(i) for i in arg)
            if key == "Fn::Or":
                return any(self._evaluate(i) for i in arg)
            if key == "Condition":
                return self.condition(str(arg))
        return self._resolve(node)

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise TemplateError(f"Ref to {name}, which does not exist (yet)")

    def _getatt(self, target: str, attribute: str) -> Any:
        attributes = self.attributes.get(target)
        if attributes is None or attribute not in attributes:
            kind = self.stack.resources.get(target, {}).get("Type", "?")
            raise TemplateError(f"Fn::GetAtt {target}.{attribute} ({kind}) is not available")
        return attributes[attribute]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg[0], self._resolve(arg[1])) if isinstance(arg, list) else (arg, {})

        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(variables[inner])
            if "." in inner and not inner.startswith("AWS::"):
                target, attribute = inner.split(".", 1)
                return str(self._getatt(target, attribute))
            return str(self._ref(inner))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))


def _parameter_value(spec: dict[str, Any], value: Any) -> Any:
    """What Ref gives for a parameter: a list for the list types, otherwise the value (a string)."""
    kind = str(spec.get("Type", "String"))
    if isinstance(value, str) and (kind == "CommaDelimitedList" or kind.startswith("List<")):
        return value.split(",")
    return value


def as_strings(value: Any) -> Any:
    """Every scalar as a string, as CloudFormation delivers a custom resource's properties."""
    if isinstance(value, dict):
        return {k: as_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return value
    return str(value)
