"""The tenant scope: which organization the current request, job or command acts for.

Every ORM query of a tenant table gets ``org_id = <current organization>`` added by a
``do_orm_execute`` hook, and raises when no organization is set. New rows are stamped
with the current organization before flush, and a row of another organization cannot be
flushed. The only way around it is the explicit execution option ``ALL_TENANTS``, which
is easy to grep for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import ForeignKey, event, inspect
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)

_current_org_id: ContextVar[int | None] = ContextVar("current_org_id", default=None)

#: Execution option that lifts the tenant filter from one statement. Use sparingly, and
#: only where a query must span organizations by design (a user's own memberships).
ALL_TENANTS: dict[str, Any] = {"all_tenants": True}


class TenantScopeError(RuntimeError):
    """A tenant table was touched with no organization in scope, or across organizations."""


class TenantMixin:
    """Columns and behaviour shared by every table an organization owns."""

    #: False in a table whose composite (org_id, ...) indexes serve every lookup by org_id:
    #: a single-column index would only slow its inserts.
    org_id_index = True
    #: False in a table whose composite tenant key (org_id, x) -> parent(org_id, id), on a
    #: non-null x, already makes the database refuse an org_id of no organization (the
    #: parent's own key to organizations does) and deletes the rows with the organization.
    org_id_foreign_key = True

    @declared_attr
    def org_id(cls) -> Mapped[int]:
        keys = (
            [ForeignKey("organizations.id", ondelete="CASCADE")] if cls.org_id_foreign_key else []
        )
        return mapped_column(*keys, nullable=False, index=cls.org_id_index)


def current_org_id() -> int | None:
    """Return the id of the organization in scope, or None."""
    return _current_org_id.get()


def require_org_id() -> int:
    """Return the id of the organization in scope, raising when there is none."""
    org_id = _current_org_id.get()
    if org_id is None:
        raise TenantScopeError("No organization is in scope.")
    return org_id


def enter_tenant(org_id: int | None) -> None:
    """Set the organization for the rest of this request (entry points only)."""
    _current_org_id.set(org_id)


@contextmanager
def tenant_scope(org_id: int | None) -> Iterator[None]:
    """Act for one organization inside the block (None: for none; jobs, commands, tests)."""
    token = _current_org_id.set(org_id)
    try:
        yield
    finally:
        _current_org_id.reset(token)


def _is_tenant_class(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, TenantMixin)


def _add_tenant_criteria(state: ORMExecuteState) -> None:
    if state.execution_options.get("all_tenants"):
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    org_id = _current_org_id.get()
    if org_id is None:
        if any(_is_tenant_class(m.class_) for m in state.all_mappers):
            raise TenantScopeError(
                "A tenant table was queried with no organization in scope; "
                "enter one (tenant_scope) or pass ALL_TENANTS explicitly."
            )
        return
    state.statement = state.statement.options(_tenant_criteria(org_id))


#: The tenant filter's option, built once per organization (building it is a good part of
#: what the hook costs a query). The org_id is a bound value of the option's lambda, as
#: when it is built anew: statements of any organization share their compiled SQL.
_CRITERIA: dict[int, Any] = {}
_MAX_CRITERIA = 1000


def _tenant_criteria(org_id: int) -> Any:
    option = _CRITERIA.get(org_id)
    if option is None:
        if len(_CRITERIA) >= _MAX_CRITERIA:
            _CRITERIA.clear()
        option = _CRITERIA[org_id] = with_loader_criteria(
            TenantMixin,
            lambda cls: cls.org_id == org_id,
            include_aliases=True,
            propagate_to_loaders=True,
        )
    return option


def _check_rows_before_flush(session: Session, flush_context: object, instances: object) -> None:
    org_id = _current_org_id.get()
    for obj in session.new:
        if not isinstance(obj, TenantMixin):
            continue
        if org_id is None:
            raise TenantScopeError(f"New {type(obj).__name__} with no organization in scope.")
        if obj.org_id is None:
            obj.org_id = org_id
        elif obj.org_id != org_id:
            raise TenantScopeError(
                f"New {type(obj).__name__} belongs to organization {obj.org_id}, "
                f"but organization {org_id} is in scope."
            )
    for obj in list(session.dirty) + list(session.deleted):
        if not isinstance(obj, TenantMixin):
            continue
        history = inspect(obj).attrs.org_id.history
        original = history.deleted[0] if history.deleted else obj.org_id
        if history.added and history.deleted:
            raise TenantScopeError(f"{type(obj).__name__} cannot move between organizations.")
        if original != org_id:
            raise TenantScopeError(
                f"{type(obj).__name__} of organization {original} changed while "
                f"organization {org_id} is in scope."
            )


def install_tenant_hooks(session_class: type[Session]) -> None:
    """Register the query filter and the flush check on a session class, once."""
    if not event.contains(session_class, "do_orm_execute", _add_tenant_criteria):
        event.listen(session_class, "do_orm_execute", _add_tenant_criteria)
        event.listen(session_class, "before_flush", _check_rows_before_flush)
