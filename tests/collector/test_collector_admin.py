"""Admin/read API: auth, agencies, hosts, findings, compliance, OpenAPI."""

from __future__ import annotations

import pytest

from policies.framework import load_framework

ADMIN_GETS = (
    "/api/v1/agencies",
    "/api/v1/agencies/1",
    "/api/v1/agencies/1/hosts",
    "/api/v1/agencies/1/compliance",
    "/api/v1/hosts/1",
    "/api/v1/hosts/1/findings",
    "/api/v1/hosts/1/compliance",
)
ADMIN_POSTS = (
    ("/api/v1/agencies", {"code": "x", "name": "X", "level": 1}),
    ("/api/v1/agencies/1/enrollment-tokens", {}),
    ("/api/v1/hosts/1/revoke", None),
)


def test_admin_requires_token(api, agent) -> None:
    before = api.snapshot()
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer pu_1_forged"},
    ):
        for path in ADMIN_GETS:
            r = api.client.get(path, headers=headers)
            assert r.status_code == 401, (path, headers)
            assert r.json()["detail"] in (
                "invalid token",
                "missing token: send 'Authorization: Bearer <token>'",
                "unknown, expired or revoked token",
            )
            assert r.headers["www-authenticate"] == "Bearer"
        for path, body in ADMIN_POSTS:
            assert api.client.post(path, json=body, headers=headers).status_code == 401
    # An agent is authenticated, but may not use the people's API.
    agent_headers = {"Authorization": f"Bearer {agent.credential}"}
    for path in ADMIN_GETS:
        r = api.client.get(path, headers=agent_headers)
        assert r.status_code == 403, path
        assert "agent credentials may only post reports" in r.json()["detail"]
    for path, body in ADMIN_POSTS:
        assert api.client.post(path, json=body, headers=agent_headers).status_code == 403
    assert api.snapshot() == before


def test_no_bootstrap_token_without_configured_admin_token(make_api, admin_headers) -> None:
    """Without POSTURE_ADMIN_TOKEN no bearer value acts as administrator (not even empty)."""
    api = make_api(admin_token=None)
    before = api.snapshot()
    for headers in ({}, admin_headers, {"Authorization": "Bearer "}):
        for path in ADMIN_GETS:
            assert api.client.get(path, headers=headers).status_code == 401
        for path, body in ADMIN_POSTS:
            assert api.client.post(path, json=body, headers=headers).status_code == 401
    assert api.snapshot() == before
    # Agent-facing and health endpoints do not depend on the admin token.
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert (
        api.client.post("/api/v1/enroll", json={"token": "pe_x", "hostname": "h"}).status_code
        == 401
    )


def test_agencies_crud(api, admin_headers) -> None:
    a = api.create_agency(code="so-tttt", level=3)
    b = api.create_agency(code="ubnd-bc", level=1, name="UBND Bến Cát")
    r = api.client.get("/api/v1/agencies", headers=admin_headers)
    assert [x["code"] for x in r.json()] == ["so-tttt", "ubnd-bc"]
    r = api.client.get(f"/api/v1/agencies/{b['id']}", headers=admin_headers)
    assert r.json()["name"] == "UBND Bến Cát"
    assert r.json()["level"] == 1

    before = api.snapshot()
    r = api.client.post(
        "/api/v1/agencies",
        json={"code": "so-tttt", "name": "Dup", "level": 2},
        headers=admin_headers,
    )
    assert r.status_code == 409
    assert "so-tttt" in r.json()["detail"]
    for level in (0, 5, "high"):
        r = api.client.post(
            "/api/v1/agencies",
            json={"code": "new", "name": "N", "level": level},
            headers=admin_headers,
        )
        assert r.status_code == 422
    assert api.snapshot() == before
    assert a["id"] != b["id"]


def test_not_found_messages(api, admin_headers) -> None:
    for path, message in (
        ("/api/v1/agencies/999", "agency 999 not found"),
        ("/api/v1/agencies/999/hosts", "agency 999 not found"),
        ("/api/v1/agencies/999/compliance", "agency 999 not found"),
        ("/api/v1/hosts/999", "host 999 not found"),
        ("/api/v1/hosts/999/findings", "host 999 not found"),
        ("/api/v1/hosts/999/compliance", "host 999 not found"),
    ):
        r = api.client.get(path, headers=admin_headers)
        assert r.status_code == 404
        assert r.json()["detail"] == message
    before = api.snapshot()
    assert (
        api.client.post(
            "/api/v1/agencies/999/enrollment-tokens", json={}, headers=admin_headers
        ).status_code
        == 404
    )
    assert api.client.post("/api/v1/hosts/999/revoke", headers=admin_headers).status_code == 404
    assert api.snapshot() == before


def test_enrollment_token_is_shown_once(api, admin_headers) -> None:
    agency = api.create_agency()
    r = api.client.post(
        f"/api/v1/agencies/{agency['id']}/enrollment-tokens",
        json={"label": "phòng IT", "expires_in_hours": 24},
        headers=admin_headers,
    )
    assert r.status_code == 201
    data = r.json()
    assert data["token"].startswith("pe_") and data["label"] == "phòng IT"
    assert data["expires_at"] is not None
    # Without a body: no label, no expiry.
    r = api.client.post(f"/api/v1/agencies/{agency['id']}/enrollment-tokens", headers=admin_headers)
    assert r.status_code == 201 and r.json()["expires_at"] is None
    before = api.snapshot()
    r = api.client.post(
        f"/api/v1/agencies/{agency['id']}/enrollment-tokens",
        json={"expires_in_hours": -1},
        headers=admin_headers,
    )
    assert r.status_code == 422
    assert api.snapshot() == before
    assert all(data["token"] not in repr(rows) for rows in before.values())


def test_hosts_of_agency_and_host_details(api, report_factory, admin_headers) -> None:
    agency = api.create_agency()
    other = api.create_agency(code="other")
    token = api.create_token(agency["id"])
    a = api.enroll(token, machine_id="m-a", hostname="a")
    b = api.enroll(token, machine_id="m-b", hostname="b")
    api.enroll(api.create_token(other["id"]), machine_id="m-a", hostname="elsewhere")
    assert api.post_report(a, report_factory(machine_id="m-a", hostname="a")).status_code == 201

    r = api.client.get(f"/api/v1/agencies/{agency['id']}/hosts", headers=admin_headers)
    hosts = r.json()
    assert [h["id"] for h in hosts] == [a.host_id, b.host_id]
    assert hosts[0]["latest_report_id"] is not None and hosts[0]["last_seen_at"] is not None
    assert hosts[1]["latest_report_id"] is None

    r = api.client.get(f"/api/v1/hosts/{a.host_id}", headers=admin_headers)
    assert r.json()["hostname"] == "a" and r.json()["machine_id"] == "m-a"


def test_host_findings_and_filter(api, agent, report_factory, insecure, admin_headers) -> None:
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/findings", headers=admin_headers)
    assert r.json() == []  # no report yet

    first = report_factory()
    assert api.post_report(agent, first).status_code == 201
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/findings?status=fail", headers=admin_headers)
    assert r.json() == []

    # The latest report replaces the previous one in the view.
    second = report_factory(**insecure)
    assert api.post_report(agent, second).status_code == 201
    all_findings = api.client.get(
        f"/api/v1/hosts/{agent.host_id}/findings", headers=admin_headers
    ).json()
    failing = api.client.get(
        f"/api/v1/hosts/{agent.host_id}/findings", params={"status": "fail"}, headers=admin_headers
    ).json()
    passing = api.client.get(
        f"/api/v1/hosts/{agent.host_id}/findings", params={"status": "pass"}, headers=admin_headers
    ).json()
    assert len(all_findings) == len(load_framework().check_ids())
    assert failing and all(f["status"] == "fail" for f in failing)
    assert {"av_installed", "fw_active", "fw_default_deny"} <= {f["check_id"] for f in failing}
    assert all(f["status"] == "pass" for f in passing)
    assert len(failing) + len(passing) <= len(all_findings)
    finding = failing[0]
    assert set(finding) >= {
        "check_id",
        "status",
        "severity",
        "title",
        "evidence",
        "remediation",
        "requirement_ids",
        "data",
    }
    assert finding["title"]["vi"]

    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/findings?status=bad", headers=admin_headers)
    assert r.status_code == 422


def test_host_compliance(api, agent, report_factory, insecure, admin_headers) -> None:
    # Before any report every host requirement is unknown, never pass.
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/compliance", headers=admin_headers)
    before_report = {v["requirement_id"]: v["status"] for v in r.json()}
    assert before_report["D19.1.a"] == "unknown"
    assert "pass" not in before_report.values()

    assert api.post_report(agent, report_factory()).status_code == 201
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/compliance", headers=admin_headers)
    verdicts = {v["requirement_id"]: v for v in r.json()}
    assert verdicts["D19.1.a"]["status"] == "pass"
    assert verdicts["D18.1.a"]["status"] == "pass"
    assert verdicts["D19.1.a"]["article"] == 19
    assert verdicts["D19.1.a"]["check_ids"][0] == "av_installed"  # then its fleet rule

    assert api.post_report(agent, report_factory(**insecure)).status_code == 201
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/compliance", headers=admin_headers)
    verdicts = {v["requirement_id"]: v for v in r.json()}
    assert verdicts["D19.1.a"]["status"] == "fail"
    assert verdicts["D18.1.a"]["status"] == "fail"


def test_agency_compliance_by_article(api, report_factory, insecure, admin_headers) -> None:
    agency = api.create_agency(level=3)
    token = api.create_token(agency["id"])
    good = api.enroll(token, machine_id="m-good", hostname="good")

    assert api.post_report(good, report_factory(machine_id="m-good")).status_code == 201
    r = api.client.get(f"/api/v1/agencies/{agency['id']}/compliance", headers=admin_headers)
    assert r.status_code == 200
    articles = {a["article"]: a for a in r.json()}
    assert sorted(articles) == sorted(load_framework().articles)
    assert {16, 17, 18, 19} <= set(articles)
    reqs = {q["requirement_id"]: q for q in articles[19]["requirements"]}
    # the one machine passes, but without a discovery sweep nobody knows whether
    # unenrolled machines lack anti-virus: "tất cả các máy" stays undetermined
    d19_1_a = reqs["D19.1.a"]
    assert d19_1_a["status"] == "unknown"
    evidence = " ".join(e["vi"] for e in d19_1_a["evidence"])
    assert "1 máy: 1 đạt" in evidence and "Chưa quét phát hiện thiết bị" in evidence
    assert articles[19]["status"] != "fail"
    assert articles[19]["counts"]["pass"] >= 1
    assert articles[19]["title"]["vi"]

    bad = api.enroll(token, machine_id="m-bad", hostname="bad")
    assert api.post_report(bad, report_factory(machine_id="m-bad", **insecure)).status_code == 201
    r = api.client.get(f"/api/v1/agencies/{agency['id']}/compliance", headers=admin_headers)
    articles = {a["article"]: a for a in r.json()}
    assert articles[19]["status"] == "fail"
    assert articles[18]["status"] == "fail"
    reqs = {q["requirement_id"]: q for q in articles[19]["requirements"]}
    assert reqs["D19.1.a"]["status"] == "fail"
    # Other agencies are not affected.
    other = api.create_agency(code="other")
    r = api.client.get(f"/api/v1/agencies/{other['id']}/compliance", headers=admin_headers)
    assert all(a["status"] != "fail" for a in r.json())


@pytest.mark.parametrize("level", [1, 4])
def test_agency_level_changes_applicable_requirements(
    api, report_factory, admin_headers, level
) -> None:
    agent = api.new_agent(level=level)
    assert api.post_report(agent, report_factory()).status_code == 201
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/compliance", headers=admin_headers)
    statuses = {v["requirement_id"]: v["status"] for v in r.json()}
    # D16.2.L4.a applies from level 4 only.
    assert (statuses["D16.2.L4.a"] == "not_applicable") == (level < 4)


def test_revoke_host(api, agent, report_factory, admin_headers) -> None:
    r = api.client.post(f"/api/v1/hosts/{agent.host_id}/revoke", headers=admin_headers)
    assert r.json() == {"host_id": agent.host_id, "revoked": 1}
    r = api.client.post(f"/api/v1/hosts/{agent.host_id}/revoke", headers=admin_headers)
    assert r.json() == {"host_id": agent.host_id, "revoked": 0}
    assert api.post_report(agent, report_factory()).status_code == 401


def test_healthz_and_openapi(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/enroll",
        "/api/v1/reports",
        "/api/v1/agencies",
        "/api/v1/agencies/{agency_id}/compliance",
        "/api/v1/hosts/{host_id}/findings",
    ):
        assert path in paths
    schemas = spec["components"]["schemas"]
    assert "Report" in schemas and "AntivirusSection" in schemas
    post = paths["/api/v1/reports"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Report"
    }
    assert {"200", "201", "401", "409", "413", "422"} <= set(post["responses"])
    compliance = paths["/api/v1/agencies/{agency_id}/compliance"]["get"]
    assert "ArticleVerdict" in str(compliance["responses"]["200"])
    assert client.get("/docs").status_code == 200


def test_ids_beyond_64_bits_are_bad_input_not_a_crash(api, admin_headers) -> None:
    huge = 2**70
    r = api.client.get(f"/api/v1/agencies/{huge}", headers=admin_headers)
    assert r.status_code in (404, 422), r.text
    assert "detail" in r.json()
