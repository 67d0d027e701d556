"""probes: catalog details of services; probe states and service state history.

Revision ID: 0002_probes
Revises: 0001_services
Create Date: 2025-01-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_probes"
down_revision: str | None = "0001_services"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults fill the not-null columns of the services that already exist.
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("team", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("tier", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("public", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("links", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
        batch.add_column(
            sa.Column("dependencies", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
    op.create_table(
        "probe_states",
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("probe", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("streak_success", sa.Boolean(), nullable=True),
        sa.Column("streak_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_duration_s", sa.Float(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("health_status", sa.String(length=8), nullable=True),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("service", "probe", name=op.f("pk_probe_states")),
    )
    op.create_table(
        "service_state_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_state_changes")),
    )
    op.create_index(
        "ix_service_state_changes_service_at",
        "service_state_changes",
        ["service", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_service_state_changes_service_at", table_name="service_state_changes")
    op.drop_table("service_state_changes")
    op.drop_table("probe_states")
    with op.batch_alter_table("services") as batch:
        for column in ("dependencies", "links", "public", "tier", "team", "owner", "description"):
            batch.drop_column(column)
