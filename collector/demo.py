"""``posture-collector demo``: the whole chain on this machine, in one command.

1. start the collector (uvicorn on loopback, SQLite file in a work folder);
2. create a demo agency at the chosen Mức độ and an enrollment token (admin API);
3. enroll an agent for this machine, collect its facts, spool and deliver the
   report over HTTP exactly as ``posture-agent run`` does;
4. print this machine's verdicts by article (Điều 16–19 and the related Điều 14
   and 20), in Vietnamese by default;
5. create a dashboard user (province_admin, random password), print the
   dashboard URL and the credentials, and keep serving until Ctrl-C
   (``--no-serve``: exit after printing, as before).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console

from collector.app import create_app
from collector.console import articles_table, failures_table, make_console
from collector.settings import Settings
from policies.engine import group_by_article
from policies.framework import load_framework
from policies.model import VERDICT_LABELS, Finding, RequirementVerdict

DEMO_AGENCY = {"code": "DEMO", "name": "Đơn vị trình diễn (demo)"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_collector(settings: Settings, port: int) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 in a background thread."""
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        # Ctrl-C stops the demo promptly, whatever connections are still open.
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="collector", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the collector did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():  # still shutting down: stop without waiting any longer
            server.force_exit = True
            thread.join(timeout=10)


def run(args: argparse.Namespace) -> int:
    from agent.client import enroll
    from agent.collect import host_identity
    from agent.config import AgentConfig
    from agent.probes.base import ProbeContext
    from agent.service import collect_once, deliver, spool_for

    lang = args.lang
    console = make_console()
    if getattr(args, "workdir", None):
        workdir = Path(args.workdir)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="posture-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = Path(args.db) if args.db else workdir / "collector.db"
    admin_token = secrets.token_urlsafe(24)
    settings = Settings(database_url=f"sqlite:///{db_path}", admin_token=admin_token)
    port = args.port or free_port()
    vi = lang == "vi"

    with running_collector(settings, port) as url:
        console.print(("Bộ thu thập đang chạy tại " if vi else "Collector running at ") + url)
        admin = httpx.Client(
            base_url=f"{url}/api/v1",
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=30,
        )
        agency = admin.get("/agencies").json()
        agency = next((a for a in agency if a["code"] == DEMO_AGENCY["code"]), None)
        if agency is None:
            response = admin.post("/agencies", json={**DEMO_AGENCY, "level": args.level})
            response.raise_for_status()
            agency = response.json()
        token = admin.post(
            f"/agencies/{agency['id']}/enrollment-tokens", json={"label": "demo"}
        ).json()["token"]

        role = getattr(args, "role", None) or "unknown"
        config = AgentConfig(state_dir=workdir / "agent", role=role)
        identity = host_identity(ProbeContext(), role=config.role)
        enrollment = enroll(url, token, identity, config)
        console.print(
            f"Đã đăng ký máy {identity.hostname} vào {agency['name']} (Mức độ {agency['level']})"
            if vi
            else f"Enrolled {identity.hostname} in {agency['name']} (level {agency['level']})"
        )
        spool = spool_for(config)
        started = time.monotonic()
        collect_once(config, spool)
        collected_in = time.monotonic() - started
        if not deliver(config, spool, enrollment):
            console.print("[bold red]" + ("Gửi báo cáo thất bại" if vi else "Delivery failed"))
            return 1
        console.print(
            f"Đã thu thập ({collected_in:.1f} giây) và gửi báo cáo."
            if vi
            else f"Collected ({collected_in:.1f} s) and delivered the report."
        )

        host_id = enrollment.host_id
        verdicts = [
            RequirementVerdict.model_validate(v)
            for v in admin.get(f"/hosts/{host_id}/compliance").raise_for_status().json()
        ]
        findings = [
            Finding.model_validate(f)
            for f in admin.get(f"/hosts/{host_id}/findings").raise_for_status().json()
        ]
        host = admin.get(f"/hosts/{host_id}").raise_for_status().json()
        dashboard_password = dashboard_user(admin)

    framework = load_framework()
    title = f"{framework.title.get(lang)} — {host['hostname']}"
    articles = group_by_article(verdicts)
    console.print(articles_table(articles, title, lang))
    fixes = failures_table(findings, lang)
    if fixes is not None:
        console.print(fixes)
    labels = VERDICT_LABELS[lang]
    totals = {s: sum(a.counts[s] for a in articles) for s in labels}
    console.print(
        ("Tổng hợp: " if vi else "Summary: ")
        + ", ".join(f"{labels[s]} {n}" for s, n in totals.items())  # type: ignore[index]
    )
    console.print(f"Dữ liệu của lần chạy này: {workdir}" if vi else f"Data of this run: {workdir}")
    if getattr(args, "no_serve", False):
        return 0
    with running_collector(settings, port) as url:
        print_dashboard_access(console, url, dashboard_password, vi)
        console.print(
            "Bộ thu thập tiếp tục chạy; nhấn Ctrl-C để dừng."
            if vi
            else "The collector keeps running; press Ctrl-C to stop."
        )
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
    return 0


DASHBOARD_USER = "demo-admin"


def dashboard_user(admin: httpx.Client) -> str:
    """Create (or reset) the demo's dashboard user, a province_admin; returns its password."""
    password = secrets.token_urlsafe(12)
    existing = admin.get("/users").raise_for_status().json()
    found = next((u for u in existing if u["username"] == DASHBOARD_USER), None)
    if found is None:
        admin.post(
            "/users",
            json={"username": DASHBOARD_USER, "role": "province_admin", "password": password},
        ).raise_for_status()
    else:
        admin.patch(f"/users/{found['id']}", json={"password": password}).raise_for_status()
    return password


def print_dashboard_access(console: Console, url: str, password: str, vi: bool) -> None:
    console.print(
        ("Bảng điều khiển: " if vi else "Dashboard: ") + f"{url}/ui/",
        ("Tên đăng nhập: " if vi else "Username: ") + DASHBOARD_USER,
        ("Mật khẩu: " if vi else "Password: ") + password,
        sep="\n",
    )


def main(args: argparse.Namespace) -> int:
    return run(args)
