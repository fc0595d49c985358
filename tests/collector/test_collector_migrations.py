"""Alembic migrations: they build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, SQLModel

from collector import cli
from collector.db import (
    BASELINE_REVISION,
    alembic_config,
    create_db_engine,
    migrate,
    normalise_database_url,
)
from collector.models import Agency
from collector.settings import Settings


@pytest.fixture
def empty_engine(collector_database_url: str) -> Iterator[Engine]:
    """An engine on a brand-new, empty database of the test's backend."""
    engine = create_db_engine(Settings(database_url=collector_database_url))
    with engine.begin() as conn:  # the PG copy of the template is already migrated
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}"'))
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    yield engine
    engine.dispose()


def schema_diff(engine: Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_migrations_build_the_models_schema(empty_engine: Engine) -> None:
    assert tables(empty_engine) == set()
    migrate(empty_engine)
    assert tables(empty_engine) == {t.name for t in SQLModel.metadata.sorted_tables} | {
        "alembic_version"
    }
    assert schema_diff(empty_engine) == []
    migrate(empty_engine)  # idempotent
    assert schema_diff(empty_engine) == []


def test_downgrade_and_upgrade_again(empty_engine: Engine) -> None:
    migrate(empty_engine)
    with empty_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert tables(empty_engine) <= {"alembic_version"}
    migrate(empty_engine)
    assert schema_diff(empty_engine) == []


def test_database_created_before_migrations_is_adopted(empty_engine: Engine) -> None:
    # What create_all built before Alembic: the baseline schema, unversioned.
    migrate(empty_engine, BASELINE_REVISION)
    with empty_engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    assert "alembic_version" not in tables(empty_engine)
    with Session(empty_engine) as session:
        session.add(Agency(code="so-tttt", name="Sở TTTT", level=3))
        session.commit()
    migrate(empty_engine)  # stamps the baseline instead of creating the tables again
    assert schema_diff(empty_engine) == []
    with Session(empty_engine) as session:
        assert session.get(Agency, 1) is not None


def test_migrate_command(empty_engine: Engine, collector_database_url: str, monkeypatch) -> None:
    monkeypatch.delenv("POSTURE_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", collector_database_url)
    assert cli.main(["migrate"]) == 0
    assert schema_diff(empty_engine) == []


def test_postgres_urls_use_psycopg() -> None:
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"
    engine = create_db_engine(Settings(database_url="postgresql://u@127.0.0.1/db"))
    assert engine.dialect.driver == "psycopg"


def test_0008_points_hosts_at_the_findings_of_their_latest_report(empty_engine: Engine) -> None:
    """Before 0008 every report stored its own findings: the latest report holds them."""
    import uuid

    migrate(empty_engine, "0007")
    latest = uuid.uuid4()
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO agency (id, code, name, level, created_at) "
                "VALUES (1, 'a', 'A', 2, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO host (id, agency_id, hostname, role, enrolled_at, latest_report_id) "
                "VALUES (1, 1, 'pc', 'workstation', CURRENT_TIMESTAMP, :latest), "
                "(2, 1, 'new', 'workstation', CURRENT_TIMESTAMP, NULL)"
            ),
            {"latest": latest.hex if empty_engine.dialect.name == "sqlite" else latest},
        )
    migrate(empty_engine)
    with empty_engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, latest_report_id, findings_report_id, findings_digest "
                "FROM host ORDER BY id"
            )
        ).all()
    assert [(r[0], r[1] == r[2], r[2] is None, r[3]) for r in rows] == [
        (1, True, False, None),
        (2, True, True, None),
    ]


def test_0009_has_postgresql_compress_inventory_keys_and_bodies_with_lz4(
    empty_engine: Engine,
) -> None:
    """The collector stores the inventory keys as they are since 0009; PostgreSQL
    compresses them (and the report bodies) with lz4 when the server has it."""
    if empty_engine.dialect.name != "postgresql":
        pytest.skip("column compression is a PostgreSQL setting")

    def methods() -> dict[tuple[str, str], str]:
        with empty_engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT c.relname, a.attname, a.attcompression FROM pg_attribute a "
                    "JOIN pg_class c ON c.oid = a.attrelid "
                    "WHERE (c.relname, a.attname) IN "
                    "(('hostinventory', 'package_keys'), ('storedreport', 'body'))"
                )
            ).all()
        return {(r[0], r[1]): r[2] for r in rows}

    with empty_engine.connect() as connection:
        lz4 = connection.execute(
            text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        ).scalar()
    if not lz4:
        pytest.skip("this PostgreSQL server is built without lz4")
    migrate(empty_engine, "0008")
    assert set(methods().values()) == {""}  # the server's default
    migrate(empty_engine)
    assert methods() == {("hostinventory", "package_keys"): "l", ("storedreport", "body"): "l"}
    with empty_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0008")
    assert set(methods().values()) == {""}
