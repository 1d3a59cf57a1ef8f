"""Organizations (tenants), their members and pending invitations."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inclusive.extensions import db
from inclusive.tenancy.roles import Role
from inclusive.tenancy.scope import TenantMixin
from inclusive.timeutil import utcnow

if TYPE_CHECKING:
    from inclusive.auth.models import User

ROLE_CHECK = "role IN ('admin', 'program_manager', 'field_officer', 'viewer')"


class Organization(db.Model):
    """A developer of inclusive ventures: the tenant that owns everything below it."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2))
    default_language: Mapped[str] = mapped_column(String(5), default="en")
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Organization {self.slug}>"


class Membership(TenantMixin, db.Model):
    """A user's role in one organization."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id"),
        CheckConstraint(ROLE_CHECK, name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined", innerjoin=True)
    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class Invitation(TenantMixin, db.Model):
    """An invitation by e-mail to join an organization with a role."""

    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(5))
    # Part of the signed link: a new nonce makes every link sent before it useless.
    nonce: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_urlsafe(16))
    invited_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship(lazy="joined", innerjoin=True)
    invited_by: Mapped[User | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None
