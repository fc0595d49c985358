"""Agency-wide rules through the collector: register of approved software, fleet findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from agent.report import (
    AntivirusSection,
    BackupSection,
    Package,
    SoftwareSection,
    inventory_hash,
)
from collector.models import Host
from tests.factories import healthy_sections, make_report

BASE = [Package(name="clamav", version="1.0.7+dfsg-1~deb12u1", arch="amd64")]
ANYDESK = Package(name="anydesk", version="6.3.0", arch="amd64")
SAMBA = Package(name="samba", version="2:4.17.12+dfsg-0+deb12u1", arch="amd64")


def now() -> datetime:
    return datetime.now(UTC)


def fleet(api, agency_id: int, admin_headers) -> dict[str, dict]:
    r = api.client.get(f"/api/v1/agencies/{agency_id}/fleet", headers=admin_headers)
    assert r.status_code == 200, r.text
    return {f["check_id"]: f for f in r.json()}


def report(hostname: str, machine_id: str, when: datetime | None = None, **sections):
    return make_report(now=when or now(), hostname=hostname, machine_id=machine_id, **sections)


# --- register ------------------------------------------------------------------


def test_register_endpoints(api, admin_headers) -> None:
    agency = api.create_agency()
    base = f"/api/v1/agencies/{agency['id']}/approved-software"

    r = api.client.get(base, headers=admin_headers)
    assert r.status_code == 200
    assert r.json() == {"agency_id": agency["id"], "declared": False, "declared_at": None,
                        "declared_by": None, "entries": []}
    assert api.client.get(base).status_code == 401
    assert api.client.get("/api/v1/agencies/999/approved-software",
                          headers=admin_headers).status_code == 404

    bad = api.client.post(base, json={"name": "", "added_by": "A"}, headers=admin_headers)
    assert bad.status_code == 422
    r = api.client.post(
        base,
        json={"name": "libreoffice*", "note": "QĐ 12/QĐ-STTTT", "added_by": "Nguyễn Văn A"},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["name"] == "libreoffice*" and entry["version"] is None

    register = api.client.get(base, headers=admin_headers).json()
    assert register["declared"] is True and register["declared_by"] == "Nguyễn Văn A"
    assert [e["id"] for e in register["entries"]] == [entry["id"]]

    r = api.client.post(f"{base}/declare", json={"declared_by": "Trần B"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["declared_by"] == "Nguyễn Văn A"  # first one kept

    assert api.client.delete(f"/api/v1/approved-software/{entry['id']}",
                             headers=admin_headers).status_code == 204
    assert api.client.delete(f"/api/v1/approved-software/{entry['id']}",
                             headers=admin_headers).status_code == 404
    register = api.client.get(base, headers=admin_headers).json()
    assert register["declared"] is True and register["entries"] == []


def test_explicit_empty_register(api, admin_headers) -> None:
    agency = api.create_agency()
    base = f"/api/v1/agencies/{agency['id']}/approved-software"
    r = api.client.post(f"{base}/declare", json={"declared_by": "Trần B"}, headers=admin_headers)
    assert r.status_code == 200
    assert r.json()["declared"] is True and r.json()["entries"] == []


# --- fleet findings ------------------------------------------------------------


def test_fleet_findings_over_several_hosts(api, admin_headers) -> None:
    agency = api.create_agency(level=3)
    token = api.create_token(agency["id"])
    srv1 = api.enroll(token, "m-srv1", "srv-01", role="server")
    srv2 = api.enroll(token, "m-srv2", "srv-02", role="server")
    pc1 = api.enroll(token, "m-pc1", "pc-01", role="workstation")
    api.enroll(token, "m-pc2", "pc-02", role="workstation")  # never reports

    file_server = SoftwareSection(manager="dpkg", packages=[*BASE, SAMBA])
    r = api.post_report(srv1, report("srv-01", "m-srv1", software=file_server))
    assert r.status_code == 201
    assert api.post_report(srv2, report("srv-02", "m-srv2")).status_code == 201
    no_av = report("pc-01", "m-pc1", antivirus=AntivirusSection(products=[]))
    assert api.post_report(pc1, no_av).status_code == 201

    got = fleet(api, agency["id"], admin_headers)
    av = got["fleet_av_coverage"]
    assert av["status"] == "fail" and av["requirement_ids"] == ["D19.1.a"]
    assert av["evidence"]["vi"].startswith("2/4 máy có phần mềm diệt virus; thiếu: pc-01")
    assert av["data"]["unknown"] == ["pc-02"]
    assert got["fleet_hosts_reporting"]["status"] == "fail"
    assert "pc-02" in got["fleet_hosts_reporting"]["evidence"]["vi"]
    assert got["fleet_central_storage"]["status"] == "pass"
    assert "srv-01 (samba)" in got["fleet_central_storage"]["evidence"]["vi"]
    assert got["fleet_parallel_servers"]["status"] == "pass"
    assert got["fleet_software_approved"]["status"] == "unknown"  # no register declared
    assert got["fleet_patch_coverage"]["status"] == "fail"  # pc-02 never checked

    # the agency's compliance combines host verdicts and fleet rules
    r = api.client.get(f"/api/v1/agencies/{agency['id']}/compliance", headers=admin_headers)
    articles = {a["article"]: a for a in r.json()}
    d19 = {v["requirement_id"]: v for v in articles[19]["requirements"]}
    assert d19["D19.1.a"]["status"] == "fail"
    assert "fleet_av_coverage" in d19["D19.1.a"]["check_ids"]
    assert any("thiếu: pc-01" in e["vi"] for e in d19["D19.1.a"]["evidence"])
    d17 = {v["requirement_id"]: v for v in articles[17]["requirements"]}
    assert d17["D17.1.a"]["status"] == "pass"

    # srv-02 goes silent: parallel servers fail, the silent-host rule names it
    with Session(api.engine) as session:
        host = session.get(Host, srv2.host_id)
        assert host is not None
        host.last_seen_at = now() - timedelta(days=5)
        session.add(host)
        session.commit()
    got = fleet(api, agency["id"], admin_headers)
    assert got["fleet_parallel_servers"]["status"] == "fail"
    assert got["fleet_parallel_servers"]["data"]["reporting"] == 1
    assert "srv-02" in got["fleet_hosts_reporting"]["evidence"]["vi"]
    # it still counts by its last findings for anti-virus
    assert got["fleet_av_coverage"]["data"]["ok"] == 2


def test_fleet_endpoint_needs_admin_and_an_agency(api, admin_headers) -> None:
    agency = api.create_agency()
    assert api.client.get(f"/api/v1/agencies/{agency['id']}/fleet").status_code == 401
    assert api.client.get("/api/v1/agencies/999/fleet", headers=admin_headers).status_code == 404
    got = fleet(api, agency["id"], admin_headers)
    assert {f["status"] for f in got.values()} == {"unknown"}  # no hosts


def test_software_installed_without_approval_after_a_delta(api, admin_headers) -> None:
    agency = api.create_agency()
    agent = api.enroll(api.create_token(agency["id"]), "m-srv1", "srv-01", role="server")
    t0 = now() - timedelta(days=2)
    first = report(
        "srv-01", "m-srv1", t0,
        software=SoftwareSection(
            manager="dpkg", packages=BASE, inventory_hash=inventory_hash(BASE)
        ),
    )
    assert api.post_report(agent, first).status_code == 201
    result = [*BASE, ANYDESK, SAMBA]
    second = report(
        "srv-01", "m-srv1", t0 + timedelta(days=1),
        software=SoftwareSection(
            manager="dpkg", mode="delta", added=[ANYDESK, SAMBA], removed=[],
            base_report_id=first.report_id, inventory_hash=inventory_hash(result),
        ),
    )
    assert api.post_report(agent, second).status_code == 201

    got = fleet(api, agency["id"], admin_headers)
    assert got["fleet_software_approved"]["status"] == "unknown"
    assert "approved-software" in got["fleet_software_approved"]["evidence"]["en"]
    # the delta body lists no packages: the reconstructed inventory shows samba
    assert got["fleet_central_storage"]["status"] == "pass"
    # backup a day before each report (factories): installed after a recent backup
    assert got["fleet_backup_before_install"]["status"] == "pass"

    base = f"/api/v1/agencies/{agency['id']}/approved-software"
    r = api.client.post(base, json={"name": "samba", "added_by": "A"}, headers=admin_headers)
    assert r.status_code == 201
    got = fleet(api, agency["id"], admin_headers)["fleet_software_approved"]
    assert got["status"] == "fail" and got["data"]["count"] == 1
    day_vi = (t0 + timedelta(days=1)).strftime("%d/%m/%Y")
    assert f"srv-01: anydesk 6.3.0 ({day_vi})" in got["evidence"]["vi"]
    assert "samba" not in got["evidence"]["vi"]

    r = api.client.post(base, json={"name": "anydesk", "version": "6.*", "added_by": "A"},
                        headers=admin_headers)
    assert r.status_code == 201
    assert fleet(api, agency["id"], admin_headers)["fleet_software_approved"]["status"] == "pass"
    assert api.client.delete(f"/api/v1/approved-software/{r.json()['id']}",
                             headers=admin_headers).status_code == 204
    assert fleet(api, agency["id"], admin_headers)["fleet_software_approved"]["status"] == "fail"


def test_install_without_backup_facts_or_recent_backup(api, admin_headers) -> None:
    agency = api.create_agency()
    agent = api.enroll(api.create_token(agency["id"]), "m-srv1", "srv-01", role="server")
    t0 = now() - timedelta(days=3)
    old_backup = BackupSection(tools_installed=["restic"], newest_backup_at=t0 - timedelta(days=20))
    first = report(
        "srv-01", "m-srv1", t0,
        software=SoftwareSection(manager="dpkg", packages=BASE), backup=old_backup,
    )
    assert api.post_report(agent, first).status_code == 201
    second = report(
        "srv-01", "m-srv1", t0 + timedelta(days=1),
        software=SoftwareSection(manager="dpkg", packages=[*BASE, ANYDESK]), backup=old_backup,
    )
    assert api.post_report(agent, second).status_code == 201
    got = fleet(api, agency["id"], admin_headers)["fleet_backup_before_install"]
    assert got["status"] == "fail" and "srv-01: anydesk 6.3.0" in got["evidence"]["vi"]

    # a later report with a fresh backup does not excuse the earlier install
    fresh = {**healthy_sections(now()), "software": SoftwareSection(
        manager="dpkg", packages=[*BASE, ANYDESK])}
    assert api.post_report(agent, report("srv-01", "m-srv1", **fresh)).status_code == 201
    got = fleet(api, agency["id"], admin_headers)["fleet_backup_before_install"]
    assert got["status"] == "fail"

    other = api.create_agency(code="so-khac")
    agent2 = api.enroll(api.create_token(other["id"]), "m-x", "srv-x", role="server")
    unknown_backup = BackupSection(status="unknown", reason="permission denied")
    for i, pkgs in enumerate([BASE, [*BASE, ANYDESK]]):
        r = report("srv-x", "m-x", t0 + timedelta(days=i),
                   software=SoftwareSection(manager="dpkg", packages=pkgs), backup=unknown_backup)
        assert api.post_report(agent2, r).status_code == 201
    got = fleet(api, other["id"], admin_headers)["fleet_backup_before_install"]
    assert got["status"] == "unknown" and got["data"]["unknown_hosts"] == ["srv-x"]


def test_agency_wide_waiver_of_a_fleet_rule(api, admin_headers) -> None:
    agency = api.create_agency()
    pc = api.enroll(api.create_token(agency["id"]), "m-pc1", "pc-01", role="workstation")
    no_av = report("pc-01", "m-pc1", antivirus=AntivirusSection(products=[]))
    assert api.post_report(pc, no_av).status_code == 201
    assert fleet(api, agency["id"], admin_headers)["fleet_av_coverage"]["status"] == "fail"
    r = api.client.post(
        f"/api/v1/agencies/{agency['id']}/waivers",
        json={"check_id": "fleet_av_coverage", "justification": "Đang mua bản quyền",
              "author": "Trần Thị B", "expires_at": (now() + timedelta(days=30)).isoformat()},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    got = fleet(api, agency["id"], admin_headers)["fleet_av_coverage"]
    assert got["status"] == "waived" and got["waiver"]["original_status"] == "fail"


def test_backup_history_reads_the_reports_of_the_changes_together(api) -> None:
    """The backup facts before each software change come from the reports that
    recorded the changes, read in one statement (not one per change); a change
    with no report at its own time looks back to the latest report before it."""
    from dataclasses import replace

    from sqlalchemy import event
    from sqlmodel import col, select

    from collector.fleet_data import backup_history, fleet_context
    from collector.models import Agency, StoredReport

    agency = api.create_agency()
    token = api.create_token(agency["id"])
    t0 = now() - timedelta(days=5)
    extra = [Package(name=f"tool{i}", version="1.0", arch="amd64") for i in range(4)]
    for h in range(3):
        agent = api.enroll(token, f"m-{h}", f"srv-{h}", role="server")
        for day in range(4):
            backup = BackupSection(
                tools_installed=["restic"], newest_backup_at=t0 + timedelta(days=day, hours=h)
            )
            software = SoftwareSection(manager="dpkg", packages=[*BASE, *extra[:day]])
            sent = report(f"srv-{h}", f"m-{h}", t0 + timedelta(days=day), software=software,
                          backup=backup)  # fmt: skip
            assert api.post_report(agent, sent).status_code == 201

    def reference(session, changes) -> dict:
        out: dict = {}
        for host_id, when in sorted({(c.host_id, c.collected_at) for c in changes}):
            stored = session.exec(
                select(StoredReport)
                .where(StoredReport.host_id == host_id, StoredReport.collected_at <= when)
                .order_by(col(StoredReport.collected_at).desc())
                .limit(1)
            ).first()
            newest = stored.body["backup"]["newest_backup_at"]
            out.setdefault(host_id, {})[stored.collected_at] = newest
        return out

    with Session(api.engine) as session:
        context = fleet_context(session, session.get(Agency, agency["id"]))
        changes = context.software_changes
        assert len(changes) == 9  # 3 hosts x 3 installs
        # a change between two reports (its own report is gone): the one before counts
        late = replace(changes[0], collected_at=changes[0].collected_at + timedelta(hours=5))
        statements: list[str] = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(api.engine, "before_cursor_execute", listener)
        try:
            got = backup_history(session, [*changes, late])
        finally:
            event.remove(api.engine, "before_cursor_execute", listener)
        expected = reference(session, [*changes, late])

    assert len([s for s in statements if "FROM storedreport" in s]) == 2  # together + late
    assert {
        host_id: {o.collected_at: o.newest_backup_at for o in observations}
        for host_id, observations in got.items()
    } == {
        host_id: {when: datetime.fromisoformat(newest) for when, newest in values.items()}
        for host_id, values in expected.items()
    }
    assert all(o.observed for observations in got.values() for o in observations)
