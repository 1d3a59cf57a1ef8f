"""The referral's life: consent, readiness, a frozen profile, transitions, thread, outbox."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from inclusive.consents.services import revoke_consent
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.referrals import outbox, profile, services
from inclusive.referrals.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    ReferralEvent,
    ReferralState,
    Side,
)
from inclusive.referrals.services import Disbursement, ReferralError
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.referrals.conftest import give_consent


def _events(referral) -> list[str]:
    with tenant_scope(referral.org_id):
        return [e.kind for e in services.timeline(referral)]


def _deliveries(referral) -> list[Delivery]:
    with tenant_scope(referral.org_id):
        return list(db.session.scalars(select(Delivery).where(Delivery.referral_id == referral.id)))


def test_no_consent_no_referral_and_the_refusal_says_what_is_missing(org, producer, mfi, staff):
    with tenant_scope(org.id):
        partnership = services.partnership_choices()[0]
        with pytest.raises(ReferralError) as refused:
            services.create_referral(
                producer, partnership_id=partnership.id, product="working_capital_loan"
            )
        assert "There is no consent of the producer for this partner." in str(refused.value)
        assert refused.value.field == "consent"


def test_a_consent_without_the_program_record_is_not_enough(org, producer, mfi, staff):
    with tenant_scope(org.id):
        give_consent(producer, mfi, staff["manager"], staff["officer"], scopes=["identity"])
        problems = services.consent_problems(producer.id, mfi.id)
        assert problems == ["The consent does not cover: Program record."]


def test_a_draft_then_send_freezes_the_consented_profile(draft, org, staff):
    assert draft.state == ReferralState.DRAFT
    assert draft.amount_requested == 150000
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
        db.session.flush()
    assert draft.state == ReferralState.SENT
    assert draft.profile["version"] == profile.PROFILE_VERSION
    assert draft.profile["identity"]["name"] == "Ana Quispe"
    assert draft.profile["contact"]["phone"] == "+51 999 111 222"
    assert draft.profile_sha256 == profile.digest(draft.profile)
    assert len(draft.profile_sha256) == 64
    assert _events(draft) == ["created", "sent"]


def test_the_profile_holds_only_the_consented_scopes(org, producer, mfi, staff):
    with tenant_scope(org.id):
        give_consent(
            producer,
            mfi,
            staff["manager"],
            staff["officer"],
            scopes=["identity", "program_record"],
        )
        referral = services.create_referral(
            producer,
            partnership_id=services.partnership_choices()[0].id,
            product="asset_loan",
        )
        services.send(referral, staff["manager"])
    assert set(referral.profile) == {
        "version",
        "generated_at",
        "organization",
        "consent",
        "identity",
        "program_record",
    }
    assert "phone" not in str(referral.profile)


def test_the_partner_moves_it_through_review_to_disbursement(draft, org, staff, partner_users):
    partner = partner_users["officer"]
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
    for name in ("acknowledge", "start_review", "request_info"):
        services.apply(draft, name, Side.PARTNER, partner, note="Which oven?")
    assert draft.state == ReferralState.INFO_REQUESTED
    with tenant_scope(org.id):
        services.apply(
            draft, "provide_info", Side.ORGANIZATION, staff["manager"], note="A 60-litre gas oven."
        )
    assert draft.state == ReferralState.UNDER_REVIEW
    services.apply(draft, "approve", Side.PARTNER, partner)
    services.apply(
        draft,
        "disburse",
        Side.PARTNER,
        partner,
        disbursement=Disbursement(
            amount="1400.50",
            currency="pen",
            disbursed_on=today(),
            product="working_capital_loan",
            term_months="12",
        ),
    )
    assert draft.state == ReferralState.DISBURSED
    assert (draft.disbursed_amount, draft.disbursed_currency) == (140050, "PEN")
    services.apply(draft, "close", Side.PARTNER, partner)
    assert draft.state == ReferralState.CLOSED
    assert _events(draft)[-4:] == ["provide_info", "approve", "disburse", "close"]


def test_refused_transitions_say_why(draft, org, staff, partner_users):
    with pytest.raises(ReferralError, match="cannot be moved on"):
        services.apply(draft, "approve", Side.PARTNER, partner_users["admin"])
    with pytest.raises(ReferralError, match="not available"):
        services.apply(draft, "approve", Side.ORGANIZATION, staff["manager"])
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
    services.apply(draft, "acknowledge", Side.PARTNER, partner_users["admin"])
    with pytest.raises(ReferralError, match="reason"):
        services.apply(draft, "decline", Side.PARTNER, partner_users["admin"], reason="bogus")
    with pytest.raises(ReferralError, match="note"):
        services.apply(draft, "start_review", Side.PARTNER, partner_users["admin"])
        services.apply(draft, "request_info", Side.PARTNER, partner_users["admin"], note="  ")
    assert draft.state == ReferralState.UNDER_REVIEW


def test_a_disbursement_with_bad_figures_is_refused_field_by_field(
    draft, org, staff, partner_users
):
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
    for name in ("acknowledge", "start_review", "approve"):
        services.apply(draft, name, Side.PARTNER, partner_users["admin"])
    bad = Disbursement(
        amount="-5",
        currency="PE",
        disbursed_on=today() + timedelta(days=3),
        product="nothing",
        term_months="999",
    )
    with pytest.raises(ReferralError):
        services.apply(draft, "disburse", Side.PARTNER, partner_users["admin"], disbursement=bad)
    assert set(bad.errors) == {"amount", "currency", "disbursed_on", "product", "term_months"}
    assert draft.state == ReferralState.APPROVED


def test_revoking_the_consent_withdraws_the_open_referral_and_tells_the_partner(
    draft, org, staff, consent, partner_users
):
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
        revoke_consent(consent, "The producer asked to stop sharing.", staff["manager"])
        db.session.flush()
    assert draft.state == ReferralState.WITHDRAWN
    assert _events(draft)[-1] == "consent_revoked"
    emails = {d.recipient for d in _deliveries(draft) if d.channel == "email"}
    assert {"paula@andina.example", "luis@andina.example"} <= emails


def test_sending_writes_the_outbox_in_the_same_transaction(
    draft, org, staff, partner_users, endpoint
):
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
        db.session.flush()
    rows = _deliveries(draft)
    assert sorted((d.channel, d.audience) for d in rows) == [
        ("email", "partner"),
        ("email", "partner"),
        ("webhook", "partner"),
    ]
    hook = next(d for d in rows if d.channel == "webhook")
    assert hook.payload["type"] == "referral.sent"
    assert hook.payload["data"]["profile_sha256"] == draft.profile_sha256
    assert hook.webhook_id.startswith("msg_")
    assert all(d.status == DeliveryStatus.PENDING for d in rows)


def test_a_partner_answer_is_told_to_the_organization(draft, org, staff, partner_users):
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
    services.apply(draft, "acknowledge", Side.PARTNER, partner_users["admin"])
    db.session.flush()
    org_mail = {d.recipient for d in _deliveries(draft) if d.audience == "organization"}
    assert org_mail == {"ada@acme.example", "julia@acme.example"}


def test_the_thread_is_shared_and_each_message_is_an_event(draft, org, staff, partner_users):
    with pytest.raises(ReferralError):
        services.post_message(draft, Side.ORGANIZATION, staff["manager"], "Hello")
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
        services.post_message(draft, Side.ORGANIZATION, staff["manager"], "She is ready.")
    services.post_message(draft, Side.PARTNER, partner_users["officer"], "Thanks!")
    with tenant_scope(org.id):
        bodies = [m.body for m in services.thread(draft)]
    assert bodies == ["She is ready.", "Thanks!"]
    assert _events(draft)[-2:] == ["message", "message"]


def test_the_partner_sees_its_referrals_only_and_never_a_draft(draft, org, staff, mfi, other_org):
    other = factories.OrganizationFactory(slug="third")
    assert services.referral_for_partner(mfi, draft.id) is None  # a draft
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
    assert services.referral_for_partner(mfi, draft.id) is draft
    assert services.referral_for_partner(mfi, "x") is None
    stranger = (
        factories.CapitalPartnerFactory() if hasattr(factories, "CapitalPartnerFactory") else None
    )
    if stranger is not None:
        assert services.referral_for_partner(stranger, draft.id) is None
    rows = db.session.scalars(services.partner_referrals(mfi, services.ReferralFilters())).all()
    assert [r.id for r in rows] == [draft.id]
    assert other.id != org.id


def test_reminders_then_escalation_then_expiry_in_business_days(draft, org, staff, partner_users):
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
        draft.sent_at = datetime(2026, 11, 2, 9)  # a Monday
        db.session.flush()
    assert services.remind(draft, on=date(2026, 11, 3)) is None  # one business day
    assert services.remind(draft, on=date(2026, 11, 4)) == "reminded"
    assert services.remind(draft, on=date(2026, 11, 4)) is None  # once
    assert services.remind(draft, on=date(2026, 11, 6)) == "escalated"  # 4 days
    assert services.remind(draft, on=date(2026, 11, 9)) is None  # 5 business days
    assert services.remind(draft, on=date(2026, 11, 10)) == "expired"  # 6: three times two
    assert draft.state == ReferralState.EXPIRED
    assert _events(draft)[-3:] == ["reminded", "escalated", "expired"]


def test_business_days_skip_weekends():
    friday = date(2026, 11, 6)
    assert services.business_days_between(friday, date(2026, 11, 9)) == 1  # Monday
    assert services.business_days_between(friday, date(2026, 11, 8)) == 0  # Sunday
    assert services.business_days_between(friday, date(2026, 11, 20)) == 10


def test_the_pipeline_counts_and_converts(draft, org, staff, partner_users):
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
    for name in ("acknowledge", "start_review", "approve"):
        services.apply(draft, name, Side.PARTNER, partner_users["admin"])
    with tenant_scope(org.id):
        figures = services.pipeline()
    assert figures.counts["approved"] == 1
    assert (figures.sent, figures.approved, figures.disbursed) == (1, 1, 0)
    assert figures.per_partner[0].partner == "Microfinanciera Andina"
    assert figures.per_partner[0].median_days_to_answer is not None


def test_events_are_append_only_rows(draft, org):
    with tenant_scope(org.id):
        count = db.session.scalar(select(func.count()).select_from(ReferralEvent))
    assert count == 1


def test_a_withdrawn_referral_closes_its_thread(draft, org, staff, partner_users):
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
        services.withdraw(draft, staff["manager"], "The producer found other funding.")
    with pytest.raises(ReferralError, match="thread is closed"):
        services.post_message(draft, Side.PARTNER, partner_users["officer"], "Any news?")


def test_referral_audit_events_read_in_words(draft, org):
    from inclusive.audit.models import AuditEvent
    from inclusive.presentation import describe_event

    with tenant_scope(org.id):
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "referral.created")
        ).one()
        assert describe_event(event) == "Referral to Microfinanciera Andina: draft prepared."
        assert event.actor_id is not None


def _webhook_row(draft) -> Delivery:
    with tenant_scope(draft.org_id):
        return next(d for d in _deliveries(draft) if d.channel == "webhook")


@pytest.mark.parametrize(
    "path",
    [
        "session",  # SQLite, or a session bound to a connection (as in these tests)
        pytest.param("own", marks=pytest.mark.committed),  # PostgreSQL, the app's engine
    ],
)
def test_a_claim_holds_the_row_and_a_settle_after_the_lease_changes_nothing(
    path, draft, org, staff, partner_users, endpoint
):
    with tenant_scope(org.id):
        services.send(draft, staff["manager"])
        db.session.commit()  # with no Redis, the first attempt is made right after it
        row = _webhook_row(draft)
        row_id, made_before = row.id, row.attempts
        row.next_attempt_at = row.next_attempt_at - timedelta(hours=2)  # its retry is due
        db.session.commit()
    with outbox._own_connection() as own:
        if path == "own" and own is None:
            pytest.skip("one autocommitted connection per attempt is for PostgreSQL")
        first = outbox._claim(row_id, own)
        assert first is not None and first.attempts == made_before + 1
        assert first.url == endpoint.url and first.enabled  # the endpoint, read by the claim
        assert outbox._claim(row_id, own) is None  # held by the first attempt's lease
        with tenant_scope(org.id):
            row = db.session.get(Delivery, row_id)
            row.lease_until = row.lease_until - timedelta(hours=1)  # the first worker died
            db.session.commit()
        second = outbox._claim(row_id, own)
        assert second is not None and second.attempts == first.attempts + 1
        assert outbox._record(first, outbox.Result("delivered"), own) is None  # fenced off
    db.session.expire_all()
    with tenant_scope(org.id):
        row = db.session.get(Delivery, row_id)
        assert (row.status, row.attempts) == (DeliveryStatus.SENDING, second.attempts)
        made = db.session.scalars(
            select(DeliveryAttempt.number).where(DeliveryAttempt.delivery_id == row_id)
        ).all()
    assert made[-1] == first.attempts  # the late attempt is on record, and changed nothing
