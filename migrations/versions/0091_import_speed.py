"""Faster imports: no foreign key or index that another constraint or index already covers.

- ``producer_sectors.org_id -> organizations.id`` is dropped. Its rows also have the
  composite key ``(org_id, producer_id) -> producers(org_id, id)`` (ON DELETE CASCADE) on a
  non-null ``producer_id``: the database still refuses a sector whose organization does not
  exist (no producer has it: ``producers.org_id -> organizations.id`` refuses that), and one
  linked to another organization's producer (no such (org_id, id) pair); deleting an
  organization still deletes its sectors (through its producers). Every import of producers
  checked that key once per sector for nothing.
- ``ix_audit_events_org_id`` is dropped: ``ix_audit_events_org_producer_at`` (org_id,
  producer_id, at) starts with org_id and serves every lookup by organization.
- ``audit_events`` keeps its key to organizations: an event of the organization itself has
  no producer nor program, and only that key refuses its dangling org_id.

Revision ID: 0091_import_speed
Revises: 0090_perf_indexes
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op

revision = "0091_import_speed"
down_revision = "0090_perf_indexes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("producer_sectors", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_producer_sectors_org_id_organizations"), type_="foreignkey"
        )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_org_id"))


def downgrade():
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_org_id"), ["org_id"], unique=False)
    with op.batch_alter_table("producer_sectors", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_producer_sectors_org_id_organizations"),
            "organizations",
            ["org_id"],
            ["id"],
            ondelete="CASCADE",
        )
