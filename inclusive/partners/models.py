"""Capital partners (platform-wide), their users, and partnerships with organizations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inclusive.extensions import db
from inclusive.schema import one_of
from inclusive.tenancy.keys import tenant_key
from inclusive.tenancy.scope import TenantMixin
from inclusive.timeutil import utcnow

if TYPE_CHECKING:
    from inclusive.auth.models import User
    from inclusive.tenancy.models import Organization


class PartnerKind(StrEnum):
    MFI = "mfi"
    ANGEL_NETWORK = "angel_network"
    LOCAL_FUND = "local_fund"
    COOPERATIVE_BANK = "cooperative_bank"
    OTHER = "other"


class Product(StrEnum):
    WORKING_CAPITAL_LOAN = "working_capital_loan"
    ASSET_LOAN = "asset_loan"
    MICRO_INSURANCE = "micro_insurance"
    SAVINGS = "savings"
    PAYMENTS = "payments"
    EQUITY = "equity"
    GUARANTEE = "guarantee"


class PartnerRole(StrEnum):
    PARTNER_ADMIN = "partner_admin"
    LOAN_OFFICER = "loan_officer"


class PartnershipState(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    ENDED = "ended"


class PartnershipSide(StrEnum):
    ORGANIZATION = "organization"
    PARTNER = "partner"


class CapitalPartner(db.Model):
    """An MFI, investor network or fund: one row on the platform, not owned by any tenant."""

    __tablename__ = "capital_partners"
    __table_args__ = (
        CheckConstraint(one_of("kind", PartnerKind), name="kind"),
        CheckConstraint("ticket_min IS NULL OR ticket_min >= 0", name="ticket_min"),
        CheckConstraint(
            "ticket_max IS NULL OR ticket_min IS NULL OR ticket_max >= ticket_min",
            name="ticket_range",
        ),
        CheckConstraint(
            "(ticket_min IS NULL AND ticket_max IS NULL) OR ticket_currency IS NOT NULL",
            name="ticket_currency",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(160), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Amounts in hundredths of ticket_currency, like every amount on the platform.
    ticket_min: Mapped[int | None] = mapped_column(BigInteger)
    ticket_max: Mapped[int | None] = mapped_column(BigInteger)
    ticket_currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<CapitalPartner {self.slug}>"


class PartnerMembership(db.Model):
    """A user's role at one capital partner."""

    __tablename__ = "partner_memberships"
    __table_args__ = (
        UniqueConstraint("partner_id", "user_id"),
        CheckConstraint(one_of("role", PartnerRole), name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("capital_partners.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    partner: Mapped[CapitalPartner] = relationship(lazy="joined", innerjoin=True)
    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class Partnership(TenantMixin, db.Model):
    """An organization's link to a capital partner: proposed, then active, then ended."""

    __tablename__ = "partnerships"
    __table_args__ = (
        tenant_key(),  # referrals will point at (org_id, partnership id)
        CheckConstraint(one_of("state", PartnershipState), name="state"),
        CheckConstraint(
            "ended_side IS NULL OR " + one_of("ended_side", PartnershipSide), name="ended_side"
        ),
        CheckConstraint("acknowledgement_days BETWEEN 1 AND 30", name="acknowledgement_days"),
        # At most one partnership per organization and partner that has not ended.
        Index(
            "uq_partnerships_open",
            "org_id",
            "partner_id",
            unique=True,
            sqlite_where=text("state != 'ended'"),
            postgresql_where=text("state != 'ended'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("capital_partners.id"), index=True)
    state: Mapped[str] = mapped_column(String(10), default=PartnershipState.PROPOSED)
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    accepted_at: Mapped[datetime | None]
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ended_at: Mapped[datetime | None]
    ended_side: Mapped[str | None] = mapped_column(String(12))
    end_reason: Mapped[str] = mapped_column(Text, default="")
    # Business days a partner has to acknowledge a referral before it is reminded.
    acknowledgement_days: Mapped[int] = mapped_column(default=2)
    # Channels besides the partner's inbox (always on): e-mail to its users, its webhook.
    notify_email: Mapped[bool] = mapped_column(default=True)
    notify_webhook: Mapped[bool] = mapped_column(default=True)

    partner: Mapped[CapitalPartner] = relationship(lazy="joined", innerjoin=True)
    organization: Mapped[Organization] = relationship(lazy="joined", innerjoin=True)
    proposed_by: Mapped[User | None] = relationship(foreign_keys=[proposed_by_id])
    accepted_by: Mapped[User | None] = relationship(foreign_keys=[accepted_by_id])
    ended_by: Mapped[User | None] = relationship(foreign_keys=[ended_by_id])

    @property
    def is_open(self) -> bool:
        return self.state != PartnershipState.ENDED
