"""Windows updates: hotfixes, Windows Update Agent search, reboot keys, policy."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.probes.base import CommandTimeout
from agent.probes.windows.patches import auto_updates_from, probe
from tests.agent.windows.winkit import (
    error,
    healthy_answers,
    json_file,
    not_installed,
    ok,
    windows_ctx,
)


def test_healthy() -> None:
    section = probe(windows_ctx())
    assert section.status == "ok" and section.manager == "other"
    assert section.pending_count == 0 and section.security_pending_count == 0
    assert [u.id for u in section.installed_updates] == ["KB5043130", "KB5044033", "KB5046613"]
    assert section.last_update_at == datetime(2026, 11, 13, 3, 5, 10, tzinfo=UTC)
    assert section.last_refresh_at == datetime(2026, 11, 20, 7, 58, 11, 501234, tzinfo=UTC)
    assert section.auto_updates is True and section.reboot_required is False
    assert any("PendingFileRenameOperations" in n for n in section.notes)
    assert any("wsus.sotttt.example.vn" in n for n in section.notes)


def test_pending_security_update_and_reboot() -> None:
    answers = healthy_answers() | {
        "windows_update": json_file("windows_update_pending.json"),
        "update_policy": ok('{"NoAutoUpdate":null,"AUOptions":null,"RebootRequired":true}'),
    }
    section = probe(windows_ctx(answers))
    assert section.pending_count == 2 and section.security_pending_count == 1
    [security] = [u for u in section.pending if u.security]
    assert security.new_version == "KB5046633"
    assert section.reboot_required is True
    assert section.auto_updates is False  # NotificationLevel 2: notify before download


def test_search_failure_and_timeout_keep_the_rest() -> None:
    failed = healthy_answers() | {"windows_update": error("Exception from HRESULT: 0x8024402C")}
    section = probe(windows_ctx(failed))
    assert section.status == "ok" and section.pending_count is None
    assert section.installed_updates
    slow = healthy_answers() | {"windows_update": CommandTimeout(["powershell.exe"], 25)}
    section = probe(windows_ctx(slow))
    assert section.pending_count is None and any("25s" in n for n in section.notes)
    bad_code = healthy_answers() | {"windows_update": ok('{"ResultCode":4,"Updates":[]}')}
    assert probe(windows_ctx(bad_code)).security_pending_count is None


def test_everything_missing_is_unknown() -> None:
    section = probe(windows_ctx({"hotfixes": not_installed("Get-CimInstance")}))
    assert section.status == "unknown" and section.reason


def test_auto_update_policy() -> None:
    assert auto_updates_from({"NoAutoUpdate": 1, "AUOptions": 4}, 4) is False
    assert auto_updates_from({"AUOptions": 4}, None) is True
    assert auto_updates_from({"AUOptions": 3}, 4) is False
    assert auto_updates_from({"AUOptions": 5}, 4) is True
    assert auto_updates_from({}, None) is None
