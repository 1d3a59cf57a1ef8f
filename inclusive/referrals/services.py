"""Referrals: prepare, send, answer, talk, withdraw. Every change to a referral goes here.

Each change appends a :class:`ReferralEvent` and, in the same transaction, the deliveries
that tell the other side (:func:`inclusive.referrals.outbox.notify`). The organization acts
in its own tenant scope; a partner acts on a referral through :func:`referral_for_partner`,
which finds it by the partner's id, and the change is then made in the referral's own scope.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from flask_babel import gettext as _
from flask_babel import lazy_pgettext
from sqlalchemy import Select, bindparam, func, select

from inclusive.audit.services import record
from inclusive.auth.models import User
from inclusive.babelcache import lazy_gettext as _l
from inclusive.consents.models import Consent
from inclusive.consents.services import missing_for, scope_list, valid_consent_for
from inclusive.extensions import db
from inclusive.milestones.services import today
from inclusive.partners.models import (
    CapitalPartner,
    Partnership,
    PartnershipState,
    Product,
)
from inclusive.partners.services import PRODUCT_LABELS
from inclusive.producers.models import Producer
from inclusive.referrals import outbox, profile
from inclusive.referrals.models import (
    DeclineReason,
    Referral,
    ReferralEvent,
    ReferralMessage,
    ReferralState,
    Side,
)
from inclusive.refusals import Refused
from inclusive.tenancy.models import Organization
from inclusive.tenancy.reads import ORG_ID, org_statement
from inclusive.tenancy.scope import ALL_TENANTS, current_org_id, tenant_scope
from inclusive.timeutil import utcnow

S = ReferralState

STATE_LABELS = {
    S.DRAFT: _l("Draft"),
    S.SENT: _l("Sent"),
    S.RECEIVED: _l("Received"),
    S.UNDER_REVIEW: _l("Under review"),
    S.INFO_REQUESTED: _l("Information requested"),
    S.APPROVED: _l("Approved"),
    S.DECLINED: _l("Declined"),
    S.DISBURSED: _l("Disbursed"),
    S.CLOSED: lazy_pgettext("referral state", "Closed"),
    S.WITHDRAWN: lazy_pgettext("referral state", "Withdrawn"),
    S.EXPIRED: lazy_pgettext("referral state", "Expired"),
    S.DELIVERY_FAILED: _l("Delivery failed"),
}

DECLINE_REASON_LABELS = {
    DeclineReason.REPAYMENT_CAPACITY: _l("Repayment capacity too low"),
    DeclineReason.CREDIT_HISTORY: _l("Credit history"),
    DeclineReason.INSUFFICIENT_RECORD: _l("Record too thin to decide"),
    DeclineReason.OUTSIDE_POLICY: _l("Outside the partner's lending policy"),
    DeclineReason.OUTSIDE_REGION: _l("Outside the regions served"),
    DeclineReason.NO_CONTACT: _l("The producer could not be reached"),
    DeclineReason.PRODUCER_DECLINED: _l("The producer declined the offer"),
    DeclineReason.OTHER: _l("Other reason"),
}

SIDE_LABELS = {
    Side.ORGANIZATION: _l("Organization"),
    Side.PARTNER: _l("Partner"),
    Side.SYSTEM: _l("Platform"),
}

#: States in which a referral is still open: it can be withdrawn and reminders may run.
OPEN_STATES = frozenset(
    {S.DRAFT, S.SENT, S.RECEIVED, S.UNDER_REVIEW, S.INFO_REQUESTED, S.APPROVED, S.DELIVERY_FAILED}
)
#: States in which nothing more is said about the producer: withdrawn (a revoked consent
#: withdraws a referral: no new data may go to the partner after), expired, closed.
CLOSED_THREAD_STATES = frozenset({S.WITHDRAWN, S.EXPIRED, S.CLOSED})
#: States a partner sees (a draft is the organization's own).
PARTNER_VISIBLE = tuple(s.value for s in S if s != S.DRAFT)


@dataclass(frozen=True)
class Action:
    """A transition: who may take it, from which states, to which state."""

    name: str
    side: Side
    sources: frozenset[str]
    target: ReferralState
    label: Any
    needs_note: bool = False


def _action(
    name: str, side: Side, sources: Iterable[str], target: S, label: Any, needs_note: bool = False
) -> Action:
    return Action(name, side, frozenset(sources), target, label, needs_note)


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        # The organization's.
        _action("send", Side.ORGANIZATION, {S.DRAFT}, S.SENT, _l("Send")),
        _action("withdraw", Side.ORGANIZATION, OPEN_STATES, S.WITHDRAWN, _l("Withdraw"), True),
        _action(
            "provide_info",
            Side.ORGANIZATION,
            {S.INFO_REQUESTED},
            S.UNDER_REVIEW,
            _l("Provide the information"),
            True,
        ),
        # The partner's.
        _action(
            "acknowledge",
            Side.PARTNER,
            {S.SENT, S.DELIVERY_FAILED},
            S.RECEIVED,
            _l("Acknowledge"),
        ),
        _action("start_review", Side.PARTNER, {S.RECEIVED}, S.UNDER_REVIEW, _l("Start review")),
        _action(
            "request_info",
            Side.PARTNER,
            {S.UNDER_REVIEW},
            S.INFO_REQUESTED,
            _l("Ask for information"),
            True,
        ),
        _action(
            "resume_review",
            Side.PARTNER,
            {S.INFO_REQUESTED},
            S.UNDER_REVIEW,
            _l("Resume review"),
        ),
        _action(
            "approve",
            Side.PARTNER,
            {S.UNDER_REVIEW, S.INFO_REQUESTED},
            S.APPROVED,
            _l("Approve"),
        ),
        _action(
            "decline",
            Side.PARTNER,
            {S.RECEIVED, S.UNDER_REVIEW, S.INFO_REQUESTED},
            S.DECLINED,
            _l("Decline"),
        ),
        _action("disburse", Side.PARTNER, {S.APPROVED}, S.DISBURSED, _l("Record disbursement")),
        _action("close", Side.PARTNER, {S.DISBURSED, S.DECLINED}, S.CLOSED, _l("Close")),
    )
}

#: What each kind of event is called on a timeline.
EVENT_LABELS = {
    "created": _l("Draft prepared"),
    "sent": _l("Sent to the partner"),
    "withdrawn": _l("Withdrawn"),
    "provide_info": _l("Information provided"),
    "acknowledge": _l("Acknowledged by the partner"),
    "start_review": _l("Review started"),
    "request_info": _l("Information requested"),
    "resume_review": _l("Review resumed"),
    "approve": _l("Approved"),
    "decline": _l("Declined"),
    "disburse": _l("Disbursed"),
    "close": _l("Closed"),
    "message": _l("Message"),
    "reminded": _l("Partner reminded"),
    "escalated": _l("Escalated to the program manager"),
    "expired": _l("Expired without acknowledgement"),
    "delivery_failed": _l("Delivery failed"),
    "resent": _l("Delivery sent again"),
    "consent_revoked": _l("Withdrawn: consent revoked"),
}


class ReferralError(Refused):
    """A referral change that is refused; the message says why (and the field, if one)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def state_label(state: str) -> str:
    return str(STATE_LABELS.get(S(state), state)) if state in S._value2member_map_ else state


# Preparing and sending ---------------------------------------------------------------------


def partnership_choices() -> list[Partnership]:
    """The organization's active partnerships: the partners it can refer to."""
    query = (
        select(Partnership)
        .where(Partnership.state == PartnershipState.ACTIVE)
        .join(Partnership.partner)
        .order_by(CapitalPartner.name)
    )
    return list(db.session.scalars(query))


def _active_partnership(partnership_id: int | None) -> Partnership:
    partnership = db.session.get(Partnership, partnership_id) if partnership_id else None
    if partnership is None:
        raise ReferralError(_("Choose a capital partner."), "partnership_id")
    if partnership.state != PartnershipState.ACTIVE:
        raise ReferralError(
            _(
                "The partnership with %(partner)s is not active: no new referrals.",
                partner=partnership.partner.name,
            ),
            "partnership_id",
        )
    return partnership


def consent_problems(producer_id: int, partner_id: int) -> list[str]:
    """What is missing for a referral of this producer to this partner, in words."""
    return missing_for(producer_id, partner_id, profile.REQUIRED_SCOPES)


def parse_amount(raw: Any, field_name: str = "amount") -> int | None:
    """An amount typed by a person (``1500``, ``1500.50``) in hundredths; None when blank."""
    if raw is None or str(raw).strip() == "":
        return None
    try:
        value = Decimal(str(raw).strip().replace(",", ""))
    except ArithmeticError:
        value = None
    except ValueError:
        value = None
    if value is None or not value.is_finite() or value <= 0 or value >= Decimal("1e12"):
        raise ReferralError(_("Enter a positive amount, such as 1500 or 1500.50."), field_name)
    if value != value.quantize(Decimal("0.01")):
        raise ReferralError(_("Use at most two decimals."), field_name)
    return int(value * 100)


def create_referral(
    producer: Producer,
    *,
    partnership_id: int | None,
    product: str,
    amount: Any = None,
    purpose: str = "",
    actor: User | None = None,
) -> Referral:
    """Prepare a draft referral; it needs an active partnership and a valid consent."""
    partnership = _active_partnership(partnership_id)
    partner = partnership.partner
    if product not in Product._value2member_map_:
        raise ReferralError(_("Choose a product."), "product")
    if partner.products and product not in partner.products:
        raise ReferralError(
            _(
                "%(partner)s does not offer %(product)s.",
                partner=partner.name,
                product=str(PRODUCT_LABELS[Product(product)]).lower(),
            ),
            "product",
        )
    amount_requested = parse_amount(amount)
    purpose = (purpose or "").strip()
    if len(purpose) > 2000:
        raise ReferralError(_("Keep the purpose under 2,000 characters."), "purpose")
    consent = _consent_or_refuse(producer.id, partner)
    organization = db.session.get(Organization, current_org_id())
    referral = Referral(
        producer_id=producer.id,
        partnership_id=partnership.id,
        partner_id=partner.id,
        consent_id=consent.id,
        product=product,
        amount_requested=amount_requested,
        currency=organization.currency,
        purpose=purpose,
        state=S.DRAFT,
        created_by_id=actor.id if actor else None,
    )
    db.session.add(referral)
    db.session.flush()
    _event(referral, "created", Side.ORGANIZATION, actor, None, S.DRAFT, notify=False)
    record(
        "referral.created",
        producer_id=producer.id,
        actor_id=actor.id if actor else None,
        partner=partner.name,
        product=product,
    )
    return referral


def _consent_or_refuse(producer_id: int, partner: CapitalPartner) -> Consent:
    consent = valid_consent_for(producer_id, partner.id, profile.REQUIRED_SCOPES)
    if consent is None:
        problems = consent_problems(producer_id, partner.id)
        raise ReferralError(
            _(
                "No valid consent for %(partner)s covering %(scopes)s. %(problems)s",
                partner=partner.name,
                scopes=scope_list(sorted(profile.REQUIRED_SCOPES)),
                problems=" ".join(problems),
            ),
            "consent",
        )
    return consent


def send(referral: Referral, actor: User | None = None) -> None:
    """Send a draft: check consent and partnership again, freeze the profile, tell the partner."""
    action = _allowed(referral, "send", Side.ORGANIZATION)
    _active_partnership(referral.partnership_id)
    consent = _consent_or_refuse(referral.producer_id, referral.partner)
    document = profile.build_profile(referral.producer, consent, referral.organization)
    referral.consent_id = consent.id
    referral.profile = document
    referral.profile_version = profile.PROFILE_VERSION
    referral.profile_sha256 = profile.digest(document)
    referral.sent_at = utcnow()
    _move(
        referral,
        action,
        Side.ORGANIZATION,
        actor,
        note="",
        data={"profile_sha256": referral.profile_sha256},
    )
    db.session.flush()


# Transitions -------------------------------------------------------------------------------


def _allowed(referral: Referral, name: str, side: Side) -> Action:
    action = ACTIONS.get(name)
    if action is None or action.side != side:
        raise ReferralError(_("This action is not available."))
    if referral.state not in action.sources:
        raise ReferralError(
            _(
                "A referral that is %(state)s cannot be moved on with “%(action)s”.",
                state=state_label(referral.state).lower(),
                action=str(action.label).lower(),
            )
        )
    return action


def actions_for(referral: Referral, side: Side) -> list[Action]:
    """The transitions this side can take now (for buttons, and for the API's answer)."""
    return [
        a
        for a in ACTIONS.values()
        if a.side == side and referral.state in a.sources and a.name != "send"
    ]


@dataclass
class Disbursement:
    amount: Any = None
    currency: str = ""
    disbursed_on: date | None = None
    product: str = ""
    term_months: Any = None
    errors: dict[str, str] = field(default_factory=dict)


def apply(
    referral: Referral,
    name: str,
    side: Side,
    actor: User | None,
    *,
    note: str = "",
    reason: str | None = None,
    disbursement: Disbursement | None = None,
    via: dict[str, Any] | None = None,
) -> ReferralEvent:
    """Take a transition named ``name`` for ``side``; refuse with a reason when it does not fit.

    ``via`` says how a change with no user came (the partner API: its token's name and
    prefix); it is kept on the event.
    """
    action = _allowed(referral, name, side)
    note = (note or "").strip()
    if len(note) > 4000:
        raise ReferralError(_("Keep the note under 4,000 characters."), "note")
    if action.needs_note and not note:
        raise ReferralError(_("Add a note: the other side needs to know why."), "note")
    data: dict[str, Any] = {"via": via} if via else {}
    with tenant_scope(referral.org_id):
        if name == "decline":
            if reason not in DeclineReason._value2member_map_:
                raise ReferralError(_("Choose a reason for declining."), "reason")
            referral.decline_reason = reason
            referral.decline_note = note
            referral.answered_at = referral.answered_at or utcnow()
            data["reason"] = reason
        elif name == "approve":
            referral.answered_at = referral.answered_at or utcnow()
        elif name == "disburse":
            data.update(_disburse(referral, disbursement or Disbursement()))
        elif name == "acknowledge":
            referral.acknowledged_at = utcnow()
        elif name == "close":
            referral.closed_at = utcnow()
        event = _move(referral, action, side, actor, note=note, data=data)
        db.session.flush()  # in the referral's scope: the new rows are stamped with it
        return event


def _disburse(referral: Referral, d: Disbursement) -> dict[str, Any]:
    errors: dict[str, str] = {}
    amount = None
    try:
        amount = parse_amount(d.amount)
        if amount is None:
            errors["amount"] = _("Enter the amount disbursed.")
    except ReferralError as exc:
        errors["amount"] = str(exc)
    currency = (d.currency or referral.currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        errors["currency"] = _("Enter a three-letter currency code, such as PEN.")
    if not isinstance(d.disbursed_on, date):
        errors["disbursed_on"] = _("Enter the date of the disbursement.")
    elif d.disbursed_on > today():
        errors["disbursed_on"] = _("The date cannot be in the future.")
    elif referral.sent_at and d.disbursed_on < referral.sent_at.date():
        errors["disbursed_on"] = _("The date cannot be before the referral was sent.")
    product = d.product or referral.product
    if product not in Product._value2member_map_:
        errors["product"] = _("Choose a product.")
    term = None
    try:
        term = int(str(d.term_months).strip()) if str(d.term_months or "").strip() else None
        if term is None or not 1 <= term <= 360:
            errors["term_months"] = _("Enter the term in months, from 1 to 360.")
    except ValueError:
        errors["term_months"] = _("Enter the term in months, from 1 to 360.")
    if errors:
        d.errors = errors
        field_name, message = next(iter(errors.items()))
        raise ReferralError(message, field_name)
    referral.disbursed_amount = amount
    referral.disbursed_currency = currency
    referral.disbursed_on = d.disbursed_on
    referral.disbursed_product = product
    referral.disbursed_term_months = term
    return {
        "amount": profile.decimal_amount(amount),
        "currency": currency,
        "date": d.disbursed_on.isoformat(),  # type: ignore[union-attr]
        "product": product,
        "term_months": term,
    }


def _move(
    referral: Referral,
    action: Action,
    side: Side,
    actor: User | None,
    *,
    note: str,
    data: dict[str, Any],
) -> ReferralEvent:
    before = referral.state
    referral.state = action.target
    kind = "withdrawn" if action.name == "withdraw" else action.name
    kind = "sent" if kind == "send" else kind
    event = _event(referral, kind, side, actor, before, action.target, note=note, data=data)
    record(
        f"referral.{kind}",
        producer_id=referral.producer_id,
        actor_id=actor.id if actor else None,
        referral=referral.id,
        partner=referral.partner.name,
        state=action.target.value,
    )
    return event


def _event(
    referral: Referral,
    kind: str,
    side: Side,
    actor: User | None,
    before: str | None,
    after: str | None,
    *,
    note: str = "",
    data: dict[str, Any] | None = None,
    notify: bool = True,
) -> ReferralEvent:
    event = ReferralEvent(
        referral_id=referral.id,
        kind=kind,
        from_state=before,
        to_state=after,
        side=side,
        actor_id=actor.id if actor else None,
        note=note,
        data=data or {},
    )
    db.session.add(event)
    db.session.flush()
    if notify:
        outbox.notify(referral, event)
    return event


def withdraw(referral: Referral, actor: User | None, note: str) -> ReferralEvent:
    return apply(referral, "withdraw", Side.ORGANIZATION, actor, note=note)


def expire(referral: Referral) -> ReferralEvent:
    """No acknowledgement in time: the referral expires (the platform acts)."""
    return _system_move(referral, S.EXPIRED, "expired", "")


def _system_move(
    referral: Referral, target: S, kind: str, note: str, notify: bool = True
) -> ReferralEvent:
    before = referral.state
    with tenant_scope(referral.org_id):
        referral.state = target
        event = _event(referral, kind, Side.SYSTEM, None, before, target, note=note, notify=notify)
        record(
            f"referral.{kind}",
            producer_id=referral.producer_id,
            actor_id=None,
            referral=referral.id,
            partner=referral.partner.name,
            state=target.value,
        )
        db.session.flush()
    return event


def withdraw_for_revoked_consent(consent: Consent) -> int:
    """Withdraw the open referrals a revoked consent covered; tell the partner of each."""
    query = select(Referral).where(
        Referral.consent_id == consent.id,
        Referral.state.in_([s.value for s in OPEN_STATES]),
    )
    count = 0
    for referral in db.session.scalars(query):
        _system_move(
            referral,
            S.WITHDRAWN,
            "consent_revoked",
            "",
            notify=referral.state != S.DRAFT,
        )
        count += 1
    return count


# The thread --------------------------------------------------------------------------------


def post_message(referral: Referral, side: Side, author: User | None, body: str) -> ReferralMessage:
    """Add a message to a referral's thread and tell the other side."""
    body = (body or "").strip()
    if not body:
        raise ReferralError(_("Write a message."), "body")
    if len(body) > 4000:
        raise ReferralError(_("Keep the message under 4,000 characters."), "body")
    if referral.state == S.DRAFT:
        raise ReferralError(_("Send the referral before writing to the partner."))
    if referral.state in CLOSED_THREAD_STATES:
        raise ReferralError(
            _(
                "This referral is %(state)s: its thread is closed.",
                state=state_label(referral.state).lower(),
            )
        )
    with tenant_scope(referral.org_id):
        message = ReferralMessage(
            referral_id=referral.id, side=side, author_id=author.id if author else None, body=body
        )
        db.session.add(message)
        _event(referral, "message", side, author, None, None, note=body)
        db.session.flush()
    return message


def thread(referral: Referral) -> list[ReferralMessage]:
    with tenant_scope(referral.org_id):
        query = (
            select(ReferralMessage)
            .where(ReferralMessage.referral_id == referral.id)
            .order_by(ReferralMessage.id)
        )
        return list(db.session.scalars(query))


def timeline(referral: Referral) -> list[ReferralEvent]:
    with tenant_scope(referral.org_id):
        query = (
            select(ReferralEvent)
            .where(ReferralEvent.referral_id == referral.id)
            .order_by(ReferralEvent.id)
        )
        return list(db.session.scalars(query))


# Reading, organization side ------------------------------------------------------------------


@dataclass
class ReferralFilters:
    state: str = ""
    partner_id: int | None = None
    product: str = ""
    org_id: int | None = None  # partner side only
    q: str = ""


def org_referrals(filters: ReferralFilters) -> Select:
    """The organization's referrals, newest first (tenant scope applies)."""
    query = select(Referral).order_by(Referral.created_at.desc(), Referral.id.desc())
    if filters.state in S._value2member_map_:
        query = query.where(Referral.state == filters.state)
    if filters.partner_id:
        query = query.where(Referral.partner_id == filters.partner_id)
    if filters.product in Product._value2member_map_:
        query = query.where(Referral.product == filters.product)
    return query


class _Named(NamedTuple):
    name: str


class ListedReferral(NamedTuple):
    """What the producer page's section shows of a referral."""

    id: int
    created_at: datetime
    sent_at: datetime | None
    product: str
    amount_requested: int | None
    currency: str
    state: str
    partner: _Named


@functools.cache
def producer_referrals_statement() -> Select:
    """The producer page's referrals: explicit columns, built once, the organization bound
    (a Core read: see inclusive.tenancy.reads)."""
    r, p = Referral.__table__, CapitalPartner.__table__
    return org_statement(
        select(
            r.c.id,
            r.c.created_at,
            r.c.sent_at,
            r.c.product,
            r.c.amount_requested,
            r.c.currency,
            r.c.state,
            p.c.name,
        )
        .join(p, p.c.id == r.c.partner_id)
        .where(r.c.org_id == bindparam(ORG_ID), r.c.producer_id == bindparam("producer_id"))
        .order_by(r.c.created_at.desc())
    )


def referrals_from_rows(rows: Iterable[Sequence[Any]]) -> list[ListedReferral]:
    """The producer page's referrals from the rows of :func:`producer_referrals_statement`
    (read with the page's other panels: ``producers.page.page_reads``)."""
    return [ListedReferral(*row[:-1], _Named(row[-1])) for row in rows]


@dataclass
class PartnerFigures:
    partner: str
    sent: int
    approved: int
    disbursed: int
    disbursed_amount: int
    median_days_to_answer: float | None


@dataclass
class Pipeline:
    counts: dict[str, int]
    sent: int
    approved: int
    disbursed: int
    requested_amount: int
    disbursed_amount: int
    per_partner: list[PartnerFigures]

    def share(self, part: int, whole: int) -> int | None:
        return round(100 * part / whole) if whole else None


_REACHED_APPROVED = (S.APPROVED, S.DISBURSED, S.CLOSED)


def pipeline() -> Pipeline:
    """Counts per state, conversion sent → approved → disbursed, amounts and answer times."""
    rows = db.session.execute(
        select(
            Referral.state, func.count(), func.coalesce(func.sum(Referral.amount_requested), 0)
        ).group_by(Referral.state)
    ).all()
    counts = {s.value: 0 for s in S}
    requested = 0  # asked for in the referrals that were sent (a draft asks for nothing yet)
    for state, count, amount in rows:
        counts[state] = count
        if state != S.DRAFT:
            requested += int(amount or 0)
    per_partner_rows = db.session.execute(
        select(
            CapitalPartner.name,
            Referral.state,
            Referral.sent_at,
            Referral.answered_at,
            Referral.disbursed_amount,
            Referral.closed_at,
        )
        .join(CapitalPartner, CapitalPartner.id == Referral.partner_id)
        .where(Referral.sent_at.is_not(None))
    ).all()
    by_partner: dict[str, list[Any]] = {}
    for row in per_partner_rows:
        by_partner.setdefault(row[0], []).append(row)
    figures = []
    sent_total = approved_total = disbursed_total = disbursed_amount_total = 0
    for name in sorted(by_partner):
        items = by_partner[name]
        approved = sum(
            1 for r in items if r.state in _REACHED_APPROVED and r.answered_at is not None
        )
        disbursed_items = [r for r in items if r.disbursed_amount]
        days = sorted(
            (r.answered_at - r.sent_at).total_seconds() / 86400
            for r in items
            if r.answered_at and r.sent_at
        )
        median = None
        if days:
            mid = len(days) // 2
            median = days[mid] if len(days) % 2 else (days[mid - 1] + days[mid]) / 2
        amount = sum(r.disbursed_amount for r in disbursed_items)
        figures.append(
            PartnerFigures(
                name,
                len(items),
                approved,
                len(disbursed_items),
                amount,
                round(median, 1) if median is not None else None,
            )
        )
        sent_total += len(items)
        approved_total += approved
        disbursed_total += len(disbursed_items)
        disbursed_amount_total += amount
    return Pipeline(
        counts,
        sent_total,
        approved_total,
        disbursed_total,
        requested,
        disbursed_amount_total,
        figures,
    )


def recent_partner_answers(limit: int = 10) -> list[tuple[ReferralEvent, Referral]]:
    """The latest things partners did on the organization's referrals (shown in the app)."""
    query = (
        select(ReferralEvent, Referral)
        .join(Referral, Referral.id == ReferralEvent.referral_id)
        .where(ReferralEvent.side == Side.PARTNER)
        .order_by(ReferralEvent.id.desc())
        .limit(limit)
    )
    return [(e, r) for e, r in db.session.execute(query).all()]


# Reading, partner side ---------------------------------------------------------------------


def partner_referrals(partner: CapitalPartner, filters: ReferralFilters) -> Select:
    """A partner's referrals from every organization, newest first.

    ALL_TENANTS on purpose: a partner spans organizations. Every query here filters by the
    partner's id and leaves drafts out; a partner reads referrals, never other tenant rows
    (the producer's data reaches it only through the frozen, consented profile).
    """
    query = (
        select(Referral)
        .where(Referral.partner_id == partner.id, Referral.state.in_(PARTNER_VISIBLE))
        .order_by(Referral.sent_at.desc(), Referral.id.desc())
        .execution_options(**ALL_TENANTS)
    )
    if filters.state in PARTNER_VISIBLE:
        query = query.where(Referral.state == filters.state)
    if filters.org_id:
        query = query.where(Referral.org_id == filters.org_id)
    if filters.product in Product._value2member_map_:
        query = query.where(Referral.product == filters.product)
    return query


def referral_for_partner(partner: CapitalPartner, referral_id: Any) -> Referral | None:
    """One of the partner's referrals by id, or None (never a draft, never another's)."""
    try:
        number = int(referral_id)
    except (TypeError, ValueError):
        return None
    if not 0 < number < 2**31:
        return None
    query = (
        select(Referral)
        .where(
            Referral.id == number,
            Referral.partner_id == partner.id,
            Referral.state.in_(PARTNER_VISIBLE),
        )
        .execution_options(**ALL_TENANTS)  # see partner_referrals
    )
    return db.session.scalar(query)


def partner_organizations(partner: CapitalPartner) -> list[Organization]:
    """The organizations that have referred to this partner (for the inbox's filter)."""
    query = (
        select(Organization)
        .join(Referral, Referral.org_id == Organization.id)
        .where(Referral.partner_id == partner.id)
        .distinct()
        .order_by(Organization.name)
        .execution_options(**ALL_TENANTS)
    )
    return list(db.session.scalars(query))


def producer_name(referral: Referral) -> str:
    """The producer's name as the partner may see it: from the frozen profile."""
    identity = (referral.profile or {}).get("identity") or {}
    return identity.get("name") or _("Producer %(number)d", number=referral.producer_id)


def answered_days(referral: Referral) -> float | None:
    if referral.answered_at and referral.sent_at:
        return round((referral.answered_at - referral.sent_at).total_seconds() / 86400, 1)
    return None


# Deliveries --------------------------------------------------------------------------------


def mark_delivery_failed(referral: Referral) -> None:
    """A delivery to the partner failed for good: a sent referral shows delivery_failed, and
    the partner's administrators and the organization are told by e-mail."""
    if referral.state == S.SENT:
        _system_move(
            referral,
            S.DELIVERY_FAILED,
            "delivery_failed",
            "",
        )
    else:
        with tenant_scope(referral.org_id):
            _event(
                referral,
                "delivery_failed",
                Side.SYSTEM,
                None,
                None,
                None,
                note="",
            )


def resend_deliveries(referral: Referral, actor: User | None) -> int:
    """Staff send the failed deliveries again; a delivery_failed referral is sent again."""
    try:
        count = outbox.resend(referral)
    except outbox.EndpointDisabled:
        raise ReferralError(
            _(
                "The partner's webhook is disabled (it answered 410 Gone, or was removed): "
                "the partner must set its webhook address again before anything is resent."
            )
        ) from None
    if not count:
        raise ReferralError(_("No failed delivery to send again."))
    before = referral.state
    if referral.state == S.DELIVERY_FAILED:  # reached from sent only: sent again
        referral.state = S.SENT
    _event(
        referral,
        "resent",
        Side.ORGANIZATION,
        actor,
        before,
        referral.state if before != referral.state else None,
        notify=False,
        data={"deliveries": count},
    )
    return count


# Reminders ---------------------------------------------------------------------------------


def business_days_between(start: date, end: date) -> int:
    """Working days (Monday to Friday) after ``start`` up to and including ``end``."""
    if end <= start:
        return 0
    days = (end - start).days
    weeks, extra = divmod(days, 7)
    count = weeks * 5
    for offset in range(1, extra + 1):
        if (start.toordinal() + offset - 1) % 7 < 5:  # date.fromordinal(1) is a Monday
            count += 1
    return count


def remind(referral: Referral, on: date | None = None) -> str | None:
    """Move an unacknowledged referral along: remind, then escalate, then expire.

    With N the partnership's acknowledgement days: after N business days the partner is
    reminded, after 2N the organization's program managers are told, after 3N it expires.
    Returns what was done, or None.
    """
    if referral.state != S.SENT or referral.sent_at is None:
        return None
    day = on or today()
    days = business_days_between(referral.sent_at.date(), day)
    with tenant_scope(referral.org_id):
        allowed = referral.partnership.acknowledgement_days
        if days >= 3 * allowed:
            expire(referral)
            return "expired"
        if days >= 2 * allowed and referral.reminder_level < 2:
            referral.reminder_level = 2
            _event(
                referral,
                "escalated",
                Side.SYSTEM,
                None,
                None,
                None,
                data={"business_days": days},
            )
            return "escalated"
        if days >= allowed and referral.reminder_level < 1:
            referral.reminder_level = 1
            _event(
                referral,
                "reminded",
                Side.SYSTEM,
                None,
                None,
                None,
                data={"business_days": days},
            )
            return "reminded"
    return None


def remind_all(on: date | None = None) -> dict[str, int]:
    """Run :func:`remind` over every sent referral of every organization (a periodic job)."""
    query = (
        select(Referral)
        .where(Referral.state == S.SENT)
        .order_by(Referral.id)
        .execution_options(**ALL_TENANTS)  # the platform's sweep over every organization
    )
    done: dict[str, int] = {}
    for referral in list(db.session.scalars(query)):
        outcome = remind(referral, on)
        if outcome:
            done[outcome] = done.get(outcome, 0) + 1
    return done
