"""Real processes for the end-to-end tests: a uvicorn collector and the posture-agent CLI."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ADMIN = "e2e-admin-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    def __init__(
        self, tmp: Path, host: str = "127.0.0.1", tls_dir: Path | None = None, workers: int = 1
    ) -> None:
        self.host = host
        self.workers = workers
        self.port = _free_port()
        # tls_dir: a `posture-collector tls init` directory; serve HTTPS with it.  It may be
        # changed between stop() and start() (e.g. to present another CA's certificate).
        self.tls_dir = tls_dir
        self.db = tmp / "collector.db"
        self.env = {
            **os.environ,
            "POSTURE_DATABASE_URL": f"sqlite:///{self.db}",
            "POSTURE_ADMIN_TOKEN": ADMIN,
        }
        self.proc: subprocess.Popen | None = None
        self.log = tmp / "collector.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_dir else 'http'}://{self.host}:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """Trust exactly the collector's own CA (TLS), or the default (plain http)."""
        if self.tls_dir is None:
            return True
        return ssl.create_default_context(cafile=str(self.tls_dir / "ca.pem"))

    def start(self) -> None:
        tls = ["--tls-dir", str(self.tls_dir)] if self.tls_dir else []
        tls += ["--workers", str(self.workers)] if self.workers > 1 else []
        with open(self.log, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "collector.cli",
                    "serve",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    *tls,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if (
                    httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("collector did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
            self.proc = None

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
            verify=self.verify,
        )


@pytest.fixture
def collector(tmp_path):
    c = Collector(tmp_path)
    c.start()
    yield c
    c.stop()


def agent(state: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def agent_status(state: Path) -> dict:
    """The agent's status file (last collection, last report id, …)."""
    return json.loads((state / "status.json").read_text(encoding="utf-8"))


def enroll_agent(collector: Collector, state: Path, code: str = "STTTT-E2E") -> int:
    """Create an agency and a token, enroll the agent CLI; returns the host id."""
    api = collector.admin()
    agency = api.post("/agencies", json={"code": code, "name": "Sở thử nghiệm", "level": 3}).json()
    token = api.post(f"/agencies/{agency['id']}/enrollment-tokens", json={}).json()["token"]
    enrolled = agent(state, "enroll", "--collector", collector.url, "--token", token)
    assert enrolled.returncode == 0, enrolled.stderr
    hosts = api.get(f"/agencies/{agency['id']}/hosts").json()
    return hosts[0]["id"]
