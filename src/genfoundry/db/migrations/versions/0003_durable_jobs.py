"""durable jobs: worker, cancel flag, attempts cap, checkpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Server defaults fill the rows the in-process runner left; a running one of those has no worker and
    # one attempt, so start-up recovery fails it with the reason, as before.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("checkpoint", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("resume_from", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("resume_from")
        batch_op.drop_column("checkpoint")
        batch_op.drop_column("max_attempts")
        batch_op.drop_column("cancel_requested")
        batch_op.drop_column("worker_id")
