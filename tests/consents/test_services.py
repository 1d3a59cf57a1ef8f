"""Consent services: recording (each refusal says why and writes nothing), revoking, checking."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from inclusive.audit.models import AuditEvent
from inclusive.consents import services
from inclusive.consents.models import Consent, ConsentState
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.partners.models import PartnershipSide
from inclusive.partners.services import end_partnership, open_partnership
from inclusive.presentation import describe_event
from inclusive.storage import storage
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.consents.conftest import PDF, PNG

ALL = ["identity", "contact", "program_record", "economic_figures", "offtake_ledger"]


def _paper(data: bytes = PDF, name: str = "signed.pdf") -> FileStorage:
    return FileStorage(stream=io.BytesIO(data), filename=name)


def _verbal(producer, mfi, staff, **kw):
    fields = {
        "partner_id": mfi.id,
        "purpose": "Working-capital loan",
        "scopes": ["identity", "economic_figures"],
        "method": "verbal",
        "witness_id": staff["officer"].id,
        "given_on": today() - timedelta(days=3),
        "recorder": staff["manager"],
    }
    fields.update(kw)
    return services.record_consent(producer, **fields)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_record_verbal_consent_with_defaults(scope, producer, mfi, staff):
    consent = _verbal(producer, mfi, staff)
    assert consent.scopes == ["economic_figures", "identity"]
    assert consent.valid_until == services.one_year_after(consent.given_on)
    assert consent.text_version == "consent-v1"
    assert consent.recorded_by_id == staff["manager"].id
    assert consent.state_on(today()) == ConsentState.VALID
    event = db.session.scalars(select(AuditEvent).filter_by(action="consent.recorded")).one()
    assert event.producer_id == producer.id
    assert "Microfinanciera Andina" in describe_event(event)


def test_record_signed_paper_is_checked_by_content(scope, producer, mfi, staff):
    consent = _verbal(
        producer, mfi, staff, method="signed_paper", witness_id=None, paper=_paper(PNG, "x.pdf")
    )
    assert consent.paper_content_type == "image/png"
    assert consent.paper_filename == "x.png"
    with storage().open(consent.paper_storage_key) as handle:
        assert handle.read() == PNG


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"partner_id": None}, "partner_id", "partnership"),
        ({"purpose": "  "}, "purpose", "shared for"),
        ({"purpose": "x" * 201}, "purpose", "200"),
        ({"scopes": []}, "scopes", "at least one"),
        ({"scopes": ["identity", "bank_password"]}, "scopes", "from the list"),
        ({"text_version": "consent-v9"}, "text_version", "consent text"),
        ({"given_on": None}, "given_on", "date"),
        ({"given_on": date.today() + timedelta(days=5)}, "given_on", "future"),
        ({"valid_until": date.today() - timedelta(days=3)}, "valid_until", "valid until"),
        ({"method": "portal"}, "method", "not available yet"),
        ({"method": "carrier_pigeon"}, "method", "how"),
        ({"witness_id": None}, "witness_id", "witness"),
        ({"method": "signed_paper", "paper": None}, "paper", "Upload"),
        ({"method": "signed_paper", "paper": _paper(b"", "e.pdf")}, "paper", "empty"),
        (
            {"method": "signed_paper", "paper": _paper(b"MZ\x90\x00 not a pdf", "evil.pdf")},
            "paper",
            "not a PDF, JPEG or PNG",
        ),
    ],
)
def test_every_refusal_says_why_and_writes_nothing(
    scope, producer, mfi, staff, changes, field, words
):
    events = _count(AuditEvent)
    with pytest.raises(services.ConsentError) as refused:
        _verbal(producer, mfi, staff, **changes)
    assert refused.value.field == field
    assert words.lower() in str(refused.value).lower()
    assert _count(Consent) == 0
    assert _count(AuditEvent) == events


def test_witness_must_be_another_member_of_the_organization(
    scope, org, other_org, producer, mfi, staff, make_member
):
    with pytest.raises(services.ConsentError, match="another member"):
        _verbal(producer, mfi, staff, witness_id=staff["manager"].id)
    outsider = make_member("admin", organization=other_org)
    with tenant_scope(org.id), pytest.raises(services.ConsentError, match="member of your"):
        _verbal(producer, mfi, staff, witness_id=outsider.id)
    assert _count(Consent) == 0


def test_partner_without_open_partnership_is_refused(
    scope, org, producer, mfi, stranger_partner, staff
):
    with pytest.raises(services.ConsentError, match="partnership"):
        _verbal(producer, stranger_partner, staff)
    end_partnership(open_partnership(mfi), staff["manager"], PartnershipSide.ORGANIZATION)
    with pytest.raises(services.ConsentError, match="partnership"):
        _verbal(producer, mfi, staff)
    assert _count(Consent) == 0


def test_another_organizations_producer_is_refused(org, other_org, mfi, staff):
    with tenant_scope(other_org.id):
        foreign = factories.ProducerFactory()
    with tenant_scope(org.id), pytest.raises(services.ConsentError, match="not of the"):
        _verbal(foreign, mfi, staff)


def test_revoke_in_one_step_calls_the_withdrawal_hook(scope, producer, mfi, staff, monkeypatch):
    consent = _verbal(producer, mfi, staff)
    seen = []
    monkeypatch.setattr(services, "withdraw_referrals_covered_by", seen.append)
    services.revoke_consent(consent, "Changed their mind", staff["manager"])
    assert seen == [consent]
    assert consent.revoked_at is not None and consent.revoked_by_id == staff["manager"].id
    assert consent.state_on(today()) == ConsentState.REVOKED
    assert services.valid_consent_for(producer.id, mfi.id, ["identity"]) is None
    event = db.session.scalars(select(AuditEvent).filter_by(action="consent.revoked")).one()
    assert "Changed their mind" in describe_event(event)


def test_revoke_refusals(scope, producer, mfi, staff):
    consent = _verbal(producer, mfi, staff)
    with pytest.raises(services.ConsentError, match="Say why"):
        services.revoke_consent(consent, "   ", staff["manager"])
    assert consent.revoked_at is None
    services.revoke_consent(consent, "Asked by phone", staff["manager"])
    with pytest.raises(services.ConsentError, match="already been revoked"):
        services.revoke_consent(consent, "Again", staff["manager"])
    assert consent.revocation_reason == "Asked by phone"


def test_validity_by_date_and_scope(scope, producer, mfi, staff):
    given = today() - timedelta(days=100)
    until = given + timedelta(days=60)
    consent = _verbal(producer, mfi, staff, given_on=given, valid_until=until)
    day = timedelta(days=1)
    wanted = ["identity"]
    assert services.valid_consent_for(producer.id, mfi.id, wanted, on=given) == consent
    assert services.valid_consent_for(producer.id, mfi.id, wanted, on=until) == consent
    assert services.valid_consent_for(producer.id, mfi.id, wanted, on=until + day) is None
    assert services.valid_consent_for(producer.id, mfi.id, wanted, on=given - day) is None
    assert services.valid_consent_for(producer.id, mfi.id, wanted) is None  # today: expired
    assert services.valid_consent_for(producer.id, mfi.id, ALL, on=given) is None
    assert services.missing_for(producer.id, mfi.id, wanted, on=given) == []
    assert services.missing_for(producer.id, mfi.id, ALL, on=given) == [
        "The consent does not cover: Contact details, Program record, Offtake ledger."
    ]
    (expired,) = services.missing_for(producer.id, mfi.id, wanted, on=until + day)
    assert expired.startswith("The consent expired on")
    (early,) = services.missing_for(producer.id, mfi.id, wanted, on=given - day)
    assert early.startswith("The consent is valid only from")


def test_missing_for_says_what_is_missing(scope, producer, mfi, stranger_partner, staff):
    assert services.missing_for(producer.id, mfi.id, ["identity"]) == [
        "There is no consent of the producer for this partner."
    ]
    consent = _verbal(producer, mfi, staff)
    services.revoke_consent(consent, "Asked by phone", staff["manager"])
    (revoked,) = services.missing_for(producer.id, mfi.id, ["identity"])
    assert "revoked" in revoked and "Asked by phone" in revoked
    assert services.missing_for(producer.id, stranger_partner.id, ["identity"]) == [
        "There is no consent of the producer for this partner."
    ]
    # A new consent after the revocation makes the producer referable again.
    _verbal(producer, mfi, staff)
    assert services.missing_for(producer.id, mfi.id, ["identity"]) == []


def test_one_year_after_a_leap_day():
    assert services.one_year_after(date(2028, 2, 29)) == date(2029, 2, 28)
    assert services.one_year_after(date(2026, 3, 1)) == date(2027, 3, 1)
