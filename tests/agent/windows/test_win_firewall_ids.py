"""Windows Firewall profiles and IDS services."""

from __future__ import annotations

from agent.probes.windows import firewall, ids
from tests.agent.windows.winkit import (
    access_denied,
    healthy_answers,
    json_file,
    not_installed,
    ok,
    windows_ctx,
)


def test_all_profiles_on() -> None:
    section = firewall.probe(windows_ctx())
    assert section.status == "ok" and section.active is True
    assert section.default_inbound == "drop"
    [backend] = section.backends
    assert backend.name == "windows" and [p.name for p in backend.profiles] == [
        "Domain",
        "Private",
        "Public",
    ]


def test_public_profile_off_makes_the_firewall_inactive() -> None:
    answers = healthy_answers() | {
        "firewall_profiles": json_file("firewall_profiles_public_off.json")
    }
    section = firewall.probe(windows_ctx(answers))
    assert section.status == "ok" and section.active is False
    assert [p.name for p in section.backends[0].profiles if p.enabled is False] == ["Public"]


def test_allow_inbound_is_accept_and_numeric_enums_are_read() -> None:
    rows = (
        '[{"Name":"Domain","Enabled":1,"DefaultInboundAction":4},'
        '{"Name":"Private","Enabled":1,"DefaultInboundAction":2},'
        '{"Name":"Public","Enabled":1,"DefaultInboundAction":4}]'
    )
    section = firewall.probe(windows_ctx({"firewall_profiles": ok(rows)}))
    assert section.active is True and section.default_inbound == "accept"


def test_firewall_missing_or_denied_is_unknown() -> None:
    for answer in (not_installed("Get-NetFirewallProfile"), access_denied()):
        section = firewall.probe(windows_ctx({"firewall_profiles": answer}))
        assert section.status == "unknown" and section.reason


def test_ids_services() -> None:
    section = ids.probe(windows_ctx())
    assert {(p.name, p.kind, p.running) for p in section.products} == {
        ("Wazuh agent", "hids", True),
        ("Sysmon", "hids", True),
    }


def test_ids_stopped_and_missing() -> None:
    stopped = '{"Name":"WazuhSvc","DisplayName":"Wazuh","State":"Stopped","StartMode":"Disabled"}'
    [wazuh] = ids.probe(windows_ctx({"services": ok(stopped)})).products
    assert wazuh.running is False
    section = ids.probe(windows_ctx({"services": not_installed("Get-CimInstance")}))
    assert section.status == "unknown"
