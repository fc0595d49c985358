"""Điều 18 khoản 2 on a real network: namespaces, veth, nftables (tests/netlab.py).

For each topology: a collector on the management bridge (10.214.255.1), an
agency at Mức độ 3 with its declared network model, one agent per zone
namespace (enrolled and reporting from inside it, so its interfaces place it
in its zone), ``posture-agent netprobe`` in every zone, then the agency's
compliance.  The correct design also gets a discovery sweep of the internal
zone from the collector side: the printer namespace has no agent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import Collector
from tests.netlab import MGMT_HOST, Lab, missing_requirements

pytestmark = [
    pytest.mark.skipif(
        (reason := missing_requirements()) is not None, reason=reason or "netlab unavailable"
    ),
]

ZONE_ROLES = ("outside", "dmz", "server", "internal")
# The flows each lab declares (what the correct design's firewalls allow, and what
# the internal zone, allowed out everywhere, uses).
DECLARED = [
    ("outside", "dmz", 443),
    ("dmz", "server", 5432),
    ("internal", "dmz", 443),
    ("internal", "server", 5432),
]


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    built = Lab(request.param).build()
    try:
        yield built
    finally:
        built.destroy()


@pytest.fixture
def mgmt_collector(tmp_path: Path, lab: Lab) -> Iterator[Collector]:
    collector = Collector(tmp_path, host=MGMT_HOST)
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


def _agent(lab: Lab, role: str, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The lab collector speaks plain http on a namespace address, not on loopback.
    config = state.parent / f"agent-{role}.toml"
    config.write_text("allow_insecure_http = true\n", encoding="utf-8")
    return lab.run(
        role,
        [sys.executable, "-m", "agent.cli", "--config", str(config), "--state-dir", str(state),
         *args],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def _setup_agency(lab: Lab, collector: Collector, tmp: Path, code: str,
                  model: dict) -> tuple[int, dict[str, int]]:
    """Agency at level 3 with ``model``, one agent per zone namespace; returns ids."""
    api = collector.admin()
    agency = api.post("/agencies", json={"code": code, "name": "Sở thử nghiệm mạng",
                                         "level": 3})
    assert agency.status_code == 201, agency.text
    agency_id = agency.json()["id"]
    put = api.put(f"/agencies/{agency_id}/network", json=model)
    assert put.status_code == 200, put.text

    def enroll_and_report(role: str) -> str:
        token = api.post(f"/agencies/{agency_id}/enrollment-tokens", json={}).json()["token"]
        state = tmp / f"agent-{role}"
        enrolled = _agent(lab, role, state, "enroll", "--collector", collector.url,
                          "--token", token)
        assert enrolled.returncode == 0, f"{role}: {enrolled.stdout}{enrolled.stderr}"
        ran = _agent(lab, role, state, "run", "--once")
        assert ran.returncode == 0, f"{role}: {ran.stdout}{ran.stderr}"
        return role

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(enroll_and_report, ZONE_ROLES))
    hosts = {h["hostname"]: h["id"] for h in api.get(f"/agencies/{agency_id}/hosts").json()}
    assert len(hosts) == len(ZONE_ROLES), hosts

    def probe(role: str) -> None:
        done = _agent(lab, role, tmp / f"agent-{role}", "netprobe")
        assert done.returncode == 0, f"{role} netprobe: {done.stdout}{done.stderr}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(probe, ZONE_ROLES))
    return agency_id, hosts


def _requirements(collector: Collector, agency_id: int) -> dict[str, dict]:
    r = collector.admin().get(f"/agencies/{agency_id}/compliance")
    assert r.status_code == 200, r.text
    return {q["requirement_id"]: q for a in r.json() for q in a["requirements"]}


def _fleet(collector: Collector, agency_id: int) -> dict[str, dict]:
    r = collector.admin().get(f"/agencies/{agency_id}/fleet")
    assert r.status_code == 200, r.text
    return {f["check_id"]: f for f in r.json()}


def _evidence(req: dict) -> str:
    return " | ".join(f"{e['vi']} / {e['en']}" for e in req["evidence"])


@pytest.mark.parametrize("lab", ["correct_level3"], indirect=True)
def test_correct_level3_passes_and_discovery_finds_the_printer(
    lab: Lab, mgmt_collector: Collector, tmp_path: Path
) -> None:
    agency_id, _ = _setup_agency(lab, mgmt_collector, tmp_path, "NET-OK",
                                 lab.network_model(DECLARED))
    reqs = _requirements(mgmt_collector, agency_id)
    fleet = _fleet(mgmt_collector, agency_id)
    # Zones complete, no undeclared open port from outside/DMZ, DMZ publishes 443 only.
    assert reqs["D18.2.L3.a"]["status"] == "pass", _evidence(reqs["D18.2.L3.a"])
    for rule in ("net_zone_model", "net_no_undeclared_flows", "net_dmz_services_declared"):
        assert fleet[rule]["status"] == "pass", fleet[rule]
    # Outside → server/internal crosses fw1 and fw2; no agent runs on the firewalls, so
    # IDS/IPS on the boundary cannot be observed: D18.2.L3.b is unknown, never fail.
    assert fleet["net_filtering_hops"]["status"] == "pass", fleet["net_filtering_hops"]
    assert fleet["net_boundary_ids"]["status"] == "unknown", fleet["net_boundary_ids"]
    assert reqs["D18.2.L3.b"]["status"] == "unknown", _evidence(reqs["D18.2.L3.b"])

    # Discovery of the internal zone from the collector (scan link through fw2).
    assert fleet["fleet_unmanaged_hosts"]["status"] == "unknown"  # never scanned yet
    env = {**mgmt_collector.env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "collector.cli", "discover", "--agency", "NET-OK",
         "--cidr", "10.214.4.0/24", "--top-ports", "100"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10.214.4.20" in done.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "collector.cli", "discover", "--agency", "NET-OK",
         "--cidr", "10.214.200.0/24"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2 and "10.214.200.0/24" in refused.stderr

    scan = mgmt_collector.admin().get(f"/agencies/{agency_id}/discovery").json()
    by_address = {h["address"]: h for h in scan["hosts"]}
    assert by_address["10.214.4.10"]["managed"] is True  # the internal agent
    printer = by_address["10.214.4.20"]
    assert printer["managed"] is False
    assert {p["port"] for p in printer["open_ports"]} >= {80, 9100}
    assert by_address["10.214.4.1"]["managed"] is False  # fw2 has no agent either
    finding = _fleet(mgmt_collector, agency_id)["fleet_unmanaged_hosts"]
    assert finding["status"] == "fail"
    assert "10.214.4.20 (cổng mở: 80, 9100)" in finding["evidence"]["vi"]
    assert "chưa rõ phần mềm diệt virus và bản vá" in finding["evidence"]["vi"]
    assert "10.214.4.10" not in finding["evidence"]["vi"]
    reqs = _requirements(mgmt_collector, agency_id)
    assert reqs["D16.1.b"]["status"] == "fail"
    assert "10.214.4.20" in _evidence(reqs["D19.1.a"])


@pytest.mark.parametrize("lab", ["flat"], indirect=True)
def test_flat_network_fails_segmentation(
    lab: Lab, mgmt_collector: Collector, tmp_path: Path
) -> None:
    # The agency declares four zones (four /26 of one /24); the wire is one segment.
    agency_id, _ = _setup_agency(lab, mgmt_collector, tmp_path, "NET-FLAT",
                                 lab.network_model(DECLARED))
    reqs = _requirements(mgmt_collector, agency_id)
    fleet = _fleet(mgmt_collector, agency_id)
    a = reqs["D18.2.L3.a"]
    assert a["status"] == "fail", _evidence(a)
    # outside reaches the internal zone's SSH and the server's database directly
    assert "10.214.10.202 tcp/22" in _evidence(a)
    assert "10.214.10.138 tcp/5432" in _evidence(a)
    assert fleet["net_no_undeclared_flows"]["status"] == "fail"
    # no router at all between outside and the protected zones
    assert fleet["net_filtering_hops"]["status"] == "fail", fleet["net_filtering_hops"]
    assert "0 bộ định tuyến" in fleet["net_filtering_hops"]["evidence"]["vi"]
    assert reqs["D18.2.L3.b"]["status"] == "fail"

    # What the flat network really is: one zone. The zone model itself is missing.
    one_zone = {"zones": [{"name": "lan", "kind": "internal", "cidrs": ["10.214.10.0/24"]}],
                "flows": []}
    api = mgmt_collector.admin()
    assert api.put(f"/agencies/{agency_id}/network", json=one_zone).status_code == 200
    a = _requirements(mgmt_collector, agency_id)["D18.2.L3.a"]
    assert a["status"] == "fail"
    assert _fleet(mgmt_collector, agency_id)["net_zone_model"]["status"] == "fail"
    assert "Thiếu vùng" in _evidence(a) and "DMZ" in _evidence(a)


@pytest.mark.parametrize("lab", ["ssh_leak"], indirect=True)
def test_ssh_leak_from_dmz_to_internal_fails(
    lab: Lab, mgmt_collector: Collector, tmp_path: Path
) -> None:
    agency_id, _ = _setup_agency(lab, mgmt_collector, tmp_path, "NET-LEAK",
                                 lab.network_model(DECLARED))
    reqs = _requirements(mgmt_collector, agency_id)
    fleet = _fleet(mgmt_collector, agency_id)
    a = reqs["D18.2.L3.a"]
    assert a["status"] == "fail", _evidence(a)
    leak = fleet["net_no_undeclared_flows"]
    assert leak["status"] == "fail"
    assert leak["evidence"]["vi"].count("tcp/") == 1  # exactly the one leaked flow
    assert "DMZ (10.214.2.10) → nội bộ 10.214.4.10 tcp/22" in leak["evidence"]["vi"]
    assert "DMZ (10.214.2.10) → internal 10.214.4.10 tcp/22" in leak["evidence"]["en"]
    # the rest of the design still holds
    assert fleet["net_zone_model"]["status"] == "pass"
    assert fleet["net_dmz_services_declared"]["status"] == "pass"
    assert fleet["net_filtering_hops"]["status"] == "pass"
