"""Software inventory: reconstruction from full lists and deltas, history, resync, endpoints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

import collector.ingest_store
import collector.inventory
import policies.engine
from agent.report import DeliveryInfo, Package, Report, SoftwareSection, inventory_hash
from collector.models import HostPackage, ReportLoss, SoftwareChange, StoredReport
from tests.collector.conftest import ADMIN_HEADERS

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

BASE = [
    Package(name="bash", version="5.2.15-2+b2", arch="amd64"),
    Package(name="openssl", version="3.0.11-1~deb12u2", arch="amd64"),
    Package(name="tzdata", version="2024a-0+deb12u1", arch="all"),
]
OPENSSL_NEW = Package(name="openssl", version="3.0.15-1~deb12u1", arch="amd64")
NMAP = Package(name="nmap", version="7.93+dfsg1-1", arch="amd64")


def full(report_factory, packages: list[Package], hours: float = 0) -> Report:
    return report_factory(
        collected_at=T0 + timedelta(hours=hours),
        software=SoftwareSection(
            manager="dpkg", packages=packages, inventory_hash=inventory_hash(packages)
        ),
    )


def delta(
    report_factory,
    base: Report,
    result: list[Package],
    added: list[Package],
    removed: list[Package],
    hours: float,
    **extra,
) -> Report:
    return report_factory(
        collected_at=T0 + timedelta(hours=hours),
        software=SoftwareSection(
            manager="dpkg",
            mode="delta",
            added=added,
            removed=removed,
            base_report_id=base.report_id,
            inventory_hash=inventory_hash(result),
        ),
        **extra,
    )


def inventory(api, agent, **params) -> dict:
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/software", params=params, headers=_admin())
    assert r.status_code == 200, r.text
    return r.json()


def changes(api, agent, **params) -> dict:
    r = api.client.get(
        f"/api/v1/hosts/{agent.host_id}/software/changes", params=params, headers=_admin()
    )
    assert r.status_code == 200, r.text
    return r.json()


def _admin() -> dict[str, str]:
    from tests.collector.conftest import ADMIN_HEADERS

    return ADMIN_HEADERS


def keys(packages: list[dict]) -> list[tuple[str, str | None, str]]:
    return [(p["name"], p["arch"], p["version"]) for p in packages]


def test_full_then_deltas_reconstruct_the_inventory_and_history(api, agent, report_factory) -> None:
    r1 = full(report_factory, BASE)
    step2 = [BASE[0], OPENSSL_NEW, BASE[2]]
    r2 = delta(report_factory, r1, step2, added=[OPENSSL_NEW], removed=[BASE[1]], hours=1)
    step3 = [BASE[0], NMAP, OPENSSL_NEW]
    r3 = delta(report_factory, r2, step3, added=[NMAP], removed=[BASE[2]], hours=2)

    assert api.post_report(agent, r1).status_code == 201
    baseline = changes(api, agent)
    assert baseline["changes"] == []  # the first full inventory is the baseline
    assert baseline["baseline_report_id"] == str(r1.report_id)

    for r in (r2, r3):
        resp = api.post_report(agent, r)
        assert resp.status_code == 201, resp.text

    inv = inventory(api, agent)
    assert inv["report_id"] == str(r3.report_id)
    assert inv["inventory_hash"] == inventory_hash(step3)
    assert inv["package_count"] == 3 and inv["manager"] == "dpkg"
    assert keys(inv["packages"]) == [
        ("bash", "amd64", "5.2.15-2+b2"),
        ("nmap", "amd64", "7.93+dfsg1-1"),
        ("openssl", "amd64", "3.0.15-1~deb12u1"),
    ]
    by_name = {p["name"]: p for p in inv["packages"]}
    assert by_name["nmap"]["report_id"] == str(r3.report_id)
    assert by_name["bash"]["report_id"] == str(r1.report_id)

    history = changes(api, agent)
    assert history["baseline_collected_at"].startswith("2026-11-20T08:00")
    rows = [
        (c["report_id"], c["change"], c["name"], c["old_version"], c["new_version"])
        for c in history["changes"]
    ]
    assert rows == [  # newest first
        (str(r3.report_id), "installed", "nmap", None, "7.93+dfsg1-1"),
        (str(r3.report_id), "removed", "tzdata", "2024a-0+deb12u1", None),
        (str(r2.report_id), "upgraded", "openssl", "3.0.11-1~deb12u2", "3.0.15-1~deb12u1"),
    ]
    since = changes(api, agent, since=(T0 + timedelta(hours=1, minutes=30)).isoformat())
    assert {c["report_id"] for c in since["changes"]} == {str(r3.report_id)}
    assert keys(inventory(api, agent, name="SSL")["packages"]) == [
        ("openssl", "amd64", "3.0.15-1~deb12u1")
    ]
    assert inventory(api, agent, name="SSL")["package_count"] == 3

    # the delta body is stored as received
    with Session(api.engine) as session:
        stored = session.get(StoredReport, r3.report_id)
        assert stored is not None
        assert stored.body["software"]["mode"] == "delta"
        assert stored.body["software"]["packages"] == []
        assert [p["name"] for p in stored.body["software"]["added"]] == ["nmap"]


def test_evaluation_sees_the_reconstructed_inventory(
    api, agent, report_factory, monkeypatch
) -> None:
    seen: list[list[str]] = []
    real = policies.engine.evaluate_host

    def spy(report, *args, **kwargs):
        seen.append(sorted(p.name for p in report.software.packages))
        assert report.software.mode == "full"
        return real(report, *args, **kwargs)

    monkeypatch.setattr(policies.engine, "evaluate_host", spy)
    # as if a check read the software section (none does today)
    monkeypatch.setattr(collector.ingest_store, "sections_read", lambda: frozenset({"software"}))
    r1 = full(report_factory, BASE)
    r2 = delta(report_factory, r1, [*BASE, NMAP], added=[NMAP], removed=[], hours=1)
    assert api.post_report(agent, r1).status_code == 201
    assert api.post_report(agent, r2).status_code == 201
    assert seen == [["bash", "openssl", "tzdata"], ["bash", "nmap", "openssl", "tzdata"]]


def test_inventory_is_not_rebuilt_when_no_check_reads_it(
    api, agent, report_factory, monkeypatch
) -> None:
    """No host check reads ``software`` today: a delta is evaluated without loading
    the host's whole inventory back (the costly part of a delta ingest)."""
    from policies.registry import load_checks, sections_read

    assert "software" not in sections_read()
    assert all(spec.section != "software" for spec in load_checks().values())
    loads: list[int] = []
    real = collector.inventory.section_loader

    def counting(session, plan):  # type: ignore[no-untyped-def]
        loads.append(1)
        return real(session, plan)

    monkeypatch.setattr(collector.inventory, "section_loader", counting)
    r1 = full(report_factory, BASE)
    r2 = delta(report_factory, r1, [*BASE, NMAP], added=[NMAP], removed=[], hours=1)
    assert api.post_report(agent, r1).status_code == 201
    assert api.post_report(agent, r2).status_code == 201
    assert loads == []
    # ...and the stored inventory is still exact
    names = [p["name"] for p in api.client.get(
        f"/api/v1/hosts/{agent.host_id}/software", headers=ADMIN_HEADERS
    ).json()["packages"]]  # fmt: skip
    assert names == ["bash", "nmap", "openssl", "tzdata"]


def test_hash_mismatch_is_409_resync_required_and_stores_nothing(
    api, agent, report_factory
) -> None:
    r1 = full(report_factory, BASE)
    assert api.post_report(agent, r1).status_code == 201
    before = api.snapshot()

    wrong = delta(report_factory, r1, BASE, added=[NMAP], removed=[], hours=1)  # hash of BASE
    r = api.post_report(agent, wrong)
    assert r.status_code == 409
    assert r.json()["code"] == "resync_required"
    assert "hash" in r.json()["detail"]
    assert api.snapshot() == before

    unknown_base = report_factory(
        collected_at=T0 + timedelta(hours=2),
        software=SoftwareSection(
            mode="delta",
            added=[NMAP],
            base_report_id=uuid.uuid4(),
            inventory_hash=inventory_hash([*BASE, NMAP]),
        ),
    )
    r = api.post_report(agent, unknown_base)
    assert r.status_code == 409 and r.json()["code"] == "resync_required"
    assert api.snapshot() == before

    # removing a package that is not installed does not apply either
    ghost = Package(name="ghost", version="1", arch="amd64")
    bad = delta(report_factory, r1, BASE, added=[], removed=[ghost], hours=3)
    assert api.post_report(agent, bad).json()["code"] == "resync_required"
    assert api.snapshot() == before

    # the agent re-sends the same report in full: accepted, history from the diff
    resent = wrong.model_copy(
        update={
            "software": SoftwareSection(
                manager="dpkg", packages=[*BASE, NMAP], inventory_hash=inventory_hash([*BASE, NMAP])
            )
        }
    )
    assert api.post_report(agent, resent).status_code == 201
    assert [(c["change"], c["name"]) for c in changes(api, agent)["changes"]] == [
        ("installed", "nmap")
    ]


def test_first_report_as_delta_requires_resync(api, agent, report_factory) -> None:
    r1 = full(report_factory, BASE)
    orphan = delta(report_factory, r1, [*BASE, NMAP], added=[NMAP], removed=[], hours=1)
    r = api.post_report(agent, orphan)
    assert r.status_code == 409 and r.json()["code"] == "resync_required"
    assert api.counts()["storedreport"] == 0


def test_full_inventory_with_a_wrong_hash_is_refused_for_good(api, agent, report_factory) -> None:
    bad = report_factory(
        software=SoftwareSection(packages=BASE, inventory_hash="0" * 64),
    )
    r = api.post_report(agent, bad)
    assert r.status_code == 422 and "inventory_hash" in r.json()["detail"]


def test_duplicate_delta_is_not_applied_twice(api, agent, report_factory) -> None:
    r1 = full(report_factory, BASE)
    r2 = delta(report_factory, r1, [*BASE, NMAP], added=[NMAP], removed=[], hours=1)
    assert api.post_report(agent, r1).status_code == 201
    assert api.post_report(agent, r2).status_code == 201
    before = api.snapshot()
    again = api.post_report(agent, r2)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert api.snapshot() == before
    with Session(api.engine) as session:
        assert len(session.exec(select(SoftwareChange)).all()) == 1
        assert len(session.exec(select(HostPackage)).all()) == 4


def test_full_inventory_that_differs_records_the_diff(api, agent, report_factory) -> None:
    r1 = full(report_factory, BASE)
    r2 = full(report_factory, [BASE[0], OPENSSL_NEW, NMAP], hours=24)
    assert api.post_report(agent, r1).status_code == 201
    assert api.post_report(agent, r2).status_code == 201
    rows = {(c["change"], c["name"]) for c in changes(api, agent)["changes"]}
    assert rows == {("upgraded", "openssl"), ("installed", "nmap"), ("removed", "tzdata")}
    assert inventory(api, agent)["inventory_hash"] == inventory_hash([BASE[0], OPENSSL_NEW, NMAP])


def test_unknown_software_section_leaves_the_inventory(api, agent, report_factory) -> None:
    r1 = full(report_factory, BASE)
    broken = report_factory(
        collected_at=T0 + timedelta(hours=1),
        software=SoftwareSection(status="unknown", reason="dpkg database unreadable"),
    )
    r3 = delta(report_factory, r1, BASE[:2], added=[], removed=[BASE[2]], hours=2)
    for r in (r1, broken, r3):
        assert api.post_report(agent, r).status_code == 201
    inv = inventory(api, agent)
    assert inv["report_id"] == str(r3.report_id) and inv["package_count"] == 2


def test_host_without_inventory_says_so(api, agent) -> None:
    inv = inventory(api, agent)
    assert inv["report_id"] is None and inv["packages"] == [] and inv["package_count"] == 0
    assert changes(api, agent)["baseline_report_id"] is None


# --- reports lost by the agent ----------------------------------------------


def test_evicted_reports_are_counted_on_the_host(api, agent, report_factory) -> None:
    first_lost, last_lost = uuid.uuid4(), uuid.uuid4()
    info = DeliveryInfo(
        evicted_count=3,
        evicted_since=T0 - timedelta(hours=5),
        evicted_until=T0 - timedelta(hours=3),
        evicted_first_report_id=first_lost,
        evicted_last_report_id=last_lost,
        spool_depth=4,
        attempts=2,
    )
    r1 = report_factory(collected_at=T0, delivery=info)
    assert api.post_report(agent, r1).status_code == 201
    host = api.client.get(f"/api/v1/hosts/{agent.host_id}", headers=_admin()).json()
    assert host["reports_lost"] == 3

    # the same record again (ack lost, now grown to 4) on a resend: updated, not added
    grown = info.model_copy(update={"evicted_count": 4})
    assert api.post_report(agent, r1.model_copy(update={"delivery": grown})).status_code == 200
    r2 = report_factory(collected_at=T0 + timedelta(hours=1), delivery=grown)
    assert api.post_report(agent, r2).status_code == 201
    host = api.client.get(f"/api/v1/hosts/{agent.host_id}", headers=_admin()).json()
    assert host["reports_lost"] == 4

    # a later, separate run of evictions adds up
    later = DeliveryInfo(evicted_count=2, evicted_first_report_id=uuid.uuid4())
    r3 = report_factory(collected_at=T0 + timedelta(hours=2), delivery=later)
    assert api.post_report(agent, r3).status_code == 201
    listed = api.client.get(
        f"/api/v1/agencies/{_agency_id(api, agent)}/hosts", headers=_admin()
    ).json()
    assert [h["reports_lost"] for h in listed] == [6]
    with Session(api.engine) as session:
        rows = session.exec(select(ReportLoss).order_by(ReportLoss.id)).all()
        assert [(r.first_report_id, r.count) for r in rows] == [
            (first_lost, 4),
            (later.evicted_first_report_id, 2),
        ]
        assert rows[0].last_report_id == last_lost
        assert rows[0].evicted_since == T0 - timedelta(hours=5)


def _agency_id(api, agent) -> int:
    return api.client.get(f"/api/v1/hosts/{agent.host_id}", headers=_admin()).json()["agency_id"]


def _inventory_row(api):
    from collector.models import HostInventory

    with Session(api.engine) as session:
        return session.exec(select(HostInventory)).one()


def _set_keys(api, value: bytes | None) -> None:
    from sqlalchemy import update

    from collector.models import HostInventory

    with Session(api.engine) as session:
        session.execute(update(HostInventory).values(package_keys=value))
        session.commit()


def test_stored_package_keys_are_the_hashed_canonical_list(api, agent, report_factory) -> None:
    import hashlib

    r1 = full(report_factory, BASE)
    r2 = delta(report_factory, r1, [*BASE, NMAP], added=[NMAP], removed=[], hours=1)
    for report in (r1, r2):
        assert api.post_report(agent, report).status_code == 201
        row = _inventory_row(api)
        canonical = bytes(row.package_keys)
        assert hashlib.sha256(canonical).hexdigest() == row.inventory_hash
        assert row.inventory_hash == report.software.inventory_hash


def test_delta_without_stored_keys_reads_the_rows(api, agent, report_factory) -> None:
    """Inventories stored before migration 0007 (or unreadable keys) still take deltas."""
    r1 = full(report_factory, BASE)
    assert api.post_report(agent, r1).status_code == 201
    for broken in (None, b"not zlib", b'[["a","b"]]', b"[[1,2,3]]", b'[["x'):
        _set_keys(api, broken)
        r2 = delta(report_factory, r1, [*BASE, NMAP], added=[NMAP], removed=[], hours=1)
        assert api.post_report(agent, r2).status_code == 201
        assert _inventory_row(api).package_keys is not None  # written again
        r1 = delta(report_factory, r2, BASE, added=[], removed=[NMAP], hours=2)
        assert api.post_report(agent, r1).status_code == 201


def test_a_field_that_looks_like_a_separator_takes_deltas(api, agent, report_factory) -> None:
    """A field that is exactly '],[' puts a false separator in the stored list: the
    deltas around it still apply (from the rows when needed), byte for byte."""
    from agent.report import canonical_inventory, package_key

    odd = [
        Package(name="],[", version="1", arch="all"),
        Package(name="bash", version="],[", arch="],["),
        Package(name="bash", version="5.2.15-2+b2", arch="amd64"),
    ]
    r1 = full(report_factory, [*BASE[1:], *odd])
    assert api.post_report(agent, r1).status_code == 201
    current = [*BASE[1:], *odd]
    steps = [([NMAP], []), ([], [odd[1]]), ([odd[1]], [odd[0]]), ([odd[0]], [NMAP])]
    for hours, (added, removed) in enumerate(steps, start=1):
        current = [p for p in current if p not in removed] + added
        report = delta(report_factory, r1, current, added=added, removed=removed, hours=hours)
        r = api.post_report(agent, report)
        assert r.status_code == 201, r.text
        row = _inventory_row(api)
        assert bytes(row.package_keys) == canonical_inventory(package_key(p) for p in current)
        assert row.package_count == len(current)
        r1 = report


def test_keys_compressed_before_migration_0009_are_read(api, agent, report_factory) -> None:
    """Until migration 0009 the keys were stored zlib-compressed; a delta on them applies."""
    import zlib

    from agent.report import canonical_inventory, package_key

    r1 = full(report_factory, BASE)
    assert api.post_report(agent, r1).status_code == 201
    _set_keys(api, zlib.compress(canonical_inventory(package_key(p) for p in BASE)))
    with api.engine.connect() as conn:
        rows_before = conn.exec_driver_sql("SELECT count(*) FROM hostpackage").scalar()
    r2 = delta(report_factory, r1, [*BASE, NMAP], added=[NMAP], removed=[], hours=1)
    assert api.post_report(agent, r2).status_code == 201
    with api.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM hostpackage").scalar() == rows_before + 1
    assert bytes(_inventory_row(api).package_keys) == canonical_inventory(
        package_key(p) for p in [*BASE, NMAP]
    )


def test_keys_out_of_step_with_rows_ask_for_the_full_inventory(api, agent, report_factory) -> None:
    import zlib

    from agent.report import canonical_inventory, package_key

    r1 = full(report_factory, BASE)
    assert api.post_report(agent, r1).status_code == 201
    # the keys claim nmap is installed, the rows do not
    _set_keys(api, zlib.compress(canonical_inventory(package_key(p) for p in [*BASE, NMAP])))
    r2 = delta(report_factory, r1, BASE, added=[], removed=[NMAP], hours=1)
    before = api.snapshot()
    r = api.post_report(agent, r2)
    assert r.status_code == 409 and r.json()["code"] == "resync_required"
    assert "out of step" in r.json()["detail"]
    assert api.snapshot() == before
    # the full inventory repairs it
    r3 = full(report_factory, BASE, hours=2)
    assert api.post_report(agent, r3).status_code == 201
    assert bytes(_inventory_row(api).package_keys) == canonical_inventory(
        package_key(p) for p in BASE
    )


def test_full_body_keeps_the_count_and_the_inventory_keeps_the_packages(
    api, agent, report_factory
) -> None:
    from collector import fleet_data

    r1 = full(report_factory, BASE)
    assert api.post_report(agent, r1).status_code == 201
    with Session(api.engine) as session:
        stored = session.get(StoredReport, r1.report_id)
        assert stored is not None
        software = stored.body["software"]
        assert (software["mode"], software["packages"], software["packages_stored"]) == (
            "full",
            [],
            3,
        )
        assert software["inventory_hash"] == r1.software.inventory_hash
        rebuilt = fleet_data.rebuild_report(session, stored)
        assert rebuilt is not None
        assert [p.name for p in rebuilt.software.packages] == ["bash", "openssl", "tzdata"]
