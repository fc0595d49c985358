"""inventory keys stored as is, compressed by PostgreSQL with lz4

``HostInventory.package_keys`` was zlib-compressed by the collector; every
software delta decompressed and compressed ~55 kB again (about half of the
ingest cost of a delta).  It is now written as is (values written before are
still read, collector/inventory.py) and PostgreSQL compresses it, with lz4
where the server has it (PostgreSQL 14+), several times faster than zlib and
pglz.  The report bodies get the same.  SQLite stores them as they are.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("hostinventory", "package_keys"), ("storedreport", "body"))


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    row = bind.exec_driver_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).first()
    return bool(row and row[0])


def upgrade() -> None:
    if _lz4_available():
        for table, column in _COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        for table, column in _COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION default")
