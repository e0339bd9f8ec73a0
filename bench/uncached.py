"""Benchmark-only: switch off the library's jsii caches in this process, to measure what each one saves.

The constructs keep what never changes once known (``constructs/cdk_cleanrooms_ml/_resource.py`` and
``_resource.partition_of``), because every jsii call is a round trip to node. ``disable(names)`` replaces each
named cache, in this process only, by the uncached equivalent: the same calls, asked every time. The
template must not change (the synth bench checks its digest); the jsii calls and the CPU time may.
``synth_once.py`` calls it when ``BENCH_UNCACHED`` names caches (comma-separated, or ``all``). Nothing
here is imported by the library.
"""

from __future__ import annotations

from typing import Any

#: Every cache that can be switched off, and what it keeps.
CACHES: dict[str, str] = {
    "stack_of": "Stack.of(scope), asked once per scope (_resource.stack_of)",
    "stack_shared": "one StackShared per stack: the stack's name and region read once (_resource.shared)",
    "child_path": "a scope's construct path, read once per scope (StackShared.child_path)",
    "providers": "the stack's provider and its service token, looked up once per poll interval (StackShared.providers)",
    "attribute": "a GetAtt token, made once per resource and attribute (_resource.attribute)",
    "partition": "a region's partition, looked up once per region (_resource.partition_of)",
}


class _Forgetful(dict[Any, Any]):
    """A providers map that never remembers: each resource looks its provider and service token up again."""

    def __contains__(self, key: object) -> bool:
        return False

    def __setitem__(self, key: Any, value: Any) -> None:
        self.last = value

    def __getitem__(self, key: Any) -> Any:
        return self.last


def parse(value: str | None) -> list[str]:
    """The cache names in ``BENCH_UNCACHED``'s value (``all`` for every one)."""
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    if names == ["all"]:
        return list(CACHES)
    unknown = sorted(set(names) - set(CACHES))
    if unknown:
        raise ValueError(f"BENCH_UNCACHED: unknown cache(s) {unknown}; known: {sorted(CACHES)} or 'all'")
    return names


def disable(names: list[str]) -> None:
    """Replace the named caches of the imported library by uncached equivalents (this process only)."""
    from aws_cdk import Stack

    from cdk_cleanrooms_ml import _resource, references
    from constructs import Construct

    shared_class = _resource.StackShared
    if "stack_of" in names:

        def stack_of(scope: Construct) -> Stack:
            return Stack.of(scope)

        _resource.stack_of = stack_of
    if "providers" in names:
        init = shared_class.__init__

        def forgetful_init(self: Any, stack: Stack) -> None:
            init(self, stack)
            self.providers = _Forgetful()

        shared_class.__init__ = forgetful_init  # type: ignore[method-assign]
    if "stack_shared" in names:
        kept = _resource.shared

        def shared(stack: Stack) -> Any:
            # A new StackShared per call reads the stack's name and region again; what the stack's resources
            # register there (scope paths, providers, validations) stays the stack's, as it must.
            registry = kept(stack)
            fresh = shared_class(stack)
            fresh.scope_paths, fresh.providers, fresh.validations = (
                registry.scope_paths,
                registry.providers,
                registry.validations,
            )
            return fresh

        _resource.shared = shared
    if "child_path" in names:

        def child_path(self: Any, scope: Construct, id: str) -> str:
            scope_path = scope.node.path
            return f"{scope_path}/{id}" if scope_path else id

        shared_class.child_path = child_path  # type: ignore[method-assign]
    if "attribute" in names:

        def attribute(resource: Any, name: str) -> str:
            return references.remember(resource.get_att(name).to_string(), resource.cfn_resource_type)

        _resource.attribute = attribute
    if "partition" in names:
        _resource.partition_of = _resource.partition_of.__wrapped__  # type: ignore[assignment]
