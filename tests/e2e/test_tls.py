"""TLS between agent and collector, with the CA pinned at enrollment, through real processes.

The collector is `posture-collector serve --tls-dir` (uvicorn with the certificate
of `posture-collector tls init`) on 127.0.0.1; the agent is the posture-agent CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy import test_ansible
from tests.e2e.conftest import Collector, agent, agent_status


def tls_init(directory: Path, *names: str) -> str:
    """`posture-collector tls init`; returns the CA fingerprint it prints."""
    args = [sys.executable, "-m", "collector.cli", "tls", "init", "--dir", str(directory)]
    for name in names:
        args += ["--ip", name] if name[0].isdigit() else ["--host", name]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, str]:
    return tmp_path / "pki", tls_init(tmp_path / "pki", "localhost", "127.0.0.1")


@pytest.fixture
def tls_collector(tmp_path: Path, pki: tuple[Path, str]):
    c = Collector(tmp_path, tls_dir=pki[0])
    c.start()
    yield c
    c.stop()


# Admin clients are closed after each use: an idle TLS keep-alive connection would
# hold up the collector's shutdown.


def new_token(collector: Collector, code: str = "STTTT-TLS") -> dict:
    with collector.admin() as api:
        agency = api.post("/agencies", json={"code": code, "name": "Sở thử nghiệm", "level": 3})
        assert agency.status_code == 201, agency.text
        created = api.post(f"/agencies/{agency.json()['id']}/enrollment-tokens", json={})
        assert created.status_code == 201, created.text
    return created.json() | {"agency_id": agency.json()["id"]}


def hosts(collector: Collector, agency_id: int) -> list[dict]:
    with collector.admin() as api:
        return api.get(f"/agencies/{agency_id}/hosts").json()


def enroll(state: Path, url: str, token: str, *extra: str) -> subprocess.CompletedProcess:
    return agent(state, *extra, "enroll", "--collector", url, "--token", token)


def pinned(state: Path, url: str, token: str, pin: str) -> subprocess.CompletedProcess:
    return agent(state, "enroll", "--collector", url, "--token", token, "--ca-fingerprint", pin)


def enrollment(state: Path) -> dict:
    return json.loads((state / "enrollment.json").read_text(encoding="utf-8"))


def test_pinned_enrollment_then_reports_and_rotation_over_tls(tls_collector, pki, tmp_path):
    directory, pin = pki
    token = new_token(tls_collector)
    # the token response carries the pin the operator got from `tls init`
    assert token["ca_fingerprint"] == pin
    assert f"--ca-fingerprint {pin}" in token["enroll_command"]
    state = tmp_path / "agent"

    # one variable carries both, as an Ansible inventory would
    done = enroll(state, tls_collector.url, f"{token['token']}#{pin}")
    assert done.returncode == 0, done.stderr
    assert "collector CA pinned" in done.stdout
    assert (state / "collector-ca.pem").read_bytes() == (directory / "ca.pem").read_bytes()
    saved = enrollment(state)
    assert saved["ca_fingerprint"] == pin and saved["collector_url"].startswith("https://")
    assert f"collector CA      pinned {pin}" in agent(state, "status").stdout

    delivered = agent(state, "run", "--once")
    assert delivered.returncode == 0, delivered.stderr
    assert agent_status(state)["spool_depth"] == 0
    [host] = hosts(tls_collector, token["agency_id"])
    assert host["latest_report_id"] == agent_status(state)["last_report_id"]

    # credential rotation on demand, over the same pinned TLS
    old = saved["credential"]
    rotated = agent(state, "rotate-credential")
    assert rotated.returncode == 0, rotated.stderr
    assert "the previous credential is revoked" in rotated.stdout
    new = enrollment(state)["credential"]
    assert new != old and new.startswith("pa_")
    with tls_collector.admin() as api:
        refused = api.post("/reports", content=b"{}", headers={"Authorization": f"Bearer {old}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    again = agent(state, "run", "--once")
    assert again.returncode == 0, again.stderr
    assert agent_status(state)["spool_depth"] == 0


def test_wrong_fingerprint_is_refused_and_nothing_saved(tls_collector, tmp_path):
    token = new_token(tls_collector)
    state = tmp_path / "agent"
    wrong = "sha256:" + "ab" * 32
    done = pinned(state, tls_collector.url, token["token"], wrong)
    assert done.returncode == 2
    assert "does not match the pinned fingerprint" in done.stderr
    assert "interception" in done.stderr
    assert not (state / "enrollment.json").exists()
    assert not (state / "collector-ca.pem").exists()
    assert hosts(tls_collector, token["agency_id"]) == []  # the token was never sent


def test_collector_with_a_certificate_from_another_ca_is_refused(tls_collector, pki, tmp_path):
    directory, pin = pki
    token = new_token(tls_collector)
    state = tmp_path / "agent"
    done = pinned(state, tls_collector.url, token["token"], pin)
    assert done.returncode == 0, done.stderr

    # Same address, same names, but a certificate from another CA (an impostor, or
    # an operator who re-created the CA): the agent must not send anything.
    other_pin = tls_init(tmp_path / "other-pki", "localhost", "127.0.0.1")
    assert other_pin != pin
    tls_collector.stop()
    tls_collector.tls_dir = tmp_path / "other-pki"
    tls_collector.start()
    refused = agent(state, "run", "--once")
    assert refused.returncode == 1
    status = agent_status(state)
    assert "TLS verification of the collector failed" in status["last_error"]
    assert status["spool_depth"] == 1
    assert hosts(tls_collector, token["agency_id"])[0]["latest_report_id"] is None

    # the real collector is back: the queued report goes out
    tls_collector.stop()
    tls_collector.tls_dir = directory
    tls_collector.start()
    delivered = agent(state, "run", "--once")
    assert delivered.returncode == 0, delivered.stderr
    assert agent_status(state)["spool_depth"] == 0
    assert hosts(tls_collector, token["agency_id"])[0]["latest_report_id"] is not None


def test_host_name_mismatch_is_refused(tmp_path):
    """The certificate names only localhost: https://127.0.0.1 fails verification."""
    directory = tmp_path / "pki"
    pin = tls_init(directory, "localhost")
    collector = Collector(tmp_path, host="127.0.0.1", tls_dir=directory)
    collector.host = "localhost"  # health checks and admin calls use the certified name
    collector.start()
    try:
        token = new_token(collector)
        by_ip = f"https://127.0.0.1:{collector.port}"
        state = tmp_path / "agent"
        done = pinned(state, by_ip, token["token"], pin)
        assert done.returncode == 2
        assert "TLS verification of the collector failed" in done.stderr
        assert not (state / "enrollment.json").exists()
        assert not (state / "collector-ca.pem").exists()
        assert hosts(collector, token["agency_id"]) == []

        # the same collector under the name its certificate carries is accepted
        by_name = f"https://localhost:{collector.port}"
        done = pinned(state, by_name, token["token"], pin)
        assert done.returncode == 0, done.stderr
        assert len(hosts(collector, token["agency_id"])) == 1
    finally:
        collector.stop()


def test_without_a_pin_the_agent_uses_ca_file_or_the_system_store(tls_collector, pki, tmp_path):
    directory, _ = pki
    token = new_token(tls_collector)

    # the collector's private CA is in no system store: refused
    state = tmp_path / "agent"
    done = enroll(state, tls_collector.url, token["token"])
    assert done.returncode == 2
    assert "TLS verification of the collector failed" in done.stderr
    assert not (state / "enrollment.json").exists()

    # the operator distributed the CA as ca_file instead
    config = tmp_path / "agent.toml"
    config.write_text(f'ca_file = "{directory / "ca.pem"}"\n', encoding="utf-8")
    done = enroll(state, tls_collector.url, token["token"], "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert enrollment(state)["ca_fingerprint"] is None
    assert not (state / "collector-ca.pem").exists()


def test_plain_http_is_refused_off_loopback(tmp_path):
    """Checked before any connection: no collector is needed (and none is contacted)."""
    state = tmp_path / "agent"
    done = enroll(state, "http://posture.example.vn", "pe_x")
    assert done.returncode == 2
    assert "refusing plain http://" in done.stderr
    assert "allow_insecure_http" in done.stderr
    assert not (state / "enrollment.json").exists()


# The throwaway sshd and the wheel of tests/deploy/test_ansible.py, with its skip
# conditions.
_sshd_fixture = test_ansible.sshd
_wheel_fixture = test_ansible.wheel


def _ansible_marks(test: Callable[..., None]) -> Callable[..., None]:
    """The skip conditions of tests/deploy/test_ansible.py (sshd, ssh, ansible, root)."""
    for mark in test_ansible.pytestmark:
        test = mark(test)
    return test


@_ansible_marks
def test_ansible_role_enrolls_with_the_pinned_ca(
    tmp_path: Path, tls_collector: Collector, pki, _sshd_fixture, _wheel_fixture
) -> None:
    """The role passes posture_agent_ca_fingerprint to `posture-agent enroll`."""
    from tests.deploy.test_ansible import _playbook, _recap

    directory, pin = pki
    port, key = _sshd_fixture
    token = new_token(tls_collector, code="ANSIBLE-TLS")
    root = tmp_path / "root"
    state = root / "var/lib/posture-agent"
    extra = {
        "posture_agent_install_dir": str(root / "opt/posture-agent"),
        "posture_agent_config_dir": str(root / "etc/posture-agent"),
        "posture_agent_state_dir": str(state),
        "posture_agent_unit_dir": str(root / "etc/systemd/system"),
        "posture_agent_source": str(_wheel_fixture),
        "posture_agent_venv_system_site_packages": "true",
        "posture_agent_pip_extra_args": "--no-index --no-deps",
        "posture_agent_collector_url": tls_collector.url,
        "posture_agent_enrollment_token": token["token"],
        "posture_agent_ca_fingerprint": pin,
    }
    run = _playbook(tmp_path, port, key, extra)
    assert run.returncode == 0, run.stdout + run.stderr
    assert _recap(run.stdout)["failed"] == 0
    assert enrollment(state)["ca_fingerprint"] == pin
    assert (state / "collector-ca.pem").read_bytes() == (directory / "ca.pem").read_bytes()
    assert len(hosts(tls_collector, token["agency_id"])) == 1
