"""The readiness check shown before a referral, and the credit-readiness profile it freezes.

The profile is a versioned JSON document (``profile-v1``, described in docs/referrals.md)
built from the producer's program record. It holds only the scopes the producer consented
to, and its SHA-256 digest is computed over its canonical form (sorted keys, no spaces,
UTF-8), so either side can check that what it reads is what was sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from inclusive.babelcache import lazy_gettext as _l
from inclusive.consents.models import Consent, ConsentScope
from inclusive.extensions import db
from inclusive.impact import services as impact
from inclusive.milestones.models import Enrollment, Milestone, MilestoneStatus
from inclusive.milestones.services import today
from inclusive.producers.models import Producer
from inclusive.tenancy.models import Organization
from inclusive.timeutil import utcnow

PROFILE_VERSION = "profile-v1"
#: A referral needs at least these scopes: who the producer is, and what the program saw.
REQUIRED_SCOPES = frozenset({ConsentScope.IDENTITY, ConsentScope.PROGRAM_RECORD})
#: Months of figures the profile carries (and the readiness check looks at).
FIGURE_MONTHS = 12

DONE = (MilestoneStatus.ACHIEVED, MilestoneStatus.VERIFIED)


@dataclass(frozen=True)
class Check:
    """One line of the readiness check: what was looked at, what was found, whether it is
    fine (``ok``) or a warning."""

    label: str
    value: str
    ok: bool


@dataclass
class Readiness:
    checks: list[Check] = field(default_factory=list)

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


READINESS_LABELS = {
    "verified": _l("Verified milestones"),
    "figures": _l("Months of figures (last 12)"),
    "reproduction": _l("Reproduction status"),
    "offtake": _l("Offtake record"),
    "risks": _l("Open risks"),
}


def _enrollments(producer_id: int) -> list[Enrollment]:
    query = select(Enrollment).where(Enrollment.producer_id == producer_id).order_by(Enrollment.id)
    return list(db.session.scalars(query))


def _milestones(producer_id: int) -> list[Milestone]:
    query = (
        select(Milestone)
        .where(Milestone.producer_id == producer_id)
        .order_by(Milestone.enrollment_id, Milestone.position)
    )
    return list(db.session.scalars(query))


def readiness(producer_id: int, on: date | None = None) -> Readiness:
    """Look at the producer's record the way a lender will, and warn of what is thin."""
    day = on or today()
    milestones = _milestones(producer_id)
    verified = sum(1 for m in milestones if m.status == MilestoneStatus.VERIFIED)
    done = sum(1 for m in milestones if m.status in DONE)
    rows = impact.snapshots(producer_id, limit=FIGURE_MONTHS)
    status = impact.reproduction_status(rows, day)
    _purchases, totals = impact.offtake(producer_id, limit=1)
    overdue = sum(
        1
        for m in milestones
        if m.due_date < day and m.status in (MilestoneStatus.PLANNED, MilestoneStatus.IN_PROGRESS)
    )
    at_risk = any(e.at_risk for e in _enrollments(producer_id))
    result = Readiness()
    result.checks.append(
        Check(
            str(READINESS_LABELS["verified"]),
            _(
                "%(verified)d verified of %(total)d (%(done)d done)",
                verified=verified,
                total=len(milestones),
                done=done,
            ),
            verified > 0,
        )
    )
    result.checks.append(
        Check(
            str(READINESS_LABELS["figures"]),
            _("%(months)d months", months=len(rows)),
            len(rows) >= impact.MIN_MONTHS,
        )
    )
    result.checks.append(
        Check(
            str(READINESS_LABELS["reproduction"]),
            str(impact.REPRODUCTION_LABELS[status.status]),
            status.status in ("simple", "amplified"),
        )
    )
    result.checks.append(
        Check(
            str(READINESS_LABELS["offtake"]),
            _(
                "%(count)d purchases, %(on_time)d%% on time",
                count=totals.purchases,
                on_time=round(totals.on_time_share * 100),
            )
            if totals.purchases
            else _("No purchases recorded"),
            totals.purchases > 0,
        )
    )
    risks = []
    if at_risk:
        risks.append(_("at risk in a program"))
    if overdue:
        risks.append(_("%(count)d milestones overdue", count=overdue))
    result.checks.append(
        Check(str(READINESS_LABELS["risks"]), ", ".join(risks) or _("None"), not risks)
    )
    return result


# The profile ---------------------------------------------------------------------------


def decimal_amount(hundredths: int | None) -> str | None:
    """Amounts travel as decimal strings (JSON, CSV): exact, and the same in every language."""
    if hundredths is None:
        return None
    sign = "-" if hundredths < 0 else ""
    whole, cents = divmod(abs(hundredths), 100)
    return f"{sign}{whole}.{cents:02d}"


def build_profile(producer: Producer, consent: Consent, organization: Organization) -> dict:
    """The credit-readiness profile of a producer, holding only the consented scopes."""
    scopes = set(consent.scopes)
    day = today()
    profile: dict[str, Any] = {
        "version": PROFILE_VERSION,
        "generated_at": utcnow().replace(microsecond=0).isoformat() + "Z",
        "organization": {
            "name": organization.name,
            "country": organization.country,
            "currency": organization.currency,
        },
        "consent": {
            "id": consent.id,
            "text_version": consent.text_version,
            "purpose": consent.purpose,
            "scopes": sorted(scopes),
            "given_on": consent.given_on.isoformat(),
            "valid_until": consent.valid_until.isoformat(),
        },
    }
    if ConsentScope.IDENTITY in scopes:
        profile["identity"] = {
            "name": producer.name,
            "kind": producer.kind,
            "national_id": producer.national_id,
            "representative": producer.representative,
            "owner_gender": producer.owner_gender,
            "region": producer.region,
            "municipality": producer.municipality,
            "sectors": sorted(producer.sectors),
            "employees": producer.employees,
            "formally_registered": producer.formally_registered,
        }
    if ConsentScope.CONTACT in scopes:
        profile["contact"] = {"phone": producer.phone, "email": producer.email}
    if ConsentScope.PROGRAM_RECORD in scopes:
        profile["program_record"] = _program_record(producer.id)
    if ConsentScope.ECONOMIC_FIGURES in scopes:
        profile["economic_figures"] = _figures(producer.id, day)
    if ConsentScope.OFFTAKE_LEDGER in scopes:
        profile["offtake_ledger"] = _offtake(producer.id)
    return profile


def _program_record(producer_id: int) -> dict:
    by_enrollment: dict[int, list[Milestone]] = {}
    for milestone in _milestones(producer_id):
        by_enrollment.setdefault(milestone.enrollment_id, []).append(milestone)
    enrollments = []
    for enrollment in _enrollments(producer_id):
        milestones = by_enrollment.get(enrollment.id, [])
        enrollments.append(
            {
                "program": enrollment.program.name,
                "program_kind": enrollment.program.kind,
                "state": enrollment.state,
                "enrolled_on": enrollment.enrolled_on.isoformat()
                if enrollment.enrolled_on
                else None,
                "progress_percent": enrollment.progress,
                "at_risk": enrollment.at_risk,
                "milestones": [
                    {
                        "name": m.name,
                        "status": m.status,
                        "due_date": m.due_date.isoformat(),
                        "verified_on": m.verified_at.date().isoformat() if m.verified_at else None,
                    }
                    for m in milestones
                ],
            }
        )
    viability = impact.assessments(producer_id, limit=1)
    latest = viability[0] if viability else None
    return {
        "enrollments": enrollments,
        "milestones_verified": sum(
            1 for ms in by_enrollment.values() for m in ms if m.status == MilestoneStatus.VERIFIED
        ),
        "viability": {
            "assessed_on": latest.assessed_on.isoformat(),
            "scores": {
                "knowledge": latest.knowledge,
                "commercial_information": latest.commercial_information,
                "contacts": latest.contacts,
                "business_engineering": latest.business_engineering,
                "network_articulation": latest.network_articulation,
                "sustainable_practices": latest.sustainable_practices,
            },
            "scale": "0-4",
        }
        if latest
        else None,
    }


def _figures(producer_id: int, day: date) -> dict:
    rows = impact.snapshots(producer_id, limit=FIGURE_MONTHS)
    status = impact.reproduction_status(rows, day)
    return {
        "months": [
            {
                "month": r.month.isoformat()[:7],
                "sales": decimal_amount(r.sales),
                "costs": decimal_amount(r.costs),
                "household_withdrawals": decimal_amount(r.household_withdrawals),
                "reinvestment": decimal_amount(r.reinvestment),
                "assets": decimal_amount(r.assets),
                "debt": decimal_amount(r.debt),
                "employees": r.employees,
            }
            for r in rows
        ],
        "reproduction": {
            "status": status.status,
            "rule": status.rule,
            "months_read": status.months,
            "surplus": decimal_amount(status.surplus),
        },
    }


def _offtake(producer_id: int) -> dict:
    purchases, totals = impact.offtake(producer_id, limit=24)
    return {
        "purchases": totals.purchases,
        "amount": decimal_amount(totals.amount),
        "on_time_share": round(totals.on_time_share, 3),
        "quality_accepted_share": round(totals.quality_share, 3),
        "latest": [
            {
                "date": p.purchased_on.isoformat(),
                "product": p.product,
                "quantity": p.quantity,
                "unit": p.unit,
                "amount": decimal_amount(p.amount),
                "on_time": p.on_time,
                "quality_accepted": p.quality_accepted,
            }
            for p in purchases
        ],
    }


def canonical(profile: dict) -> bytes:
    """The bytes the digest is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(profile, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(profile: dict) -> str:
    """The SHA-256 of a profile's canonical form, in hex."""
    return hashlib.sha256(canonical(profile)).hexdigest()
