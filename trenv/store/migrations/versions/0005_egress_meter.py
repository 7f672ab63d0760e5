"""The egress meter: bytes sent to the browser per user, project, UTC hour and kind.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "egress_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("text", "image", "upload", name="egress_kind", native_enum=False),
            nullable=False,
        ),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_egress_usage")),
        # The upsert's conflict target (trenv.meter.ledger): one row per user, hour, kind
        # and project.
        sa.UniqueConstraint(
            "username", "hour", "kind", "project", name=op.f("uq_egress_usage_username")
        ),
    )


def downgrade() -> None:
    op.drop_table("egress_usage")
