"""Record, revoke and check consents: every change to a consent goes through here."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import Select, bindparam, select
from werkzeug.datastructures import FileStorage

from inclusive.audit.services import record
from inclusive.auth.models import User
from inclusive.babelcache import lazy_gettext as _l
from inclusive.consents.models import Consent, ConsentMethod, ConsentScope, ConsentState
from inclusive.extensions import db
from inclusive.milestones.evidence import DEFAULT_MAX_BYTES, sniff
from inclusive.milestones.services import today
from inclusive.partners.models import CapitalPartner, Partnership, PartnershipState
from inclusive.producers.models import Producer
from inclusive.refusals import Refused
from inclusive.storage import storage
from inclusive.tenancy.models import Membership
from inclusive.tenancy.reads import ORG_ID, org_statement
from inclusive.tenancy.scope import require_org_id
from inclusive.tenancy.web import MAX_ID
from inclusive.timeutil import utcnow

#: The consent texts there are (templates/consents/text/<version>.<language>.html).
TEXT_VERSIONS = ("consent-v1",)
CURRENT_TEXT_VERSION = TEXT_VERSIONS[-1]

SCOPE_LABELS = {
    ConsentScope.IDENTITY: _l("Identity"),
    ConsentScope.CONTACT: _l("Contact details"),
    ConsentScope.PROGRAM_RECORD: _l("Program record"),
    ConsentScope.ECONOMIC_FIGURES: _l("Economic figures"),
    ConsentScope.OFFTAKE_LEDGER: _l("Offtake ledger"),
}

METHOD_LABELS = {
    ConsentMethod.SIGNED_PAPER: _l("Signed paper"),
    ConsentMethod.VERBAL: _l("Verbal, with a staff witness"),
    ConsentMethod.PORTAL: _l("In the producer portal (not available yet)"),
}

CONSENT_STATE_LABELS = {
    ConsentState.VALID: _l("Valid"),
    ConsentState.NOT_YET_VALID: _l("Not yet valid"),
    ConsentState.EXPIRED: _l("Expired"),
    ConsentState.REVOKED: _l("Revoked"),
}


class ConsentError(Refused):
    """A consent that is refused; the message says why, and the field it is about."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def scope_list(scopes: Iterable[str]) -> str:
    """Scopes in words, in the reader's language: "Identity, Economic figures"."""
    return ", ".join(str(SCOPE_LABELS.get(s, s)) for s in scopes)  # type: ignore[call-overload]


def one_year_after(day: date) -> date:
    """The same day a year later (28 February after a 29 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def partner_choices() -> list[CapitalPartner]:
    """Partners the organization in scope has an active or proposed partnership with."""
    query = (
        select(CapitalPartner)
        .join(Partnership, Partnership.partner_id == CapitalPartner.id)
        .where(Partnership.state != PartnershipState.ENDED)
        .order_by(CapitalPartner.name)
    )
    return list(db.session.scalars(query).unique())


def witness_choices(recorder: User) -> list[User]:
    """Members of the organization in scope who may witness a verbal consent."""
    query = (
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(User.id != recorder.id)
        .order_by(User.name)
    )
    return list(db.session.scalars(query))


# Recording -----------------------------------------------------------------------------


def record_consent(
    producer: Producer,
    *,
    partner_id: int | None,
    purpose: str,
    scopes: Iterable[str],
    method: str,
    given_on: date | None,
    recorder: User,
    valid_until: date | None = None,
    text_version: str = CURRENT_TEXT_VERSION,
    witness_id: int | None = None,
    paper: FileStorage | None = None,
) -> Consent:
    """Check and record a consent; a refusal raises ConsentError and writes nothing.

    The signed paper is checked by its content and stored last, once everything else
    holds; the caller deletes it again if its transaction is rolled back.
    """
    if producer.org_id != require_org_id():
        raise ConsentError(_("This producer is not of the organization in scope."))
    partner = _open_partner(partner_id)
    purpose = (purpose or "").strip()
    if not purpose or len(purpose) > 200:
        raise ConsentError(
            _("Say what the data is shared for, in at most 200 characters."), "purpose"
        )
    scope_values = sorted(set(scopes or ()))
    if not scope_values:
        raise ConsentError(_("Choose at least one kind of data to share."), "scopes")
    if any(s not in set(ConsentScope) for s in scope_values):
        raise ConsentError(_("Choose the kinds of data from the list."), "scopes")
    if text_version not in TEXT_VERSIONS:
        raise ConsentError(_("Choose a consent text from the list."), "text_version")
    if given_on is None:
        raise ConsentError(_("Give the date the consent was given."), "given_on")
    if given_on > today():
        raise ConsentError(_("The consent cannot be given in the future."), "given_on")
    valid_until = valid_until or one_year_after(given_on)
    if valid_until <= given_on:
        raise ConsentError(
            _("The consent must stay valid until a day after it was given."), "valid_until"
        )
    witness = None
    data = b""
    kind: tuple[str, str] | None = None
    if method == ConsentMethod.PORTAL:
        raise ConsentError(
            _(
                "Consent in the producer portal is not available yet: record a signed paper "
                "or a verbal consent with a witness."
            ),
            "method",
        )
    if method == ConsentMethod.VERBAL:
        witness = _witness(witness_id, recorder)
    elif method == ConsentMethod.SIGNED_PAPER:
        data, kind = _read_paper(paper)
    else:
        raise ConsentError(_("Choose how the consent was given."), "method")

    consent = Consent(
        producer_id=producer.id,
        partner_id=partner.id,
        purpose=purpose,
        scopes=scope_values,
        text_version=text_version,
        method=str(method),
        witness_id=witness.id if witness else None,
        given_on=given_on,
        valid_until=valid_until,
        recorded_by_id=recorder.id,
        recorded_at=utcnow(),
    )
    if kind is not None:
        content_type, extension = kind
        consent.paper_filename = _safe_name(paper.filename if paper else "", extension)
        consent.paper_content_type = content_type
        consent.paper_size = len(data)
        consent.paper_sha256 = hashlib.sha256(data).hexdigest()
        consent.paper_storage_key = storage().save(data, extension)
    db.session.add(consent)
    db.session.flush()
    record(
        "consent.recorded",
        producer_id=producer.id,
        actor_id=recorder.id,
        partner=partner.name,
        scopes=scope_values,
        method=str(method),
        valid_until=valid_until.isoformat(),
    )
    return consent


def _open_partner(partner_id: int | None) -> CapitalPartner:
    partner = (
        db.session.get(CapitalPartner, partner_id)
        if partner_id and 0 < partner_id <= MAX_ID
        else None
    )
    open_ = partner is not None and db.session.scalar(
        select(Partnership.id).where(
            Partnership.partner_id == partner.id, Partnership.state != PartnershipState.ENDED
        )
    )
    if not open_:
        raise ConsentError(
            _(
                "Choose a capital partner your organization has an active or proposed "
                "partnership with."
            ),
            "partner_id",
        )
    return partner  # type: ignore[return-value]


def _witness(witness_id: int | None, recorder: User) -> User:
    if not witness_id or not 0 < witness_id <= MAX_ID:
        raise ConsentError(_("A verbal consent needs a staff witness."), "witness_id")
    if witness_id == recorder.id:
        raise ConsentError(
            _("The witness must be another member than the person recording."), "witness_id"
        )
    membership = db.session.scalar(select(Membership).filter_by(user_id=witness_id))
    if membership is None:
        raise ConsentError(_("The witness must be a member of your organization."), "witness_id")
    return membership.user


def _read_paper(paper: FileStorage | None) -> tuple[bytes, tuple[str, str]]:
    if paper is None or not paper.filename:
        raise ConsentError(_("Upload the signed paper (a PDF, JPEG or PNG file)."), "paper")
    limit = current_app.config.get("EVIDENCE_MAX_BYTES", DEFAULT_MAX_BYTES)
    data = paper.stream.read(limit + 1)
    name = paper.filename
    if len(data) > limit:
        raise ConsentError(
            _("%(name)s is larger than %(size)s.", name=name, size=f"{limit // 1024} KB"),
            "paper",
        )
    if not data:
        raise ConsentError(_("%(name)s is empty.", name=name), "paper")
    kind = sniff(data[:16])
    if kind is None:
        raise ConsentError(_("%(name)s is not a PDF, JPEG or PNG file.", name=name), "paper")
    return data, kind


def _safe_name(name: str, extension: str) -> str:
    stem = re.sub(r"[^\w.-]+", "_", (name or "consent").rsplit(".", 1)[0])[:80].strip("._")
    return f"{stem or 'consent'}{extension}"


# Revoking ------------------------------------------------------------------------------


def revoke_consent(consent: Consent, reason: str, actor: User | None = None) -> None:
    """Revoke a consent in one step, and withdraw what it covered."""
    if consent.revoked_at is not None:
        raise ConsentError(_("This consent has already been revoked."))
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise ConsentError(
            _("Say why the consent is revoked, in at most 500 characters."), "reason"
        )
    consent.revoked_at = utcnow()
    consent.revoked_by_id = actor.id if actor else None
    consent.revocation_reason = reason
    db.session.flush()
    withdraw_referrals_covered_by(consent)
    record(
        "consent.revoked",
        producer_id=consent.producer_id,
        actor_id=actor.id if actor else None,
        partner=consent.partner.name,
        reason=reason,
    )


def withdraw_referrals_covered_by(consent: Consent) -> None:
    """Withdraw the open referrals a revoked consent covered, and tell the partner."""
    from inclusive.referrals.services import withdraw_for_revoked_consent

    withdraw_for_revoked_consent(consent)


# Checking ------------------------------------------------------------------------------


def consents_of(producer_id: int, partner_id: int | None = None) -> list[Consent]:
    """A producer's consents (for one partner or all), the newest first."""
    query = select(Consent).where(Consent.producer_id == producer_id)
    if partner_id is not None:
        query = query.where(Consent.partner_id == partner_id)
    query = query.order_by(Consent.given_on.desc(), Consent.id.desc())
    return list(db.session.scalars(query))


class _Named(NamedTuple):
    name: str


class ListedConsent(NamedTuple):
    """What the producer page's consents panel shows of a consent."""

    id: int
    purpose: str
    scopes: list[str]
    text_version: str
    method: str
    given_on: date
    valid_until: date
    paper_storage_key: str | None
    revoked_at: datetime | None
    revocation_reason: str
    partner: _Named
    witness: _Named | None

    state_on = Consent.state_on  # the same rule as a consent's


@functools.cache
def producer_consents_statement() -> Select:
    """The producer page's consents: explicit columns, the partner's and the witness's
    names joined in, built once, the organization bound (see inclusive.tenancy.reads)."""
    c, p, w = Consent.__table__, CapitalPartner.__table__, User.__table__
    return org_statement(
        select(
            c.c.id,
            c.c.purpose,
            c.c.scopes,
            c.c.text_version,
            c.c.method,
            c.c.given_on,
            c.c.valid_until,
            c.c.paper_storage_key,
            c.c.revoked_at,
            c.c.revocation_reason,
            p.c.name,
            w.c.name,
        )
        .join(p, p.c.id == c.c.partner_id)
        .outerjoin(w, w.c.id == c.c.witness_id)
        .where(c.c.org_id == bindparam(ORG_ID), c.c.producer_id == bindparam("producer_id"))
        .order_by(c.c.given_on.desc(), c.c.id.desc())
    )


def consents_from_rows(rows: Iterable[Sequence[Any]]) -> list[ListedConsent]:
    """The producer page's consents from the rows of :func:`producer_consents_statement`
    (read with the page's other panels: ``producers.page.page_reads``)."""
    return [
        ListedConsent(*row[:-2], _Named(row[-2]), _Named(row[-1]) if row[-1] is not None else None)
        for row in rows
    ]


def valid_consent_for(
    producer_id: int, partner_id: int, scopes: Iterable[str], on: date | None = None
) -> Consent | None:
    """The newest consent valid on a day that alone covers every scope asked, or None."""
    day = on or today()
    wanted = set(scopes)
    for consent in consents_of(producer_id, partner_id):
        if consent.state_on(day) == ConsentState.VALID and consent.covers(wanted):
            return consent
    return None


def missing_for(
    producer_id: int, partner_id: int, scopes: Iterable[str], on: date | None = None
) -> list[str]:
    """What is missing for a valid consent, in words; an empty list when nothing is."""
    day = on or today()
    wanted = set(scopes)
    found = consents_of(producer_id, partner_id)
    if not found:
        return [_("There is no consent of the producer for this partner.")]
    if any(c.state_on(day) == ConsentState.VALID and c.covers(wanted) for c in found):
        return []
    live = [c for c in found if c.state_on(day) == ConsentState.VALID]
    if live:
        best = min(live, key=lambda c: len(wanted - set(c.scopes)))
        missing = [s for s in ConsentScope if s in wanted - set(best.scopes)]
        return [_("The consent does not cover: %(scopes)s.", scopes=scope_list(missing))]
    reasons: list[str] = []
    newest = found[0]
    state = newest.state_on(day)
    if state == ConsentState.REVOKED:
        reasons.append(
            _(
                "The consent was revoked on %(date)s: %(reason)s",
                date=format_date(newest.revoked_at.date()),  # type: ignore[union-attr]
                reason=newest.revocation_reason,
            )
        )
    elif state == ConsentState.EXPIRED:
        reasons.append(_("The consent expired on %(date)s.", date=format_date(newest.valid_until)))
    else:
        reasons.append(
            _("The consent is valid only from %(date)s.", date=format_date(newest.given_on))
        )
    uncovered = [s for s in ConsentScope if s in wanted - set(newest.scopes)]
    if uncovered:
        reasons.append(_("The consent does not cover: %(scopes)s.", scopes=scope_list(uncovered)))
    return reasons
