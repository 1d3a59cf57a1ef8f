"""The tenant scope filters every ORM query of tenant tables and guards every flush."""

import pytest
from sqlalchemy import select

from inclusive.extensions import db
from inclusive.tenancy.models import Invitation, Membership, Organization
from inclusive.tenancy.scope import ALL_TENANTS, TenantMixin, TenantScopeError, tenant_scope
from tests import factories


def _two_orgs_with_members():
    a = factories.OrganizationFactory(slug="alpha")
    b = factories.OrganizationFactory(slug="beta")
    with tenant_scope(a.id):
        factories.MembershipFactory(organization=a)
        factories.MembershipFactory(organization=a)
    with tenant_scope(b.id):
        factories.MembershipFactory(organization=b)
    db.session.expunge_all()  # nothing from the identity map: every read is a query
    return a, b


def test_every_tenant_table_has_an_indexed_non_null_org_id():
    tenant_tables = [
        m.local_table for m in db.Model.registry.mappers if issubclass(m.class_, TenantMixin)
    ]
    assert {t.name for t in tenant_tables} >= {"memberships", "invitations"}
    for table in tenant_tables:
        column = table.c.org_id
        assert not column.nullable
        # An index on org_id alone, or one that starts with it (a table whose composite
        # indexes serve every lookup by organization need not keep a single-column one).
        assert any(ix.columns.keys()[0] == "org_id" for ix in table.indexes), table.name
        if not table.c.org_id.index:
            assert table.name in {"producers", "producer_sectors", "audit_events"}, table.name


def test_query_without_an_organization_raises():
    _two_orgs_with_members()
    with pytest.raises(TenantScopeError):
        db.session.scalars(select(Membership)).all()


def test_query_sees_only_the_organization_in_scope():
    a, b = _two_orgs_with_members()
    with tenant_scope(a.id):
        assert {m.org_id for m in db.session.scalars(select(Membership))} == {a.id}
        assert len(db.session.scalars(select(Membership)).all()) == 2
    with tenant_scope(b.id):
        assert len(db.session.scalars(select(Membership)).all()) == 1


def test_filter_applies_to_joins_and_get():
    a, b = _two_orgs_with_members()
    with tenant_scope(b.id):
        b_member = db.session.scalars(select(Membership)).one()
    db.session.expunge_all()
    with tenant_scope(a.id):
        assert db.session.get(Membership, b_member.id) is None
        joined = select(Organization.slug).join(Membership, Membership.org_id == Organization.id)
        assert set(db.session.scalars(joined)) == {"alpha"}


def test_non_tenant_tables_need_no_scope():
    _two_orgs_with_members()
    assert {o.slug for o in db.session.scalars(select(Organization))} >= {"alpha", "beta"}


def test_all_tenants_is_an_explicit_opt_out():
    _two_orgs_with_members()
    rows = db.session.scalars(select(Membership).execution_options(**ALL_TENANTS)).all()
    assert len(rows) >= 3


def test_new_rows_are_stamped_with_the_organization_in_scope():
    a = factories.OrganizationFactory()
    user = factories.UserFactory()
    with tenant_scope(a.id):
        membership = Membership(user_id=user.id, role="viewer")
        db.session.add(membership)
        db.session.flush()
    assert membership.org_id == a.id


def test_new_row_without_scope_is_refused():
    user = factories.UserFactory()
    db.session.add(Membership(user_id=user.id, role="viewer"))
    with pytest.raises(TenantScopeError):
        db.session.flush()
    db.session.rollback()


def test_new_row_of_another_organization_is_refused():
    a = factories.OrganizationFactory()
    b = factories.OrganizationFactory()
    with tenant_scope(a.id):
        db.session.add(Invitation(org_id=b.id, email="x@example.org", role="viewer", language="en"))
        with pytest.raises(TenantScopeError):
            db.session.flush()
    db.session.rollback()


def test_a_row_cannot_move_to_another_organization():
    a, b = _two_orgs_with_members()
    with tenant_scope(a.id):
        membership = db.session.scalars(select(Membership)).first()
        membership.org_id = b.id
        with pytest.raises(TenantScopeError):
            db.session.flush()
    db.session.rollback()


def test_changing_a_row_outside_its_scope_is_refused():
    a, b = _two_orgs_with_members()
    with tenant_scope(a.id):
        membership = db.session.scalars(select(Membership)).first()
    with tenant_scope(b.id):
        membership.role = "admin"
        with pytest.raises(TenantScopeError):
            db.session.flush()
    db.session.rollback()


def test_bulk_update_is_filtered_too():
    a, b = _two_orgs_with_members()
    with tenant_scope(a.id):
        db.session.execute(db.update(Membership).values(role="admin"))
    with tenant_scope(b.id):
        assert db.session.scalars(select(Membership.role)).all() == ["viewer"]


def test_the_filter_built_once_per_organization_keeps_each_to_its_own():
    """The same statement, run in turns for two organizations (its SQL is compiled once and
    each organization's filter option is reused), sees each one's rows only."""
    a, b = _two_orgs_with_members()
    query = select(Membership.org_id)
    for _ in range(3):
        for org in (a, b, a):
            with tenant_scope(org.id):
                assert set(db.session.scalars(query)) == {org.id}
                rows = db.session.scalars(select(Membership).where(Membership.id > 0)).all()
                assert {m.org_id for m in rows} == {org.id}
            db.session.expunge_all()


def test_the_database_refuses_a_sector_of_no_or_another_organization():
    """producer_sectors has no key of its own to organizations: its tenant key refuses both."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not check foreign keys here")
    from sqlalchemy.exc import IntegrityError

    from inclusive.producers.models import ProducerSector

    a, b = _two_orgs_with_members()
    with tenant_scope(a.id):
        producer = factories.ProducerFactory()
        db.session.flush()
        producer_id = producer.id
    missing = max(a.id, b.id) + 1000
    for org_id in (b.id, missing):
        with pytest.raises(IntegrityError), db.session.begin_nested():
            db.session.execute(
                ProducerSector.__table__.insert().values(
                    org_id=org_id, producer_id=producer_id, sector="agriculture"
                )
            )
