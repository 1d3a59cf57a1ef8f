"""Programs, their counterparts, assigned field officers and milestone templates."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.schema import one_of
from inclusive.tenancy.keys import tenant_fk, tenant_key
from inclusive.tenancy.scope import TenantMixin
from inclusive.timeutil import utcnow


class ProgramKind(StrEnum):
    SUPPLIER_PROGRAM = "supplier_program"
    FRANCHISE_SYSTEM = "franchise_system"
    SERVICE_CENTER = "service_center"
    EXPORT_CONSORTIUM = "export_consortium"
    RURAL_NETWORK = "rural_network"
    TECHNOLOGY_LINKAGE = "technology_linkage"


class ProgramStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    RUNNING = "running"
    CLOSED = "closed"


class CounterpartKind(StrEnum):
    LEAD_CORPORATION = "lead_corporation"
    FRANCHISOR = "franchisor"
    AGRO_INDUSTRY = "agro_industry"
    INSTITUTE = "institute"
    OTHER = "other"


#: Kinds whose counterpart buys from the producers (they keep an offtake ledger).
OFFTAKE_KINDS = frozenset({ProgramKind.SUPPLIER_PROGRAM, ProgramKind.RURAL_NETWORK})


class Program(TenantMixin, db.Model):
    """A structured intervention: a cohort of producers following one milestone plan."""

    __tablename__ = "programs"
    __table_args__ = (
        tenant_key(),
        CheckConstraint(one_of("kind", ProgramKind), name="kind"),
        CheckConstraint(one_of("status", ProgramStatus), name="status"),
        CheckConstraint(one_of("counterpart_kind", CounterpartKind), name="counterpart_kind"),
        CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR end_date >= start_date", name="dates"
        ),
        Index("ix_programs_org_status", "org_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(160))
    description: Mapped[str] = mapped_column(Text, default="")
    region: Mapped[str] = mapped_column(String(120), default="")
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(10), default=ProgramStatus.DRAFT)
    counterpart_kind: Mapped[str] = mapped_column(String(20), default=CounterpartKind.OTHER)
    counterpart_name: Mapped[str] = mapped_column(String(160), default="")
    counterpart_contact: Mapped[str] = mapped_column(String(160), default="")
    counterpart_email: Mapped[str] = mapped_column(String(254), default="")
    counterpart_phone: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    steps: Mapped[list[TemplateStep]] = relationship(
        order_by="TemplateStep.position",
        cascade="all, delete-orphan",
        foreign_keys="TemplateStep.program_id",
        overlaps="program",
    )

    @property
    def keeps_offtake_ledger(self) -> bool:
        return self.kind in OFFTAKE_KINDS


class ProgramOfficer(TenantMixin, db.Model):
    """A field officer assigned to a program (they record progress for its producers)."""

    __tablename__ = "program_officers"
    __table_args__ = (
        tenant_fk("program_id", "programs"),
        UniqueConstraint("program_id", "user_id"),
        Index("ix_program_officers_org_user", "org_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class TemplateStep(TenantMixin, db.Model):
    """One step of a program's milestone template; enrolling copies the steps."""

    __tablename__ = "template_steps"
    __table_args__ = (
        tenant_key(),
        tenant_fk("program_id", "programs"),
        CheckConstraint("offset_days >= 0", name="offset"),
        CheckConstraint("weight > 0", name="weight"),
        Index("ix_template_steps_program_position", "program_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int]
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(160))
    offset_days: Mapped[int]
    weight: Mapped[int] = mapped_column(default=1)
    evidence_required: Mapped[bool] = mapped_column(default=False)
    # Milestones of this step in live and graduated plans, and how many are done: kept by
    # the plan services in the same transaction, so the program page reads, never counts.
    plans_total: Mapped[int] = mapped_column(default=0)
    plans_done: Mapped[int] = mapped_column(default=0)

    program: Mapped[Program] = relationship(
        foreign_keys="TemplateStep.program_id", overlaps="steps", viewonly=True
    )


class ProgramStateCount(TenantMixin, db.Model):
    """How many enrollments of a program are in a state (kept by the plan services)."""

    __tablename__ = "program_state_counts"
    __table_args__ = (
        tenant_fk("program_id", "programs"),
        UniqueConstraint("program_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int]
    state: Mapped[str] = mapped_column(String(12))
    n: Mapped[int] = mapped_column(default=0)
