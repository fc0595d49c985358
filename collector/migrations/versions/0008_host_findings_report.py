"""host findings report: a report's findings are stored once per change

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.add_column(sa.Column("findings_report_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("findings_digest", sa.String(length=64), nullable=True))
    # Until now every report stored its own findings: the latest report holds them.
    op.execute("UPDATE host SET findings_report_id = latest_report_id")


def downgrade() -> None:
    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.drop_column("findings_digest")
        batch_op.drop_column("findings_report_id")
