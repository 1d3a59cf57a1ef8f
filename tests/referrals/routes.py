"""Route-matrix entries of the referral pages (merged into tests/test_route_matrix.py).

Referring, sending, answering and writing to the partner are a program manager's or an
administrator's acts; every member reads. On the partner's side both roles act.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from inclusive.extensions import db
from inclusive.partners.models import CapitalPartner, Partnership
from inclusive.referrals.models import Referral
from inclusive.referrals.profile import PROFILE_VERSION, digest
from inclusive.tenancy.roles import Role
from inclusive.timeutil import utcnow
from tests.partners.routes import PARTNER_ROLES, partner
from tests.routes import ALL_ROLES, Rule, org

MANAGERS = frozenset({Role.ADMIN, Role.PROGRAM_MANAGER})


def _referral(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"referral_id": ctx["referral"]}


REFERRAL_ROUTES: dict[str, Rule] = {
    "referrals.index": org(ALL_ROLES),
    "referrals.new": org(MANAGERS, args=lambda ctx: {"producer_id": ctx["producer"]}),
    "referrals.show": org(ALL_ROLES, args=_referral),
    "referrals.send": org(MANAGERS, "POST", args=_referral),
    "referrals.act_on": org(
        MANAGERS, "POST", args=_referral, data={"action": "withdraw", "withdraw-note": "Matrix"}
    ),
    "referrals.message": org(MANAGERS, "POST", args=_referral, data={"body": "Hello"}),
    "referrals.resend": org(MANAGERS, "POST", args=_referral),
    "partner_referrals.inbox": partner(PARTNER_ROLES),
    "partner_referrals.export": partner(PARTNER_ROLES),
    "partner_referrals.show": partner(PARTNER_ROLES, args=_referral),
    "partner_referrals.act_on": partner(
        PARTNER_ROLES, "POST", args=_referral, data={"action": "acknowledge"}
    ),
    "partner_referrals.message": partner(
        PARTNER_ROLES, "POST", args=_referral, data={"body": "Hello"}
    ),
}


def referral_for(producer_id: int, consent_id: int, state: str = "sent") -> int:
    """A referral of a producer to the matrix's partner (inside the org's scope)."""
    partner_row = db.session.scalar(select(CapitalPartner).filter_by(slug="matrix-mfi"))
    partnership = db.session.scalar(select(Partnership).filter_by(partner_id=partner_row.id))
    document = {"version": PROFILE_VERSION, "identity": {"name": "Matrix producer"}}
    sent = state != "draft"
    referral = Referral(
        producer_id=producer_id,
        partnership_id=partnership.id,
        partner_id=partner_row.id,
        consent_id=consent_id,
        product="working_capital_loan",
        amount_requested=150_000,
        currency="PEN",
        state=state,
        profile=document if sent else None,
        profile_version=PROFILE_VERSION if sent else None,
        profile_sha256=digest(document) if sent else None,
        sent_at=utcnow() if sent else None,
    )
    db.session.add(referral)
    db.session.flush()
    return referral.id
