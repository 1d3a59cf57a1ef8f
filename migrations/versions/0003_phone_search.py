"""Search producers by the last digits of their phone number.

Revision ID: 0003_phone_search
Revises: 0002_workspace
"""

from alembic import op

revision = "0003_phone_search"
down_revision = "0002_workspace"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("producers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_producers_phone_trgm",
            ["phone"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"phone": "gin_trgm_ops"},
        )


def downgrade():
    with op.batch_alter_table("producers", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_producers_phone_trgm",
            postgresql_using="gin",
            postgresql_ops={"phone": "gin_trgm_ops"},
        )
