"""The producer registry of an organization."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
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
from inclusive.tenancy.keys import tenant_fk, tenant_key
from inclusive.tenancy.scope import TenantMixin
from inclusive.timeutil import utcnow


class ProducerKind(StrEnum):
    INDIVIDUAL = "individual"
    FAMILY_BUSINESS = "family_business"
    MICRO_ENTERPRISE = "micro_enterprise"
    COOPERATIVE = "cooperative"
    ASSOCIATION = "association"


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    MIXED = "mixed"  # collective ownership with women and men
    OTHER = "other"
    UNDISCLOSED = "undisclosed"


class Sector(StrEnum):
    AGRICULTURE = "agriculture"
    LIVESTOCK = "livestock"
    FISHING = "fishing"
    AGRIFOOD = "agrifood"
    TEXTILES = "textiles"
    CRAFTS = "crafts"
    MANUFACTURING = "manufacturing"
    CONSTRUCTION = "construction"
    COMMERCE = "commerce"
    FOOD_SERVICE = "food_service"
    TOURISM = "tourism"
    TRANSPORT = "transport"
    SERVICES = "services"
    TECHNOLOGY = "technology"
    RECYCLING = "recycling"


class Producer(TenantMixin, db.Model):
    """A micro or small producer: a person, a family business, a cooperative..."""

    __tablename__ = "producers"
    org_id_index = False  # (org_id, id) and the other (org_id, ...) indexes serve it
    __table_args__ = (
        tenant_key(),
        CheckConstraint(one_of("kind", ProducerKind), name="kind"),
        CheckConstraint(one_of("owner_gender", Gender), name="owner_gender"),
        CheckConstraint("employees >= 0", name="employees"),
        # The national or tax id is optional, but unique within the organization when given.
        Index(
            "uq_producers_org_national_id",
            "org_id",
            "national_id",
            unique=True,
            sqlite_where=text("national_id IS NOT NULL"),
            postgresql_where=text("national_id IS NOT NULL"),
        ),
        Index("ix_producers_org_name", "org_id", "name_key", "id"),
        Index("ix_producers_org_region", "org_id", "region", "name_key"),
        Index("ix_producers_org_phone", "org_id", "phone"),
        # Search by any part of the name (PostgreSQL: trigrams; SQLite scans, which is fine).
        Index(
            "ix_producers_name_trgm",
            "name_key",
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        ),
        # Search by the last digits of a phone number (LIKE '%digits').
        Index(
            "ix_producers_phone_trgm",
            "phone",
            postgresql_using="gin",
            postgresql_ops={"phone": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(160))
    # Lowercase, accent-free name: for sorting and searching.
    name_key: Mapped[str] = mapped_column(String(160))
    national_id: Mapped[str | None] = mapped_column(String(40))
    representative: Mapped[str] = mapped_column(String(160), default="")
    owner_gender: Mapped[str] = mapped_column(String(12), default=Gender.UNDISCLOSED)
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    region: Mapped[str] = mapped_column(String(120), default="")
    municipality: Mapped[str] = mapped_column(String(120), default="")
    employees: Mapped[int] = mapped_column(default=0)
    formally_registered: Mapped[bool] = mapped_column(default=False)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sector_rows: Mapped[list[ProducerSector]] = relationship(
        cascade="all, delete-orphan",
        foreign_keys="ProducerSector.producer_id",
        lazy="selectin",
        order_by="ProducerSector.sector",
    )

    @property
    def sectors(self) -> list[str]:
        return [row.sector for row in self.sector_rows]


class ProducerSector(TenantMixin, db.Model):
    """One sector a producer works in (a producer may have several)."""

    __tablename__ = "producer_sectors"
    org_id_index = False  # (org_id, sector, producer_id) serves it
    org_id_foreign_key = False  # (org_id, producer_id) -> producers(org_id, id) implies it
    __table_args__ = (
        tenant_fk("producer_id", "producers"),
        UniqueConstraint("producer_id", "sector"),
        CheckConstraint(one_of("sector", Sector), name="sector"),
        Index("ix_producer_sectors_org_sector", "org_id", "sector", "producer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    producer_id: Mapped[int]
    sector: Mapped[str] = mapped_column(String(20))


class ImportStatus(StrEnum):
    PREVIEWED = "previewed"  # parsed and checked; nothing written yet
    QUEUED = "queued"
    IMPORTING = "importing"
    DONE = "done"
    FAILED = "failed"  # nothing was imported


class ImportBatch(TenantMixin, db.Model):
    """An uploaded CSV: its check, and then its import in one transaction (or none)."""

    __tablename__ = "import_batches"
    __table_args__ = (
        tenant_key(),
        CheckConstraint(one_of("status", ImportStatus), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "producers" or "offtake"
    program_id: Mapped[int | None]  # for offtake imports
    filename: Mapped[str] = mapped_column(String(200))
    storage_key: Mapped[str] = mapped_column(String(120))
    # A producer file's clean rows as the preview found them (empty: check the file again).
    checked_key: Mapped[str] = mapped_column(String(120), default="")
    encoding: Mapped[str] = mapped_column(String(20), default="utf-8")
    status: Mapped[str] = mapped_column(String(10), default=ImportStatus.PREVIEWED)
    total_rows: Mapped[int] = mapped_column(default=0)
    valid_rows: Mapped[int] = mapped_column(default=0)
    imported_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)  # progress of a background import
    problems: Mapped[list] = mapped_column(JSON, default=list)  # [{line, column, message}]
    duplicates: Mapped[list] = mapped_column(JSON, default=list)  # [{line, reason, producer_id}]
    error: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
