"""Demo referrals: for each demo organization, referrals in every state (idempotent).

Each referral rests on a consent recorded for it (verbal, with the field officer as
witness) and goes through the same services as a real one, so its timeline, thread and
deliveries are what a user would see. Dates are then set back so the pipeline's answer
times read like months of work.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from inclusive.auth.models import User
from inclusive.consents.models import ConsentMethod, ConsentScope
from inclusive.consents.services import record_consent, valid_consent_for
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.partners.models import PartnerMembership, Partnership, PartnershipState
from inclusive.producers.models import Producer
from inclusive.referrals import services
from inclusive.referrals.models import Referral, ReferralEvent, ReferralState, Side
from inclusive.referrals.services import Disbursement
from inclusive.tenancy.demo import demo_staff
from inclusive.tenancy.models import Organization
from inclusive.tenancy.scope import tenant_scope
from inclusive.timeutil import utcnow

S = ReferralState

#: The partner's steps that lead to each state (after sending).
PATHS: dict[str, list[str]] = {
    S.DRAFT: [],
    S.SENT: ["send"],
    S.RECEIVED: ["send", "acknowledge"],
    S.UNDER_REVIEW: ["send", "acknowledge", "start_review"],
    S.INFO_REQUESTED: ["send", "acknowledge", "start_review", "request_info"],
    S.APPROVED: ["send", "acknowledge", "start_review", "approve"],
    S.DECLINED: ["send", "acknowledge", "start_review", "decline"],
    S.DISBURSED: ["send", "acknowledge", "start_review", "approve", "disburse"],
    S.CLOSED: ["send", "acknowledge", "start_review", "approve", "disburse", "close"],
    S.WITHDRAWN: ["send", "withdraw"],
    S.EXPIRED: ["send", "expire"],
    S.DELIVERY_FAILED: ["send", "fail"],
}

NOTES = {
    "es": {
        "purpose": "Capital de trabajo para la campaña de cosecha",
        "request_info": "¿Pueden enviar las facturas de venta de los últimos tres meses?",
        "decline": "La capacidad de pago no alcanza para el monto pedido este año.",
        "withdraw": "El productor consiguió financiamiento de su cooperativa.",
        "message": "La productora está disponible para una visita el martes.",
        "reply": "Gracias, nuestra asesora la visitará.",
    },
    "pt": {
        "purpose": "Capital de giro para a safra",
        "request_info": "Podem enviar as notas fiscais de venda dos últimos três meses?",
        "decline": "A capacidade de pagamento não cobre o valor pedido este ano.",
        "withdraw": "O produtor conseguiu financiamento pela cooperativa.",
        "message": "A produtora pode receber uma visita na terça-feira.",
        "reply": "Obrigado, nossa agente fará a visita.",
    },
}


def load_referrals(slugs: tuple[str, ...] = ("andes", "sertao")) -> None:
    """Create the demo referrals of each demo organization, once."""
    for slug in slugs:
        staff = demo_staff(slug)
        if staff is None:
            continue
        org, manager, officer = staff
        with tenant_scope(org.id):
            if db.session.scalar(select(func.count()).select_from(Referral)):
                continue
            _load(org, manager, officer)
            db.session.flush()
    db.session.flush()


def _load(org: Organization, manager: User, officer: User) -> None:
    partnerships = [
        p
        for p in db.session.scalars(
            select(Partnership).where(Partnership.state == PartnershipState.ACTIVE)
        )
        if p.partner.products
    ]
    if not partnerships:
        return
    producers = list(
        db.session.scalars(select(Producer).order_by(Producer.id).offset(10).limit(len(PATHS)))
    )
    notes = NOTES.get(org.default_language, NOTES["es"])
    for index, (state, path) in enumerate(PATHS.items()):
        if index >= len(producers):
            break
        producer = producers[index]
        partnership = partnerships[index % len(partnerships)]
        partner = partnership.partner
        scopes = list(ConsentScope)
        if valid_consent_for(producer.id, partner.id, scopes) is None:
            record_consent(
                producer,
                partner_id=partner.id,
                purpose=notes["purpose"][:200],
                scopes=scopes,
                method=ConsentMethod.VERBAL,
                witness_id=officer.id,
                given_on=today() - timedelta(days=90),
                recorder=manager,
            )
        referral = services.create_referral(
            producer,
            partnership_id=partnership.id,
            product=partner.products[0],
            amount=str(1500 + 750 * index),
            purpose=notes["purpose"],
            actor=manager,
        )
        _walk(referral, path, manager, _partner_user(partner.id), notes, index)
        if state not in (S.DRAFT, S.SENT):  # a sent one stays recent: not yet reminded
            _set_back(referral, days=80 - 6 * index)


def _partner_user(partner_id: int) -> User | None:
    membership = db.session.scalar(
        select(PartnerMembership).where(PartnerMembership.partner_id == partner_id).limit(1)
    )
    return membership.user if membership else None


def _walk(
    referral: Referral,
    path: list[str],
    manager: User,
    partner_user: User | None,
    notes: dict[str, str],
    index: int,
) -> None:
    for step in path:
        if step == "send":
            services.send(referral, manager)
            services.post_message(referral, Side.ORGANIZATION, manager, notes["message"])
        elif step == "withdraw":
            services.withdraw(referral, manager, notes["withdraw"])
        elif step == "expire":
            services.expire(referral)
        elif step == "fail":
            services.mark_delivery_failed(referral)
        elif step == "request_info":
            services.apply(referral, step, Side.PARTNER, partner_user, note=notes["request_info"])
        elif step == "decline":
            services.apply(
                referral,
                step,
                Side.PARTNER,
                partner_user,
                reason="repayment_capacity",
                note=notes["decline"],
            )
        elif step == "disburse":
            services.apply(
                referral,
                step,
                Side.PARTNER,
                partner_user,
                disbursement=Disbursement(
                    amount=str(1400 + 700 * index),
                    currency=referral.currency,
                    disbursed_on=today(),
                    product=referral.product,
                    term_months=12,
                ),
            )
        else:
            services.apply(referral, step, Side.PARTNER, partner_user)
            if step == "acknowledge":
                services.post_message(referral, Side.PARTNER, partner_user, notes["reply"])


def _set_back(referral: Referral, days: int) -> None:
    """Spread the referral's life over past weeks: created ``days`` ago, answered later."""
    start = utcnow() - timedelta(days=max(days, 7))
    events = list(
        db.session.scalars(
            select(ReferralEvent)
            .where(ReferralEvent.referral_id == referral.id)
            .order_by(ReferralEvent.id)
        )
    )
    for position, event in enumerate(events):
        moment = start + timedelta(days=position * 2, hours=position)
        db.session.execute(
            update(ReferralEvent).where(ReferralEvent.id == event.id).values(at=moment)
        )
        if event.kind == "sent":
            referral.sent_at = moment
        elif event.kind == "acknowledge":
            referral.acknowledged_at = moment
        elif event.kind in ("approve", "decline"):
            referral.answered_at = moment
        elif event.kind == "close":
            referral.closed_at = moment
    referral.created_at = start
