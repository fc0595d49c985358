"""Database engine, schema creation and the per-request session dependency."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

try:  # POSIX; a collector on Windows runs without the SQLite migration lock
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

import orjson
from fastapi import Depends, Request
from sqlalchemy import Connection, Engine, event, inspect, text
from sqlmodel import Session, create_engine

from collector import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from collector.settings import Settings


def normalise_database_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` URLs use the psycopg (3) driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _set_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def create_db_engine(settings: Settings) -> Engine:
    """Build the engine for ``settings.database_url``.

    SQLite: connections may be used from FastAPI's worker threads
    (``check_same_thread=False``), WAL mode lets readers work during ingest,
    and foreign keys are enforced.
    """
    url = normalise_database_url(settings.database_url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.database_pool_size,
        max_overflow=10,
        json_deserializer=_loads_json,
    )


def _loads_json(data: str | bytes) -> Any:
    """JSON columns as PostgreSQL returns them: orjson reads findings and report
    bodies several times faster; what it refuses (numbers beyond 64 bits, NaN) is
    read by the standard library as before."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


MIGRATIONS = "collector:migrations"
# Revision matching the schema of databases created by ``create_all`` before
# Alembic: such databases are stamped with it, then upgraded.
BASELINE_REVISION = "0001"
# Key of the PostgreSQL advisory lock held while migrating (several collector
# processes may start at once on one database).
_MIGRATION_LOCK = 0x706F7374


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Any:
    """The Alembic configuration, built in code (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    if url is not None:
        config.set_main_option("sqlalchemy.url", normalise_database_url(url).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """``alembic upgrade <revision>`` on ``engine``'s database, in one transaction.

    A database created before migrations existed (tables but no
    ``alembic_version``) is first stamped with the baseline revision.
    """
    from alembic import command

    with _sqlite_migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config = alembic_config(connection)
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" not in tables and "agency" in tables:
            command.stamp(config, BASELINE_REVISION)
        command.upgrade(config, revision)


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """Several processes starting at once on one SQLite file migrate one at a time.

    (PostgreSQL uses an advisory lock inside the migration transaction.)  An
    exclusive ``flock`` on ``<database>.migrate-lock`` beside the file.
    """
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or fcntl is None:
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def init_db(engine: Engine) -> None:
    """Bring the schema up to date (``alembic upgrade head``)."""
    migrate(engine)


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_session(request: Request) -> Iterator[Session]:
    with Session(get_engine(request)) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
