"""The whole chain through real processes: uvicorn collector, posture-agent CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.e2e.conftest import agent


def test_agent_enrolls_collects_and_gets_verdicts(collector, tmp_path):
    api = collector.admin()
    agency = api.post("/agencies", json={"code": "STTTT-E2E", "name": "Sở thử nghiệm",
                                         "level": 3}).json()
    token = api.post(f"/agencies/{agency['id']}/enrollment-tokens", json={}).json()["token"]
    state = tmp_path / "agent"

    enrolled = agent(state, "enroll", "--collector", collector.url, "--token", token)
    assert enrolled.returncode == 0, enrolled.stderr
    assert "Mức độ 3" in enrolled.stdout

    # the collector goes away: the report waits in the spool
    collector.stop()
    offline = agent(state, "run", "--once")
    assert offline.returncode == 1
    status = agent(state, "status").stdout
    assert "spool depth       1" in status

    # back again: the queued report and a new one are delivered, in order
    collector.start()
    online = agent(state, "run", "--once")
    assert online.returncode == 0, online.stderr
    assert "spool depth       0" in agent(state, "status").stdout

    hosts = api.get(f"/agencies/{agency['id']}/hosts").json()
    assert [h["hostname"] for h in hosts] == [socket.gethostname()]
    host_id = hosts[0]["id"]
    findings = api.get(f"/hosts/{host_id}/findings").json()
    by_check = {f["check_id"]: f for f in findings}
    assert {"av_installed", "fw_active", "patch_security_pending"} <= set(by_check)
    for f in findings:
        assert f["status"] in ("pass", "fail", "unknown", "not_applicable")
        assert f["evidence"]["vi"] and f["remediation"]["vi"]

    compliance = api.get(f"/agencies/{agency['id']}/compliance").json()
    articles = {a["article"]: a for a in compliance}
    assert {16, 17, 18, 19} <= set(articles)
    d19 = {r["requirement_id"]: r for r in articles[19]["requirements"]}
    assert d19["D19.1.a"]["status"] in ("pass", "fail", "unknown")
    assert d19["D19.1.a"]["evidence"], "an evaluated requirement carries evidence"


def test_demo_command_prints_vietnamese_verdicts(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "demo", "--no-serve",
         "--workdir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for text in ("Điều 18", "Điều 19", "D19.1.a", "D18.1.a", "Bảo mật mạng", "Tổng hợp"):
        assert text in out
    assert any(label in out for label in ("Đạt", "Không đạt", "Chưa xác định"))
