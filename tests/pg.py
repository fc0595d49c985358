"""A throwaway PostgreSQL server for the tests (Debian's ``postgresql`` package).

``postgres_server`` (session scope) runs ``initdb`` + ``pg_ctl`` into a
temporary directory, as the ``postgres`` user when the tests run as root,
listening on 127.0.0.1 on a free port (no Unix socket, no system service),
and yields its admin URL; the cluster is stopped and removed at the end.
Tests are skipped, with the reason, only when the binaries are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SUPERUSER = "posture"


def postgres_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb and pg_ctl."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for bindir in reversed(candidates):
        path = Path(bindir)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as(user: pwd.struct_passwd | None, args: list[str]) -> None:
    def demote() -> None:
        assert user is not None
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    subprocess.run(
        args,
        check=True,
        capture_output=True,
        preexec_fn=demote if user is not None else None,
        cwd="/",
    )


class PostgresServer:
    def __init__(self, url: str) -> None:
        self.url = url  # the superuser's URL to the "postgres" database

    def url_for(self, database: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{database}"

    def execute(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]

    def create_database(self, template: str | None = None, name: str | None = None) -> str:
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{suffix}')
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin; Debian: postgresql)")
    user: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server")
    workdir = Path(tempfile.mkdtemp(prefix="posture-pg-"))
    datadir = workdir / "data"
    if user is not None:
        os.chown(workdir, user.pw_uid, user.pw_gid)
    port = _free_port()
    _run_as(
        user,
        [str(bindir / "initdb"), "-D", str(datadir), "-U", SUPERUSER, "-A", "trust",
         "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=200"
    )
    _run_as(
        user,
        [str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(workdir / "server.log"),
         "-o", options, "-w", "-t", "60", "start"],
    )
    try:
        yield PostgresServer(f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/postgres")
    finally:
        _run_as(user, [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"])
        shutil.rmtree(workdir, ignore_errors=True)
