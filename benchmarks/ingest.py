#!/usr/bin/env python3
"""Ingest throughput and province-wide query latency on a real PostgreSQL.

Stands up the collector (``uvicorn --workers N``) on PostgreSQL (a throwaway
server started with tests/pg.py, or ``--database-url`` of an empty database),
seeds ``--agencies`` agencies and ``--hosts`` hosts, each with a credential and
one stored full report (``--packages`` packages) whose findings come from the
real evaluation (``ingest.evaluate_report``), then drives the collector over
HTTP with simulated agents:

1. delta phase: each agent sends software deltas (one package upgraded) on
   top of its last report, as agent/report.py builds them (base_report_id,
   inventory_hash of the result), for ``--duration`` seconds;
2. full phase: some agents send their full inventory, for ``--duration`` seconds;
3. ``GET /api/v1/province/compliance``: ``--queries`` times, p95 latency.

Then the stored report count must equal the accepted count (lost=0).  Bodies
are serialised and gzipped before the clock starts, and sent by
``--clients`` processes with a minimal asyncio HTTP/1.1 client, so the load
generator takes little of the CPU the collector needs (its CPU time is printed).
Requests go over kept-alive connections that each client process pools, the
most recently used first, as the TLS reverse proxy of deploy/ (Caddy) pools its
connections to the collector: a worker that answers sooner gets its connection
back sooner and takes more of the load.  ``--connect-per-report`` opens a
connection per report instead, as agents posting to the collector directly do.
``--concurrency`` requests are in flight at once (default 128: a province's
agents post independently, and at 500 reports/s with ~250 ms per answer about
that many are open at any time); latency percentiles are printed with each phase.

Run from the repository root::

    python benchmarks/ingest.py                # 100 agencies, 10,000 hosts
    python benchmarks/ingest.py --quick        # a smoke run (tiny sizes)

Last line: ``delta_rps=… full_rps=… province_query_p95_ms=… lost=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_TOKEN = "bench-admin-token"
NAMESPACE = uuid.UUID("6f1d3c1e-2a57-4d0b-9a43-5b0c2f4d9e11")
KINDS = ("workstation", "workstation-insecure", "server", "server-stale")


# --- PostgreSQL ------------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server like the tests' (tests/pg.py), with room for a benchmark."""
    import pwd

    from tests import pg

    bindir = pg.postgres_bindir()
    if bindir is None:
        sys.exit("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin; Debian: postgresql)")
    user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    workdir = Path(tempfile.mkdtemp(prefix="posture-bench-pg-"))
    datadir = workdir / "data"
    if user is not None:
        os.chown(workdir, user.pw_uid, user.pw_gid)
    port = pg._free_port()
    pg._run_as(
        user,
        [str(bindir / "initdb"), "-D", str(datadir), "-U", pg.SUPERUSER, "-A", "trust",
         "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
    )  # fmt: skip
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=200 -c shared_buffers=256MB -c maintenance_work_mem=256MB "
        "-c max_wal_size=4GB -c checkpoint_timeout=30min"
    )
    pg._run_as(
        user,
        [str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(workdir / "server.log"),
         "-o", options, "-w", "-t", "60", "start"],
    )  # fmt: skip
    try:
        server = pg.PostgresServer(f"postgresql+psycopg://{pg.SUPERUSER}@127.0.0.1:{port}/postgres")
        yield server.url_for(server.create_database(name="posture_bench"))
    finally:
        pg._run_as(user, [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"])
        shutil.rmtree(workdir, ignore_errors=True)


# --- reports ---------------------------------------------------------------------------


def package_names(count: int) -> list[tuple[str, str, str]]:
    """``count`` Debian-like packages (name, arch, version), sorted, the agent's order."""
    base = [
        ("clamav", "amd64", "1.0.5+dfsg-1~deb12u1"),
        ("nftables", "amd64", "1.0.6-2+deb12u2"),
        ("suricata", "amd64", "1:6.0.10-1"),
        ("openssh-server", "amd64", "1:9.2p1-2+deb12u3"),
        ("rsyslog", "amd64", "8.2302.0-1"),
        ("auditd", "amd64", "1:3.0.9-1"),
    ]
    stems = ("lib", "python3-", "fonts-", "x11-", "gir1.2-", "node-", "perl-", "golang-")
    i = 0
    while len(base) < count:
        stem = stems[i % len(stems)]
        arch = "all" if i % 5 == 0 else "amd64"
        base.append((f"{stem}pkg{i:05d}", arch, f"{1 + i % 7}.{i % 13}.{i % 29}-{1 + i % 3}"))
        i += 1
    return sorted(base[:count])


def secret_of(host_id: int) -> str:
    return hashlib.sha256(f"bench-secret-{host_id}".encode()).hexdigest()


def credential_of(host_id: int) -> str:
    from collector.tokens import format_agent_credential

    return format_agent_credential(host_id, secret_of(host_id))  # credential id = host id


def seed_report_id(host_id: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"seed-{host_id}")


def kind_of(host_id: int) -> str:
    return KINDS[host_id % len(KINDS)]


def role_of(kind: str) -> str:
    return "server" if kind.startswith("server") else "workstation"


def template_report(kind: str, collected_at: datetime, packages: list[tuple[str, str, str]]) -> Any:
    """A realistic report of ``kind`` (tests/factories.py), full inventory."""
    from agent.report import Package, SoftwareSection, inventory_hash
    from tests import factories
    from tests.collector.conftest import insecure_sections, make_report

    pkgs = [Package(name=n, arch=a, version=v) for n, a, v in packages]
    software = SoftwareSection(manager="dpkg", packages=pkgs, inventory_hash=inventory_hash(pkgs))
    extra: dict[str, Any] = {"software": software}
    if kind == "workstation-insecure":
        extra.update(insecure_sections())
    if kind == "server-stale":
        extra["patches"] = factories.stale_patches(collected_at)
    if kind.startswith("server"):
        report = factories.make_report(collected_at, "tpl", "tpl", "server", **extra)
        return report.model_copy(update={"agent_version": "0.1.0"})
    return make_report(hostname="tpl", machine_id="tpl", collected_at=collected_at, **extra)


def with_identity(body: dict[str, Any], host_id: int, report_id: uuid.UUID) -> dict[str, Any]:
    host = dict(body["host"])
    host.update(
        hostname=f"h{host_id:05d}",
        machine_id=f"machine-{host_id:08d}",
        fqdn=f"h{host_id:05d}.bench.gov.vn",
    )
    return {**body, "report_id": str(report_id), "host": host}


# --- seeding ---------------------------------------------------------------------------


@dataclass
class Seeded:
    agencies: int
    hosts: int
    packages: int
    seconds: float
    refresh_seconds: float  # one agency's snapshot + province row


def seed(url: str, agencies: int, hosts: int, packages: int, collected_at: datetime) -> Seeded:
    """Agencies, hosts, credentials and one full report per host, as ingest stores them.

    Findings come from ``ingest.evaluate_report`` (the ingest path) once per
    report kind and Mức độ; a sample of hosts is evaluated with its own report
    to prove the findings do not depend on the host's identity.
    """
    import psycopg
    from sqlmodel import Session

    from agent.report import Report, canonical_inventory
    from collector.db import create_db_engine, init_db
    from collector.ingest_store import evaluate_report, findings_digest
    from collector.models import Agency, Host
    from collector.parameters import effective_parameters
    from collector.settings import Settings
    from collector.tokens import hash_secret

    started = time.monotonic()
    settings = Settings(database_url=url)
    engine = create_db_engine(settings)
    init_db(engine)
    engine.dispose()

    names = package_names(packages)
    templates = {k: template_report(k, collected_at, names) for k in KINDS}
    bodies = {k: r.model_dump(mode="json") for k, r in templates.items()}
    findings: dict[tuple[str, int], list[tuple[str, str, str, str]]] = {}
    digests: dict[tuple[str, int], str] = {}  # Host.findings_digest, as ingest sets it
    for kind, report in templates.items():
        for level in range(1, 5):
            agency = Agency(code="x", name="x", level=level, parameters={})
            host = Host(agency_id=0, hostname="x", role=role_of(kind))
            ev = evaluate_report(
                report, report.software, host, agency, effective_parameters(settings, agency)
            )
            findings[(kind, level)] = [
                (f.check_id, f.status, f.severity, json.dumps(f.model_dump(mode="json")))
                for f in ev.findings
            ]
            digests[(kind, level)] = findings_digest(ev.findings)
    level_of = {a: 1 + (a - 1) % 4 for a in range(1, agencies + 1)}

    def agency_of(host_id: int) -> int:
        return 1 + (host_id - 1) % agencies

    for host_id in range(1, hosts + 1, max(1, hosts // 8)):  # identity does not matter
        kind = kind_of(host_id)
        report = Report.model_validate(
            with_identity(bodies[kind], host_id, seed_report_id(host_id))
        )
        level = level_of[agency_of(host_id)]
        agency = Agency(code="x", name="x", level=level, parameters={})
        host = Host(agency_id=0, hostname=f"h{host_id:05d}", role=role_of(kind))
        ev = evaluate_report(
            report, report.software, host, agency, effective_parameters(settings, agency)
        )
        got = [
            (f.check_id, f.status, f.severity, json.dumps(f.model_dump(mode="json")))
            for f in ev.findings
        ]
        if got != findings[(kind, level)]:
            raise SystemExit(f"seeding: findings of host {host_id} differ from its template")

    now = datetime.now(UTC)
    inv_hash = templates[KINDS[0]].software.inventory_hash
    conninfo = url.replace("+psycopg", "")
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        agency_cols = "id, code, name, level, created_at, parameters"
        with cur.copy(f"COPY agency ({agency_cols}) FROM STDIN") as cp:
            for a in range(1, agencies + 1):
                cp.write_row((a, f"ag-{a:03d}", f"Cơ quan {a:03d}", level_of[a], now, "{}"))
        host_cols = (
            "id, agency_id, hostname, machine_id, fqdn, os_family, role, enrolled_at, "
            "last_seen_at, latest_report_id, findings_report_id, findings_digest"
        )
        with cur.copy(f"COPY host ({host_cols}) FROM STDIN") as cp:
            for h in range(1, hosts + 1):
                cp.write_row((
                    h, agency_of(h), f"h{h:05d}", f"machine-{h:08d}", f"h{h:05d}.bench.gov.vn",
                    "linux", role_of(kind_of(h)), now, now, seed_report_id(h), seed_report_id(h),
                    digests[(kind_of(h), level_of[agency_of(h)])],
                ))  # fmt: skip
        with cur.copy(
            "COPY agentcredential (id, host_id, secret_hash, created_at) FROM STDIN"
        ) as cp:
            for h in range(1, hosts + 1):
                cp.write_row((h, h, hash_secret(secret_of(h)), now))
        report_cols = (
            "report_id, host_id, received_at, collected_at, schema_version, agent_version, "
            "evaluated_role, evaluated_level, body"
        )
        with cur.copy(f"COPY storedreport ({report_cols}) FROM STDIN") as cp:
            for h in range(1, hosts + 1):
                kind = kind_of(h)
                body = with_identity(bodies[kind], h, seed_report_id(h))
                cp.write_row((
                    seed_report_id(h), h, now, collected_at, body["schema_version"],
                    body["agent_version"], role_of(kind), level_of[agency_of(h)],
                    json.dumps(body),
                ))  # fmt: skip
        with cur.copy(
            "COPY storedfinding (host_id, report_id, check_id, status, severity, payload) "
            "FROM STDIN"
        ) as cp:
            for h in range(1, hosts + 1):
                for check_id, status, severity, payload in findings[
                    (kind_of(h), level_of[agency_of(h)])
                ]:
                    cp.write_row((h, seed_report_id(h), check_id, status, severity, payload))
        inv_cols = (
            "host_id, report_id, collected_at, inventory_hash, manager, package_count, "
            "baseline_report_id, baseline_collected_at, updated_at, package_keys"
        )
        # as ingest stores it: the canonical key list (collector/inventory.py)
        keys_blob = canonical_inventory((n, a, v) for n, a, v in names)
        with cur.copy(f"COPY hostinventory ({inv_cols}) FROM STDIN") as cp:
            for h in range(1, hosts + 1):
                rid = seed_report_id(h)
                cp.write_row((h, rid, collected_at, inv_hash, "dpkg", len(names), rid,
                              collected_at, now, keys_blob))  # fmt: skip
        with cur.copy(
            "COPY hostpackage (host_id, name, arch, version, seen_since, report_id) FROM STDIN"
        ) as cp:
            buf = io.StringIO()
            for h in range(1, hosts + 1):
                rid = str(seed_report_id(h))
                for name, arch, version in names:
                    buf.write(
                        f"{h}\t{name}\t{arch}\t{version}\t{collected_at.isoformat()}\t{rid}\n"
                    )
                if buf.tell() > 8_000_000:
                    cp.write(buf.getvalue())
                    buf = io.StringIO()
            cp.write(buf.getvalue())
        for table in ("agency", "host", "agentcredential"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")
    # As after real ingests: each agency has a compliance snapshot, which also
    # computes its row of the province view (the cost of one refresh is printed).
    from collector import history

    refresh_started = time.monotonic()
    with Session(create_db_engine(settings)) as session:
        for agency_id in range(1, agencies + 1):
            agency = session.get(Agency, agency_id)
            assert agency is not None
            history.take_snapshot(session, agency, trigger="ingest", settings=settings)
    refresh = (time.monotonic() - refresh_started) / agencies
    return Seeded(agencies, hosts, packages, time.monotonic() - started, refresh)


# --- the collector ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    port: int
    pid: int  # uvicorn's supervisor; the workers are its children


@contextlib.contextmanager
def collector(url: str, workers: int, log: Path) -> Iterator[Running]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTURE_")}
    env.update(
        POSTURE_DATABASE_URL=url,
        POSTURE_ADMIN_TOKEN=ADMIN_TOKEN,
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    command = [
        sys.executable, "-m", "uvicorn", "collector.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"collector exited:\n{log.read_text()}")
            with contextlib.suppress(OSError):
                status, _ = asyncio.run(_request(port, "GET", "/healthz", {}, b""))
                if status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"collector did not start:\n{log.read_text()}")
            time.sleep(0.3)
        yield Running(port, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- a minimal HTTP/1.1 client ------------------------------------------------------------


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        length = 0
        close = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, bytes]:
    conn = Connection(port)
    try:
        return await conn.request(method, path, headers, body)
    finally:
        conn.close()


# --- load ------------------------------------------------------------------------------------


@dataclass
class Job:
    port: int
    kind: str  # delta | full
    host_ids: list[int]
    per_host: int
    packages: int
    duration: float
    concurrency: int
    collected_at: str
    connect_per_report: bool = False


def build_bodies(job: Job) -> dict[int, list[bytes]]:
    """Each host's chain of reports, serialised and gzipped (before the clock starts)."""
    from agent.report import Package, inventory_hash

    names = package_names(job.packages)
    base_time = datetime.fromisoformat(job.collected_at)
    templates = {k: template_report(k, base_time, names).model_dump(mode="json") for k in KINDS}
    # The same upgrades on every host of a kind: one inventory hash chain for all.
    chain: list[tuple[dict[str, Any], dict[str, Any], str]] = []
    current = dict.fromkeys(names)
    for step in range(job.per_host):
        name, arch, _version = names[(step * 37) % len(names)]
        old = next(k for k in current if k[0] == name and k[1] == arch)
        new = (name, arch, f"{old[2]}+bench{step}")
        del current[old]
        current[new] = None
        pkgs = [Package(name=n, arch=a, version=v) for n, a, v in current]
        chain.append(
            (
                {"name": new[0], "arch": new[1], "version": new[2], "installed_at": None},
                {"name": old[0], "arch": old[1], "version": old[2], "installed_at": None},
                inventory_hash(pkgs),
            )
        )
    out: dict[int, list[bytes]] = {}
    for host_id in job.host_ids:
        kind = kind_of(host_id)
        previous = seed_report_id(host_id)
        bodies = []
        for step in range(job.per_host):
            report_id = uuid.uuid4()
            body = with_identity(templates[kind], host_id, report_id)
            when = base_time + timedelta(minutes=step + 1)
            body["collected_at"] = when.isoformat()
            software = dict(body["software"])
            if job.kind == "delta":
                added, removed, digest = chain[step]
                software.update(
                    mode="delta", packages=[], added=[added], removed=[removed],
                    base_report_id=str(previous), inventory_hash=digest,
                )  # fmt: skip
            body["software"] = software
            bodies.append(gzip.compress(json.dumps(body).encode(), compresslevel=6))
            previous = report_id
        out[host_id] = bodies
    return out


def run_job(job: Job) -> dict[str, Any]:
    bodies = build_bodies(job)
    return asyncio.run(_drive(job, bodies))


async def _drive(job: Job, bodies: dict[int, list[bytes]]) -> dict[str, Any]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for host_id in job.host_ids:
        queue.put_nowait(host_id)
    position = dict.fromkeys(job.host_ids, 0)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    cpu0 = time.process_time()
    start = time.monotonic()
    stop = start + job.duration

    idle: list[Connection] = []  # kept-alive connections, the most recently used last

    async def worker() -> None:
        while time.monotonic() < stop:
            try:
                host_id = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            i = position[host_id]
            if i >= len(bodies[host_id]):
                continue  # this host's chain is used up
            headers = {
                "Authorization": f"Bearer {credential_of(host_id)}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            }
            conn = idle.pop() if idle else Connection(job.port)
            t0 = time.monotonic()
            try:
                status, _ = await conn.request(
                    "POST", "/api/v1/reports", headers, bodies[host_id][i]
                )
            except (OSError, ConnectionError, asyncio.IncompleteReadError):
                conn.close()
                status = 0
            if job.connect_per_report:
                conn.close()
            else:
                idle.append(conn)
            latencies.append(time.monotonic() - t0)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 201:
                position[host_id] = i + 1
            queue.put_nowait(host_id)  # the agent sends its next report later

    await asyncio.gather(*(worker() for _ in range(job.concurrency)))
    for conn in idle:
        conn.close()
    elapsed = time.monotonic() - start
    return {
        "statuses": statuses,
        "elapsed": elapsed,
        "cpu": time.process_time() - cpu0,
        "latencies": latencies,
    }


def run_phase(
    kind: str, port: int, host_ids: list[int], args: argparse.Namespace, collected_at: datetime
) -> dict[str, Any]:
    clients = max(1, min(args.clients, len(host_ids)))
    rate_guess = 900 if kind == "delta" else 120
    per_host = max(2, int(rate_guess * args.duration / max(1, len(host_ids))) + 2)
    jobs = [
        Job(port, kind, host_ids[i::clients], per_host, args.packages, args.duration,
            max(1, args.concurrency // clients), collected_at.isoformat(),
            args.connect_per_report)
        for i in range(clients)
    ]  # fmt: skip
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        results = pool.map(run_job, jobs)
    statuses: dict[int, int] = {}
    for r in results:
        for code, n in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    elapsed = max(r["elapsed"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    accepted = statuses.get(201, 0)
    return {
        "kind": kind,
        "sent": sum(statuses.values()),
        "accepted": accepted,
        "statuses": statuses,
        "rps": accepted / elapsed if elapsed else 0.0,
        "elapsed": elapsed,
        "client_cpu": sum(r["cpu"] for r in results),
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else 0.0,
        "p95_ms": 1000 * latencies[int(len(latencies) * 0.95)] if latencies else 0.0,
    }


def server_cpu(collector_pid: int, *, own_postgres: bool) -> dict[str, float]:
    """CPU seconds used so far by the collector's processes and, when this script
    started the server, PostgreSQL's (every ``postgres`` process of the machine)."""
    import psutil

    def seconds(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system

    supervisor = psutil.Process(collector_pid)
    out = {"collector": sum(seconds(p) for p in [supervisor, *supervisor.children(True)])}
    if own_postgres:
        out["postgresql"] = sum(
            seconds(p) for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"
        )
    return out


def stored_reports(url: str) -> int:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT count(*) FROM storedreport").fetchone()
        assert row is not None
        return int(row[0])


async def province_queries(port: int, count: int) -> tuple[list[float], int, int]:
    conn = Connection(port)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    times: list[float] = []
    agencies = hosts = 0
    try:
        for _ in range(count):
            t0 = time.monotonic()
            status, data = await conn.request("GET", "/api/v1/province/compliance", headers, b"")
            times.append(time.monotonic() - t0)
            if status != 200:
                raise SystemExit(f"province query answered {status}: {data[:500]!r}")
            document = json.loads(data)
            agencies = len(document["agencies"])
            hosts = sum(a["hosts"] for a in document["agencies"])
    finally:
        conn.close()
    return times, agencies, hosts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--agencies", type=int, default=100)
    parser.add_argument("--packages", type=int, default=1500, help="packages per host")
    parser.add_argument("--workers", type=int, default=2, help="collector processes")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--full-hosts", type=int, default=400, help="agents sending full reports")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument("--concurrency", type=int, default=128, help="requests in flight")
    parser.add_argument("--queries", type=int, default=50, help="province queries timed")
    parser.add_argument(
        "--connect-per-report",
        action="store_true",
        help="a new connection per report (agents posting to the collector directly)",
    )
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: start one)")
    parser.add_argument("--quick", action="store_true", help="smoke run with tiny sizes")
    args = parser.parse_args(argv)
    if args.quick:
        args.hosts, args.agencies, args.packages = min(args.hosts, 40), min(args.agencies, 4), 60
        args.duration, args.full_hosts, args.queries = min(args.duration, 2.0), 8, 5
        args.concurrency = min(args.concurrency, 8)
    full_hosts = max(1, min(args.full_hosts, args.hosts // 4))

    with contextlib.ExitStack() as stack:
        url = args.database_url or stack.enter_context(throwaway_postgres())
        logdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="posture-bench-")))
        collected_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        seeded = seed(url, args.agencies, args.hosts, args.packages, collected_at)
        print(
            f"seeded {seeded.agencies} agencies, {seeded.hosts} hosts, "
            f"{seeded.packages} packages each, in {seeded.seconds:.1f} s; recomputing one "
            f"agency's compliance (snapshot + province row) takes {seeded.refresh_seconds:.2f} s",
            flush=True,
        )
        before = stored_reports(url)
        with collector(url, args.workers, logdir / "collector.log") as running:
            port = running.port
            ids = list(range(1, args.hosts + 1))
            full_ids, delta_ids = ids[:full_hosts], ids[full_hosts:]
            phases = []
            for kind, host_ids in (("delta", delta_ids), ("full", full_ids)):
                cpu_before = server_cpu(running.pid, own_postgres=args.database_url is None)
                phase = run_phase(kind, port, host_ids, args, collected_at)
                cpu = {
                    name: seconds - cpu_before.get(name, 0.0)
                    for name, seconds in server_cpu(
                        running.pid, own_postgres=args.database_url is None
                    ).items()
                }
                phases.append(phase)
                per_report = ", ".join(
                    f"{name} {1000 * seconds / max(phase['accepted'], 1):.2f}"
                    for name, seconds in cpu.items()
                )
                print(
                    f"{kind}: {phase['accepted']} accepted of {phase['sent']} sent "
                    f"{dict(sorted(phase['statuses'].items()))} in {phase['elapsed']:.1f} s = "
                    f"{phase['rps']:.1f} reports/s; latency p50 {phase['p50_ms']:.0f} ms "
                    f"p95 {phase['p95_ms']:.0f} ms; client CPU {phase['client_cpu']:.1f} s "
                    f"({100 * phase['client_cpu'] / max(phase['elapsed'], 1e-9):.0f}% of one "
                    f"core); server CPU ms per report: {per_report}",
                    flush=True,
                )
            times, agencies, hosts = asyncio.run(province_queries(port, args.queries + 1))
            cold, warm = times[0], sorted(times[1:])
            p95 = 1000 * warm[min(len(warm) - 1, int(len(warm) * 0.95))]
            print(
                f"province query: {agencies} agencies, {hosts} hosts; first {1000 * cold:.0f} ms, "
                f"then p50 {1000 * statistics.median(warm):.1f} ms p95 {p95:.1f} ms "
                f"over {len(warm)} queries",
                flush=True,
            )
        sent = sum(p["sent"] for p in phases)
        accepted = sum(p["accepted"] for p in phases)
        stored = stored_reports(url) - before
        lost = sent - stored  # every report sent must be stored (refused ones count as lost)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(
            f"sent {sent}, accepted {accepted}, stored {stored}; "
            f"benchmark process CPU {usage.ru_utime + usage.ru_stime:.1f} s",
            flush=True,
        )
    delta, full = phases
    print(
        f"delta_rps={delta['rps']:.1f} full_rps={full['rps']:.1f} "
        f"province_query_p95_ms={p95:.1f} lost={lost}"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
