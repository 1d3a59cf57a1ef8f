"""The audit trail: every state change, who made it and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inclusive.auth.models import User
from inclusive.extensions import db
from inclusive.tenancy.keys import tenant_fk
from inclusive.tenancy.scope import TenantMixin
from inclusive.timeutil import utcnow


class AuditEvent(TenantMixin, db.Model):
    """One change: appended, never edited."""

    __tablename__ = "audit_events"
    org_id_index = False  # (org_id, producer_id, at) serves it
    __table_args__ = (
        tenant_fk("producer_id", "producers"),
        tenant_fk("program_id", "programs"),
        Index("ix_audit_events_org_producer_at", "org_id", "producer_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(60))
    producer_id: Mapped[int | None]
    program_id: Mapped[int | None] = mapped_column(index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship()
