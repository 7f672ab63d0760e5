"""Secrets at rest: the TOTP secret column holds an encrypted token (trenv.store.secrets).

The existing plain values are encrypted by ``trenv.store.migrate.upgrade`` right after this
migration, with the key kept outside the database (a migration has no business reading it).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.alter_column(
            "totp_secret",
            existing_type=sa.String(length=64),
            type_=sa.String(length=512),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.alter_column(
            "totp_secret",
            existing_type=sa.String(length=512),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
