"""Economic snapshots, the reproduction status, viability diagnostics and the offtake ledger."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from typing import Any, NamedTuple

from flask_babel import gettext as _
from sqlalchemy import Integer, Select, bindparam, cast, func, select
from sqlalchemy.orm import joinedload

from inclusive.audit.services import record
from inclusive.auth.models import User
from inclusive.babelcache import lazy_gettext as _l
from inclusive.extensions import db
from inclusive.impact.models import (
    VIABILITY_FACTORS,
    EconomicSnapshot,
    OfftakePurchase,
    ViabilityAssessment,
)
from inclusive.milestones.models import Enrollment, EnrollmentState
from inclusive.programs.models import OFFTAKE_KINDS, Program
from inclusive.refusals import Refused
from inclusive.tenancy.reads import ORG_ID, org_rows, org_statement
from inclusive.timeutil import utcnow

MONEY_FIELDS = ("sales", "costs", "household_withdrawals", "reinvestment", "assets", "debt")
MAX_MONEY = 10**13  # hundredths: 100 billion units, far beyond any micro producer

FACTOR_LABELS = {
    "knowledge": _l("Access to knowledge"),
    "commercial_information": _l("Commercial information"),
    "contacts": _l("Contacts"),
    "business_engineering": _l("Business engineering"),
    "network_articulation": _l("Articulation with the productive network"),
    "sustainable_practices": _l("Sustainable practices"),
}
FACTOR_GUIDANCE = {
    "knowledge": _l(
        "Does the producer know the techniques, standards and rules of their trade "
        "today, and where to learn what they lack?"
    ),
    "commercial_information": _l(
        "Do they know prices, buyers, demand and good opportunities before they produce?"
    ),
    "contacts": _l("Do they have suppliers, buyers, advisors and peers to call on?"),
    "business_engineering": _l(
        "Do they keep records, cost their products, plan production "
        "and separate household from business money?"
    ),
    "network_articulation": _l(
        "Do they hold a stable place in a promising productive network "
        "(a lead corporation, a franchise, an agro-industry, a consortium)?"
    ),
    "sustainable_practices": _l(
        "Do they produce without exhausting soil, water, people or the community they depend on?"
    ),
}
LEVEL_LABELS = {
    0: _l("0 - absent"),
    1: _l("1 - incipient"),
    2: _l("2 - developing"),
    3: _l("3 - established"),
    4: _l("4 - strong"),
}


class FiguresError(Refused):
    """Figures that are refused; ``errors`` maps fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


THOUSANDS_WITH_DOTS = re.compile(r"-?[1-9]\d{0,2}(\.\d{3})+")


def to_hundredths(value: Any) -> int:
    """Parse an amount typed by a person (1234.5, 1.234,50, 1,234.50) into hundredths."""
    if isinstance(value, int):
        return value * 100
    if isinstance(value, Decimal):
        return int((value * 100).to_integral_value(ROUND_HALF_UP))
    text = str(value).strip().replace(" ", "")
    if not text:
        raise ValueError("empty")
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):  # 1.234,50
            text = text.replace(".", "").replace(",", ".")
        else:  # 1,234.50
            text = text.replace(",", "")
    elif "," in text:
        head, _sep, tail = text.rpartition(",")
        text = f"{head.replace(',', '')}.{tail}" if len(tail) <= 2 else text.replace(",", "")
    elif THOUSANDS_WITH_DOTS.fullmatch(text):  # 1.234 and 1.234.567, as es and pt write them
        text = text.replace(".", "")
    if "e" in text.lower():
        raise ValueError("exponents are not amounts")
    try:
        amount = Decimal(text)
        if not amount.is_finite() or abs(amount) > MAX_MONEY:
            raise ValueError("not a plausible amount")
        return int((amount * 100).to_integral_value(ROUND_HALF_UP))
    except DecimalException as exc:
        raise ValueError("not a number") from exc


def month_start(day: date) -> date:
    return day.replace(day=1)


def save_snapshot(
    producer_id: int, month: date, figures: dict[str, Any], actor_id: int
) -> EconomicSnapshot:
    """Record (or correct) a producer's figures for a month."""
    errors: dict[str, str] = {}
    values: dict[str, int] = {}
    for name in MONEY_FIELDS:
        try:
            amount = to_hundredths(figures.get(name, ""))
        except ValueError:
            errors[name] = _("Enter an amount, such as 1250.50.")
            continue
        if amount < 0:
            errors[name] = _("Amounts cannot be negative.")
        elif amount > MAX_MONEY:
            errors[name] = _("This amount is not plausible for a micro or small producer.")
        values[name] = amount
    try:
        employees = int(str(figures.get("employees", "0")).strip() or 0)
        if not 0 <= employees <= 250:
            raise ValueError
    except ValueError:
        errors["employees"] = _("A whole number from 0 to 250.")
        employees = 0
    month = month_start(month)
    if month > month_start(utcnow().date()):
        errors["month"] = _("Figures are recorded for past or current months only.")
    if not errors and values["costs"] > 0 and values["sales"] > 50 * values["costs"] > 0:
        errors["sales"] = _("Sales are more than 50 times the costs: check the figures.")
    if errors:
        raise FiguresError(errors)
    snapshot = db.session.scalar(
        select(EconomicSnapshot).filter_by(producer_id=producer_id, month=month)
    )
    action = "snapshot.corrected" if snapshot else "snapshot.recorded"
    if snapshot is None:
        snapshot = EconomicSnapshot(producer_id=producer_id, month=month)
        db.session.add(snapshot)
    for name, amount in values.items():
        setattr(snapshot, name, amount)
    snapshot.employees = employees
    snapshot.entered_by_id = actor_id
    snapshot.entered_at = utcnow()
    db.session.flush()
    record(
        action,
        producer_id=producer_id,
        month=month.isoformat(),
        **{k: v / 100 for k, v in values.items()},
        employees=employees,
        actor_id=actor_id,
    )
    return snapshot


def snapshots(producer_id: int, limit: int = 24) -> list[EconomicSnapshot]:
    """A producer's latest monthly figures, oldest first."""
    rows = db.session.scalars(
        select(EconomicSnapshot)
        .options(joinedload(EconomicSnapshot.entered_by))  # each row names who entered it
        .filter_by(producer_id=producer_id)
        .order_by(EconomicSnapshot.month.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


# The reproduction rule -----------------------------------------------------------------------

RULE_VERSION = "reproduction-v1"
WINDOW_MONTHS = 6
MIN_MONTHS = 3
TOLERANCE = Decimal("0.02")  # surpluses within 2% of sales count as break-even
REINVESTMENT_SHARE = Decimal("0.05")  # reinvesting at least 5% of costs means growing

REPRODUCTION_LABELS = {
    "deficit": _l("Deficit reproduction"),
    "simple": _l("Simple reproduction"),
    "amplified": _l("Amplified reproduction"),
    "unknown": _l("Unknown"),
}
REPRODUCTION_HELP = {
    "deficit": _l(
        "Income does not cover what it takes to keep producing and to live: capital shrinks."
    ),
    "simple": _l(
        "Income covers what it takes to keep producing and no more: the producer stands still."
    ),
    "amplified": _l("A surplus is reinvested: the producer's capacity grows."),
    "unknown": _l("Fewer than three months of figures in the last six months."),
}


@dataclass(frozen=True)
class Reproduction:
    """The reproduction status at a month, with the figures behind it."""

    status: str
    month: date
    months: int
    sales: int
    costs: int
    household_withdrawals: int
    reinvestment: int
    surplus: int
    rule: str = RULE_VERSION


def reproduction_status(rows: list[EconomicSnapshot], at: date) -> Reproduction:
    """Classify the six months up to ``at`` (rule ``reproduction-v1``, see docs/reproduction.md).

    surplus = sales - costs - household withdrawals, summed over the window.
    Fewer than 3 months of figures: unknown. A surplus below -2% of sales: deficit.
    A surplus above +2% of sales with reinvestment of at least 5% of costs: amplified.
    Anything else (break-even, or a surplus that is not reinvested): simple.
    """
    at = month_start(at)
    index = at.year * 12 + at.month - 1 - (WINDOW_MONTHS - 1)
    first = date(index // 12, index % 12 + 1, 1)
    window = [r for r in rows if first <= r.month <= at]
    sales = sum(r.sales for r in window)
    costs = sum(r.costs for r in window)
    withdrawals = sum(r.household_withdrawals for r in window)
    reinvestment = sum(r.reinvestment for r in window)
    surplus = sales - costs - withdrawals
    if len(window) < MIN_MONTHS:
        status = "unknown"
    elif surplus < -TOLERANCE * sales or (sales == 0 and surplus < 0):
        status = "deficit"
    elif (
        surplus > TOLERANCE * sales
        and reinvestment >= REINVESTMENT_SHARE * costs
        and reinvestment > 0
    ):
        status = "amplified"
    else:
        status = "simple"
    return Reproduction(status, at, len(window), sales, costs, withdrawals, reinvestment, surplus)


def reproduction_history(rows: list[EconomicSnapshot]) -> list[Reproduction]:
    """The status at every month that has figures, oldest first."""
    return [reproduction_status(rows, r.month) for r in rows]


# Viability diagnostics -------------------------------------------------------------------------


def save_assessment(
    producer_id: int, assessed_on: date, scores: dict[str, Any], notes: str, actor_id: int
) -> ViabilityAssessment:
    """Record a viability diagnostic (six factors, 0 to 4)."""
    errors = {}
    clean = {}
    for factor in VIABILITY_FACTORS:
        try:
            value = int(scores.get(factor, ""))
            if not 0 <= value <= 4:
                raise ValueError
            clean[factor] = value
        except (TypeError, ValueError):
            errors[factor] = _("Choose a score from 0 to 4.")
    if assessed_on > utcnow().date():
        errors["assessed_on"] = _("The date cannot be in the future.")
    if errors:
        raise FiguresError(errors)
    assessment = ViabilityAssessment(
        producer_id=producer_id,
        assessed_on=assessed_on,
        notes=notes.strip(),
        assessed_by_id=actor_id,
        **clean,
    )
    db.session.add(assessment)
    db.session.flush()
    record(
        "assessment.recorded",
        producer_id=producer_id,
        assessed_on=assessed_on.isoformat(),
        total=assessment.total,
        **clean,
        actor_id=actor_id,
    )
    return assessment


def assessments(producer_id: int, limit: int = 12) -> list[ViabilityAssessment]:
    """A producer's latest diagnostics, oldest first."""
    rows = db.session.scalars(
        select(ViabilityAssessment)
        .filter_by(producer_id=producer_id)
        .order_by(ViabilityAssessment.assessed_on.desc(), ViabilityAssessment.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


# Offtake ledger -------------------------------------------------------------------------------


def offtake_programs_of(producer_id: int) -> list[Program]:
    """The producer's programs whose counterpart buys from them."""
    query = (
        select(Program)
        .join(Enrollment, Enrollment.program_id == Program.id)
        .where(Enrollment.producer_id == producer_id, Program.kind.in_(OFFTAKE_KINDS))
        .order_by(Program.name)
    )
    return list(db.session.scalars(query))


def record_purchase(
    producer_id: int, program: Program, fields: dict[str, Any], actor_id: int
) -> OfftakePurchase:
    """Record a purchase by the program's counterpart from an enrolled producer."""
    errors: dict[str, str] = {}
    if program.kind not in OFFTAKE_KINDS:
        errors["program_id"] = _("Only supplier programs and rural networks keep a ledger.")
    state = db.session.scalar(
        select(Enrollment.state).filter_by(program_id=program.id, producer_id=producer_id)
    )
    if state is None or state in (EnrollmentState.APPLIED, EnrollmentState.WAITLISTED):
        errors["program_id"] = _("The producer is not enrolled in this program.")
    purchased_on = fields.get("purchased_on")
    if not isinstance(purchased_on, date):
        errors["purchased_on"] = _("Enter a date.")
    elif purchased_on > utcnow().date():
        errors["purchased_on"] = _("The date cannot be in the future.")
    product = str(fields.get("product", "")).strip()
    if not product:
        errors["product"] = _("Name the product.")
    try:
        quantity = float(str(fields.get("quantity", "")).replace(",", "."))
        if not 0 < quantity < 10**9:
            raise ValueError
    except ValueError:
        errors["quantity"] = _("A quantity above zero.")
        quantity = 0.0
    try:
        unit_price = to_hundredths(fields.get("unit_price", ""))
        if unit_price < 0:
            errors["unit_price"] = _("Amounts cannot be negative.")
    except ValueError:
        errors["unit_price"] = _("Enter an amount, such as 1250.50.")
        unit_price = 0
    if not errors and quantity * unit_price > MAX_MONEY:
        errors["unit_price"] = _("This amount is not plausible for a micro or small producer.")
    if errors:
        raise FiguresError(errors)
    purchase = OfftakePurchase(
        producer_id=producer_id,
        program_id=program.id,
        purchased_on=purchased_on,
        product=product[:120],
        quantity=quantity,
        unit=str(fields.get("unit") or "kg")[:20],
        unit_price=unit_price,
        amount=round(quantity * unit_price),
        on_time=bool(fields.get("on_time")),
        quality_accepted=bool(fields.get("quality_accepted")),
        recorded_by_id=actor_id,
        note=str(fields.get("note") or "")[:200],
    )
    db.session.add(purchase)
    db.session.flush()
    record(
        "offtake.recorded",
        producer_id=producer_id,
        program_id=program.id,
        product=product,
        quantity=quantity,
        amount=purchase.amount / 100,
        actor_id=actor_id,
    )
    return purchase


@dataclass(frozen=True)
class OfftakeTotals:
    purchases: int
    amount: int
    on_time_share: float
    quality_share: float


def offtake(producer_id: int, limit: int = 20) -> tuple[list[OfftakePurchase], OfftakeTotals]:
    """A producer's latest purchases and the totals of all of them."""
    rows = list(
        db.session.scalars(
            select(OfftakePurchase)
            .filter_by(producer_id=producer_id)
            .order_by(OfftakePurchase.purchased_on.desc(), OfftakePurchase.id.desc())
            .limit(limit)
        )
    )
    n, amount, on_time, quality = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(OfftakePurchase.amount), 0),
            func.coalesce(func.sum(func.cast(OfftakePurchase.on_time, db.Integer)), 0),
            func.coalesce(func.sum(func.cast(OfftakePurchase.quality_accepted, db.Integer)), 0),
        ).where(OfftakePurchase.producer_id == producer_id)
    ).one()
    totals = OfftakeTotals(n, int(amount), (on_time / n) if n else 0.0, (quality / n) if n else 0.0)
    return rows, totals


# The producer page's panels ---------------------------------------------------------------
#
# Core statements of explicit columns, built once, the organization bound from the tenant
# scope (see inclusive.tenancy.reads): the ORM's entities cost the page more than the rows.


class _Named(NamedTuple):
    name: str


class MonthFigures(NamedTuple):
    """A month's figures as the producer page shows them (and the reproduction rule reads)."""

    month: date
    sales: int
    costs: int
    household_withdrawals: int
    reinvestment: int
    assets: int
    debt: int
    employees: int
    entered_by: _Named | None


class Diagnostic(NamedTuple):
    """A viability diagnostic as the producer page shows it."""

    assessed_on: date
    knowledge: int
    commercial_information: int
    contacts: int
    business_engineering: int
    network_articulation: int
    sustainable_practices: int
    notes: str

    scores = ViabilityAssessment.scores
    total = ViabilityAssessment.total


class Purchase(NamedTuple):
    """A purchase as the producer page's ledger shows it."""

    purchased_on: date
    product: str
    quantity: float
    unit: str
    unit_price: int
    amount: int
    on_time: bool
    quality_accepted: bool


@functools.cache
def _panel_statements() -> tuple[Select, Select, Select]:
    s, a, o, u = (
        EconomicSnapshot.__table__,
        ViabilityAssessment.__table__,
        OfftakePurchase.__table__,
        User.__table__,
    )
    figures = (
        select(*(s.c[name] for name in MonthFigures._fields[:-1]), u.c.name)
        .outerjoin(u, u.c.id == s.c.entered_by_id)
        .where(s.c.org_id == bindparam(ORG_ID), s.c.producer_id == bindparam("producer_id"))
        .order_by(s.c.month.desc())
        .limit(bindparam("limit"))
    )
    diagnostics = (
        select(*(a.c[name] for name in Diagnostic._fields))
        .where(a.c.org_id == bindparam(ORG_ID), a.c.producer_id == bindparam("producer_id"))
        .order_by(a.c.assessed_on.desc(), a.c.id.desc())
        .limit(bindparam("limit"))
    )
    # The totals of all the purchases ride along each of the latest (computed before LIMIT).
    ledger = (
        select(
            *(o.c[name] for name in Purchase._fields),
            func.count().over(),
            func.sum(o.c.amount).over(),
            func.sum(cast(o.c.on_time, Integer)).over(),
            func.sum(cast(o.c.quality_accepted, Integer)).over(),
        )
        .where(o.c.org_id == bindparam(ORG_ID), o.c.producer_id == bindparam("producer_id"))
        .order_by(o.c.purchased_on.desc(), o.c.id.desc())
        .limit(bindparam("limit"))
    )
    return org_statement(figures), org_statement(diagnostics), org_statement(ledger)


#: How many of each a producer page shows: months of figures, diagnostics, purchases.
PAGE_LIMITS = (24, 12, 20)


@functools.cache
def page_statements() -> tuple[Select, Select, Select]:
    """The figures', diagnostics' and ledger's statements with the page's limits (for a
    bundle of the producer page's reads: their ``limit`` parameters would collide)."""
    return tuple(  # type: ignore[return-value]
        org_statement(statement.limit(limit))
        for statement, limit in zip(_panel_statements(), PAGE_LIMITS, strict=True)
    )


def month_figures(producer_id: int, limit: int = PAGE_LIMITS[0]) -> list[MonthFigures]:
    """A producer's latest monthly figures, oldest first (what ``snapshots`` gives the page)."""
    return figures_from_rows(org_rows(_panel_statements()[0], producer_id=producer_id, limit=limit))


def figures_from_rows(rows: Sequence[Sequence[Any]]) -> list[MonthFigures]:
    """The figures of the rows of the figures' statement (newest first), oldest first."""
    return [
        MonthFigures(*row[:-1], _Named(row[-1]) if row[-1] is not None else None)
        for row in reversed(rows)
    ]


def diagnostics(producer_id: int, limit: int = PAGE_LIMITS[1]) -> list[Diagnostic]:
    """A producer's latest diagnostics, oldest first (what ``assessments`` gives the page)."""
    return diagnostics_from_rows(
        org_rows(_panel_statements()[1], producer_id=producer_id, limit=limit)
    )


def diagnostics_from_rows(rows: Sequence[Sequence[Any]]) -> list[Diagnostic]:
    """The diagnostics of the rows of their statement (newest first), oldest first."""
    return [Diagnostic(*row) for row in reversed(rows)]


def ledger(producer_id: int, limit: int = PAGE_LIMITS[2]) -> tuple[list[Purchase], OfftakeTotals]:
    """A producer's latest purchases and the totals of all of them, in one query (what
    ``offtake`` gives the page)."""
    return ledger_from_rows(org_rows(_panel_statements()[2], producer_id=producer_id, limit=limit))


def ledger_from_rows(rows: Sequence[Sequence[Any]]) -> tuple[list[Purchase], OfftakeTotals]:
    """The purchases and totals of the rows of the ledger's statement."""
    if not rows:
        return [], OfftakeTotals(0, 0, 0.0, 0.0)
    n, amount, on_time, quality = rows[0][-4:]
    totals = OfftakeTotals(n, int(amount), on_time / n, quality / n)
    return [Purchase(*row[:-4]) for row in rows], totals
