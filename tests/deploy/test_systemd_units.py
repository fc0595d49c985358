"""The systemd units in deploy/systemd: valid for systemd, hardened as documented."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
AGENT_UNIT = SYSTEMD_DIR / "posture-agent.service"
COLLECTOR_UNIT = SYSTEMD_DIR / "posture-collector.service"

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed on this machine"
)


def directives(unit: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file (all sections), values in order of appearance."""
    result: dict[str, list[str]] = {}
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        result.setdefault(key.strip(), []).append(value.strip())
    return result


def one(unit: Path, key: str) -> str:
    values = directives(unit)[key]
    assert len(values) == 1, f"{key} set {len(values)} times in {unit.name}"
    return values[0]


def installed_copy(unit: Path, tmp_path: Path) -> Path:
    """A copy of the unit whose ExecStart points at the console script installed here.

    ``systemd-analyze verify`` checks that the executable exists; the shipped
    unit points at /opt/posture-*/venv, which is not this test machine's layout.
    """
    text = unit.read_text(encoding="utf-8")
    match = re.search(r"^ExecStart=(\S+)", text, flags=re.MULTILINE)
    assert match, f"no ExecStart in {unit.name}"
    script = Path(match.group(1)).name
    real = shutil.which(script)
    if real is None:
        pytest.fail(f"console script {script!r} is not installed (pip install -e '.[all]')")
    copy = tmp_path / unit.name
    start, end = match.span(1)
    copy.write_text(text[:start] + real + text[end:], encoding="utf-8")
    return copy


# --- systemd's own checks ---------------------------------------------------------


@needs_systemd_analyze
@pytest.mark.parametrize("unit", [AGENT_UNIT, COLLECTOR_UNIT], ids=lambda u: u.name)
def test_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    copy = installed_copy(unit, tmp_path)
    proc = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    # verify exits 0 on unknown keys and invalid values (it only warns), so any
    # message about our unit file is a failure too.
    ours = [line for line in proc.stderr.splitlines() if unit.name in line]
    assert proc.returncode == 0, proc.stderr
    assert ours == [], "\n".join(ours)


@needs_systemd_analyze
def test_verify_catches_a_bad_directive(tmp_path: Path) -> None:
    """Guard for the test above: a typo in the unit must show up in the output."""
    copy = installed_copy(AGENT_UNIT, tmp_path)
    copy.write_text(copy.read_text().replace("Nice=10", "Nice=10\nProtectSytem=strict"))
    proc = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert "ProtectSytem" in proc.stderr


@needs_systemd_analyze
@pytest.mark.parametrize(
    ("unit", "ceiling"), [(AGENT_UNIT, 5.0), (COLLECTOR_UNIT, 2.5)], ids=["agent", "collector"]
)
def test_exposure_score(unit: Path, ceiling: float, tmp_path: Path) -> None:
    """`systemd-analyze security` exposure (0 = locked down, 10 = unprotected)."""
    copy = installed_copy(unit, tmp_path)
    proc = subprocess.run(
        [str(SYSTEMD_ANALYZE), "security", "--offline=yes", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout + proc.stderr)
    if match is None and "offline" in proc.stderr:
        pytest.skip(f"this systemd-analyze has no offline security mode: {proc.stderr.strip()}")
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= ceiling


# --- the hardening the deployment documents ----------------------------------------

AGENT_EXPECTED = {
    "ExecStart": "/opt/posture-agent/venv/bin/posture-agent run",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/posture-agent",
    "StateDirectory": "posture-agent",
    "ConfigurationDirectory": "posture-agent",
    "ProtectHome": "read-only",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    "Nice": "10",
    "IOSchedulingClass": "idle",
    "CPUQuota": "20%",
    "MemoryMax": "256M",
    "Restart": "on-failure",
    "RestartSec": "30",
    "User": "root",
}


@pytest.mark.parametrize(("key", "value"), AGENT_EXPECTED.items())
def test_agent_unit_hardening(key: str, value: str) -> None:
    assert one(AGENT_UNIT, key) == value


def test_agent_capabilities_are_bounded() -> None:
    caps = set(one(AGENT_UNIT, "CapabilityBoundingSet").split())
    assert caps == {"CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"}
    # Nothing that writes or administers: the agent only reads.
    assert not caps & {"CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SETUID"}
    assert one(AGENT_UNIT, "AmbientCapabilities") == ""


def test_agent_cpu_quota_is_explained() -> None:
    text = AGENT_UNIT.read_text(encoding="utf-8")
    comment = text[: text.index("CPUQuota=")].rsplit("\n\n", 1)[-1]
    assert "#" in comment and "20%" in comment


COLLECTOR_EXPECTED = {
    "User": "posture",
    "Group": "posture",
    "EnvironmentFile": "/etc/posture-collector/env",
    "ProtectSystem": "strict",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
    "Restart": "on-failure",
}


@pytest.mark.parametrize(("key", "value"), COLLECTOR_EXPECTED.items())
def test_collector_unit_hardening(key: str, value: str) -> None:
    assert one(COLLECTOR_UNIT, key) == value


def test_collector_runs_the_serve_command() -> None:
    assert one(COLLECTOR_UNIT, "ExecStart").startswith(
        "/opt/posture-collector/venv/bin/posture-collector serve "
    )


# --- MemoryDenyWriteExecute does not break the agent -------------------------------

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1

MDWE_LAUNCHER = f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    print("prctl:", os.strerror(ctypes.get_errno()), file=sys.stderr)
    sys.exit(77)
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_agent_collects_under_memory_deny_write_execute(tmp_path: Path) -> None:
    """Run a full collection with PR_SET_MDWE, the kernel's MemoryDenyWriteExecute.

    systemd implements MemoryDenyWriteExecute= with a seccomp filter (or this
    prctl on recent versions); both refuse writable+executable mappings, which
    a JIT or libffi closures would need.  The setting is inherited across exec.
    """
    import sys

    agent = shutil.which("posture-agent")
    if agent is None:
        pytest.fail("posture-agent console script is not installed")
    output = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-c", MDWE_LAUNCHER, agent, "collect", "-o", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode == 77:
        pytest.skip(f"kernel without PR_SET_MDWE (Linux < 6.3): {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["os"]["status"] == "ok"
    assert report["hardware"]["status"] == "ok"
