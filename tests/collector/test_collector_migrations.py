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
