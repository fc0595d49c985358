"""Compliance history (snapshots after ingest and re-evaluation) and re-evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from agent.report import AntivirusProduct, AntivirusSection
from collector import cli, fleet_data
from collector.models import ComplianceSnapshot, StoredFinding
from policies.parameters import default_parameters
from tests.factories import make_report


def now() -> datetime:
    return datetime.now(UTC)


def snapshots(api) -> list[ComplianceSnapshot]:
    with Session(api.engine) as session:
        return list(
            session.exec(
                select(ComplianceSnapshot).order_by(
                    col(ComplianceSnapshot.taken_at), col(ComplianceSnapshot.id)
                )
            ).all()
        )


def signatures(days_old: float) -> AntivirusSection:
    return AntivirusSection(
        products=[
            AntivirusProduct(name="ClamAV", installed=True, running=True, updater_running=True,
                             signature_updated_at=now() - timedelta(days=days_old))
        ]
    )


def history(api, agency_id: int, headers, **params) -> dict:
    r = api.client.get(
        f"/api/v1/agencies/{agency_id}/compliance/history", params=params, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_one_snapshot_per_interval_after_ingest(api, agent, admin_headers) -> None:
    assert snapshots(api) == []
    assert api.post_report(agent, make_report(now=now(), machine_id="machine-0001")).status_code \
        == 201
    first = snapshots(api)
    articles = {s.article for s in first}
    assert {16, 17, 18, 19} <= articles and len(first) == len(articles)
    assert {s.trigger for s in first} == {"ingest"}
    assert all(len(s.framework_hash) == 64 for s in first)

    # a second report within POSTURE_SNAPSHOT_MIN_INTERVAL_MINUTES (60): no new snapshot
    assert api.post_report(agent, make_report(now=now(), machine_id="machine-0001")).status_code \
        == 201
    assert len(snapshots(api)) == len(first)


def test_every_ingest_snapshots_with_a_zero_interval(make_api, monkeypatch) -> None:
    monkeypatch.setenv("POSTURE_SNAPSHOT_MIN_INTERVAL_MINUTES", "0")
    api = make_api(snapshot_min_interval_minutes=0)
    agent = api.new_agent()
    for _ in range(2):
        r = api.post_report(agent, make_report(now=now(), machine_id="machine-0001"))
        assert r.status_code == 201
    rows = snapshots(api)
    assert len(rows) == 2 * len({s.article for s in rows})


def test_history_endpoint_returns_a_series_per_article(api, agent, admin_headers) -> None:
    assert api.post_report(agent, make_report(now=now(), machine_id="machine-0001")).status_code \
        == 201
    agency_id = api.client.get("/api/v1/agencies", headers=admin_headers).json()[0]["id"]
    data = history(api, agency_id, admin_headers)
    by_article = {a["article"]: a for a in data["articles"]}
    assert {16, 17, 18, 19} <= set(by_article)
    point = by_article[19]["points"][0]
    assert point["status"] in ("pass", "fail", "unknown", "waived")
    assert set(point["counts"]) >= {"pass", "fail", "unknown"}
    assert point["score"] is None or 0 <= point["score"] <= 1
    assert by_article[19]["title"]["vi"] == "Bảo mật mức ứng dụng"

    future = (now() + timedelta(days=1)).isoformat()
    assert all(a["points"] == [] for a in history(api, agency_id, admin_headers,
                                                  since=future)["articles"])
    past = (now() - timedelta(days=1)).isoformat()
    assert all(a["points"] == [] for a in history(api, agency_id, admin_headers,
                                                  until=past)["articles"])
    assert api.client.get(f"/api/v1/agencies/{agency_id}/compliance/history").status_code == 401
    assert api.client.get("/api/v1/agencies/999/compliance/history",
                          headers=admin_headers).status_code == 404


def stricter(monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy change: signatures must now be at most 1 day old (default 7)."""
    params = {family: dict(values) for family, values in default_parameters().items()}
    params["antivirus"]["max_signature_age_days"] = 1
    monkeypatch.setattr(fleet_data, "agency_parameters", lambda agency, settings=None: params)


def av_signature_status(api, host_id: int, headers) -> str:
    r = api.client.get(f"/api/v1/hosts/{host_id}/findings", headers=headers)
    return next(f["status"] for f in r.json() if f["check_id"] == "av_signatures_fresh")


def test_reevaluate_applies_the_current_policies(api, agent, admin_headers, monkeypatch) -> None:
    report = make_report(now=now(), machine_id="machine-0001", antivirus=signatures(3))
    assert api.post_report(agent, report).status_code == 201
    assert av_signature_status(api, agent.host_id, admin_headers) == "pass"
    before = {s.article: s for s in snapshots(api)}

    assert api.client.post("/api/v1/reevaluate").status_code == 401
    stricter(monkeypatch)
    r = api.client.post("/api/v1/reevaluate", headers=admin_headers)
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["agencies"] == 1 and stats["reports"] == 1 and stats["changed"] >= 1
    assert av_signature_status(api, agent.host_id, admin_headers) == "fail"

    # the stored findings of the report were replaced, not added to
    with Session(api.engine) as session:
        rows = session.exec(
            select(StoredFinding).where(StoredFinding.check_id == "av_signatures_fresh")
        ).all()
    assert len(rows) == 1 and rows[0].status == "fail"

    after = [s for s in snapshots(api) if s.trigger == "reevaluate"]
    assert after, "re-evaluation records a snapshot"
    d19 = next(s for s in after if s.article == 19)
    assert d19.counts["fail"] > before[19].counts["fail"]
    assert d19.framework_hash != before[19].framework_hash  # other parameters, other hash

    agency_id = api.client.get("/api/v1/agencies", headers=admin_headers).json()[0]["id"]
    series = history(api, agency_id, admin_headers)["articles"]
    points = {a["article"]: a["points"] for a in series}
    assert [p["trigger"] for p in points[19]] == ["ingest", "reevaluate"]

    assert api.client.post("/api/v1/reevaluate?agency_id=999",
                           headers=admin_headers).status_code == 404


def test_reevaluate_cli(api, agent, settings, monkeypatch, capsys) -> None:
    report = make_report(now=now(), machine_id="machine-0001", antivirus=signatures(3))
    assert api.post_report(agent, report).status_code == 201
    monkeypatch.delenv("POSTURE_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    stricter(monkeypatch)

    assert cli.main(["reevaluate", "--agency", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert cli.main(["reevaluate", "--agency", "so-tttt"]) == 0
    out = capsys.readouterr().out
    assert "re-evaluated 1 report(s) of 1 host(s)" in out
    assert av_signature_status(api, agent.host_id, {"Authorization": "Bearer test-admin-token"}) \
        == "fail"
    assert cli.main(["reevaluate"]) == 0  # every agency
