"""Fixtures of the referral tests: an organization partnered with an MFI, a consenting
producer with a program record, staff and partner users, and a draft referral."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from inclusive.auth.models import User
from inclusive.consents.services import record_consent
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.partners.models import CapitalPartner
from inclusive.partners.services import add_partner_user, create_partner, link_partner
from inclusive.producers.models import Producer
from inclusive.referrals import services
from inclusive.referrals.models import Referral, WebhookEndpoint
from inclusive.tenancy.scope import tenant_scope
from tests import factories

ALL_SCOPES = ["identity", "contact", "program_record", "economic_figures", "offtake_ledger"]


@pytest.fixture
def mfi(org) -> CapitalPartner:
    partner = create_partner(
        slug="andina",
        name="Microfinanciera Andina",
        kind="mfi",
        products=["working_capital_loan", "asset_loan"],
    )
    link_partner(org, partner)
    db.session.flush()
    return partner


@pytest.fixture
def staff(make_member) -> dict[str, User]:
    return {
        "admin": make_member("admin", name="Ada Admin", email="ada@acme.example"),
        "manager": make_member("program_manager", name="Julia Manager", email="julia@acme.example"),
        "officer": make_member("field_officer", name="Oscar Officer", email="oscar@acme.example"),
        "viewer": make_member("viewer", name="Vera Viewer", email="vera@acme.example"),
    }


@pytest.fixture
def partner_users(mfi) -> dict[str, User]:
    admin = factories.UserFactory(name="Paula Partner", email="paula@andina.example")
    officer = factories.UserFactory(name="Luis Loans", email="luis@andina.example")
    add_partner_user(mfi, admin, "partner_admin")
    add_partner_user(mfi, officer, "loan_officer")
    db.session.flush()
    return {"admin": admin, "officer": officer}


def give_consent(
    producer: Producer,
    partner: CapitalPartner,
    recorder: User,
    witness: User,
    scopes: list[str] | None = None,
    **fields: Any,
):
    values = {
        "partner_id": partner.id,
        "purpose": "Working-capital loan",
        "scopes": scopes or ALL_SCOPES,
        "method": "verbal",
        "witness_id": witness.id,
        "given_on": today() - timedelta(days=2),
        "recorder": recorder,
    }
    values.update(fields)
    return record_consent(producer, **values)


@pytest.fixture
def producer(org) -> Producer:
    with tenant_scope(org.id):
        return factories.ProducerFactory(name="Ana Quispe", phone="+51 999 111 222")


@pytest.fixture
def consent(org, producer, mfi, staff):
    with tenant_scope(org.id):
        given = give_consent(producer, mfi, staff["manager"], staff["officer"])
        db.session.flush()  # its audit event too, while the organization is in scope
        return given


@pytest.fixture
def draft(org, producer, mfi, consent, staff) -> Referral:
    with tenant_scope(org.id):
        partnership = services.partnership_choices()[0]
        referral = services.create_referral(
            producer,
            partnership_id=partnership.id,
            product="working_capital_loan",
            amount="1500",
            purpose="Buy a second oven",
            actor=staff["manager"],
        )
        db.session.flush()
        return referral


@pytest.fixture
def endpoint(mfi) -> WebhookEndpoint:
    row = WebhookEndpoint(
        partner_id=mfi.id,
        url="http://127.0.0.1:9/hook",
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    db.session.add(row)
    db.session.flush()
    return row
