"""The Ansible role, run for real by ansible-playbook over SSH against a throwaway sshd.

The sshd listens on 127.0.0.1 with its own host key and authorized_keys in tmp;
every path the role writes (install, config, state, unit directories) points
into tmp_path; the collector is a real uvicorn process on loopback.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Collector

REPO = Path(__file__).resolve().parents[2]
SSHD = Path("/usr/sbin/sshd")

pytestmark = [
    pytest.mark.skipif(not SSHD.exists(), reason="sshd not installed (Debian: openssh-server)"),
    pytest.mark.skipif(shutil.which("ssh") is None, reason="ssh client not installed"),
    pytest.mark.skipif(
        shutil.which("ansible-playbook") is None, reason="ansible-core not installed"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="the throwaway sshd and root login need root"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "Subsystem sftp internal-sftp\n"
    )
    # sshd refuses to start without its privilege separation directory
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = open(d / "sshd.log", "wb")  # noqa: SIM115 - kept open for the daemon
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("sshd did not start:\n" + (d / "sshd.log").read_text())
            time.sleep(0.1)
    yield port, d / "client_key"
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = Collector(tmp_path)
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, built from a copy (the build must not write into the repo)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("agent", "collector", "policies"):
        shutil.copytree(REPO / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    out = base / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
         "-w", str(out), str(src)],
        check=True, timeout=300,
    )
    (found,) = out.glob("posture_scanner-*.whl")
    return found


def _playbook(
    tmp: Path, port: int, key: Path, extra: dict[str, str]
) -> subprocess.CompletedProcess:
    inventory = tmp / "inventory.ini"
    inventory.write_text(
        "[agency_test]\n"
        f"testhost ansible_host=127.0.0.1 ansible_port={port} "
        f"ansible_user={getpass.getuser()} ansible_ssh_private_key_file={key} "
        f"ansible_python_interpreter={sys.executable}\n"
        "[posture_agents:children]\nagency_test\n"
    )
    vars_file = tmp / "vars.yml"
    vars_file.write_text("".join(f"{k}: {v!r}\n" for k, v in extra.items()))
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_SSH_ARGS": "-o UserKnownHostsFile=/dev/null -o ControlMaster=no",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(tmp / "ansible-remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_ROLES_PATH": str(REPO / "ansible" / "roles"),
        "PIP_NO_INDEX": "1",  # loopback only: dependencies come from the system site-packages
    }
    return subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(REPO / "ansible" / "site.yml"),
         "-e", f"@{vars_file}"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp,
    )


def _recap(output: str) -> dict[str, int]:
    match = re.search(r"testhost\s*:\s*(.*)", output.split("PLAY RECAP")[-1])
    assert match, output
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def test_role_installs_enrolls_and_is_idempotent(
    tmp_path: Path, sshd: tuple[int, Path], collector: Collector, wheel: Path
) -> None:
    port, key = sshd
    api = collector.admin()
    agency = api.post("/agencies", json={"code": "ANSIBLE-T", "name": "Sở thử nghiệm",
                                         "level": 3}).json()
    token = api.post(f"/agencies/{agency['id']}/enrollment-tokens", json={}).json()["token"]
    root = tmp_path / "root"
    layout = {
        "posture_agent_install_dir": str(root / "opt/posture-agent"),
        "posture_agent_config_dir": str(root / "etc/posture-agent"),
        "posture_agent_state_dir": str(root / "var/lib/posture-agent"),
        "posture_agent_unit_dir": str(root / "etc/systemd/system"),
    }
    extra = {
        **layout,
        "posture_agent_source": str(wheel),
        "posture_agent_venv_system_site_packages": "true",
        "posture_agent_pip_extra_args": "--no-index --no-deps",
        "posture_agent_collector_url": collector.url,
        "posture_agent_enrollment_token": token,
        "posture_agent_role": "server",
        "posture_agent_interval_seconds": "900",
        "posture_agent_jitter_seconds": "60",
        "posture_agent_verify_tls": "false",
    }

    first = _playbook(tmp_path, port, key, extra)
    assert first.returncode == 0, first.stdout + first.stderr
    recap = _recap(first.stdout)
    assert recap["failed"] == 0 and recap["unreachable"] == 0
    assert recap["changed"] >= 5, first.stdout

    hosts = api.get(f"/agencies/{agency['id']}/hosts").json()
    assert len(hosts) == 1 and hosts[0]["hostname"] == socket.gethostname()
    state = Path(layout["posture_agent_state_dir"])
    assert (state / "enrollment.json").stat().st_mode & 0o777 == 0o600

    config_file = Path(layout["posture_agent_config_dir"]) / "agent.toml"
    config = tomllib.loads(config_file.read_text())
    assert config["role"] == "server"
    assert config["interval_seconds"] == 900.0
    assert config["jitter_seconds"] == 60.0
    assert config["verify_tls"] is False
    assert config["collector_url"] == collector.url
    assert config["state_dir"] == str(state)
    # the agent itself accepts the templated file
    venv = Path(layout["posture_agent_install_dir"]) / "venv"
    status = subprocess.run([str(venv / "bin/posture-agent"), "--config", str(config_file),
                             "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "enrolled" in status.stdout and collector.url in status.stdout

    unit = (Path(layout["posture_agent_unit_dir"]) / "posture-agent.service").read_text()
    assert f"ExecStart={venv}/bin/posture-agent --config {config_file} run" in unit
    assert f"ReadWritePaths={state}" in unit
    assert "CapabilityBoundingSet=CAP_DAC_READ_SEARCH" in unit  # the hardening is kept
    assert "not systemd" in first.stdout  # no systemd as PID 1 here: not started

    second = _playbook(tmp_path, port, key, extra)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _recap(second.stdout)["changed"] == 0, second.stdout
    assert len(api.get(f"/agencies/{agency['id']}/hosts").json()) == 1
