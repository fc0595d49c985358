"""Tests of the databases probe: PostgreSQL, MySQL/MariaDB, Redis, MongoDB configuration."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from agent.probes.base import ProbeContext
from agent.probes.databases import (
    NOT_LIVE_NOTE,
    hba_trust,
    parse_my_cnf,
    parse_simple_yaml,
    parse_version,
    pg_listen,
    probe,
)
from agent.report import DatabaseSection, DatabaseServer
from tests.probekit import (
    FIXTURES,
    FakeRunner,
    ctx_for,
    deny,
    fixture_text,
    make_root,
    result,
    write,
)

DB = FIXTURES / "databases"
PG_CONF = "/etc/postgresql/15/main/postgresql.conf"
PG_HBA = "/etc/postgresql/15/main/pg_hba.conf"
PG_BIN = "/usr/lib/postgresql/15/bin/postgres"


def fx(*parts: str) -> str:
    return fixture_text("databases", *parts)


def debian_pg(tmp_path: Path, hba: str = "postgresql-debian12/pg_hba.conf") -> Path:
    return make_root(
        tmp_path,
        {PG_CONF: fx("postgresql-debian12", "postgresql.conf"), PG_HBA: fx(*hba.split("/"))},
        bins=[PG_BIN],
    )


def debian_mariadb(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    root = make_root(tmp_path, bins=["/usr/sbin/mariadbd"])
    shutil.copytree(DB / "mariadb-debian12", root / "etc" / "mysql")
    os.symlink("mariadbd", root / "usr" / "sbin" / "mysqld")
    for absolute, content in (extra or {}).items():
        write(root, absolute, content)
    return root


def only(section: DatabaseSection) -> DatabaseServer:
    assert section.status == "ok", section.reason
    [server] = section.servers
    return server


def offline(root: Path, **kwargs: Any) -> DatabaseSection:
    return probe(ctx_for(root, live=False, **kwargs))


# --- parsers -----------------------------------------------------------------------


def test_pg_listen_values() -> None:
    assert pg_listen("localhost") == ["127.0.0.1", "::1"]
    assert pg_listen("*") == ["0.0.0.0", "::"]
    assert pg_listen("") == []
    assert pg_listen("localhost, 10.10.5.20") == ["127.0.0.1", "::1", "10.10.5.20"]


def test_hba_trust_recorded_files() -> None:
    assert hba_trust(fx("postgresql-debian12", "pg_hba.conf")) == ([], [])
    issues, rules = hba_trust(fx("postgresql-initdb-trust", "pg_hba.conf"))
    # initdb's default: local and loopback TCP trust — still no password for local users.
    assert issues == ["pg_trust_local"] and len(rules) == 6


def test_hba_trust_remote_with_separate_mask_and_quoted_database() -> None:
    issues, rules = hba_trust(fx("pg_hba.remote-trust.conf"))
    assert issues == ["pg_trust_remote"]
    assert rules == ['host "quan ly" all 10.10.0.0 255.255.0.0 trust']


@pytest.mark.parametrize(
    ("line", "issues"),
    [
        ("host all all samenet trust", ["pg_trust_remote"]),
        ("hostssl all all db.example.vn trust", ["pg_trust_remote"]),
        ("host all all samehost trust", ["pg_trust_local"]),
        ("host all all 127.0.0.1 255.255.255.255 trust", ["pg_trust_local"]),
        ("host all all all md5  # trust later", []),
        ("local all all trust", ["pg_trust_local"]),
        ("# host all all 0.0.0.0/0 trust", []),
    ],
)
def test_hba_trust_addresses(line: str, issues: list[str]) -> None:
    assert hba_trust(line)[0] == issues


def test_parse_my_cnf_server_groups_only() -> None:
    options, includes = parse_my_cnf(
        "[client]\nport = 3307\n[mysqld]\nloose_skip_grant_tables\nbind_address = '::'\n"
        "!includedir /etc/mysql/conf.d/\n[mysqld_safe]\nskip-networking\n"
    )
    assert options == [("skip-grant-tables", None), ("bind-address", "::")]
    assert includes == [("!includedir", "/etc/mysql/conf.d/")]


def test_parse_simple_yaml_recorded_mongod_conf() -> None:
    data = parse_simple_yaml(fx("mongod.conf.mongodb-org"))
    assert data["net"] == {"port": "27017", "bindIp": "127.0.0.1"}
    assert "security" not in data  # commented out in the package's file
    hardened = parse_simple_yaml(fx("mongod.conf.hardened"))
    assert hardened["net"]["bindIp"] == "127.0.0.1,10.10.5.20"  # type: ignore[index]
    assert hardened["security"] == {"authorization": "enabled"}


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("mariadbd--version.txt", "10.11.19-MariaDB"),
        ("redis-server--version.txt", "7.0.15"),
        ("mongod--version.txt", "7.0.14"),
    ],
)
def test_parse_version_recorded_outputs(name: str, version: str) -> None:
    assert parse_version(fx("versions", name)) == version


# --- PostgreSQL ----------------------------------------------------------------------


def test_debian_postgresql_default_is_secure(tmp_path: Path) -> None:
    section = offline(debian_pg(tmp_path))
    server = only(section)
    assert server.engine == "postgresql" and server.version == "15"
    assert server.listen_addresses == ["127.0.0.1", "::1"] and server.network_exposed is False
    assert server.auth_issues == [] and server.unreadable_files == []
    assert server.running is None
    assert server.config_files == [PG_CONF, PG_HBA]
    assert NOT_LIVE_NOTE in section.notes


def test_initdb_trust_is_local_trust(tmp_path: Path) -> None:
    server = only(offline(debian_pg(tmp_path, "postgresql-initdb-trust/pg_hba.conf")))
    assert server.auth_issues == ["pg_trust_local"]
    assert server.network_exposed is False


def test_remote_trust_and_listen_all_through_conf_d(tmp_path: Path) -> None:
    root = debian_pg(tmp_path, "pg_hba.remote-trust.conf")
    write(root, "/etc/postgresql/15/main/conf.d/10-listen.conf", "listen_addresses = '*'\n")
    server = only(offline(root))
    assert server.auth_issues == ["pg_trust_remote"]
    assert server.listen_addresses == ["0.0.0.0", "::"] and server.network_exposed is True
    assert "/etc/postgresql/15/main/conf.d/10-listen.conf" in server.config_files


def test_unreadable_pg_hba_without_root(tmp_path: Path) -> None:
    ctx = deny(ctx_for(debian_pg(tmp_path), live=False, is_root=False), PG_HBA)
    section = probe(ctx)
    server = only(section)
    assert server.unreadable_files == [PG_HBA] and server.auth_issues == []
    assert server.network_exposed is False  # postgresql.conf is world-readable on Debian
    assert any("not root" in n for n in section.notes)


def test_rhel_layout_with_alter_system(tmp_path: Path) -> None:
    data = "/var/lib/pgsql/data"
    files = {
        f"{data}/{name}": fx("postgresql-rhel", name)
        for name in ("postgresql.conf", "pg_hba.conf", "PG_VERSION")
    }
    files["/etc/redhat-release"] = "Red Hat Enterprise Linux release 9.4 (Plow)\n"
    files[f"{data}/postgresql.auto.conf"] = (
        fx("postgresql-rhel", "postgresql.auto.conf") + "listen_addresses = '10.10.5.20'\n"
    )
    server = only(offline(make_root(tmp_path, files, bins=["/usr/bin/postgres"])))
    assert server.version == "15" and server.auth_issues == []
    assert server.listen_addresses == ["10.10.5.20"] and server.network_exposed is True


def test_postgresql_config_without_server_binary_is_a_note(tmp_path: Path) -> None:
    root = make_root(tmp_path, {PG_CONF: fx("postgresql-debian12", "postgresql.conf")})
    section = offline(root)
    assert section.servers == []
    assert any("no server binary" in n for n in section.notes)


# --- MySQL / MariaDB -------------------------------------------------------------------


def test_debian_mariadb_default(tmp_path: Path) -> None:
    server = only(offline(debian_mariadb(tmp_path)))
    assert server.engine == "mariadb"
    assert server.listen_addresses == ["127.0.0.1"] and server.network_exposed is False
    assert server.auth_issues == []
    assert "/etc/mysql/mariadb.conf.d/50-server.cnf" in server.config_files
    assert "/etc/mysql/my.cnf.fallback" not in server.config_files


def test_mariadb_skip_grant_tables(tmp_path: Path) -> None:
    extra = {"/etc/mysql/mariadb.conf.d/60-recovery.cnf": fx("50-server.skip-grant.cnf")}
    server = only(offline(debian_mariadb(tmp_path, extra)))
    assert server.auth_issues == ["mysql_skip_grant_tables"]
    assert server.listen_addresses == ["0.0.0.0"] and server.network_exposed is True


def test_mariadb_socket_only(tmp_path: Path) -> None:
    extra = {"/etc/mysql/mariadb.conf.d/70-socket.cnf": fx("50-server.socket-only.cnf")}
    server = only(offline(debian_mariadb(tmp_path, extra)))
    assert server.listen_addresses == [] and server.network_exposed is False


def test_mysql_without_bind_address_listens_everywhere(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/etc/my.cnf": "[mysqld]\ndatadir=/var/lib/mysql\n"},
                     bins=["/usr/libexec/mysqld"])  # fmt: skip
    server = only(offline(root))
    assert server.engine == "mysql"
    assert server.listen_addresses == ["0.0.0.0", "::"] and server.network_exposed is True


def test_client_config_only_is_no_server(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    shutil.copytree(DB / "mariadb-debian12", root / "etc" / "mysql")
    assert offline(root).servers == []


# --- Redis -------------------------------------------------------------------------


def redis_root(tmp_path: Path, extra: str = "", files: dict[str, str] | None = None) -> Path:
    conf = fx("redis.conf.debian12") + extra
    return make_root(
        tmp_path, {"/etc/redis/redis.conf": conf, **(files or {})}, bins=["/usr/bin/redis-server"]
    )


def test_debian_redis_has_no_password(tmp_path: Path) -> None:
    server = only(offline(redis_root(tmp_path)))
    assert server.engine == "redis"
    assert server.auth_issues == ["redis_no_password"]
    assert server.listen_addresses == ["127.0.0.1", "::1"] and server.network_exposed is False


def test_redis_requirepass(tmp_path: Path) -> None:
    server = only(offline(redis_root(tmp_path, "requirepass khong-dung-that\n")))
    assert server.auth_issues == []


def test_redis_open_to_all_without_protected_mode(tmp_path: Path) -> None:
    server = only(offline(redis_root(tmp_path, "bind * -::*\nprotected-mode no\n")))
    assert server.auth_issues == ["redis_no_password", "redis_protected_mode_off"]
    assert server.listen_addresses == ["0.0.0.0", "::"] and server.network_exposed is True


def test_redis_aclfile_gives_the_default_user_a_password(tmp_path: Path) -> None:
    root = redis_root(
        tmp_path,
        "aclfile /etc/redis/users.acl\n",
        {"/etc/redis/users.acl": fx("redis.acl-default")},
    )
    server = only(offline(root))
    assert server.auth_issues == []
    assert "/etc/redis/users.acl" in server.config_files


def test_redis_unreadable_aclfile_is_not_judged(tmp_path: Path) -> None:
    root = redis_root(
        tmp_path,
        "aclfile /etc/redis/users.acl\n",
        {"/etc/redis/users.acl": fx("redis.acl-default")},
    )
    ctx = deny(ctx_for(root, live=False, is_root=False), "/etc/redis/users.acl")
    server = only(probe(ctx))
    assert server.auth_issues == [] and server.unreadable_files == ["/etc/redis/users.acl"]


def test_unreadable_redis_conf_is_not_judged(tmp_path: Path) -> None:
    # Debian installs /etc/redis/redis.conf as 0640 redis:redis.
    ctx = deny(ctx_for(redis_root(tmp_path), live=False, is_root=False), "/etc/redis/redis.conf")
    server = only(probe(ctx))
    assert server.auth_issues == [] and server.unreadable_files == ["/etc/redis/redis.conf"]
    assert server.network_exposed is None and server.listen_addresses == []


def test_live_sockets_decide_exposure_of_an_unreadable_config(tmp_path: Path, sockets) -> None:
    sockets([listen("0.0.0.0", 6379, 203)])
    ctx = deny(
        ctx_for(redis_root(tmp_path), FakeRunner(), is_root=False, processes={"redis-server"}),
        "/etc/redis/redis.conf",
    )
    server = only(probe(ctx))
    assert server.listen_addresses == ["0.0.0.0"] and server.network_exposed is True
    assert server.auth_issues == [] and server.unreadable_files == ["/etc/redis/redis.conf"]


def test_mongodb_without_config_file_runs_with_defaults(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/etc/hostname": "db-01\n"}, bins=["/usr/bin/mongod"])
    section = offline(root)
    server = only(section)
    assert server.listen_addresses == ["127.0.0.1"]
    assert server.auth_issues == ["mongodb_authorization_disabled"]
    assert any("defaults assumed" in n for n in section.notes)


def test_redis_leftover_config_without_binary(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/etc/redis/redis.conf": fx("redis.conf.debian12")})
    section = offline(root)
    assert section.servers == [] and any("no server binary" in n for n in section.notes)


# --- MongoDB -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "listen", "issues"),
    [
        ("mongod.conf.mongodb-org", ["127.0.0.1"], ["mongodb_authorization_disabled"]),
        ("mongod.conf.legacy-ini", ["127.0.0.1"], ["mongodb_authorization_disabled"]),
        ("mongod.conf.hardened", ["127.0.0.1", "10.10.5.20"], []),
        ("mongod.conf.open", ["0.0.0.0", "::"], ["mongodb_authorization_disabled"]),
    ],
)
def test_mongodb(tmp_path: Path, conf: str, listen: list[str], issues: list[str]) -> None:
    root = make_root(tmp_path, {"/etc/mongod.conf": fx(conf)}, bins=["/usr/bin/mongod"])
    server = only(offline(root))
    assert server.engine == "mongodb"
    assert server.listen_addresses == listen and server.auth_issues == issues
    assert server.network_exposed is (listen != ["127.0.0.1"])


# --- nothing, not a root ------------------------------------------------------------------


def test_no_database_installed(tmp_path: Path) -> None:
    section = offline(make_root(tmp_path, {"/etc/hostname": "srv-01\n"}))
    assert section.status == "ok" and section.servers == []


def test_root_without_etc_is_unknown(tmp_path: Path) -> None:
    section = offline(tmp_path)
    assert section.status == "unknown" and "/etc" in (section.reason or "")


# --- live -----------------------------------------------------------------------------

PIDS = {201: "postgres", 202: "mariadbd", 203: "redis-server"}


def listen(address: str, port: int, pid: int | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        type=socket.SOCK_STREAM, laddr=(address, port), raddr=(), status="LISTEN", pid=pid
    )


@pytest.fixture
def sockets(monkeypatch: pytest.MonkeyPatch):
    def set_sockets(connections: list[Any]) -> None:
        monkeypatch.setattr(psutil, "net_connections", lambda kind="tcp": connections)
        monkeypatch.setattr(
            psutil, "Process", lambda pid: SimpleNamespace(name=lambda: PIDS[pid])
        )

    return set_sockets


def test_live_sockets_override_the_configuration(tmp_path: Path, sockets) -> None:
    root = debian_mariadb(tmp_path)
    write(root, PG_CONF, fx("postgresql-debian12", "postgresql.conf"))
    write(root, PG_HBA, fx("postgresql-debian12", "pg_hba.conf"))
    write(root, PG_BIN, "#!/bin/sh\n", mode=0o755)
    sockets([listen("0.0.0.0", 5432, 201), listen("::", 5432, 201), listen("127.0.0.1", 3306, 202)])
    runner = FakeRunner({"mariadbd --version": result(fx("versions", "mariadbd--version.txt"))})
    section = probe(ctx_for(root, runner, processes={"postgres", "mariadbd", "mysqld"}))
    pg, maria = section.servers
    assert pg.running is True and pg.listen_addresses == ["0.0.0.0", "::"]
    assert pg.network_exposed is True  # configured 'localhost', but the live socket says all
    assert any("differ from the configuration" in n for n in section.notes)
    assert maria.running is True and maria.version == "10.11.19-MariaDB"
    assert maria.listen_addresses == ["127.0.0.1"] and maria.network_exposed is False


def test_live_not_root_matches_sockets_by_port(tmp_path: Path, sockets) -> None:
    sockets([listen("10.10.5.20", 6379), listen("0.0.0.0", 22)])
    root = redis_root(tmp_path, "bind 10.10.5.20\n")
    section = probe(ctx_for(root, FakeRunner(), is_root=False, processes={"redis-server"}))
    server = only(section)
    assert server.running is True and server.listen_addresses == ["10.10.5.20"]
    assert server.version is None  # redis-server --version not available here


def test_live_stopped_server_keeps_configured_addresses(tmp_path: Path, sockets) -> None:
    sockets([])
    server = only(probe(ctx_for(debian_pg(tmp_path), FakeRunner(), processes=set())))
    assert server.running is False and server.listen_addresses == ["127.0.0.1", "::1"]


def test_live_machine_returns_a_valid_section() -> None:
    section = probe(ProbeContext())
    assert isinstance(section, DatabaseSection)
    DatabaseSection.model_validate(section.model_dump())
