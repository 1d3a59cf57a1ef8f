"""Demo partners: one of each kind, two users each, active with both demo organizations."""

from __future__ import annotations

from sqlalchemy import func, select

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.partners.demo import load_partners
from inclusive.partners.models import (
    CapitalPartner,
    PartnerKind,
    PartnerMembership,
    Partnership,
)
from inclusive.tenancy.scope import ALL_TENANTS
from tests import factories


def _counts() -> tuple[int, ...]:
    return tuple(
        db.session.scalar(select(func.count()).select_from(m).execution_options(**ALL_TENANTS))
        for m in (CapitalPartner, PartnerMembership, Partnership, User)
    )


def test_demo_partners_are_complete_and_idempotent(client, login):
    andes = factories.OrganizationFactory(slug="andes")
    sertao = factories.OrganizationFactory(slug="sertao")
    logins = load_partners(factories._password_hash())
    counts = _counts()
    assert load_partners(factories._password_hash()) == logins
    assert _counts() == counts

    partners = db.session.scalars(select(CapitalPartner)).all()
    assert {p.kind for p in partners} == set(PartnerKind)
    assert all(p.products and p.ticket_currency for p in partners)
    states = db.session.execute(
        select(Partnership.org_id, Partnership.state).execution_options(**ALL_TENANTS)
    ).all()
    assert len(states) == 2 * len(partners)
    assert {org_id for org_id, _state in states} == {andes.id, sertao.id}
    assert {state for _org, state in states} == {"active"}
    assert ("officer@andina.example", "andina", "loan_officer") in logins
    assert ("admin@sertaneja.example", "sertaneja", "partner_admin") in logins

    login(db.session.scalar(select(User).filter_by(email="officer@andina.example")))
    page = client.get("/").headers["Location"]
    assert page.endswith("/p/andina/")
    home = client.get("/p/andina/").get_data(as_text=True)
    assert andes.name in home and sertao.name in home
