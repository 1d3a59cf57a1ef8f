"""Demo consents: valid, verbal, expired and revoked ones, loaded once."""

from __future__ import annotations

from sqlalchemy import select

from inclusive.consents.demo import load_consents
from inclusive.consents.models import Consent, ConsentState
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.partners.services import create_partner, link_partner
from inclusive.tenancy.scope import tenant_scope
from tests import factories


def test_demo_consents_are_varied_and_idempotent(make_member):
    org = factories.OrganizationFactory(slug="andes", default_language="es")
    make_member("program_manager", organization=org, email="manager@andes.example")
    make_member("field_officer", organization=org, email="officer@andes.example")
    for slug in ("andina", "sertaneja"):
        link_partner(org, create_partner(slug=slug, name=slug.title(), kind="mfi"))
    with tenant_scope(org.id):
        for _n in range(4):
            factories.ProducerFactory()
    load_consents()
    load_consents()
    with tenant_scope(org.id):
        consents = list(db.session.scalars(select(Consent)))
        states = sorted(c.state_on(today()) for c in consents)
    assert len(consents) == 4
    assert set(states) == {ConsentState.VALID, ConsentState.EXPIRED, ConsentState.REVOKED}
    assert {c.method for c in consents} == {"signed_paper", "verbal"}
