"""Done-when of "durable delivery and delta reporting": a collector outage loses nothing.

Real processes: the uvicorn collector is stopped while the agent CLI queues
reports (``run --once`` exits 1), then restarted; the collector's database is
read directly to count what arrived.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

from agent.report import Package, inventory_hash, package_key
from tests.e2e.conftest import Collector, agent, agent_status, enroll_agent


def stored_reports(db: Path, host_id: int) -> list[tuple[uuid.UUID, str, dict]]:
    """(report_id, collected_at, body) of the host, in the order the collector stored them."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT report_id, collected_at, body FROM storedreport WHERE host_id = ?"
            " ORDER BY rowid",
            (host_id,),
        ).fetchall()
    return [(uuid.UUID(r), c, json.loads(b)) for r, c, b in rows]


def real_inventory(state: Path) -> list[Package]:
    collected = agent(state, "collect")
    assert collected.returncode == 0, collected.stderr
    software = json.loads(collected.stdout)["software"]
    assert software["status"] == "ok", software
    return [Package.model_validate(p) for p in software["packages"]]


def queue_while_down(state: Path, count: int, *extra: str) -> list[str]:
    ids = []
    for _ in range(count):
        offline = agent(state, *extra, "run", "--once")
        assert offline.returncode == 1, offline.stderr
        ids.append(agent_status(state)["last_report_id"])
    return ids


def test_every_queued_report_arrives_once_in_order_and_deltas_rebuild_the_inventory(
    collector: Collector, tmp_path: Path
) -> None:
    state = tmp_path / "agent"
    host_id = enroll_agent(collector, state)

    collector.stop()
    ids = queue_while_down(state, 5)
    assert len(set(ids)) == 5
    assert "spool depth       5" in agent(state, "status").stdout

    collector.start()
    online = agent(state, "run", "--once")
    assert online.returncode == 0, online.stderr
    ids.append(agent_status(state)["last_report_id"])
    assert "spool depth       0" in agent(state, "status").stdout

    stored = stored_reports(collector.db, host_id)
    # every report exactly once, in the order collected
    assert [r for r, _, _ in stored] == [uuid.UUID(i) for i in ids]
    collected = [c for _, c, _ in stored]
    assert collected == sorted(collected) and len(set(collected)) == 6

    # the first is the full inventory, the others chain deltas on it
    software = [body["software"] for _, _, body in stored]
    assert [s["mode"] for s in software] == ["full"] + ["delta"] * 5
    assert [s["base_report_id"] for s in software[1:]] == ids[:5]
    # delivery info: the first one waited through 5 failed attempts, 6 were queued
    first_delivery = stored[0][2]["delivery"]
    assert first_delivery["attempts"] == 5 and first_delivery["spool_depth"] == 6
    assert first_delivery["evicted_count"] == 0

    api = collector.admin()
    assert api.get(f"/hosts/{host_id}").json()["reports_lost"] == 0
    inventory = api.get(f"/hosts/{host_id}/software").json()
    assert inventory["report_id"] == ids[-1]
    assert inventory["baseline_report_id"] == ids[0]
    real = real_inventory(state)
    assert sorted((p["name"], p["arch"] or "", p["version"]) for p in inventory["packages"]) \
        == sorted({package_key(p) for p in real})
    assert inventory["inventory_hash"] == inventory_hash(real)
    assert api.get(f"/hosts/{host_id}/software/changes").json()["changes"] == []


def test_spool_cap_evicts_the_oldest_and_the_collector_is_told(
    collector: Collector, tmp_path: Path
) -> None:
    state = tmp_path / "agent"
    config = tmp_path / "agent.toml"
    config.write_text("spool_max_reports = 2\n", encoding="utf-8")
    host_id = enroll_agent(collector, state, code="STTTT-CAP")

    collector.stop()
    ids = queue_while_down(state, 3, "--config", str(config))  # the first is evicted
    collector.start()
    online = agent(state, "--config", str(config), "run", "--once")  # evicts the second
    assert online.returncode == 0, online.stderr
    ids.append(agent_status(state)["last_report_id"])

    stored = stored_reports(collector.db, host_id)
    assert [r for r, _, _ in stored] == [uuid.UUID(i) for i in ids[2:]]
    first = stored[0][2]
    assert first["delivery"]["evicted_count"] == 2
    assert first["delivery"]["evicted_first_report_id"] == ids[0]
    assert first["delivery"]["evicted_last_report_id"] == ids[1]
    # its delta base was evicted: it went as the full inventory
    assert first["software"]["mode"] == "full"
    assert stored[1][2]["software"]["mode"] == "delta"

    api = collector.admin()
    assert api.get(f"/hosts/{host_id}").json()["reports_lost"] == 2
    status = agent(state, "--config", str(config), "status").stdout
    assert "reports evicted   2" in status
