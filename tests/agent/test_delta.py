"""Delta reporting of the software inventory: computation, hash, resync period, resync on 409."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import timedelta

import httpx
import pytest

from agent import client
from agent.config import AgentConfig, Enrollment
from agent.report import (
    DeltaConflict,
    Package,
    SoftwareSection,
    apply_delta,
    diff_packages,
    inventory_hash,
)
from agent.spool import Spool
from tests.factories import NOW, make_report

BASE = [
    Package(name="openssl", version="3.0.11-1~deb12u2", arch="amd64"),
    Package(name="bash", version="5.2.15-2+b2", arch="amd64"),
    Package(name="tzdata", version="2024a-0+deb12u1", arch="all"),
]


def software(packages: list[Package]) -> SoftwareSection:
    return SoftwareSection(manager="dpkg", packages=packages)


def report_at(hours: float, packages: list[Package]):
    return make_report(now=NOW + timedelta(hours=hours), software=software(packages))


def body(spool: Spool, report_id: str) -> dict:
    [item] = [p for p in spool.pending() if p.report_id == report_id]
    return json.loads(gzip.decompress(item.body))


def names(packages: list[dict]) -> list[tuple[str, str]]:
    return [(p["name"], p["version"]) for p in packages]


# --- pure functions ---------------------------------------------------------


def test_diff_detects_install_removal_and_upgrade():
    new = [
        Package(name="openssl", version="3.0.15-1~deb12u1", arch="amd64"),  # upgraded
        Package(name="bash", version="5.2.15-2+b2", arch="amd64"),  # unchanged
        Package(name="nmap", version="7.93+dfsg1-1", arch="amd64"),  # installed
    ]  # tzdata removed
    added, removed = diff_packages(BASE, new)
    assert [(p.name, p.version) for p in added] == [
        ("nmap", "7.93+dfsg1-1"), ("openssl", "3.0.15-1~deb12u1")
    ]
    assert [(p.name, p.version) for p in removed] == [
        ("openssl", "3.0.11-1~deb12u2"), ("tzdata", "2024a-0+deb12u1")
    ]
    rebuilt = apply_delta(BASE, added, removed)
    assert inventory_hash(rebuilt) == inventory_hash(new)


def test_same_name_other_arch_is_another_package():
    i386 = Package(name="libc6", version="2.36-9", arch="i386")
    amd64 = Package(name="libc6", version="2.36-9", arch="amd64")
    added, removed = diff_packages([amd64], [amd64, i386])
    assert added == [i386] and removed == []


def test_apply_delta_is_strict():
    with pytest.raises(DeltaConflict, match="not installed"):
        apply_delta(BASE, [], [Package(name="ghost", version="1", arch="amd64")])
    with pytest.raises(DeltaConflict, match="already installed"):
        apply_delta(BASE, [BASE[0]], [])


def test_inventory_hash_is_stable_and_ignores_order_and_install_time():
    shuffled = [BASE[2], BASE[0], BASE[1]]
    reinstalled = [p.model_copy(update={"installed_at": NOW}) for p in BASE]
    h = inventory_hash(BASE)
    assert h == inventory_hash(shuffled) == inventory_hash(reinstalled)
    assert h == inventory_hash([*BASE, BASE[0]])  # listed twice: still one package
    # a pinned value: agents and collectors of any version must agree
    keys = sorted((p.name, p.arch, p.version) for p in BASE)
    canonical = json.dumps([list(k) for k in keys], separators=(",", ":"))
    assert h == hashlib.sha256(canonical.encode()).hexdigest()
    upgraded = [BASE[0].model_copy(update={"version": "3.0.15-1~deb12u1"}), *BASE[1:]]
    assert inventory_hash(upgraded) != h
    assert inventory_hash([]) != h


# --- the chain in the spool -------------------------------------------------


def test_first_report_full_then_deltas_against_the_last_spooled(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite")
    r1 = report_at(0, BASE)
    upgraded = [BASE[0].model_copy(update={"version": "3.0.15-1~deb12u1"}), *BASE[1:]]
    r2 = report_at(1, upgraded)
    r3 = report_at(2, [*upgraded[:2], Package(name="nmap", version="7.93", arch="amd64")])

    assert spool.put(r1).mode == "full"
    assert spool.put(r2).mode == "delta"
    assert spool.put(r3).mode == "delta"

    b1, b2, b3 = (body(spool, str(r.report_id)) for r in (r1, r2, r3))
    assert b1["software"]["mode"] == "full" and len(b1["software"]["packages"]) == 3
    assert b1["software"]["inventory_hash"] == inventory_hash(BASE)

    s2 = b2["software"]
    assert s2["mode"] == "delta" and s2["packages"] == []
    assert s2["base_report_id"] == str(r1.report_id)  # chain: previous spooled, not acked
    assert names(s2["added"]) == [("openssl", "3.0.15-1~deb12u1")]
    assert names(s2["removed"]) == [("openssl", "3.0.11-1~deb12u2")]
    assert s2["inventory_hash"] == inventory_hash(upgraded)

    s3 = b3["software"]
    assert s3["base_report_id"] == str(r2.report_id)
    assert names(s3["added"]) == [("nmap", "7.93")]
    assert names(s3["removed"]) == [("tzdata", "2024a-0+deb12u1")]


def test_full_inventory_again_after_resync_hours(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite", resync_hours=24)
    modes = [spool.put(report_at(h, BASE)).mode for h in (0, 1, 23.5, 24, 25, 48.5)]
    assert modes == ["full", "delta", "delta", "full", "delta", "full"]


def test_unknown_software_section_leaves_the_chain_alone(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite")
    r1 = report_at(0, BASE)
    broken = make_report(
        now=NOW + timedelta(hours=1),
        software=SoftwareSection(status="unknown", reason="dpkg status unreadable"),
    )
    r3 = report_at(2, BASE[:2])
    assert spool.put(r1).mode == "full"
    assert spool.put(broken).mode is None
    assert spool.put(r3).mode == "delta"
    assert body(spool, str(broken.report_id))["software"]["status"] == "unknown"
    assert body(spool, str(r3.report_id))["software"]["base_report_id"] == str(r1.report_id)


# --- resync at send time ----------------------------------------------------


@pytest.fixture
def enrollment():
    return Enrollment(
        collector_url="https://collector.test", agent_id="1", host_id=1,
        credential="pa_1_secret", agency={"code": "T", "name": "T", "level": 2},
    )


def _transport(monkeypatch, handler):
    transport = httpx.MockTransport(handler)
    real_client = httpx.Client

    def patched(*args, **kwargs):
        kwargs["transport"] = transport
        return real_client(*args, **kwargs)

    monkeypatch.setattr(client.httpx, "Client", patched)


class FakeCollector:
    """Applies deltas like the collector would; can 'forget' its state (restored backup)."""

    def __init__(self) -> None:
        self.base: str | None = None
        self.packages: list[Package] = []
        self.sent: list[tuple[str, str]] = []  # (report_id, mode) per request

    def __call__(self, request: httpx.Request) -> httpx.Response:
        doc = json.loads(gzip.decompress(request.content))
        sw = doc["software"]
        self.sent.append((doc["report_id"], sw["mode"]))
        if sw["mode"] == "delta":
            if sw["base_report_id"] != self.base:
                return httpx.Response(
                    409, json={"detail": "unknown base", "code": "resync_required"}
                )
            added = [Package.model_validate(p) for p in sw["added"]]
            removed = [Package.model_validate(p) for p in sw["removed"]]
            self.packages = apply_delta(self.packages, added, removed)
        else:
            self.packages = [Package.model_validate(p) for p in sw["packages"]]
        assert inventory_hash(self.packages) == sw["inventory_hash"]
        self.base = doc["report_id"]
        return httpx.Response(201, json={"status": "accepted"})


def test_409_resync_required_resends_the_same_report_in_full(
    tmp_path, enrollment, monkeypatch
):
    spool = Spool(tmp_path / "spool.sqlite")
    collector = FakeCollector()
    _transport(monkeypatch, collector)
    config = AgentConfig(state_dir=tmp_path)

    r1 = report_at(0, BASE)
    spool.put(r1)
    assert client.flush(spool, enrollment, config).delivered == 1
    assert spool.acked_inventory()[0] == str(r1.report_id)

    collector.base = None  # the collector lost its state (database restored from backup)
    r2, r3 = report_at(1, BASE[:2]), report_at(2, BASE[:1])
    spool.put(r2)
    spool.put(r3)
    result = client.flush(spool, enrollment, config)

    assert result.delivered == 2 and result.resynced == 1 and result.rejected == 0
    assert collector.sent[1:] == [
        (str(r2.report_id), "delta"),  # refused: 409 resync_required
        (str(r2.report_id), "full"),  # the same report, rebuilt with its own inventory
        (str(r3.report_id), "delta"),  # the chain goes on from it
    ]
    assert inventory_hash(collector.packages) == inventory_hash(BASE[:1])
    assert spool.depth() == 0 and spool.rejected() == []


def test_full_inventory_refused_with_resync_is_rejected_not_looped(
    tmp_path, enrollment, monkeypatch
):
    spool = Spool(tmp_path / "spool.sqlite")
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(gzip.decompress(request.content))["software"]["mode"])
        return httpx.Response(409, json={"detail": "no", "code": "resync_required"})

    _transport(monkeypatch, handler)
    spool.put(report_at(0, BASE))
    result = client.flush(spool, enrollment, AgentConfig(state_dir=tmp_path))
    assert calls == ["full"] and result.rejected == 1 and spool.depth() == 0


def test_delta_whose_base_was_evicted_is_sent_in_full(tmp_path, enrollment, monkeypatch):
    spool = Spool(tmp_path / "spool.sqlite", max_reports=2)
    collector = FakeCollector()
    _transport(monkeypatch, collector)
    reports = [report_at(h, BASE[: 3 - h % 2]) for h in range(4)]
    for r in reports:
        spool.put(r)
    # the two oldest were evicted; the third one's base (the second) is gone
    assert [p.report_id for p in spool.pending()] == [str(r.report_id) for r in reports[2:]]
    result = client.flush(spool, enrollment, AgentConfig(state_dir=tmp_path))
    assert result.delivered == 2 and result.resynced == 0  # fixed before sending, no 409
    assert collector.sent == [(str(reports[2].report_id), "full"),
                              (str(reports[3].report_id), "delta")]
    assert inventory_hash(collector.packages) == inventory_hash(BASE[:2])
