"""Referral pages of a capital partner: inbox, export, one referral, answering, the thread."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.partners.services import add_partner_user, create_partner, link_partner
from inclusive.referrals import services
from inclusive.referrals.models import Referral, ReferralMessage, ReferralState, Side
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.referrals.conftest import give_consent

BASE = "/p/andina/referrals"


def _text(response) -> str:
    return response.get_data(as_text=True)


def _fresh(org, referral_id: int) -> Referral:
    db.session.expire_all()
    with tenant_scope(org.id):
        return db.session.get(Referral, referral_id)


def _refer(org, producer, actor, send: bool = True, product: str = "working_capital_loan"):
    with tenant_scope(org.id):
        referral = services.create_referral(
            producer,
            partnership_id=services.partnership_choices()[0].id,
            product=product,
            amount="1500",
            purpose="Buy a second oven",
            actor=actor,
        )
        if send:
            services.send(referral, actor)
        db.session.flush()
        return referral


@pytest.fixture
def sent(org, producer, partner_users, consent, staff) -> Referral:
    return _refer(org, producer, staff["manager"])


@pytest.mark.parametrize("role", ["admin", "officer"])
def test_both_partner_roles_read_the_inbox_and_the_referral(
    client, login, org, sent, draft, partner_users, role
):
    referral_id, draft_id = sent.id, draft.id
    login(partner_users[role])
    page = _text(client.get(f"{BASE}/"))
    assert f"#{referral_id}" in page and "Ana Quispe" in page and org.name in page
    assert f"#{draft_id}<" not in page  # a draft is the organization's own
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert "Credit-readiness profile" in page and "Acknowledge" in page
    home = _text(client.get("/p/andina/"))
    assert "1 referral awaits acknowledgement." in home and "/p/andina/referrals/" in home


def test_a_draft_and_another_partners_referral_are_404(
    client, login, org, producer, sent, draft, staff, partner_users
):
    other = create_partner(slug="otra", name="Otra Financiera", kind="mfi")
    link_partner(org, other)
    db.session.flush()
    with tenant_scope(org.id):
        give_consent(producer, other, staff["manager"], staff["officer"])
        partnership = next(p for p in services.partnership_choices() if p.partner_id == other.id)
        theirs = services.create_referral(
            producer, partnership_id=partnership.id, product="asset_loan", actor=staff["manager"]
        )
        services.send(theirs, staff["manager"])
        db.session.flush()
    theirs_id, draft_id = theirs.id, draft.id
    login(partner_users["officer"])
    for referral_id in (draft_id, theirs_id, 99999999, 2**40):
        assert client.get(f"{BASE}/{referral_id}").status_code == 404, referral_id
        response = client.post(f"{BASE}/{referral_id}/act", data={"action": "acknowledge"})
        assert response.status_code == 404
        response = client.post(f"{BASE}/{referral_id}/message", data={"body": "x"})
        assert response.status_code == 404
    assert f"#{theirs_id}" not in _text(client.get(f"{BASE}/"))
    assert _fresh(org, theirs_id).state == ReferralState.SENT


def test_staff_of_the_organization_cannot_open_the_partner_pages(client, login, sent, staff):
    referral_id = sent.id
    login(staff["admin"])
    assert client.get(f"{BASE}/").status_code == 404
    assert client.get(f"{BASE}/{referral_id}").status_code == 404


def test_the_profile_shows_only_what_was_consented(
    client, login, org, producer, mfi, staff, partner_users
):
    with tenant_scope(org.id):
        give_consent(
            producer, mfi, staff["manager"], staff["officer"], scopes=["identity", "program_record"]
        )
    referral = _refer(org, producer, staff["manager"])
    referral_id, digest = referral.id, referral.profile_sha256
    login(partner_users["officer"])
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert "profile-v1" in page and digest in page
    assert "Identity" in page and "Program record" in page
    assert "+51 999 111 222" not in page  # the contact scope was not consented
    assert "Economic figures</h3>" not in page and "Offtake ledger</h3>" not in page


def test_the_whole_loop_from_the_partners_side(client, login, org, sent, partner_users, mail_dir):
    referral_id = sent.id
    login(partner_users["officer"])

    def post(action: str, **fields: str):
        data = {"action": action, **{f"{action}-{k}": v for k, v in fields.items()}}
        return client.post(f"{BASE}/{referral_id}/act", data=data)

    assert post("acknowledge").status_code == 302
    assert _fresh(org, referral_id).state == ReferralState.RECEIVED
    assert post("start_review").status_code == 302
    refused = post("request_info", note="  ")
    assert refused.status_code == 400
    assert 'id="request_info-note-error"' in _text(refused) and "Add a note" in _text(refused)
    assert post("request_info", note="Which oven?").status_code == 302
    assert post("resume_review").status_code == 302
    assert post("approve").status_code == 302
    assert _fresh(org, referral_id).state == ReferralState.APPROVED
    bad = post(
        "disburse",
        amount="-5",
        currency="P1",
        disbursed_on="2020-01-01",
        disbursed_product="working_capital_loan",
        term_months="999",
    )
    assert bad.status_code == 400
    page = _text(bad)
    for field in ("amount", "currency", "disbursed_on", "term_months"):
        assert f'id="disburse-{field}-error"' in page, field
    assert 'value="-5"' in page and 'value="999"' in page  # what was typed is kept
    nonsense = post("disburse", amount="100", disbursed_on="not a date")
    assert nonsense.status_code == 400 and 'id="disburse-disbursed_on-error"' in _text(nonsense)
    good = post(
        "disburse",
        amount="1400.50",
        currency="pen",
        disbursed_on=today().isoformat(),
        disbursed_product="working_capital_loan",
        term_months="12",
    )
    assert good.status_code == 302
    referral = _fresh(org, referral_id)
    assert (referral.state, referral.disbursed_amount, referral.disbursed_currency) == (
        ReferralState.DISBURSED,
        140050,
        "PEN",
    )
    assert post("close").status_code == 302
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert "Closed" in page and "1,400.50 PEN" in page and "Which oven?" in page
    assert "Review resumed" in page and "Acknowledged by the partner" in page
    mails = [p.read_text() for p in mail_dir.glob("*.eml")]
    assert any("Microfinanciera Andina: Approved" in m and "/o/acme/referrals/" in m for m in mails)


def test_decline_needs_a_reason(client, login, org, sent, partner_users):
    referral_id = sent.id
    services.apply(sent, "acknowledge", Side.PARTNER, partner_users["admin"])
    login(partner_users["admin"])
    response = client.post(
        f"{BASE}/{referral_id}/act",
        data={"action": "decline", "decline-reason": "", "decline-note": "Thin record"},
    )
    assert response.status_code == 400
    page = _text(response)
    assert 'id="decline-reason-error"' in page and "Choose a reason for declining." in page
    assert "Thin record</textarea>" in page
    response = client.post(
        f"{BASE}/{referral_id}/act",
        data={"action": "decline", "decline-reason": "insufficient_record", "decline-note": "x"},
        follow_redirects=True,
    )
    assert "Record too thin to decide" in _text(response)
    assert _fresh(org, referral_id).state == ReferralState.DECLINED
    # An organization's transition is not the partner's to take.
    response = client.post(f"{BASE}/{referral_id}/act", data={"action": "withdraw"})
    assert response.status_code == 302
    assert _fresh(org, referral_id).state == ReferralState.DECLINED


def test_the_thread_from_the_partners_side(client, login, org, sent, partner_users):
    referral_id = sent.id
    login(partner_users["officer"])
    response = client.post(f"{BASE}/{referral_id}/message", data={"body": ""})
    assert response.status_code == 400 and 'id="body-error"' in _text(response)
    response = client.post(
        f"{BASE}/{referral_id}/message", data={"body": "Can she visit us?"}, follow_redirects=True
    )
    assert "Can she visit us?" in _text(response)
    with tenant_scope(org.id):
        (message,) = db.session.scalars(select(ReferralMessage)).all()
        assert message.side == Side.PARTNER


def test_filters_and_pagination(client, login, org, producer, sent, staff, partner_users):
    other = _refer(org, producer, staff["manager"], product="asset_loan")
    other_id, sent_id = other.id, sent.id
    services.apply(sent, "acknowledge", Side.PARTNER, partner_users["admin"])
    login(partner_users["officer"])
    page = _text(client.get(f"{BASE}/?state=received"))
    assert f"#{sent_id}<" in page and f"#{other_id}<" not in page
    page = _text(client.get(f"{BASE}/?product=asset_loan&organization={org.id}"))
    assert f"#{other_id}<" in page and f"#{sent_id}<" not in page
    assert "No referral matches." in _text(client.get(f"{BASE}/?organization=99999"))
    assert client.get(f"{BASE}/?page=abc&state=<script>").status_code == 200
    assert client.get(f"{BASE}/?page=500").status_code == 200


def test_csv_export_escapes_formulas(client, login, org, mfi, staff, partner_users):
    with tenant_scope(org.id):
        producer = factories.ProducerFactory(name='=HYPERLINK("http://evil","x")')
        give_consent(producer, mfi, staff["manager"], staff["officer"])
    referral = _refer(org, producer, staff["manager"])
    referral_id = referral.id
    login(partner_users["officer"])
    response = client.get(f"{BASE}/export.csv?state=sent")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(_text(response).lstrip("\ufeff"))))
    assert rows[0][:3] == ["id", "organization", "producer"]
    (row,) = [r for r in rows[1:] if r[0] == str(referral_id)]
    assert row[2] == '\'=HYPERLINK("http://evil","x")'
    assert row[4] == "1500.00" and row[6] == "sent"
    empty = list(csv.reader(io.StringIO(_text(client.get(f"{BASE}/export.csv?state=closed")))))
    assert len(empty) == 1


def test_a_partner_user_of_two_partners_sees_each_ones_own(client, login, org, sent, partner_users):
    other = create_partner(slug="otra", name="Otra Financiera", kind="mfi")
    add_partner_user(other, partner_users["officer"], "loan_officer")
    db.session.flush()
    referral_id = sent.id
    login(partner_users["officer"])
    assert client.get(f"/p/otra/referrals/{referral_id}").status_code == 404
    assert f"#{referral_id}" not in _text(client.get("/p/otra/referrals/"))
    assert client.get(f"{BASE}/{referral_id}").status_code == 200


def test_partner_csrf_is_required(app, client, login, monkeypatch, sent, partner_users):
    referral_id = sent.id
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    login(partner_users["officer"])
    page = _text(client.get(f"{BASE}/{referral_id}"))
    assert 'name="acknowledge-csrf_token"' in page
    response = client.post(f"{BASE}/{referral_id}/act", data={"action": "acknowledge"})
    assert response.status_code == 400
    token = re.search(r'name="acknowledge-csrf_token" type="hidden" value="([^"]+)"', page)
    response = client.post(
        f"{BASE}/{referral_id}/act",
        data={"action": "acknowledge", "acknowledge-csrf_token": token.group(1)},
    )
    assert response.status_code == 302
