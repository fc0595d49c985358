"""BitLocker volumes, plaintext services and backup evidence on Windows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.probes.windows import backup, bitlocker
from agent.report import ListeningSocket
from tests.agent.windows.winkit import (
    access_denied,
    healthy_answers,
    invalid_namespace,
    json_file,
    ok,
    windows_ctx,
)
from tests.probekit import set_mtime, write


@pytest.fixture(autouse=True)
def sockets(monkeypatch: pytest.MonkeyPatch) -> list[ListeningSocket]:
    """The socket table of the (pretend) Windows host, instead of this machine's."""
    table = [
        ListeningSocket(protocol="tcp", address="0.0.0.0", port=21, process="FileZilla Server.exe"),
        ListeningSocket(protocol="tcp", address="127.0.0.1", port=80, process="httpd.exe"),
    ]
    monkeypatch.setattr(bitlocker, "listening_tcp", lambda ctx, notes: table)
    return table


def test_bitlocker_on() -> None:
    section = bitlocker.probe(windows_ctx())
    assert section.status == "ok" and section.root_encrypted is True
    assert [(v.name, v.mountpoint, v.method) for v in section.volumes] == [
        ("C:", "C:\\", "BitLocker XtsAes256"),
        ("D:", "D:\\", "BitLocker XtsAes128"),
    ]
    assert [(s.port, s.service) for s in section.plaintext_services] == [(21, "ftp")]


def test_bitlocker_suspended_is_not_encrypted() -> None:
    answers = healthy_answers() | {
        "bitlocker_volumes": json_file("bitlocker_volumes_suspended.json")
    }
    section = bitlocker.probe(windows_ctx(answers))
    assert section.root_encrypted is False and section.volumes == []
    assert any("suspended" in n for n in section.notes)


def test_bitlocker_not_installed_or_denied() -> None:
    section = bitlocker.probe(windows_ctx({"bitlocker_volumes": invalid_namespace()}))
    assert section.status == "ok" and section.root_encrypted is False
    denied = bitlocker.probe(windows_ctx({"bitlocker_volumes": access_denied()}))
    assert denied.status == "unknown" and "denied" in (denied.reason or "").lower()


def test_windows_server_backup() -> None:
    answers = healthy_answers() | {"wb_summary": json_file("wb_summary.json")}
    section = backup.probe(windows_ctx(answers))
    [wsb] = section.evidence
    assert wsb.tool == "Windows Server Backup" and wsb.scheduled is True
    assert wsb.newest_at == datetime(2026, 11, 19, 21, 0, 43, tzinfo=UTC)
    assert section.newest_backup_at == wsb.newest_at
    assert "14 version(s)" in (wsb.detail or "")


def test_backup_configured_path_and_file_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROGRAMDATA", str(tmp_path))
    share = tmp_path / "nas"
    newest = write(share, "/daily/ketoan-20261119.zip", "x")
    set_mtime(newest, datetime(2026, 11, 19, 22, 0, tzinfo=UTC))
    write(
        tmp_path,
        "/posture-agent/backup.toml",
        f'[[path]]\nlocation = "{share.as_posix()}"\npattern = "*.zip"\n',
    )
    answers = healthy_answers() | {"file_history": ok('[{"User":"nguyen.van.a","Files":1}]')}
    section = backup.probe(windows_ctx(answers))
    tools = {e.tool: e for e in section.evidence}
    assert tools["path"].newest_at == datetime(2026, 11, 19, 22, 0, tzinfo=UTC)
    assert tools["File History"].newest_at is None and tools["File History"].scheduled
    assert section.tools_installed == ["File History"]


def test_backup_nothing_and_failure() -> None:
    section = backup.probe(windows_ctx(healthy_answers()))
    assert section.status == "ok" and section.evidence == [] and section.newest_backup_at is None
    denied = healthy_answers() | {"wb_summary": access_denied()}
    assert any("unreadable" in n for n in backup.probe(windows_ctx(denied)).notes)
