"""Foreign keys between tenant tables carry org_id: the database refuses cross-tenant links."""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, UniqueConstraint


def tenant_key() -> UniqueConstraint:
    """The (org_id, id) key other tenant tables point at."""
    return UniqueConstraint("org_id", "id")


def tenant_fk(column: str, table: str, ondelete: str | None = "CASCADE") -> ForeignKeyConstraint:
    """A composite foreign key (org_id, column) -> table(org_id, id)."""
    return ForeignKeyConstraint(
        ["org_id", column], [f"{table}.org_id", f"{table}.id"], ondelete=ondelete
    )
