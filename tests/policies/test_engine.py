"""Requirement and article verdicts, applicability by Mức độ, and the data files."""

from __future__ import annotations

from agent.report import AntivirusSection, FirewallSection
from policies import evaluate_host, summarize_agency
from policies.framework import load_framework
from policies.registry import load_checks
from tests.factories import make_report


def verdicts(ev) -> dict[str, str]:
    return {v.requirement_id: v.status for v in ev.requirements}


def test_every_framework_check_exists_and_every_check_is_mapped():
    fw = load_framework()
    checks = load_checks()
    assert set(fw.check_ids()) == set(checks)


def test_framework_covers_every_catalogue_row_of_articles_16_to_19():
    ids = {r.id for r in load_framework().requirements}
    expected = {
        "D16.1.a", "D16.1.b", "D16.2.L3.a", "D16.2.L3.b", "D16.2.L3.c", "D16.2.L4.a",
        "D16.2.L4.b", "D17.1.a", "D17.1.b", "D17.1.c", "D17.1.d", "D17.1.e", "D17.1.L3.a",
        "D17.1.L3.b", "D17.1.L4", "D17.2.a", "D17.2.b", "D17.2.c", "D18.1.a", "D18.1.b",
        "D18.1.c", "D18.1.d", "D18.1.e", "D18.2", "D18.2.L2", "D18.2.L3.a", "D18.2.L3.b",
        "D19.1.a", "D19.1.b", "D19.1.c", "D19.2.a", "D19.2.b", "D19.2.c", "D19.2.d",
        "D19.2.e", "D19.2.f", "D19.3.a", "D19.3.b", "D19.3.c", "D19.3.d", "D19.3.e",
        "D19.3.f", "D19.4",
    }
    # Điều 14 khoản 4 and Điều 20 too: see test_framework_catalogue.py for the full list.
    assert expected <= ids


def test_requirement_fails_when_any_of_its_checks_fails():
    fw = FirewallSection(active=True, default_inbound="accept")
    ev = evaluate_host(make_report(firewall=fw), level=3)
    assert verdicts(ev)["D18.1.a"] == "fail"
    d1a = next(v for v in ev.requirements if v.requirement_id == "D18.1.a")
    assert len(d1a.evidence) == 2  # one per check: fw_active, fw_default_deny


def test_level_applicability():
    ev1 = evaluate_host(make_report(), level=1)
    ev3 = evaluate_host(make_report(), level=3)
    assert verdicts(ev1)["D16.2.L3.a"] == "not_applicable"
    assert verdicts(ev3)["D16.2.L3.a"] == "unknown"  # awaiting attestation
    assert verdicts(ev3)["D16.2.L4.a"] == "not_applicable"
    # the two-zone model is described for level 2 only
    assert verdicts(evaluate_host(make_report(), level=2))["D18.2.L2"] == "unknown"
    assert verdicts(ev3)["D18.2.L2"] == "not_applicable"
    reason = next(v for v in ev1.requirements if v.requirement_id == "D16.2.L3.a").reason
    assert reason.vi == "Áp dụng từ Mức độ 3; đơn vị đang ở Mức độ 1"
    only = next(v for v in ev3.requirements if v.requirement_id == "D18.2.L2").reason
    assert only.vi == "Chỉ áp dụng cho Mức độ 2; đơn vị đang ở Mức độ 3"


def test_texts_with_commas_survive_the_yaml_files():
    fw = load_framework()
    assert fw.articles[17].vi == "Bảo mật thông tin, dữ liệu"
    titles = {r.id: r.title.vi for r in fw.requirements}
    assert titles["D16.2.L3.c"] == "Phòng máy chủ bảo đảm nhiệt độ, độ ẩm thích hợp"
    assert titles["D19.3.c"] == "Theo dõi, kiểm tra phần mềm mới trước khi vận hành chính thức"


def test_requirements_without_checks_say_why_they_are_unknown():
    ev = evaluate_host(make_report(), level=3)
    by_id = {v.requirement_id: v for v in ev.requirements}
    assert by_id["D16.2.L3.a"].reason.vi == "Chờ cán bộ có thẩm quyền xác nhận"
    assert by_id["D18.2.L3.a"].reason.en.startswith("Evaluated for the agency as a whole")
    assert by_id["D17.2.c"].reason.vi == "Chờ cán bộ có thẩm quyền xác nhận"


def test_agency_summary_combines_hosts_worst_first():
    good = evaluate_host(make_report(), level=2)
    bad = evaluate_host(
        make_report(hostname="pc-07", antivirus=AntivirusSection(products=[])), level=2
    )
    articles = {a.article: a for a in summarize_agency([good, bad], level=2)}
    assert set(articles) == {14, 16, 17, 18, 19, 20}
    d19 = {r.requirement_id: r for r in articles[19].requirements}
    assert d19["D19.1.a"].status == "fail"
    assert "2 máy: 1 đạt, 1 không đạt" in d19["D19.1.a"].evidence[0].vi
    assert articles[19].status == "fail"
    assert articles[19].counts["fail"] >= 1


def test_agency_without_hosts_is_unknown_not_pass():
    articles = {a.article: a for a in summarize_agency([], level=3)}
    d18 = {r.requirement_id: r for r in articles[18].requirements}
    assert d18["D18.1.a"].status == "unknown"
    assert d18["D18.1.a"].reason.en == "No machine of the agency has reported yet"


def test_broken_check_yields_unknown_instead_of_crashing(monkeypatch):
    import dataclasses

    from policies import engine

    specs = dict(load_checks())

    def boom(ctx):
        raise RuntimeError("bad fact")

    specs["av_installed"] = dataclasses.replace(specs["av_installed"], predicate=boom)
    monkeypatch.setattr(engine, "load_checks", lambda: specs)
    ev = evaluate_host(make_report(), level=3)
    f = next(f for f in ev.findings if f.check_id == "av_installed")
    assert f.status == "unknown"
    assert "bad fact" in f.evidence.en


def test_all_user_texts_are_bilingual_and_vietnamese_is_nfc():
    import unicodedata

    fw = load_framework()
    texts = [fw.title, *fw.articles.values()]
    for r in fw.requirements:
        texts += [r.reference, r.title]
    for spec in load_checks().values():
        texts += [spec.title, spec.remediation, *spec.messages.values()]
    for t in texts:
        assert t.vi.strip() and t.en.strip()
        assert unicodedata.normalize("NFC", t.vi) == t.vi


def test_preload_reads_the_rules_once_for_the_collectors_lifetime() -> None:
    """The collector preloads at startup: what ingest uses is then already cached."""
    from policies import engine
    from policies.parameters import default_parameters
    from policies.registry import load_checks, load_fleet_rules

    cached = (load_checks, load_fleet_rules, default_parameters, engine._requirements_by_check)
    for function in cached:
        function.cache_clear()
    engine.preload()
    assert [f.cache_info().currsize for f in cached] == [1, 1, 1, 1]
