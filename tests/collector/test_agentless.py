"""Agentless collection against a real OpenSSH server started on loopback."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

paramiko = pytest.importorskip("paramiko", reason="agentless extra (paramiko) not installed")

from sqlmodel import Session, select  # noqa: E402

from agent.probes.base import CommandResult, ToolMissing  # noqa: E402
from agent.report import ListeningSocket, Report  # noqa: E402
from collector import fleet_data  # noqa: E402
from collector.agentless import service, ssh  # noqa: E402
from collector.agentless.context import (  # noqa: E402
    NOT_AGENTLESS,
    RemoteProbeContext,
    RemoteRunner,
    collect_remote,
)
from collector.db import create_db_engine, init_db  # noqa: E402
from collector.models import Agency, AgentlessTarget, StoredFinding, StoredReport  # noqa: E402
from collector.settings import Settings  # noqa: E402

SSHD = "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(
    not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None,
    reason="OpenSSH server not installed (/usr/sbin/sshd; Debian package openssh-server)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@dataclass
class Sshd:
    dir: Path
    port: int
    user: str
    client_key: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host_key(self) -> Path:
        return self.dir / "host_ed25519"

    def host_fingerprint(self) -> str:
        pub = (self.dir / "host_ed25519.pub").read_text().split()
        return ssh.PinnedKey(pub[0], pub[1]).sha256

    def start(self) -> None:
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {self.dir / 'sshd.pid'}\nAuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nSubsystem sftp internal-sftp\n"
            "MaxSessions 20\nMaxStartups 50\nLogLevel ERROR\n"
        )
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "sshd.log", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "sshd.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart_with_new_key(self) -> None:
        self.stop()
        self.host_key.unlink()
        (self.dir / "host_ed25519.pub").unlink()
        _keygen(self.host_key)
        self.start()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
    work = tmp_path / "sshd"
    work.mkdir()
    _keygen(work / "host_ed25519")
    client_key = work / "client_ed25519"
    _keygen(client_key)
    (work / "authorized_keys").write_text((work / "client_ed25519.pub").read_text())
    server = Sshd(work, _free_port(), getpass.getuser(), client_key)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'collector.db'}")
    engine = create_db_engine(settings)
    init_db(engine)
    with Session(engine) as db:
        yield db
    engine.dispose()


@pytest.fixture
def target(session: Session, sshd: Sshd) -> AgentlessTarget:
    agency = Agency(code="SO-TTTT", name="Sở Thông tin và Truyền thông", level=3)
    session.add(agency)
    session.commit()
    assert agency.id is not None
    return service.create_target(
        session,
        agency_id=agency.id,
        address="127.0.0.1",
        port=sshd.port,
        username=sshd.user,
        key_path=str(sshd.client_key),
        role="server",
    )


def _trust(session: Session, target: AgentlessTarget) -> None:
    seen = service.presented_host_key(target)
    service.trust_host_key(session, target, fingerprint=seen.sha256, trusted_by="admin")


def test_unknown_host_key_is_refused(session: Session, target: AgentlessTarget, sshd: Sshd) -> None:
    with pytest.raises(service.NotTrusted):
        service.collect_target(session, target)
    # Even when asked to connect directly, an unpinned key is refused.
    with pytest.raises(ssh.UnknownHostKey, match=re.escape(sshd.host_fingerprint())):
        ssh.connect(service.ssh_target(target)).close()
    assert service.run_due(session) == []  # untrusted targets are never scheduled


def test_trust_requires_the_fingerprint_the_admin_saw(
    session: Session, target: AgentlessTarget, sshd: Sshd
) -> None:
    seen = service.presented_host_key(target)
    assert seen.sha256 == sshd.host_fingerprint()
    with pytest.raises(service.FingerprintMismatch):
        service.trust_host_key(session, target, fingerprint="SHA256:bogus", trusted_by="admin")
    assert target.host_key_sha256 is None


def test_trust_then_collect_ingests_real_facts(
    session: Session, target: AgentlessTarget, sshd: Sshd
) -> None:
    _trust(session, target)
    outcomes = service.run_due(session)
    assert len(outcomes) == 1 and outcomes[0].error is None, outcomes
    result = outcomes[0].result
    assert result is not None and result.status == "accepted"
    assert sum(result.summary.values()) > 0

    stored = session.exec(select(StoredFinding).where(StoredFinding.host_id == result.host_id))
    assert len(stored.all()) == sum(result.summary.values())
    session.refresh(target)
    assert target.host_id == result.host_id and target.last_error is None
    assert service.run_due(session) == []  # not due again before its interval

    stored_report = session.get(StoredReport, result.report_id)
    assert stored_report is not None
    report = Report.model_validate(stored_report.body)
    assert report.os.status == "ok" and report.os.id
    assert report.os.kernel == os.uname().release  # loopback: the same machine
    assert report.software.status == "ok"
    # the package list is kept once, in the host's inventory
    assert stored_report.body["software"]["packages_stored"] > 50
    assert len(fleet_data.rebuild_report(session, stored_report).software.packages) > 50
    assert report.host.hostname

    # Network facts now come from the remote 'ip' and 'ss' (the same machine here).
    assert report.network.status == "ok", report.network.reason
    lo = next(i for i in report.network.interfaces if i.name == "lo")
    assert lo.is_up and ("ipv4", "127.0.0.1", 8) in [
        (a.family, a.address, a.prefixlen) for a in lo.addresses
    ]
    assert (
        ListeningSocket(protocol="tcp", address="127.0.0.1", port=sshd.port, process="sshd")
        in report.network.listening
    )
    assert report.encryption.status == "ok", report.encryption.reason
    findings = {f.check_id: f for f in stored_findings(session, result.report_id)}
    plaintext = next(f for check, f in findings.items() if check.endswith("no_plaintext_services"))
    assert plaintext.status != "unknown", plaintext.payload
    for finding in findings.values():
        assert NOT_AGENTLESS not in json.dumps(finding.payload), finding.check_id


def stored_findings(session: Session, report_id: object) -> list[StoredFinding]:
    return list(session.exec(select(StoredFinding).where(StoredFinding.report_id == report_id)))


class NoIpNoSs(RemoteRunner):
    """A remote host without iproute2: 'ip' and 'ss' are missing tools."""

    def run(self, argv: Sequence[str], timeout: float | None = None) -> CommandResult:
        if argv[0] in ("ip", "ss"):
            raise ToolMissing(argv[0])
        return super().run(argv, timeout)


def test_without_ip_and_ss_network_comes_from_proc(
    session: Session, target: AgentlessTarget, sshd: Sshd
) -> None:
    _trust(session, target)
    client = ssh.connect(service.ssh_target(target))
    try:
        report = collect_remote(client, role="server", runner_factory=NoIpNoSs)
    finally:
        client.close()
    network = report.network
    assert network.status == "ok", network.reason
    assert "lo" in [i.name for i in network.interfaces]
    assert ListeningSocket(protocol="tcp", address="127.0.0.1", port=sshd.port) in network.listening
    assert any("'ip' is not installed" in n for n in network.notes)
    assert any("/proc/net, without process names" in n for n in network.notes)


def test_changed_host_key_is_refused_naming_both(
    session: Session, target: AgentlessTarget, sshd: Sshd
) -> None:
    _trust(session, target)
    old = sshd.host_fingerprint()
    sshd.restart_with_new_key()
    new = sshd.host_fingerprint()
    with pytest.raises(ssh.HostKeyChanged) as caught:
        service.collect_target(session, target)
    assert old in str(caught.value) and new in str(caught.value)
    session.refresh(target)
    assert target.last_error and "HOST KEY CHANGED" in target.last_error
    assert target.host_key_sha256 == old  # never replaced silently


def test_wrong_client_key_is_a_clear_auth_error(
    session: Session, target: AgentlessTarget, sshd: Sshd, tmp_path: Path
) -> None:
    _trust(session, target)
    other = tmp_path / "other_key"
    _keygen(other)
    target.key_path = str(other)
    with pytest.raises(ssh.AuthenticationFailed, match="authorized_keys"):
        service.collect_target(session, target)


def test_remote_command_timeout_makes_the_section_unknown(
    session: Session, target: AgentlessTarget, sshd: Sshd, tmp_path: Path
) -> None:
    from agent.collect import run_probe
    from agent.probes.base import CommandTimeout
    from agent.report import FirewallSection

    _trust(session, target)
    client = ssh.connect(service.ssh_target(target))
    try:
        staging = tmp_path / "root"
        staging.mkdir()
        ctx = RemoteProbeContext.open(client, staging, command_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(CommandTimeout):
            ctx.runner.run(["sleep", "30"], timeout=0.5)
        assert time.monotonic() - started < 5

        def stuck(probe_ctx: RemoteProbeContext) -> FirewallSection:
            probe_ctx.runner.run(["sleep", "30"], timeout=0.5)
            return FirewallSection()

        section = run_probe("firewall", stuck, ctx)  # type: ignore[arg-type]
        assert section.status == "unknown" and "did not finish" in (section.reason or "")
        with pytest.raises(Exception, match="not installed"):
            ctx.runner.run(["no-such-tool-xyz"])
        assert ctx.runner.which("sh")
        ctx.close()
    finally:
        client.close()


def test_admin_api_and_cli(
    sshd: Sshd,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi.testclient import TestClient

    from collector.app import create_app
    from collector.cli import main

    url = f"sqlite:///{tmp_path / 'api.db'}"
    headers = {"Authorization": "Bearer agentless-admin"}
    with TestClient(create_app(Settings(database_url=url, admin_token="agentless-admin"))) as api:
        agency = api.post(
            "/api/v1/agencies", json={"code": "UBND", "name": "UBND", "level": 2}, headers=headers
        ).json()
        body = {
            "agency_id": agency["id"],
            "address": "127.0.0.1",
            "port": sshd.port,
            "username": sshd.user,
            "key_path": str(sshd.client_key),
        }
        assert api.post("/api/v1/agentless/targets", json=body).status_code == 401
        unknown = api.post(
            "/api/v1/agentless/targets", json={**body, "agency_id": 999}, headers=headers
        )
        assert unknown.status_code == 422, unknown.text
        assert "agency 999 does not exist" in unknown.json()["detail"]
        created = api.post("/api/v1/agentless/targets", json=body, headers=headers)
        assert created.status_code == 201, created.text
        base = f"/api/v1/agentless/targets/{created.json()['id']}"
        assert api.post(f"{base}/collect", headers=headers).status_code == 409  # untrusted
        shown = api.get(f"{base}/host-key", headers=headers).json()
        assert shown["sha256"] == sshd.host_fingerprint() and shown["pinned_sha256"] is None
        wrong = api.post(f"{base}/trust", json={"fingerprint": "SHA256:x"}, headers=headers)
        assert wrong.status_code == 409
        trusted = api.post(f"{base}/trust", json={"fingerprint": shown["sha256"]}, headers=headers)
        assert trusted.status_code == 200 and trusted.json()["host_key_sha256"] == shown["sha256"]

    monkeypatch.setenv("POSTURE_DATABASE_URL", url)
    assert main(["agentless", "add", "--agency", "UBND", "--address", "127.0.0.1",
                 "--port", str(sshd.port), "--user", sshd.user,
                 "--key", str(sshd.client_key)]) == 0  # fmt: skip
    assert main(["agentless", "trust", "2"]) == 2
    assert sshd.host_fingerprint() in capsys.readouterr().out
    assert main(["agentless", "trust", "2", "--fingerprint", sshd.host_fingerprint()]) == 0
