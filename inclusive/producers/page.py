"""The producer page's own reads: the producer, its programs, plans and timeline.

Core statements of explicit columns, built once, run on the session's connection with the
organization bound from the tenant scope (see inclusive.tenancy.reads): the ORM's entities,
loaders and identity map cost the page more Python than the rows themselves."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from flask import abort
from sqlalchemy import Select, and_, bindparam, select

from inclusive.audit.models import AuditEvent
from inclusive.auth.models import User
from inclusive.consents import services as consent_services
from inclusive.consents.services import ListedConsent
from inclusive.impact import services as impact
from inclusive.milestones.models import Enrollment, Milestone
from inclusive.producers.models import Producer, ProducerSector
from inclusive.programs.models import Program
from inclusive.referrals import services as referral_services
from inclusive.referrals.services import ListedReferral
from inclusive.tenancy.reads import ORG_ID, org_bundle, org_rows, org_statement
from inclusive.tenancy.web import MAX_ID


class ShownProducer(NamedTuple):
    """The producer the page is about: its details and its sectors (in sector order)."""

    id: int
    kind: str
    name: str
    national_id: str | None
    representative: str
    owner_gender: str
    phone: str
    email: str
    region: str
    municipality: str
    employees: int
    formally_registered: bool
    notes: str
    sectors: list[str]


class ListedProgram(NamedTuple):
    """A program of the organization: for the enroll form and the plans' headings."""

    id: int
    name: str
    status: str
    kind: str

    keeps_offtake_ledger = Program.keeps_offtake_ledger


class PlanMilestone(NamedTuple):
    """A milestone as the producer's plan lists it."""

    id: int
    name: str
    status: str
    due_date: date
    evidence_required: bool

    is_done = Milestone.is_done
    is_overdue = Milestone.is_overdue


class Plan(NamedTuple):
    """An enrollment of the producer, with its program and its milestones in plan order."""

    id: int
    program_id: int
    state: str
    state_reason: str
    enrolled_on: date | None
    at_risk: bool
    progress: int
    program: ListedProgram
    milestones: list[PlanMilestone]


class _Named(NamedTuple):
    name: str


class TimelineEvent(NamedTuple):
    """An audit event as the producer's timeline shows it."""

    at: datetime
    action: str
    details: dict[str, Any]
    actor: _Named | None


_PLAN_COLUMNS = len(Plan._fields) - 2


@functools.cache
def _producer_statement() -> Select:
    p, s = Producer.__table__, ProducerSector.__table__
    return org_statement(
        select(*(p.c[f] for f in ShownProducer._fields[:-1]), s.c.sector)
        .outerjoin(s, and_(s.c.producer_id == p.c.id, s.c.org_id == p.c.org_id))
        .where(p.c.org_id == bindparam(ORG_ID), p.c.id == bindparam("producer_id"))
        .order_by(s.c.sector)
    )


def producer_from_rows(rows: Sequence[Sequence[Any]]) -> ShownProducer | None:
    """The producer of the rows of its statement (a row per sector), or None."""
    if not rows:
        return None
    return ShownProducer(*rows[0][:-1], [row[-1] for row in rows if row[-1] is not None])


def producer_page(producer_id: int) -> PageReads:
    """The producer page's reads (:func:`page_reads`) of the producer of the organization in
    scope with that id, or 404 (as load_or_404: another organization's is not found)."""
    if not 0 < producer_id <= MAX_ID:
        abort(404)
    reads = page_reads(producer_id)
    if reads.producer is None:
        abort(404)
    return reads


@functools.cache
def _statements() -> tuple[Select, Select, Select]:
    p, e, m = Program.__table__, Enrollment.__table__, Milestone.__table__
    a, u = AuditEvent.__table__, User.__table__
    programs = (
        select(*(p.c[f] for f in ListedProgram._fields))
        .where(p.c.org_id == bindparam(ORG_ID))
        .order_by(p.c.name)
    )
    plans = (
        select(
            *(e.c[f] for f in Plan._fields[:_PLAN_COLUMNS]),
            *(m.c[f] for f in PlanMilestone._fields),
        )
        .select_from(e)
        .outerjoin(m, and_(m.c.enrollment_id == e.c.id, m.c.org_id == bindparam(ORG_ID)))
        .where(e.c.org_id == bindparam(ORG_ID), e.c.producer_id == bindparam("producer_id"))
        .order_by(e.c.id, m.c.position)
    )
    events = (
        select(a.c.at, a.c.action, a.c.details, u.c.name)
        .outerjoin(u, u.c.id == a.c.actor_id)
        .where(a.c.org_id == bindparam(ORG_ID), a.c.producer_id == bindparam("producer_id"))
        .order_by(a.c.at.desc(), a.c.id.desc())
        .limit(100)
    )
    return org_statement(programs), org_statement(plans), org_statement(events)


def programs() -> list[ListedProgram]:
    """The organization's programs, by name."""
    return [ListedProgram(*row) for row in org_rows(_statements()[0])]


def plans_from_rows(rows: Sequence[Sequence[Any]], programs: list[ListedProgram]) -> list[Plan]:
    """The plans of the rows of the plans' statement (an enrollment's row per milestone)."""
    by_id = {p.id: p for p in programs}
    found: dict[int, Plan] = {}
    for row in rows:
        plan = found.get(row[0])
        if plan is None:
            head = row[:_PLAN_COLUMNS]
            plan = found[row[0]] = Plan(*head, by_id[row[1]], [])
        if row[_PLAN_COLUMNS] is not None:
            plan.milestones.append(PlanMilestone(*row[_PLAN_COLUMNS:]))
    return list(found.values())


def timeline_from_rows(rows: Sequence[Sequence[Any]]) -> list[TimelineEvent]:
    """The events of the rows of the timeline's statement."""
    return [
        TimelineEvent(at, action, details, _Named(actor) if actor is not None else None)
        for at, action, details, actor in rows
    ]


class PageReads(NamedTuple):
    """The producer page's reads."""

    producer: ShownProducer | None
    programs: list[ListedProgram]
    plans: list[Plan]
    figures: list[Any]
    events: list[TimelineEvent]
    purchases: list[Any]
    totals: Any
    diagnostics: list[Any]
    consents: list[ListedConsent]
    referrals: list[ListedReferral]


def page_reads(producer_id: int) -> PageReads:
    """The producer (with its sectors; None when the organization has no such producer),
    the organization's programs (as :func:`programs`), the producer's plans (enrollments
    with their milestones), its latest 100 audit events, the impact panels (figures,
    diagnostics, ledger, as their ``impact`` reads give them), its consents and its
    referrals (as the consents and referrals panels list them): in one round trip on
    PostgreSQL (``org_bundle``)."""
    programs_, plans_, events = _statements()
    figures, diagnostics, ledger = impact.page_statements()
    rows = org_bundle(
        {
            "producer": _producer_statement(),
            "programs": programs_,
            "plans": plans_,
            "events": events,
            "figures": figures,
            "diagnostics": diagnostics,
            "ledger": ledger,
            "consents": consent_services.producer_consents_statement(),
            "referrals": referral_services.producer_referrals_statement(),
        },
        producer_id=producer_id,
    )
    listed = [ListedProgram(*row) for row in rows["programs"]]
    purchases, totals = impact.ledger_from_rows(rows["ledger"])
    return PageReads(
        producer_from_rows(rows["producer"]),
        listed,
        plans_from_rows(rows["plans"], listed),
        impact.figures_from_rows(rows["figures"]),
        timeline_from_rows(rows["events"]),
        purchases,
        totals,
        impact.diagnostics_from_rows(rows["diagnostics"]),
        consent_services.consents_from_rows(rows["consents"]),
        referral_services.referrals_from_rows(rows["referrals"]),
    )
