"""Group commit: several reports stored in one transaction (collector/ingest_store.py,
collector/ingest_queue.py), on SQLite and on a real PostgreSQL.

A batch must store each report exactly as storing it alone would; a report
refused inside a batch must not take the others down; and concurrent requests
to one collector process must actually share transactions.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, update
from sqlmodel import Session, col, select

import collector.ingest_queue
from agent.report import Package, Report, SoftwareSection, canonical_inventory, inventory_hash
from collector import inventory, province
from collector.credentials import AgentContext
from collector.ingest_outcome import IngestError, IngestResult
from collector.ingest_store import Submission, evaluate_report, findings_digest, store_batch
from collector.models import (
    Agency,
    Host,
    HostInventory,
    SoftwareChange,
    StoredFinding,
    StoredReport,
)
from collector.parameters import effective_parameters
from collector.settings import Settings
from tests.collector.conftest import ADMIN_HEADERS, insecure_sections, make_report
from tests.collector.test_collector_software import BASE, NMAP, OPENSSL_NEW, T0, delta


def _agents(api, count: int, agency_code: str = "so-batch", level: int = 3) -> list:
    agency = api.create_agency(code=agency_code, level=level)
    token = api.create_token(agency["id"])
    return [api.enroll(token, f"machine-{i:04d}", f"pc-{i:02d}") for i in range(count)]


def _context(api, agent) -> AgentContext:
    with Session(api.engine) as session:
        host = session.get(Host, agent.host_id)
        assert host is not None
        return AgentContext(
            credential_id=agent.agent_id, host_id=agent.host_id, agency_id=host.agency_id
        )


def _report(agent, packages: list[Package] | None = None, hours: float = 0, **sections) -> Report:
    software = (
        {
            "software": SoftwareSection(
                manager="dpkg", packages=packages, inventory_hash=inventory_hash(packages)
            )
        }
        if packages is not None
        else {}
    )
    return make_report(
        hostname=f"pc-{agent.machine_id[-2:]}",
        machine_id=agent.machine_id,
        collected_at=T0 + timedelta(hours=hours),
        **software,
        **sections,
    )


def _delta(agent, base: Report, result, added, removed, hours: float) -> Report:
    return delta(
        lambda **kw: make_report(machine_id=agent.machine_id, hostname=base.host.hostname, **kw),
        base,
        result,
        added=added,
        removed=removed,
        hours=hours,
    )


def _store(api, pairs: list[tuple]) -> list:
    with Session(api.engine) as session:
        return store_batch(
            session,
            [Submission(_context(api, agent), report) for agent, report in pairs],
            settings=Settings(database_url=str(api.engine.url)),
        )


def _software(api, agent) -> list[tuple[str, str]]:
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/software", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    return [(p["name"], p["version"]) for p in r.json()["packages"]]


def _host_rows(api, host_id: int) -> dict[str, list]:
    """Everything stored for one host (to check a refused report changed nothing)."""
    with Session(api.engine) as session:
        return {
            "host": [session.get(Host, host_id).model_dump()],  # type: ignore[union-attr]
            "reports": sorted(
                str(r)
                for r in session.exec(
                    select(StoredReport.report_id).where(StoredReport.host_id == host_id)
                )
            ),
            "findings": [
                (f.report_id, f.check_id, f.status)
                for f in session.exec(
                    select(StoredFinding)
                    .where(StoredFinding.host_id == host_id)
                    .order_by(col(StoredFinding.id))
                )
            ],
            "inventory": [
                (i.report_id, i.inventory_hash, i.package_keys)
                for i in session.exec(select(HostInventory).where(HostInventory.host_id == host_id))
            ],
        }


def test_a_batch_stores_each_report_as_it_would_alone(api) -> None:
    agents = _agents(api, 5)
    first = [_report(a, BASE) for a in agents[:4]]
    for agent, report in zip(agents[:4], first, strict=True):
        assert api.post_report(agent, report).status_code == 201
    upgraded = [p for p in BASE if p.name != "openssl"] + [OPENSSL_NEW]
    batch = [
        (agents[0], _delta(agents[0], first[0], [*BASE, NMAP], [NMAP], [], hours=1)),
        (agents[1], _delta(agents[1], first[1], upgraded, [OPENSSL_NEW], [BASE[1]], hours=1)),
        (agents[2], _report(agents[2], [*BASE, NMAP], hours=1)),  # a later full inventory
        (agents[3], _report(agents[3], BASE, hours=1)),  # the same full inventory again
        (agents[4], _report(agents[4], BASE, hours=1)),  # first report: the baseline
    ]
    with Session(api.engine) as session:
        counted_before = session.exec(select(province._TABLE.c.ingests)).all()

    outcomes = _store(api, batch)

    assert [type(o) for o in outcomes] == [IngestResult] * 5
    assert all(o.status == "accepted" for o in outcomes)
    with Session(api.engine) as session:
        for (agent, report), outcome in zip(batch, outcomes, strict=True):
            host = session.get(Host, agent.host_id)
            agency = session.get(Agency, host.agency_id)
            assert host.latest_report_id == report.report_id
            assert host.last_seen_at is not None
            expected = evaluate_report(
                report, report.software, host, agency, effective_parameters(Settings(), agency)
            )
            stored = session.exec(
                select(StoredFinding.check_id, StoredFinding.status)
                .where(StoredFinding.report_id == report.report_id)
                .order_by(col(StoredFinding.id))
            ).all()
            assert [tuple(row) for row in stored] == [
                (f.check_id, f.status) for f in expected.findings
            ]
            assert sum(outcome.summary.values()) == len(expected.findings)
        changes = session.exec(
            select(SoftwareChange.host_id, SoftwareChange.change, SoftwareChange.name).order_by(
                col(SoftwareChange.host_id), col(SoftwareChange.name)
            )
        ).all()
        counted_after = session.exec(select(province._TABLE.c.ingests)).all()
    assert [tuple(c) for c in changes] == [
        (agents[0].host_id, "installed", "nmap"),
        (agents[1].host_id, "upgraded", "openssl"),
        (agents[2].host_id, "installed", "nmap"),
    ]
    assert ("nmap", NMAP.version) in _software(api, agents[0])
    assert ("openssl", OPENSSL_NEW.version) in _software(api, agents[1])
    assert ("openssl", BASE[1].version) not in _software(api, agents[1])
    assert _software(api, agents[4]) == sorted((p.name, p.version) for p in BASE)
    if counted_before:  # the province counter counts every report of the batch
        assert sum(counted_after) == sum(counted_before) + 5


def test_refused_reports_leave_the_rest_of_the_batch_stored(api) -> None:
    agents = _agents(api, 5)
    first = [_report(a, BASE) for a in agents]
    for agent, report in zip(agents, first, strict=True):
        assert api.post_report(agent, report).status_code == 201
    wrong_base = _delta(agents[1], first[0], [*BASE, NMAP], [NMAP], [], hours=1)  # host 0's base
    other_machine = make_report(
        machine_id="machine-9999", hostname="pc-xx", collected_at=T0 + timedelta(hours=1)
    )
    untouched = {a.host_id: _host_rows(api, a.host_id) for a in agents[1:3]}
    batch = [
        (agents[0], _delta(agents[0], first[0], [*BASE, NMAP], [NMAP], [], hours=1)),
        (agents[1], wrong_base),
        (agents[2], other_machine),
        (agents[3], first[3]),  # sent again: a duplicate
        (agents[4], _report(agents[4], [*BASE, NMAP], hours=1)),
    ]

    outcomes = _store(api, batch)

    assert isinstance(outcomes[0], IngestResult) and outcomes[0].status == "accepted"
    assert isinstance(outcomes[1], IngestError) and outcomes[1].status_code == 409
    assert outcomes[1].code == "resync_required"
    assert isinstance(outcomes[2], IngestError) and outcomes[2].status_code == 409
    assert "machine-9999" in str(outcomes[2].detail)
    assert isinstance(outcomes[3], IngestResult) and outcomes[3].status == "duplicate"
    assert isinstance(outcomes[4], IngestResult) and outcomes[4].status == "accepted"
    for host_id, rows in untouched.items():
        assert _host_rows(api, host_id) == rows
    assert ("nmap", NMAP.version) in _software(api, agents[0])
    assert ("nmap", NMAP.version) in _software(api, agents[4])


def test_reports_of_one_host_in_one_call_are_stored_in_order(api) -> None:
    (agent,) = _agents(api, 1)
    r1 = _report(agent, BASE)
    r2 = _delta(agent, r1, [*BASE, NMAP], [NMAP], [], hours=1)
    r3 = _delta(agent, r2, BASE, [], [NMAP], hours=2)

    outcomes = _store(api, [(agent, r1), (agent, r2), (agent, r3), (agent, r2)])

    assert [o.status for o in outcomes] == ["accepted", "accepted", "accepted", "duplicate"]  # type: ignore[union-attr]
    with Session(api.engine) as session:
        assert session.get(Host, agent.host_id).latest_report_id == r3.report_id  # type: ignore[union-attr]
        assert len(session.exec(select(SoftwareChange)).all()) == 2
    assert _software(api, agent) == sorted((p.name, p.version) for p in BASE)


def test_rows_out_of_step_make_the_batch_store_one_by_one(api) -> None:
    agents = _agents(api, 3)
    first = [_report(a, BASE) for a in agents]
    for agent, report in zip(agents, first, strict=True):
        assert api.post_report(agent, report).status_code == 201
    # host 0's keys claim nmap is installed, its rows do not
    lying = canonical_inventory((p.name, p.arch or "", p.version) for p in [*BASE, NMAP])
    with Session(api.engine) as session:
        session.execute(
            update(HostInventory)
            .where(col(HostInventory.host_id) == agents[0].host_id)
            .values(package_keys=lying)
        )
        session.commit()
    batch = [
        (agents[0], _delta(agents[0], first[0], BASE, [], [NMAP], hours=1)),
        (agents[1], _delta(agents[1], first[1], [*BASE, NMAP], [NMAP], [], hours=1)),
        (agents[2], _report(agents[2], [*BASE, NMAP], hours=1)),
    ]
    before = _host_rows(api, agents[0].host_id)

    outcomes = _store(api, batch)

    assert isinstance(outcomes[0], IngestError) and outcomes[0].code == "resync_required"
    assert "out of step" in str(outcomes[0].detail)
    assert [o.status for o in outcomes[1:]] == ["accepted", "accepted"]  # type: ignore[union-attr]
    assert _host_rows(api, agents[0].host_id) == before
    assert ("nmap", NMAP.version) in _software(api, agents[1])


def test_concurrent_requests_share_one_transaction(api, app, monkeypatch) -> None:
    """20 reports posted at once while a batch is being stored: the next batch takes
    all 19 waiting, and every request is answered 201 after its commit."""
    agents = _agents(api, 20)
    reports = [_report(a, BASE) for a in agents]
    sizes: list[int] = []
    release = threading.Event()
    real = collector.ingest_queue.store_batch

    def spy(session, items, *, settings):  # type: ignore[no-untyped-def]
        sizes.append(len(items))
        if len(sizes) == 1:
            assert release.wait(30), "the other requests never queued"
        return real(session, items, settings=settings)

    monkeypatch.setattr(collector.ingest_queue, "store_batch", spy)
    queue = app.state.ingest_queue

    async def post_all() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:

            async def post(agent, report) -> int:
                r = await client.post(
                    "/api/v1/reports",
                    content=report.model_dump_json(),
                    headers={"Content-Type": "application/json", **agent.headers},
                )
                return r.status_code

            first = asyncio.create_task(post(agents[0], reports[0]))
            while not sizes:
                await asyncio.sleep(0.01)
            rest = [
                asyncio.create_task(post(a, r))
                for a, r in zip(agents[1:], reports[1:], strict=True)
            ]
            lane = queue._lanes[asyncio.get_running_loop()]
            for _ in range(3000):
                if len(lane.pending) == 19:
                    break
                await asyncio.sleep(0.01)
            release.set()
            return [await first, *[await task for task in rest]]

    statuses = asyncio.run(post_all())

    assert statuses == [201] * 20
    assert sizes == [1, 19]
    with Session(api.engine) as session:
        stored = session.exec(select(StoredReport.report_id)).all()
    assert set(stored) == {r.report_id for r in reports}


@settings(max_examples=200, deadline=None)
@given(
    st.sets(
        st.tuples(st.text(max_size=6), st.text(max_size=4), st.text(max_size=6)),
        max_size=8,
    )
)
def test_canonical_keys_are_byte_identical_to_the_agents(keys) -> None:
    assert inventory.canonical(sorted(keys)) == canonical_inventory(keys)


# Quotes, backslashes, '],[' inside a field, spaces, accents; a field that is exactly
# '],[' (a false separator, collector/inventory.py) is tested through the API
# (test_collector_software.py).
_KEY_TEXT = st.text(alphabet=st.sampled_from('ab "\\],[\u00e9\u1ea1\x01-~'), max_size=5).filter(
    lambda text: text != "],["
)


@settings(max_examples=400, deadline=None)
@given(
    st.sets(st.tuples(_KEY_TEXT, _KEY_TEXT, _KEY_TEXT), max_size=40),
    st.sets(st.tuples(_KEY_TEXT, _KEY_TEXT, _KEY_TEXT), max_size=4),
    st.data(),
)
def test_a_delta_applied_to_the_stored_list_is_the_agents_inventory(stored, added, data) -> None:
    """Deltas are applied to the canonical bytes, split into entries or spliced in
    place: the result is byte for byte the agent's canonical list of the new inventory."""
    removed = data.draw(st.sets(st.sampled_from(sorted(stored)))) if stored else set()
    added -= stored
    blob = canonical_inventory(stored)
    software = SoftwareSection(
        manager="dpkg",
        mode="delta",
        packages=[],
        added=[Package(name=n, arch=a or None, version=v) for n, a, v in sorted(added)],
        removed=[Package(name=n, arch=a or None, version=v) for n, a, v in sorted(removed)],
    )
    expected = canonical_inventory((stored - removed) | added)
    entries = inventory.split_entries(blob)
    assert entries is not None
    split_result, split_gone = inventory._apply_delta(entries, software)
    assert inventory.join_entries(split_result) == expected
    spliced, spliced_gone = inventory._splice_delta(blob, software)
    assert spliced == expected
    assert set(split_gone) == set(spliced_gone) == removed


def test_credentials_are_authenticated_with_their_batch_in_one_query(api) -> None:
    """The report API hands the queue the credential, not an agent: the batch
    authenticates every credential with one query, and a refused one (wrong secret,
    revoked host) gets its own 401 while the others are stored."""
    agents = _agents(api, 4)
    r = api.client.post(f"/api/v1/hosts/{agents[3].host_id}/revoke", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    wrong = agents[2].credential[: -len("secret")] + "secret"
    tokens = [agents[0].credential, agents[1].credential, wrong, agents[3].credential]
    reports = [_report(agent) for agent in agents]
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(api.engine, "before_cursor_execute", record)
    try:
        with Session(api.engine) as session:
            outcomes = store_batch(
                session,
                [
                    Submission(None, report, token=t)
                    for t, report in zip(tokens, reports, strict=True)
                ],
                settings=Settings(database_url=str(api.engine.url)),
            )
    finally:
        event.remove(api.engine, "before_cursor_execute", record)

    assert [type(o).__name__ for o in outcomes] == ["IngestResult"] * 2 + ["IngestError"] * 2
    assert [o.status for o in outcomes[:2]] == ["accepted", "accepted"]
    assert [o.agent.host_id for o in outcomes[:2]] == [agents[0].host_id, agents[1].host_id]
    assert (outcomes[2].status_code, outcomes[2].detail) == (401, "unknown agent credential")
    assert outcomes[3].status_code == 401 and "revoked" in outcomes[3].detail
    assert len([s for s in statements if "FROM agentcredential" in s]) == 1
    with Session(api.engine) as session:
        stored = session.exec(select(StoredReport.report_id)).all()
    assert set(stored) == {reports[0].report_id, reports[1].report_id}


def test_a_revoked_credential_is_refused_at_once_though_this_process_knew_it(api) -> None:
    """The report API authenticates credentials with the batch, in the storing
    transaction: revoking a host takes effect on the very next report, with 401 and
    nothing stored."""
    (agent,) = _agents(api, 1)
    assert api.post_report(agent, _report(agent, BASE)).status_code == 201  # now remembered
    r = api.client.post(f"/api/v1/hosts/{agent.host_id}/revoke", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    before = _host_rows(api, agent.host_id)

    r = api.post_report(agent, _report(agent, BASE, hours=1))

    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    assert _host_rows(api, agent.host_id) == before
    # ...before anything is said about the body
    for body in (b"{}", b"not json"):
        r = api.post_report(agent, body)
        assert r.status_code == 401 and "revoked" in r.json()["detail"], r.text


def _finding_rows(api, report_id) -> int:
    with Session(api.engine) as session:
        return len(
            session.exec(select(StoredFinding.id).where(StoredFinding.report_id == report_id)).all()
        )


def _host(api, agent) -> Host:
    with Session(api.engine) as session:
        host = session.get(Host, agent.host_id)
        assert host is not None
        return host


def _api_findings(api, agent) -> list[tuple[str, str, str]]:
    r = api.client.get(f"/api/v1/hosts/{agent.host_id}/findings", headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    return [(f["check_id"], f["status"], f["evidence"]["vi"]) for f in r.json()]


def test_findings_are_stored_once_per_change(api) -> None:
    """A report that evaluates to the host's current findings, word for word, stores
    no finding rows; the host's findings, verdicts and API answers are unchanged; the
    next report with different findings stores its own."""
    (agent,) = _agents(api, 1)
    r1 = _report(agent, BASE)
    assert api.post_report(agent, r1).status_code == 201
    first = _api_findings(api, agent)
    rows = _finding_rows(api, r1.report_id)
    assert rows == len(first) > 0

    # An hour later, the same machine state (no check reads the software section)
    r2 = r1.model_copy(
        update={
            "report_id": uuid.uuid4(),
            "collected_at": T0 + timedelta(hours=1),
            "software": SoftwareSection(
                manager="dpkg",
                mode="delta",
                added=[NMAP],
                base_report_id=r1.report_id,
                inventory_hash=inventory_hash([*BASE, NMAP]),
            ),
        }
    )
    r = api.post_report(agent, r2)
    assert r.status_code == 201
    assert sum(r.json()["summary"].values()) == len(first)
    assert _finding_rows(api, r2.report_id) == 0
    host = _host(api, agent)
    assert (host.latest_report_id, host.findings_report_id) == (r2.report_id, r1.report_id)
    assert _api_findings(api, agent) == first
    compliance = api.client.get(f"/api/v1/hosts/{agent.host_id}/compliance", headers=ADMIN_HEADERS)
    assert compliance.status_code == 200, compliance.text

    r3 = make_report(
        hostname=r1.host.hostname,
        machine_id=agent.machine_id,
        collected_at=T0 + timedelta(hours=2),
        **insecure_sections(),
    )
    assert api.post_report(agent, r3).status_code == 201
    assert _finding_rows(api, r3.report_id) == rows
    host = _host(api, agent)
    assert (host.latest_report_id, host.findings_report_id) == (r3.report_id, r3.report_id)
    after = _api_findings(api, agent)
    assert after != first
    assert ("av_installed", "fail") in [(c, s) for c, s, _ in after]


def test_a_late_report_keeps_its_own_findings_and_not_the_hosts(api) -> None:
    (agent,) = _agents(api, 1)
    newer = _report(agent, BASE, hours=2)
    assert api.post_report(agent, newer).status_code == 201
    late = make_report(
        hostname=newer.host.hostname,
        machine_id=agent.machine_id,
        collected_at=T0 + timedelta(hours=1),
        **insecure_sections(),
    )
    assert api.post_report(agent, late).status_code == 201
    assert _finding_rows(api, late.report_id) > 0  # its own record
    host = _host(api, agent)
    assert (host.latest_report_id, host.findings_report_id) == (newer.report_id, newer.report_id)


def test_the_findings_digest_covers_every_field_of_a_finding() -> None:
    from policies.model import Finding, Text

    # A new field of Finding must be added to ingest_store.findings_digest.
    assert set(Finding.model_fields) == {
        "check_id", "status", "severity", "title", "evidence", "remediation",
        "requirement_ids", "data", "waiver",
    }  # fmt: skip
    base = Finding(
        check_id="fw_active",
        status="pass",
        severity="high",
        title=Text(vi="Tường lửa", en="Firewall"),
        evidence=Text(vi="Đang bật", en="Active"),
        remediation=Text(vi="Bật tường lửa", en="Enable it"),
        requirement_ids=["D18.1.a"],
        data={"backend": "nftables"},
    )
    digest = findings_digest([base])
    assert findings_digest([base.model_copy()]) == digest
    for change in (
        {"status": "fail"},
        {"evidence": Text(vi="Đang tắt", en="Active")},
        {"evidence": Text(vi="Đang bật", en="Inactive")},
        {"title": Text(vi="Tường lửa!", en="Firewall")},
        {"remediation": Text(vi="Bật tường lửa", en="Enable")},
        {"requirement_ids": ["D18.1.b"]},
        {"data": {"backend": "iptables"}},
        {"severity": "low"},
    ):
        assert findings_digest([base.model_copy(update=change)]) != digest, change
