"""custom text classifiers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classifiers",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("encoder", sa.String(length=120), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("classifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_classifiers_id"), ["id"], unique=True)
        batch_op.create_index(batch_op.f("ix_classifiers_owner_id"), ["owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("classifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_classifiers_owner_id"))
        batch_op.drop_index(batch_op.f("ix_classifiers_id"))
    op.drop_table("classifiers")
