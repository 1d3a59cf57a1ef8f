"""Core reads of tenant tables: the organization is always bound from the tenant scope."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select

from inclusive.producers.models import Producer
from inclusive.tenancy.reads import ORG_ID, org_rows, org_statement
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
