"""Coverage of a framework: which requirements have a way to a verdict, and the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collector import cli
from policies import framework as frameworks
from policies.coverage import coverage, coverage_table, unmapped
from policies.framework import Framework, load_framework


def requirement(rid: str, verification: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "article": kw.pop("article", 19),
        "reference": {"vi": "Điều 19, khoản 1", "en": "Article 19, clause 1"},
        "title": {"vi": f"Yêu cầu {rid}", "en": f"Requirement {rid}"},
        "quote": "phải lựa chọn",
        "min_level": 1,
        "modality": "must",
        "verification": verification,
        **kw,
    }


EVIDENCE = {"vi": "Biên bản có chữ ký", "en": "A signed record"}


def crafted(*requirements: dict[str, Any]) -> Framework:
    return Framework.model_validate(
        {
            "id": "crafted",
            "title": {"vi": "Khung thử", "en": "Test framework"},
            "articles": {
                18: {"vi": "Bảo mật mạng", "en": "Network security"},
                19: {"vi": "Bảo mật mức ứng dụng", "en": "Application-level security"},
            },
            "requirements": list(requirements),
        }
    )


def rows_by_id(fw: Framework):
    return {row.id: row for row in coverage(fw)}


def test_mapped_iff_checks_rules_attestation_with_evidence_or_network():
    fw = crafted(
        requirement("H.ok", "host", checks=["av_installed"]),
        requirement("H.none", "host"),
        requirement("F.ok", "fleet", fleet_rules=["fleet_hosts_reporting"]),
        requirement("F.none", "fleet"),
        requirement("A.ok", "attestation", attestation_evidence=EVIDENCE),
        requirement("A.none", "attestation"),
        requirement("A.blank", "attestation", attestation_evidence={"vi": " ", "en": " "}),
        requirement("N", "network", article=18),
        # a fleet-verified requirement proven by host checks is mapped too
        requirement("F.host", "fleet", checks=["backup_recent"]),
    )
    rows = rows_by_id(fw)
    assert {rid for rid, row in rows.items() if row.mapped} == {
        "H.ok",
        "F.ok",
        "A.ok",
        "N",
        "F.host",
    }
    assert [r.id for r in unmapped(coverage(fw))] == ["H.none", "F.none", "A.none", "A.blank"]


def test_rows_say_how_and_by_which_checks():
    fw = crafted(
        requirement("H", "host", checks=["fw_active", "fw_default_deny"]),
        requirement("F", "fleet", fleet_rules=["fleet_hosts_reporting"]),
        requirement("A", "attestation", attestation_evidence=EVIDENCE),
        requirement("N", "network", article=18),
        requirement("U", "host"),
    )
    rows = rows_by_id(fw)
    assert rows["H"].checks == ["fw_active", "fw_default_deny"]
    assert rows["H"].why.en == "Host checks: fw_active, fw_default_deny"
    assert rows["F"].fleet_rules == ["fleet_hosts_reporting"]
    assert rows["F"].why.vi == "Quy tắc toàn đơn vị: fleet_hosts_reporting"
    assert "A signed record" in rows["A"].why.en and "Biên bản có chữ ký" in rows["A"].why.vi
    assert "No network probe yet" in rows["N"].why.en
    assert "Chưa có thăm dò mạng" in rows["N"].why.vi
    assert rows["U"].why.en == "No host check is mapped yet"
    assert rows["H"].reference.vi == "Điều 19, khoản 1"


def test_rows_are_in_article_order():
    fw = crafted(requirement("B", "network", article=19), requirement("A", "network", article=18))
    assert [r.id for r in coverage(fw)] == ["A", "B"]


def test_table_renders_in_both_languages():
    from rich.console import Console

    fw = crafted(requirement("H", "host", checks=["av_installed"]), requirement("U", "host"))
    for lang, expected in (("vi", "1/2 yêu cầu"), ("en", "1 of 2 requirements")):
        console = Console(record=True, width=160)
        console.print(coverage_table(coverage(fw), fw.id, lang))
        assert expected in console.export_text()


# --- the real framework -----------------------------------------------------


def test_real_framework_network_rows_are_mapped_as_pending_probes():
    rows = rows_by_id(load_framework())
    for rid in ("D18.2.L2", "D18.2.L3.a", "D18.2.L3.b"):
        assert rows[rid].mapped and rows[rid].verification == "network"


def test_real_framework_is_fully_mapped():
    """EXPECTED TO PASS ONCE THE IN-FLIGHT WORK HAS LANDED.

    Host checks for D17.1.L3.b, D19.2.b and fleet rules for D17.1.a,
    D17.1.L3.a, D19.2.f, D19.3.b, D19.3.e are being written by other
    engineers; until then this test lists exactly which rows are missing.
    """
    missing = [(r.id, r.verification) for r in unmapped(coverage(load_framework()))]
    assert missing == []


# --- posture-collector coverage ---------------------------------------------


@pytest.fixture
def use_framework(monkeypatch):
    def use(fw: Framework) -> None:
        monkeypatch.setattr(frameworks, "load_framework", lambda name=None: fw)

    return use


def test_cli_exits_1_and_lists_unmapped(use_framework, capsys):
    use_framework(
        crafted(requirement("H.ok", "host", checks=["av_installed"]), requirement("H.gap", "host"))
    )
    assert cli.main(["coverage", "--lang", "en"]) == 1
    out, err = capsys.readouterr()
    assert "H.ok" in out and "H.gap" in out and "1 of 2" in out
    assert "unmapped requirements (1): H.gap" in err


def test_cli_exits_0_when_everything_is_mapped(use_framework, capsys):
    use_framework(
        crafted(
            requirement("H", "host", checks=["av_installed"]),
            requirement("A", "attestation", attestation_evidence=EVIDENCE),
            requirement("N", "network", article=18),
        )
    )
    assert cli.main(["coverage"]) == 0
    out, err = capsys.readouterr()
    assert "Yêu cầu" in out and "3/3" in out and err == ""


def test_cli_json(use_framework, capsys):
    use_framework(crafted(requirement("H", "host"), requirement("N", "network", article=18)))
    assert cli.main(["coverage", "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["mapped"]) for r in rows] == [("N", True), ("H", False)]
    assert rows[1]["why"]["en"] == "No host check is mapped yet"
    assert set(rows[0]) >= {"id", "reference", "verification", "checks", "fleet_rules", "why"}


def test_cli_unknown_framework(capsys):
    assert cli.main(["coverage", "--framework", "no-such-province"]) == 2
    assert "no-such-province" in capsys.readouterr().err


def test_cli_on_the_real_framework(capsys):
    """Runs the real command; its exit code follows test_real_framework_is_fully_mapped."""
    code = cli.main(["coverage", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(load_framework().requirements)
    assert code == (0 if all(r["mapped"] for r in rows) else 1)
