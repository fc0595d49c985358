"""The main job's promise: ``posture-collector demo`` prints a dashboard URL and
credentials that open this machine's verdicts, and serves until Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx


def test_demo_serves_the_dashboard_with_the_printed_credentials(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "demo", "--workdir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # On SIGABRT, faulthandler prints every thread's stack: a demo that does not stop
        # shows where it is stuck in the failure message.
        env={**os.environ, "COLUMNS": "160", "PYTHONFAULTHANDLER": "1"},
    )
    lines: list[str] = []
    drain = threading.Thread(target=_read_rest, args=(proc, lines), daemon=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Mật khẩu: "):
                break
        drain.start()  # keep reading, so that nothing the demo prints later can block it
        out = "".join(lines)
        url = re.search(r"Bảng điều khiển: (http://127\.0\.0\.1:\d+/ui/)", out)
        user = re.search(r"Tên đăng nhập: (\S+)", out)
        password = re.search(r"Mật khẩu: (\S+)", out)
        assert url and user and password, out
        assert "Tổng hợp" in out  # the verdicts were printed first, as before

        with httpx.Client(
            base_url=url.group(1).removesuffix("/ui/"), timeout=30, follow_redirects=True
        ) as web:
            page = web.get("/ui/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            r = web.post(
                "/ui/login",
                data={
                    "csrf_token": token.group(1),
                    "username": user.group(1),
                    "password": password.group(1),
                },
            )
            assert r.status_code == 200 and "Tổng quan toàn tỉnh" in r.text
            assert "Đơn vị trình diễn (demo)" in r.text
            agency = re.search(r'href="(/ui/agencies/\d+)"', r.text)
            assert agency is not None
            host = re.search(r'href="(/ui/hosts/\d+)"', web.get(agency.group(1)).text)
            assert host is not None
            machine = web.get(host.group(1)).text
            assert "Kết quả theo yêu cầu" in machine
            assert any(v in machine for v in ("Đạt", "Không đạt", "Chưa xác định"))
    finally:
        if drain.ident is None:
            drain.start()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            drain.join(timeout=10)
            raise AssertionError(
                "the demo did not stop within 30 s of Ctrl-C:\n" + "".join(lines)[-20000:]
            ) from None
    drain.join(timeout=10)
    assert code == 0, "".join(lines)


def _read_rest(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
