"""Windows antivirus probe: Defender, Security Center products, Server fallback."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.probes.base import ToolMissing
from agent.probes.windows.antivirus import DEFENDER_NAME, decode_product_state, probe
from tests.agent.windows.winkit import (
    access_denied,
    error,
    healthy_answers,
    invalid_namespace,
    json_file,
    not_installed,
    ok,
    windows_ctx,
)


def by_name(section, name):
    [product] = [p for p in section.products if p.name == name]
    return product


def test_decode_product_state() -> None:
    on = decode_product_state(397568)  # 0x061100: Defender, on, up to date
    assert on.enabled and on.up_to_date and on.microsoft
    off = decode_product_state(393472)  # 0x060100
    assert not off.enabled and off.up_to_date
    stale = decode_product_state(266256)  # 0x041010: third party, on, out of date
    assert stale.enabled and not stale.up_to_date and not stale.microsoft
    assert decode_product_state(0x042000).snoozed and decode_product_state(0x043000).expired


def test_healthy_defender() -> None:
    section = probe(windows_ctx())
    assert section.status == "ok"
    [defender] = section.products  # Security Center's Defender entry is merged into it
    assert defender.name == DEFENDER_NAME
    assert defender.running is True and defender.realtime is True
    assert defender.signature_version == "1.421.1234.0"
    assert defender.signature_updated_at == datetime(2026, 11, 19, 23, 15, 4, tzinfo=UTC)
    assert defender.last_scan_at == datetime(2026, 11, 19, 12, 31, 55, tzinfo=UTC)
    assert defender.signatures_up_to_date is True
    assert any("0x061100" in e for e in defender.evidence)


def test_defender_switched_off() -> None:
    answers = healthy_answers() | {"defender_status": json_file("defender_status_off.json")}
    defender = by_name(probe(windows_ctx(answers)), DEFENDER_NAME)
    assert defender.running is False and defender.realtime is False
    assert defender.signatures_up_to_date is False
    assert defender.last_scan_at == datetime(2026, 9, 28, 12, 2, 3, tzinfo=UTC)
    assert "no full scan ever ran" in defender.evidence


def test_defender_service_stopped_by_another_product() -> None:
    answers = healthy_answers() | {
        "defender_status": error("Operation failed with the following error: 0x800106ba"),
        "wsc_antivirus": json_file("wsc_antivirus_third_party.json"),
    }
    section = probe(windows_ctx(answers))
    defender = by_name(section, DEFENDER_NAME)
    assert defender.installed and defender.running is False
    kaspersky = by_name(section, "Kaspersky Endpoint Security for Windows")
    assert kaspersky.running is True and kaspersky.signatures_up_to_date is True
    bkav = by_name(section, "Bkav Pro")
    assert bkav.running is True and bkav.signatures_up_to_date is False


def test_windows_server_without_security_center_reads_services() -> None:
    services = (
        '[{"Name":"ekrn","DisplayName":"ESET Service","State":"Running","StartMode":"Auto"},'
        '{"Name":"EventLog","DisplayName":"Windows Event Log","State":"Running"}]'
    )
    answers = {
        "defender_status": not_installed("Get-MpComputerStatus"),
        "wsc_antivirus": invalid_namespace(),
        "services": ok(services),
    }
    section = probe(windows_ctx(answers))
    assert section.status == "ok"
    [eset] = section.products
    assert eset.name == "ESET" and eset.running is True
    assert any("Windows Server" in n for n in section.notes)


def test_nothing_installed_is_an_empty_observed_list() -> None:
    answers = {"defender_status": not_installed("Get-MpComputerStatus"), "wsc_antivirus": ok("[]")}
    section = probe(windows_ctx(answers))
    assert section.status == "ok" and section.products == []


def test_tool_missing_or_denied_is_unknown() -> None:
    no_powershell = {n: ToolMissing("powershell.exe") for n in healthy_answers()}
    section = probe(windows_ctx(no_powershell))
    assert section.status == "unknown" and "PowerShell" in (section.reason or "")
    denied = {"defender_status": access_denied(), "wsc_antivirus": access_denied()}
    assert probe(windows_ctx(denied)).status == "unknown"
