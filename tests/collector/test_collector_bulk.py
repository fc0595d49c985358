"""Bulk reads and writes (collector/bulk.py), on SQLite and a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from sqlmodel import Session, col, select

from collector import bulk
from collector.models import Agency, Host, HostInventory

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
Stored = dict[int, tuple[uuid.UUID, bytes | None]]  # host id: (report_id, package_keys)


def _hosts_with_inventories(session: Session, count: int) -> Stored:
    agency = Agency(code="so-bulk", name="Sở thử", level=3)
    session.add(agency)
    session.flush()
    assert agency.id is not None
    hosts = [Host(agency_id=agency.id, hostname=f"h{i}") for i in range(count)]
    session.add_all(hosts)
    session.flush()
    expected: Stored = {}
    for i, host in enumerate(hosts):
        assert host.id is not None
        # Bytes that are not UTF-8, a list as big as a real inventory's, and none.
        keys: bytes | None = (
            None if i % 5 == 0 else bytes(range(256)) * (i % 3) + b'[["p","all","1"]]' * 4000
        )
        report_id = uuid.uuid4()
        expected[host.id] = (report_id, keys)
        bulk.insert_rows(
            session,
            HostInventory,
            [
                {
                    "host_id": host.id,
                    "report_id": report_id,
                    "collected_at": T0,
                    "inventory_hash": "0" * 64,
                    "package_count": 0,
                    "baseline_report_id": report_id,
                    "baseline_collected_at": T0,
                    "updated_at": T0,
                    "package_keys": keys,
                }
            ],
        )
    session.commit()
    return expected


def _query(ids: list[int]):  # type: ignore[no-untyped-def]
    return (
        select(HostInventory.host_id, HostInventory.report_id, HostInventory.package_keys)
        .where(col(HostInventory.host_id).in_(ids))
        .order_by(col(HostInventory.host_id))
        .with_for_update()
    )


def test_fetch_rows_reads_what_sqlalchemy_reads(api) -> None:
    """Integers, UUIDs, binary values (not UTF-8, ~70 kB) and NULLs come back as
    SQLAlchemy's own select returns them, for an IN list of many ids."""
    with Session(api.engine) as session:
        expected = _hosts_with_inventories(session, 30)
        ids = sorted(expected)[3:27]
        rows = bulk.fetch_rows(session, _query(ids))
        assert [tuple(r) for r in session.execute(_query(ids))] == rows
        assert rows == [(host_id, *expected[host_id]) for host_id in ids]
        assert all(keys is None or type(keys) is bytes for _, _, keys in rows)
        assert bulk.fetch_rows(session, _query([10**9])) == []


def test_fetch_rows_locks_in_the_sessions_transaction(api, database_backend: str) -> None:
    """``FOR UPDATE`` through the driver's cursor locks the rows in the session's
    own transaction: another connection waits for them until it ends."""
    if database_backend != "postgresql":
        pytest.skip("SQLite has no row locks")
    with Session(api.engine) as session:
        host_id = min(_hosts_with_inventories(session, 2))
        assert len(bulk.fetch_rows(session, _query([host_id]))) == 1
        url = api.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url) as other:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(
                    "SELECT 1 FROM hostinventory WHERE host_id = %s FOR UPDATE NOWAIT", [host_id]
                )
            other.rollback()
            session.rollback()  # the session's transaction ends: the lock is released
            assert other.execute(
                "SELECT 1 FROM hostinventory WHERE host_id = %s FOR UPDATE NOWAIT", [host_id]
            ).fetchall() == [(1,)]


def test_update_rows_moves_each_row_by_its_key(api) -> None:
    with Session(api.engine) as session:
        expected = _hosts_with_inventories(session, 6)
        statement = bulk.update_by_key(
            HostInventory.__table__,  # type: ignore[attr-defined]
            "host_id",
            ("package_keys", "package_count"),
        )
        ids = sorted(expected)
        bulk.update_rows(
            session,
            statement,
            [
                {"host_id_": host_id, "package_keys": f"[{host_id}]".encode(), "package_count": i}
                for i, host_id in enumerate(ids[:3])
            ],
        )
        session.commit()
        rows = session.execute(
            select(
                HostInventory.host_id, HostInventory.package_keys, HostInventory.package_count
            ).order_by(col(HostInventory.host_id))
        ).all()
    assert [tuple(r) for r in rows] == [
        (host_id, f"[{host_id}]".encode(), i) for i, host_id in enumerate(ids[:3])
    ] + [(host_id, expected[host_id][1], 0) for host_id in ids[3:]]
