"""The vocabulary of the route matrix: who may use a route, and how to call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inclusive.tenancy.roles import Role

ALL_ROLES = frozenset(Role)
ADMIN = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class Rule:
    """Who may use a route: ``public``, ``login`` (any logged-in user) or ``org`` roles."""

    audience: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    method: str = "GET"
    args: Callable[[dict[str, Any]], dict[str, Any]] = lambda ctx: {}
    data: dict[str, str] = field(default_factory=dict)


def org(roles: frozenset[Role], method: str = "GET", **kw: Any) -> Rule:
    return Rule("org", roles, method, **kw)
