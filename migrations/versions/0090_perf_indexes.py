"""Faster imports: the preview's clean rows kept; no org_id index that a composite one covers.

The producers table has (org_id, id), (org_id, name_key, id), (org_id, region, name_key) and
(org_id, phone); producer_sectors has (org_id, sector, producer_id). Each serves whatever
the single-column org_id index served, which only slowed every insert.

Revision ID: 0090_perf_indexes
Revises: 0006_referrals
"""

import sqlalchemy as sa
from alembic import op

revision = "0090_perf_indexes"
down_revision = "0006_referrals"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("checked_key", sa.String(length=120), nullable=False, server_default="")
        )
    with op.batch_alter_table("producers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_producers_org_id"))
    with op.batch_alter_table("producer_sectors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_producer_sectors_org_id"))


def downgrade():
    with op.batch_alter_table("producer_sectors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_producer_sectors_org_id"), ["org_id"], unique=False)
    with op.batch_alter_table("producers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_producers_org_id"), ["org_id"], unique=False)
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.drop_column("checked_key")
