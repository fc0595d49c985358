"""Many rows into one table, fast: ``COPY`` on PostgreSQL, ``executemany`` elsewhere;
many rows of one table updated by key in one ``executemany`` statement; rows read
in PostgreSQL's binary format.

Ingest writes thousands of rows per batch (findings, a full inventory's
~1,500 packages).  As one ``INSERT`` per row (psycopg's pipelined
``executemany``) the client-side cost per row dominates; ``COPY … FROM
STDIN`` streams them in one command.  The rows are plain dictionaries with
the same keys, as ``session.execute(insert(model), rows)`` takes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Select, Table, Update, bindparam, insert, update
from sqlmodel import Session, SQLModel


def update_by_key(table: Table, key: str, columns: Sequence[str]) -> Update:
    """``UPDATE table SET column = :column, … WHERE key = :key_`` for
    :func:`update_rows`: each row gives ``<key>_`` and every column."""
    return (
        update(table)
        .where(table.c[key] == bindparam(f"{key}_"))
        .values({column: bindparam(column) for column in columns})
    )


def update_rows(session: Session, statement: Update, rows: list[dict[str, Any]]) -> None:
    """Run ``statement`` (:func:`update_by_key`) for every row, in one ``executemany``
    on the session's connection: without the ORM's flush and its listeners."""
    if rows:
        session.connection().execute(statement, rows)


def fetch_rows(session: Session, statement: Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``statement``, in the session's transaction, as the driver reads them
    (no SQLAlchemy type processing: for plain columns only).

    On PostgreSQL the results come in binary format: a ``bytea`` value arrives as
    its bytes, not as hex text twice its size that the server encodes and the
    client decodes.  For a host's 55 kB inventory key list that is about 0.13 ms
    of server and 0.3 ms of client CPU less per row (benchmarks/README.md)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return [tuple(row) for row in connection.execute(statement)]
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(str(compiled), compiled.params, binary=True)
        return cursor.fetchall()


def insert_rows(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``model``'s table inside the session's transaction."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(model), rows)
        return
    from psycopg import sql

    session.flush()  # rows this one refers to (foreign keys) may still be pending
    table = model.__table__  # type: ignore[attr-defined]
    columns = list(rows[0])
    as_json = [isinstance(table.c[name].type, JSON) for name in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [
                    _json(row[name]) if is_json else _value(row[name])
                    for name, is_json in zip(columns, as_json, strict=True)
                ]
            )


def _json(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits
        return json.dumps(value)


def _value(value: Any) -> Any:
    # As UTCDateTime binds them: a naive timestamp is UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
