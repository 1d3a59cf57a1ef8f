"""Referral pages of the organization: the list and pipeline, preparing, sending, following."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from inclusive.extensions import db
from inclusive.jobs.mail import render_mail
from inclusive.milestones.services import today
from inclusive.referrals import services
from inclusive.referrals.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Referral,
    ReferralEvent,
    ReferralState,
    Side,
)
from inclusive.referrals.services import Disbursement
from inclusive.tenancy.scope import tenant_scope
from tests import factories

BASE = "/o/acme/referrals"


def _fresh(org, referral_id: int) -> Referral:
    db.session.expire_all()
    with tenant_scope(org.id):
        return db.session.get(Referral, referral_id)


def _send(org, referral, actor) -> None:
    with tenant_scope(org.id):
        services.send(referral, actor)
        db.session.flush()


def _text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def sent(draft, org, staff, partner_users):
    """The draft, sent (with e-mail deliveries to the partner's users)."""
    _send(org, draft, staff["manager"])
    return draft


# The list and the pipeline -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "program_manager", "field_officer", "viewer"])
def test_every_member_reads_the_list_and_the_referral(client, login, staff, sent, role):
    person = {
        "admin": staff["admin"],
        "program_manager": staff["manager"],
        "field_officer": staff["officer"],
        "viewer": staff["viewer"],
    }[role]
    referral_id = sent.id
    login(person)
    page = _text(client.get(f"{BASE}/"))
    assert "Pipeline" in page and f"#{referral_id}" in page and "Microfinanciera Andina" in page
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert "Profile sent" in page and "Timeline" in page
    manages = role in ("admin", "program_manager")
    assert ("Send the message" in page) is manages
    assert ('name="action" value="withdraw"' in page) is manages


def test_pipeline_shows_counts_conversion_amounts_and_answer_times(
    client, login, org, sent, staff, partner_users
):
    officer = partner_users["officer"]
    for name in ("acknowledge", "start_review", "approve"):
        services.apply(sent, name, Side.PARTNER, officer)
    services.apply(
        sent,
        "disburse",
        Side.PARTNER,
        officer,
        disbursement=Disbursement(
            amount="1200",
            currency="PEN",
            disbursed_on=today(),
            product="working_capital_loan",
            term_months="12",
        ),
    )
    referral_id = sent.id
    login(staff["viewer"])
    page = _text(client.get(f"{BASE}/"))
    assert "Disbursed <strong>1</strong>" in page
    assert "100% of those sent" in page and "100% of those approved" in page
    assert "1,500.00 PEN" in page  # requested, with the platform's money helper
    assert "1,200.00 PEN" in page  # disbursed
    assert "Median days to answer" in page and "0.0" in page
    assert "Answers from partners" in page and "Luis Loans" in page
    filtered = _text(client.get(f"{BASE}/?state=declined"))
    assert "No referral matches." in filtered
    page = _text(client.get(f"{BASE}/?state=disbursed&product=working_capital_loan"))
    assert f"#{referral_id}" in page


def test_a_dead_delivery_is_flagged_and_sent_again(client, login, org, sent, staff):
    with tenant_scope(org.id):
        delivery = db.session.scalars(
            select(Delivery).where(Delivery.referral_id == sent.id)
        ).first()
        delivery.status = DeliveryStatus.DEAD
        delivery.attempts = 2
        delivery.last_error = "Connection refused"
        for number in (1, 2):
            db.session.add(
                DeliveryAttempt(
                    delivery_id=delivery.id,
                    number=number,
                    status_code=503,
                    outcome="retry",
                    error="Service Unavailable",
                )
            )
        db.session.flush()
        delivery_id = delivery.id
    referral_id = sent.id
    login(staff["manager"])
    index = _text(client.get(f"{BASE}/"))
    assert "delivery-dead" in index and "1 dead" in index
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert "failed for good" in page and "HTTP 503" in page and "Service Unavailable" in page
    assert "Send again" in page
    response = client.post(f"{BASE}/{referral_id}/resend", follow_redirects=True)
    assert "sent again" in _text(response)
    with tenant_scope(org.id):
        db.session.expire_all()
        assert db.session.get(Delivery, delivery_id).status != DeliveryStatus.DEAD
    response = client.post(f"{BASE}/{referral_id}/resend", follow_redirects=True)
    assert "No failed delivery to send again." in _text(response)


# Preparing ---------------------------------------------------------------------------------


def test_new_shows_readiness_and_creates_a_draft(client, login, org, producer, consent, staff):
    producer_id = _flushed(org, producer)
    login(staff["manager"])
    page = _text(client.get(f"{BASE}/new?producer_id={producer_id}"))
    assert "Readiness" in page and "Verified milestones" in page and "warning" in page
    assert "Valid consent" in page and "Working-capital loan" in page
    response = client.post(
        f"{BASE}/new?producer_id={producer_id}",
        data={
            "partnership_id": _partnership_id(org),
            "product": "asset_loan",
            "amount": "2500.50",
            "purpose": "A cold room",
        },
    )
    assert response.status_code == 302
    with tenant_scope(org.id):
        referral = db.session.scalars(select(Referral)).one()
        assert (referral.state, referral.amount_requested) == ("draft", 250050)
        assert response.headers["Location"].endswith(f"/referrals/{referral.id}")


def _flushed(org, producer) -> int:
    """Flush the fixtures' rows in the organization's scope (the consent's audit event)."""
    with tenant_scope(org.id):
        db.session.flush()
    return producer.id


def _partnership_id(org) -> str:
    with tenant_scope(org.id):
        return str(services.partnership_choices()[0].id)


def test_no_consent_says_what_is_missing_and_refuses(client, login, org, producer, mfi, staff):
    producer_id = producer.id
    login(staff["manager"])
    page = _text(client.get(f"{BASE}/new?producer_id={producer_id}"))
    assert "There is no consent of the producer for this partner." in page
    assert f"/producers/{producer_id}/consents/new" in page
    response = client.post(
        f"{BASE}/new?producer_id={producer_id}",
        data={"partnership_id": _partnership_id(org), "product": "asset_loan", "amount": "900"},
    )
    assert response.status_code == 400
    page = _text(response)
    assert "No valid consent for Microfinanciera Andina" in page
    assert 'id="partnership_id-error"' in page and 'value="900"' in page
    with tenant_scope(org.id):
        assert db.session.scalars(select(Referral)).all() == []


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"amount": "abc"}, "amount", "Enter a positive amount"),
        ({"amount": "10.555"}, "amount", "at most two decimals"),
        ({"product": ""}, "product", "Choose a product."),
        ({"product": "equity"}, "product", "does not offer equity"),
        ({"partnership_id": ""}, "partnership_id", "Choose a capital partner."),
        ({"partnership_id": "99999999999"}, "partnership_id", "Choose a capital partner."),
        ({"purpose": "x" * 2001}, "purpose", "2000"),
    ],
)
def test_bad_input_is_refused_next_to_its_field(
    client, login, org, producer, consent, staff, data, field, words
):
    producer_id = _flushed(org, producer)
    login(staff["manager"])
    form = {"partnership_id": _partnership_id(org), "product": "asset_loan", "amount": "700"}
    form.update(data)
    response = client.post(f"{BASE}/new?producer_id={producer_id}", data=form)
    assert response.status_code == 400
    page = _text(response)
    error = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', page, re.S)
    assert error and words in error.group(1), page
    if data.get("amount"):
        assert f'value="{data["amount"]}"' in page  # what was typed is kept


def test_new_is_for_managers_and_for_own_producers(client, login, login_as, org, other_org, staff):
    with tenant_scope(other_org.id):
        foreign_id = factories.ProducerFactory().id
    login(staff["officer"])
    assert client.get(f"{BASE}/new?producer_id=1").status_code == 403
    login(staff["manager"])
    assert client.get(f"{BASE}/new?producer_id={foreign_id}").status_code == 404
    assert client.get(f"{BASE}/new").status_code == 404
    assert client.get(f"{BASE}/new?producer_id=abc").status_code == 404


# One referral ------------------------------------------------------------------------------


def test_draft_shows_readiness_and_a_preview_then_is_sent(
    client, login, org, draft, staff, partner_users, mail_dir
):
    referral_id = draft.id
    login(staff["manager"])
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert "Profile the partner will receive" in page and "Ana Quispe" in page
    assert "Readiness" in page and "profile-v1" in page
    assert "Send to Microfinanciera Andina" in page and 'value="withdraw"' in page
    response = client.post(f"{BASE}/{referral_id}/send", follow_redirects=True)
    page = _text(response)
    assert "The referral is sent to Microfinanciera Andina." in page
    referral = _fresh(org, referral_id)
    assert referral.state == ReferralState.SENT
    assert referral.profile_sha256 in page and "Profile sent" in page
    assert "Sent to the partner" in page and "Draft prepared" in page  # EVENT_LABELS
    assert "paula@andina.example" in page  # the deliveries
    mails = [p.read_text() for p in mail_dir.glob("*.eml")]
    assert any(
        "New referral from" in m and f"/p/andina/referrals/{referral_id}" in m for m in mails
    )
    # Sending twice is refused, with the reason.
    again = client.post(f"{BASE}/{referral_id}/send", follow_redirects=True)
    assert "cannot be moved on" in _text(again)


def test_a_draft_whose_consent_lapsed_says_what_is_missing(
    client, login, org, draft, consent, staff
):
    with tenant_scope(org.id):
        consent.valid_until = today() - timedelta(days=1)
        db.session.flush()
    referral_id = draft.id
    login(staff["manager"])
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert "This referral cannot be sent:" in page and "Send to Microfinanciera" not in page
    assert "/consents/new" in page
    response = client.post(f"{BASE}/{referral_id}/send", follow_redirects=True)
    assert "No valid consent for Microfinanciera Andina" in _text(response)
    assert _fresh(org, referral_id).state == ReferralState.DRAFT


def test_withdraw_needs_a_note_and_keeps_it(client, login, org, sent, staff):
    referral_id = sent.id
    login(staff["admin"])
    response = client.post(
        f"{BASE}/{referral_id}/act", data={"action": "withdraw", "withdraw-note": "   "}
    )
    assert response.status_code == 400
    assert "Add a note: the other side needs to know why." in _text(response)
    assert 'id="withdraw-note-error"' in _text(response)
    response = client.post(
        f"{BASE}/{referral_id}/act", data={"action": "provide_info", "provide_info-note": "x"}
    )
    assert response.status_code == 400 and "cannot be moved on" in _text(response)
    response = client.post(
        f"{BASE}/{referral_id}/act", data={"action": "approve", "approve-note": "x"}
    )
    assert response.status_code == 302  # not the organization's: refused, nothing done
    assert _fresh(org, referral_id).state == ReferralState.SENT
    response = client.post(
        f"{BASE}/{referral_id}/act",
        data={"action": "withdraw", "withdraw-note": "The producer found other funding"},
    )
    assert response.status_code == 302
    assert _fresh(org, referral_id).state == ReferralState.WITHDRAWN


def test_provide_info_answers_a_request(client, login, org, sent, staff, partner_users):
    for name in ("acknowledge", "start_review"):
        services.apply(sent, name, Side.PARTNER, partner_users["admin"])
    services.apply(sent, "request_info", Side.PARTNER, partner_users["admin"], note="Which oven?")
    referral_id = sent.id
    login(staff["manager"])
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert "Which oven?" in page and "Provide the information" in page
    response = client.post(
        f"{BASE}/{referral_id}/act",
        data={"action": "provide_info", "provide_info-note": "A 60-litre gas oven."},
    )
    assert response.status_code == 302
    assert _fresh(org, referral_id).state == ReferralState.UNDER_REVIEW


def test_messages_in_the_thread(client, login, org, sent, staff):
    referral_id = sent.id
    login(staff["manager"])
    response = client.post(f"{BASE}/{referral_id}/message", data={"body": "  "})
    assert response.status_code == 400 and 'id="body-error"' in _text(response)
    response = client.post(f"{BASE}/{referral_id}/message", data={"body": "x" * 4001})
    assert response.status_code == 400 and "x" * 4001 in _text(response)
    response = client.post(
        f"{BASE}/{referral_id}/message", data={"body": "Her phone changed"}, follow_redirects=True
    )
    assert "Message sent." in _text(response) and "Her phone changed" in _text(response)


def test_readers_cannot_act(client, login, sent, staff):
    referral_id = sent.id
    login(staff["viewer"])
    for tail, data in [
        ("send", {}),
        ("act", {"action": "withdraw", "withdraw-note": "x"}),
        ("message", {"body": "x"}),
        ("resend", {}),
    ]:
        assert client.post(f"{BASE}/{referral_id}/{tail}", data=data).status_code == 403


def test_another_organizations_referral_is_404(client, login, org, other_org, sent, staff):
    referral_id = sent.id
    outsider = factories.UserFactory()
    with tenant_scope(other_org.id):
        factories.MembershipFactory(user=outsider, organization=other_org, role="admin")
    login(outsider)
    other = f"/o/{other_org.slug}/referrals/{referral_id}"
    assert client.get(other).status_code == 404
    for tail in ("send", "act", "message", "resend"):
        data = {"action": "withdraw", "withdraw-note": "x", "body": "x"}
        assert client.post(f"{other}/{tail}", data=data).status_code == 404
    assert _fresh(org, referral_id).state == ReferralState.SENT
    login(staff["admin"])
    assert client.get(f"{BASE}/99999999").status_code == 404


def test_the_producer_page_lists_referrals_and_offers_to_refer(client, login, org, sent, staff):
    producer_id, referral_id = sent.producer_id, sent.id
    login(staff["manager"])
    page = _text(client.get(f"/o/acme/producers/{producer_id}"))
    assert 'id="referrals"' in page and f"/referrals/{referral_id}" in page
    assert f"/referrals/new?producer_id={producer_id}" in page
    login(staff["viewer"])
    page = _text(client.get(f"/o/acme/producers/{producer_id}"))
    assert f"/referrals/{referral_id}" in page and "Refer to a capital partner" not in page


def test_csrf_is_required(app, client, login, monkeypatch, sent, staff):
    referral_id = sent.id
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    login(staff["manager"])
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert 'name="withdraw-csrf_token"' in page and 'name="csrf_token"' in page
    response = client.post(f"{BASE}/{referral_id}/message", data={"body": "No token"})
    assert response.status_code == 400
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        f"{BASE}/{referral_id}/message", data={"body": "With a token", "csrf_token": token}
    )
    assert response.status_code == 302


# E-mails -----------------------------------------------------------------------------------


def test_referral_emails_for_each_audience(app, org, sent, staff, partner_users):
    services.apply(sent, "acknowledge", Side.PARTNER, partner_users["admin"])
    with tenant_scope(org.id):
        services.apply(sent, "withdraw", Side.ORGANIZATION, staff["manager"], note="Found funds")
        events = {
            e.kind: e
            for e in db.session.scalars(
                select(ReferralEvent).where(ReferralEvent.referral_id == sent.id)
            )
        }
    with app.test_request_context():
        mail = render_mail(
            "referral_event",
            to="p@x.org",
            locale="en",
            referral=sent,
            event=events["sent"],
            audience="partner",
            link="http://x/p/1",
        )
        assert mail.subject == f"New referral from {org.name}"
        assert "Ana Quispe" in mail.text and "http://x/p/1" in mail.html
        mail = render_mail(
            "referral_event",
            to="p@x.org",
            locale="en",
            referral=sent,
            event=events["withdrawn"],
            audience="partner",
            link="http://x/p/1",
        )
        assert mail.subject == f"{org.name}: Withdrawn, referral #{sent.id}"
        assert "Found funds" in mail.text and "Found funds" in mail.html
        mail = render_mail(
            "referral_event",
            to="o@x.org",
            locale="es",
            referral=sent,
            event=events["acknowledge"],
            audience="organization",
            link="http://x/o/1",
        )
        assert mail.subject.startswith("Microfinanciera Andina")
        assert f"#{sent.id}" in mail.subject and "http://x/o/1" in mail.text


def test_dates_outside_the_window_never_500(client, login, org, sent, staff):
    """A referral page with every kind of event and odd data still renders."""
    with tenant_scope(org.id):
        sent.sent_at = sent.sent_at - timedelta(days=400)
        db.session.flush()
    referral_id = sent.id
    login(staff["viewer"])
    assert client.get(f"{BASE}/{referral_id}").status_code == 200
    assert client.get(f"{BASE}/?page=99999").status_code == 200
    assert client.get(f"{BASE}/?state=nonsense&partner=abc&product=x").status_code == 200


def test_a_profile_with_programs_and_milestones_reads_as_tables(
    client, login, org, producer, partner_users, consent, staff
):
    with tenant_scope(org.id):
        program = factories.make_program(org, name="Quinoa suppliers")
        enrollment = factories.make_enrollment(program, producer)
        milestone_name = enrollment.milestones[0].name
        referral = services.create_referral(
            producer,
            partnership_id=services.partnership_choices()[0].id,
            product="asset_loan",
            actor=staff["manager"],
        )
        services.send(referral, staff["manager"])
        db.session.flush()
    referral_id = referral.id
    login(staff["viewer"])
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert "Quinoa suppliers" in page and milestone_name in page
    assert '<td data-label="Due">' in page and "Supplier program" in page
    login(partner_users["officer"])
    page = _text(client.get(f"/p/andina/referrals/{referral_id}"))
    assert "Quinoa suppliers" in page and milestone_name in page
