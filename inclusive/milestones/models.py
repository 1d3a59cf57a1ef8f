"""Enrollments of producers in programs, their milestone plans and the evidence."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.producers.models import Producer
from inclusive.programs.models import Program
from inclusive.schema import one_of
from inclusive.tenancy.keys import tenant_fk, tenant_key
from inclusive.tenancy.scope import TenantMixin
from inclusive.timeutil import utcnow


class EnrollmentState(StrEnum):
    APPLIED = "applied"
    WAITLISTED = "waitlisted"
    ENROLLED = "enrolled"
    ACTIVE = "active"
    PAUSED = "paused"
    GRADUATED = "graduated"
    WITHDRAWN = "withdrawn"


class MilestoneStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    ACHIEVED = "achieved"
    VERIFIED = "verified"
    MISSED = "missed"
    WAIVED = "waived"


#: A milestone in one of these states is done: it no longer puts the producer at risk.
DONE_STATUSES = frozenset(
    {MilestoneStatus.ACHIEVED, MilestoneStatus.VERIFIED, MilestoneStatus.WAIVED}
)
#: Enrollments in these states have a plan that is being followed.
LIVE_STATES = frozenset({EnrollmentState.ENROLLED, EnrollmentState.ACTIVE, EnrollmentState.PAUSED})


class Enrollment(TenantMixin, db.Model):
    """A producer in a program."""

    __tablename__ = "enrollments"
    __table_args__ = (
        tenant_key(),
        tenant_fk("program_id", "programs"),
        tenant_fk("producer_id", "producers"),
        UniqueConstraint("program_id", "producer_id"),
        CheckConstraint(one_of("state", EnrollmentState), name="state"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
        Index("ix_enrollments_org_program_state", "org_id", "program_id", "state", "id"),
        Index("ix_enrollments_org_program_id", "org_id", "program_id", "id"),
        Index("ix_enrollments_org_producer", "org_id", "producer_id"),
        Index(
            "ix_enrollments_org_risk",
            "org_id",
            "at_risk",
            "program_id",
            sqlite_where=text("at_risk"),
            postgresql_where=text("at_risk"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int]
    producer_id: Mapped[int]
    state: Mapped[str] = mapped_column(String(12), default=EnrollmentState.APPLIED)
    state_reason: Mapped[str] = mapped_column(Text, default="")
    applied_on: Mapped[date] = mapped_column(default=lambda: utcnow().date())
    enrolled_on: Mapped[date | None]
    ended_on: Mapped[date | None]
    # Kept up to date by the milestone services (and a daily sweep for dates that pass).
    at_risk: Mapped[bool] = mapped_column(default=False)
    progress: Mapped[int] = mapped_column(default=0)  # weighted percent of milestones done
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    program: Mapped[Program] = relationship(
        foreign_keys="Enrollment.program_id", lazy="joined", innerjoin=True
    )
    producer: Mapped[Producer] = relationship(
        foreign_keys="Enrollment.producer_id", lazy="joined", innerjoin=True
    )
    milestones: Mapped[list[Milestone]] = relationship(
        order_by="Milestone.position",
        foreign_keys="Milestone.enrollment_id",
        back_populates="enrollment",
        cascade="all, delete-orphan",
    )


class Milestone(TenantMixin, db.Model):
    """A step of an enrollment's plan, generated from the program's template."""

    __tablename__ = "milestones"
    __table_args__ = (
        tenant_key(),
        tenant_fk("enrollment_id", "enrollments"),
        tenant_fk("program_id", "programs"),
        tenant_fk("producer_id", "producers"),
        CheckConstraint(one_of("status", MilestoneStatus), name="status"),
        CheckConstraint("weight > 0", name="weight"),
        Index("ix_milestones_org_enrollment_position", "org_id", "enrollment_id", "position"),
        Index("ix_milestones_org_program_step_status", "org_id", "program_id", "step_id", "status"),
        Index("ix_milestones_org_producer", "org_id", "producer_id"),
        Index(
            "ix_milestones_org_due_open",
            "org_id",
            "due_date",
            sqlite_where=text("status IN ('planned', 'in_progress')"),
            postgresql_where=text("status IN ('planned', 'in_progress')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int]
    program_id: Mapped[int]  # copied from the enrollment: completion per milestone is one scan
    producer_id: Mapped[int]  # copied from the enrollment: the producer page reads one index
    step_id: Mapped[int | None]  # the template step it came from, while that step exists
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(160))
    due_date: Mapped[date]
    weight: Mapped[int] = mapped_column(default=1)
    evidence_required: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(12), default=MilestoneStatus.PLANNED)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime | None]
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verified_at: Mapped[datetime | None]

    enrollment: Mapped[Enrollment] = relationship(
        foreign_keys="Milestone.enrollment_id", back_populates="milestones"
    )
    evidence: Mapped[list[Evidence]] = relationship(
        foreign_keys="Evidence.milestone_id",
        order_by="Evidence.id",
        cascade="all, delete-orphan",
    )
    recorded_by: Mapped[User | None] = relationship(foreign_keys="Milestone.recorded_by_id")
    verified_by: Mapped[User | None] = relationship(foreign_keys="Milestone.verified_by_id")

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATUSES

    def is_overdue(self, today: date) -> bool:
        return not self.is_done and self.status != MilestoneStatus.MISSED and self.due_date < today


class Evidence(TenantMixin, db.Model):
    """A file attached to a milestone (PDF, JPEG or PNG), kept by the storage backend."""

    __tablename__ = "evidence"
    __table_args__ = (
        tenant_fk("milestone_id", "milestones"),
        Index("ix_evidence_org_milestone", "org_id", "milestone_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    milestone_id: Mapped[int]
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(120), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
