"""Attributes of this library's resources, as the tokens the constructs hand out.

The handler role may not name such a token in its policy: the resource depends on the provider, so the
provider's role would depend on the resource it serves (a dependency cycle CloudFormation refuses). A
permission on a resource of the stack is granted by the pattern of its type instead.
"""

from __future__ import annotations

#: Token string -> the CloudFormation type of the resource it is an attribute of.
_SERVED: dict[str, str] = {}


def remember(token: str, resource_type: str) -> str:
    """Note ``token`` as an attribute of a resource of ``resource_type`` that a provider of this library serves."""
    _SERVED[token] = resource_type
    return token


def served_type(value: str) -> str | None:
    """The type of the library's resource whose attribute ``value`` is (None for anything else)."""
    return _SERVED.get(value)
