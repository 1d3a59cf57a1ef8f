"""A producer's economic figures, viability diagnostics and sales to the counterpart.

Money is stored in hundredths of the organization's currency (integers: exact on SQLite
and PostgreSQL alike).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.tenancy.keys import tenant_fk
from inclusive.tenancy.scope import TenantMixin
from inclusive.timeutil import utcnow

VIABILITY_FACTORS = (
    "knowledge",
    "commercial_information",
    "contacts",
    "business_engineering",
    "network_articulation",
    "sustainable_practices",
)


class EconomicSnapshot(TenantMixin, db.Model):
    """A producer's figures for one month."""

    __tablename__ = "economic_snapshots"
    __table_args__ = (
        tenant_fk("producer_id", "producers"),
        UniqueConstraint("org_id", "producer_id", "month"),
        CheckConstraint(
            "sales >= 0 AND costs >= 0 AND household_withdrawals >= 0 AND reinvestment >= 0 "
            "AND assets >= 0 AND employees >= 0 AND debt >= 0",
            name="non_negative",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    producer_id: Mapped[int]
    month: Mapped[date]  # the first day of the month
    sales: Mapped[int] = mapped_column(BigInteger)
    costs: Mapped[int] = mapped_column(BigInteger)
    household_withdrawals: Mapped[int] = mapped_column(BigInteger)
    reinvestment: Mapped[int] = mapped_column(BigInteger)
    assets: Mapped[int] = mapped_column(BigInteger)
    employees: Mapped[int]
    debt: Mapped[int] = mapped_column(BigInteger)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)

    entered_by: Mapped[User | None] = relationship()


class ViabilityAssessment(TenantMixin, db.Model):
    """A scored diagnostic along the seed's six viability factors, each 0 to 4."""

    __tablename__ = "viability_assessments"
    __table_args__ = (
        tenant_fk("producer_id", "producers"),
        *(CheckConstraint(f"{f} BETWEEN 0 AND 4", name=f) for f in VIABILITY_FACTORS),
        Index("ix_viability_assessments_org_producer", "org_id", "producer_id", "assessed_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    producer_id: Mapped[int]
    assessed_on: Mapped[date]
    knowledge: Mapped[int]
    commercial_information: Mapped[int]
    contacts: Mapped[int]
    business_engineering: Mapped[int]
    network_articulation: Mapped[int]
    sustainable_practices: Mapped[int]
    notes: Mapped[str] = mapped_column(Text, default="")
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    assessed_by: Mapped[User | None] = relationship()

    @property
    def scores(self) -> dict[str, int]:
        return {factor: getattr(self, factor) for factor in VIABILITY_FACTORS}

    @property
    def total(self) -> int:
        return sum(self.scores.values())


class OfftakePurchase(TenantMixin, db.Model):
    """A purchase by the program's counterpart from the producer."""

    __tablename__ = "offtake_purchases"
    __table_args__ = (
        tenant_fk("producer_id", "producers"),
        tenant_fk("program_id", "programs"),
        CheckConstraint("quantity > 0 AND unit_price >= 0 AND amount >= 0", name="amounts"),
        Index("ix_offtake_purchases_org_producer", "org_id", "producer_id", "purchased_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    producer_id: Mapped[int]
    program_id: Mapped[int] = mapped_column(index=True)
    purchased_on: Mapped[date]
    product: Mapped[str] = mapped_column(String(120))
    quantity: Mapped[float]
    unit: Mapped[str] = mapped_column(String(20), default="kg")
    unit_price: Mapped[int] = mapped_column(BigInteger)  # hundredths per unit
    amount: Mapped[int] = mapped_column(BigInteger)  # hundredths
    on_time: Mapped[bool] = mapped_column(default=True)
    quality_accepted: Mapped[bool] = mapped_column(default=True)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(String(200), default="")
