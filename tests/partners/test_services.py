"""Partner services: validation, the proposal, acceptance and end of partnerships."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from inclusive.extensions import db
from inclusive.partners import services
from inclusive.partners.models import (
    Partnership,
    PartnershipSide,
    PartnershipState,
)
from inclusive.partners.services import PartnerError
from inclusive.tenancy.scope import TenantScopeError, tenant_scope
from tests import factories


def test_a_partner_keeps_its_products_regions_and_ticket_range(mfi):
    assert (mfi.kind, mfi.country) == ("mfi", "PE")
    assert mfi.products == ["working_capital_loan", "asset_loan"]
    assert mfi.regions == ["Cusco", "Puno"]
    assert (mfi.ticket_min, mfi.ticket_max, mfi.ticket_currency) == (50_000, 3_000_000, "PEN")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"slug": "Bad Slug"}, "slug", "lowercase"),
        ({"slug": "andina"}, "slug", "already taken"),
        ({"name": "  "}, "name", "name"),
        ({"kind": "bank"}, "kind", "kind"),
        ({"country": "PER"}, "country", "two-letter"),
        ({"products": ["loans"]}, "products", "products"),
        ({"ticket_min": -1, "ticket_currency": "PEN"}, "ticket_min", "negative"),
        ({"ticket_min": 10, "ticket_max": 5, "ticket_currency": "PEN"}, "ticket_max", "below"),
        ({"ticket_min": 10}, "ticket_currency", "currency"),
    ],
)
def test_create_partner_refuses_bad_input_and_says_why(mfi, fields, field, message):
    values = {"slug": "new-partner", "name": "New", "kind": "mfi", **fields}
    with pytest.raises(PartnerError) as refused:
        services.create_partner(**values)
    assert refused.value.field == field
    assert message in str(refused.value)


def test_search_by_name_kind_and_country(mfi, fund):
    assert services.search_partners() == [fund, mfi]
    assert services.search_partners(q="andina") == [mfi]
    assert services.search_partners(q="100%") == []
    assert services.search_partners(kind="local_fund") == [fund]
    assert services.search_partners(country="pe") == [mfi]


def test_partner_users_and_roles(mfi, fund, make_partner_user):
    user = make_partner_user(mfi, "loan_officer", name="Raúl")
    services.add_partner_user(fund, user, "partner_admin")
    services.add_partner_user(mfi, user, "partner_admin")  # a new role replaces the old one
    roles = {m.partner.slug: m.role for m in services.partner_memberships_of(user)}
    assert roles == {"andina": "partner_admin", "fundo-sertao": "partner_admin"}
    with pytest.raises(PartnerError):
        services.add_partner_user(mfi, user, "admin")


def test_propose_accept_end(org, admin, mfi, make_partner_user):
    officer = make_partner_user(mfi, "partner_admin")
    with tenant_scope(org.id):
        partnership = services.propose_partnership(org, admin, mfi)
        assert partnership.state == PartnershipState.PROPOSED
        assert partnership.proposed_by == admin and partnership.acknowledgement_days == 2
        with pytest.raises(PartnerError, match="already proposed"):
            services.propose_partnership(org, admin, mfi)
    # The partner acts with no organization in scope.
    services.accept_partnership(partnership, officer)
    assert partnership.state == PartnershipState.ACTIVE
    assert partnership.accepted_by == officer and partnership.accepted_at is not None
    with pytest.raises(PartnerError, match="this one is active"):
        services.accept_partnership(partnership, officer)
    with tenant_scope(org.id):
        with pytest.raises(PartnerError, match="already a partner"):
            services.propose_partnership(org, admin, mfi)
        services.end_partnership(partnership, admin, PartnershipSide.ORGANIZATION, " Done ")
    assert (partnership.state, partnership.ended_side) == ("ended", "organization")
    assert partnership.ended_by == admin and partnership.end_reason == "Done"
    with pytest.raises(PartnerError, match="already ended"):
        services.end_partnership(partnership, officer, PartnershipSide.PARTNER)
    with tenant_scope(org.id):  # after the end, a new proposal is possible
        again = services.propose_partnership(org, admin, mfi)
        assert again.id != partnership.id
        assert [p.id for p in services.partnerships_with(mfi)] == [again.id, partnership.id]


def test_the_partner_can_decline_a_proposal(org, admin, mfi, make_partner_user):
    partner_admin = make_partner_user(mfi)
    with tenant_scope(org.id):
        partnership = services.propose_partnership(org, admin, mfi)
    services.end_partnership(partnership, partner_admin, PartnershipSide.PARTNER, "Not our region")
    assert partnership.state == "ended" and partnership.accepted_at is None
    with pytest.raises(PartnerError, match="this one is ended"):
        services.accept_partnership(partnership, partner_admin)


def test_the_database_refuses_two_open_partnerships(org, mfi):
    with tenant_scope(org.id):
        db.session.add(Partnership(partner_id=mfi.id, state="active"))
        db.session.flush()
        with db.session.begin_nested():
            db.session.add(Partnership(partner_id=mfi.id, state="proposed"))
            with pytest.raises(IntegrityError):
                db.session.flush()


def test_link_partner_is_idempotent_and_activates_a_proposal(org, admin, mfi, fund):
    with tenant_scope(org.id):
        proposed = services.propose_partnership(org, admin, mfi)
    linked, changed = services.link_partner(org, mfi)
    assert (linked.id, linked.state, changed) == (proposed.id, "active", True)
    assert services.link_partner(org, mfi) == (linked, False)
    created, changed = services.link_partner(org, fund)
    assert created.state == "active" and changed and created.proposed_by_id is None


def test_a_partner_sees_its_partnerships_across_organizations_only(org, other_org, mfi, fund):
    services.link_partner(org, mfi)
    services.link_partner(other_org, mfi)
    third = factories.OrganizationFactory(name="Third")
    services.link_partner(third, fund)
    seen = services.partnerships_of_partner(mfi)
    assert {p.org_id for p in seen} == {org.id, other_org.id}
    fund_row = services.partnerships_of_partner(fund)[0]
    assert services.partnership_of_partner(mfi, fund_row.id) is None


def test_organization_side_queries_need_an_organization(mfi):
    with pytest.raises(TenantScopeError):
        services.partnerships()
    with pytest.raises(TenantScopeError):
        services.open_partnership(mfi)


def test_propose_refuses_an_organization_out_of_scope(org, other_org, admin, mfi):
    with tenant_scope(other_org.id), pytest.raises(PartnerError):
        services.propose_partnership(org, admin, mfi)
