"""Consents: which data of a producer may go to which capital partner, for what, until when."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inclusive.extensions import db
from inclusive.schema import one_of
from inclusive.tenancy.keys import tenant_fk, tenant_key
from inclusive.tenancy.scope import TenantMixin
from inclusive.timeutil import utcnow

if TYPE_CHECKING:
    from inclusive.auth.models import User
    from inclusive.partners.models import CapitalPartner


class ConsentScope(StrEnum):
    IDENTITY = "identity"
    CONTACT = "contact"
    PROGRAM_RECORD = "program_record"
    ECONOMIC_FIGURES = "economic_figures"
    OFFTAKE_LEDGER = "offtake_ledger"


class ConsentMethod(StrEnum):
    SIGNED_PAPER = "signed_paper"
    VERBAL = "verbal"
    PORTAL = "portal"  # reserved for the producer portal; refused for now


class ConsentState(StrEnum):
    VALID = "valid"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Consent(TenantMixin, db.Model):
    """One recorded consent of a producer for one capital partner and purpose."""

    __tablename__ = "consents"
    __table_args__ = (
        tenant_key(),  # referrals will point at (org_id, consent id)
        tenant_fk("producer_id", "producers"),
        CheckConstraint(one_of("method", ConsentMethod), name="method"),
        CheckConstraint("valid_until > given_on", name="validity"),
        CheckConstraint("method != 'signed_paper' OR paper_storage_key IS NOT NULL", name="paper"),
        CheckConstraint("revoked_at IS NULL OR revocation_reason != ''", name="revocation_reason"),
        Index("ix_consents_org_producer_partner", "org_id", "producer_id", "partner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    producer_id: Mapped[int]
    partner_id: Mapped[int] = mapped_column(ForeignKey("capital_partners.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(200))
    # A sorted list of ConsentScope values (at least one).
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    text_version: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(20))
    witness_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    given_on: Mapped[date]
    valid_until: Mapped[date]
    # The signed paper (method signed_paper), checked by its content.
    paper_filename: Mapped[str | None] = mapped_column(String(200))
    paper_content_type: Mapped[str | None] = mapped_column(String(40))
    paper_size: Mapped[int | None]
    paper_storage_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    paper_sha256: Mapped[str | None] = mapped_column(String(64))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revocation_reason: Mapped[str] = mapped_column(Text, default="")

    partner: Mapped[CapitalPartner] = relationship(lazy="joined", innerjoin=True)
    witness: Mapped[User | None] = relationship(foreign_keys=[witness_id])
    recorded_by: Mapped[User | None] = relationship(foreign_keys=[recorded_by_id])
    revoked_by: Mapped[User | None] = relationship(foreign_keys=[revoked_by_id])

    def state_on(self, day: date) -> ConsentState:
        """Revoked, expired, not yet valid or valid on a day (valid_until included)."""
        if self.revoked_at is not None:
            return ConsentState.REVOKED
        if day > self.valid_until:
            return ConsentState.EXPIRED
        if day < self.given_on:
            return ConsentState.NOT_YET_VALID
        return ConsentState.VALID

    def covers(self, scopes: set[str]) -> bool:
        return set(scopes) <= set(self.scopes)
