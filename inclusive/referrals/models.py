"""Referrals of producers to capital partners, their events, thread and deliveries.

A :class:`Referral` belongs to the organization that refers (a tenant row); the partner
reads it through services that filter by ``partner_id`` explicitly. Every change is an
append-only :class:`ReferralEvent`; every event a partner or the organization must hear of
writes :class:`Delivery` rows (the transactional outbox) in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inclusive.extensions import db
from inclusive.schema import one_of
from inclusive.tenancy.keys import tenant_fk, tenant_key
from inclusive.tenancy.scope import TenantMixin
from inclusive.timeutil import utcnow

if TYPE_CHECKING:
    from inclusive.auth.models import User
    from inclusive.consents.models import Consent
    from inclusive.partners.models import CapitalPartner, Partnership
    from inclusive.producers.models import Producer
    from inclusive.tenancy.models import Organization


class ReferralState(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    RECEIVED = "received"
    UNDER_REVIEW = "under_review"
    INFO_REQUESTED = "info_requested"
    APPROVED = "approved"
    DECLINED = "declined"
    DISBURSED = "disbursed"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    DELIVERY_FAILED = "delivery_failed"


class DeclineReason(StrEnum):
    REPAYMENT_CAPACITY = "repayment_capacity"
    CREDIT_HISTORY = "credit_history"
    INSUFFICIENT_RECORD = "insufficient_record"
    OUTSIDE_POLICY = "outside_policy"
    OUTSIDE_REGION = "outside_region"
    NO_CONTACT = "no_contact"
    PRODUCER_DECLINED = "producer_declined"
    OTHER = "other"


class Side(StrEnum):
    """Who acted: the referring organization, the capital partner, or the platform itself."""

    ORGANIZATION = "organization"
    PARTNER = "partner"
    SYSTEM = "system"


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class Audience(StrEnum):
    """Who a delivery is for."""

    PARTNER = "partner"
    ORGANIZATION = "organization"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its first or next attempt
    SENDING = "sending"  # an attempt holds a lease on it
    DELIVERED = "delivered"
    DEAD = "dead"  # the last attempt failed, or the endpoint is gone
    SKIPPED = "skipped"  # nothing to send: the channel is off or there is no recipient


class Referral(TenantMixin, db.Model):
    """A producer referred to a capital partner for a product, with a frozen profile."""

    __tablename__ = "referrals"
    __table_args__ = (
        tenant_key(),
        tenant_fk("producer_id", "producers"),
        tenant_fk("partnership_id", "partnerships", ondelete=None),
        tenant_fk("consent_id", "consents", ondelete=None),
        CheckConstraint(one_of("state", ReferralState), name="state"),
        CheckConstraint(
            "decline_reason IS NULL OR " + one_of("decline_reason", DeclineReason),
            name="decline_reason",
        ),
        CheckConstraint("amount_requested IS NULL OR amount_requested > 0", name="amount"),
        CheckConstraint("disbursed_amount IS NULL OR disbursed_amount > 0", name="disbursed"),
        CheckConstraint(
            "disbursed_term_months IS NULL OR disbursed_term_months BETWEEN 1 AND 360",
            name="term",
        ),
        CheckConstraint("state = 'draft' OR profile_sha256 IS NOT NULL", name="frozen"),
        Index("ix_referrals_org_state", "org_id", "state"),
        Index("ix_referrals_org_producer", "org_id", "producer_id"),
        Index("ix_referrals_partner_state", "partner_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    producer_id: Mapped[int]
    partnership_id: Mapped[int]
    partner_id: Mapped[int] = mapped_column(ForeignKey("capital_partners.id"))
    consent_id: Mapped[int]
    product: Mapped[str] = mapped_column(String(30))
    # Amounts in hundredths of ``currency``, like every amount on the platform.
    amount_requested: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    purpose: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), default=ReferralState.DRAFT)
    # The credit-readiness profile, frozen when the referral is sent.
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    profile_version: Mapped[str | None] = mapped_column(String(20))
    profile_sha256: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]  # the partner's first decision: approve or decline
    decline_reason: Mapped[str | None] = mapped_column(String(30))
    decline_note: Mapped[str] = mapped_column(Text, default="")
    disbursed_amount: Mapped[int | None] = mapped_column(BigInteger)
    disbursed_currency: Mapped[str | None] = mapped_column(String(3))
    disbursed_on: Mapped[date | None]
    disbursed_product: Mapped[str | None] = mapped_column(String(30))
    disbursed_term_months: Mapped[int | None]
    closed_at: Mapped[datetime | None]
    # Reminders of an unacknowledged referral: 0 none, 1 partner reminded, 2 escalated.
    reminder_level: Mapped[int] = mapped_column(default=0)

    producer: Mapped[Producer] = relationship(
        foreign_keys="Referral.producer_id", lazy="joined", innerjoin=True
    )
    partner: Mapped[CapitalPartner] = relationship(lazy="joined", innerjoin=True)
    partnership: Mapped[Partnership] = relationship(foreign_keys="Referral.partnership_id")
    consent: Mapped[Consent] = relationship(foreign_keys="Referral.consent_id")
    organization: Mapped[Organization] = relationship(
        foreign_keys="Referral.org_id", lazy="joined", innerjoin=True
    )
    created_by: Mapped[User | None] = relationship(foreign_keys="Referral.created_by_id")

    def __repr__(self) -> str:
        return f"<Referral {self.id} {self.state}>"


class ReferralEvent(TenantMixin, db.Model):
    """One step in a referral's life: appended, never edited; both sides see it."""

    __tablename__ = "referral_events"
    __table_args__ = (
        tenant_key(),
        tenant_fk("referral_id", "referrals"),
        CheckConstraint(one_of("side", Side), name="side"),
        Index("ix_referral_events_org_referral", "org_id", "referral_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int]
    # What happened: "sent", "acknowledged", "approved", ..., "message", "reminded".
    kind: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    side: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship()


class ReferralMessage(TenantMixin, db.Model):
    """A message in a referral's thread, between the partner and the organization's staff."""

    __tablename__ = "referral_messages"
    __table_args__ = (
        tenant_fk("referral_id", "referrals"),
        CheckConstraint(one_of("side", Side), name="side"),
        Index("ix_referral_messages_org_referral", "org_id", "referral_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int]
    side: Mapped[str] = mapped_column(String(12))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship()


class Delivery(TenantMixin, db.Model):
    """The outbox: one event to deliver on one channel to one recipient.

    Written in the transaction of the event; its id is the RQ job id and, on the webhook
    channel, the ``webhook-id`` (stable across retries, so receivers can drop duplicates).
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        tenant_key(),
        tenant_fk("referral_id", "referrals"),
        tenant_fk("event_id", "referral_events"),
        CheckConstraint(one_of("channel", Channel), name="channel"),
        CheckConstraint(one_of("audience", Audience), name="audience"),
        CheckConstraint(one_of("status", DeliveryStatus), name="status"),
        Index("ix_deliveries_org_referral", "org_id", "referral_id"),
        # The sweeper reads the open rows only.
        Index(
            "ix_deliveries_open",
            "next_attempt_at",
            sqlite_where=text("status IN ('pending', 'sending')"),
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    referral_id: Mapped[int]
    event_id: Mapped[int]
    partner_id: Mapped[int] = mapped_column(ForeignKey("capital_partners.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    audience: Mapped[str] = mapped_column(String(12))
    recipient: Mapped[str] = mapped_column(String(2000), default="")  # e-mail address or URL
    locale: Mapped[str] = mapped_column(String(5), default="en")
    # The webhook body, frozen when the event is written: every retry sends the same bytes.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    attempt_rows: Mapped[list[DeliveryAttempt]] = relationship(
        order_by="DeliveryAttempt.id", viewonly=True
    )

    @property
    def webhook_id(self) -> str:
        return webhook_id(self.id)


def webhook_id(delivery_id: str) -> str:
    """The ``webhook-id`` of a delivery: the same on every attempt."""
    return f"msg_{delivery_id.replace('-', '')}"


class DeliveryAttempt(TenantMixin, db.Model):
    """One attempt at a delivery: when, what came back, how long it took."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        tenant_fk("delivery_id", "deliveries"),
        Index("ix_delivery_attempts_org_delivery", "org_id", "delivery_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36))
    number: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    outcome: Mapped[str] = mapped_column(String(10))  # delivered, retry, gone, refused
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(default=0)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")


class WebhookEndpoint(db.Model):
    """A capital partner's webhook: one per partner, with its signing secrets."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("capital_partners.id", ondelete="CASCADE"), unique=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    # ``whsec_`` secrets. During a rotation the previous one stays valid until its end.
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets a delivery is signed with now (see :func:`signing_secrets`)."""
        return signing_secrets(
            self.secret, self.previous_secret, self.previous_secret_until, now or utcnow()
        )


def signing_secrets(
    secret: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """The current secret, and during a rotation the previous one too."""
    if previous and previous_until and now < previous_until:
        return [secret, previous]
    return [secret]


class ApiToken(db.Model):
    """A partner's API token: only its SHA-256 is kept; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("capital_partners.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell tokens apart
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
