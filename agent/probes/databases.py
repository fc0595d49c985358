"""Database servers: where they listen and whether they let anyone in without a password.

Everything comes from configuration files, the process table and the socket
table.  The agent NEVER connects to a database or to any socket, so what lives
inside a database (MySQL/MariaDB user table, PostgreSQL roles) is not seen.

A server counts as installed when its server binary exists under the root or
one of its processes runs; configuration files alone (left behind by a removed
package, or ``/etc/mysql`` from the client libraries) are only noted.

* PostgreSQL: every cluster ``/etc/postgresql/<version>/<cluster>/postgresql.conf``
  (Debian) and ``/var/lib/pgsql/data``, ``/var/lib/pgsql/<version>/data`` (RHEL,
  PGDG), with ``include``/``include_if_exists``/``include_dir`` and the data
  directory's ``postgresql.auto.conf``.  ``listen_addresses`` (default
  ``localhost``; ``*`` is every interface).  ``pg_hba.conf`` (``hba_file``) rules
  with method ``trust``: ``host*`` from a non-loopback address →
  ``pg_trust_remote``; ``local``, or ``host*`` from loopback → ``pg_trust_local``.
* MySQL/MariaDB: ``/etc/mysql/my.cnf`` (or ``mariadb.cnf``/``mysql.cnf``),
  ``/etc/my.cnf`` and the files they ``!include``/``!includedir`` (every
  ``/etc/mysql/**/*.cnf`` when no main file is found), server groups only
  (``[mysqld]``, ``[mariadb]``, ``[server]``…).  ``bind-address`` (default: every
  interface), ``skip-networking`` (local socket only), ``skip-grant-tables`` →
  ``mysql_skip_grant_tables``.
* Redis: ``/etc/redis/redis.conf`` (``/etc/redis.conf``, ``/etc/redis/redis-server.conf``):
  ``bind`` (default: every interface), ``port 0`` (local socket only),
  ``requirepass`` or a ``user default`` rule with a password (also in the
  ``aclfile``); without one → ``redis_no_password``, and ``protected-mode no``
  on top → ``redis_protected_mode_off``.
* MongoDB: ``/etc/mongod.conf`` (YAML, or the pre-2.6 ``key = value`` format):
  ``net.bindIp`` (default ``127.0.0.1``), ``net.bindIpAll``;
  ``security.authorization`` other than ``enabled`` →
  ``mongodb_authorization_disabled``.

On a live host the listening TCP sockets of the server's processes (or of its
configured port) replace the configured addresses, and ``running`` comes from
the process table; the version from the server binary's ``--version`` (which
does not connect anywhere).
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from agent.probes import unknown
from agent.probes.base import CommandTimeout, ProbeContext, ToolMissing
from agent.probes.encryption import is_loopback, listening_tcp
from agent.report import DatabaseSection, DatabaseServer, ListeningSocket

ALL_IPV4 = "0.0.0.0"
ALL_IPV6 = "::"
LOCALHOST = ["127.0.0.1", "::1"]
VERSION_TIMEOUT = 5.0
MAX_INCLUDE_DEPTH = 10

NOT_LIVE_NOTE = (
    "not a live host: running state, live sockets and versions are not read; "
    "listen addresses come from the configuration"
)
NOT_INSIDE_NOTE = (
    "accounts inside the databases (MySQL/MariaDB user table, PostgreSQL roles) are not "
    "inspected: the agent never connects to a database"
)


@dataclass
class _Found:
    """What one engine's configuration says, before live corroboration."""

    listen: list[str] = field(default_factory=list)
    port: int | None = None
    issues: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    version: str | None = None
    # False when the main configuration file could not be read: listen is then unknown.
    config_known: bool = True


def _add(items: list[str], *values: str) -> None:
    for value in values:
        if value not in items:
            items.append(value)


def _read(ctx: ProbeContext, path: str, found: _Found) -> str | None:
    """Read a configuration file; an existing but unreadable one is recorded."""
    text = ctx.read_text(path)
    if text is not None:
        _add(found.files, path)
    elif ctx.exists(path):
        _add(found.unreadable, path)
    return text


def _glob(ctx: ProbeContext, pattern: str) -> list[str]:
    """Absolute host paths matching a pattern under the root, sorted."""
    base = str(ctx.root).rstrip("/")
    matches = glob.glob(str(ctx.path(pattern)), recursive=True)
    return sorted("/" + os.path.relpath(m, base) if base else m for m in matches)


def _is_loopback_name(address: str) -> bool:
    return address == "localhost" or is_loopback(address)


def exposed(addresses: Iterable[str]) -> bool:
    """Some address is beyond loopback (hostnames other than localhost count)."""
    return any(not _is_loopback_name(a) for a in addresses)


def _int(value: str | None, default: int | None) -> int | None:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _bool(value: str | None, default: bool = True) -> bool:
    """A my.cnf/postgresql.conf boolean; a bare option (value None) is true."""
    if value is None or value == "":
        return default
    return value.strip().strip("'\"").lower() in ("1", "on", "true", "yes", "enabled", "force")


# --- PostgreSQL ---------------------------------------------------------------------

_PG_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?:=\s*|\s+)(.*?)\s*$")


def _pg_value(raw: str) -> str:
    """Strip a trailing comment and quotes from a postgresql.conf value."""
    raw = raw.strip()
    if raw.startswith("'"):
        out: list[str] = []
        i = 1
        while i < len(raw):
            ch = raw[i]
            if ch == "'" and i + 1 < len(raw) and raw[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            if ch == "\\" and i + 1 < len(raw):
                out.append(raw[i + 1])
                i += 2
                continue
            if ch == "'":
                break
            out.append(ch)
            i += 1
        return "".join(out)
    return raw.split("#", 1)[0].strip()


def parse_pg_conf(text: str) -> list[tuple[str, str]]:
    """(name, value) settings of a postgresql.conf, in order (include directives too)."""
    settings: list[tuple[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _PG_LINE.match(stripped)
        if match:
            settings.append((match.group(1).lower(), _pg_value(match.group(2))))
    return settings


def _pg_settings(
    ctx: ProbeContext, path: str, found: _Found, depth: int = 0
) -> dict[str, str]:
    """Settings of a postgresql.conf with its includes; later ones win."""
    text = _read(ctx, path, found)
    if text is None or depth > MAX_INCLUDE_DEPTH:
        return {}
    here = str(PurePosixPath(path).parent)
    result: dict[str, str] = {}
    for name, value in parse_pg_conf(text):
        if name in ("include", "include_if_exists", "include_dir"):
            target = value if value.startswith("/") else f"{here}/{value}"
            targets = _glob(ctx, f"{target}/*.conf") if name == "include_dir" else [target]
            for included in targets:
                result.update(_pg_settings(ctx, included, found, depth + 1))
        else:
            result[name] = value
    return result


def pg_listen(value: str) -> list[str]:
    """Addresses of a ``listen_addresses`` value; empty means Unix sockets only."""
    addresses: list[str] = []
    for item in (v.strip() for v in value.split(",")):
        if item == "*":
            _add(addresses, ALL_IPV4, ALL_IPV6)
        elif item == "localhost":
            _add(addresses, *LOCALHOST)
        elif item:
            _add(addresses, item)
    return addresses


_HBA_HOST_TYPES = ("host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")


def _hba_fields(line: str) -> list[str]:
    """Split a pg_hba.conf line into fields (double quotes group, # starts a comment)."""
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    started = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            started = True
            current.append(ch)
        elif ch == "#" and not quoted:
            break
        elif ch in " \t" and not quoted:
            if started:
                fields.append("".join(current))
                current, started = [], False
        else:
            current.append(ch)
            started = True
    if started:
        fields.append("".join(current))
    return fields


def _hba_local_address(address: str) -> bool:
    """A pg_hba address that only matches connections from this machine."""
    if address in ("samehost", "localhost"):
        return True
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return False  # all, samenet, a hostname or a .domain suffix
    return bool(network.is_loopback)


def hba_trust(text: str) -> tuple[list[str], list[str]]:
    """(issue codes, offending rules) of pg_hba.conf rules that use ``trust``."""
    issues: list[str] = []
    rules: list[str] = []
    for raw in text.splitlines():
        fields = _hba_fields(raw)
        if len(fields) < 4:
            continue
        kind = fields[0]
        if kind == "local":
            method = fields[3]
            code = "pg_trust_local"
        elif kind in _HBA_HOST_TYPES and len(fields) >= 5:
            address = fields[3]
            mask_given = "/" not in address and len(fields) >= 6 and _is_ip(fields[4])
            method = fields[5] if mask_given else fields[4]
            if mask_given:
                address = f"{address}/{fields[4]}"
            code = "pg_trust_local" if _hba_local_address(address) else "pg_trust_remote"
        else:
            continue
        if method == "trust":
            _add(issues, code)
            rules.append(" ".join(fields))
    return issues, rules


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class PgCluster:
    version: str | None
    conf: str
    data_dir: str | None


def _pg_clusters(ctx: ProbeContext) -> list[PgCluster]:
    clusters = [
        PgCluster(version=PurePosixPath(p).parts[3], conf=p, data_dir=None)
        for p in _glob(ctx, "/etc/postgresql/*/*/postgresql.conf")
    ]
    for data_dir in ["/var/lib/pgsql/data", *_glob(ctx, "/var/lib/pgsql/*/data")]:
        conf = f"{data_dir}/postgresql.conf"
        if ctx.exists(conf) or ctx.exists(f"{data_dir}/PG_VERSION"):
            version = (ctx.read_text(f"{data_dir}/PG_VERSION") or "").strip() or None
            clusters.append(PgCluster(version=version, conf=conf, data_dir=data_dir))
    return clusters


def _pg_installed(ctx: ProbeContext) -> bool:
    return bool(
        _glob(ctx, "/usr/lib/postgresql/*/bin/postgres")
        or _glob(ctx, "/usr/pgsql-*/bin/postgres")
        or ctx.exists("/usr/bin/postgres")
    )


def postgresql(ctx: ProbeContext) -> list[tuple[_Found, str | None]]:
    """One finding per cluster (its version from the path or PG_VERSION)."""
    out: list[tuple[_Found, str | None]] = []
    for cluster in _pg_clusters(ctx):
        found = _Found()
        settings = _pg_settings(ctx, cluster.conf, found)
        if cluster.conf in found.unreadable:
            found.config_known = False
            out.append((found, cluster.version))
            continue
        data_dir = settings.get("data_directory") or cluster.data_dir
        if data_dir:
            auto = f"{data_dir}/postgresql.auto.conf"
            auto_text = ctx.read_text(auto)
            if auto_text is not None:  # ALTER SYSTEM settings win over postgresql.conf
                _add(found.files, auto)
                settings.update(dict(parse_pg_conf(auto_text)))
            elif ctx.exists(data_dir) and not os.access(ctx.path(data_dir), os.R_OK | os.X_OK):
                found.notes.append(
                    f"{data_dir} not readable: ALTER SYSTEM settings (postgresql.auto.conf) "
                    "not seen"
                )
        found.listen = pg_listen(settings.get("listen_addresses", "localhost"))
        found.port = _int(settings.get("port"), 5432)
        conf_dir = str(PurePosixPath(cluster.conf).parent)
        hba = settings.get("hba_file") or f"{conf_dir}/pg_hba.conf"
        hba_text = _read(ctx, hba, found)
        if hba_text is not None:
            found.issues, rules = hba_trust(hba_text)
            if rules:
                found.notes.append(f"{hba}: trust rules: " + "; ".join(rules))
            if re.search(r"^\s*include", hba_text, re.M) or re.search(r"\s@\S", hba_text):
                found.notes.append(f"{hba}: include files / @file lists are not followed")
        elif hba not in found.unreadable:
            found.notes.append(f"{hba} not found")
        out.append((found, cluster.version))
    return out


# --- MySQL / MariaDB ------------------------------------------------------------------

MYSQL_MAIN_FILES = (
    "/etc/my.cnf",
    "/etc/mysql/my.cnf",
    "/etc/mysql/mariadb.cnf",
    "/etc/mysql/mysql.cnf",
)
_MYSQL_SERVER_GROUP = re.compile(r"^(mysqld|mariadb|mariadbd|server|mysqld-[\d.]+|mariadb-[\d.]+)$")


def parse_my_cnf(text: str) -> tuple[list[tuple[str, str | None]], list[tuple[str, str]]]:
    """(server options, include directives) of one option file.

    Options are (name with ``-``, value or None) from server groups only; the
    ``loose-`` prefix is dropped.  Includes are ("!include"|"!includedir", path).
    """
    options: list[tuple[str, str | None]] = []
    includes: list[tuple[str, str]] = []
    in_server = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("!include"):
            directive, _, path = line.partition(" ")
            if directive in ("!include", "!includedir") and path.strip():
                includes.append((directive, path.strip()))
            continue
        if line.startswith("["):
            in_server = bool(_MYSQL_SERVER_GROUP.match(line.strip("[] ").lower()))
            continue
        if not in_server:
            continue
        name, eq, value = line.partition("=")
        key = name.strip().lower().replace("_", "-")
        key = key.removeprefix("loose-")
        val = value.split("#", 1)[0].strip().strip("'\"") if eq else None
        options.append((key, val))
    return options, includes


def _my_cnf(
    ctx: ProbeContext, path: str, found: _Found, seen: set[str], depth: int = 0
) -> list[tuple[str, str | None]]:
    if path in seen or depth > MAX_INCLUDE_DEPTH:
        return []
    seen.add(path)
    text = _read(ctx, path, found)
    if text is None:
        return []
    options, includes = parse_my_cnf(text)
    result = list(options)
    for directive, target in includes:
        targets = _glob(ctx, f"{target}/*.cnf") if directive == "!includedir" else [target]
        for included in targets:
            result += _my_cnf(ctx, included, found, seen, depth + 1)
    return result


def _mysql_engine(ctx: ProbeContext) -> str | None:
    if ctx.exists("/usr/sbin/mariadbd") or ctx.exists("/usr/libexec/mariadbd"):
        return "mariadb"
    for path in ("/usr/sbin/mysqld", "/usr/libexec/mysqld"):
        target = ctx.path(path)
        if target.exists():
            try:
                real = os.path.basename(os.path.realpath(target))
            except OSError:
                real = ""
            return "mariadb" if "mariadb" in real else "mysql"
    return None


def mysql(ctx: ProbeContext) -> _Found:
    found = _Found(port=3306)
    seen: set[str] = set()
    options: list[tuple[str, str | None]] = []
    mains = [p for p in MYSQL_MAIN_FILES if ctx.exists(p)]
    for main in mains:
        options += _my_cnf(ctx, main, found, seen)
    if not mains:
        for path in _glob(ctx, "/etc/mysql/**/*.cnf"):
            options += _my_cnf(ctx, path, found, seen)
    values: dict[str, str | None] = {}
    for key, value in options:
        values[key] = value
    if "skip-grant-tables" in values and _bool(values["skip-grant-tables"]):
        found.issues.append("mysql_skip_grant_tables")
    found.port = _int(values.get("port"), found.port)
    if "skip-networking" in values and _bool(values["skip-networking"]):
        found.listen = []
        found.port = None
    else:
        bind = values.get("bind-address") or "*"
        found.listen = []
        for item in (b.strip() for b in bind.split(",")):
            if item in ("*", "::"):
                _add(found.listen, ALL_IPV4, ALL_IPV6)
            elif item == "0.0.0.0":
                _add(found.listen, ALL_IPV4)
            elif item == "localhost":
                _add(found.listen, *LOCALHOST)
            elif item:
                _add(found.listen, item)
    return found


# --- Redis --------------------------------------------------------------------------

REDIS_CONFS = ("/etc/redis/redis.conf", "/etc/redis.conf", "/etc/redis/redis-server.conf")


def _redis_directives(
    ctx: ProbeContext, path: str, found: _Found, depth: int = 0
) -> list[list[str]]:
    text = _read(ctx, path, found)
    if text is None or depth > MAX_INCLUDE_DEPTH:
        return []
    directives: list[list[str]] = []
    for raw in text.splitlines():
        words = raw.strip().split()
        if not words or words[0].startswith("#"):
            continue
        words[0] = words[0].lower()
        if words[0] == "include" and len(words) > 1:
            for included in _glob(ctx, words[1]):
                directives += _redis_directives(ctx, included, found, depth + 1)
        else:
            directives.append(words)
    return directives


def _acl_default_password(words: list[str]) -> bool | None:
    """Whether a ``user default …`` ACL rule closes passwordless access; None if silent.

    ``>secret``/``#hash`` add a password, ``nopass`` opens the user to anyone;
    ``resetpass``/``reset`` leave it without password *and* without nopass, and
    ``off`` disables it: nobody can then log in as ``default`` without a password.
    """
    state: bool | None = None
    enabled: bool | None = None
    for rule in words[2:]:
        if rule.startswith((">", "#")):
            state = True
        elif rule == "nopass":
            state = False
        elif rule in ("resetpass", "reset"):
            state = True
            enabled = False if rule == "reset" else enabled
        elif rule in ("on", "off"):
            enabled = rule == "on"
    return True if enabled is False else state


def redis(ctx: ProbeContext, conf: str) -> _Found:
    found = _Found(port=6379)
    directives = _redis_directives(ctx, conf, found)
    if conf in found.unreadable:
        found.config_known = False
        return found
    if not ctx.exists(conf):
        found.notes.append("no configuration file: built-in defaults assumed")
    has_password: bool | None = None
    protected = True
    bind: list[str] | None = None
    aclfile: str | None = None
    for words in directives:
        key, args = words[0], words[1:]
        if key == "requirepass" and args and args[0] not in ('""', "''"):
            has_password = True
        elif key == "protected-mode" and args:
            protected = args[0].lower() != "no"
        elif key == "bind" and args:
            bind = args
        elif key == "port" and args:
            found.port = _int(args[0], found.port)
        elif key == "aclfile" and args:
            aclfile = args[0].strip("'\"")
        elif key == "user" and len(args) >= 1 and args[0] == "default":
            acl = _acl_default_password(words)
            if acl is not None:
                has_password = acl
    if aclfile is not None:
        text = _read(ctx, aclfile, found)
        if text is not None:
            for raw in text.splitlines():
                words = raw.split()
                if len(words) >= 2 and words[0] == "user" and words[1] == "default":
                    acl = _acl_default_password(words)
                    if acl is not None:
                        has_password = acl
    if found.port == 0:
        found.listen = []
        found.port = None
    elif bind is None:
        found.listen = [ALL_IPV4, ALL_IPV6]
    else:
        found.listen = []
        for item in bind:
            address = item.lstrip("-")  # "-::1": skip if the address is unavailable
            if address == "*":
                _add(found.listen, ALL_IPV4)
            elif address == "::*":
                _add(found.listen, ALL_IPV6)
            else:
                _add(found.listen, address)
    if has_password is not True and not (aclfile and aclfile in found.unreadable):
        found.issues.append("redis_no_password")
        if not protected:
            found.issues.append("redis_protected_mode_off")
    return found


# --- MongoDB ------------------------------------------------------------------------


def parse_simple_yaml(text: str) -> dict[str, object]:
    """Nested block mappings of scalars (enough for mongod.conf); lists are ignored."""
    root: dict[str, object] = {}
    stack: list[tuple[int, dict[str, object]]] = [(-1, root)]
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith(("#", "-")):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        key, sep, value = raw.strip().partition(":")
        if not sep:
            continue
        value = re.sub(r"\s+#.*$", "", value).strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value == "":
            child: dict[str, object] = {}
            parent[key.strip()] = child
            stack.append((indent, child))
        else:
            parent[key.strip()] = value.strip("'\"")
    return root


def _dig(data: dict[str, object], *keys: str) -> str | None:
    node: object = data
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, str) else None


def mongodb(ctx: ProbeContext) -> _Found:
    found = _Found(port=27017)
    text = _read(ctx, "/etc/mongod.conf", found)
    if "/etc/mongod.conf" in found.unreadable:
        found.config_known = False
        return found
    if text is None:
        found.notes.append("no /etc/mongod.conf: built-in defaults assumed")
        text = ""
    if re.search(r"^\s*\w+\s*=", text, re.M) and not re.search(r"^\s*\w+\s*:", text, re.M):
        # pre-2.6 "key = value" format (Debian's old mongodb package)
        values = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition("=") for line in text.splitlines())
            if k.strip() and not k.strip().startswith("#")
        }
        bind = values.get("bind_ip")
        authorized = _bool(values.get("auth"), default=False)
        bind_all = _bool(values.get("bind_ip_all"), default=False)
        port = values.get("port")
    else:
        data = parse_simple_yaml(text)
        bind = _dig(data, "net", "bindIp")
        bind_all = _bool(_dig(data, "net", "bindIpAll"), default=False)
        authorized = (_dig(data, "security", "authorization") or "").lower() == "enabled"
        port = _dig(data, "net", "port")
    found.port = _int(port, found.port)
    if bind_all:
        found.listen = [ALL_IPV4, ALL_IPV6]
    else:
        found.listen = []
        for item in (b.strip() for b in (bind or "127.0.0.1").split(",")):
            if item == "localhost":
                _add(found.listen, *LOCALHOST)
            elif item:
                _add(found.listen, item)
    if not authorized:
        found.issues.append("mongodb_authorization_disabled")
    return found


# --- live corroboration and the probe ---------------------------------------------------

PROCESS_NAMES: dict[str, tuple[str, ...]] = {
    "postgresql": ("postgres", "postmaster"),
    "mysql": ("mysqld",),
    "mariadb": ("mariadbd", "mysqld"),
    "redis": ("redis-server",),
    "mongodb": ("mongod",),
}
VERSION_COMMANDS: dict[str, tuple[str, ...]] = {
    "mysql": ("mysqld", "--version"),
    "mariadb": ("mariadbd", "--version"),
    "redis": ("redis-server", "--version"),
    "mongodb": ("mongod", "--version"),
}
_VERSION = re.compile(r"(?:Ver |v=|version v?|db version v)(\d+(?:\.\d+)+(?:-MariaDB)?)")


def parse_version(output: str) -> str | None:
    match = _VERSION.search(output)
    return match.group(1) if match else None


def _version(ctx: ProbeContext, engine: str, notes: list[str]) -> str | None:
    argv = VERSION_COMMANDS.get(engine)
    if argv is None or not ctx.live:
        return None
    try:
        result = ctx.runner.run(argv, timeout=VERSION_TIMEOUT)
    except ToolMissing:
        return None
    except CommandTimeout as exc:
        notes.append(str(exc))
        return None
    return parse_version(result.stdout + result.stderr) if result.ok else None


def _sockets_of(
    engine: str, port: int | None, sockets: list[ListeningSocket]
) -> list[ListeningSocket]:
    names = PROCESS_NAMES[engine]
    own = [s for s in sockets if s.process and s.process in names]
    if own:
        return own
    # Without root the owner of another user's socket is hidden: fall back to the port.
    return [s for s in sockets if s.process is None and port is not None and s.port == port]


def _server(
    ctx: ProbeContext,
    engine: str,
    found: _Found,
    version: str | None,
    running: set[str] | None,
    sockets: list[ListeningSocket] | None,
    notes: list[str],
) -> DatabaseServer:
    is_running = None if running is None else bool(set(PROCESS_NAMES[engine]) & running)
    listen = found.listen
    known = found.config_known
    if is_running and sockets is not None:
        live = _sockets_of(engine, found.port, sockets)
        if live:
            listen = sorted({s.address for s in live}, key=lambda a: (":" in a, a))
            known = True
            if found.config_known and exposed(listen) != exposed(found.listen):
                notes.append(
                    f"{engine}: live sockets ({', '.join(listen)}) differ from the "
                    f"configuration ({', '.join(found.listen) or 'local socket only'})"
                )
    for note in found.notes:
        notes.append(f"{engine}: {note}")
    if found.unreadable:
        notes.append(f"{engine}: not readable: {', '.join(found.unreadable)}")
    return DatabaseServer(
        engine=engine,  # type: ignore[arg-type]
        version=version or _version(ctx, engine, notes),
        running=is_running,
        listen_addresses=listen,
        network_exposed=exposed(listen) if known else None,
        auth_issues=found.issues,
        config_files=found.files,
        unreadable_files=found.unreadable,
    )


def probe(ctx: ProbeContext) -> DatabaseSection:
    if not ctx.path("/etc").is_dir():
        return unknown(DatabaseSection, "the root has no /etc to read")
    notes: list[str] = []
    running: set[str] | None = ctx.running_processes() if ctx.live else None
    if not ctx.live:
        notes.append(NOT_LIVE_NOTE)
    procs = running or set()

    candidates: list[tuple[str, _Found, str | None]] = []
    pg_clusters = postgresql(ctx)
    if pg_clusters and (_pg_installed(ctx) or procs & set(PROCESS_NAMES["postgresql"])):
        candidates += [("postgresql", found, version) for found, version in pg_clusters]
    elif pg_clusters:
        notes.append("postgresql: configuration found but no server binary (package removed?)")
    elif _pg_installed(ctx):
        notes.append("postgresql: server binary found but no cluster configuration")

    engine = _mysql_engine(ctx)
    if engine is None and procs & {"mariadbd", "mysqld"}:
        engine = "mariadb" if "mariadbd" in procs else "mysql"
    if engine is not None:
        candidates.append((engine, mysql(ctx), None))

    redis_conf = next((p for p in REDIS_CONFS if ctx.exists(p)), None)
    redis_bin = ctx.exists("/usr/bin/redis-server") or ctx.exists("/usr/sbin/redis-server")
    if redis_bin or "redis-server" in procs:
        candidates.append(("redis", redis(ctx, redis_conf or REDIS_CONFS[0]), None))
    elif redis_conf is not None:
        notes.append("redis: configuration found but no server binary (package removed?)")

    if ctx.exists("/usr/bin/mongod") or "mongod" in procs:
        candidates.append(("mongodb", mongodb(ctx), None))
    elif ctx.exists("/etc/mongod.conf"):
        notes.append("mongodb: configuration found but no server binary (package removed?)")

    sockets: list[ListeningSocket] | None = None
    if ctx.live and candidates:
        sockets = listening_tcp(ctx, notes)
    servers = [
        _server(ctx, engine, found, version, running, sockets, notes)
        for engine, found, version in candidates
    ]
    if servers:
        notes.append(NOT_INSIDE_NOTE)
    if any(s.unreadable_files for s in servers) and not ctx.is_root:
        notes.append("not root: some database configuration files are not readable")
    return DatabaseSection(servers=servers, notes=notes)
