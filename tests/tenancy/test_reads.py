"""Core reads of tenant tables: the organization is always bound from the tenant scope."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Date, LargeBinary, Numeric, bindparam, literal, select

from inclusive.extensions import db
from inclusive.producers.models import Producer
from inclusive.tenancy.reads import ORG_ID, _converter, org_bundle, org_rows, org_statement
from inclusive.tenancy.scope import TenantScopeError, tenant_scope
from tests import factories

PRODUCERS = Producer.__table__


def test_a_statement_without_the_organization_is_refused():
    with pytest.raises(ValueError, match="org_id"):
        org_statement(select(PRODUCERS.c.id))


def test_rows_are_the_organization_in_scopes_only(org, other_org):
    with tenant_scope(org.id):
        ours = factories.ProducerFactory()
    with tenant_scope(other_org.id):
        theirs = factories.ProducerFactory()
    statement = org_statement(
        select(PRODUCERS.c.id).where(PRODUCERS.c.org_id == bindparam(ORG_ID)).order_by("id")
    )
    with tenant_scope(org.id):
        assert [r.id for r in org_rows(statement)] == [ours.id]
        with pytest.raises(ValueError, match="never by the caller"):
            org_rows(statement, org_id=other_org.id)
    with tenant_scope(other_org.id):
        assert [r.id for r in org_rows(statement)] == [theirs.id]
    with pytest.raises(TenantScopeError):
        org_rows(statement)


# Bundles: several reads in one round trip on PostgreSQL -----------------------------------


def _typed_statement():
    """Producers with a column of every kind a bundle carries through JSON."""
    return org_statement(
        select(
            PRODUCERS.c.id,
            PRODUCERS.c.name,
            PRODUCERS.c.national_id,
            PRODUCERS.c.employees,
            PRODUCERS.c.formally_registered,
            PRODUCERS.c.created_at,
            literal(date(2026, 2, 1), Date).label("month"),
            literal(Decimal("1234.50"), Numeric(12, 2)).label("amount"),
            literal(Decimal("100"), Numeric(12, 2)).label("whole"),
        )
        .where(PRODUCERS.c.org_id == bindparam(ORG_ID))
        .order_by(PRODUCERS.c.name.desc())
        .limit(bindparam("limit"))
    )


def test_a_bundle_gives_each_statements_rows_as_the_statement_does(org, other_org):
    with tenant_scope(org.id):
        for name in ('Ana "Q" Pérez', "Bruno <b>", "Célia"):
            factories.ProducerFactory(
                name=name, national_id=None if "B" in name else f"X-{name[0]}"
            )
    with tenant_scope(other_org.id):
        factories.ProducerFactory(name="Zé of another organization")
    typed = _typed_statement()
    ids = org_statement(
        select(PRODUCERS.c.id).where(PRODUCERS.c.org_id == bindparam(ORG_ID)).order_by("id")
    )
    with tenant_scope(org.id):
        bundled = org_bundle({"typed": typed, "ids": ids}, limit=2)
        assert bundled["typed"] == [tuple(r) for r in org_rows(typed, limit=2)]
        assert [row[1] for row in bundled["typed"]] == ["Célia", "Bruno <b>"]  # order, limit
        assert [type(v) for v in bundled["typed"][0]] == [
            type(v) for v in org_rows(typed, limit=2)[0]
        ]
        assert bundled["typed"][0][-2:] == (Decimal("1234.50"), Decimal("100"))
        assert bundled["typed"][0][-3] == date(2026, 2, 1)
        assert bundled["ids"] == [tuple(r) for r in org_rows(ids)]
        assert len(bundled["ids"]) == 3  # another organization's producer is not there
        assert org_bundle({"typed": typed}, limit=0) == {"typed": []}
        with pytest.raises(ValueError, match="never by the caller"):
            org_bundle({"ids": ids}, org_id=other_org.id)
    with pytest.raises(TenantScopeError):
        org_bundle({"ids": ids})


def test_a_bundle_refuses_a_statement_without_the_organization_or_an_odd_column(org):
    with tenant_scope(org.id), pytest.raises(ValueError, match="org_id"):
        org_bundle({"all": select(PRODUCERS.c.id)}) if _on_postgresql() else org_statement(
            select(PRODUCERS.c.id)
        )
    with pytest.raises(ValueError, match="through JSON"):
        _converter(LargeBinary())


def _on_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"
