"""The program page's reads: the program with its steps, its cohort, officers, state counts
and the officers to assign.

Core statements of explicit columns, built once, run on the session's connection with the
organization bound from the tenant scope (see inclusive.tenancy.reads): the ORM's work per
statement cost the page more Python than the rows themselves."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from flask import abort
from sqlalchemy import Integer, Select, String, and_, bindparam, literal, select

from inclusive.auth.models import User
from inclusive.milestones.models import Enrollment, EnrollmentState
from inclusive.producers.models import Producer
from inclusive.programs.models import Program, ProgramOfficer, ProgramStateCount, TemplateStep
from inclusive.tenancy.models import Membership
from inclusive.tenancy.reads import ORG_ID, org_bundle, org_rows, org_statement, written
from inclusive.tenancy.roles import Role
from inclusive.tenancy.web import MAX_ID


class ShownStep(NamedTuple):
    """A step of the program's template, with its completion counters."""

    id: int
    position: int
    name: str
    plans_done: int
    plans_total: int


class ShownProgram(NamedTuple):
    """The program the page is about, with its template's steps in plan order."""

    id: int
    kind: str
    name: str
    description: str
    region: str
    start_date: date | None
    end_date: date | None
    status: str
    counterpart_kind: str
    counterpart_name: str
    counterpart_contact: str
    counterpart_email: str
    counterpart_phone: str
    steps: list[ShownStep]


_PROGRAM_COLUMNS = len(ShownProgram._fields) - 1


@functools.cache
def _program_statement() -> Select:
    p, s = Program.__table__, TemplateStep.__table__
    return org_statement(
        select(
            *(p.c[f] for f in ShownProgram._fields[:_PROGRAM_COLUMNS]),
            *(s.c[f] for f in ShownStep._fields),
        )
        .outerjoin(s, and_(s.c.program_id == p.c.id, s.c.org_id == p.c.org_id))
        .where(p.c.org_id == bindparam(ORG_ID), p.c.id == bindparam("program_id"))
        .order_by(s.c.position)
    )


def program_or_404(program_id: int) -> ShownProgram:
    """The program of the organization in scope with that id, or 404 (as load_or_404)."""
    if not 0 < program_id <= MAX_ID:
        abort(404)
    rows = org_rows(_program_statement(), program_id=program_id)
    if not rows:
        abort(404)
    steps = [
        ShownStep(*row[_PROGRAM_COLUMNS:]) for row in rows if row[_PROGRAM_COLUMNS] is not None
    ]
    return ShownProgram(*rows[0][:_PROGRAM_COLUMNS], steps)


@dataclass(slots=True)
class CohortRow:
    """An enrollment as the program page lists it (columns, not ORM objects)."""

    id: int
    producer_id: int
    state: str
    progress: int
    at_risk: bool
    producer_name: str


class _Named(NamedTuple):
    name: str


class Officer(NamedTuple):
    """A field officer assigned to the program."""

    user_id: int
    user: _Named


class _Statements(NamedTuple):
    cohort: Select
    cohort_in_state: Select
    at_risk: Select
    officers: Select
    state_counts: Select
    field_officers: Select


@functools.cache
def _statements() -> _Statements:
    e, p = Enrollment.__table__, Producer.__table__
    o, u = ProgramOfficer.__table__, User.__table__
    sc, m = ProgramStateCount.__table__, Membership.__table__
    # The organization, the program and the state are written into the SQL (``written``):
    # PostgreSQL plans the bundle once per program with the cohort's real size, where bound
    # it planned it again at every request (~1 ms), its generic plan estimated dearer.
    org_id, program_id = written(ORG_ID), written("program_id")
    base = (
        select(e.c.id, e.c.producer_id, e.c.state, e.c.progress, e.c.at_risk, p.c.name)
        .outerjoin(p, and_(p.c.id == e.c.producer_id, p.c.org_id == e.c.org_id))
        .where(e.c.org_id == org_id, e.c.program_id == program_id)
        .order_by(e.c.id)
    )
    # The bounds too (a statement per page): a LIMIT PostgreSQL cannot see made it plan the
    # query every time.
    page = base.offset(bindparam("offset", type_=Integer, literal_execute=True)).limit(
        bindparam("limit", type_=Integer, literal_execute=True)
    )
    officers = (
        select(o.c.user_id, u.c.name)
        .join(u, u.c.id == o.c.user_id)
        .where(o.c.org_id == org_id, o.c.program_id == program_id)
        .order_by(o.c.id)
    )
    counts = select(sc.c.state, sc.c.n).where(sc.c.org_id == org_id, sc.c.program_id == program_id)
    field_officers = (
        select(m.c.user_id, u.c.name)
        .join(u, u.c.id == m.c.user_id)
        .where(
            m.c.org_id == org_id,
            m.c.role == literal(Role.FIELD_OFFICER.value, String, literal_execute=True),
        )
        .order_by(m.c.id)
    )
    return _Statements(
        *(
            org_statement(s)
            for s in (
                page,
                page.where(e.c.state == written("state", String)),
                base.where(e.c.at_risk.is_(True)).limit(
                    bindparam("at_risk_limit", 20, literal_execute=True)
                ),
                officers,
                counts,
                field_officers,
            )
        )
    )


def officers(program_id: int) -> list[Officer]:
    """The field officers assigned to the program, with their names."""
    return [
        Officer(user_id, _Named(name))
        for user_id, name in org_rows(_statements().officers, program_id=program_id)
    ]


class Panels(NamedTuple):
    """The program page's reads after the program itself."""

    cohort: list[CohortRow]
    at_risk: list[CohortRow]
    officers: list[Officer]
    state_counts: dict[str, int]
    field_officers: list[tuple[int, str]]


def panels(program_id: int, offset: int, limit: int, state: str | None = None) -> Panels:
    """A page of the cohort (in one state, or all; enrollment order), its first 20 at risk,
    the officers assigned (as :func:`officers`), the counts per state (as
    ``plans.state_counts``) and the organization's field officers (as
    :func:`field_officers`): in one round trip on PostgreSQL (``org_bundle``)."""
    s = _statements()
    params: dict[str, Any] = {"program_id": program_id, "offset": offset, "limit": limit}
    if state is not None:
        if state not in set(EnrollmentState):  # written into the SQL: a known state only
            raise ValueError(f"Not an enrollment state: {state!r}")
        params["state"] = state
    rows = org_bundle(
        {
            "cohort": s.cohort if state is None else s.cohort_in_state,
            "at_risk": s.at_risk,
            "officers": s.officers,
            "state_counts": s.state_counts,
            "field_officers": s.field_officers,
        },
        **params,
    )
    return Panels(
        [CohortRow(*row) for row in rows["cohort"]],
        [CohortRow(*row) for row in rows["at_risk"]],
        [Officer(user_id, _Named(name)) for user_id, name in rows["officers"]],
        dict(rows["state_counts"]),
        rows["field_officers"],
    )


def field_officers() -> list[tuple[int, str]]:
    """The organization's field officers (user id, name), in the order they joined."""
    return [tuple(row) for row in org_rows(_statements().field_officers)]
