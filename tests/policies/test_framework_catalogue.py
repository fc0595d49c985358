"""The Bình Dương framework against the requirement catalogue (REGULATION.md §3 and §3.1).

The catalogue lives outside the repository, so its IDs and levels are copied
here: 52 rows of Điều 16–20 (§3) and 2 rows of Điều 14 khoản 4 (§3.1).
"""

from __future__ import annotations

import unicodedata

import pytest

from policies import evaluate_host
from policies.engine import resolve_role
from policies.framework import load_framework
from tests.factories import make_report

# ID → "applies from level" of the catalogue.
CATALOGUE: dict[str, int] = {
    # §3.1 — Điều 14, khoản 4
    "D14.4.a": 2, "D14.4.b": 2,
    # §3 — Điều 16
    "D16.1.a": 1, "D16.1.b": 1, "D16.2.L3.a": 3, "D16.2.L3.b": 3, "D16.2.L3.c": 3,
    "D16.2.L4.a": 4, "D16.2.L4.b": 4,
    # Điều 17
    "D17.1.a": 2, "D17.1.b": 2, "D17.1.c": 2, "D17.1.d": 2, "D17.1.e": 2,
    "D17.1.L3.a": 3, "D17.1.L3.b": 3, "D17.1.L4": 4, "D17.2.a": 1, "D17.2.b": 1, "D17.2.c": 1,
    # Điều 18
    "D18.1.a": 1, "D18.1.b": 1, "D18.1.c": 1, "D18.1.d": 1, "D18.1.e": 1, "D18.2": 1,
    "D18.2.L2": 2, "D18.2.L3.a": 3, "D18.2.L3.b": 3,
    # Điều 19
    "D19.1.a": 1, "D19.1.b": 1, "D19.1.c": 1, "D19.2.a": 1, "D19.2.b": 1, "D19.2.c": 1,
    "D19.2.d": 1, "D19.2.e": 1, "D19.2.f": 1, "D19.3.a": 1, "D19.3.b": 1, "D19.3.c": 1,
    "D19.3.d": 1, "D19.3.e": 1, "D19.3.f": 1, "D19.4": 1,
    # Điều 20
    "D20.1": 1, "D20.2.a": 1, "D20.2.b": 1, "D20.3.a": 1, "D20.3.b": 1, "D20.4": 3,
    "D20.5.a": 1, "D20.5.b": 1, "D20.6": 1,
}  # fmt: skip

# How the catalogue says the new rows are verified.
VERIFICATION = {
    "D14.4.a": "fleet", "D14.4.b": "attestation",
    "D20.1": "attestation", "D20.2.a": "attestation", "D20.2.b": "attestation",
    "D20.3.a": "attestation", "D20.3.b": "fleet", "D20.4": "attestation",
    "D20.5.a": "attestation", "D20.5.b": "attestation", "D20.6": "fleet",
}  # fmt: skip


def nfc(text: str) -> bool:
    return unicodedata.normalize("NFC", text) == text


@pytest.fixture(scope="module")
def reqs():
    return {r.id: r for r in load_framework().requirements}


def test_every_catalogue_row_is_in_the_framework_and_nothing_else(reqs):
    assert len(CATALOGUE) == 54
    assert set(reqs) == set(CATALOGUE)


def test_levels_match_the_catalogue(reqs):
    assert {rid: r.min_level for rid, r in reqs.items()} == CATALOGUE
    assert reqs["D18.2.L2"].max_level == 2  # "có thể" model described for level 2 only
    assert all(r.max_level == 4 for rid, r in reqs.items() if rid != "D18.2.L2")


def test_articles_14_and_20(reqs):
    fw = load_framework()
    assert fw.articles[14].vi == "Cơ sở hạ tầng của từng cơ quan, đơn vị"  # seed 001, verbatim
    assert fw.articles[20].vi == "Quản lý an toàn, bảo mật"
    for rid, verification in VERIFICATION.items():
        r = reqs[rid]
        assert r.verification == verification, rid
        assert r.article == int(rid[1:3])
        assert r.reference.vi.startswith(f"Điều {r.article}, khoản")
        assert r.reference.en.startswith(f"Article {r.article}, clause")
    assert reqs["D14.4.a"].fleet_rules == ["fleet_servers_present"]
    assert reqs["D20.3.b"].fleet_rules == ["fleet_assessment_recent"]
    assert reqs["D20.6"].fleet_rules == ["fleet_security_report"]
    assert reqs["D20.3.b"].quote == "Ít nhất mỗi năm một lần"
    assert reqs["D14.4.a"].modality == "needs"  # "cần trang bị máy chủ"


def test_quotes_are_verbatim_vietnamese_and_nfc(reqs):
    for rid, r in reqs.items():
        assert r.quote.strip(), rid
        assert nfc(r.quote), rid
        assert nfc(r.title.vi) and nfc(r.reference.vi), rid
        assert r.title.en.strip() and r.reference.en.strip(), rid


def test_every_attestation_row_says_what_evidence_to_upload(reqs):
    attested = [r for r in reqs.values() if r.verification == "attestation"]
    assert len(attested) == 26
    for r in attested:
        assert r.attestation_evidence is not None, r.id
        assert r.attestation_evidence.vi.strip() and r.attestation_evidence.en.strip(), r.id
        assert nfc(r.attestation_evidence.vi), r.id
        assert r.attestation_valid_days == 365, r.id
    assert "TCVN ISO/IEC 27001:2009" in reqs["D20.4"].attestation_evidence.vi


def test_fleet_and_host_rows_name_only_known_rules(reqs):
    fw = load_framework()  # load_framework refuses unknown check or rule ids
    for r in reqs.values():
        if r.verification == "attestation":
            assert not r.checks and not r.fleet_rules, r.id
    assert set(fw.fleet_rule_ids()) >= {
        "fleet_servers_present",
        "fleet_assessment_recent",
        "fleet_security_report",
    }


# --- applicability: by Mức độ and by host role -------------------------------


def verdicts(level: int, **kw) -> dict[str, str]:
    return {
        v.requirement_id: v.status for v in evaluate_host(make_report(**kw), level).requirements
    }


def test_new_rows_apply_by_level():
    l1, l2, l3 = verdicts(1), verdicts(2), verdicts(3)
    assert l1["D14.4.a"] == l1["D14.4.b"] == "not_applicable"
    assert l2["D14.4.a"] == "unknown"  # decided for the agency as a whole
    assert l2["D14.4.b"] == "unknown"  # awaiting attestation
    assert l2["D20.4"] == "not_applicable" and l3["D20.4"] == "unknown"
    assert l1["D20.1"] == l1["D20.3.b"] == l1["D20.6"] == "unknown"


def test_role_comes_from_configuration_then_enrollment_then_hardware():
    from agent.report import HardwareSection

    # the agent's own role (enrollment/configuration) says workstation, the chassis says server
    report = make_report(role="workstation")
    assert report.hardware.role_hint == "server"
    assert resolve_role(report, "server") == "server"  # the collector's configured role wins
    assert resolve_role(report) == "workstation"  # then the role given at enrollment
    assert resolve_role(make_report()) == "server"  # hardware hint (chassis) last
    no_hint = make_report(hardware=HardwareSection(role_hint="unknown"))
    assert resolve_role(no_hint) == "unknown"


def test_workstation_is_not_held_to_server_only_checks():
    ev = evaluate_host(make_report(), 2, role="workstation")
    server_only = [f for f in ev.findings if f.check_id == "ssh_password_auth_server"]
    assert server_only and server_only[0].status == "not_applicable"
